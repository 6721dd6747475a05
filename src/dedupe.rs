//! Has this post been seen before? A post is known by its source GUID and by its URL, so the same
//! article from two feeds, or a feed that rewrites its GUIDs, is still counted once.

use std::collections::HashSet;

use anyhow::Result;

use crate::post::Post;
use crate::store::Store;

/// The keys a post is known by.
pub fn keys(post: &Post) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(guid) = &post.guid {
        keys.push(format!("g\u{0}{}\u{0}{}", post.source, guid));
    }
    if let Some(url) = &post.url {
        keys.push(format!("u\u{0}{}", canonical_url(url)));
    }
    if keys.is_empty() {
        // Neither GUID nor URL: the text itself is the identity.
        keys.push(format!("t\u{0}{}\u{0}{}", post.source, post.text()));
    }
    keys
}

/// Strips what does not change the page: the fragment, tracking parameters, a trailing slash.
pub fn canonical_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url.trim()) else {
        return url.trim().to_string();
    };
    parsed.set_fragment(None);
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("utm_") && k != "spm" && k != "from")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let mut s = parsed.to_string();
    if s.ends_with('/') && parsed.path() != "/" {
        s.pop();
    }
    s
}

/// Keeps the posts never recorded before, each once (a batch may repeat a post under another
/// GUID or URL). Nothing is written: a post becomes seen only when the recorder stores it with
/// its hits ([`Store::record_post`]), so a crash in between loses no post, it is only analyzed
/// again. Two sources may still hand over the same new post at once; the recorder keeps the
/// first.
pub fn unseen(store: &Store, posts: Vec<Post>) -> Result<Vec<Post>> {
    let mut in_batch: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(posts.len());
    for post in posts {
        let keys = keys(&post);
        if store.seen_any(&keys)? {
            continue;
        }
        // All of a post's keys are taken, even when it repeats only one of them.
        let repeated = keys.iter().any(|k| in_batch.contains(k));
        in_batch.extend(keys);
        if !repeated {
            out.push(post);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn post(source: &str, guid: Option<&str>, url: Option<&str>) -> Post {
        Post {
            source: source.into(),
            guid: guid.map(Into::into),
            url: url.map(Into::into),
            title: "t".into(),
            body: "b".into(),
            published: None,
            fetched_at: Utc::now(),
            author: None,
        }
    }

    #[test]
    fn same_guid_or_same_url_is_a_duplicate() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        let batch = vec![
            post(
                "a",
                Some("1"),
                Some("https://x.example/p?utm_source=rss#top"),
            ),
            post("a", Some("1"), None),
            post("b", Some("9"), Some("https://x.example/p")),
            post("a", Some("2"), Some("https://x.example/q")),
        ];
        let kept = unseen(&store, batch.clone()).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].guid.as_deref(), Some("2"));
        assert_eq!(
            unseen(&store, batch.clone()).unwrap().len(),
            2,
            "checking writes nothing"
        );
        for p in &kept {
            assert!(store.record_post(&keys(p), &[], now).unwrap());
        }
        assert!(unseen(&store, vec![post("a", Some("2"), None)])
            .unwrap()
            .is_empty());
        assert!(unseen(&store, batch).unwrap().is_empty());
    }

    #[test]
    fn canonical_urls() {
        assert_eq!(
            canonical_url("https://x.example/a/?utm_medium=x&id=3#c"),
            "https://x.example/a/?id=3"
        );
        assert_eq!(canonical_url("https://x.example/a/"), "https://x.example/a");
        assert_eq!(canonical_url("not a url"), "not a url");
    }
}
