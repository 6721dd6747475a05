//! Telegram: HTML alerts with buttons in the crisis chat, edits that keep the alert true, and
//! the on-call commands and button presses that close the loop.
//!
//! - [`TelegramChannel`] is the crisis chat as a [`Channel`]: one Bot API request per step,
//!   no sleeping or retrying inside (the outbox owns order and retries).
//! - [`commands`] reads commands and button presses with our own getUpdates long poll, and
//!   stores the update offset before acting, so a command is never answered twice.
//! - [`html`] renders notices as Telegram HTML within Telegram's length limits.
//! - [`api`] is the thin Bot API client both use.

pub mod api;
pub mod commands;
pub mod html;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::config::TelegramConfig;
use crate::incident::Notice;
use crate::store::{Incident, IncidentState};

use super::channel::{Channel, Content, Delivered, Message, SendError, SendFuture};

pub use api::BotApi;
pub use commands::{
    handle_callback, handle_command, run_commands, Command, CommandContext, ReportHook,
};

/// The Bot API client for the configured server and token, on the shared HTTP client.
pub fn bot(cfg: &TelegramConfig, token: &str, client: reqwest::Client) -> Result<BotApi> {
    reqwest::Url::parse(&cfg.api_url)
        .with_context(|| format!("telegram.api_url {:?}", cfg.api_url))?;
    Ok(BotApi::new(client, &cfg.api_url, token))
}

/// A reference to a message we sent: a text message, or a photo whose caption is the text
/// (edited with editMessageCaption instead of editMessageText).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Text(i64),
    Caption(i64),
}

impl Sent {
    fn to_reference(self) -> String {
        match self {
            Sent::Text(id) => id.to_string(),
            Sent::Caption(id) => format!("caption:{id}"),
        }
    }

    fn from_reference(text: &str) -> Option<Sent> {
        match text.strip_prefix("caption:") {
            Some(id) => id.parse().ok().map(Sent::Caption),
            None => text.parse().ok().map(Sent::Text),
        }
    }
}

/// The crisis chat.
pub struct TelegramChannel {
    api: BotApi,
    chat_id: i64,
    name: String,
}

impl TelegramChannel {
    pub fn new(api: BotApi, chat_id: i64) -> TelegramChannel {
        TelegramChannel {
            api,
            chat_id,
            name: "telegram".to_string(),
        }
    }

    pub fn chat_id(&self) -> i64 {
        self.chat_id
    }

    async fn deliver(&self, message: &Message) -> Result<Delivered, SendError> {
        let sent = match &message.content {
            Content::Reply { chat, text } => {
                let chat: i64 = chat.parse().map_err(|_| {
                    SendError::permanent(format!("{chat:?} is not a Telegram chat id"))
                })?;
                let params = json!({
                    "chat_id": chat,
                    "text": text,
                    "link_preview_options": {"is_disabled": true},
                });
                let result = self.api.call("sendMessage", &params).await?;
                Sent::Text(message_id(&result)?)
            }
            Content::Text {
                title,
                body,
                markdown,
            } => {
                let text = if *markdown {
                    html::markdown(title, body, message.possible_repeat, html::MESSAGE_LIMIT)
                } else {
                    html::text(title, body, message.possible_repeat, html::MESSAGE_LIMIT)
                };
                let short = html::text(title, "", message.possible_repeat, html::CAPTION_LIMIT);
                self.send_html(&text, &short, None, message.image.as_deref())
                    .await?
            }
            Content::Incident(notice) => match notice.as_ref() {
                Notice::Changed {
                    incident, by, via, ..
                } => {
                    self.edit_alert(incident, by, via, message).await?;
                    let text =
                        html::changed(incident, by, via, &message.how, message.possible_repeat);
                    self.send_html(&text, &text, None, None).await?
                }
                notice => {
                    let text = html::notice(
                        notice,
                        &message.how,
                        message.possible_repeat,
                        html::MESSAGE_LIMIT,
                    );
                    let caption = html::notice(
                        notice,
                        &message.how,
                        message.possible_repeat,
                        html::CAPTION_LIMIT,
                    );
                    let keyboard = match notice {
                        Notice::Opened { .. }
                        | Notice::Escalated { .. }
                        | Notice::AckExpired { .. } => Some(keyboard(notice.incident())),
                        Notice::Reminder { incident } => Some(keyboard(incident)),
                        _ => None,
                    };
                    self.send_html(&text, &caption, keyboard, message.image.as_deref())
                        .await?
                }
            },
        };
        Ok(Delivered {
            reference: Some(sent.to_reference()),
        })
    }

    /// Sends `text`. With an image: the text message first (it is what matters, what readers
    /// search for, and what later edits change), then the photo captioned `short`, as a reply
    /// to it. A photo that fails after its text went out is
    /// logged, not retried: retrying would send the alert twice.
    async fn send_html(
        &self,
        text: &str,
        short: &str,
        keyboard: Option<Value>,
        image: Option<&[u8]>,
    ) -> Result<Sent, SendError> {
        let mut params = json!({
            "chat_id": self.chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        });
        if let Some(k) = keyboard {
            params["reply_markup"] = k;
        }
        let result = self.api.call("sendMessage", &params).await?;
        let id = message_id(&result)?;
        if let Some(png) = image {
            let fields = vec![
                ("chat_id", self.chat_id.to_string()),
                ("caption", short.to_string()),
                ("parse_mode", "HTML".to_string()),
                (
                    "reply_parameters",
                    json!({"message_id": id, "allow_sending_without_reply": true}).to_string(),
                ),
            ];
            if let Err(e) = self
                .api
                .call_with_png("sendPhoto", fields, "photo", png.to_vec())
                .await
            {
                tracing::warn!(chat = self.chat_id, message = id, error = %e.describe(), "the chart did not go out with its message");
            }
        }
        Ok(Sent::Text(id))
    }

    /// Edits the incident's first alert here to show its new state and who changed it, with
    /// the buttons that still make sense (none once resolved). An alert that cannot be edited
    /// any more (deleted, too old) is left alone: the announcement that follows says it all.
    async fn edit_alert(
        &self,
        incident: &Incident,
        by: &str,
        via: &str,
        message: &Message,
    ) -> Result<(), SendError> {
        let Some(original) = message.earlier.iter().find_map(|r| Sent::from_reference(r)) else {
            return Ok(());
        };
        let markup = match incident.state {
            IncidentState::Resolved => json!({"inline_keyboard": []}),
            _ => keyboard(incident),
        };
        let (method, mut params) = match original {
            Sent::Text(id) => (
                "editMessageText",
                json!({
                    "message_id": id,
                    "text": html::card(incident, by, via, &message.how, html::MESSAGE_LIMIT),
                    "link_preview_options": {"is_disabled": true},
                }),
            ),
            Sent::Caption(id) => (
                "editMessageCaption",
                json!({
                    "message_id": id,
                    "caption": html::card(incident, by, via, &message.how, html::CAPTION_LIMIT),
                }),
            ),
        };
        params["chat_id"] = json!(self.chat_id);
        params["parse_mode"] = json!("HTML");
        params["reply_markup"] = markup;
        match self.api.call(method, &params).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_modified() => Ok(()),
            Err(e @ api::ApiError::Refused { .. }) => {
                tracing::warn!(id = incident.id, error = %e.describe(), "the original alert could not be edited; announcing only");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Channel for TelegramChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "telegram"
    }

    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// The buttons under an alert, by the incident's state: Acknowledge only while nobody owns it.
/// Callback data is `verb:id` (see [`commands::handle_callback`]).
pub fn keyboard(incident: &Incident) -> Value {
    let id = incident.id;
    let button =
        |text: &str, verb: &str| json!({"text": text, "callback_data": format!("{verb}:{id}")});
    let first = match incident.state {
        IncidentState::Triggered => vec![
            button("✋ Acknowledge", "ack"),
            button("✅ Resolve", "resolve"),
        ],
        _ => vec![button("✅ Resolve", "resolve")],
    };
    json!({"inline_keyboard": [
        first,
        [button("🙅 False positive", "fp"), button("🔕 Mute 1h", "mute")],
    ]})
}

fn message_id(result: &Value) -> Result<i64, SendError> {
    result["message_id"].as_i64().ok_or_else(|| {
        SendError::transient(format!(
            "Telegram answered without a message_id: {}",
            result.to_string().chars().take(200).collect::<String>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip() {
        for sent in [Sent::Text(17), Sent::Caption(4)] {
            assert_eq!(Sent::from_reference(&sent.to_reference()), Some(sent));
        }
        assert_eq!(Sent::from_reference("feishu-abc"), None);
    }

    #[test]
    fn buttons_follow_the_state() {
        let mut incident = html::tests_support::incident();
        let k = keyboard(&incident).to_string();
        assert!(
            k.contains("\"ack:12\"")
                && k.contains("\"resolve:12\"")
                && k.contains("\"fp:12\"")
                && k.contains("\"mute:12\""),
            "{k}"
        );
        incident.state = IncidentState::Acknowledged;
        let k = keyboard(&incident).to_string();
        assert!(!k.contains("ack:12") && k.contains("resolve:12"), "{k}");
    }
}
