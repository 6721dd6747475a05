//! Fake webhook receivers on 127.0.0.1:0, one per platform (Feishu, DingTalk, WeCom, Slack,
//! the generic JSON webhook). Each checks the URL's key and the platform's signature the way
//! the platform does, answers a wrong one with the platform's own error shape, records what it
//! accepted, and can be told to fail the next requests (502, 429 with Retry-After, a
//! rate-limit code, a rejected message, an Apache-style 404 that echoes the request path).
//!
//! The signature checks are written here from each platform's documentation, apart from the
//! code under test, so a wrong scheme in the channel fails the test.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Feishu,
    DingTalk,
    WeCom,
    Slack,
    Webhook,
}

/// What the receiver does with the next request instead of its normal checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 502 Bad Gateway from a proxy in front of the platform.
    BadGateway,
    /// HTTP 429 with `Retry-After: seconds`.
    TooManyRequests(u64),
    /// The platform's own rate-limit error code (Slack and the generic webhook: 429 without
    /// Retry-After).
    RateLimitCode,
    /// The platform refuses the message itself (a malformed payload).
    Rejected,
    /// An Apache-style 404 page quoting the request path and query, keys and all.
    EchoPath404,
}

/// One request the receiver accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub raw: String,
    pub body: Value,
}

struct Inner {
    failures: VecDeque<Failure>,
    accepted: Vec<Received>,
    refused: usize,
}

struct Shared {
    platform: Platform,
    key: String,
    secret: Option<String>,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FakeReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeReceiver {
    /// A receiver that accepts requests carrying `key` in the URL and, when `secret` is set,
    /// the platform's signature made with it.
    pub async fn start(platform: Platform, key: &str, secret: Option<&str>) -> FakeReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("FakeReceiver: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("FakeReceiver: local_addr");
        let shared = Arc::new(Shared {
            platform,
            key: key.to_string(),
            secret: secret.map(str::to_string),
            inner: Mutex::new(Inner {
                failures: VecDeque::new(),
                accepted: Vec::new(),
                refused: 0,
            }),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeReceiver { addr, shared, task }
    }

    /// The webhook URL with the right key.
    pub fn url(&self) -> String {
        self.url_with_key(&self.shared.key)
    }

    /// The webhook URL with some key, right or wrong.
    pub fn url_with_key(&self, key: &str) -> String {
        let base = format!("http://{}", self.addr);
        match self.shared.platform {
            Platform::Feishu => format!("{base}/open-apis/bot/v2/hook/{key}"),
            Platform::DingTalk => format!("{base}/robot/send?access_token={key}"),
            Platform::WeCom => format!("{base}/cgi-bin/webhook/send?key={key}"),
            Platform::Slack => format!("{base}/services/T0TEAM/B0HOOK/{key}"),
            Platform::Webhook => format!("{base}/hooks/{key}"),
        }
    }

    /// The next requests fail this way, in order, before any other check.
    pub fn fail_next(&self, failure: Failure) {
        self.shared.lock().failures.push_back(failure);
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.shared.lock().accepted.clone()
    }

    /// The one request accepted so far.
    pub fn only(&self) -> Received {
        let accepted = self.accepted();
        assert_eq!(accepted.len(), 1, "expected exactly one delivery");
        accepted.into_iter().next().unwrap()
    }

    /// Requests refused for a wrong key or signature.
    pub fn refused(&self) -> usize {
        self.shared.lock().refused
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn text_reply(status: StatusCode, body: &str) -> Response {
    (status, [("content-type", "text/plain")], body.to_string()).into_response()
}

fn query(uri: &Uri) -> HashMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://fake{uri}")).expect("a request URI");
    url.query_pairs().into_owned().collect()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let failure = shared.lock().failures.pop_front();
    if let Some(failure) = failure {
        return fail(shared.platform, failure, &path_and_query);
    }
    let raw = String::from_utf8_lossy(&body).into_owned();
    let parsed: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let refusal = check(&shared, &uri, &headers, &raw, &parsed);
    if let Some(refusal) = refusal {
        shared.lock().refused += 1;
        return refusal;
    }
    shared.lock().accepted.push(Received {
        path_and_query,
        headers,
        raw,
        body: parsed,
    });
    match shared.platform {
        Platform::Feishu => json_reply(
            StatusCode::OK,
            json!({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}),
        ),
        Platform::DingTalk | Platform::WeCom => {
            json_reply(StatusCode::OK, json!({"errcode": 0, "errmsg": "ok"}))
        }
        Platform::Slack => text_reply(StatusCode::OK, "ok"),
        Platform::Webhook => text_reply(StatusCode::NO_CONTENT, ""),
    }
}

/// The platform's checks of the key and the signature; the platform's refusal if one fails.
fn check(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    raw: &str,
    body: &Value,
) -> Option<Response> {
    let q = query(uri);
    let last_segment = uri.path().rsplit('/').next().unwrap_or_default();
    match shared.platform {
        Platform::Feishu => {
            if last_segment != shared.key {
                return Some(json_reply(
                    StatusCode::OK,
                    json!({"code": 19001, "data": {}, "msg": "param invalid: incoming webhook access token invalid"}),
                ));
            }
            let secret = shared.secret.as_ref()?;
            let timestamp = body["timestamp"].as_str().unwrap_or_default();
            let expected = b64(&hmac_sha256(
                format!("{timestamp}\n{secret}").as_bytes(),
                b"",
            ));
            (body["sign"].as_str() != Some(expected.as_str())).then(|| {
                json_reply(
                    StatusCode::OK,
                    json!({"code": 19021, "data": {}, "msg": "sign match fail or timestamp is not within one hour from current time"}),
                )
            })
        }
        Platform::DingTalk => {
            if q.get("access_token") != Some(&shared.key) {
                return Some(json_reply(
                    StatusCode::OK,
                    json!({"errcode": 300001, "errmsg": "token is not exist"}),
                ));
            }
            let secret = shared.secret.as_ref()?;
            let timestamp = q.get("timestamp").cloned().unwrap_or_default();
            let expected = b64(&hmac_sha256(
                secret.as_bytes(),
                format!("{timestamp}\n{secret}").as_bytes(),
            ));
            (q.get("sign") != Some(&expected) || timestamp.len() != 13).then(|| {
                json_reply(
                    StatusCode::OK,
                    json!({"errcode": 310000, "errmsg": "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}),
                )
            })
        }
        Platform::WeCom => (q.get("key") != Some(&shared.key)).then(|| {
            json_reply(
                StatusCode::OK,
                json!({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1_abc], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=93000"}),
            )
        }),
        Platform::Slack => (last_segment != shared.key)
            .then(|| text_reply(StatusCode::FORBIDDEN, "invalid_token")),
        Platform::Webhook => {
            if last_segment != shared.key {
                return Some(text_reply(StatusCode::NOT_FOUND, "no such hook"));
            }
            let secret = shared.secret.as_ref()?;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let timestamp = header("x-yuqing-timestamp");
            let mut signed = format!("{timestamp}.").into_bytes();
            signed.extend_from_slice(raw.as_bytes());
            let expected = format!(
                "sha256={}",
                hmac_sha256(secret.as_bytes(), &signed)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            (header("x-yuqing-signature") != expected)
                .then(|| text_reply(StatusCode::UNAUTHORIZED, "bad signature"))
        }
    }
}

fn fail(platform: Platform, failure: Failure, path_and_query: &str) -> Response {
    match failure {
        Failure::BadGateway => text_reply(
            StatusCode::BAD_GATEWAY,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
        Failure::TooManyRequests(seconds) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", seconds.to_string())],
            "rate_limited",
        )
            .into_response(),
        Failure::EchoPath404 => (
            StatusCode::NOT_FOUND,
            [("content-type", "text/html")],
            format!(
                "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\"><html><head><title>404 Not \
                 Found</title></head><body><h1>Not Found</h1><p>The requested URL \
                 {path_and_query} was not found on this server.</p></body></html>"
            ),
        )
            .into_response(),
        Failure::RateLimitCode => match platform {
            Platform::Feishu => json_reply(
                StatusCode::OK,
                json!({"code": 11232, "data": {}, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]"}),
            ),
            Platform::DingTalk => json_reply(
                StatusCode::OK,
                json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
            ),
            Platform::WeCom => json_reply(
                StatusCode::OK,
                json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
            ),
            Platform::Slack | Platform::Webhook => {
                text_reply(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            }
        },
        Failure::Rejected => match platform {
            Platform::Feishu => json_reply(
                StatusCode::BAD_REQUEST,
                json!({"code": 19002, "data": {}, "msg": "params error, msg_type need"}),
            ),
            Platform::DingTalk => json_reply(
                StatusCode::OK,
                json!({"errcode": 40035, "errmsg": "缺少参数 json"}),
            ),
            Platform::WeCom => json_reply(
                StatusCode::OK,
                json!({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}),
            ),
            Platform::Slack => text_reply(StatusCode::BAD_REQUEST, "invalid_blocks"),
            Platform::Webhook => text_reply(StatusCode::BAD_REQUEST, "unreadable payload"),
        },
    }
}
