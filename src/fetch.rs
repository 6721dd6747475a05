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
