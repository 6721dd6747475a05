//! Has this post been seen before, and is it a copy of one that was?
//!
//! **Identity.** A post is known by its source GUID (when the source wrote one), by its
//! canonical URL (tracking parameters, the fragment and a trailing slash dropped), and when it
//! has neither, by a hash of its normalized content (title + text). So the same article from
//! two feeds, or a feed that rewrites its GUIDs, is counted once, and an item without GUID or
//! link is the same post on every poll.
//!
//! **Reposts.** A post that copies another is amplification, not news: [`near_key`] finds the
//! text it copies (the end of a Weibo `//@user:` chain, what follows a `转发：` or `RT @x:`
//! prefix, or the whole text) and its SimHash over jieba's words; [`original_of`] looks for a
//! recorded post within `near_distance` bits and `near_window` of it. The recorder then raises
//! that post's hits' amplification instead of storing new ones ([`Store::record_repost`]).

use std::collections::HashSet;

use anyhow::Result;
use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::analyze::Analyzer;
use crate::config::DedupeConfig;
use crate::post::Post;
use crate::store::{NearCandidate, Store};

/// The keys a post is recorded under.
pub fn keys(post: &Post) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(guid) = &post.guid {
        keys.push(format!("g\u{0}{}\u{0}{}", post.source, guid));
    }
    if let Some(url) = &post.url {
        keys.push(format!("u\u{0}{}", canonical_url(url)));
    }
    if keys.is_empty() {
        // Neither GUID nor URL: the content itself is the identity.
        keys.push(format!(
            "h\u{0}{}\u{0}{:032x}",
            post.source,
            content_hash(post)
        ));
    }
    keys
}

/// [`keys`], and the keys earlier versions recorded the same post under (the whole text, or
/// a URL with fewer tracking parameters dropped), so that upgrading counts no post twice.
pub fn lookup_keys(post: &Post) -> Vec<String> {
    let mut all = keys(post);
    if let Some(url) = &post.url {
        let legacy = format!("u\u{0}{}", legacy_canonical_url(url));
        if !all.contains(&legacy) {
            all.push(legacy);
        }
    }
    if post.guid.is_none() && post.url.is_none() {
        all.push(format!("t\u{0}{}\u{0}{}", post.source, post.text()));
    }
    all
}

/// A stable 128-bit FNV-1a hash of the post's normalized title and text: the same item reads
/// the same whatever its width, case or spacing on a later poll.
fn content_hash(post: &Post) -> u128 {
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let text = crate::analyze::text::normalize(&post.text());
    let mut hash = OFFSET;
    for word in text.split_whitespace() {
        for &b in word.as_bytes().iter().chain(b" ") {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// Query parameters that only say who shared a link or which campaign it came from.
fn is_tracking_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const PREFIXES: [&str; 5] = ["utm_", "share_", "sharer_", "spm_", "_hs"];
    const NAMES: [&str; 16] = [
        "spm",
        "from",
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "vd_source",
        "isappinstalled",
        "wfr",
        "ref_src",
        "ref_url",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || NAMES.contains(&key.as_str())
}

/// Strips what does not change the page: the fragment, tracking parameters (see
/// [`is_tracking_parameter`]), a trailing slash. The remaining parameters keep their order.
pub fn canonical_url(url: &str) -> String {
    canonical_url_by(url, is_tracking_parameter)
}

/// What [`canonical_url`] was before it knew more tracking parameters.
fn legacy_canonical_url(url: &str) -> String {
    canonical_url_by(url, |k| k.starts_with("utm_") || k == "spm" || k == "from")
}

fn canonical_url_by(url: &str, tracking: impl Fn(&str) -> bool) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url.trim()) else {
        return url.trim().to_string();
    };
    parsed.set_fragment(None);
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| !tracking(k))
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
        if store.seen_any(&lookup_keys(&post))? {
            continue;
        }
        let keys = keys(&post);
        // All of a post's keys are taken, even when it repeats only one of them.
        let repeated = keys.iter().any(|k| in_batch.contains(k));
        in_batch.extend(keys);
        if !repeated {
            out.push(post);
        }
    }
    Ok(out)
}

/// What a post is compared with other posts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearKey {
    /// SimHash of the words of the text the post copies (or of its own text).
    pub fingerprint: u64,
    /// The post says it is a repost (a `//@` chain or a `转发` prefix).
    pub marked_repost: bool,
}

/// The text a repost copies, when `text` says it is one: the end of a Weibo `//@user:` chain
/// (the deepest text quoted), or what follows a `转发：`, `转:` or `RT @user:` prefix.
pub fn original_text(text: &str) -> Option<&str> {
    let mut rest = text.trim();
    let mut marked = false;
    while let Some(after) = strip_repost_prefix(rest) {
        rest = after.trim_start();
        marked = true;
    }
    // Split at every `//@user:`: the reposters' comments, newest first, then the deepest
    // text quoted, which is the last segment that says anything.
    let mut segments = Vec::new();
    let mut start = 0;
    let mut from = 0;
    while let Some(found) = rest[from..].find("//@") {
        let at = from + found;
        let handle = &rest[at + 3..];
        let colon = handle
            .char_indices()
            .take_while(|&(_, c)| !c.is_whitespace())
            .take(40)
            .find(|&(_, c)| c == ':' || c == '：');
        from = at + 3;
        if let Some((i, c)) = colon {
            segments.push(&rest[start..at]);
            start = at + 3 + i + c.len_utf8();
            from = start;
            marked = true;
        }
    }
    segments.push(&rest[start..]);
    if !marked {
        return None;
    }
    segments
        .into_iter()
        .rev()
        .map(str::trim)
        .find(|s| !s.is_empty())
}

/// `rest` after one repost prefix, if it starts with one.
fn strip_repost_prefix(text: &str) -> Option<&str> {
    for prefix in [
        "转发：",
        "转发:",
        "轉發：",
        "轉發:",
        "转：",
        "转:",
        "轉：",
        "轉:",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return Some(rest);
        }
    }
    // "RT @user: …" (and "RT: …")
    let rest = text
        .strip_prefix("RT ")
        .or_else(|| text.strip_prefix("rt "))?;
    let rest = rest.trim_start();
    let handle = rest.strip_prefix('@')?;
    let colon = handle.find([':', '：'])?;
    if handle[..colon].chars().any(char::is_whitespace) {
        return None;
    }
    let after = &handle[colon..];
    Some(&after[after.chars().next().map_or(0, char::len_utf8)..])
}

/// Whether the post says it is a repost (a `//@user:` chain or a `转发：` prefix).
pub fn says_it_reposts(post: &Post) -> bool {
    original_text(&post.body).is_some() || original_text(&post.title).is_some()
}

/// The post's near-duplicate key: the SimHash of jieba's words of the text it copies.
pub fn near_key(analyzer: &Analyzer, post: &Post) -> NearKey {
    let text = post.text();
    let original = original_text(&post.body).or_else(|| original_text(&post.title));
    let compared = original.unwrap_or(&text);
    NearKey {
        fingerprint: simhash(analyzer.words(compared).iter().map(String::as_str)),
        marked_repost: original.is_some(),
    }
}

/// 64-bit SimHash over the words: every word votes on each bit with its own hash, weighted
/// by its length in characters (at most 4), so that the words that carry a post's content
/// outvote particles and punctuation-like fillers.
pub fn simhash<'a>(words: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut votes = [0i32; 64];
    for word in words {
        let h = word_hash(word);
        let weight = word.chars().count().min(4) as i32;
        for (bit, v) in votes.iter_mut().enumerate() {
            *v += if h >> bit & 1 == 1 { weight } else { -weight };
        }
    }
    votes
        .iter()
        .enumerate()
        .filter(|&(_, &v)| v > 0)
        .fold(0u64, |acc, (bit, _)| acc | 1 << bit)
}

/// A stable hash of one word (FNV-1a, then a SplitMix64 finish so every bit depends on every
/// byte). Stored fingerprints are built from it: it must never change.
fn word_hash(word: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in word.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// SplitMix64's finish.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The recorded post that `key` copies, if any: the nearest fingerprint within
/// `near_distance` bits, recorded within `near_window` of `at`, whose hits name every brand in
/// `brands` (a repost that adds a brand of its own is a post about that brand, not a copy).
pub fn original_of(
    store: &Store,
    key: NearKey,
    at: DateTime<Utc>,
    brands: &[String],
    cfg: &DedupeConfig,
) -> Result<Option<NearCandidate>> {
    let window = ChronoDuration::from_std(cfg.near_window).unwrap_or(ChronoDuration::days(3));
    let candidates = store.near_candidates(key.fingerprint, at - window, at + window)?;
    Ok(candidates
        .into_iter()
        .filter(|c| (c.fingerprint ^ key.fingerprint).count_ones() <= cfg.near_distance)
        .filter(|c| brands.iter().all(|b| c.brands.contains(b)))
        .min_by_key(|c| ((c.fingerprint ^ key.fingerprint).count_ones(), c.at)))
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
            post(
                "b",
                Some("9"),
                Some("https://x.example/p?share_token=z&fbclid=q"),
            ),
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
    fn canonical_urls_drop_tracking_parameters() {
        assert_eq!(
            canonical_url("https://x.example/a/?utm_medium=x&id=3#c"),
            "https://x.example/a/?id=3"
        );
        assert_eq!(canonical_url("https://x.example/a/"), "https://x.example/a");
        assert_eq!(canonical_url("not a url"), "not a url");
        assert_eq!(
            canonical_url(
                "https://m.weibo.cn/status/1?spm=a.b&from=timeline&share_source=wx&share_medium=x\
                 &sharer_id=3&fbclid=f&gclid=g&UTM_Campaign=c&spm_id_from=333&isappinstalled=0&page=2"
            ),
            "https://m.weibo.cn/status/1?page=2"
        );
        // Parameters that name the page stay, in their order.
        assert_eq!(
            canonical_url("https://x.example/v?b=2&a=1&utm_x=3"),
            "https://x.example/v?b=2&a=1"
        );
        assert_eq!(
            canonical_url("HTTPS://X.Example:443/p"),
            "https://x.example/p"
        );
    }

    #[test]
    fn posts_recorded_under_older_keys_are_still_seen() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        // Recorded by an earlier version: the URL with only utm_ dropped, the text as the key.
        let shared = post("a", None, Some("https://x.example/p?fbclid=1"));
        store
            .record_post(
                &["u\u{0}https://x.example/p?fbclid=1".to_string()],
                &[],
                now,
            )
            .unwrap();
        let textual = post("forum", None, None);
        store
            .record_post(&["t\u{0}forum\u{0}t。b".to_string()], &[], now)
            .unwrap();
        assert!(unseen(&store, vec![shared, textual]).unwrap().is_empty());
    }

    #[test]
    fn a_post_without_guid_or_link_is_known_by_its_normalized_content() {
        let a = Post {
            title: "度小满 暴力催收".into(),
            body: "骚扰家人ＯＫ".into(),
            ..post("forum", None, None)
        };
        let again = Post {
            title: "度小满  暴力催收".into(),
            body: "骚扰家人ok".into(),
            fetched_at: a.fetched_at + chrono::Duration::minutes(5),
            ..a.clone()
        };
        assert_eq!(keys(&a), keys(&again));
        assert!(keys(&a)[0].starts_with("h\u{0}forum\u{0}"));
        let other = Post {
            body: "骚扰同事".into(),
            ..a.clone()
        };
        assert_ne!(keys(&a), keys(&other));
        let elsewhere = Post {
            source: "other".into(),
            ..a.clone()
        };
        assert_ne!(keys(&a), keys(&elsewhere), "identity is per source");
    }

    #[test]
    fn repost_chains_and_prefixes_give_the_original_text() {
        assert_eq!(
            original_text("转发：度小满暴力催收"),
            Some("度小满暴力催收")
        );
        assert_eq!(original_text("转发:度小满暴力催收"), Some("度小满暴力催收"));
        assert_eq!(original_text("转: 度小满暴力催收"), Some("度小满暴力催收"));
        assert_eq!(original_text("轉發：度小滿"), Some("度小滿"));
        assert_eq!(
            original_text("太过分了//@b:真的吗//@a:度小满暴力催收，骚扰家人"),
            Some("度小满暴力催收，骚扰家人")
        );
        assert_eq!(
            original_text("转发：同感//@a：度小满暴力催收//@c:"),
            Some("度小满暴力催收"),
            "an empty last segment says nothing"
        );
        assert_eq!(
            original_text("RT @VirginAmerica: lost my bag"),
            Some("lost my bag")
        );
        assert_eq!(original_text("度小满暴力催收"), None);
        let repost = Post {
            body: "太坑了//@a:度小满暴力催收".into(),
            ..post("weibo", Some("r"), None)
        };
        assert!(says_it_reposts(&repost));
        assert!(!says_it_reposts(&post("weibo", Some("o"), None)));
        assert_eq!(original_text("他转发：这条"), None, "only as a prefix");
        assert_eq!(
            original_text("see http://x//@ b: c"),
            None,
            "a handle has no spaces"
        );
        assert_eq!(original_text("RT this please: ok"), None);
    }

    #[test]
    fn simhash_is_near_for_copies_and_far_for_other_posts() {
        let analyzer = crate::analyze::tests::analyzer();
        let fp = |t: &str| simhash(analyzer.words(t).iter().map(String::as_str));
        let d = |a: &str, b: &str| (fp(a) ^ fp(b)).count_ones();
        let original = "度小满暴力催收，每天打十几个电话骚扰我的家人和同事，还威胁要上门，\
                        要求一次性还清所有欠款，否则就起诉我。";
        // Copies: other punctuation, full width, an appended plea.
        for copy in [
            "度小满暴力催收，每天打十几个电话骚扰我的家人和同事，还威胁要上门，\
             要求一次性还清所有欠款，否则就起诉我！！",
            "度小满暴力催收,每天打十几个电话骚扰我的家人和同事,还威胁要上门,\
             要求一次性还清所有欠款,否则就起诉我",
            "度小满暴力催收，每天打十几个电话骚扰我的家人和同事，还威胁要上门，\
             要求一次性还清所有欠款，否则就起诉我。求扩散",
        ] {
            assert!(d(original, copy) <= 3, "{} for {copy}", d(original, copy));
        }
        // Other posts, even about the same thing.
        for other in [
            "有钱花额度突然被降，客服一直推脱，根本不解决问题",
            "度小满暴力催收，每天打电话骚扰我的家人",
        ] {
            assert!(d(original, other) > 3, "{} for {other}", d(original, other));
        }
        assert_eq!(simhash(std::iter::empty()), 0);
        // Stored fingerprints depend on this hash never changing.
        // Stored fingerprints depend on the word hash never changing.
        assert_eq!(word_hash("度小满"), 0xf42f_876d_072b_069b);
        assert_eq!(
            simhash(["度小满", "催收"]),
            word_hash("度小满"),
            "the longer word wins"
        );
    }

    #[test]
    fn the_original_is_found_within_distance_window_and_brands() {
        use crate::store::{Hit, RecordedPost};
        let store = Store::temporary().unwrap();
        let at = Utc::now();
        let fingerprint = 0xdead_beef_0bad_f00d_u64;
        let original = Post {
            title: "度小满暴力催收".into(),
            ..post("weibo", Some("o"), None)
        };
        let hit = Hit::new(&original, "度小满", -2.0, true, vec![], 2.0);
        let kept = RecordedPost {
            source: "weibo".into(),
            title: original.title.clone(),
            text: original.body.clone(),
            url: None,
            author: None,
            published: at,
            brands: vec!["度小满".into()],
            fingerprint: Some(fingerprint),
        };
        store
            .record_post_with(&keys(&original), &[hit], Some(&kept), at)
            .unwrap();
        let cfg = DedupeConfig::default();
        let brands = ["度小满".to_string()];
        let key = |f: u64| NearKey {
            fingerprint: f,
            marked_repost: false,
        };
        let near = key(fingerprint ^ (1 << 63 | 1 << 20 | 1));
        let found = original_of(&store, near, at + ChronoDuration::hours(1), &brands, &cfg)
            .unwrap()
            .expect("3 bits apart, within the window");
        assert_eq!(found.fingerprint, fingerprint);
        let far = key(fingerprint ^ 0b1111);
        assert!(original_of(&store, far, at, &brands, &cfg)
            .unwrap()
            .is_none());
        let tight = DedupeConfig {
            near_distance: 2,
            ..cfg.clone()
        };
        assert!(original_of(&store, near, at, &brands, &tight)
            .unwrap()
            .is_none());
        let later = at + ChronoDuration::days(4);
        assert!(original_of(&store, near, later, &brands, &cfg)
            .unwrap()
            .is_none());
        let more_brands = ["度小满".to_string(), "招联".to_string()];
        assert!(
            original_of(&store, near, at, &more_brands, &cfg)
                .unwrap()
                .is_none(),
            "a copy that names another brand too is a post of its own"
        );
    }
}
