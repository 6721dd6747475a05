//! Feishu (Lark) custom bot: an interactive card per message.
//!
//! The card shows the brand and state in its coloured header, why it opened, severity, topic
//! and the top three posts as links, @-mentions the paged tier's Feishu user ids, and carries
//! a button to the incident in the web console, where a logged-in responder acknowledges it.
//!
//! With a signing secret (签名校验), each request carries `timestamp` (seconds) and
//! `sign = base64(HmacSHA256(key = timestamp + "\n" + secret, message = ""))`. Feishu answers
//! HTTP 200 with `code` (or the older `StatusCode`) ≠ 0 on failure; those are failed
//! deliveries, classified by [`classify`].

use serde_json::{json, Value};

use super::channel::{Channel, Delivered, Message, SendError, SendFuture};
use super::webhooks::{
    base64, escape_within, hmac_sha256, safe_link, trim_chars, CodeClass, Endpoint, Tone, View,
    POSSIBLE_REPEAT,
};

/// Feishu refuses cards over about 30 KB; the text budgets below keep well inside it.
const FIELD_BYTES: usize = 1_000;
const POST_TITLE_BYTES: usize = 600;
const BODY_BYTES: usize = 20_000;
const HEADER_CHARS: usize = 150;

pub struct Feishu {
    endpoint: Endpoint,
}

impl Feishu {
    pub(crate) fn new(endpoint: Endpoint) -> Feishu {
        Feishu { endpoint }
    }

    async fn deliver(&self, message: &Message) -> Result<Delivered, SendError> {
        let mut body = card(&View::of(message), message.targets(&self.endpoint.name));
        if let Some(secret) = &self.endpoint.secret {
            let timestamp = self.endpoint.now().timestamp().to_string();
            body["timestamp"] = json!(timestamp);
            body["sign"] = json!(sign(&timestamp, secret));
        }
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let answer = self
            .endpoint
            .post(self.endpoint.url.clone(), bytes, &[])
            .await?;
        if answer.status.is_server_error() || answer.status.as_u16() == 429 {
            return Err(self.endpoint.by_status(&answer).expect("a failure status"));
        }
        if let Ok(reply) = serde_json::from_str::<Value>(&answer.body) {
            let code = reply
                .get("code")
                .or_else(|| reply.get("StatusCode"))
                .and_then(Value::as_i64);
            if let Some(code) = code.filter(|&c| c != 0) {
                let msg = reply
                    .get("msg")
                    .or_else(|| reply.get("StatusMessage"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(self.endpoint.by_code(code, msg, classify(code, msg)));
            }
            if code == Some(0) && answer.status.is_success() {
                return Ok(Delivered::default());
            }
        }
        match self.endpoint.by_status(&answer) {
            Some(failure) => Err(failure),
            None => Err(SendError::transient(
                self.endpoint
                    .failure("answer without a code, delivery unknown", &answer.body),
            )),
        }
    }
}

impl Channel for Feishu {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn kind(&self) -> &'static str {
        "feishu"
    }

    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// Feishu's signature: the key is `timestamp + "\n" + secret`, the message is empty.
pub fn sign(timestamp: &str, secret: &str) -> String {
    base64(&hmac_sha256(
        format!("{timestamp}\n{secret}").as_bytes(),
        b"",
    ))
}

/// What Feishu's custom-bot codes mean: 9499 and 11232 are its rate limits (5 a second, 100
/// a minute); 19021 (signature or timestamp), 19022 (IP not allowed), 19024 (keyword missing)
/// and 19001 about the access token are the bot's settings, which an operator fixes.
pub(crate) fn classify(code: i64, msg: &str) -> CodeClass {
    match code {
        9499 | 11232 => CodeClass::RateLimited,
        19021 | 19022 | 19024 => CodeClass::Credentials,
        19001 if msg.contains("token") => CodeClass::Credentials,
        _ => CodeClass::Rejected,
    }
}

/// Escapes a character for `lark_md`: HTML entities for what would start a tag (`<at>`), an
/// entity or Markdown (links, emphasis), so hostile post text reads as text.
fn escape_md(c: char, out: &mut String) {
    match c {
        '&' | '<' | '>' | '*' | '_' | '~' | '[' | ']' | '(' | ')' | '`' | '#' | '\\' | '|'
        | '!' => {
            out.push_str(&format!("&#{};", c as u32));
        }
        c => out.push(c),
    }
}

fn md(text: &str, max: usize) -> String {
    escape_within(text, max, escape_md)
}

/// A Feishu user id to @: `ou_…`, a user id, or `all`. Anything else is left out rather than
/// let it change the markup.
fn mention(target: &str) -> Option<String> {
    let ok = !target.is_empty()
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| format!("<at id={target}></at>"))
}

fn lark_md(content: String) -> Value {
    json!({"tag": "div", "text": {"tag": "lark_md", "content": content}})
}

/// The interactive card for a message, without the signature.
pub(crate) fn card(view: &View, targets: &[String]) -> Value {
    let template = match view.tone {
        Tone::Alarm => "red",
        Tone::Warning => "orange",
        Tone::Good => "green",
        Tone::Info => "blue",
    };
    let mut elements = Vec::new();
    if view.possible_repeat {
        elements.push(lark_md(md(POSSIBLE_REPEAT, FIELD_BYTES)));
    }
    if !view.fields.is_empty() {
        let fields: Vec<Value> = view
            .fields
            .iter()
            .map(|(label, value)| {
                json!({
                    "is_short": matches!(*label, "Severity" | "Negative posts" | "Owner" | "By"),
                    "text": {"tag": "lark_md", "content": format!("**{label}**\n{}", md(value, FIELD_BYTES))},
                })
            })
            .collect();
        elements.push(json!({"tag": "div", "fields": fields}));
    }
    if !view.posts.is_empty() {
        let mut text = String::from("**Top posts**");
        for (i, p) in view.posts.iter().enumerate() {
            let title = md(&p.title, POST_TITLE_BYTES);
            let title = match p.url.as_deref().and_then(safe_link) {
                Some(url) => format!("[{title}]({url})"),
                None => title,
            };
            let terms = if p.terms.is_empty() {
                String::new()
            } else {
                format!(" · {}", md(&p.terms.join(", "), FIELD_BYTES / 2))
            };
            text.push_str(&format!(
                "\n{}. {} {title} (score {:.1}{terms})",
                i + 1,
                md(&format!("[{}]", p.source), 200),
                p.score
            ));
        }
        elements.push(lark_md(text));
    }
    match (&view.markdown, view.incident) {
        // A digest or report is our own Markdown: its producer escaped what it quotes.
        (Some(markdown), _) => elements.push(lark_md(
            super::webhooks::trim_bytes(markdown, BODY_BYTES).to_string(),
        )),
        (None, None) => {
            let body = view.plain.split_once('\n').map_or("", |(_, b)| b);
            elements.push(lark_md(md(body, BODY_BYTES)));
        }
        (None, Some(_)) => {}
    }
    let mentions: Vec<String> = targets.iter().filter_map(|t| mention(t)).collect();
    if !mentions.is_empty() {
        elements.push(lark_md(mentions.join(" ")));
    }
    if let Some(link) = view.console_link.as_deref().and_then(safe_link) {
        elements.push(json!({
            "tag": "action",
            "actions": [{
                "tag": "button",
                "text": {"tag": "plain_text", "content": "认领 / Acknowledge in console"},
                "type": "primary",
                "url": link,
            }],
        }));
    }
    json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {
                "template": template,
                "title": {"tag": "plain_text", "content": trim_chars(&view.headline, HEADER_CHARS)},
            },
            "elements": elements,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_is_hmac_keyed_by_timestamp_and_secret_over_nothing() {
        // Worked out independently: key "1700000000\nsecret", empty message, HMAC-SHA256,
        // base64 (computed with Python's hmac module).
        assert_eq!(
            sign("1700000000", "secret"),
            "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA="
        );
    }

    #[test]
    fn rate_limits_are_transient_and_bad_settings_not_permanent() {
        assert_eq!(classify(11232, "frequency limited"), CodeClass::RateLimited);
        assert_eq!(classify(19021, "sign match fail"), CodeClass::Credentials);
        assert_eq!(classify(19002, "params error"), CodeClass::Rejected);
    }

    #[test]
    fn hostile_text_cannot_open_tags_or_links() {
        let mut out = String::new();
        for c in "<at id=all></at>[x](http://evil)".chars() {
            escape_md(c, &mut out);
        }
        assert!(
            !out.contains('<') && !out.contains('[') && !out.contains('('),
            "{out}"
        );
        assert_eq!(mention("ou_abc-1"), Some("<at id=ou_abc-1></at>".into()));
        assert_eq!(mention("x></at><at id=all"), None);
    }
}
