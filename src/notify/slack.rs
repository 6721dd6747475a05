//! Slack incoming webhook: Block Kit blocks (a header, the facts as section fields, the top
//! posts, @-mentions, a context line and a button to the incident in the web console), with a
//! plain `text` fallback for notifications.
//!
//! The URL is the only credential (Slack does not sign incoming webhooks). Slack answers `ok`,
//! or an HTTP error with a short error string (`invalid_payload`, `no_service`…).

use serde_json::{json, Value};

use super::channel::{Channel, Delivered, Message, SendError, SendFuture};
use super::webhooks::{escape_within, safe_link, trim_chars, Endpoint, View, POSSIBLE_REPEAT};

/// Slack's limits: 3,000 characters in a section's text, 2,000 in a field, 150 in a header.
/// Budgets are in bytes, which are never fewer than characters.
const SECTION_BYTES: usize = 3_000;
const FIELD_BYTES: usize = 1_900;
const HEADER_CHARS: usize = 150;

/// Slack's error strings that mean the webhook's settings, which an operator fixes: not
/// permanent, so the waiting message goes out once they are.
const SETTINGS_ERRORS: [&str; 7] = [
    "invalid_token",
    "no_service",
    "no_team",
    "team_disabled",
    "channel_not_found",
    "channel_is_archived",
    "action_prohibited",
];

pub struct Slack {
    endpoint: Endpoint,
}

impl Slack {
    pub(crate) fn new(endpoint: Endpoint) -> Slack {
        Slack { endpoint }
    }

    async fn deliver(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = body(&View::of(message), message.targets(&self.endpoint.name));
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let answer = self
            .endpoint
            .post(self.endpoint.url.clone(), bytes, &[])
            .await?;
        let said = answer.body.trim();
        if answer.status.is_success() {
            if said == "ok" {
                return Ok(Delivered::default());
            }
            return Err(SendError::transient(
                self.endpoint
                    .failure("unexpected answer, delivery unknown", said),
            ));
        }
        let failure = self.endpoint.by_status(&answer).expect("a failure status");
        if answer.status.is_client_error() && SETTINGS_ERRORS.contains(&said) {
            return Err(SendError {
                permanent: false,
                ..failure
            });
        }
        Err(failure)
    }
}

impl Channel for Slack {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// Slack's mrkdwn escaping: only `&`, `<` and `>` are special, and escaping `<` is what stops
/// a post from writing `<!channel>`, `<@U…>` or `<http://…|a link>`.
fn escape(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

fn mrkdwn(text: &str, max: usize) -> String {
    escape_within(text, max, escape)
}

/// A Slack member or user-group id to @ (`U…`, `W…`, `S…` for a group).
fn mention(target: &str) -> Option<String> {
    let t = target.trim();
    let id_ok = t.len() >= 2
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    match t.chars().next() {
        Some('S') if id_ok => Some(format!("<!subteam^{t}>")),
        Some(_) if id_ok => Some(format!("<@{t}>")),
        _ => None,
    }
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// The webhook payload for a message.
pub(crate) fn body(view: &View, targets: &[String]) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": trim_chars(&view.headline, HEADER_CHARS), "emoji": true},
    })];
    if view.possible_repeat {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(POSSIBLE_REPEAT, FIELD_BYTES)}]}));
    }
    if !view.fields.is_empty() {
        let fields: Vec<Value> = view
            .fields
            .iter()
            .take(10)
            .map(|(label, value)| {
                json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", mrkdwn(value, FIELD_BYTES))})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if !view.posts.is_empty() {
        // Each post gets an equal share, so the last one is not the one cut.
        let share = SECTION_BYTES / view.posts.len() - 80;
        let mut text = String::from("*Top posts*");
        for (i, p) in view.posts.iter().enumerate() {
            let url = p.url.as_deref().and_then(safe_link);
            let room = share.saturating_sub(url.as_ref().map_or(0, |u| u.len() + 3));
            let title = mrkdwn(&p.title, room.max(40));
            let title = match url {
                // A link longer than its share is left out rather than cut.
                Some(url) if url.len() + 3 < share => format!("<{url}|{title}>"),
                _ => title,
            };
            text.push_str(&format!(
                "\n{}. [{}] {title} (score {:.1})",
                i + 1,
                mrkdwn(&p.source, 60),
                p.score
            ));
        }
        blocks.push(section(trim_chars(&text, SECTION_BYTES)));
    }
    if view.incident.is_none() {
        let body = view.plain.split_once('\n').map_or("", |(_, b)| b);
        if !body.trim().is_empty() {
            blocks.push(section(mrkdwn(body, SECTION_BYTES)));
        }
    }
    let mentions: Vec<String> = targets.iter().filter_map(|t| mention(t)).collect();
    if !mentions.is_empty() {
        blocks.push(section(mentions.join(" ")));
    }
    if let Some(link) = view.console_link.as_deref().and_then(safe_link) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Acknowledge in console"},
                "style": "primary",
                "url": link,
            }],
        }));
    }
    if let Some(incident) = view.incident {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!(
                "yuqing incident #{} · {}", incident.id, mrkdwn(&incident.brand, 200)
            )}],
        }));
    }
    let mut fallback = String::new();
    if !mentions.is_empty() {
        fallback.push_str(&mentions.join(" "));
        fallback.push(' ');
    }
    fallback.push_str(&mrkdwn(&view.plain, SECTION_BYTES));
    json!({"text": fallback, "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_mention_or_link() {
        let out = mrkdwn("<!channel> <http://evil|click> & co", 1000);
        assert_eq!(out, "&lt;!channel&gt; &lt;http://evil|click&gt; &amp; co");
    }

    #[test]
    fn only_slack_ids_become_mentions() {
        assert_eq!(mention("U024BE7LH"), Some("<@U024BE7LH>".into()));
        assert_eq!(mention("S0614TZR7"), Some("<!subteam^S0614TZR7>".into()));
        assert_eq!(mention("!channel"), None);
        assert_eq!(mention("alice"), None);
    }
}
