//! DingTalk (钉钉) group robot.
//!
//! With a signing secret (加签), the URL carries `timestamp` (milliseconds) and
//! `sign = urlencode(base64(HmacSHA256(key = secret, message = timestamp + "\n" + secret)))`.
//!
//! DingTalk only @-mentions people from `text` and `markdown` messages, never from an
//! `actionCard`. So a page with targets (the tier's mobiles) is sent as `markdown`, with
//! `at.atMobiles` and `@138…` in the text and the console link as a Markdown link; a message
//! without targets is an `actionCard` whose button opens the incident in the console, or plain
//! `markdown` when the console has no public URL. `errcode` ≠ 0 is a failed delivery.

use serde_json::{json, Value};

use super::channel::{Channel, Delivered, Message, SendError, SendFuture};
use super::webhooks::{
    base64, cut_at_line, escape_within, hmac_sha256, safe_link, trim_bytes, trim_chars, CodeClass,
    Endpoint, View, POSSIBLE_REPEAT,
};

/// DingTalk refuses messages over 20 KB; these budgets keep inside it.
const FIELD_BYTES: usize = 1_000;
const POST_TITLE_BYTES: usize = 600;
const BODY_BYTES: usize = 15_000;

pub struct DingTalk {
    endpoint: Endpoint,
}

impl DingTalk {
    pub(crate) fn new(endpoint: Endpoint) -> DingTalk {
        DingTalk { endpoint }
    }

    async fn deliver(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = body(&View::of(message), message.targets(&self.endpoint.name));
        let mut url = self.endpoint.url.clone();
        if let Some(secret) = &self.endpoint.secret {
            let timestamp = self.endpoint.now().timestamp_millis().to_string();
            // append_pair URL-encodes the base64 (+ / =), as DingTalk requires.
            url.query_pairs_mut()
                .append_pair("timestamp", &timestamp)
                .append_pair("sign", &sign(&timestamp, secret));
        }
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let answer = self.endpoint.post(url, bytes, &[]).await?;
        self.endpoint.errcode_answer(&answer, classify)
    }
}

impl Channel for DingTalk {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn kind(&self) -> &'static str {
        "dingtalk"
    }

    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// DingTalk's signature, before URL-encoding: the key is the secret, the message is
/// `timestamp + "\n" + secret`.
pub fn sign(timestamp_ms: &str, secret: &str) -> String {
    base64(&hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    ))
}

/// What DingTalk's robot codes mean: 130101 is "send too fast" (20 a minute); 310000 is a
/// security setting that failed (signature, keyword, IP), 300001 and 300005 an unknown or
/// revoked access token, which an operator fixes.
pub(crate) fn classify(code: i64) -> CodeClass {
    match code {
        130101 | 130102 => CodeClass::RateLimited,
        310000 | 300001 | 300005 => CodeClass::Credentials,
        _ => CodeClass::Rejected,
    }
}

/// Escapes a character for DingTalk's Markdown: backslash before Markdown punctuation, HTML
/// entities for what would start a tag or an entity.
pub(crate) fn escape_md(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '!'
        | '|' | '~' => {
            out.push('\\');
            out.push(c);
        }
        // A line break in a value would let it start a heading or list of its own.
        '\n' | '\r' => out.push(' '),
        c => out.push(c),
    }
}

/// A mobile number to @: digits, optionally with a leading + and dashes.
fn mobile(target: &str) -> Option<&str> {
    let t = target.trim();
    let ok = t.chars().any(|c| c.is_ascii_digit())
        && t.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '-' || (c == '+' && i == 0));
    ok.then_some(t)
}

/// The Markdown text shared by both message types: the facts, the posts and any body.
pub(crate) fn markdown_text(view: &View, escape: fn(char, &mut String)) -> String {
    let md = |text: &str, max| escape_within(text, max, escape);
    let mut out = format!("### {}\n\n", md(&view.headline, 300));
    if view.possible_repeat {
        out.push_str(&format!("> {}\n\n", md(POSSIBLE_REPEAT, FIELD_BYTES)));
    }
    for (label, value) in &view.fields {
        out.push_str(&format!("**{label}**: {}\n\n", md(value, FIELD_BYTES)));
    }
    if !view.posts.is_empty() {
        out.push_str("**Top posts**\n\n");
        for (i, p) in view.posts.iter().enumerate() {
            let title = md(&p.title, POST_TITLE_BYTES);
            let title = match p.url.as_deref().and_then(safe_link) {
                Some(url) => format!("[{title}]({url})"),
                None => title,
            };
            out.push_str(&format!(
                "{}. {} {title} (score {:.1})\n",
                i + 1,
                md(&format!("[{}]", p.source), 200),
                p.score
            ));
        }
        out.push('\n');
    }
    match (&view.markdown, view.incident) {
        (Some(markdown), _) => out.push_str(trim_bytes(markdown, BODY_BYTES)),
        (None, None) => {
            let body = view.plain.split_once('\n').map_or("", |(_, b)| b);
            // Line by line, so the body keeps its lines while no line can become markup.
            let mut lines = String::new();
            for line in body.lines() {
                lines.push_str(&md(line, BODY_BYTES));
                lines.push_str("\n\n");
                if lines.len() > BODY_BYTES {
                    break;
                }
            }
            out.push_str(&cut_at_line(&lines, BODY_BYTES));
        }
        (None, Some(_)) => {}
    }
    cut_at_line(&out, BODY_BYTES + 2 * FIELD_BYTES)
}

/// The request body for a message, without the signature.
pub(crate) fn body(view: &View, targets: &[String]) -> Value {
    let title = trim_chars(&view.headline, 60);
    let mobiles: Vec<&str> = targets.iter().filter_map(|t| mobile(t)).collect();
    let mut text = markdown_text(view, escape_md);
    let link = view.console_link.as_deref().and_then(safe_link);
    if mobiles.is_empty() {
        if let Some(link) = link {
            return json!({
                "msgtype": "actionCard",
                "actionCard": {
                    "title": title,
                    "text": text,
                    "btnOrientation": "0",
                    "btns": [{"title": "认领 / Acknowledge in console", "actionURL": link}],
                },
            });
        }
    } else {
        if let Some(link) = link {
            text.push_str(&format!("\n[认领 / Acknowledge in console]({link})\n"));
        }
        let at: Vec<String> = mobiles.iter().map(|m| format!("@{m}")).collect();
        text.push_str(&format!("\n{}", at.join(" ")));
    }
    json!({
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"atMobiles": mobiles, "isAtAll": false},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_is_hmac_keyed_by_the_secret_over_timestamp_and_secret() {
        // Computed independently with Python's hmac module:
        // base64(hmac(b"SEC123secret", b"1700000000000\nSEC123secret", sha256)).
        assert_eq!(
            sign("1700000000000", "SEC123secret"),
            "3gSjG8wxbW2rRw51fNqz08QGLWqYGdvZ6vNC+Wn9E5g="
        );
    }

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify(130101), CodeClass::RateLimited);
        assert_eq!(classify(310000), CodeClass::Credentials);
        assert_eq!(classify(40035), CodeClass::Rejected);
    }

    #[test]
    fn only_phone_numbers_are_mentioned() {
        assert_eq!(mobile("13800000000"), Some("13800000000"));
        assert_eq!(mobile("+86-138"), Some("+86-138"));
        assert_eq!(mobile("all"), None);
        assert_eq!(mobile("138 [x](y)"), None);
    }
}
