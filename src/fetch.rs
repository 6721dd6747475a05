//! HTTP: one shared client, timeouts, conditional GET, a body cap enforced while streaming, a
//! global concurrency cap and a per-host one. Never parses; returns bytes.
//!
//! Failures carry their class ([`ErrorClass`]: DNS, TLS, timeout, HTTP status, login wall…),
//! which is what source health shows: "DNS" tells an operator something different from "HTTP 403".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
        .redirect(redirect_policy())
        .build()?)
}

/// Follows up to 5 redirects. A permanent one (301, 308) is logged with its new URL: the
/// source's `url` should be updated, or one day the old address stops redirecting.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("more than 5 redirects");
        }
        if matches!(attempt.status().as_u16(), 301 | 308) {
            if let Some(from) = attempt.previous().last() {
                tracing::info!(
                    from = %from,
                    to = %attempt.url(),
                    status = attempt.status().as_u16(),
                    "permanent redirect: update the source's url to {}",
                    attempt.url()
                );
            }
        }
        attempt.follow()
    })
}

/// Per-source request options.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestOptions<'a> {
    /// Extra headers (cookies included), sent as given.
    pub headers: &'a [(String, String)],
    /// Replaces the client's user agent.
    pub user_agent: Option<&'a str>,
}

/// What kind of failure a poll ended with, for source health and its notices.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake or certificate failed.
    Tls,
    /// The server did not answer (refused, reset) .
    Connect,
    Timeout,
    /// The server answered with an error status.
    HttpStatus,
    /// HTTP 410: the server says the feed is gone for good.
    Gone,
    /// The body exceeds the size cap.
    TooLarge,
    /// The body could not be read as the expected format.
    Parse,
    /// The body did not decode in its charset, and could not be read.
    Charset,
    /// A login page, a password form, or HTTP 432: the cookie expired or the source now needs one.
    LoginWall,
    Other,
}

impl ErrorClass {
    pub fn label(&self) -> &'static str {
        match self {
            ErrorClass::Dns => "DNS",
            ErrorClass::Tls => "TLS",
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "HTTP status",
            ErrorClass::Gone => "gone",
            ErrorClass::TooLarge => "too large",
            ErrorClass::Parse => "parse",
            ErrorClass::Charset => "charset",
            ErrorClass::LoginWall => "login wall",
            ErrorClass::Other => "other",
        }
    }

    /// The class of a poll's error, looked for along its chain.
    pub fn of(error: &anyhow::Error) -> ErrorClass {
        // Added as context over the parse error it explains, so only anyhow's own downcast,
        // not the chain of sources, finds it.
        if error.downcast_ref::<CharsetError>().is_some() {
            return ErrorClass::Charset;
        }
        for cause in error.chain() {
            if let Some(e) = cause.downcast_ref::<FetchError>() {
                return e.class();
            }
            if let Some(e) = cause.downcast_ref::<crate::parse::ParseError>() {
                return match e.kind {
                    crate::parse::ParseErrorKind::LoginWall(_) => ErrorClass::LoginWall,
                    _ => ErrorClass::Parse,
                };
            }
        }
        ErrorClass::Other
    }
}

/// A body that was not valid in the charset it was read as, and that then could not be parsed:
/// the likelier cause to report than the parser's complaint.
#[derive(Debug, thiserror::Error)]
#[error("the body is not valid {charset} (charset from {from:?}), so it could not be read")]
pub struct CharsetError {
    pub charset: &'static str,
    pub from: CharsetFrom,
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
    /// HTTP 432 (Weibo's answer to an expired cookie), or a redirect to a login page.
    #[error("cookie expired or login required: {url} {why}")]
    LoginWall { url: String, why: String },
}

impl FetchError {
    /// How long the server asked us to wait, if it did (429/503 with Retry-After).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            // Gone for good, says the server: look again only at the longest backoff, in case
            // it was a mistake.
            FetchError::Status { status: 410, .. } => Some(crate::source::MAX_BACKOFF),
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

    pub fn class(&self) -> ErrorClass {
        match self {
            FetchError::Status { status: 410, .. } => ErrorClass::Gone,
            FetchError::Status { .. } => ErrorClass::HttpStatus,
            FetchError::TooLarge { .. } => ErrorClass::TooLarge,
            FetchError::Timeout { .. } => ErrorClass::Timeout,
            FetchError::LoginWall { .. } => ErrorClass::LoginWall,
            FetchError::Network { message, .. } => {
                let m = message.to_ascii_lowercase();
                if m.contains("dns") || m.contains("lookup") || m.contains("resolve") {
                    ErrorClass::Dns
                } else if m.contains("tls") || m.contains("certificate") || m.contains("handshake")
                {
                    ErrorClass::Tls
                } else if m.contains("timed out") {
                    ErrorClass::Timeout
                } else {
                    ErrorClass::Connect
                }
            }
        }
    }
}

/// Whether a redirect landed on a login page rather than on content.
fn is_login_url(url: &reqwest::Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    ["login", "signin", "sign_in", "sign-in", "passport", "/sso"]
        .iter()
        .any(|w| path.contains(w))
        || host.starts_with("passport.")
        || host.starts_with("login.")
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_body: usize,
    permits: Arc<Semaphore>,
    per_host: usize,
    /// One semaphore per host:port, made on first use. A std Mutex: it is held only to look
    /// one up, never across an await.
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Fetcher {
    pub fn new(client: reqwest::Client, cfg: &DaemonConfig) -> Fetcher {
        Fetcher {
            client,
            timeout: cfg.fetch_timeout,
            max_body: cfg.max_body_bytes,
            permits: Arc::new(Semaphore::new(cfg.max_concurrent_fetches)),
            per_host: cfg.per_host.max(1),
            hosts: Arc::default(),
        }
    }

    pub async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        self.fetch_with(url, validators, RequestOptions::default())
            .await
    }

    /// Fetches `url` with a source's own headers and user agent, within the host's and the
    /// global concurrency caps. The timeout covers the whole request, waiting for a permit
    /// excluded: a source queued behind a slow host is not the one that timed out.
    pub async fn fetch_with(
        &self,
        url: &str,
        validators: &Validators,
        options: RequestOptions<'_>,
    ) -> Result<Fetched, FetchError> {
        // The host's permit first, so a request waiting on a busy host holds no global permit
        // that another host's request could use.
        let _host_permit = self
            .host_permits(url)
            .acquire_owned()
            .await
            .expect("a host semaphore is never closed");
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the fetch semaphore is never closed");
        // Boxed only once both permits are held: the request's state is large, and a poll
        // queued behind a busy host should not carry it while it waits.
        let request = Box::pin(self.fetch_inner(url, validators, options));
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_string(),
                after: self.timeout,
            }),
        }
    }

    fn host_permits(&self, url: &str) -> Arc<Semaphore> {
        let host = reqwest::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or(0)
                )
            })
            .unwrap_or_default();
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    async fn fetch_inner(
        &self,
        url: &str,
        validators: &Validators,
        options: RequestOptions<'_>,
    ) -> Result<Fetched, FetchError> {
        // The URL is said once, by our message; reqwest's own would repeat it.
        let network = |e: reqwest::Error| FetchError::Network {
            url: url.to_string(),
            connect: e.is_connect(),
            message: error_chain(&e.without_url()),
        };
        let mut request = self.client.get(url);
        if let Some(agent) = options.user_agent {
            request = request.header(reqwest::header::USER_AGENT, agent);
        }
        for (name, value) in options.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, lm);
        }
        let mut response = request.send().await.map_err(network)?;
        let status = response.status();
        if status.as_u16() == 432 {
            return Err(FetchError::LoginWall {
                url: url.to_string(),
                why: "answered HTTP 432".into(),
            });
        }
        let redirected = reqwest::Url::parse(url).ok().as_ref() != Some(response.url());
        if redirected && is_login_url(response.url()) {
            return Err(FetchError::LoginWall {
                url: url.to_string(),
                why: format!("redirected to the login page {}", response.url()),
            });
        }
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
    let decoded = decode(bytes, content_type);
    (decoded.utf8, decoded.encoding, decoded.from)
}

/// A document decoded to UTF-8 by [`decode`].
#[derive(Debug)]
pub struct Decoded {
    pub utf8: Vec<u8>,
    pub encoding: &'static encoding_rs::Encoding,
    pub from: CharsetFrom,
    /// Some bytes were not valid in that encoding and became U+FFFD.
    pub malformed: bool,
}

/// [`to_utf8`], also telling whether the bytes were valid in the charset chosen.
pub fn decode(bytes: &[u8], content_type: Option<&str>) -> Decoded {
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
    let (text, _, malformed) = encoding.decode(bytes);
    let text = rewrite_declaration(&text);
    Decoded {
        utf8: text.into_bytes(),
        encoding,
        from,
        malformed,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_pages_are_recognised_by_their_address() {
        for url in [
            "https://passport.weibo.example/visitor?entry=mweibo",
            "https://m.example.com/login?r=%2Ffeed",
            "https://example.com/account/signin",
            "https://example.com/sso/auth",
        ] {
            assert!(is_login_url(&reqwest::Url::parse(url).unwrap()), "{url}");
        }
        for url in ["https://example.com/feed", "https://blog.example/catalogue"] {
            assert!(!is_login_url(&reqwest::Url::parse(url).unwrap()), "{url}");
        }
    }

    #[test]
    fn network_failures_are_classed() {
        let network = |message: &str| FetchError::Network {
            url: "http://x/".into(),
            message: message.into(),
            connect: true,
        };
        let cases = [
            (
                "client error (Connect): dns error: failed to lookup address information",
                ErrorClass::Dns,
            ),
            (
                "client error (Connect): invalid peer certificate: UnknownIssuer",
                ErrorClass::Tls,
            ),
            (
                "client error (Connect): tcp connect error: Connection refused (os error 111)",
                ErrorClass::Connect,
            ),
        ];
        for (message, class) in cases {
            assert_eq!(network(message).class(), class, "{message}");
        }
        let wall = FetchError::LoginWall {
            url: "u".into(),
            why: "answered HTTP 432".into(),
        };
        assert_eq!(
            ErrorClass::of(&anyhow::Error::new(wall).context("source \"weibo\"")),
            ErrorClass::LoginWall
        );
        assert_eq!(
            ErrorClass::of(&anyhow::anyhow!("something else")),
            ErrorClass::Other
        );
    }
}
