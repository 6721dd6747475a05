//! Fake Telegram Bot API server on 127.0.0.1 that real teloxide 0.17 clients
//! can talk to (`Bot::set_api_url`).
//!
//! Besides sendMessage it records every call (`calls`), the photos of sendPhoto with their
//! bytes (`photos`), serves callback_query updates (`push_callback`), can hand an update out
//! again under its old id (`push_update_with_id`, as Telegram does after a crash), and fails
//! on demand: every method with 502 or 429 (`set_fail_all`), or a URL nobody listens on
//! (`refused_url`).
//!
//! Wire format notes (teloxide-core 0.13): requests are `POST
//! {api_url}/bot{token}/{Method}` where `{Method}` is the payload type name
//! (`GetMe`, `SendMessage`, `GetUpdates`, `DeleteWebhook`, ...), so method
//! names are matched case-insensitively. Bodies are JSON for almost every
//! method, multipart for uploads; form-urlencoded and query strings are also
//! accepted here.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// User id of the fake bot (`getMe`, `from` of sent messages).
pub const BOT_ID: u64 = 4242;
/// Username of the fake bot.
pub const BOT_USERNAME: &str = "yuqing_test_bot";

/// One recorded `sendMessage` call.
#[derive(Clone, Debug)]
pub struct SentMessage {
    pub chat_id: i64,
    pub text: String,
    pub parse_mode: Option<String>,
    /// All request parameters as received (JSON object).
    pub raw: Value,
}

/// One recorded `sendPhoto` call (multipart).
#[derive(Clone, Debug)]
pub struct SentPhoto {
    pub chat_id: i64,
    pub caption: Option<String>,
    /// The `photo` part's bytes, as received.
    pub bytes: Vec<u8>,
    /// The `photo` part's Content-Type.
    pub content_type: Option<String>,
    /// The other fields.
    pub raw: Value,
}

#[derive(Default)]
struct TgState {
    photos: Vec<SentPhoto>,
    /// `Some(status)` while every method fails (502, 429 with retry_after…).
    fail_all: Option<u16>,
    next_update_id: i64,
    next_message_id: i64,
    /// Unconfirmed updates (each has `update_id`).
    updates: VecDeque<Value>,
    sent: Vec<SentMessage>,
    /// lower-case method name -> parameters of every call, in order.
    calls: HashMap<String, Vec<Value>>,
    /// `Some(status)` while sendMessage is made to fail.
    fail_send: Option<u16>,
    fail_status: u16,
    tokens: Vec<String>,
    /// Every method answers with an Apache-style 404 page that quotes the request path,
    /// token and all, as a misconfigured reverse proxy does.
    echo_404: bool,
}

struct Shared {
    state: Mutex<TgState>,
    /// Signalled whenever an update is pushed or a message/call is recorded.
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TgState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Fake Bot API server. The server task is aborted when dropped.
pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeTelegram {
    /// Binds 127.0.0.1:0 and starts serving. Must be called inside a tokio runtime.
    pub async fn start() -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("FakeTelegram: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("FakeTelegram: local_addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(TgState {
                next_update_id: 1,
                next_message_id: 1,
                fail_status: 502,
                ..TgState::default()
            }),
            changed: Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTelegram { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// All recorded sendMessage calls, in order (failed ones excluded).
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Recorded sendMessage calls to `chat_id`, in order.
    pub fn sent_to(&self, chat_id: i64) -> Vec<SentMessage> {
        self.sent()
            .into_iter()
            .filter(|m| m.chat_id == chat_id)
            .collect()
    }

    /// Wait until at least `n` messages are recorded and return all of them.
    /// Panics on timeout, listing what was sent.
    pub async fn wait_for_sent(&self, n: usize, timeout: Duration) -> Vec<SentMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let sent = self.sent();
            if sent.len() >= n {
                return sent;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let sent = self.sent();
                if sent.len() >= n {
                    return sent;
                }
                panic!(
                    "FakeTelegram: timed out after {timeout:?} waiting for {n} sent message(s); \
                     got {}:\n{}",
                    sent.len(),
                    describe(&sent)
                );
            }
        }
    }

    /// Wait for the first recorded message (in send order, including ones
    /// sent before the call) matching `pred`. Panics on timeout, listing all.
    pub async fn wait_for_sent_matching(
        &self,
        pred: impl Fn(&SentMessage) -> bool,
        timeout: Duration,
    ) -> SentMessage {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(m) = self.sent().into_iter().find(|m| pred(m)) {
                return m;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let sent = self.sent();
                if let Some(m) = sent.iter().find(|m| pred(m)) {
                    return m.clone();
                }
                panic!(
                    "FakeTelegram: timed out after {timeout:?} waiting for a matching sent \
                     message; {} sent:\n{}",
                    sent.len(),
                    describe(&sent)
                );
            }
        }
    }

    /// Enqueue an Update with a text Message from user `from_user_id`
    /// (first_name/username `user<id>`) in `chat_id`. Negative chat ids are a
    /// supergroup titled "crisis"; positive ones a private chat. Texts starting
    /// with '/' carry a `bot_command` entity like real Telegram. Returns the
    /// update_id.
    pub fn push_text(&self, chat_id: i64, from_user_id: u64, text: &str) -> i64 {
        let mut st = self.shared.lock();
        let message_id = st.next_message_id;
        st.next_message_id += 1;
        let mut message = json!({
            "message_id": message_id,
            "date": chrono::Utc::now().timestamp(),
            "chat": chat_json(chat_id),
            "from": {
                "id": from_user_id,
                "is_bot": false,
                "first_name": format!("user{from_user_id}"),
                "username": format!("user{from_user_id}"),
            },
            "text": text,
        });
        if let Some(entity) = command_entity(text) {
            message["entities"] = json!([entity]);
        }
        let id = push_locked(&mut st, json!({ "message": message }));
        drop(st);
        self.shared.changed.notify_waiters();
        id
    }

    /// Enqueue an arbitrary update body (e.g. `{"callback_query": {...}}`);
    /// `update_id` is assigned and returned.
    pub fn push_update(&self, update_without_id: Value) -> i64 {
        let id = push_locked(&mut self.shared.lock(), update_without_id);
        self.shared.changed.notify_waiters();
        id
    }

    /// Number of calls of `method` (case-insensitive), including failed ones.
    pub fn method_calls(&self, method: &str) -> usize {
        self.calls(method).len()
    }

    /// Parameters of every call of `method` (case-insensitive), in order.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.shared
            .lock()
            .calls
            .get(&method.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// While true, sendMessage answers with the failure status (HTTP 502 by
    /// default, see [`Self::set_fail_send_status`]) and is not recorded as sent.
    ///
    /// NOTE: teloxide sleeps 10 s on any 5xx response before returning the
    /// error, so a 502 costs each attempt 10 s of wall time.
    pub fn set_fail_send(&self, fail: bool) {
        let mut st = self.shared.lock();
        st.fail_send = if fail { Some(st.fail_status) } else { None };
    }

    /// Status used by [`Self::set_fail_send`] (default 502). Use e.g. 400 or
    /// 429 for a failure teloxide reports immediately (429 carries
    /// `retry_after: 1`, i.e. `RequestError::RetryAfter`).
    pub fn set_fail_send_status(&self, status: u16) {
        StatusCode::from_u16(status).expect("FakeTelegram: invalid HTTP status");
        let mut st = self.shared.lock();
        st.fail_status = status;
        if st.fail_send.is_some() {
            st.fail_send = Some(status);
        }
    }

    /// Distinct bot tokens seen in request URLs, in first-seen order.
    pub fn tokens_seen(&self) -> Vec<String> {
        self.shared.lock().tokens.clone()
    }

    /// Enqueue a button press (`callback_query`) by `from_user_id` on message `message_id` in
    /// `chat_id`, with callback `data`. Returns the update_id.
    pub fn push_callback(
        &self,
        chat_id: i64,
        message_id: i64,
        from_user_id: u64,
        data: &str,
    ) -> i64 {
        let query = json!({
            "id": format!("cb{from_user_id}-{message_id}-{data}"),
            "from": {
                "id": from_user_id,
                "is_bot": false,
                "first_name": format!("user{from_user_id}"),
                "username": format!("user{from_user_id}"),
            },
            "message": {
                "message_id": message_id,
                "date": chrono::Utc::now().timestamp(),
                "chat": chat_json(chat_id),
                "from": bot_user(),
                "text": "alert",
            },
            "chat_instance": "1",
            "data": data,
        });
        self.push_update(json!({ "callback_query": query }))
    }

    /// Enqueue an update under a given update_id: Telegram handing out again an update it was
    /// never told was handled (the bot died before its next getUpdates).
    pub fn push_update_with_id(&self, update_id: i64, mut update_without_id: Value) {
        update_without_id["update_id"] = json!(update_id);
        let mut st = self.shared.lock();
        // Later updates get later ids, as on Telegram.
        st.next_update_id = st.next_update_id.max(update_id + 1);
        st.updates.push_back(update_without_id);
        drop(st);
        self.shared.changed.notify_waiters();
    }

    /// While `Some(status)`, every method answers with it (429 carries `retry_after: 1`) and
    /// nothing is recorded as sent.
    pub fn set_fail_all(&self, status: Option<u16>) {
        if let Some(s) = status {
            StatusCode::from_u16(s).expect("FakeTelegram: invalid HTTP status");
        }
        self.shared.lock().fail_all = status;
    }

    /// Every method answers with an HTML 404 page quoting the request path (and the token in it).
    pub fn set_echo_404(&self, echo: bool) {
        self.shared.lock().echo_404 = echo;
    }

    /// All recorded sendPhoto calls, in order.
    pub fn photos(&self) -> Vec<SentPhoto> {
        self.shared.lock().photos.clone()
    }

    /// Wait until `method` has been called at least `n` times; returns all its calls.
    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls = self.calls(method);
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let calls = self.calls(method);
                if calls.len() >= n {
                    return calls;
                }
                panic!(
                    "FakeTelegram: timed out after {timeout:?} waiting for {n} {method} call(s); got {}: {calls:?}",
                    calls.len()
                );
            }
        }
    }

    /// A Bot API URL on 127.0.0.1 where nothing listens: every request is refused.
    pub async fn refused_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        drop(listener);
        format!("http://{addr}")
    }

    /// Number of queued (unconfirmed) updates.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn describe(sent: &[SentMessage]) -> String {
    if sent.is_empty() {
        return "  (nothing)".to_string();
    }
    sent.iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "  #{i} chat_id={} parse_mode={:?} text={:?}",
                m.chat_id, m.parse_mode, m.text
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn push_locked(st: &mut TgState, mut update: Value) -> i64 {
    let id = st.next_update_id;
    st.next_update_id += 1;
    if let Value::Object(o) = &mut update {
        o.insert("update_id".into(), json!(id));
    } else {
        panic!("FakeTelegram: update must be a JSON object, got {update}");
    }
    st.updates.push_back(update);
    id
}

fn bot_user() -> Value {
    json!({
        "id": BOT_ID,
        "is_bot": true,
        "first_name": "yuqing",
        "username": BOT_USERNAME,
    })
}

fn me() -> Value {
    json!({
        "id": BOT_ID,
        "is_bot": true,
        "first_name": "yuqing",
        "username": BOT_USERNAME,
        "can_join_groups": true,
        "can_read_all_group_messages": true,
        "supports_inline_queries": false,
        "can_connect_to_business": false,
        "has_main_web_app": false,
    })
}

fn chat_json(chat_id: i64) -> Value {
    if chat_id > 0 {
        json!({
            "id": chat_id,
            "type": "private",
            "first_name": format!("user{chat_id}"),
            "username": format!("user{chat_id}"),
        })
    } else {
        json!({ "id": chat_id, "type": "supergroup", "title": "crisis" })
    }
}

fn command_entity(text: &str) -> Option<Value> {
    if !text.starts_with('/') {
        return None;
    }
    let word = text.split_whitespace().next().unwrap_or("");
    let length: usize = word.chars().map(char::len_utf16).sum();
    Some(json!({ "type": "bot_command", "offset": 0, "length": length }))
}

fn ok(result: Value) -> Response {
    json_response(StatusCode::OK, json!({ "ok": true, "result": result }))
}

fn error(status: u16, description: &str) -> Response {
    let mut body = json!({ "ok": false, "error_code": status, "description": description });
    if status == 429 {
        body["parameters"] = json!({ "retry_after": 1 });
    }
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("build response")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    let mut u = reqwest::Url::parse("http://127.0.0.1/").expect("static url");
    u.set_query(Some(q));
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A multipart file part: its bytes and Content-Type.
#[derive(Clone, Debug)]
struct FilePart {
    name: String,
    bytes: Vec<u8>,
    content_type: Option<String>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a multipart body byte by byte, so binary file parts arrive intact: text fields go
/// into `out`, file parts (those with a filename) are returned.
fn parse_multipart(content_type: &str, body: &[u8], out: &mut Map<String, Value>) -> Vec<FilePart> {
    let mut files = Vec::new();
    let Some(boundary) = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
    else {
        return files;
    };
    let delimiter = format!("--{}", boundary.trim_matches('"')).into_bytes();
    let mut rest = body;
    while let Some(start) = find(rest, &delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_part = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let end = find(rest_part, &delimiter).unwrap_or(rest_part.len());
        let part = &rest_part[..end];
        let Some(head_end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..head_end]).into_owned();
        let content = &part[head_end + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let attr = |key: &str| {
            head.lines().find_map(|line| {
                let lower = line.to_ascii_lowercase();
                if !lower.starts_with("content-disposition") {
                    return None;
                }
                let pattern = format!("{key}=\"");
                let idx = lower
                    .find(&format!(" {pattern}"))
                    .or_else(|| lower.find(&format!(";{pattern}")))?
                    + pattern.len()
                    + 1;
                let rest = &line[idx..];
                rest.find('"').map(|end| rest[..end].to_string())
            })
        };
        let Some(name) = attr("name") else { continue };
        if attr("filename").is_some() {
            let content_type = head.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-type")
                    .then(|| v.trim().to_string())
            });
            out.insert(
                name.clone(),
                Value::String(format!("<file of {} bytes>", content.len())),
            );
            files.push(FilePart {
                name,
                bytes: content.to_vec(),
                content_type,
            });
        } else {
            out.insert(
                name,
                Value::String(String::from_utf8_lossy(content).into_owned()),
            );
        }
    }
    files
}

/// Request parameters from the query string and the body (JSON,
/// form-urlencoded or multipart), as a JSON object.
fn parse_params(
    headers: &HeaderMap,
    body: &[u8],
    query: Option<&str>,
) -> (Map<String, Value>, Vec<FilePart>) {
    let mut map = Map::new();
    let mut files = Vec::new();
    if let Some(q) = query {
        for (k, v) in form_pairs(q) {
            map.insert(k, Value::String(v));
        }
    }
    if body.is_empty() {
        return (map, files);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("multipart/form-data") {
        files = parse_multipart(&content_type, body, &mut map);
    } else if lower.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in form_pairs(&String::from_utf8_lossy(body)) {
            map.insert(k, Value::String(v));
        }
    } else if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
        map.extend(o);
    }
    (map, files)
}

fn param_i64(p: &Map<String, Value>, key: &str) -> Option<i64> {
    match p.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn param_str(p: &Map<String, Value>, key: &str) -> Option<String> {
    match p.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn message_json(st: &mut TgState, chat_id: i64, message_id: Option<i64>, text: &str) -> Value {
    let message_id = message_id.unwrap_or_else(|| {
        let id = st.next_message_id;
        st.next_message_id += 1;
        id
    });
    json!({
        "message_id": message_id,
        "date": chrono::Utc::now().timestamp(),
        "chat": chat_json(chat_id),
        "from": bot_user(),
        "text": text,
    })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Expect /bot{token}/{method}
    let path = uri.path().trim_start_matches('/');
    let Some((first, method)) = path.split_once('/') else {
        return error(404, "Not Found");
    };
    let Some(token) = first.strip_prefix("bot") else {
        return error(404, "Not Found");
    };
    let token = percent_decode(token);
    let method = percent_decode(method).to_ascii_lowercase();
    let (params, files) = parse_params(&headers, &body, uri.query());

    let response = {
        let mut st = shared.lock();
        if !st.tokens.contains(&token) {
            st.tokens.push(token);
        }
        st.calls
            .entry(method.clone())
            .or_default()
            .push(Value::Object(params.clone()));

        if st.echo_404 {
            drop(st);
            shared.changed.notify_waiters();
            let page = format!(
                "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\"><html><head><title>404 Not Found</title></head>\
                 <body><h1>Not Found</h1><p>The requested URL {} was not found on this server.</p></body></html>",
                uri.path()
            );
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header("content-type", "text/html")
                .body(page.into())
                .expect("a valid response");
        }
        if let Some(status) = st.fail_all {
            drop(st);
            shared.changed.notify_waiters();
            return error(status, "Bad Gateway (injected by FakeTelegram)");
        }
        match method.as_str() {
            "getupdates" => None,
            "sendphoto" => {
                let chat_id = param_i64(&params, "chat_id").unwrap_or(0);
                let caption = param_str(&params, "caption");
                let photo = files.iter().find(|f| f.name == "photo");
                st.photos.push(SentPhoto {
                    chat_id,
                    caption: caption.clone(),
                    bytes: photo.map(|f| f.bytes.clone()).unwrap_or_default(),
                    content_type: photo.and_then(|f| f.content_type.clone()),
                    raw: Value::Object(params.clone()),
                });
                Some(ok(message_json(
                    &mut st,
                    chat_id,
                    None,
                    &caption.unwrap_or_default(),
                )))
            }
            "getme" => Some(ok(me())),
            "getwebhookinfo" => Some(ok(json!({
                "url": "",
                "has_custom_certificate": false,
                "pending_update_count": 0,
            }))),
            "getmycommands" => Some(ok(json!([]))),
            "sendmessage" => {
                if let Some(status) = st.fail_send {
                    Some(error(status, "Bad Gateway (injected by FakeTelegram)"))
                } else {
                    let chat_id = param_i64(&params, "chat_id").unwrap_or(0);
                    let text = param_str(&params, "text").unwrap_or_default();
                    let parse_mode = param_str(&params, "parse_mode");
                    st.sent.push(SentMessage {
                        chat_id,
                        text: text.clone(),
                        parse_mode,
                        raw: Value::Object(params.clone()),
                    });
                    Some(ok(message_json(&mut st, chat_id, None, &text)))
                }
            }
            "editmessagetext" | "editmessagereplymarkup" | "editmessagecaption" => {
                if let Some(chat_id) = param_i64(&params, "chat_id") {
                    let text = param_str(&params, "text")
                        .or_else(|| param_str(&params, "caption"))
                        .unwrap_or_default();
                    let mid = param_i64(&params, "message_id");
                    Some(ok(message_json(&mut st, chat_id, mid, &text)))
                } else {
                    // inline message edits return True
                    Some(ok(json!(true)))
                }
            }
            "sendchataction" => Some(ok(json!(true))),
            m if m.starts_with("send") || m == "forwardmessage" => {
                let chat_id = param_i64(&params, "chat_id").unwrap_or(0);
                let text = param_str(&params, "text")
                    .or_else(|| param_str(&params, "caption"))
                    .unwrap_or_default();
                Some(ok(message_json(&mut st, chat_id, None, &text)))
            }
            _ => Some(ok(json!(true))),
        }
    };
    shared.changed.notify_waiters();
    if let Some(r) = response {
        return r;
    }

    // getUpdates (long polling, capped at 1 s).
    let offset = param_i64(&params, "offset");
    let limit = param_i64(&params, "limit")
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(100) as usize;
    let wait = Duration::from_secs(param_i64(&params, "timeout").unwrap_or(0).clamp(0, 1) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let batch = {
            let mut st = shared.lock();
            match offset {
                Some(off) if off < 0 => {
                    let keep = off.unsigned_abs() as usize;
                    while st.updates.len() > keep {
                        st.updates.pop_front();
                    }
                }
                Some(off) => {
                    while st
                        .updates
                        .front()
                        .and_then(|u| u["update_id"].as_i64())
                        .is_some_and(|id| id < off)
                    {
                        st.updates.pop_front();
                    }
                }
                None => {}
            }
            st.updates.iter().take(limit).cloned().collect::<Vec<_>>()
        };
        if !batch.is_empty() {
            return ok(Value::Array(batch));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}
