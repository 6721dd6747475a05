//! The outbox: every message is stored before anyone tries to send it, and one worker per
//! channel delivers that channel's queue in order.
//!
//! What is promised (the README says the same):
//! - **Stored first.** [`Outbox::announce`] writes a decision's messages (one per channel) in
//!   one transaction, called by [`crate::incident::Incidents`] right after the decision and
//!   before the store is flushed.
//! - **In order, per channel.** A worker only ever works on its channel's oldest waiting
//!   message; a newer one never overtakes it or resets its backoff. Workers are independent, so
//!   a failing Feishu never delays Telegram.
//! - **Re-checked before sending.** A page or reminder whose incident a person has acknowledged
//!   or resolved since it was decided is dropped and recorded as superseded; one held back by a
//!   silence is recorded as silenced.
//! - **At least once, with the smallest duplicate window.** "sending" is stored (and flushed)
//!   before the request and "delivered" after it. A message found "sending" at start-up was in
//!   flight when the daemon stopped: it is sent once more, marked as a possible repeat. Nothing
//!   else is sent twice.
//! - **Nothing disappears.** After `fallback_after` of failures the full text also goes to the
//!   console and the log, with the reason; waiting messages survive restarts and are listed by
//!   `yuqing notices` and `/api/v1/notices`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use tokio::sync::Notify;

use crate::incident::{Announce, Incidents, Notice};
use crate::notify::channel::{Channel, Content, Message};
use crate::notify::{console, HowToAct};
use crate::shutdown::Shutdown;
use crate::store::{DeliveryStatus, Incident, IncidentState, MessageKind, OutboxEntry, Store};

/// How long messages that were done with stay listed (`yuqing notices --all`).
const KEEP_DAYS: i64 = 30;

/// How a worker waits between failed attempts, and when it gives up waiting quietly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles with each further failure…
    pub first: Duration,
    /// …up to this.
    pub max: Duration,
    /// After failing this long, the message's full text also goes to the console and the log.
    pub fallback_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(1),
            max: Duration::from_secs(300),
            fallback_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failure in a row: capped exponential, with jitter in
    /// [50%, 100%] so channels that failed together do not retry in lockstep.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let doubled = self
            .first
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(30)));
        doubled
            .min(self.max)
            .mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// A PNG for an incident's messages (the negative-volume chart), when one can be drawn.
pub type ChartFn = Arc<dyn Fn(&Incident) -> Option<Vec<u8>> + Send + Sync>;

/// The incident report (问题诊断报告) as a title and Markdown, written from the store.
pub type ReportFn = Arc<dyn Fn(&Incident) -> Result<(String, String)> + Send + Sync>;

/// The daily digest of a local day: a title, plain text, and (when asked for) a chart.
pub type DigestFn =
    Arc<dyn Fn(chrono::NaiveDate, bool) -> Result<(String, String, Option<Vec<u8>>)> + Send + Sync>;

/// Stores messages for every channel, and wakes their workers.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    channels: Vec<String>,
    wake: Arc<HashMap<String, Arc<Notify>>>,
    /// Whether a resolve is followed by the incident report.
    reports: bool,
}

impl Outbox {
    pub fn new(store: Store, channels: Vec<String>) -> Outbox {
        let wake = channels
            .iter()
            .map(|c| (c.clone(), Arc::new(Notify::new())))
            .collect();
        Outbox {
            store,
            channels,
            wake: Arc::new(wake),
            reports: false,
        }
    }

    /// Follows every resolve (by a person or by itself) with the incident report.
    pub fn with_reports(mut self) -> Outbox {
        self.reports = true;
        self
    }

    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// Marks messages that were being sent when the daemon stopped as possible repeats and
    /// puts them back in their queues, and forgets messages done with over a month ago. Run
    /// once, before the workers start.
    pub fn recover(&self) -> Result<usize> {
        let pruned = self
            .store
            .prune_outbox(Utc::now() - ChronoDuration::days(KEEP_DAYS))?;
        if pruned > 0 {
            tracing::info!(
                pruned,
                "forgot outbox messages done with over {KEEP_DAYS} days ago"
            );
        }
        let mut recovered = 0;
        for mut entry in self.store.outbox_waiting()? {
            if entry.status == DeliveryStatus::Sending {
                entry.status = DeliveryStatus::Pending;
                entry.possible_repeat = true;
                self.store.update_outbox(&entry)?;
                recovered += 1;
                tracing::warn!(
                    channel = %entry.channel,
                    seq = entry.seq,
                    kind = entry.kind.name(),
                    "a message was in flight when yuqing stopped; sending it again as a possible repeat"
                );
            }
        }
        Ok(recovered)
    }

    /// Queues already-written text (a digest, a report, a source-health notice) for
    /// `channels`, or for every channel when empty.
    pub fn enqueue_text(
        &self,
        channels: &[String],
        title: &str,
        body: &str,
        markdown: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let kind = MessageKind::Text {
            title: title.to_string(),
            body: body.to_string(),
            markdown,
        };
        let targets: Vec<&String> = if channels.is_empty() {
            self.channels.iter().collect()
        } else {
            self.channels
                .iter()
                .filter(|c| channels.contains(c))
                .collect()
        };
        let mut entries = Vec::new();
        for channel in targets {
            entries.push(self.entry(channel, None, kind.clone(), None, 0, now)?);
        }
        self.store.enqueue_outbox(&entries)?;
        self.wake_all();
        Ok(())
    }

    /// Queues the digest of local `day` for `channels` (every channel when empty).
    pub fn enqueue_digest(
        &self,
        channels: &[String],
        day: chrono::NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut entries = Vec::new();
        for channel in self
            .channels
            .iter()
            .filter(|c| channels.is_empty() || channels.contains(c))
        {
            entries.push(self.entry(channel, None, MessageKind::Digest { day }, None, 0, now)?);
        }
        self.store.enqueue_outbox(&entries)?;
        self.wake_all();
        Ok(())
    }

    /// Queues the answer to a chat command on `channel`, behind what that channel already has
    /// to send, so answers and alerts arrive in the order they were decided.
    pub fn enqueue_reply(
        &self,
        channel: &str,
        chat: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let kind = MessageKind::Reply {
            chat: chat.to_string(),
            text: text.to_string(),
        };
        let entry = self.entry(channel, None, kind, None, 0, now)?;
        self.store.enqueue_outbox(&[entry])?;
        if let Some(notify) = self.wake.get(channel) {
            notify.notify_one();
        }
        Ok(())
    }

    fn entry(
        &self,
        channel: &str,
        incident: Option<u64>,
        kind: MessageKind,
        decided_state: Option<IncidentState>,
        decided_changes: usize,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        Ok(OutboxEntry {
            channel: channel.to_string(),
            seq: self.store.next_outbox_seq()?,
            incident,
            kind,
            decided_state,
            decided_changes,
            created_at: now,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            first_failure_at: None,
            last_error: None,
            fell_back: false,
            possible_repeat: false,
            done_at: None,
            reference: None,
        })
    }

    fn wake_all(&self) {
        for notify in self.wake.values() {
            notify.notify_one();
        }
    }

    fn waker(&self, channel: &str) -> Arc<Notify> {
        self.wake
            .get(channel)
            .cloned()
            .unwrap_or_else(|| Arc::new(Notify::new()))
    }
}

impl Announce for Outbox {
    fn announce(&self, notices: &[Notice], now: DateTime<Utc>) -> Result<()> {
        let mut entries = Vec::new();
        for notice in notices {
            let incident = notice.incident();
            let mut kinds = vec![kind_of(notice)];
            let resolved = match notice {
                Notice::AutoResolved { .. } => true,
                Notice::Changed { incident, .. } => incident.state == IncidentState::Resolved,
                _ => false,
            };
            if resolved && self.reports {
                kinds.push(MessageKind::Report);
            }
            for kind in kinds {
                for channel in &self.channels {
                    entries.push(self.entry(
                        channel,
                        Some(incident.id),
                        kind.clone(),
                        Some(incident.state),
                        incident.history.len(),
                        now,
                    )?);
                }
            }
        }
        self.store.enqueue_outbox(&entries)?;
        self.wake_all();
        Ok(())
    }
}

/// What must be kept of a notice to send it later: the rest is rebuilt from the incident.
fn kind_of(notice: &Notice) -> MessageKind {
    match notice {
        Notice::Opened { incident, tier } => MessageKind::Opened {
            tier: tier.as_ref().map(|_| incident.tier),
        },
        Notice::Escalated {
            incident, repeat, ..
        } => MessageKind::Escalated {
            tier: incident.tier,
            repeat: *repeat,
        },
        Notice::AutoResolved { .. } => MessageKind::AutoResolved,
        Notice::Reminder { .. } => MessageKind::Reminder,
        Notice::AckExpired {
            incident,
            owner,
            tier,
        } => MessageKind::AckExpired {
            owner: owner.clone(),
            tier: tier.as_ref().map(|_| incident.tier),
        },
        Notice::Changed {
            incident,
            from,
            by,
            via,
        } => MessageKind::Changed {
            from: *from,
            to: incident.state,
            by: by.clone(),
            via: via.clone(),
        },
    }
}

/// Delivers one channel's queue.
pub struct Worker {
    pub channel: Arc<dyn Channel>,
    pub outbox: Outbox,
    pub incidents: Incidents,
    /// The web console's public URL, for links.
    pub console_url: Option<String>,
    pub policy: RetryPolicy,
    pub chart: Option<ChartFn>,
    pub report: Option<ReportFn>,
    pub digest: Option<DigestFn>,
}

/// What to do with the head of the queue.
enum Prepared {
    Send(Box<Message>),
    Drop(DeliveryStatus, String),
}

impl Worker {
    pub async fn run(self, mut shutdown: Shutdown) -> Result<()> {
        let name = self.channel.name().to_string();
        let wake = self.outbox.waker(&name);
        let store = self.outbox.store.clone();
        loop {
            if shutdown.is_triggered() {
                return Ok(());
            }
            let Some(mut entry) = store.outbox_head(&name)? else {
                tokio::select! {
                    _ = shutdown.wait() => return Ok(()),
                    _ = wake.notified() => continue,
                }
            };
            let now = Utc::now();
            if entry.next_attempt_at > now {
                let wait = (entry.next_attempt_at - now).to_std().unwrap_or_default();
                tokio::select! {
                    _ = shutdown.wait() => return Ok(()),
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
            let message = match self.prepare(&entry, now)? {
                Prepared::Drop(status, why) => {
                    tracing::info!(channel = %name, seq = entry.seq, kind = entry.kind.name(), incident = ?entry.incident, "not sent: {why}");
                    entry.status = status;
                    entry.last_error = Some(why);
                    entry.done_at = Some(now);
                    store.update_outbox(&entry)?;
                    continue;
                }
                Prepared::Send(message) => message,
            };
            entry.status = DeliveryStatus::Sending;
            store.update_outbox(&entry)?;
            store.flush().await?;
            let sent = {
                let send = self.channel.send(&message);
                tokio::pin!(send);
                tokio::select! {
                    r = &mut send => Some(r),
                    // A request under way is given a moment to finish, so a clean stop does not
                    // leave it in doubt; after that it stays "sending" and is repeated on start.
                    _ = shutdown.wait() => tokio::time::timeout(Duration::from_secs(5), send).await.ok(),
                }
            };
            let Some(sent) = sent else {
                return Ok(());
            };
            let now = Utc::now();
            match sent {
                Ok(delivered) => {
                    entry.status = DeliveryStatus::Delivered;
                    entry.reference = delivered.reference;
                    entry.done_at = Some(now);
                    entry.last_error = None;
                    store.update_outbox(&entry)?;
                    if let (MessageKind::Opened { .. }, Some(id)) = (&entry.kind, entry.incident) {
                        self.incidents.mark_delivered(id).await?;
                    }
                    store.flush().await?;
                    tracing::info!(channel = %name, seq = entry.seq, kind = entry.kind.name(), incident = ?entry.incident, attempts = entry.attempts + 1, "delivered");
                }
                Err(e) if e.permanent => {
                    tracing::error!(channel = %name, seq = entry.seq, kind = entry.kind.name(), error = %e, "the channel refused the message for good; moving on");
                    if !entry.fell_back {
                        fall_back(&name, &message, &e.reason);
                    }
                    entry.status = DeliveryStatus::Failed;
                    entry.attempts += 1;
                    entry.last_error = Some(e.reason);
                    entry.done_at = Some(now);
                    store.update_outbox(&entry)?;
                    store.flush().await?;
                }
                Err(e) => {
                    entry.attempts += 1;
                    let since = *entry.first_failure_at.get_or_insert(now);
                    let mut wait = self.policy.backoff(entry.attempts, jitter());
                    if let Some(asked) = e.retry_after {
                        wait = wait.max(asked);
                    }
                    entry.status = DeliveryStatus::Pending;
                    entry.next_attempt_at =
                        now + ChronoDuration::from_std(wait).unwrap_or(ChronoDuration::zero());
                    entry.last_error = Some(e.reason.clone());
                    let failing_for = (now - since).to_std().unwrap_or_default();
                    if !entry.fell_back && failing_for >= self.policy.fallback_after {
                        fall_back(
                            &name,
                            &message,
                            &format!(
                                "{} has failed for {}: {}",
                                name,
                                crate::config::human_duration(failing_for),
                                e.reason
                            ),
                        );
                        entry.fell_back = true;
                    }
                    store.update_outbox(&entry)?;
                    tracing::warn!(channel = %name, seq = entry.seq, kind = entry.kind.name(), attempts = entry.attempts, error = %e, "not delivered; retrying in {}", crate::config::human_duration(wait));
                }
            }
        }
    }

    /// Rebuilds the message from the incident as it is now, or decides not to send it.
    fn prepare(&self, entry: &OutboxEntry, now: DateTime<Utc>) -> Result<Prepared> {
        let how = HowToAct {
            console_url: self.console_url.clone(),
            chat_commands: self.channel.kind() == "telegram",
        };
        let message = |content: Content, earlier: Vec<String>, image: Option<Vec<u8>>| {
            Prepared::Send(Box::new(Message {
                content,
                how: how.clone(),
                possible_repeat: entry.possible_repeat,
                earlier,
                image,
            }))
        };
        if let MessageKind::Text {
            title,
            body,
            markdown,
        } = &entry.kind
        {
            let content = Content::Text {
                title: title.clone(),
                body: body.clone(),
                markdown: *markdown,
            };
            return Ok(message(content, Vec::new(), None));
        }
        if let MessageKind::Digest { day } = &entry.kind {
            let Some(digest) = &self.digest else {
                return Ok(Prepared::Drop(
                    DeliveryStatus::Failed,
                    "no digest writer is configured".into(),
                ));
            };
            // Charts go to the channels that draw incident charts too (chat apps with photos).
            let (title, body, image) = digest(*day, self.chart.is_some())?;
            let content = Content::Text {
                title,
                body,
                markdown: false,
            };
            return Ok(message(content, Vec::new(), image));
        }
        if let MessageKind::Reply { chat, text } = &entry.kind {
            let content = Content::Reply {
                chat: chat.clone(),
                text: text.clone(),
            };
            return Ok(message(content, Vec::new(), None));
        }
        let Some(id) = entry.incident else {
            return Ok(Prepared::Drop(
                DeliveryStatus::Failed,
                "an incident message without an incident".into(),
            ));
        };
        let Some(incident) = self.incidents.get(id)? else {
            return Ok(Prepared::Drop(
                DeliveryStatus::Superseded,
                format!("incident #{id} no longer exists"),
            ));
        };
        if entry.kind == MessageKind::Report {
            let Some(report) = &self.report else {
                return Ok(Prepared::Drop(
                    DeliveryStatus::Failed,
                    "no incident report writer is configured".into(),
                ));
            };
            let (title, body) = report(&incident)?;
            let content = Content::Text {
                title,
                body,
                markdown: true,
            };
            return Ok(message(content, Vec::new(), None));
        }
        if let Some(why) = superseded(entry, &incident) {
            return Ok(Prepared::Drop(DeliveryStatus::Superseded, why));
        }
        let notice = self.notice(&entry.kind, incident);
        if let Some(silence) = self.incidents.silenced(&notice, now)? {
            return Ok(Prepared::Drop(
                DeliveryStatus::Silenced,
                format!(
                    "silenced by {} {} until {} ({})",
                    format!("{:?}", silence.kind).to_lowercase(),
                    silence.name,
                    silence.until.format("%Y-%m-%d %H:%M UTC"),
                    silence.id
                ),
            ));
        }
        let earlier = self
            .outbox
            .store
            .outbox_references(self.channel.name(), id)?;
        let image = match (&entry.kind, &self.chart) {
            (MessageKind::Opened { .. } | MessageKind::Escalated { .. }, Some(chart)) => {
                chart(notice.incident())
            }
            _ => None,
        };
        Ok(message(Content::Incident(Box::new(notice)), earlier, image))
    }

    fn notice(&self, kind: &MessageKind, incident: Incident) -> Notice {
        let tier = |t: &Option<usize>| t.and_then(|t| self.incidents.tiers().get(t).cloned());
        match kind {
            MessageKind::Opened { tier: t } => Notice::Opened {
                tier: tier(t),
                incident,
            },
            MessageKind::Escalated { tier: t, repeat } => match tier(&Some(*t)) {
                Some(config) => Notice::Escalated {
                    tier: config,
                    tier_number: t + 1,
                    repeat: *repeat,
                    incident,
                },
                // The tier was removed from the config since: page as an opening alert.
                None => Notice::Opened {
                    tier: None,
                    incident,
                },
            },
            MessageKind::AutoResolved => Notice::AutoResolved { incident },
            MessageKind::Reminder => Notice::Reminder { incident },
            MessageKind::AckExpired { owner, tier: t } => Notice::AckExpired {
                owner: owner.clone(),
                tier: tier(t),
                incident,
            },
            MessageKind::Changed { from, by, via, .. } => Notice::Changed {
                incident,
                from: *from,
                by: by.clone(),
                via: via.clone(),
            },
            MessageKind::Text { .. }
            | MessageKind::Report
            | MessageKind::Reply { .. }
            | MessageKind::Digest { .. } => {
                unreachable!("text and reports are sent as they are")
            }
        }
    }
}

/// Why a page or reminder should no longer be sent: a person changed the incident after it
/// was decided. Announcements of changes and of auto-resolves are always sent.
fn superseded(entry: &OutboxEntry, incident: &Incident) -> Option<String> {
    let pages = matches!(
        entry.kind,
        MessageKind::Opened { .. } | MessageKind::Escalated { .. } | MessageKind::AckExpired { .. }
    );
    let reminds = matches!(entry.kind, MessageKind::Reminder);
    if !pages && !reminds {
        return None;
    }
    let since = incident.history.iter().skip(entry.decided_changes);
    for t in since {
        let by = t.by.as_ref().map(|a| a.name.as_str());
        match (t.to, by) {
            (IncidentState::Acknowledged, Some(by)) if pages => {
                return Some(format!("acknowledged by {by} before it could be sent"));
            }
            (IncidentState::Resolved, by) => {
                return Some(format!(
                    "resolved{} before it could be sent",
                    by.map(|b| format!(" by {b}")).unwrap_or_default()
                ));
            }
            (_, Some(by)) if reminds => {
                return Some(format!("changed by {by} after the reminder was decided"));
            }
            _ => {}
        }
    }
    None
}

/// The message's whole text to the console and the log, with why.
fn fall_back(channel: &str, message: &Message, reason: &str) {
    let text = message.plain_text();
    tracing::error!(%channel, reason = %reason, "not delivered to {channel}; the message follows on stdout");
    console::print(&format!("[not delivered to {channel}: {reason}]\n{text}"));
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes) as f64 / u32::MAX as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TierConfig;
    use crate::detect::Signal;
    use crate::incident::By;
    use crate::notify::channel::{Delivered, SendError, SendFuture};
    use crate::store::{Actor, SilenceKind};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// A channel that fails its next `failures` attempts (for good when `permanent`), and
    /// records what it delivered.
    struct Scripted {
        name: String,
        failures: AtomicU32,
        permanent: bool,
        delivered: Mutex<Vec<String>>,
        attempts: AtomicU32,
    }

    impl Scripted {
        fn new(name: &str, failures: u32, permanent: bool) -> Arc<Scripted> {
            Arc::new(Scripted {
                name: name.into(),
                failures: AtomicU32::new(failures),
                permanent,
                delivered: Mutex::default(),
                attempts: AtomicU32::new(0),
            })
        }

        fn delivered(&self) -> Vec<String> {
            self.delivered.lock().unwrap().clone()
        }
    }

    impl Channel for Scripted {
        fn name(&self) -> &str {
            &self.name
        }
        fn kind(&self) -> &'static str {
            "scripted"
        }
        fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
            Box::pin(async move {
                self.attempts.fetch_add(1, Ordering::SeqCst);
                let failing = self
                    .failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    return Err(match self.permanent {
                        true => SendError::permanent("400 bad request"),
                        false => SendError::transient("502 bad gateway"),
                    });
                }
                let first_line = message
                    .plain_text()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                self.delivered.lock().unwrap().push(first_line);
                Ok(Delivered {
                    reference: Some(format!("m{}", self.delivered.lock().unwrap().len())),
                })
            })
        }
    }

    fn tiers() -> Vec<TierConfig> {
        vec![TierConfig {
            name: "on-call".into(),
            mention: vec!["@a".into()],
            ack_timeout: Duration::from_secs(60),
            quiet_hours: None,
            targets: Default::default(),
        }]
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
            fallback_after: Duration::from_millis(1),
        }
    }

    struct Rig {
        store: Store,
        outbox: Outbox,
        incidents: Incidents,
        stop: crate::shutdown::Trigger,
        stopped: Shutdown,
        workers: Vec<tokio::task::JoinHandle<Result<()>>>,
    }

    impl Rig {
        fn new(store: Store, channels: &[&str]) -> Rig {
            let outbox = Outbox::new(
                store.clone(),
                channels.iter().map(|c| c.to_string()).collect(),
            )
            .with_reports();
            let incidents =
                Incidents::new(store.clone(), tiers(), 3).with_announcer(Arc::new(outbox.clone()));
            let (stop, stopped) = crate::shutdown::channel();
            Rig {
                store,
                outbox,
                incidents,
                stop,
                stopped,
                workers: Vec::new(),
            }
        }

        fn start(&mut self, channel: Arc<Scripted>) {
            let worker = Worker {
                channel,
                outbox: self.outbox.clone(),
                incidents: self.incidents.clone(),
                console_url: None,
                policy: fast(),
                chart: None,
                report: Some(Arc::new(|i: &Incident| {
                    Ok((format!("report #{}", i.id), format!("{} hits", i.hit_count)))
                })),
                digest: None,
            };
            self.workers
                .push(tokio::spawn(worker.run(self.stopped.clone())));
        }

        async fn open(&self, now: DateTime<Utc>) -> Incident {
            let signal = Signal {
                brand: "度小满".into(),
                window_count: 5,
                baseline: 0.5,
                window: Duration::from_secs(900),
                top: vec![],
            };
            let incident = self.incidents.open(&signal, now).await.unwrap();
            self.outbox
                .announce(&[self.incidents.opened_notice(incident.clone())], now)
                .unwrap();
            incident
        }

        async fn stop(self) -> Store {
            self.stop.trigger();
            for w in self.workers {
                w.await.unwrap().unwrap();
            }
            self.store
        }
    }

    /// Waits (bounded) until `done` holds for the store's outbox.
    async fn until(store: &Store, what: &str, done: impl Fn(&[OutboxEntry]) -> bool) {
        for _ in 0..1000 {
            let all = store.outbox_recent(1000).unwrap();
            if done(&all) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "timed out waiting for {what}: {:#?}",
            store.outbox_recent(1000).unwrap()
        );
    }

    fn status_of(all: &[OutboxEntry], kind: &str) -> Vec<DeliveryStatus> {
        let mut v: Vec<&OutboxEntry> = all.iter().filter(|e| e.kind.name() == kind).collect();
        v.sort_by_key(|e| e.seq);
        v.iter().map(|e| e.status).collect()
    }

    fn alice() -> Actor {
        Actor {
            id: 7,
            name: "@alice".into(),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn pages_decided_before_an_ack_are_superseded_and_the_ack_is_announced_in_order() {
        let mut rig = Rig::new(Store::temporary().unwrap(), &["chat"]);
        // The chat is down while the incident opens and escalates, and while it is acked.
        let incident = rig.open(t0()).await;
        rig.incidents
            .escalate_due(t0() + chrono::Duration::minutes(2))
            .await
            .unwrap();
        let by = By {
            actor: &alice(),
            via: "console",
        };
        rig.incidents
            .acknowledge(incident.id, by, t0() + chrono::Duration::minutes(3))
            .await
            .unwrap();
        let chat = Scripted::new("chat", 0, false);
        rig.start(chat.clone());
        until(&rig.store, "the queue to empty", |all| {
            all.iter().all(|e| !e.status.is_waiting())
        })
        .await;
        let all = rig.store.outbox_recent(100).unwrap();
        assert_eq!(status_of(&all, "opened"), [DeliveryStatus::Superseded]);
        assert_eq!(status_of(&all, "escalated"), [DeliveryStatus::Superseded]);
        assert_eq!(status_of(&all, "changed"), [DeliveryStatus::Delivered]);
        let sent = chat.delivered();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(
            sent[0].contains("acknowledged by @alice (via console)"),
            "{sent:?}"
        );
        let reason = all
            .iter()
            .find(|e| e.kind.name() == "escalated")
            .and_then(|e| e.last_error.clone())
            .unwrap();
        assert!(reason.contains("acknowledged by @alice"), "{reason}");
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_resolve_is_announced_then_followed_by_the_incident_report() {
        let mut rig = Rig::new(Store::temporary().unwrap(), &["chat"]);
        let chat = Scripted::new("chat", 0, false);
        rig.start(chat.clone());
        let incident = rig.open(t0()).await;
        until(&rig.store, "the alert", |all| {
            all.iter().all(|e| e.status == DeliveryStatus::Delivered)
        })
        .await;
        let by = By {
            actor: &alice(),
            via: "telegram",
        };
        rig.incidents
            .resolve(incident.id, by, Some("refunds sent"), t0())
            .await
            .unwrap();
        until(&rig.store, "the queue to empty", |all| {
            all.len() == 3 && all.iter().all(|e| e.status == DeliveryStatus::Delivered)
        })
        .await;
        let sent = chat.delivered();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent[0].contains("🚨"), "{sent:?}");
        assert!(
            sent[1].contains("resolved by @alice (via telegram)"),
            "{sent:?}"
        );
        assert_eq!(sent[2], format!("report #{}", incident.id));
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_failing_channel_keeps_its_order_and_does_not_delay_another() {
        let mut rig = Rig::new(Store::temporary().unwrap(), &["down", "up"]);
        let down = Scripted::new("down", 8, false);
        let up = Scripted::new("up", 0, false);
        rig.start(down.clone());
        rig.start(up.clone());
        let incident = rig.open(t0()).await;
        rig.incidents
            .escalate_due(t0() + chrono::Duration::minutes(2))
            .await
            .unwrap();
        until(&rig.store, "the healthy channel to deliver both", |all| {
            all.iter()
                .filter(|e| e.channel == "up")
                .all(|e| e.status == DeliveryStatus::Delivered)
        })
        .await;
        let waiting = rig.store.outbox_waiting().unwrap();
        assert!(
            waiting.iter().any(|e| e.channel == "down"),
            "the failing channel still has its messages: {waiting:#?}"
        );
        until(&rig.store, "the failing channel to recover", |all| {
            all.iter().all(|e| e.status == DeliveryStatus::Delivered)
        })
        .await;
        // Opened before Escalated on both, whatever the failures in between.
        for chat in [&down, &up] {
            let sent = chat.delivered();
            assert_eq!(sent.len(), 2, "{sent:?}");
            assert!(sent[0].contains("🚨"), "{sent:?}");
            assert!(sent[1].contains("⏰"), "{sent:?}");
        }
        assert_eq!(down.attempts.load(Ordering::SeqCst), 10);
        let opened = rig
            .store
            .outbox_recent(100)
            .unwrap()
            .into_iter()
            .find(|e| e.channel == "down" && e.kind.name() == "opened")
            .unwrap();
        assert_eq!(opened.attempts, 8, "failed attempts are counted");
        assert!(
            opened.fell_back,
            "its text went to the console after fallback_after"
        );
        assert!(
            rig.incidents
                .get(incident.id)
                .unwrap()
                .unwrap()
                .alert_delivered
        );
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_message_refused_for_good_does_not_block_the_queue() {
        let mut rig = Rig::new(Store::temporary().unwrap(), &["chat"]);
        let chat = Scripted::new("chat", 1, true);
        rig.open(t0()).await;
        rig.outbox
            .enqueue_text(&[], "digest", "all quiet", false, t0())
            .unwrap();
        rig.start(chat.clone());
        until(&rig.store, "the queue to empty", |all| {
            all.iter().all(|e| !e.status.is_waiting())
        })
        .await;
        let all = rig.store.outbox_recent(100).unwrap();
        assert_eq!(status_of(&all, "opened"), [DeliveryStatus::Failed]);
        assert_eq!(status_of(&all, "text"), [DeliveryStatus::Delivered]);
        assert_eq!(chat.delivered(), ["digest"]);
        rig.stop().await;
    }

    #[tokio::test]
    async fn silenced_messages_are_recorded_not_sent() {
        let mut rig = Rig::new(Store::temporary().unwrap(), &["chat"]);
        let by = By {
            actor: &alice(),
            via: "cli",
        };
        rig.incidents
            .mute(
                SilenceKind::Brand,
                "度小满",
                Duration::from_secs(3600 * 24 * 365 * 100),
                by,
                "maintenance",
                Utc::now(),
            )
            .unwrap();
        rig.open(t0()).await;
        let chat = Scripted::new("chat", 0, false);
        rig.start(chat.clone());
        until(&rig.store, "the queue to empty", |all| {
            all.iter().all(|e| !e.status.is_waiting())
        })
        .await;
        let all = rig.store.outbox_recent(100).unwrap();
        assert_eq!(status_of(&all, "opened"), [DeliveryStatus::Silenced]);
        assert!(chat.delivered().is_empty());
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_message_in_flight_at_a_stop_is_sent_once_more_as_a_possible_repeat() {
        let dir = tempfile::tempdir().unwrap();
        {
            let rig = Rig::new(Store::open(dir.path()).unwrap(), &["chat"]);
            rig.open(t0()).await;
            rig.outbox
                .enqueue_text(&[], "digest", "all quiet", false, t0())
                .unwrap();
            // What a worker stores just before its request; then the process dies.
            let mut head = rig.store.outbox_head("chat").unwrap().unwrap();
            head.status = DeliveryStatus::Sending;
            rig.store.update_outbox(&head).unwrap();
            rig.store.flush().await.unwrap();
        }
        let mut rig = Rig::new(Store::open(dir.path()).unwrap(), &["chat"]);
        assert_eq!(rig.outbox.recover().unwrap(), 1);
        let chat = Scripted::new("chat", 0, false);
        rig.start(chat.clone());
        until(&rig.store, "the queue to empty", |all| {
            all.iter().all(|e| !e.status.is_waiting())
        })
        .await;
        let sent = chat.delivered();
        assert_eq!(sent.len(), 2, "each message once: {sent:?}");
        assert!(sent[0].starts_with("(possible repeat"), "{sent:?}");
        assert_eq!(sent[1], "digest", "only the one in doubt is marked");
        rig.stop().await;
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_below_the_full_wait() {
        let p = RetryPolicy {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            fallback_after: Duration::from_secs(120),
        };
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(4));
        assert_eq!(p.backoff(40, 1.0), Duration::from_secs(60));
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(2));
    }
}
