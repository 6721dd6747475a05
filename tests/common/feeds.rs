//! Fixture HTTP server serving feed bodies on 127.0.0.1, plus RSS/Atom builders.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
struct Route {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    /// Bodies served in order; the last one repeats forever.
    bodies: Vec<Vec<u8>>,
    /// Number of GETs answered so far (index into `bodies`).
    served: usize,
    delay: Option<Duration>,
}

#[derive(Default)]
struct FeedState {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
    last_headers: HashMap<String, HeaderMap>,
}

struct Shared {
    state: Mutex<FeedState>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        // A panicking test thread must not poison the harness for others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Fixture HTTP server. Unknown paths answer 404. The server task is aborted
/// when the value is dropped.
pub struct FeedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FeedServer {
    /// Binds 127.0.0.1:0 and starts serving. Must be called inside a tokio runtime.
    pub async fn start() -> FeedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("FeedServer: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("FeedServer: local_addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(FeedState::default()),
            changed: Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FeedServer { addr, shared, task }
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`; `path` should start with '/'.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("http://{}{}", self.addr, path)
        } else {
            format!("http://{}/{}", self.addr, path)
        }
    }

    /// From now on GET `path` answers 200 with exactly these bytes.
    pub fn set(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.set_response(path, 200, content_type, &[], vec![body.into()]);
    }

    /// Each GET of `path` serves the next body (status 200); the last one
    /// repeats forever. Panics if `bodies` is empty.
    pub fn set_sequence(&self, path: &str, content_type: &str, bodies: Vec<Vec<u8>>) {
        self.set_response(path, 200, content_type, &[], bodies);
    }

    /// From now on GET `path` answers `status` with this body (text/plain).
    pub fn set_status(&self, path: &str, status: u16, body: impl Into<Vec<u8>>) {
        self.set_response(
            path,
            status,
            "text/plain; charset=utf-8",
            &[],
            vec![body.into()],
        );
    }

    /// General form: status, content type, extra response headers (e.g. ETag,
    /// Retry-After) and a body sequence (last repeats). Replaces any previous
    /// route for `path` (and restarts its sequence); keeps any configured delay.
    pub fn set_response(
        &self,
        path: &str,
        status: u16,
        content_type: &str,
        headers: &[(&str, &str)],
        bodies: Vec<Vec<u8>>,
    ) {
        assert!(
            !bodies.is_empty(),
            "FeedServer: at least one body is required for {path}"
        );
        StatusCode::from_u16(status).expect("FeedServer: invalid HTTP status");
        let mut st = self.shared.lock();
        let delay = st.routes.get(path).and_then(|r| r.delay);
        st.routes.insert(
            path.to_string(),
            Route {
                status,
                content_type: content_type.to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                bodies,
                served: 0,
                delay,
            },
        );
    }

    /// Delay every response for `path` (must already be configured) by `delay`
    /// (e.g. to exercise client timeouts). `None` removes the delay.
    pub fn set_delay(&self, path: &str, delay: Option<Duration>) {
        let mut st = self.shared.lock();
        let route = st
            .routes
            .get_mut(path)
            .unwrap_or_else(|| panic!("FeedServer: set_delay on unconfigured path {path}"));
        route.delay = delay;
    }

    /// Stop serving `path` (it answers 404 again).
    pub fn remove(&self, path: &str) {
        self.shared.lock().routes.remove(path);
    }

    /// Number of GETs `path` has received (configured or not). Requests with a
    /// query string count both for the bare path and for `path?query`.
    pub fn hits(&self, path: &str) -> usize {
        self.shared.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// Request headers of the most recent GET of `path` (keys lower-case).
    pub fn last_request_headers(&self, path: &str) -> Option<HashMap<String, String>> {
        let st = self.shared.lock();
        st.last_headers.get(path).map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        })
    }

    /// Wait until `path` has received at least `n` GETs. Panics on timeout.
    pub async fn wait_for_hits(&self, path: &str, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.hits(path);
            if got >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.hits(path);
                if got >= n {
                    return;
                }
                let all = self.shared.lock().hits.clone();
                panic!(
                    "FeedServer: timed out after {timeout:?} waiting for {n} GET(s) of {path}; \
                     it got {got}. All hits: {all:?}"
                );
            }
        }
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_string();
    let full = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    if method != Method::GET && method != Method::HEAD {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .body(Body::from("method not allowed"))
            .expect("build response");
    }
    let counts = method == Method::GET;

    let answer = {
        let mut st = shared.lock();
        if counts {
            *st.hits.entry(path.clone()).or_default() += 1;
            if full != path {
                *st.hits.entry(full.clone()).or_default() += 1;
                st.last_headers.insert(full.clone(), headers.clone());
            }
            st.last_headers.insert(path.clone(), headers);
        }
        let key = if st.routes.contains_key(&full) {
            full
        } else {
            path
        };
        match st.routes.get_mut(&key) {
            Some(route) => {
                let idx = route.served.min(route.bodies.len() - 1);
                if counts {
                    route.served += 1;
                }
                Some((
                    route.status,
                    route.content_type.clone(),
                    route.headers.clone(),
                    route.bodies[idx].clone(),
                    route.delay,
                ))
            }
            _ => None,
        }
    };
    shared.changed.notify_waiters();

    match answer {
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from("not found"))
            .expect("build response"),
        Some((status, content_type, extra, body, delay)) => {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let mut builder = Response::builder()
                .status(StatusCode::from_u16(status).expect("valid status"))
                .header(header::CONTENT_TYPE, content_type);
            for (k, v) in extra {
                builder = builder.header(k, v);
            }
            builder.body(Body::from(body)).expect("build response")
        }
    }
}

/// One feed entry for the [`rss`] / [`atom`] builders.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub guid: String,
    pub title: String,
    pub link: String,
    pub description: String,
    pub pub_date: Option<DateTime<Utc>>,
}

impl Item {
    /// link = `https://news.example/{guid}`, pub_date = now.
    pub fn new(guid: &str, title: &str, description: &str) -> Item {
        Item {
            guid: guid.to_string(),
            title: title.to_string(),
            link: format!("https://news.example/{guid}"),
            description: description.to_string(),
            pub_date: Some(Utc::now()),
        }
    }

    /// Builder-style: replace the publication date (`None` omits it).
    pub fn with_date(mut self, pub_date: Option<DateTime<Utc>>) -> Item {
        self.pub_date = pub_date;
        self
    }

    /// Builder-style: replace the link.
    pub fn with_link(mut self, link: &str) -> Item {
        self.link = link.to_string();
        self
    }
}

/// Escape text for XML element content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A valid RSS 2.0 document (UTF-8). `pubDate` is RFC 2822 and omitted when
/// the item has no date; `guid` has `isPermaLink="false"`.
pub fn rss(channel_title: &str, items: &[Item]) -> String {
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<rss version=\"2.0\">\n<channel>\n");
    s.push_str(&format!("<title>{}</title>\n", xml_escape(channel_title)));
    s.push_str("<link>https://news.example/</link>\n");
    s.push_str(&format!(
        "<description>{}</description>\n",
        xml_escape(channel_title)
    ));
    for it in items {
        s.push_str("<item>\n");
        s.push_str(&format!(
            "  <guid isPermaLink=\"false\">{}</guid>\n",
            xml_escape(&it.guid)
        ));
        s.push_str(&format!("  <title>{}</title>\n", xml_escape(&it.title)));
        s.push_str(&format!("  <link>{}</link>\n", xml_escape(&it.link)));
        s.push_str(&format!(
            "  <description>{}</description>\n",
            xml_escape(&it.description)
        ));
        if let Some(d) = it.pub_date {
            s.push_str(&format!("  <pubDate>{}</pubDate>\n", d.to_rfc2822()));
        }
        s.push_str("</item>\n");
    }
    s.push_str("</channel>\n</rss>\n");
    s
}

/// A valid Atom 1.0 document (UTF-8). Entry `id` = guid, `summary` =
/// description, `published`/`updated` = pub_date (RFC 3339; both omitted when
/// the item has no date). Feed `updated` is the newest item date (or now).
pub fn atom(feed_title: &str, items: &[Item]) -> String {
    let updated = items
        .iter()
        .filter_map(|i| i.pub_date)
        .max()
        .unwrap_or_else(Utc::now);
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    s.push_str(&format!("<title>{}</title>\n", xml_escape(feed_title)));
    s.push_str("<id>urn:yuqing:test-feed</id>\n");
    s.push_str(&format!("<updated>{}</updated>\n", updated.to_rfc3339()));
    s.push_str("<link href=\"https://news.example/\"/>\n");
    s.push_str("<author><name>yuqing test</name></author>\n");
    for it in items {
        s.push_str("<entry>\n");
        s.push_str(&format!("  <id>{}</id>\n", xml_escape(&it.guid)));
        s.push_str(&format!(
            "  <title type=\"text\">{}</title>\n",
            xml_escape(&it.title)
        ));
        s.push_str(&format!(
            "  <link rel=\"alternate\" href=\"{}\"/>\n",
            xml_escape(&it.link)
        ));
        s.push_str(&format!(
            "  <summary type=\"text\">{}</summary>\n",
            xml_escape(&it.description)
        ));
        if let Some(d) = it.pub_date {
            s.push_str(&format!("  <published>{}</published>\n", d.to_rfc3339()));
            s.push_str(&format!("  <updated>{}</updated>\n", d.to_rfc3339()));
        }
        s.push_str("</entry>\n");
    }
    s.push_str("</feed>\n");
    s
}
