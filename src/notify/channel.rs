//! A channel is one place messages are delivered to: the console, a Telegram chat, a Feishu,
//! DingTalk, WeCom or Slack group, a generic webhook.
//!
//! A channel makes exactly one attempt per [`Channel::send`] call and says how it went. Order,
//! retries, backoff, the re-check that drops stale pages, and the fallback to the console all
//! belong to the outbox ([`crate::outbox`]), which runs one worker per channel, so a channel
//! never sleeps inside `send` and one failing channel never delays another.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::config::TierConfig;
use crate::incident::Notice;

use super::HowToAct;

/// What a channel is asked to deliver.
#[derive(Debug, Clone)]
pub struct Message {
    pub content: Content,
    /// How readers take the incident (the console link, whether chat commands work).
    pub how: HowToAct,
    /// The message may already have been delivered once: the daemon stopped between sending it
    /// and recording the answer. Channels say so in the text ("possible repeat").
    pub possible_repeat: bool,
    /// What this channel answered for earlier messages about the same incident, oldest first
    /// (e.g. Telegram message ids), so a state change can edit the original alert.
    pub earlier: Vec<String>,
    /// A PNG to go with the message (the negative-volume chart). Channels that cannot attach
    /// an image send the text alone.
    pub image: Option<Vec<u8>>,
}

/// The body of a message.
#[derive(Debug, Clone)]
pub enum Content {
    /// A decision about an incident, rebuilt from the incident as it is when sent.
    Incident(Box<Notice>),
    /// Anything else that is already text: a digest, an incident report, a source-health
    /// notice. `markdown` says whether `body` is Markdown.
    Text {
        title: String,
        body: String,
        markdown: bool,
    },
    /// The answer to a chat command, sent as plain text to the chat it came from (`chat`, in
    /// the channel's own terms: a Telegram chat id). Only chat channels get these.
    Reply { chat: String, text: String },
}

impl Message {
    /// The tier paged by this message, if it pages one.
    pub fn paged_tier(&self) -> Option<&TierConfig> {
        let Content::Incident(notice) = &self.content else {
            return None;
        };
        match notice.as_ref() {
            Notice::Opened { tier, .. } | Notice::AckExpired { tier, .. } => tier.as_ref(),
            Notice::Escalated { tier, .. } => Some(tier),
            _ => None,
        }
    }

    /// The message as plain text: what the console prints, and the fallback of every channel.
    pub fn plain_text(&self) -> String {
        let text = match &self.content {
            Content::Incident(notice) => super::render(notice, &self.how),
            Content::Text { title, body, .. } => format!("{title}\n{body}"),
            Content::Reply { text, .. } => text.clone(),
        };
        if self.possible_repeat {
            format!("(possible repeat: yuqing stopped while sending this)\n{text}")
        } else {
            text
        }
    }

    /// Who to @-mention on `channel` for the paged tier: the tier's `targets` for that channel
    /// name (Feishu user ids, DingTalk mobiles, WeCom user ids, Telegram handles).
    pub fn targets(&self, channel: &str) -> &[String] {
        self.paged_tier()
            .and_then(|t| t.targets.get(channel))
            .map_or(&[], |v| v.as_slice())
    }
}

/// A successful delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The platform's id for the message, if it has one worth keeping (a Telegram message id),
    /// handed back in [`Message::earlier`] for later messages about the same incident.
    pub reference: Option<String>,
}

/// A failed attempt. `reason` must already be free of secrets (see [`Redactor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub reason: String,
    /// The platform asked us to wait this long (HTTP 429 Retry-After, Telegram retry_after).
    pub retry_after: Option<Duration>,
    /// Retrying the same message cannot succeed (bad request, message rejected as malformed).
    /// The outbox records it as failed and moves on to the next message, so one unsendable
    /// message never blocks the queue. Authentication errors are *not* permanent: an operator
    /// can fix the secret, and the message should then go out.
    pub permanent: bool,
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> SendError {
        SendError {
            reason: reason.into(),
            retry_after: None,
            permanent: false,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> SendError {
        SendError {
            reason: reason.into(),
            retry_after: None,
            permanent: true,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Delivered, SendError>> + Send + 'a>>;

/// One delivery target. Implementations render [`Message`]s in their platform's format.
pub trait Channel: Send + Sync {
    /// The configured name (`[[channels]] name`, or `telegram` / `console`); outbox queues,
    /// tier targets and metrics are keyed by it.
    fn name(&self) -> &str;

    /// The platform, for logs and `yuqing notices`: "console", "telegram", "feishu", …
    fn kind(&self) -> &'static str;

    /// One attempt to deliver `message`.
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a>;
}

/// Removes secrets (bot tokens, webhook keys, signing secrets) from text before it is logged
/// or stored, including where a server echoes them back (an Apache-style 404 page quoting the
/// request path, a reqwest error quoting the URL).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets shorter than 6 characters are ignored: replacing them would mangle ordinary text
    /// and they are not worth hiding.
    pub fn new<I, S>(secrets: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| s.chars().count() >= 6)
            .collect();
        // Longest first, so a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn add(&mut self, secret: impl Into<String>) {
        let all = std::mem::take(&mut self.secrets);
        *self = Redactor::new(all.into_iter().chain([secret.into()]));
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
            // Servers and clients often echo a URL-encoded form.
            let encoded = percent_encode(secret);
            if encoded != *secret && out.contains(encoded.as_str()) {
                out = out.replace(encoded.as_str(), "[redacted]");
            }
        }
        out
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_plain_and_encoded_secrets_and_ignores_short_ones() {
        let r = Redactor::new(["123456:ABC-secret/x+y", "abc"]);
        let text = "GET /bot123456:ABC-secret/x+y/sendMessage 404; \
                    url=https://h/?k=123456%3AABC-secret%2Fx%2By abc";
        let red = r.redact(text);
        assert!(!red.contains("ABC-secret"), "{red}");
        assert!(red.contains("/bot[redacted]/sendMessage"), "{red}");
        assert!(red.ends_with(" abc"), "short secrets are left alone: {red}");
    }

    #[test]
    fn a_secret_containing_another_is_hidden_whole() {
        let mut r = Redactor::new(["secret-part"]);
        r.add("the-whole-secret-part-and-more");
        assert_eq!(
            r.redact("x the-whole-secret-part-and-more y secret-part"),
            "x [redacted] y [redacted]"
        );
    }
}
