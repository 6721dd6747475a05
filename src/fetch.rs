//! HTTP: one shared client, timeouts, conditional GET, a body cap enforced while streaming, and a
//! global concurrency cap. Never parses; returns bytes.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use crate::config::DaemonConfig;

/// The one HTTP client of the process: fetching and Telegram share its connection pool.
pub fn http_client(cfg: &DaemonConfig) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()?)
}

/// Cache validators from the last successful fetch, sent back as a conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug)]
pub enum Fetched {
    Body {
        bytes: Vec<u8>,
        content_type: Option<String>,
        validators: Validators,
    },
    /// 304: nothing new since the validators.
    NotModified,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("HTTP {status} from {url}")]
    Status {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("response from {url} exceeds the {limit}-byte cap")]
    TooLarge { url: String, limit: usize },
    #[error("timed out after {} fetching {url}", crate::config::human_duration(*after))]
    Timeout { url: String, after: Duration },
    #[error("fetching {url}: {message}")]
    Network {
        url: String,
        message: String,
        /// No connection was made (refused, DNS, TLS handshake): the server was not reached.
        connect: bool,
    },
}

impl FetchError {
    /// How long the server asked us to wait, if it did (429/503 with Retry-After).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether no server answered at all, which across every source points at the network or a
    /// proxy rather than at the sources.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            FetchError::Network { connect: true, .. } | FetchError::Timeout { .. }
        )
    }
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_body: usize,
    permits: Arc<Semaphore>,
}

impl Fetcher {
    pub fn new(client: reqwest::Client, cfg: &DaemonConfig) -> Fetcher {
        Fetcher {
            client,
            timeout: cfg.fetch_timeout,
            max_body: cfg.max_body_bytes,
            permits: Arc::new(Semaphore::new(cfg.max_concurrent_fetches)),
        }
    }

    pub async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the fetch semaphore is never closed");
        match tokio::time::timeout(self.timeout, self.fetch_inner(url, validators)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_string(),
                after: self.timeout,
            }),
        }
    }

    async fn fetch_inner(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        // The URL is said once, by our message; reqwest's own would repeat it.
        let network = |e: reqwest::Error| FetchError::Network {
            url: url.to_string(),
            connect: e.is_connect(),
            message: error_chain(&e.without_url()),
        };
        let mut request = self.client.get(url);
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, lm);
        }
        let mut response = request.send().await.map_err(network)?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit: self.max_body,
            });
        }
        let headers = response.headers().clone();
        // Read chunk by chunk so a huge or endless body is cut off at the cap instead of
        // filling memory.
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if bytes.len() + chunk.len() > self.max_body {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    limit: self.max_body,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Fetched::Body {
            bytes,
            content_type: header(reqwest::header::CONTENT_TYPE),
            validators: Validators {
                etag: header(ETAG),
                last_modified: header(LAST_MODIFIED),
            },
        })
    }
}

/// Retry-After in seconds; the HTTP-date form is rare for feeds and treated as absent.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(24 * 3600)))
}

/// reqwest's Display hides the cause ("error sending request"); the chain says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Where the charset used to decode a document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharsetFrom {
    Bom,
    HttpHeader,
    /// The XML declaration, or an HTML `<meta charset>` / `http-equiv`.
    Document,
    /// Nothing named one: chardetng guessed from the bytes.
    Detected,
}

/// Decodes a fetched document to UTF-8, choosing the charset in this order: a byte-order mark,
/// the HTTP `Content-Type` charset, the document's own declaration, then detection. The
/// document's declaration is rewritten to say UTF-8, so a parser that reads it (feed-rs does)
/// does not decode the bytes a second time.
pub fn to_utf8(
    bytes: &[u8],
    content_type: Option<&str>,
) -> (Vec<u8>, &'static encoding_rs::Encoding, CharsetFrom) {
    let (encoding, from) = if let Some((enc, _)) = encoding_rs::Encoding::for_bom(bytes) {
        (enc, CharsetFrom::Bom)
    } else if let Some(enc) = content_type.and_then(header_charset) {
        (enc, CharsetFrom::HttpHeader)
    } else if let Some(enc) = declared_charset(bytes) {
        (enc, CharsetFrom::Document)
    } else {
        let mut detector = chardetng::EncodingDetector::new();
        detector.feed(bytes, true);
        (detector.guess(None, true), CharsetFrom::Detected)
    };
    // A UTF-16 declaration inside bytes already read as 8-bit text would be a lie; and an
    // "encoding" label for UTF-8 needs nothing done.
    let (text, _, _) = encoding.decode(bytes);
    let text = rewrite_declaration(&text);
    (text.into_bytes(), encoding, from)
}

/// The charset parameter of a Content-Type header, if it names a known encoding.
fn header_charset(content_type: &str) -> Option<&'static encoding_rs::Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("charset"))
            .then(|| encoding_rs::Encoding::for_label(value.trim().trim_matches('"').as_bytes()))
            .flatten()
    })
}

/// The encoding an XML declaration or an HTML meta tag names, read from the first 1 KiB as
/// ASCII (every such declaration is ASCII).
fn declared_charset(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let label_after = |marker: &str| -> Option<&'static encoding_rs::Encoding> {
        let start = head.find(marker)? + marker.len();
        let rest = head[start..].trim_start_matches(['=', ' ', '"', '\'']);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        encoding_rs::Encoding::for_label(&rest.as_bytes()[..end])
    };
    if head.trim_start().starts_with("<?xml") {
        let decl_end = head.find("?>").unwrap_or(head.len());
        if let Some(enc) = head[..decl_end]
            .contains("encoding")
            .then(|| label_after("encoding"))
            .flatten()
        {
            return Some(enc);
        }
    }
    label_after("charset")
}

/// Replaces the encoding named in a leading XML declaration with UTF-8.
fn rewrite_declaration(text: &str) -> String {
    let trimmed = text.trim_start_matches('\u{feff}');
    if !trimmed.starts_with("<?xml") {
        return trimmed.to_string();
    }
    let Some(end) = trimmed.find("?>") else {
        return trimmed.to_string();
    };
    let decl = &trimmed[..end];
    let Some(at) = decl.find("encoding") else {
        return trimmed.to_string();
    };
    let after = &decl[at + "encoding".len()..];
    let Some(open) = after.find(['"', '\'']) else {
        return trimmed.to_string();
    };
    let quote = after.as_bytes()[open] as char;
    let Some(close) = after[open + 1..].find(quote) else {
        return trimmed.to_string();
    };
    let value_start = at + "encoding".len() + open + 1;
    let value_end = value_start + close;
    format!("{}UTF-8{}", &trimmed[..value_start], &trimmed[value_end..])
}

#[cfg(test)]
mod charset_tests {
    use super::*;

    /// "度小满暴力催收" in GBK.
    const GBK_TITLE: &[u8] = b"\xb6\xc8\xd0\xa1\xc2\xfa\xb1\xa9\xc1\xa6\xb4\xdf\xca\xd5";

    fn rss(decl: &str, title: &[u8]) -> Vec<u8> {
        let mut doc = decl.as_bytes().to_vec();
        doc.extend_from_slice(
            b"<rss version=\"2.0\"><channel><title>t</title><item><guid>g</guid><title>",
        );
        doc.extend_from_slice(title);
        doc.extend_from_slice(b"</title><description>");
        // Enough text for detection to be sure.
        for _ in 0..20 {
            doc.extend_from_slice(title);
        }
        doc.extend_from_slice(b"</description></item></channel></rss>");
        doc
    }

    fn title_of(bytes: &[u8]) -> String {
        crate::parse::feed::parse_feed("s", bytes, chrono::Utc::now()).unwrap()[0]
            .title
            .clone()
    }

    #[test]
    fn gbk_named_only_by_the_http_header_is_decoded() {
        let doc = rss("<?xml version=\"1.0\"?>", GBK_TITLE);
        let (utf8, enc, from) = to_utf8(&doc, Some("application/rss+xml; charset=GBK"));
        assert_eq!((enc.name(), from), ("GBK", CharsetFrom::HttpHeader));
        assert_eq!(title_of(&utf8), "度小满暴力催收");
    }

    #[test]
    fn gbk_named_only_by_the_declaration_is_decoded_once() {
        let doc = rss("<?xml version=\"1.0\" encoding=\"gb2312\"?>", GBK_TITLE);
        let (utf8, enc, from) = to_utf8(&doc, Some("text/xml"));
        assert_eq!((enc.name(), from), ("GBK", CharsetFrom::Document));
        assert!(String::from_utf8(utf8.clone())
            .unwrap()
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert_eq!(title_of(&utf8), "度小满暴力催收");
    }

    #[test]
    fn gb18030_and_big5_are_found_when_nothing_names_them() {
        let doc = rss("", GBK_TITLE);
        let (utf8, enc, from) = to_utf8(&doc, None);
        assert_eq!(from, CharsetFrom::Detected);
        assert!(
            enc.name() == "GBK" || enc.name() == "gb18030",
            "{}",
            enc.name()
        );
        assert_eq!(title_of(&utf8), "度小满暴力催收");
        // "度小滿暴力催收" (traditional) in Big5.
        let big5 = encoding_rs::BIG5.encode("度小滿暴力催收").0.into_owned();
        let doc = rss("", &big5);
        let (utf8, enc, _) = to_utf8(&doc, None);
        assert_eq!(enc.name(), "Big5");
        assert_eq!(title_of(&utf8), "度小滿暴力催收");
        let (utf8, _, from) = to_utf8(
            &rss("<?xml version=\"1.0\"?>", &big5),
            Some("text/xml; charset=\"big5\""),
        );
        assert_eq!(from, CharsetFrom::HttpHeader);
        assert_eq!(title_of(&utf8), "度小滿暴力催收");
    }

    #[test]
    fn a_bom_wins_and_utf8_passes_through() {
        let mut doc = b"\xef\xbb\xbf".to_vec();
        doc.extend(rss(
            "<?xml version=\"1.0\" encoding=\"GBK\"?>",
            "度小满暴力催收".as_bytes(),
        ));
        let (utf8, enc, from) = to_utf8(&doc, Some("text/xml; charset=GBK"));
        assert_eq!((enc.name(), from), ("UTF-8", CharsetFrom::Bom));
        assert_eq!(title_of(&utf8), "度小满暴力催收");
        let plain = rss(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "度小满".as_bytes(),
        );
        let (utf8, enc, _) = to_utf8(&plain, None);
        assert_eq!(enc.name(), "UTF-8");
        assert_eq!(utf8, plain);
    }

    #[test]
    fn html_meta_charset_is_read() {
        let html = b"<html><head><meta charset=\"gbk\"></head><body>x</body></html>";
        let (_, enc, from) = to_utf8(html, Some("text/html"));
        assert_eq!((enc.name(), from), ("GBK", CharsetFrom::Document));
    }
}
