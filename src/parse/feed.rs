//! RSS, Atom and JSON Feed, through feed-rs.
//!
//! feed-rs gets the raw response bytes, never a decoded `String`: the XML declaration may name
//! the encoding, and decoding first would lose that.

use chrono::{DateTime, Utc};

use super::{ParseError, ParseErrorKind};
use crate::post::{plain_text, Post};

/// Parses one feed document into posts. Items with neither text nor a link are skipped: there
/// is nothing to judge and nothing to show.
pub fn parse_feed(
    source: &str,
    bytes: &[u8],
    fetched_at: DateTime<Utc>,
) -> Result<Vec<Post>, ParseError> {
    let feed = match feed_rs::parser::parse(bytes) {
        Ok(feed) => feed,
        // feed-rs wants an RSS version it knows; `<rss>` without one, and 0.93/0.94, are read as
        // the 2.0 they are compatible with.
        Err(e) => match rss_as_2_0(bytes).map(|fixed| feed_rs::parser::parse(&fixed[..])) {
            Some(Ok(feed)) => feed,
            _ => {
                return Err(ParseError {
                    source_name: source.to_string(),
                    kind: ParseErrorKind::NotAFeed(e.to_string()),
                })
            }
        },
    };
    let mut posts = Vec::with_capacity(feed.entries.len());
    for entry in feed.entries {
        let title = entry
            .title
            .as_ref()
            .map(|t| plain_text(&t.content))
            .unwrap_or_default();
        // Prefer the full content over the summary when a feed has both.
        let body_html = entry
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .or_else(|| entry.summary.as_ref().map(|s| s.content.clone()))
            .unwrap_or_default();
        let body = plain_text(&body_html);
        let url = entry
            .links
            .first()
            .map(|l| l.href.trim().to_string())
            .filter(|h| !h.is_empty());
        // feed-rs invents an id (a random UUID) for an item that has none, which would make the
        // same item new on every poll. An id the document never wrote is not the item's: then
        // its link, or its text, identifies it (see dedupe::keys).
        let guid =
            Some(entry.id.trim().to_string()).filter(|g| !g.is_empty() && written_in(bytes, g));
        if title.is_empty() && body.is_empty() && url.is_none() {
            continue;
        }
        posts.push(Post {
            source: source.to_string(),
            guid,
            url,
            title,
            body,
            published: super::date::checked(source, entry.published.or(entry.updated), fetched_at),
            fetched_at,
            author: entry
                .authors
                .first()
                .map(|a| a.name.trim().to_string())
                .filter(|a| !a.is_empty()),
        });
    }
    Ok(posts)
}

/// Whether `id` occurs in the document, as written or XML-escaped.
fn written_in(document: &[u8], id: &str) -> bool {
    let escaped = id
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    memchr::memmem::find(document, id.as_bytes()).is_some()
        || memchr::memmem::find(document, escaped.as_bytes()).is_some()
}

/// The document with its `<rss ...>` root tag saying `version="2.0"`, or `None` when it has no
/// such root.
fn rss_as_2_0(bytes: &[u8]) -> Option<Vec<u8>> {
    let start = memchr::memmem::find_iter(bytes, b"<rss")
        .find(|&i| matches!(bytes.get(i + 4), Some(b' ' | b'>' | b'\t' | b'\r' | b'\n')))?;
    let end = start + memchr::memchr(b'>', &bytes[start..])?;
    let tag = std::str::from_utf8(&bytes[start + 4..end]).ok()?;
    // The attributes without `version`, whatever its quotes.
    let mut kept = String::new();
    let mut rest = tag;
    while let Some(at) = rest.find("version") {
        let before = &rest[..at];
        let after = rest[at + "version".len()..].trim_start();
        let starts_attribute = before.is_empty() || before.ends_with(char::is_whitespace);
        let Some(value) = after.strip_prefix('=').map(str::trim_start) else {
            kept.push_str(&rest[..at + "version".len()]);
            rest = &rest[at + "version".len()..];
            continue;
        };
        if !starts_attribute {
            kept.push_str(&rest[..at + "version".len()]);
            rest = &rest[at + "version".len()..];
            continue;
        }
        let quote = value.chars().next()?;
        let close = value[1..].find(quote)? + 2;
        kept.push_str(before);
        rest = &value[close..];
    }
    kept.push_str(rest);
    let mut fixed = Vec::with_capacity(bytes.len() + 16);
    fixed.extend_from_slice(&bytes[..start]);
    fixed.extend_from_slice(b"<rss version=\"2.0\"");
    fixed.extend_from_slice(kept.trim_end().as_bytes());
    fixed.extend_from_slice(&bytes[end..]);
    Some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rss_version_and_rdf_is_read() {
        let fetched = "2026-11-24T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let item = "<item><title>度小满暴力催收</title><link>https://x.example/1</link></item>";
        for root in [
            "<rss>",
            "<rss version=\"0.91\">",
            "<rss version=\"0.92\">",
            "<rss version=\"0.93\">",
            "<rss version=\"0.94\">",
            "<rss version='2.0'>",
            "<rss version=\"3.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">",
        ] {
            let doc = format!(
                "<?xml version=\"1.0\"?>{root}<channel><title>t</title>{item}</channel></rss>"
            );
            let posts = parse_feed("news", doc.as_bytes(), fetched)
                .unwrap_or_else(|e| panic!("{root}: {e}"));
            assert_eq!(posts.len(), 1, "{root}");
            assert_eq!(posts[0].title, "度小满暴力催收", "{root}");
        }
        let rdf = format!(
            "<?xml version=\"1.0\"?><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
             xmlns=\"http://purl.org/rss/1.0/\"><channel><title>t</title></channel>{item}</rdf:RDF>"
        );
        assert_eq!(
            parse_feed("news", rdf.as_bytes(), fetched).unwrap().len(),
            1
        );
    }

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>t</title>
<item><guid>a1</guid><title>度小满暴力催收</title><link>https://x.example/1</link>
<description><![CDATA[<p>有钱花 &amp; 催收</p>]]></description>
<pubDate>Tue, 24 Nov 2026 01:02:03 GMT</pubDate></item>
<item><title></title></item>
</channel></rss>"#;

    #[test]
    fn rss_items_become_posts() {
        // A fixed fetch time: the item's date must not look ahead of it, whatever today is.
        let fetched = "2026-11-24T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let posts = parse_feed("news", RSS.as_bytes(), fetched).unwrap();
        assert_eq!(posts.len(), 1, "the empty item is skipped");
        let p = &posts[0];
        assert_eq!(p.guid.as_deref(), Some("a1"));
        assert_eq!(p.url.as_deref(), Some("https://x.example/1"));
        assert_eq!(p.title, "度小满暴力催收");
        assert_eq!(p.body, "有钱花 & 催收");
        assert_eq!(
            p.published.unwrap().to_rfc3339(),
            "2026-11-24T01:02:03+00:00"
        );
    }

    #[test]
    fn a_date_far_ahead_or_before_2000_becomes_the_fetch_time() {
        let fetched = "2026-11-24T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for date in [
            "Sat, 24 Nov 2029 01:02:03 GMT",
            "Fri, 24 Nov 1995 01:02:03 GMT",
        ] {
            let rss = RSS.replace("Tue, 24 Nov 2026 01:02:03 GMT", date);
            let posts = parse_feed("odd", rss.as_bytes(), fetched).unwrap();
            assert_eq!(posts[0].published, Some(fetched), "{date}");
        }
    }

    #[test]
    fn json_feed_is_read() {
        let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"j","items":[
            {"id":"j1","url":"https://x.example/j1","content_text":"度小满 很坑"}]}"#;
        let posts = parse_feed("j", json.as_bytes(), Utc::now()).unwrap();
        assert_eq!(posts[0].body, "度小满 很坑");
        assert_eq!(posts[0].guid.as_deref(), Some("j1"));
    }

    #[test]
    fn a_gbk_feed_that_declares_its_encoding_is_decoded() {
        // The XML prolog names GBK; feed-rs decodes by it, which is why it gets raw bytes.
        let gbk: &[u8] = b"<?xml version=\"1.0\" encoding=\"GBK\"?><rss version=\"2.0\"><channel><title>t</title><item><guid>g1</guid><title>\xb6\xc8\xd0\xa1\xc2\xfa\xb1\xa9\xc1\xa6\xb4\xdf\xca\xd5</title></item></channel></rss>";
        let posts = parse_feed("gbk", gbk, Utc::now()).unwrap();
        assert_eq!(posts[0].title, "度小满暴力催收");
    }

    #[test]
    fn garbage_names_the_source() {
        let err = parse_feed(
            "broken-feed",
            b"<html><body>503 gateway</body></html>",
            Utc::now(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("broken-feed"), "{err}");
        let err = parse_feed("trunc", &RSS.as_bytes()[..120], Utc::now()).unwrap_err();
        assert!(err.to_string().contains("trunc"), "{err}");
    }

    #[test]
    fn an_item_without_guid_or_link_keeps_one_identity_across_polls() {
        let rss = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>t</title>
<item><title>度小满暴力催收</title><description>骚扰家人</description></item>
</channel></rss>"#;
        let first = parse_feed("forum", rss.as_bytes(), Utc::now()).unwrap();
        let second = parse_feed("forum", rss.as_bytes(), Utc::now()).unwrap();
        assert_eq!(first[0].guid, None, "an invented id is not kept");
        assert_eq!(
            crate::dedupe::keys(&first[0]),
            crate::dedupe::keys(&second[0]),
            "the same item is the same post on the next poll"
        );
        // A real guid, even one that needs escaping, is kept.
        let escaped = RSS.replace("<guid>a1</guid>", "<guid>a&amp;1</guid>");
        let posts = parse_feed("news", escaped.as_bytes(), Utc::now()).unwrap();
        assert_eq!(posts[0].guid.as_deref(), Some("a&1"));
    }
}
