//! WeCom (企业微信) group robot. Its URL's `key` is its only credential: there is no
//! signature.
//!
//! A message is sent as `markdown` (at most 4,096 bytes), with the top posts as links and a
//! link to the incident in the web console. WeCom's markdown cannot @-mention anyone through
//! `mentioned_list`, so a page with targets (the tier's WeCom user ids, or mobiles) is sent as
//! `text` instead (at most 2,048 bytes), with `mentioned_list` / `mentioned_mobile_list`: the
//! people paged are really notified, in one request, so one attempt stays one message.
//! `errcode` ≠ 0 is a failed delivery.

use serde_json::{json, Value};

use super::channel::{Channel, Delivered, Message, SendError, SendFuture};
use super::webhooks::{cut_at_line, safe_link, CodeClass, Endpoint, View, POSSIBLE_REPEAT};

const MARKDOWN_BYTES: usize = 4_096;
const TEXT_BYTES: usize = 2_048;

pub struct WeCom {
    endpoint: Endpoint,
}

impl WeCom {
    pub(crate) fn new(endpoint: Endpoint) -> WeCom {
        WeCom { endpoint }
    }

    async fn deliver(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = body(&View::of(message), message.targets(&self.endpoint.name));
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let answer = self
            .endpoint
            .post(self.endpoint.url.clone(), bytes, &[])
            .await?;
        self.endpoint.errcode_answer(&answer, classify)
    }
}

impl Channel for WeCom {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn kind(&self) -> &'static str {
        "wecom"
    }

    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// What WeCom's codes mean: 45009 is its rate limit (20 a minute); 93000 (invalid webhook
/// URL), 40001 and 40014 (invalid key) are the robot's settings, which an operator fixes.
pub(crate) fn classify(code: i64) -> CodeClass {
    match code {
        45009 => CodeClass::RateLimited,
        93000 | 40001 | 40014 => CodeClass::Credentials,
        _ => CodeClass::Rejected,
    }
}

/// Whether a target is a mobile number rather than a WeCom user id.
fn is_mobile(target: &str) -> bool {
    target.len() >= 7 && target.chars().all(|c| c.is_ascii_digit() || c == '+')
}

/// The request body for a message.
pub(crate) fn body(view: &View, targets: &[String]) -> Value {
    let targets: Vec<&str> = targets
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        let mut content = super::dingtalk::markdown_text(view, super::dingtalk::escape_md);
        if let Some(link) = view.console_link.as_deref().and_then(safe_link) {
            // Reserved before cutting, so a long alert keeps its way to act.
            let link = format!("\n[认领 / Acknowledge in console]({link})");
            content = cut_at_line(&content, MARKDOWN_BYTES.saturating_sub(link.len()));
            content.push_str(&link);
        } else {
            content = cut_at_line(&content, MARKDOWN_BYTES);
        }
        return json!({"msgtype": "markdown", "markdown": {"content": content}});
    }
    // Plain text renders nothing as markup, so it needs no escaping; only cutting.
    let mut text = String::new();
    if view.possible_repeat {
        text.push_str(POSSIBLE_REPEAT);
        text.push('\n');
    }
    text.push_str(&view.plain);
    let (mobiles, users): (Vec<&str>, Vec<&str>) = targets.into_iter().partition(|t| is_mobile(t));
    json!({
        "msgtype": "text",
        "text": {
            "content": cut_at_line(&text, TEXT_BYTES),
            "mentioned_list": users,
            "mentioned_mobile_list": mobiles,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify(45009), CodeClass::RateLimited);
        assert_eq!(classify(93000), CodeClass::Credentials);
        assert_eq!(classify(40058), CodeClass::Rejected);
    }

    #[test]
    fn mobiles_and_user_ids_are_told_apart() {
        assert!(is_mobile("13800000000"));
        assert!(!is_mobile("zhangsan"));
        assert!(!is_mobile("12"));
    }
}
