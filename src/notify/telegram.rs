//! Telegram: alerts to the crisis chat, and the on-call commands that close the loop.
//!
//! Commands are read with our own getUpdates long-poll loop rather than teloxide's dispatcher:
//! it stops cleanly on our shutdown signal mid-poll, and handling is a plain function that
//! tests drive directly. A command handled twice (Telegram re-delivers updates that were not
//! yet confirmed when the daemon stopped) is harmless because incident transitions are
//! idempotent.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, UpdateKind, User};
use teloxide::utils::command::BotCommands;
use teloxide::RequestError;

use crate::config::TelegramConfig;
use crate::incident::{By, Incidents, Outcome};
use crate::shutdown::Shutdown;
use crate::store::Actor;

/// Telegram refuses messages longer than 4096 characters.
const MAX_MESSAGE_CHARS: usize = 4000;
const SEND_ATTEMPTS: u32 = 3;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase", description = "yuqing on-call commands:")]
pub enum Command {
    #[command(description = "take ownership of an incident: /ack <id>")]
    Ack(String),
    #[command(description = "close an incident: /resolve <id> [note]")]
    Resolve(String),
    #[command(description = "list open incidents")]
    Incidents,
    #[command(description = "show this help")]
    Help,
}

/// Builds the bot on the shared HTTP client, pointed at the configured Bot API server.
pub fn bot(cfg: &TelegramConfig, token: &str, client: reqwest::Client) -> Result<Bot> {
    let url = reqwest::Url::parse(&cfg.api_url)
        .with_context(|| format!("telegram.api_url {:?}", cfg.api_url))?;
    Ok(Bot::with_client(token, client).set_api_url(url))
}

/// Sends to the crisis chat, retrying transient failures.
pub struct TelegramSender {
    bot: Bot,
    chat_id: i64,
}

impl TelegramSender {
    pub fn new(bot: Bot, chat_id: i64) -> TelegramSender {
        TelegramSender { bot, chat_id }
    }

    pub fn chat_id(&self) -> i64 {
        self.chat_id
    }

    pub async fn send_to_crisis_chat(&self, text: &str) -> Result<()> {
        send_with_retry(&self.bot, self.chat_id, text).await
    }
}

async fn send_with_retry(bot: &Bot, chat_id: i64, text: &str) -> Result<()> {
    let text: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match bot.send_message(ChatId(chat_id), text.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if attempt >= SEND_ATTEMPTS {
            return Err(anyhow::Error::new(err).context(format!(
                "sending to Telegram chat {chat_id} failed {attempt} times"
            )));
        }
        let wait = match &err {
            RequestError::RetryAfter(secs) => secs.duration().min(Duration::from_secs(60)),
            // Bad request, wrong token, bot not in chat: retrying will not help.
            RequestError::Api(_) => {
                return Err(anyhow::Error::new(err)
                    .context(format!("Telegram refused the message to chat {chat_id}")))
            }
            _ => Duration::from_millis(500 * 2u64.pow(attempt)),
        };
        tracing::warn!(chat_id, attempt, error = %err, "Telegram send failed; retrying in {}", crate::config::human_duration(wait));
        tokio::time::sleep(wait).await;
    }
}

/// Who may do what, and where the crisis chat is.
#[derive(Clone)]
pub struct CommandContext {
    pub incidents: Incidents,
    pub ack_users: Vec<u64>,
    pub crisis_chat: Option<i64>,
}

/// Answers one command. Pure apart from the incident store, so tests call it directly.
pub async fn handle_command(
    ctx: &CommandContext,
    command: Command,
    from: Option<&User>,
    chat_id: i64,
) -> String {
    let actor = from.map(|u| Actor {
        id: u.id.0,
        name: u
            .username
            .as_ref()
            .map(|n| format!("@{n}"))
            .unwrap_or_else(|| u.full_name()),
    });
    let allowed = actor
        .as_ref()
        .is_some_and(|a| ctx.ack_users.contains(&a.id));
    let who = actor
        .as_ref()
        .map(|a| format!("{} (id {})", a.name, a.id))
        .unwrap_or_else(|| "an unknown sender".into());
    let now = Utc::now();
    let resolving = matches!(command, Command::Resolve(_));
    let result = match command {
        Command::Help => return Command::descriptions().to_string(),
        Command::Incidents => {
            if !allowed && Some(chat_id) != ctx.crisis_chat {
                tracing::warn!(chat_id, user = %who, "refused /incidents");
                return format!("⛔ {who} may not list incidents here.");
            }
            return match ctx.incidents.open_incidents() {
                Ok(list) => super::render_list(&list),
                Err(e) => format!("⚠️ cannot read incidents: {e:#}"),
            };
        }
        Command::Ack(arg) | Command::Resolve(arg) if parse_id(&arg).is_none() => {
            return format!(
                "Usage: /ack <incident id> or /resolve <incident id> (got {:?})",
                arg.trim()
            );
        }
        Command::Ack(arg) | Command::Resolve(arg) => {
            let id = parse_id(&arg).expect("checked above");
            let verb = if resolving { "resolve" } else { "acknowledge" };
            let Some(actor) = actor.filter(|_| allowed) else {
                tracing::warn!(chat_id, user = %who, id, verb, "refused: user not in telegram.ack_users");
                return format!(
                    "⛔ {who} is not allowed to {verb} incidents. Ask an admin to add your id to telegram.ack_users."
                );
            };
            let by = By {
                actor: &actor,
                via: "telegram",
            };
            let outcome = if resolving {
                let note = arg.trim().split_once(char::is_whitespace).map(|(_, n)| n);
                ctx.incidents.resolve(id, by, note, now).await
            } else {
                ctx.incidents.acknowledge(id, by, now).await
            };
            outcome.map(|o| match o {
                Outcome::Changed(i) if resolving => {
                    format!(
                        "☑️ Incident #{} ({}) resolved by {}.",
                        i.id, i.brand, actor.name
                    )
                }
                Outcome::Changed(i) => format!(
                    "✅ Incident #{} ({}) acknowledged by {}. You own it until it is resolved.",
                    i.id, i.brand, actor.name
                ),
                Outcome::Unchanged { incident, reason }
                | Outcome::Conflict { incident, reason } => {
                    format!("Incident #{} is {reason}.", incident.id)
                }
                Outcome::NotFound(id) => format!("No incident #{id}."),
            })
        }
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %format!("{e:#}"), "command failed");
        format!("⚠️ could not change the incident: {e:#}")
    })
}

/// "3", "#3" → 3.
/// "3", "#3", "3 refunded the customer" → 3 (the rest is a note for /resolve).
fn parse_id(arg: &str) -> Option<u64> {
    arg.split_whitespace()
        .next()?
        .trim_start_matches('#')
        .parse()
        .ok()
}

/// Long-polls for commands until shutdown.
pub async fn run_commands(
    bot: Bot,
    ctx: CommandContext,
    poll_timeout: Duration,
    mut shutdown: Shutdown,
) -> Result<()> {
    // The bot's username lets "/ack@our_bot 3" parse in groups with several bots.
    let username = match bot.get_me().await {
        Ok(me) => me.username.clone().unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "getMe failed; commands addressed as /cmd@bot will not parse");
            String::new()
        }
    };
    let mut offset: i32 = 0;
    let mut failures: u32 = 0;
    loop {
        let request = bot
            .get_updates()
            .offset(offset)
            .timeout(poll_timeout.as_secs() as u32)
            .allowed_updates(vec![AllowedUpdate::Message]);
        // The HTTP request itself must not outlive the long poll by much.
        let deadline = poll_timeout + Duration::from_secs(10);
        let updates = tokio::select! {
            _ = shutdown.wait() => {
                confirm_offset(&bot, offset).await;
                return Ok(());
            }
            r = tokio::time::timeout(deadline, request.send()) => r,
        };
        let updates = match updates {
            Ok(Ok(u)) => {
                failures = 0;
                u
            }
            Ok(Err(e)) => {
                failures += 1;
                let wait = Duration::from_secs(2u64.pow(failures.min(5)));
                tracing::warn!(error = %e, failures, "getUpdates failed; retrying in {}", crate::config::human_duration(wait));
                tokio::select! {
                    _ = shutdown.wait() => {
                        confirm_offset(&bot, offset).await;
                        return Ok(());
                    }
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
            Err(_) => {
                tracing::warn!(
                    "getUpdates took longer than {}; polling again",
                    crate::config::human_duration(deadline)
                );
                continue;
            }
        };
        for update in updates {
            offset = offset.max(update.id.0 as i32 + 1);
            let UpdateKind::Message(message) = update.kind else {
                continue;
            };
            let Some(text) = message.text() else { continue };
            if !text.starts_with('/') {
                continue;
            }
            let command = match Command::parse(text, &username) {
                Ok(c) => c,
                // Unknown commands are other bots' business in a shared group: stay quiet.
                Err(_) => continue,
            };
            tracing::info!(chat = message.chat.id.0, command = ?command, "command received");
            let reply =
                handle_command(&ctx, command, message.from.as_ref(), message.chat.id.0).await;
            if let Err(e) = send_with_retry(&bot, message.chat.id.0, &reply).await {
                tracing::error!(error = %format!("{e:#}"), "could not reply to a command");
            }
        }
    }
}

/// Tells Telegram which updates were handled, so a restart does not answer them again. Best
/// effort: if it fails, re-delivered commands are harmless because transitions are idempotent.
async fn confirm_offset(bot: &Bot, offset: i32) {
    if offset == 0 {
        return;
    }
    let confirm = bot.get_updates().offset(offset).timeout(0).limit(1);
    match tokio::time::timeout(Duration::from_secs(3), confirm.send()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not confirm handled Telegram updates"),
        Err(_) => tracing::warn!("confirming handled Telegram updates timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Signal;
    use crate::store::{IncidentState, Store};
    use teloxide::types::UserId;

    #[test]
    fn commands_parse() {
        assert_eq!(
            Command::parse("/ack 3", "bot").unwrap(),
            Command::Ack("3".into())
        );
        assert_eq!(
            Command::parse("/ack@bot 3", "bot").unwrap(),
            Command::Ack("3".into())
        );
        assert_eq!(
            Command::parse("/resolve #12", "bot").unwrap(),
            Command::Resolve("#12".into())
        );
        assert_eq!(
            Command::parse("/incidents", "bot").unwrap(),
            Command::Incidents
        );
        assert!(Command::parse("/nope", "bot").is_err());
        assert_eq!(parse_id("#12"), Some(12));
        assert_eq!(parse_id("twelve"), None);
    }

    fn user(id: u64, username: &str) -> User {
        User {
            id: UserId(id),
            is_bot: false,
            first_name: "U".into(),
            last_name: None,
            username: Some(username.into()),
            language_code: None,
            is_premium: false,
            added_to_attachment_menu: false,
        }
    }

    async fn ctx_with_incident() -> CommandContext {
        let incidents = Incidents::new(Store::temporary().unwrap(), vec![], 3);
        let signal = Signal {
            brand: "度小满".into(),
            window_count: 5,
            baseline: 0.0,
            window: Duration::from_secs(60),
            top: vec![],
        };
        incidents.open(&signal, Utc::now()).await.unwrap();
        CommandContext {
            incidents,
            ack_users: vec![7],
            crisis_chat: Some(-100),
        }
    }

    #[tokio::test]
    async fn only_allowed_users_ack() {
        let ctx = ctx_with_incident().await;
        let reply = handle_command(
            &ctx,
            Command::Ack("1".into()),
            Some(&user(8, "mallory")),
            -100,
        )
        .await;
        assert!(reply.contains("not allowed"), "{reply}");
        assert_eq!(
            ctx.incidents.get(1).unwrap().unwrap().state,
            IncidentState::Triggered
        );
        let reply = handle_command(&ctx, Command::Ack("1".into()), None, -100).await;
        assert!(reply.contains("unknown sender"), "{reply}");
        let reply = handle_command(
            &ctx,
            Command::Ack("1".into()),
            Some(&user(7, "alice")),
            -100,
        )
        .await;
        assert!(reply.contains("acknowledged by @alice"), "{reply}");
        assert_eq!(
            ctx.incidents.get(1).unwrap().unwrap().state,
            IncidentState::Acknowledged
        );
        let reply = handle_command(
            &ctx,
            Command::Resolve("1".into()),
            Some(&user(8, "mallory")),
            -100,
        )
        .await;
        assert!(reply.contains("not allowed"), "{reply}");
        let reply = handle_command(
            &ctx,
            Command::Resolve("1".into()),
            Some(&user(7, "alice")),
            -100,
        )
        .await;
        assert!(reply.contains("resolved"), "{reply}");
    }

    #[tokio::test]
    async fn bad_ids_and_listing() {
        let ctx = ctx_with_incident().await;
        let reply = handle_command(
            &ctx,
            Command::Ack("x".into()),
            Some(&user(7, "alice")),
            -100,
        )
        .await;
        assert!(reply.starts_with("Usage"), "{reply}");
        let reply = handle_command(
            &ctx,
            Command::Ack("99".into()),
            Some(&user(7, "alice")),
            -100,
        )
        .await;
        assert_eq!(reply, "No incident #99.");
        let list = handle_command(&ctx, Command::Incidents, Some(&user(8, "mallory")), -100).await;
        assert!(
            list.contains("#1 度小满"),
            "the crisis chat may list: {list}"
        );
        let list = handle_command(&ctx, Command::Incidents, Some(&user(8, "mallory")), 555).await;
        assert!(list.contains("may not"), "{list}");
    }
}
