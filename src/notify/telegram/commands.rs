//! Chat commands and button presses: who may act, what each does, and the long poll that
//! reads them.
//!
//! Every command and every button is checked against `telegram.ack_users`; anyone else gets a
//! refusal that names their user id, and nothing changes. Transitions go through
//! [`Incidents`]; verdicts through [`crate::feedback`]. Handling is a plain function of the
//! update, so tests drive it directly.
//!
//! The getUpdates offset is stored in sled and flushed *before* an update is acted on: after a
//! crash (even kill -9) the next start asks Telegram for the updates after it, so a command
//! is never answered twice. The price is that a command read just before a crash may be lost
//! unanswered; the person sees no reply and sends it again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use teloxide::utils::command::BotCommands;

use super::api::BotApi;
use crate::feedback::{self, Target};
use crate::incident::{By, Incidents, Outcome};
use crate::shutdown::Shutdown;
use crate::store::{Actor, Incident, SilenceKind, Store};

/// The meta key the next getUpdates offset is stored under.
pub const OFFSET_KEY: &str = "telegram_update_offset";

/// How long the Mute 1h button mutes the incident's brand.
pub const BUTTON_MUTE: Duration = Duration::from_secs(3600);

/// Telegram refuses messages longer than this; replies are plain text cut at a character.
const REPLY_LIMIT: usize = 4000;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase", description = "yuqing on-call commands:")]
pub enum Command {
    #[command(description = "list the commands")]
    Help,
    #[command(description = "health: failing sources and open incidents")]
    Status,
    #[command(description = "list the open incidents")]
    Incidents,
    #[command(description = "take an incident: /ack [id]")]
    Ack(String),
    #[command(description = "close an incident: /resolve [id] [note]")]
    Resolve(String),
    #[command(description = "reopen a resolved incident: /reopen id")]
    Reopen(String),
    #[command(description = "an incident's hits, with their ids: /hits [id]")]
    Hits(String),
    #[command(description = "hold back notices: /mute brand|source|topic NAME DURATION")]
    Mute(String),
    #[command(description = "lift a mute: /unmute [id]")]
    Unmute(String),
    #[command(description = "mark a false positive: /fp hit-id or incident-id")]
    Fp(String),
    #[command(description = "the figures, on demand: /report [brand]")]
    Report(String),
    #[command(description = "who is on which tier")]
    Oncall,
}

/// The text `/report` answers with, given an optional brand.
pub type ReportHook =
    Arc<dyn Fn(Option<String>) -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// What commands need: the incidents, reads of the store, who may act, and the report hook.
#[derive(Clone)]
pub struct CommandContext {
    pub incidents: Incidents,
    /// For reads (source health, hits), verdicts through [`crate::feedback`], and the offset.
    pub store: Store,
    pub ack_users: Vec<u64>,
    pub crisis_chat: Option<i64>,
    /// The brands `/report` covers when it names none.
    pub brands: Vec<String>,
    pub report: ReportHook,
    /// Where answers to commands go: the outbox's queue for this chat channel, so they are
    /// stored before they are sent and arrive in order with the alerts. Without one (the
    /// command loop run on its own, as in tests) answers are sent directly, once.
    pub replies: Option<(crate::outbox::Outbox, String)>,
}

impl CommandContext {
    /// A context whose `/report` is today's figures per brand ([`todays_figures`]); the daemon
    /// may replace `report` with the daily digest.
    pub fn new(
        incidents: Incidents,
        store: Store,
        ack_users: Vec<u64>,
        crisis_chat: Option<i64>,
        brands: Vec<String>,
    ) -> CommandContext {
        let report: ReportHook = {
            let (store, brands) = (store.clone(), brands.clone());
            Arc::new(move |brand: Option<String>| {
                let text = todays_figures(&store, &brands, brand.as_deref(), Utc::now());
                Box::pin(async move { text })
            })
        };
        CommandContext {
            incidents,
            store,
            ack_users,
            crisis_chat,
            brands,
            report,
            replies: None,
        }
    }

    /// `/report` answers with `report` instead of today's figures.
    pub fn with_report(mut self, report: ReportHook) -> CommandContext {
        self.report = report;
        self
    }

    /// Answers go through `outbox`'s queue for `channel`.
    pub fn with_replies(mut self, outbox: crate::outbox::Outbox, channel: &str) -> CommandContext {
        self.replies = Some((outbox, channel.to_string()));
        self
    }
}

/// Who sent a command or pressed a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub id: u64,
    /// `@username`, or the full name when there is none.
    pub name: String,
}

impl Sender {
    /// From a Bot API `User` object.
    pub fn from_json(user: &Value) -> Option<Sender> {
        let id = user["id"].as_u64()?;
        let name = match user["username"].as_str() {
            Some(u) if !u.is_empty() => format!("@{u}"),
            _ => [user["first_name"].as_str(), user["last_name"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        };
        Some(Sender { id, name })
    }
}

/// The actor for an allowed sender, or the refusal to send back.
fn authorize(ctx: &CommandContext, from: Option<&Sender>, what: &str) -> Result<Actor, String> {
    match from {
        Some(s) if ctx.ack_users.contains(&s.id) => Ok(Actor {
            id: s.id,
            name: s.name.clone(),
        }),
        Some(s) => {
            tracing::warn!(user = %s.name, id = s.id, what, "refused: user not in telegram.ack_users");
            Err(format!(
                "⛔ {} (id {}) is not allowed to {what}. Ask an admin to add your id to telegram.ack_users.",
                s.name, s.id
            ))
        }
        None => Err(format!("⛔ an unknown sender is not allowed to {what}.")),
    }
}

/// Answers one command. Pure apart from the store, so tests call it directly.
pub async fn handle_command(
    ctx: &CommandContext,
    command: Command,
    from: Option<&Sender>,
    chat_id: i64,
) -> String {
    let what = command_name(&command);
    let actor = match authorize(ctx, from, &format!("use /{what}")) {
        Ok(a) => a,
        Err(refusal) => {
            tracing::info!(chat_id, "command refused");
            return refusal;
        }
    };
    let now = Utc::now();
    let reply = run(ctx, command, &actor, now).await;
    let reply = reply.unwrap_or_else(|e| {
        tracing::error!(error = %format!("{e:#}"), command = what, "command failed");
        format!("⚠️ /{what} failed: {e:#}")
    });
    shorten(&reply, REPLY_LIMIT)
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Help => "help",
        Command::Status => "status",
        Command::Incidents => "incidents",
        Command::Ack(_) => "ack",
        Command::Resolve(_) => "resolve",
        Command::Reopen(_) => "reopen",
        Command::Hits(_) => "hits",
        Command::Mute(_) => "mute",
        Command::Unmute(_) => "unmute",
        Command::Fp(_) => "fp",
        Command::Report(_) => "report",
        Command::Oncall => "oncall",
    }
}

async fn run(
    ctx: &CommandContext,
    command: Command,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<String> {
    let by = By {
        actor,
        via: "telegram",
    };
    Ok(match command {
        Command::Help => Command::descriptions().to_string(),
        Command::Status => status(ctx)?,
        Command::Incidents => super::super::render_list(&ctx.incidents.open_incidents()?),
        Command::Ack(arg) => match pick_incident(ctx, &arg, "ack")? {
            Err(reply) => reply,
            Ok((id, _)) => describe(ctx.incidents.acknowledge(id, by, now).await?, actor),
        },
        Command::Resolve(arg) => match pick_incident(ctx, &arg, "resolve")? {
            Err(reply) => reply,
            Ok((id, note)) => {
                let note = Some(note.trim()).filter(|n| !n.is_empty());
                describe(ctx.incidents.resolve(id, by, note, now).await?, actor)
            }
        },
        Command::Reopen(arg) => match parse_id(&arg) {
            None => format!("Usage: /reopen <incident id> (got {:?})", arg.trim()),
            Some((id, note)) => {
                let note = Some(note.trim()).filter(|n| !n.is_empty());
                describe(ctx.incidents.reopen(id, by, note, now).await?, actor)
            }
        },
        Command::Hits(arg) => match pick_incident(ctx, &arg, "hits")? {
            Err(reply) => reply,
            Ok((id, _)) => hits(ctx, id)?,
        },
        Command::Mute(arg) => mute(ctx, &arg, by, now)?,
        Command::Unmute(arg) => unmute(ctx, &arg, now)?,
        Command::Fp(arg) => match Target::parse(&arg) {
            None => format!(
                "Usage: /fp <hit id> or /fp <incident id> (got {:?}). /hits <incident id> lists hit ids.",
                arg.trim()
            ),
            Some(target) => false_positive(ctx, &target, actor, now)?,
        },
        Command::Report(arg) => {
            let brand = Some(arg.trim().to_string()).filter(|b| !b.is_empty());
            (ctx.report)(brand).await
        }
        Command::Oncall => oncall(ctx),
    })
}

/// "12 …" → (12, "…"); "#12" → (12, "").
fn parse_id(arg: &str) -> Option<(u64, &str)> {
    let arg = arg.trim();
    let (first, rest) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
    let id = first.trim_start_matches('#').parse().ok()?;
    Some((id, rest))
}

/// The incident an argument names, and the rest of the argument; an argument that does not
/// start with an id means the single open incident, when there is exactly one.
fn pick_incident<'a>(
    ctx: &CommandContext,
    arg: &'a str,
    verb: &str,
) -> Result<Result<(u64, &'a str), String>> {
    if let Some(found) = parse_id(arg) {
        return Ok(Ok(found));
    }
    let open = ctx.incidents.open_incidents()?;
    Ok(match open.as_slice() {
        [only] => Ok((only.id, arg)),
        [] => Err(format!("No open incident. Name one: /{verb} <id>.")),
        many => Err(format!(
            "{} incidents are open; name one: /{verb} <id>.\n{}",
            many.len(),
            many.iter()
                .map(|i| format!("#{} {}", i.id, i.brand))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    })
}

fn describe(outcome: Outcome, actor: &Actor) -> String {
    match outcome {
        Outcome::Changed(i) => match i.state {
            crate::store::IncidentState::Acknowledged
                if i.history
                    .last()
                    .is_some_and(|t| t.note.starts_with("reopened")) =>
            {
                format!(
                    "🔁 Incident #{} ({}) reopened by {}, who owns it now.",
                    i.id, i.brand, actor.name
                )
            }
            crate::store::IncidentState::Acknowledged => format!(
                "✅ Incident #{} ({}) acknowledged by {}. You own it until it is resolved.",
                i.id, i.brand, actor.name
            ),
            crate::store::IncidentState::Resolved => {
                format!(
                    "☑️ Incident #{} ({}) resolved by {}.",
                    i.id, i.brand, actor.name
                )
            }
            crate::store::IncidentState::Triggered => {
                format!("Incident #{} ({}) is open again.", i.id, i.brand)
            }
        },
        Outcome::Unchanged { incident, reason } | Outcome::Conflict { incident, reason } => {
            format!("Incident #{} is {reason}.", incident.id)
        }
        Outcome::NotFound(id) => format!("No incident #{id}."),
    }
}

fn status(ctx: &CommandContext) -> Result<String> {
    let failing: Vec<String> = ctx
        .store
        .source_health()?
        .into_iter()
        .filter(|(_, h)| h.consecutive_failures > 0)
        .map(|(name, h)| {
            format!(
                "❌ {name}: {} failed poll(s) in a row; {}",
                h.consecutive_failures,
                h.last_error.as_deref().unwrap_or("no error recorded")
            )
        })
        .collect();
    let sources = if failing.is_empty() {
        "Sources: all polling normally.".to_string()
    } else {
        format!(
            "Sources failing ({}):\n{}",
            failing.len(),
            failing.join("\n")
        )
    };
    let open = super::super::render_list(&ctx.incidents.open_incidents()?);
    Ok(format!("yuqing is running.\n{sources}\n{open}"))
}

fn hits(ctx: &CommandContext, id: u64) -> Result<String> {
    let Some(incident) = ctx.incidents.get(id)? else {
        return Ok(format!("No incident #{id}."));
    };
    let hits = feedback::incident_hits(&ctx.store, &incident)?;
    if hits.is_empty() {
        return Ok(format!("Incident #{id} has no stored negative hits."));
    }
    const SHOWN: usize = 10;
    let mut out = format!(
        "Incident #{id} ({}): {} negative hit(s), newest first{}:\n",
        incident.brand,
        hits.len(),
        if hits.len() > SHOWN {
            format!(", the first {SHOWN}")
        } else {
            String::new()
        }
    );
    for h in hits.iter().take(SHOWN) {
        out.push_str(&format!(
            "• [{}] {} ({:.1}) {}\n  /fp {}\n",
            h.hit.source,
            shorten(&h.hit.title, 80),
            h.hit.score,
            h.hit.url.as_deref().unwrap_or(""),
            h.id
        ));
    }
    out.push_str(&format!("/fp {id} marks all of them."));
    Ok(out)
}

fn mute(ctx: &CommandContext, arg: &str, by: By<'_>, now: DateTime<Utc>) -> Result<String> {
    let usage = || {
        format!(
            "Usage: /mute brand|source|topic NAME DURATION, e.g. /mute brand 度小满 2h (got {:?})",
            arg.trim()
        )
    };
    let words: Vec<&str> = arg.split_whitespace().collect();
    if words.len() < 3 {
        return Ok(usage());
    }
    let Some(kind) = SilenceKind::parse(words[0]) else {
        return Ok(format!("Unknown mute kind {:?}. {}", words[0], usage()));
    };
    let Ok(duration) = humantime::parse_duration(words[words.len() - 1]) else {
        return Ok(format!(
            "{:?} is not a duration like 30m or 2h. {}",
            words[words.len() - 1],
            usage()
        ));
    };
    let name = words[1..words.len() - 1].join(" ");
    let silence = ctx
        .incidents
        .mute(kind, &name, duration, by, "muted from Telegram", now)?;
    Ok(format!(
        "🔕 Muted {} {:?} until {} (silence {}). /unmute {} lifts it.",
        words[0].to_ascii_lowercase(),
        silence.name,
        silence.until.format("%Y-%m-%d %H:%M UTC"),
        silence.id,
        silence.id
    ))
}

fn unmute(ctx: &CommandContext, arg: &str, now: DateTime<Utc>) -> Result<String> {
    let id = arg.trim();
    let id = if id.is_empty() {
        let active: Vec<_> = ctx
            .incidents
            .silences()?
            .into_iter()
            .filter(|s| s.active(now))
            .collect();
        match active.as_slice() {
            [only] => only.id.clone(),
            [] => return Ok("No mute is active.".to_string()),
            many => {
                return Ok(format!(
                    "{} mutes are active; name one: /unmute <id>.\n{}",
                    many.len(),
                    many.iter()
                        .map(|s| format!(
                            "{}: {:?} {} until {}",
                            s.id,
                            s.kind,
                            s.name,
                            s.until.format("%m-%d %H:%M UTC")
                        ))
                        .collect::<Vec<_>>()
                        .join("\n")
                ))
            }
        }
    } else {
        id.to_string()
    };
    Ok(match ctx.incidents.unmute(&id, now)? {
        Some(s) => format!("🔔 Mute {} ({:?} {}) lifted.", s.id, s.kind, s.name),
        None => format!("No mute {id}."),
    })
}

fn false_positive(
    ctx: &CommandContext,
    target: &Target,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<String> {
    Ok(
        match feedback::give_verdict(&ctx.store, target, false, actor, now)? {
            Ok(given) => format!(
                "🙅 Marked {} {} hit(s) as false positives, by {}. `yuqing export-feedback` writes them for `yuqing learn`.",
                given.hits, given.brand, actor.name
            ),
            Err(not) => format!("Nothing marked: {not}."),
        },
    )
}

fn oncall(ctx: &CommandContext) -> String {
    let tiers = ctx.incidents.tiers();
    if tiers.is_empty() {
        return "No escalation tiers are configured: alerts go to the chat only.".to_string();
    }
    let mut out = String::from("Escalation tiers, in order:\n");
    for (i, t) in tiers.iter().enumerate() {
        out.push_str(&format!(
            "{}. {}{}: acknowledge within {}{}\n",
            i + 1,
            t.name,
            if t.mention.is_empty() {
                String::new()
            } else {
                format!(" ({})", t.mention.join(" "))
            },
            crate::config::human_duration(t.ack_timeout),
            t.quiet_hours.map_or(String::new(), |q| format!(
                "; passed over {}-{}",
                q.from.format("%H:%M"),
                q.to.format("%H:%M")
            ))
        ));
    }
    out.push_str(&format!(
        "{} user(s) may act from Telegram.",
        ctx.ack_users.len()
    ));
    out
}

/// Today's figures per brand (or for one): the default `/report`.
pub fn todays_figures(
    store: &Store,
    brands: &[String],
    only: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let chosen: Vec<&String> = match only {
        Some(b) => match brands.iter().find(|x| x.as_str() == b) {
            Some(x) => vec![x],
            None => {
                return format!("Unknown brand {b:?}. Brands: {}.", brands.join(", "));
            }
        },
        None => brands.iter().collect(),
    };
    if chosen.is_empty() {
        return "No brands are configured.".to_string();
    }
    let mut out = format!("Today ({}):\n", store.local_date(now));
    for brand in chosen {
        match crate::admin::read::daily(store, brand, 1, now) {
            Ok(days) => {
                let d = days.last();
                let (mentions, negative, harm, opened) = d.map_or((0, 0, 0.0, 0), |d| {
                    (d.mentions, d.negative, d.harm, d.incidents_opened)
                });
                let rate = d
                    .and_then(|d| d.complaint_rate)
                    .map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
                out.push_str(&format!(
                    "{brand}: {mentions} mentions, {negative} negative, complaint rate {rate}, harm index {harm:.1}, {opened} incident(s) opened\n"
                ));
            }
            Err(e) => out.push_str(&format!("{brand}: cannot read figures: {e:#}\n")),
        }
    }
    out.trim_end().to_string()
}

/// What a button press answers: the toast text, and whether it is a refusal or error (shown as
/// an alert the person must dismiss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonAnswer {
    pub text: String,
    pub alert: bool,
}

/// Handles a button press (`ack:12`, `resolve:12`, `fp:12`, `mute:12`).
pub async fn handle_callback(
    ctx: &CommandContext,
    data: &str,
    from: Option<&Sender>,
) -> ButtonAnswer {
    let refuse = |text: String| ButtonAnswer { text, alert: true };
    let Some((verb, id)) = data
        .split_once(':')
        .and_then(|(v, id)| Some((v, id.parse::<u64>().ok()?)))
    else {
        return refuse(format!("Unknown button {data:?}."));
    };
    let what = match verb {
        "ack" => "acknowledge incidents",
        "resolve" => "resolve incidents",
        "fp" => "mark false positives",
        "mute" => "mute incidents",
        _ => return refuse(format!("Unknown button {data:?}.")),
    };
    let actor = match authorize(ctx, from, what) {
        Ok(a) => a,
        Err(refusal) => return refuse(refusal),
    };
    let by = By {
        actor: &actor,
        via: "telegram",
    };
    let now = Utc::now();
    let answer = match verb {
        "ack" => ctx
            .incidents
            .acknowledge(id, by, now)
            .await
            .map(|o| describe(o, &actor)),
        "resolve" => ctx
            .incidents
            .resolve(id, by, None, now)
            .await
            .map(|o| describe(o, &actor)),
        "fp" => false_positive(ctx, &Target::Incident(id), &actor, now),
        _ => mute_incident(ctx, id, by, now),
    };
    match answer {
        Ok(text) => ButtonAnswer {
            alert: text.starts_with("No ") || text.starts_with("Nothing"),
            text,
        },
        Err(e) => refuse(format!("⚠️ failed: {e:#}")),
    }
}

/// The Mute 1h button: the incident's brand, for an hour.
fn mute_incident(ctx: &CommandContext, id: u64, by: By<'_>, now: DateTime<Utc>) -> Result<String> {
    let Some(incident): Option<Incident> = ctx.incidents.get(id)? else {
        return Ok(format!("No incident #{id}."));
    };
    let silence = ctx.incidents.mute(
        SilenceKind::Brand,
        &incident.brand,
        BUTTON_MUTE,
        by,
        &format!("Mute 1h on incident #{id}"),
        now,
    )?;
    Ok(format!(
        "🔕 {} muted for 1h by {} (silence {}).",
        incident.brand, by.actor.name, silence.id
    ))
}

/// The first `max` characters, with "…" when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Registers the command list with Telegram, so clients offer it.
pub async fn register_commands(api: &BotApi) -> Result<(), super::api::ApiError> {
    let commands: Vec<Value> = Command::bot_commands()
        .into_iter()
        .map(
            |c| json!({"command": c.command.trim_start_matches('/'), "description": c.description}),
        )
        .collect();
    api.call("setMyCommands", &json!({ "commands": commands }))
        .await
        .map(|_| ())
}

/// Long-polls for commands and button presses until shutdown.
pub async fn run_commands(
    api: BotApi,
    ctx: CommandContext,
    poll_timeout: Duration,
    mut shutdown: Shutdown,
) -> Result<()> {
    if let Err(e) = register_commands(&api).await {
        tracing::warn!(error = %e.describe(), "setMyCommands failed; commands work, but clients will not suggest them");
    }
    // The bot's username lets "/ack@our_bot 3" parse in groups with several bots.
    let username = match api.call("getMe", &json!({})).await {
        Ok(me) => me["username"].as_str().unwrap_or_default().to_string(),
        Err(e) => {
            tracing::warn!(error = %e.describe(), "getMe failed; commands addressed as /cmd@bot will not parse");
            String::new()
        }
    };
    let mut offset = ctx.store.meta_u64(OFFSET_KEY)?.unwrap_or(0);
    tracing::info!(offset, "reading Telegram commands from the stored offset");
    let mut failures: u32 = 0;
    loop {
        let params = json!({
            "offset": offset,
            "timeout": poll_timeout.as_secs(),
            "allowed_updates": ["message", "callback_query"],
        });
        // The HTTP request itself must not outlive the long poll by much.
        let deadline = poll_timeout + Duration::from_secs(10);
        let answer = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            r = api.call_with_timeout("getUpdates", &params, Some(deadline)) => r,
        };
        let updates = match answer {
            Ok(Value::Array(updates)) => {
                failures = 0;
                updates
            }
            Ok(other) => {
                tracing::warn!(answer = %other, "getUpdates answered something other than a list");
                Vec::new()
            }
            Err(e) => {
                failures += 1;
                let wait = match &e {
                    super::api::ApiError::RetryAfter { wait, .. } => *wait,
                    _ => Duration::from_secs(2u64.pow(failures.min(5))),
                };
                tracing::warn!(error = %e.describe(), failures, "getUpdates failed; polling again in {}", crate::config::human_duration(wait));
                tokio::select! {
                    _ = shutdown.wait() => return Ok(()),
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        for update in updates {
            let Some(id) = update["update_id"].as_u64() else {
                tracing::warn!(update = %update, "an update without update_id; skipped");
                continue;
            };
            if id < offset {
                continue;
            }
            offset = id + 1;
            // Stored and on disk before anything is done about it: see the module docs.
            ctx.store.set_meta_u64(OFFSET_KEY, offset)?;
            ctx.store.flush().await?;
            handle_update(&api, &ctx, &update, &username).await;
        }
    }
}

/// Acts on one update and answers it. Failures to answer are logged: the update is handled.
async fn handle_update(api: &BotApi, ctx: &CommandContext, update: &Value, username: &str) {
    if let Some(query) = update.get("callback_query") {
        let from = Sender::from_json(&query["from"]);
        let data = query["data"].as_str().unwrap_or("");
        tracing::info!(data, user = ?from, "button pressed");
        let answer = handle_callback(ctx, data, from.as_ref()).await;
        let params = json!({
            "callback_query_id": query["id"],
            "text": shorten(&answer.text, 200),
            "show_alert": answer.alert,
        });
        if let Err(e) = api.call("answerCallbackQuery", &params).await {
            tracing::warn!(error = %e.describe(), "could not answer a button press");
        }
        return;
    }
    let Some(message) = update.get("message") else {
        return;
    };
    let Some(text) = message["text"].as_str().filter(|t| t.starts_with('/')) else {
        return;
    };
    let Ok(command) = Command::parse(text, username) else {
        // Unknown commands are other bots' business in a shared group: stay quiet.
        return;
    };
    let Some(chat_id) = message["chat"]["id"].as_i64() else {
        return;
    };
    tracing::info!(chat = chat_id, command = ?command, "command received");
    let from = Sender::from_json(&message["from"]);
    let reply = handle_command(ctx, command, from.as_ref(), chat_id).await;
    if let Some((outbox, channel)) = &ctx.replies {
        if let Err(e) = outbox.enqueue_reply(channel, &chat_id.to_string(), &reply, Utc::now()) {
            tracing::error!(chat = chat_id, error = %format!("{e:#}"), "could not queue the answer to a command");
        }
        return;
    }
    let params = json!({
        "chat_id": chat_id,
        "text": reply,
        "link_preview_options": {"is_disabled": true},
    });
    if let Err(e) = api.call("sendMessage", &params).await {
        tracing::error!(chat = chat_id, error = %e.describe(), "could not reply to a command");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Signal;
    use crate::store::IncidentState;

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
            Command::parse("/ack", "bot").unwrap(),
            Command::Ack(String::new())
        );
        assert_eq!(
            Command::parse("/resolve #12 refunded", "bot").unwrap(),
            Command::Resolve("#12 refunded".into())
        );
        assert_eq!(
            Command::parse("/mute brand 度小满 2h", "bot").unwrap(),
            Command::Mute("brand 度小满 2h".into())
        );
        assert_eq!(Command::parse("/oncall", "bot").unwrap(), Command::Oncall);
        assert!(Command::parse("/nope", "bot").is_err());
        assert_eq!(parse_id("#12 note"), Some((12, "note")));
        assert_eq!(parse_id("twelve"), None);
    }

    fn user(id: u64) -> Sender {
        Sender {
            id,
            name: format!("@user{id}"),
        }
    }

    async fn ctx_with(brands: &[&str]) -> CommandContext {
        let store = Store::temporary().unwrap();
        let incidents = Incidents::new(store.clone(), vec![], 3);
        for brand in brands {
            let signal = Signal {
                brand: brand.to_string(),
                window_count: 5,
                baseline: 0.0,
                window: Duration::from_secs(60),
                top: vec![],
            };
            incidents.open(&signal, Utc::now()).await.unwrap();
        }
        CommandContext::new(
            incidents,
            store,
            vec![7],
            Some(-100),
            brands.iter().map(|b| b.to_string()).collect(),
        )
    }

    #[tokio::test]
    async fn only_allowed_users_act() {
        let ctx = ctx_with(&["度小满"]).await;
        for command in [
            Command::Ack("1".into()),
            Command::Resolve("1".into()),
            Command::Incidents,
            Command::Help,
            Command::Fp("1".into()),
            Command::Mute("brand 度小满 1h".into()),
        ] {
            let reply = handle_command(&ctx, command.clone(), Some(&user(8)), -100).await;
            assert!(
                reply.contains("not allowed") && reply.contains("id 8"),
                "{command:?}: {reply}"
            );
        }
        let reply = handle_command(&ctx, Command::Ack("1".into()), None, -100).await;
        assert!(reply.contains("unknown sender"), "{reply}");
        assert_eq!(
            ctx.incidents.get(1).unwrap().unwrap().state,
            IncidentState::Triggered
        );
        assert!(ctx.store.feedback().unwrap().is_empty());
        assert!(ctx.incidents.silences().unwrap().is_empty());

        let reply = handle_command(&ctx, Command::Ack(String::new()), Some(&user(7)), -100).await;
        assert!(
            reply.contains("acknowledged by @user7"),
            "the single open one: {reply}"
        );
        let reply = handle_command(
            &ctx,
            Command::Resolve("handled it".into()),
            Some(&user(7)),
            -100,
        )
        .await;
        assert!(reply.contains("resolved by @user7"), "{reply}");
        let incident = ctx.incidents.get(1).unwrap().unwrap();
        assert!(incident
            .history
            .last()
            .unwrap()
            .note
            .ends_with("handled it"));
        let reply = handle_command(&ctx, Command::Reopen("1".into()), Some(&user(7)), -100).await;
        assert!(reply.contains("reopened by @user7"), "{reply}");
    }

    #[tokio::test]
    async fn an_omitted_id_needs_exactly_one_open_incident() {
        let ctx = ctx_with(&["度小满", "别家"]).await;
        let reply = handle_command(&ctx, Command::Ack(String::new()), Some(&user(7)), -100).await;
        assert!(
            reply.contains("2 incidents are open")
                && reply.contains("#1 度小满")
                && reply.contains("#2 别家"),
            "{reply}"
        );
        let ctx = ctx_with(&[]).await;
        let reply =
            handle_command(&ctx, Command::Resolve(String::new()), Some(&user(7)), -100).await;
        assert!(reply.contains("No open incident"), "{reply}");
        let reply =
            handle_command(&ctx, Command::Reopen(String::new()), Some(&user(7)), -100).await;
        assert!(reply.starts_with("Usage"), "{reply}");
        let reply = handle_command(&ctx, Command::Ack("99".into()), Some(&user(7)), -100).await;
        assert_eq!(reply, "No incident #99.");
    }

    #[tokio::test]
    async fn mute_unmute_oncall_status_report() {
        let ctx = ctx_with(&["度小满"]).await;
        let reply = handle_command(
            &ctx,
            Command::Mute("brand 度小满".into()),
            Some(&user(7)),
            -100,
        )
        .await;
        assert!(reply.starts_with("Usage"), "{reply}");
        let reply = handle_command(
            &ctx,
            Command::Mute("colour 度小满 2h".into()),
            Some(&user(7)),
            -100,
        )
        .await;
        assert!(reply.contains("Unknown mute kind"), "{reply}");
        let reply = handle_command(
            &ctx,
            Command::Mute("brand 度小满 soon".into()),
            Some(&user(7)),
            -100,
        )
        .await;
        assert!(reply.contains("not a duration"), "{reply}");
        let reply = handle_command(
            &ctx,
            Command::Mute("topic 暴力 催收 2h".into()),
            Some(&user(7)),
            -100,
        )
        .await;
        assert!(reply.contains("Muted topic \"暴力 催收\""), "{reply}");
        let silences = ctx.incidents.silences().unwrap();
        assert_eq!(silences.len(), 1);
        assert_eq!(silences[0].created_by, "@user7 via telegram");
        let reply =
            handle_command(&ctx, Command::Unmute(String::new()), Some(&user(7)), -100).await;
        assert!(reply.contains("lifted"), "{reply}");
        let reply =
            handle_command(&ctx, Command::Unmute(String::new()), Some(&user(7)), -100).await;
        assert_eq!(reply, "No mute is active.");
        let reply = handle_command(&ctx, Command::Oncall, Some(&user(7)), -100).await;
        assert!(reply.contains("No escalation tiers"), "{reply}");
        let reply = handle_command(&ctx, Command::Status, Some(&user(7)), -100).await;
        assert!(
            reply.contains("all polling normally") && reply.contains("#1 度小满"),
            "{reply}"
        );
        let reply =
            handle_command(&ctx, Command::Report(String::new()), Some(&user(7)), -100).await;
        assert!(reply.contains("度小满: 0 mentions"), "{reply}");
        let reply =
            handle_command(&ctx, Command::Report("nobody".into()), Some(&user(7)), -100).await;
        assert!(reply.contains("Unknown brand \"nobody\""), "{reply}");
        let help = handle_command(&ctx, Command::Help, Some(&user(7)), -100).await;
        for c in [
            "/status", "/hits", "/mute", "/unmute", "/fp", "/report", "/oncall", "/reopen",
        ] {
            assert!(help.contains(c), "{c}: {help}");
        }
    }

    #[tokio::test]
    async fn buttons_act_for_allowed_users_only() {
        let ctx = ctx_with(&["度小满"]).await;
        let answer = handle_callback(&ctx, "ack:1", Some(&user(8))).await;
        assert!(
            answer.alert && answer.text.contains("not allowed"),
            "{answer:?}"
        );
        assert_eq!(
            ctx.incidents.get(1).unwrap().unwrap().state,
            IncidentState::Triggered
        );
        let answer = handle_callback(&ctx, "ack:1", Some(&user(7))).await;
        assert!(
            !answer.alert && answer.text.contains("acknowledged by @user7"),
            "{answer:?}"
        );
        let answer = handle_callback(&ctx, "mute:1", Some(&user(7))).await;
        assert!(answer.text.contains("muted for 1h"), "{answer:?}");
        assert_eq!(ctx.incidents.silences().unwrap()[0].name, "度小满");
        let answer = handle_callback(&ctx, "fp:1", Some(&user(7))).await;
        assert!(
            answer.alert && answer.text.contains("no stored negative hits"),
            "{answer:?}"
        );
        for bad in ["explode:1", "ack:x", "ack"] {
            let answer = handle_callback(&ctx, bad, Some(&user(7))).await;
            assert!(
                answer.alert && answer.text.contains("Unknown button"),
                "{bad}: {answer:?}"
            );
        }
        let answer = handle_callback(&ctx, "resolve:1", Some(&user(7))).await;
        assert!(answer.text.contains("resolved by @user7"), "{answer:?}");
    }

    #[test]
    fn senders_read_from_json() {
        let s =
            Sender::from_json(&json!({"id": 5, "first_name": "Li", "last_name": "Lei"})).unwrap();
        assert_eq!(
            s,
            Sender {
                id: 5,
                name: "Li Lei".into()
            }
        );
        let s = Sender::from_json(&json!({"id": 5, "username": "li"})).unwrap();
        assert_eq!(s.name, "@li");
        assert!(Sender::from_json(&json!({})).is_none());
    }
}
