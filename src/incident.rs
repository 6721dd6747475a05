//! Incidents: Triggered → Acknowledged → Resolved, with escalation through the tiers while
//! nobody acknowledges.
//!
//! Rules, in the manner of Alertmanager:
//! - One open incident per brand. Negative hits while one is open attach to it (more count,
//!   better top posts) instead of opening another, so a storm of posts is one page.
//! - Every change is stored and flushed *before* anyone is told, so a crash can lose a
//!   message but never a state change; [`Incident::alert_delivered`] lets the next start send
//!   an opening alert that was stored but not delivered.
//! - Transitions are idempotent: acknowledging twice changes nothing and says who already
//!   owns it. A transition that contradicts the state (acknowledging a resolved incident,
//!   reopening while the brand has another open incident) is refused as a conflict. Updates
//!   go through the store's compare-and-swap, so a command racing the escalation ticker cannot
//!   lose either change.
//! - Every surface (chat, API, console, CLI) calls the same methods here, naming who acted
//!   and from where, so the history is one audit trail.
//!
//! This module decides; it writes no message text (notify does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::config::{IncidentsConfig, TierConfig};
use crate::detect::{Detector, Signal};
use crate::store::{
    Actor, Hit, Incident, IncidentState, PostSummary, Recorded, RecordedPost, Silence, SilenceKind,
    Store, Transition,
};

/// Something people must be told.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A new incident; `tier` is who is paged first (if tiers are configured).
    Opened {
        incident: Incident,
        tier: Option<TierConfig>,
    },
    /// Nobody acknowledged in time: the next tier is paged. `repeat` when the last tier is
    /// paged again.
    Escalated {
        incident: Incident,
        tier: TierConfig,
        tier_number: usize,
        repeat: bool,
    },
    /// The incident resolved by itself: its brand stayed calm for `resolve_after`.
    AutoResolved { incident: Incident },
    /// The owner of an acknowledged incident is reminded that it is still open.
    Reminder { incident: Incident },
    /// Acknowledged long ago and still unresolved: back to triggered, paging the first tier.
    AckExpired {
        incident: Incident,
        /// Who had it.
        owner: String,
        tier: Option<TierConfig>,
    },
    /// A person moved the incident (acknowledged, resolved, reopened) from any surface; it is
    /// announced in every channel of record, and chat alerts are edited to show it.
    Changed {
        incident: Incident,
        from: IncidentState,
        /// Who, by display name, and through which surface ("telegram", "console", "cli"…).
        by: String,
        via: String,
    },
}

impl Notice {
    /// The incident the notice is about.
    pub fn incident(&self) -> &Incident {
        match self {
            Notice::Opened { incident, .. }
            | Notice::Escalated { incident, .. }
            | Notice::AutoResolved { incident }
            | Notice::Reminder { incident }
            | Notice::AckExpired { incident, .. }
            | Notice::Changed { incident, .. } => incident,
        }
    }
}

/// The result of a person's transition on an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Changed(Incident),
    /// Nothing to do: it is already in the state asked for ("already acknowledged by …").
    Unchanged {
        incident: Incident,
        reason: String,
    },
    /// The transition contradicts the incident's state, e.g. acknowledging a resolved one.
    Conflict {
        incident: Incident,
        reason: String,
    },
    NotFound(u64),
}

/// Where decided notices go to be delivered: the outbox. Called after the decision is stored
/// and before the store is flushed, so a decision and its messages reach the disk together.
pub trait Announce: Send + Sync {
    fn announce(&self, notices: &[Notice], now: DateTime<Utc>) -> Result<()>;
}

/// Why a transition did not happen.
enum Refusal {
    Already(String),
    Conflict(String),
}

/// Who asked for a transition, and through which surface.
#[derive(Debug, Clone, Copy)]
pub struct By<'a> {
    pub actor: &'a Actor,
    /// `telegram`, `api`, `web` or `cli`.
    pub via: &'a str,
}

#[derive(Clone)]
pub struct Incidents {
    store: Store,
    tiers: Vec<TierConfig>,
    top_posts: usize,
    lifecycle: IncidentsConfig,
    /// How many times the policy runs again from tier 1 after its last tier.
    repeat: u32,
    /// Each open incident's background for its topic terms. It never changes for an incident,
    /// and is read for every post attached to it, so it is worked out once.
    backgrounds: Arc<Mutex<Backgrounds>>,
    /// Without one (replay, tests) notices are only returned.
    announcer: Option<Arc<dyn Announce>>,
}

/// Backgrounds by brand and the time they end before.
type Backgrounds = HashMap<(String, DateTime<Utc>), Arc<Vec<Hit>>>;

/// How many backgrounds are kept; more are dropped and worked out again when needed.
const MAX_BACKGROUNDS: usize = 64;

impl Incidents {
    pub fn new(store: Store, tiers: Vec<TierConfig>, top_posts: usize) -> Incidents {
        Incidents {
            store,
            tiers,
            top_posts,
            lifecycle: IncidentsConfig::default(),
            repeat: 0,
            backgrounds: Arc::default(),
            announcer: None,
        }
    }

    /// Every decided notice (and every person's transition) is handed to `announcer`.
    pub fn with_announcer(mut self, announcer: Arc<dyn Announce>) -> Incidents {
        self.announcer = Some(announcer);
        self
    }

    fn announce(&self, notices: &[Notice], now: DateTime<Utc>) -> Result<()> {
        match &self.announcer {
            Some(a) if !notices.is_empty() => a.announce(notices, now),
            _ => Ok(()),
        }
    }

    /// Runs the escalation policy `repeat` more times from tier 1 after its last tier.
    pub fn with_repeat(mut self, repeat: u32) -> Incidents {
        self.repeat = repeat;
        self
    }

    /// The first tier from `from` on that is not in its quiet hours at `now`; the last tier is
    /// paged whatever the hour, so an incident is never left with nobody to page.
    fn awake_tier(&self, from: usize, now: DateTime<Utc>) -> usize {
        let local = now.with_timezone(&self.store.time_zone()).time();
        let last = self.tiers.len().saturating_sub(1);
        (from..last)
            .find(|&i| !self.tiers[i].quiet_hours.is_some_and(|q| q.contains(local)))
            .unwrap_or(last.max(from.min(last)))
    }

    /// Critical posts, auto-resolve, reopening, reminders and ack expiry as configured.
    pub fn with_lifecycle(mut self, lifecycle: IncidentsConfig) -> Incidents {
        self.lifecycle = lifecycle;
        self
    }

    pub fn tiers(&self) -> &[TierConfig] {
        &self.tiers
    }

    pub fn get(&self, id: u64) -> Result<Option<Incident>> {
        self.store.incident(id)
    }

    pub fn open_incidents(&self) -> Result<Vec<Incident>> {
        self.store.open_incidents()
    }

    /// Stores a post and its hits, and in the same transaction attaches its negative hits to
    /// their brands' open incidents (more count, better top posts, topic terms), so a crash
    /// cannot leave an incident under-counted. Brands in [`Recorded::attached`] need no
    /// detection; the others go to [`Incidents::on_negative_hits`].
    pub fn record(
        &self,
        keys: &[String],
        hits: &[Hit],
        post: Option<&RecordedPost>,
        now: DateTime<Utc>,
    ) -> Result<Recorded> {
        let open: Vec<Incident> = match hits.iter().any(|h| h.negative) {
            true => self
                .store
                .open_incidents()?
                .into_iter()
                .filter(|i| hits.iter().any(|h| h.negative && h.brand == i.brand))
                .collect(),
            false => Vec::new(),
        };
        let mut backgrounds = HashMap::new();
        for incident in &open {
            backgrounds.insert(incident.brand.clone(), self.background_of(incident)?);
        }
        let targets: Vec<(String, u64)> = open.iter().map(|i| (i.brand.clone(), i.id)).collect();
        let top_posts = self.top_posts;
        self.store.record_post_attaching(
            keys,
            hits,
            post,
            &targets,
            |incident, new_hits| {
                let background = backgrounds
                    .get(&incident.brand)
                    .map_or(&[][..], |b| b.as_slice());
                attach(incident, new_hits, background, top_posts);
            },
            now,
        )
    }

    /// Handles new negative hits about `brand`: attaches them to its open incident, or, on a
    /// spike or a critical post, reopens its recently resolved incident or opens a new one.
    /// Returns the notice to send, if any.
    ///
    /// `use_threshold` says whether the simple threshold (`min_negative`, `spike_ratio`) may
    /// open one: true while the brand's spike test is still warming up; after that, spikes come
    /// from [`Incidents::on_spike`] and only critical posts open incidents here.
    pub async fn on_negative_hits(
        &self,
        brand: &str,
        hits: &[Hit],
        detector: &Detector,
        use_threshold: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Notice>> {
        if let Some(open) = self
            .store
            .open_incidents()?
            .into_iter()
            .find(|i| i.brand == brand)
        {
            let top_posts = self.top_posts;
            let background = self.background_of(&open)?;
            self.store.update_incident(open.id, |old| {
                let mut new = old.clone();
                attach(&mut new, hits, &background, top_posts);
                Ok::<_, ()>(new)
            })?;
            self.store.flush().await?;
            return Ok(None);
        }
        let critical = self.critical_post(hits);
        let spike = match use_threshold {
            true => detector.check(&self.store, brand, now),
            false => None,
        };
        let signal = match spike {
            Some(signal) => signal,
            None => match critical {
                // One post bad enough to page for on its own.
                Some(post) => Signal {
                    brand: brand.to_string(),
                    window_count: hits.len() as u64,
                    baseline: 0.0,
                    window: detector.window(),
                    top: vec![post.clone()],
                },
                None => return Ok(None),
            },
        };
        let because = match critical {
            Some(post) => format!(
                "critical post: severity {:.1} ≥ {} ({}) on {}",
                post.severity,
                self.lifecycle.critical_severity,
                if post.terms.is_empty() {
                    "-".to_string()
                } else {
                    post.terms.join(", ")
                },
                post.source
            ),
            None => format!(
                "spike: {} negative posts in {} against a baseline of {:.1}",
                signal.window_count,
                crate::config::human_duration(signal.window),
                signal.baseline
            ),
        };
        Ok(Some(self.open_or_reopen(&signal, &because, now).await?))
    }

    /// An alarm of the brand's spike test: opens (or reopens) an incident unless one is open,
    /// in which case the hits that made the spike are already attached to it.
    pub async fn on_spike(
        &self,
        brand: &str,
        alarm: &crate::detect::spike::Alarm,
        detector: &Detector,
        now: DateTime<Utc>,
    ) -> Result<Option<Notice>> {
        if self
            .store
            .open_incidents()?
            .iter()
            .any(|i| i.brand == brand)
        {
            return Ok(None);
        }
        let window = to_chrono(alarm.window);
        let signal = Signal {
            brand: brand.to_string(),
            window_count: alarm.count.round() as u64,
            baseline: alarm.expected,
            window: alarm.window,
            top: detector.top_hits(&self.store, brand, alarm.at - window, alarm.at),
        };
        let because = format!(
            "spike: {} negative posts in {} against {:.1} expected for the hour and weekday (p = {:.1e})",
            signal.window_count,
            crate::config::human_duration(alarm.window),
            alarm.expected,
            alarm.p
        );
        Ok(Some(self.open_or_reopen(&signal, &because, now).await?))
    }

    async fn open_or_reopen(
        &self,
        signal: &Signal,
        because: &str,
        now: DateTime<Utc>,
    ) -> Result<Notice> {
        let incident = match self.reopen_recent(signal, because, now).await? {
            Some(reopened) => reopened,
            None => self.open_because(signal, because, now).await?,
        };
        let notice = self.opened_notice(incident);
        if self.announcer.is_some() {
            self.announce(std::slice::from_ref(&notice), now)?;
            self.store.flush().await?;
        }
        Ok(notice)
    }

    /// The brand's usual mentions before `before`: its latest hits, one page's worth, against
    /// which an incident's words are weighed. Bounded, so a loud brand costs the same.
    fn background(&self, brand: &str, before: DateTime<Utc>) -> Result<Arc<Vec<Hit>>> {
        let key = (brand.to_string(), before);
        if let Some(known) = self.backgrounds.lock().expect("backgrounds lock").get(&key) {
            return Ok(known.clone());
        }
        let page = self.store.hits_page(&crate::store::HitQuery {
            brand: Some(brand.to_string()),
            since: Some(before - ChronoDuration::days(7)),
            until: Some(before),
            limit: crate::store::MAX_PAGE,
            ..Default::default()
        })?;
        let background: Arc<Vec<Hit>> = Arc::new(page.hits.into_iter().map(|h| h.hit).collect());
        let mut cache = self.backgrounds.lock().expect("backgrounds lock");
        if cache.len() >= MAX_BACKGROUNDS {
            cache.clear();
        }
        cache.insert(key, background.clone());
        Ok(background)
    }

    /// An incident's background: the week before its opening window, so the spike's own posts
    /// do not count as usual.
    fn background_of(&self, incident: &Incident) -> Result<Arc<Vec<Hit>>> {
        let window = ChronoDuration::seconds(i64::try_from(incident.window_secs).unwrap_or(0));
        self.background(&incident.brand, incident.opened_at - window)
    }

    /// The most severe hit at or above `critical_severity`, if that is on.
    /// A post's hits grew more severe because it was reposted: a hit that is now critical
    /// opens an incident for its brand, unless the brand has one open (the hit is counted in
    /// it already, and is not counted twice).
    pub async fn on_amplified(
        &self,
        hits: &[Hit],
        detector: &Detector,
        now: DateTime<Utc>,
    ) -> Result<Vec<Notice>> {
        let open: Vec<String> = self
            .store
            .open_incidents()?
            .into_iter()
            .map(|i| i.brand)
            .collect();
        let mut notices = Vec::new();
        for hit in hits.iter().filter(|h| !open.contains(&h.brand)) {
            let hit = std::slice::from_ref(hit);
            if self.critical_post(hit).is_some() {
                notices.extend(
                    self.on_negative_hits(&hit[0].brand, hit, detector, false, now)
                        .await?,
                );
            }
        }
        Ok(notices)
    }

    fn critical_post<'h>(&self, hits: &'h [Hit]) -> Option<&'h Hit> {
        let bar = self.lifecycle.critical_severity;
        if bar <= 0.0 {
            return None;
        }
        hits.iter()
            .filter(|h| h.negative && h.severity >= bar)
            .max_by(|a, b| a.severity.total_cmp(&b.severity))
    }

    /// Reopens `signal.brand`'s incident when it was resolved less than `reopen_within` ago: a
    /// spike soon after a resolve is the same story coming back, not a new one.
    async fn reopen_recent(
        &self,
        signal: &Signal,
        because: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>> {
        let within = to_chrono(self.lifecycle.reopen_within);
        let Some(last) = self
            .store
            .incidents()?
            .into_iter()
            .filter(|i| i.brand == signal.brand && i.state == IncidentState::Resolved)
            .max_by_key(|i| i.resolved_at)
            .filter(|i| i.resolved_at.is_some_and(|at| now - at < within))
        else {
            return Ok(None);
        };
        let tiers = &self.tiers;
        let top_posts = self.top_posts;
        let first = self.awake_tier(0, now);
        let updated = self.store.update_incident(last.id, |old| {
            if old.state != IncidentState::Resolved {
                return Err(());
            }
            let mut new = old.clone();
            new.state = IncidentState::Triggered;
            new.tier = first;
            new.policy_round = 0;
            new.next_page_at = tiers.get(first).map(|t| now + to_chrono(t.ack_timeout));
            new.acked_by = None;
            new.acked_at = None;
            new.resolved_by = None;
            new.resolved_at = None;
            new.calm_since = None;
            new.next_remind_at = None;
            new.alert_delivered = false;
            new.window_count = signal.window_count;
            new.baseline = signal.baseline;
            new.hit_count += signal.window_count;
            new.opened_because = because.to_string();
            merge_top(&mut new.top_posts, &signal.top, top_posts);
            new.history.push(Transition {
                at: now,
                to: IncidentState::Triggered,
                by: None,
                note: format!("reopened: {because}"),
                via: None,
            });
            Ok(new)
        })?;
        match updated {
            Some(Ok(incident)) => {
                self.store.flush().await?;
                tracing::warn!(id = incident.id, brand = %incident.brand, "incident reopened");
                Ok(Some(incident))
            }
            _ => Ok(None),
        }
    }

    /// Opens an incident for a signal and stores it.
    pub async fn open(&self, signal: &Signal, now: DateTime<Utc>) -> Result<Incident> {
        let because = format!(
            "spike: {} negative posts in {} against a baseline of {:.1}",
            signal.window_count,
            crate::config::human_duration(signal.window),
            signal.baseline
        );
        self.open_because(signal, &because, now).await
    }

    async fn open_because(
        &self,
        signal: &Signal,
        because: &str,
        now: DateTime<Utc>,
    ) -> Result<Incident> {
        let id = self.store.next_incident_id()?;
        let mut top_posts = Vec::new();
        merge_top(&mut top_posts, &signal.top, self.top_posts);
        let window_start = now - to_chrono(signal.window);
        let window_hits: Vec<Hit> = self
            .store
            .hits_between(
                &signal.brand,
                window_start,
                now + ChronoDuration::milliseconds(1),
            )
            .into_iter()
            .filter(|h| h.negative)
            .collect();
        let background = self.background(&signal.brand, window_start)?;
        let mut incident = Incident {
            id,
            brand: signal.brand.clone(),
            state: IncidentState::Triggered,
            opened_at: now,
            window_count: signal.window_count,
            baseline: signal.baseline,
            window_secs: signal.window.as_secs(),
            hit_count: signal.window_count,
            top_posts,
            tier: self.awake_tier(0, now),
            policy_round: 0,
            next_page_at: self
                .tiers
                .get(self.awake_tier(0, now))
                .map(|t| now + to_chrono(t.ack_timeout)),
            alert_delivered: false,
            acked_by: None,
            acked_at: None,
            resolved_by: None,
            resolved_at: None,
            history: vec![Transition {
                at: now,
                to: IncidentState::Triggered,
                by: None,
                note: because.to_string(),
                via: None,
            }],
            opened_because: because.to_string(),
            calm_since: None,
            next_remind_at: None,
            topic_terms: vec![],
            categories: Default::default(),
            term_counts: Default::default(),
        };
        let opening = if window_hits.is_empty() {
            &signal.top
        } else {
            &window_hits
        };
        add_topics(&mut incident, opening, &background);
        self.store.create_incident(&incident)?;
        self.store.flush().await?;
        tracing::warn!(id, brand = %incident.brand, count = signal.window_count, baseline = %format!("{:.2}", signal.baseline), "incident opened");
        Ok(incident)
    }

    /// The notice for an opened incident.
    pub fn opened_notice(&self, incident: Incident) -> Notice {
        Notice::Opened {
            tier: self.tiers.get(incident.tier).cloned(),
            incident,
        }
    }

    pub async fn mark_delivered(&self, id: u64) -> Result<()> {
        self.store.update_incident(id, |old| {
            let mut new = old.clone();
            new.alert_delivered = true;
            Ok::<_, ()>(new)
        })?;
        self.store.flush().await
    }

    /// Takes ownership: stops escalation.
    pub async fn acknowledge(&self, id: u64, by: By<'_>, now: DateTime<Utc>) -> Result<Outcome> {
        self.transition(id, by, now, |old| match old.state {
            IncidentState::Triggered => Ok(moved(old, IncidentState::Acknowledged, by, None, now)),
            IncidentState::Acknowledged => Err(Refusal::Already(format!(
                "already acknowledged by {}",
                name_of(&old.acked_by)
            ))),
            IncidentState::Resolved => Err(Refusal::Conflict(format!(
                "already resolved by {}; reopen it first",
                name_of(&old.resolved_by)
            ))),
        })
        .await
    }

    /// Closes the incident, with an optional note on what was done.
    pub async fn resolve(
        &self,
        id: u64,
        by: By<'_>,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        self.transition(id, by, now, |old| match old.state {
            IncidentState::Triggered | IncidentState::Acknowledged => {
                let mut new = moved(old, IncidentState::Resolved, by, note, now);
                new.resolved_by = Some(by.actor.clone());
                new.resolved_at = Some(now);
                Ok(new)
            }
            IncidentState::Resolved => Err(Refusal::Already(format!(
                "already resolved by {}",
                name_of(&old.resolved_by)
            ))),
        })
        .await
    }

    /// Opens a resolved incident again, owned by whoever reopens it: the problem came back,
    /// and someone has it. Refused while the brand has another open incident, which keeps one
    /// open incident per brand.
    pub async fn reopen(
        &self,
        id: u64,
        by: By<'_>,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let Some(current) = self.store.incident(id)? else {
            return Ok(Outcome::NotFound(id));
        };
        if let Some(other) = self
            .store
            .open_incidents()?
            .into_iter()
            .find(|i| i.brand == current.brand && i.id != id)
        {
            return Ok(Outcome::Conflict {
                reason: format!(
                    "incident #{} is already open for {}; work on that one",
                    other.id, other.brand
                ),
                incident: current,
            });
        }
        self.transition(id, by, now, |old| match old.state {
            IncidentState::Resolved => {
                let mut new = moved(old, IncidentState::Acknowledged, by, note, now);
                new.acked_by = Some(by.actor.clone());
                new.acked_at = Some(now);
                new.resolved_by = None;
                new.resolved_at = None;
                if let Some(last) = new.history.last_mut() {
                    last.note = note.map_or("reopened".to_string(), |n| format!("reopened: {n}"));
                }
                Ok(new)
            }
            IncidentState::Triggered | IncidentState::Acknowledged => {
                Err(Refusal::Already("already open".to_string()))
            }
        })
        .await
    }

    async fn transition<F>(
        &self,
        id: u64,
        by: By<'_>,
        now: DateTime<Utc>,
        change: F,
    ) -> Result<Outcome>
    where
        F: Fn(&Incident) -> Result<Incident, Refusal>,
    {
        let before = std::sync::Mutex::new(None);
        let outcome = match self.store.update_incident(id, |old| {
            *before.lock().expect("not poisoned") = Some(old.state);
            change(old)
        })? {
            None => return Ok(Outcome::NotFound(id)),
            Some(Ok(new)) => {
                // The state the winning swap started from (the closure may have run more than
                // once under contention; the last run is the one that was stored).
                let from = before.lock().expect("not poisoned").unwrap_or(new.state);
                self.announce(
                    &[Notice::Changed {
                        incident: new.clone(),
                        from,
                        by: by.actor.name.clone(),
                        via: by.via.to_string(),
                    }],
                    now,
                )?;
                Outcome::Changed(new)
            }
            Some(Err(refusal)) => {
                return Ok(match self.store.incident(id)? {
                    Some(incident) => match refusal {
                        Refusal::Already(reason) => Outcome::Unchanged { incident, reason },
                        Refusal::Conflict(reason) => Outcome::Conflict { incident, reason },
                    },
                    // Removed between the two reads (retention): as good as never there.
                    None => Outcome::NotFound(id),
                });
            }
        };
        self.store.flush().await?;
        if let Outcome::Changed(i) = &outcome {
            tracing::info!(id, state = ?i.state, "incident changed");
        }
        Ok(outcome)
    }

    /// Silences notices about matching incidents for `duration`. The incidents are still
    /// recorded; only telling people waits.
    pub fn mute(
        &self,
        kind: SilenceKind,
        name: &str,
        duration: std::time::Duration,
        by: By<'_>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Silence> {
        let mut silence = Silence {
            id: String::new(),
            kind,
            name: name.trim().to_string(),
            until: now + to_chrono(duration),
            created_by: format!("{} via {}", by.actor.name, by.via),
            created_at: now,
            reason: reason.trim().to_string(),
        };
        self.store.put_silence(&mut silence)?;
        tracing::info!(id = %silence.id, kind = ?kind, name = %silence.name, until = %silence.until, by = %silence.created_by, "silence created");
        Ok(silence)
    }

    /// Ends a silence now; it stays listed. `None` when there is no such silence.
    pub fn unmute(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Silence>> {
        let Some(mut silence) = self.store.silence(id)? else {
            return Ok(None);
        };
        if silence.until > now {
            silence.until = now;
            self.store.put_silence(&mut silence)?;
        }
        Ok(Some(silence))
    }

    /// Puts a silence from the config in place, under an id of its own so a restart does not
    /// add it twice.
    pub fn ensure_silence(&self, silence: &Silence, now: DateTime<Utc>) -> Result<()> {
        let same = |s: &Silence| {
            (s.kind, &s.name, s.until, &s.reason)
                == (silence.kind, &silence.name, silence.until, &silence.reason)
        };
        if !self.store.silence(&silence.id)?.as_ref().is_some_and(same) {
            let mut fresh = silence.clone();
            fresh.created_at = now;
            self.store.put_silence(&mut fresh)?;
        }
        Ok(())
    }

    pub fn silences(&self) -> Result<Vec<Silence>> {
        self.store.silences()
    }

    /// The active silence that holds this notice back, if any. A resolve notice for an
    /// incident people were already told about is always sent: they must not be left
    /// believing it is still burning (alertmanager#226).
    pub fn silenced(&self, notice: &Notice, now: DateTime<Utc>) -> Result<Option<Silence>> {
        let incident = notice.incident();
        if matches!(notice, Notice::AutoResolved { .. } | Notice::Changed { .. })
            && incident.alert_delivered
        {
            return Ok(None);
        }
        Ok(self
            .store
            .silences()?
            .into_iter()
            .find(|s| s.active(now) && s.matches(incident)))
    }

    /// The timed part of the lifecycle, run on a timer so it happens in quiet periods too:
    /// auto-resolve after `resolve_after` of calm, ack expiry, and reminders to owners. Each
    /// change is one compare-and-swap that re-checks the state it was decided on, so a person's
    /// ack or resolve that lands in between wins and nothing is decided on a stale state.
    pub async fn tick(&self, detector: &Detector, now: DateTime<Utc>) -> Result<Vec<Notice>> {
        let mut notices = Vec::new();
        let cfg = &self.lifecycle;
        for incident in self.store.open_incidents()? {
            if !cfg.resolve_after.is_zero() {
                let calm = detector.is_calm(&self.store, &incident.brand, now);
                let resolve_after = to_chrono(cfg.resolve_after);
                let updated = self.store.update_incident(incident.id, |old| {
                    if !old.state.is_open() {
                        return Err(());
                    }
                    let mut new = old.clone();
                    if !calm {
                        if old.calm_since.is_none() {
                            return Err(()); // nothing to write
                        }
                        new.calm_since = None;
                        return Ok(new);
                    }
                    let since = *new.calm_since.get_or_insert(now);
                    if now - since >= resolve_after {
                        new.state = IncidentState::Resolved;
                        new.resolved_at = Some(now);
                        new.next_page_at = None;
                        new.next_remind_at = None;
                        new.history.push(Transition {
                            at: now,
                            to: IncidentState::Resolved,
                            by: None,
                            note: format!(
                                "auto-resolved: calm (below 1.5× the baseline) for {}",
                                crate::config::human_duration(cfg.resolve_after)
                            ),
                            via: None,
                        });
                    } else if old.calm_since.is_some() {
                        return Err(()); // still counting; nothing changed
                    }
                    Ok(new)
                })?;
                if let Some(Ok(new)) = updated {
                    if new.state == IncidentState::Resolved {
                        tracing::info!(id = new.id, brand = %new.brand, "incident auto-resolved");
                        notices.push(Notice::AutoResolved { incident: new });
                        continue;
                    }
                }
            }
            if !cfg.ack_expires.is_zero() {
                let expires = to_chrono(cfg.ack_expires);
                let tiers = &self.tiers;
                let first = self.awake_tier(0, now);
                let updated = self.store.update_incident(incident.id, |old| {
                    let expired = old.state == IncidentState::Acknowledged
                        && old.acked_at.is_some_and(|at| now - at >= expires);
                    if !expired {
                        return Err(());
                    }
                    let mut new = old.clone();
                    new.state = IncidentState::Triggered;
                    new.tier = first;
                    new.policy_round = 0;
                    new.next_page_at = tiers.get(first).map(|t| now + to_chrono(t.ack_timeout));
                    new.acked_by = None;
                    new.acked_at = None;
                    new.next_remind_at = None;
                    new.history.push(Transition {
                        at: now,
                        to: IncidentState::Triggered,
                        by: None,
                        note: format!(
                            "acknowledgement by {} expired after {} unresolved; paging again",
                            name_of(&old.acked_by),
                            crate::config::human_duration(cfg.ack_expires)
                        ),
                        via: None,
                    });
                    Ok(new)
                })?;
                if let Some(Ok(new)) = updated {
                    tracing::warn!(id = new.id, "acknowledgement expired");
                    notices.push(Notice::AckExpired {
                        owner: name_of(&incident.acked_by).to_string(),
                        tier: self.tiers.get(new.tier).cloned(),
                        incident: new,
                    });
                    continue;
                }
            }
            if !cfg.remind_every.is_zero() {
                let every = to_chrono(cfg.remind_every);
                let updated = self.store.update_incident(incident.id, |old| {
                    if old.state != IncidentState::Acknowledged {
                        return Err(());
                    }
                    let due = old
                        .next_remind_at
                        .or_else(|| old.acked_at.map(|at| at + every))
                        .is_some_and(|at| at <= now);
                    if !due {
                        return Err(());
                    }
                    let mut new = old.clone();
                    new.next_remind_at = Some(now + every);
                    Ok(new)
                })?;
                if let Some(Ok(new)) = updated {
                    notices.push(Notice::Reminder { incident: new });
                }
            }
        }
        // Only decisions people are told about must be on disk first; a lost calm_since just
        // restarts the count.
        if !notices.is_empty() {
            self.announce(&notices, now)?;
            self.store.flush().await?;
        }
        Ok(notices)
    }

    /// Pages the next tier for every triggered incident whose acknowledgement is overdue.
    /// The change is stored before the notices are returned.
    pub async fn escalate_due(&self, now: DateTime<Utc>) -> Result<Vec<Notice>> {
        let mut notices = Vec::new();
        if self.tiers.is_empty() {
            return Ok(notices);
        }
        for incident in self.store.open_incidents()? {
            let due = incident.state == IncidentState::Triggered
                && incident.next_page_at.is_some_and(|at| at <= now);
            if !due {
                continue;
            }
            let last = self.tiers.len() - 1;
            let tiers = &self.tiers;
            let (next_tier, next_round) = if incident.tier < last {
                (
                    self.awake_tier(incident.tier + 1, now),
                    incident.policy_round,
                )
            } else if incident.policy_round < self.repeat {
                (self.awake_tier(0, now), incident.policy_round + 1)
            } else {
                (last, incident.policy_round)
            };
            let updated = self.store.update_incident(incident.id, |old| {
                // Re-check inside the swap: an /ack may have landed since the read, and the
                // tier was worked out from the state read then.
                if old.state != IncidentState::Triggered
                    || old.next_page_at.is_none_or(|at| at > now)
                    || (old.tier, old.policy_round) != (incident.tier, incident.policy_round)
                {
                    return Err(());
                }
                let mut new = old.clone();
                new.tier = next_tier;
                new.policy_round = next_round;
                new.next_page_at = Some(now + to_chrono(tiers[new.tier].ack_timeout));
                new.history.push(Transition {
                    at: now,
                    to: IncidentState::Triggered,
                    by: None,
                    note: format!(
                        "escalated to tier {} ({})",
                        new.tier + 1,
                        tiers[new.tier].name
                    ),
                    via: None,
                });
                Ok(new)
            })?;
            if let Some(Ok(new)) = updated {
                let repeat = incident.tier == last && new.tier == last;
                tracing::warn!(
                    id = new.id,
                    tier = new.tier + 1,
                    repeat,
                    "incident escalated"
                );
                notices.push(Notice::Escalated {
                    tier: self.tiers[new.tier].clone(),
                    tier_number: new.tier + 1,
                    repeat,
                    incident: new,
                });
            }
        }
        if !notices.is_empty() {
            self.announce(&notices, now)?;
            self.store.flush().await?;
        }
        Ok(notices)
    }
}

/// `old` moved to `to` by a person: stops escalation, records the transition (with the
/// person's note, if any), and makes that person the owner if nobody owned it yet (resolving
/// an unacknowledged incident takes it).
fn moved(
    old: &Incident,
    to: IncidentState,
    by: By<'_>,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Incident {
    let mut new = old.clone();
    new.state = to;
    new.next_page_at = None;
    if new.acked_by.is_none() {
        new.acked_by = Some(by.actor.clone());
        new.acked_at = Some(now);
    }
    let what = match to {
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Resolved => "resolved",
        IncidentState::Triggered => "re-triggered",
    };
    let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{what}: {n}"),
        None => what.to_string(),
    };
    new.history.push(Transition {
        at: now,
        to,
        by: Some(by.actor.clone()),
        note,
        via: Some(by.via.to_string()),
    });
    new
}

fn name_of(actor: &Option<Actor>) -> &str {
    // Only yuqing itself changes an incident without a person: auto-resolve, expiry.
    actor.as_ref().map_or("yuqing", |a| a.name.as_str())
}

/// Adds a post's negative hits to an open incident: the count, the top posts, the topic.
fn attach(incident: &mut Incident, hits: &[Hit], background: &[Hit], top_posts: usize) {
    incident.hit_count += hits.len() as u64;
    merge_top(&mut incident.top_posts, hits, top_posts);
    add_topics(incident, hits, background);
    // New complaints: the brand is not calm, whatever the last tick thought.
    incident.calm_since = None;
}

/// How many distinct terms an incident keeps counts for.
const MAX_TRACKED_TERMS: usize = 300;
/// How many topic terms an incident shows.
const TOPIC_TERMS: usize = 6;

/// Counts `hits`' terms and crisis categories into the incident and works out its topic
/// terms again: each term's count among the incident's posts × a smoothed inverse document
/// frequency among the brand's usual mentions (`background`), so words the brand always
/// attracts rank below the ones that are new in this story.
fn add_topics(incident: &mut Incident, hits: &[Hit], background: &[Hit]) {
    for hit in hits.iter().filter(|h| h.negative) {
        let mut seen = std::collections::HashSet::new();
        for term in hit.terms.iter().filter(|t| seen.insert(t.as_str())) {
            *incident.term_counts.entry(term.clone()).or_default() += 1;
        }
        for category in &hit.crisis {
            *incident.categories.entry(category.clone()).or_default() += 1;
        }
    }
    if incident.term_counts.len() > MAX_TRACKED_TERMS {
        let mut counts: Vec<(String, u64)> = std::mem::take(&mut incident.term_counts)
            .into_iter()
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts.truncate(MAX_TRACKED_TERMS);
        incident.term_counts = counts.into_iter().collect();
    }
    let n = background.len() as f64;
    let mut scored: Vec<(f64, &String)> = incident
        .term_counts
        .iter()
        .map(|(term, &tf)| {
            let df = background.iter().filter(|h| h.terms.contains(term)).count() as f64;
            (tf as f64 * (((n + 1.0) / (df + 1.0)).ln() + 1.0), term)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    incident.topic_terms = scored
        .into_iter()
        .take(TOPIC_TERMS)
        .map(|(_, t)| t.clone())
        .collect();
}

/// Keeps the `limit` most severe posts, most severe first, without duplicates.
fn merge_top(top: &mut Vec<PostSummary>, hits: &[Hit], limit: usize) {
    for h in hits.iter().filter(|h| h.negative) {
        if top
            .iter()
            .any(|p| p.url.is_some() && p.url == h.url && p.title == h.title)
        {
            continue;
        }
        top.push(PostSummary {
            source: h.source.clone(),
            url: h.url.clone(),
            title: if h.title.is_empty() {
                h.snippet.clone()
            } else {
                h.title.clone()
            },
            score: h.score,
            terms: h.terms.iter().take(5).cloned().collect(),
            at: h.at,
            excerpt: h.snippet.clone(),
        });
    }
    top.sort_by(|a, b| a.score.total_cmp(&b.score));
    top.truncate(limit);
}

fn to_chrono(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tiers() -> Vec<TierConfig> {
        vec![
            TierConfig {
                name: "first".into(),
                mention: vec!["@a".into()],
                ack_timeout: Duration::from_secs(60),
                quiet_hours: None,
                targets: Default::default(),
            },
            TierConfig {
                name: "second".into(),
                mention: vec!["@b".into()],
                ack_timeout: Duration::from_secs(120),
                quiet_hours: None,
                targets: Default::default(),
            },
        ]
    }

    fn signal(n: u64) -> Signal {
        Signal {
            brand: "度小满".into(),
            window_count: n,
            baseline: 0.0,
            window: Duration::from_secs(900),
            top: vec![],
        }
    }

    fn chat(actor: &Actor) -> By<'_> {
        By {
            actor,
            via: "telegram",
        }
    }

    fn alice() -> Actor {
        Actor {
            id: 1,
            name: "alice".into(),
        }
    }

    #[tokio::test]
    async fn ack_is_stored_and_idempotent() {
        let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3);
        let now = Utc::now();
        let opened = inc.open(&signal(5), now).await.unwrap();
        assert_eq!(opened.id, 1);
        assert_eq!(opened.next_page_at, Some(now + ChronoDuration::seconds(60)));
        let Outcome::Changed(acked) = inc.acknowledge(1, chat(&alice()), now).await.unwrap() else {
            panic!()
        };
        assert_eq!(acked.state, IncidentState::Acknowledged);
        assert_eq!(inc.get(1).unwrap().unwrap().acked_by, Some(alice()));
        let again = inc
            .acknowledge(
                1,
                chat(&Actor {
                    id: 2,
                    name: "bob".into(),
                }),
                now,
            )
            .await
            .unwrap();
        match again {
            Outcome::Unchanged { reason, incident } => {
                assert!(reason.contains("alice"), "{reason}");
                assert_eq!(incident.acked_by, Some(alice()), "bob did not take it over");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            inc.acknowledge(42, chat(&alice()), now).await.unwrap(),
            Outcome::NotFound(42)
        );
    }

    #[tokio::test]
    async fn escalation_walks_the_tiers_until_acked() {
        let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3);
        let t0 = Utc::now();
        inc.open(&signal(5), t0).await.unwrap();
        assert!(inc
            .escalate_due(t0 + ChronoDuration::seconds(59))
            .await
            .unwrap()
            .is_empty());
        let n = inc
            .escalate_due(t0 + ChronoDuration::seconds(61))
            .await
            .unwrap();
        assert_eq!(n.len(), 1);
        let Notice::Escalated {
            tier_number,
            repeat,
            ..
        } = &n[0]
        else {
            panic!()
        };
        assert_eq!((*tier_number, *repeat), (2, false));
        // Not due again until the second tier's timeout has passed.
        assert!(inc
            .escalate_due(t0 + ChronoDuration::seconds(120))
            .await
            .unwrap()
            .is_empty());
        let n = inc
            .escalate_due(t0 + ChronoDuration::seconds(182))
            .await
            .unwrap();
        let Notice::Escalated {
            tier_number,
            repeat,
            ..
        } = &n[0]
        else {
            panic!()
        };
        assert_eq!(
            (*tier_number, *repeat),
            (2, true),
            "the last tier is paged again"
        );
        inc.acknowledge(1, chat(&alice()), t0 + ChronoDuration::seconds(190))
            .await
            .unwrap();
        assert!(inc
            .escalate_due(t0 + ChronoDuration::hours(5))
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn resolve_closes_and_later_hits_open_a_new_incident() {
        let store = Store::temporary().unwrap();
        let inc = Incidents::new(store.clone(), tiers(), 3);
        let now = Utc::now();
        inc.open(&signal(5), now).await.unwrap();
        let Outcome::Changed(r) = inc.resolve(1, chat(&alice()), None, now).await.unwrap() else {
            panic!()
        };
        assert_eq!(r.state, IncidentState::Resolved);
        assert_eq!(r.acked_by, Some(alice()), "resolving takes ownership");
        assert!(inc.open_incidents().unwrap().is_empty());
        assert!(matches!(
            inc.acknowledge(1, chat(&alice()), now).await.unwrap(),
            Outcome::Conflict { .. }
        ));
        assert!(matches!(
            inc.resolve(1, chat(&alice()), None, now).await.unwrap(),
            Outcome::Unchanged { .. }
        ));
    }

    #[tokio::test]
    async fn hits_attach_to_the_open_incident() {
        let store = Store::temporary().unwrap();
        let inc = Incidents::new(store.clone(), tiers(), 2);
        let detector = Detector::new(crate::config::DetectionConfig {
            window: Duration::from_secs(900),
            baseline_window: Duration::from_secs(86400),
            min_negative: 1,
            spike_ratio: 1.0,
            top_posts: 2,
            spike: Default::default(),
        });
        let now = Utc::now();
        let hit = |score: f64, title: &str| Hit {
            brand: "度小满".into(),
            source: "s".into(),
            url: Some(format!("https://x.example/{title}")),
            title: title.into(),
            snippet: String::new(),
            at: now,
            fetched_at: now,
            score,
            negative: true,
            terms: vec!["坑".into()],
            severity: -score,
            crisis: vec![],
            amplification: 0,
            reposted_by: vec![],
        };
        let first = vec![hit(-1.0, "a")];
        store.insert_hit(&first[0]).unwrap();
        let opened = inc
            .on_negative_hits("度小满", &first, &detector, true, now)
            .await
            .unwrap();
        assert!(opened.is_some());
        let more = vec![hit(-5.0, "b"), hit(-0.7, "c")];
        let opened_again = inc
            .on_negative_hits("度小满", &more, &detector, true, now)
            .await
            .unwrap();
        assert!(
            opened_again.is_none(),
            "no second incident while one is open"
        );
        let i = inc.get(1).unwrap().unwrap();
        assert_eq!(i.hit_count, 3);
        assert_eq!(
            i.top_posts
                .iter()
                .map(|p| p.title.as_str())
                .collect::<Vec<_>>(),
            vec!["b", "a"]
        );
    }

    #[tokio::test]
    async fn resolve_keeps_the_note_and_reopen_gives_it_an_owner_again() {
        let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3);
        let now = Utc::now();
        inc.open(&signal(5), now).await.unwrap();
        let web = Actor {
            id: 0,
            name: "web:alice".into(),
        };
        let by_web = By {
            actor: &web,
            via: "web",
        };
        inc.resolve(1, by_web, Some("refunded the fees"), now)
            .await
            .unwrap();
        let resolved = inc.get(1).unwrap().unwrap();
        let last = resolved.history.last().unwrap();
        assert_eq!(last.note, "resolved: refunded the fees");
        assert_eq!(last.via.as_deref(), Some("web"));
        assert_eq!(last.by.as_ref().unwrap().name, "web:alice");

        // Acknowledging a resolved incident contradicts its state.
        assert!(matches!(
            inc.acknowledge(1, chat(&alice()), now).await.unwrap(),
            Outcome::Conflict { .. }
        ));
        let Outcome::Changed(reopened) = inc.reopen(1, chat(&alice()), None, now).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(reopened.state, IncidentState::Acknowledged);
        assert_eq!(reopened.acked_by, Some(alice()));
        assert_eq!(reopened.resolved_by, None);
        assert_eq!(reopened.history.last().unwrap().note, "reopened");
        assert_eq!(inc.open_incidents().unwrap().len(), 1);
        // Reopening an open incident is a no-op, not an error.
        assert!(matches!(
            inc.reopen(1, chat(&alice()), None, now).await.unwrap(),
            Outcome::Unchanged { .. }
        ));
        assert_eq!(
            inc.reopen(9, chat(&alice()), None, now).await.unwrap(),
            Outcome::NotFound(9)
        );
    }

    #[tokio::test]
    async fn reopen_is_refused_while_the_brand_has_another_open_incident() {
        let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3);
        let now = Utc::now();
        inc.open(&signal(5), now).await.unwrap();
        inc.resolve(1, chat(&alice()), None, now).await.unwrap();
        inc.open(&signal(6), now).await.unwrap();
        match inc.reopen(1, chat(&alice()), None, now).await.unwrap() {
            Outcome::Conflict { reason, incident } => {
                assert!(reason.contains("#2"), "{reason}");
                assert_eq!(incident.state, IncidentState::Resolved);
            }
            other => panic!("{other:?}"),
        }
    }

    fn lifecycle() -> IncidentsConfig {
        IncidentsConfig {
            critical_severity: 8.0,
            resolve_after: Duration::from_secs(2 * 3600),
            reopen_within: Duration::from_secs(6 * 3600),
            remind_every: Duration::from_secs(3600),
            ack_expires: Duration::from_secs(24 * 3600),
        }
    }

    fn detector(min_negative: u64) -> Detector {
        Detector::new(crate::config::DetectionConfig {
            window: Duration::from_secs(900),
            baseline_window: Duration::from_secs(86400),
            min_negative,
            spike_ratio: 3.0,
            top_posts: 3,
            spike: Default::default(),
        })
    }

    fn negative_hit(at: DateTime<Utc>, severity: f64, title: &str) -> Hit {
        Hit {
            brand: "度小满".into(),
            source: "黑猫投诉".into(),
            url: Some(format!("https://x.example/{title}")),
            title: title.into(),
            snippet: String::new(),
            at,
            fetched_at: at,
            score: -severity / 3.0,
            negative: true,
            terms: vec!["诈骗".into()],
            severity,
            crisis: vec![],
            amplification: 0,
            reposted_by: vec![],
        }
    }

    /// A fixed start, so no test depends on today's date.
    fn t0() -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
    }

    fn with_lifecycle(store: &Store) -> Incidents {
        Incidents::new(store.clone(), tiers(), 3).with_lifecycle(lifecycle())
    }

    #[tokio::test]
    async fn a_post_reposted_into_criticality_opens_an_incident_once() {
        let store = Store::temporary().unwrap();
        let inc = with_lifecycle(&store);
        let d = detector(5);
        let mut post = negative_hit(t0(), 6.0, "催收");
        store.insert_hit(&post).unwrap();
        assert!(inc
            .on_amplified(std::slice::from_ref(&post), &d, t0())
            .await
            .unwrap()
            .is_empty());
        // Reposted until its severity crosses critical_severity (8 here): it opens an
        // incident, once.
        post.amplification = 3;
        post.severity = 6.0 * crate::post::amplification_factor(3);
        let opened = inc.on_amplified(&[post.clone()], &d, t0()).await.unwrap();
        assert!(matches!(&opened[..], [Notice::Opened { .. }]), "{opened:?}");
        let again = inc.on_amplified(&[post.clone()], &d, t0()).await.unwrap();
        assert!(again.is_empty(), "the brand's incident is open: {again:?}");
        assert_eq!(store.open_incidents().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn one_critical_post_opens_an_incident_and_says_why() {
        let store = Store::temporary().unwrap();
        let inc = with_lifecycle(&store);
        let d = detector(5);
        let mild = negative_hit(t0(), 2.0, "mild");
        store.insert_hit(&mild).unwrap();
        assert!(inc
            .on_negative_hits("度小满", &[mild], &d, true, t0())
            .await
            .unwrap()
            .is_none());
        let fraud = negative_hit(t0(), 9.0, "fraud");
        store.insert_hit(&fraud).unwrap();
        let Some(Notice::Opened { incident, .. }) = inc
            .on_negative_hits("度小满", &[fraud], &d, true, t0())
            .await
            .unwrap()
        else {
            panic!("a critical post opens an incident")
        };
        assert!(
            incident
                .opened_because
                .starts_with("critical post: severity 9.0"),
            "{}",
            incident.opened_because
        );
        assert_eq!(incident.top_posts[0].title, "fraud");

        let off = Incidents::new(Store::temporary().unwrap(), tiers(), 3).with_lifecycle(
            IncidentsConfig {
                critical_severity: 0.0,
                ..lifecycle()
            },
        );
        let fraud = negative_hit(t0(), 50.0, "fraud");
        assert!(off
            .on_negative_hits("度小满", &[fraud], &d, true, t0())
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn calm_resolves_it_and_a_new_spike_soon_after_reopens_it() {
        let store = Store::temporary().unwrap();
        let inc = with_lifecycle(&store);
        let d = detector(3);
        let burst: Vec<Hit> = (0..3)
            .map(|i| negative_hit(t0(), 2.0, &format!("b{i}")))
            .collect();
        for h in &burst {
            store.insert_hit(h).unwrap();
        }
        assert!(inc
            .on_negative_hits("度小满", &burst, &d, true, t0())
            .await
            .unwrap()
            .is_some());
        let hour = ChronoDuration::hours(1);
        // Still inside the burst's window: not calm.
        assert!(inc
            .tick(&d, t0() + ChronoDuration::minutes(5))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.incident(1).unwrap().unwrap().calm_since, None);
        // Calm from 08:30; resolves two hours of calm later, not before.
        assert!(inc.tick(&d, t0() + hour / 2).await.unwrap().is_empty());
        assert!(inc.tick(&d, t0() + hour * 2).await.unwrap().is_empty());
        let resolved = inc.tick(&d, t0() + hour / 2 + hour * 2).await.unwrap();
        assert!(
            matches!(&resolved[..], [Notice::AutoResolved { .. }]),
            "{resolved:?}"
        );
        let stored = store.incident(1).unwrap().unwrap();
        assert_eq!(stored.state, IncidentState::Resolved);
        assert!(stored
            .history
            .last()
            .unwrap()
            .note
            .starts_with("auto-resolved"));

        // A new burst 3 hours later: the same incident comes back.
        let later = t0() + hour * 6;
        let again: Vec<Hit> = (0..3)
            .map(|i| negative_hit(later, 2.0, &format!("c{i}")))
            .collect();
        for h in &again {
            store.insert_hit(h).unwrap();
        }
        let Some(Notice::Opened { incident, .. }) = inc
            .on_negative_hits("度小满", &again, &d, true, later)
            .await
            .unwrap()
        else {
            panic!("reopened")
        };
        assert_eq!(incident.id, 1);
        assert_eq!(incident.state, IncidentState::Triggered);
        assert!(incident
            .history
            .last()
            .unwrap()
            .note
            .starts_with("reopened"));

        // Resolved again, and a burst more than reopen_within later opens a new incident.
        inc.resolve(1, chat(&alice()), None, later).await.unwrap();
        let much_later = later + hour * 7;
        let third: Vec<Hit> = (0..3)
            .map(|i| negative_hit(much_later, 2.0, &format!("d{i}")))
            .collect();
        for h in &third {
            store.insert_hit(h).unwrap();
        }
        let Some(Notice::Opened { incident, .. }) = inc
            .on_negative_hits("度小满", &third, &d, true, much_later)
            .await
            .unwrap()
        else {
            panic!("opened")
        };
        assert_eq!(incident.id, 2);
    }

    #[tokio::test]
    async fn owners_are_reminded_and_a_stale_ack_pages_again() {
        let store = Store::temporary().unwrap();
        let inc = with_lifecycle(&store);
        let d = detector(3);
        inc.open(&signal(5), t0()).await.unwrap();
        // Negative hits keep the brand busy, so auto-resolve stays out of the way.
        let busy = |at: DateTime<Utc>| {
            for i in 0..4 {
                store
                    .insert_hit(&negative_hit(at, 2.0, &format!("k{at}{i}")))
                    .unwrap();
            }
        };
        inc.acknowledge(1, chat(&alice()), t0()).await.unwrap();
        let hour = ChronoDuration::hours(1);
        busy(t0() + hour / 2);
        assert!(inc.tick(&d, t0() + hour / 2).await.unwrap().is_empty());
        busy(t0() + hour);
        let n = inc.tick(&d, t0() + hour).await.unwrap();
        assert!(matches!(&n[..], [Notice::Reminder { .. }]), "{n:?}");
        assert!(
            inc.tick(&d, t0() + hour).await.unwrap().is_empty(),
            "once per hour"
        );
        busy(t0() + hour * 24);
        let n = inc.tick(&d, t0() + hour * 24).await.unwrap();
        match &n[..] {
            [Notice::AckExpired {
                incident, owner, ..
            }] => {
                assert_eq!(owner, "alice");
                assert_eq!(incident.state, IncidentState::Triggered);
                assert_eq!(incident.acked_by, None);
                assert_eq!(
                    incident.next_page_at,
                    Some(t0() + hour * 24 + ChronoDuration::seconds(60))
                );
            }
            other => panic!("{other:?}"),
        }
        // Someone can take it again.
        assert!(matches!(
            inc.acknowledge(1, chat(&alice()), t0() + hour * 25)
                .await
                .unwrap(),
            Outcome::Changed(_)
        ));

        let off = Incidents::new(Store::temporary().unwrap(), tiers(), 3).with_lifecycle(
            IncidentsConfig {
                remind_every: Duration::ZERO,
                ack_expires: Duration::ZERO,
                resolve_after: Duration::ZERO,
                ..lifecycle()
            },
        );
        off.open(&signal(5), t0()).await.unwrap();
        off.acknowledge(1, chat(&alice()), t0()).await.unwrap();
        assert!(off.tick(&d, t0() + hour * 100).await.unwrap().is_empty());
    }

    /// Runs `a` and `b` at the same time on two worker threads.
    async fn race<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
    where
        A: std::future::Future<Output = RA> + Send + 'static,
        B: std::future::Future<Output = RB> + Send + 'static,
        RA: Send + 'static,
        RB: Send + 'static,
    {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let (ba, bb) = (barrier.clone(), barrier);
        let ta = tokio::spawn(async move {
            ba.wait().await;
            a.await
        });
        let tb = tokio::spawn(async move {
            bb.wait().await;
            b.await
        });
        (ta.await.unwrap(), tb.await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ack_racing_auto_resolve_neither_reopens_nor_pages() {
        for _ in 0..40 {
            let store = Store::temporary().unwrap();
            let inc = with_lifecycle(&store);
            let d = detector(3);
            inc.open(&signal(5), t0()).await.unwrap();
            let hour = ChronoDuration::hours(1);
            inc.tick(&d, t0() + hour).await.unwrap(); // calm from here
            let late = t0() + hour * 3 + ChronoDuration::seconds(30);
            let (i1, i2, d2) = (inc.clone(), inc.clone(), d.clone());
            let (acked, ticked) = race(
                async move { i1.acknowledge(1, chat(&alice()), late).await.unwrap() },
                async move { i2.tick(&d2, late).await.unwrap() },
            )
            .await;
            let stored = store.incident(1).unwrap().unwrap();
            assert!(
                ticked
                    .iter()
                    .all(|n| matches!(n, Notice::AutoResolved { .. })),
                "no page decided: {ticked:?}"
            );
            match acked {
                // The ack came first: auto-resolve may still close it (nobody is paged).
                Outcome::Changed(_) => assert!(stored.state != IncidentState::Triggered),
                // Auto-resolve came first: the ack is refused, it does not reopen.
                Outcome::Conflict { .. } => assert_eq!(stored.state, IncidentState::Resolved),
                other => panic!("{other:?}"),
            }
            assert!(inc.escalate_due(late + hour).await.unwrap().is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_page_is_decided_after_an_ack() {
        for _ in 0..40 {
            let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3);
            inc.open(&signal(5), t0()).await.unwrap();
            let due = t0() + ChronoDuration::seconds(61);
            let (i1, i2) = (inc.clone(), inc.clone());
            let (acked, pages) = race(
                async move { i1.acknowledge(1, chat(&alice()), due).await.unwrap() },
                async move { i2.escalate_due(due).await.unwrap() },
            )
            .await;
            assert!(matches!(acked, Outcome::Changed(_)));
            let history = inc.get(1).unwrap().unwrap().history;
            let ack_at = history
                .iter()
                .position(|t| t.note == "acknowledged")
                .unwrap();
            match history.iter().position(|t| t.note.starts_with("escalated")) {
                // A page may only have been decided before the ack.
                Some(page_at) => {
                    assert!(page_at < ack_at, "{history:?}");
                    assert_eq!(pages.len(), 1);
                }
                None => assert!(pages.is_empty()),
            }
            assert!(inc
                .escalate_due(due + ChronoDuration::hours(5))
                .await
                .unwrap()
                .is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_acks_at_once_make_one_transition() {
        for _ in 0..40 {
            let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3);
            inc.open(&signal(5), t0()).await.unwrap();
            let bob = Actor {
                id: 2,
                name: "bob".into(),
            };
            let (i1, i2) = (inc.clone(), inc.clone());
            let (a, b) = race(
                async move { i1.acknowledge(1, chat(&alice()), t0()).await.unwrap() },
                async move { i2.acknowledge(1, chat(&bob), t0()).await.unwrap() },
            )
            .await;
            let changed = [&a, &b]
                .iter()
                .filter(|o| matches!(o, Outcome::Changed(_)))
                .count();
            assert_eq!(changed, 1, "{a:?} {b:?}");
            let already = [&a, &b].into_iter().find_map(|o| match o {
                Outcome::Unchanged { reason, .. } => Some(reason.clone()),
                _ => None,
            });
            assert!(already.unwrap().starts_with("already acknowledged by"));
            let history = inc.get(1).unwrap().unwrap().history;
            assert_eq!(
                history.iter().filter(|t| t.note == "acknowledged").count(),
                1
            );
        }
    }

    #[tokio::test]
    async fn silences_hold_notices_back_but_not_the_resolve_of_an_announced_incident() {
        let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3);
        let opened = inc.open(&signal(5), t0()).await.unwrap();
        let notice = inc.opened_notice(opened.clone());
        assert_eq!(inc.silenced(&notice, t0()).unwrap(), None);
        let web = Actor {
            id: 0,
            name: "web:alice".into(),
        };
        let by = By {
            actor: &web,
            via: "web",
        };
        let hour = Duration::from_secs(3600);
        let other = inc
            .mute(SilenceKind::Brand, "招联", hour, by, "", t0())
            .unwrap();
        assert_eq!(inc.silenced(&notice, t0()).unwrap(), None, "{other:?}");
        let silence = inc
            .mute(
                SilenceKind::Brand,
                "度小满",
                hour,
                by,
                "known issue, PR is on it",
                t0(),
            )
            .unwrap();
        assert_eq!(silence.created_by, "web:alice via web");
        assert_eq!(
            inc.silenced(&notice, t0()).unwrap().map(|s| s.id),
            Some(silence.id.clone())
        );
        // Expired by itself an hour later.
        let later = t0() + ChronoDuration::hours(1);
        assert_eq!(inc.silenced(&notice, later).unwrap(), None);

        // The resolve of an incident already announced goes out; of an unannounced one, not.
        let mut announced = opened.clone();
        announced.alert_delivered = true;
        let resolved = Notice::AutoResolved {
            incident: announced,
        };
        assert_eq!(inc.silenced(&resolved, t0()).unwrap(), None);
        let quiet = Notice::AutoResolved { incident: opened };
        assert!(inc.silenced(&quiet, t0()).unwrap().is_some());

        // Unmute ends it now; it stays listed.
        inc.unmute(&silence.id, t0()).unwrap().unwrap();
        assert_eq!(inc.silenced(&notice, t0()).unwrap(), None);
        assert_eq!(inc.silences().unwrap().len(), 2);
        assert!(inc.unmute("nope", t0()).unwrap().is_none());
    }

    #[test]
    fn silences_match_sources_and_topic_words() {
        let incident = Incident {
            top_posts: vec![PostSummary {
                source: "黑猫投诉".into(),
                url: None,
                title: "t".into(),
                score: -2.0,
                terms: vec!["暴力催收".into()],
                at: t0(),
                excerpt: String::new(),
            }],
            ..test_incident()
        };
        let silence = |kind, name: &str| Silence {
            id: "1".into(),
            kind,
            name: name.into(),
            until: t0(),
            created_by: "x".into(),
            created_at: t0(),
            reason: String::new(),
        };
        assert!(silence(SilenceKind::Source, "黑猫投诉").matches(&incident));
        assert!(!silence(SilenceKind::Source, "微博").matches(&incident));
        assert!(silence(SilenceKind::Topic, "暴力催收").matches(&incident));
        assert!(!silence(SilenceKind::Topic, "催收").matches(&incident));
    }

    fn test_incident() -> Incident {
        Incident::sample(1, "度小满", t0())
    }

    #[test]
    fn topic_terms_are_what_sets_the_incident_apart_from_usual_mentions() {
        let hit = |terms: &[&str], crisis: &[&str]| Hit {
            terms: terms.iter().map(|t| t.to_string()).collect(),
            crisis: crisis.iter().map(|t| t.to_string()).collect(),
            ..negative_hit(t0(), 3.0, "x")
        };
        // The brand always draws 客服 complaints; 爆通讯录 is new.
        let background: Vec<Hit> = (0..20).map(|_| hit(&["客服", "态度"], &[])).collect();
        let mut incident = test_incident();
        let story = vec![
            hit(&["客服", "爆通讯录"], &["violent_collection"]),
            hit(&["客服", "爆通讯录", "骚扰"], &["violent_collection"]),
            hit(&["客服"], &[]),
        ];
        add_topics(&mut incident, &story, &background);
        assert_eq!(
            incident.topic_terms[0], "爆通讯录",
            "{:?}",
            incident.topic_terms
        );
        assert!(
            incident.topic_terms.iter().position(|t| t == "骚扰")
                < incident.topic_terms.iter().position(|t| t == "客服"),
            "{:?}",
            incident.topic_terms
        );
        assert_eq!(incident.categories.get("violent_collection"), Some(&2));
        assert_eq!(incident.term_counts.get("客服"), Some(&3));
        // Without a background, the most frequent words lead.
        let mut fresh = test_incident();
        add_topics(&mut fresh, &story, &[]);
        assert_eq!(fresh.topic_terms[0], "客服");
    }

    #[tokio::test]
    async fn the_policy_repeats_then_keeps_paging_the_last_tier() {
        let inc = Incidents::new(Store::temporary().unwrap(), tiers(), 3).with_repeat(1);
        inc.open(&signal(5), t0()).await.unwrap();
        let page = |n: &[Notice]| match n {
            [Notice::Escalated {
                tier_number,
                repeat,
                ..
            }] => (*tier_number, *repeat),
            other => panic!("{other:?}"),
        };
        let s = ChronoDuration::seconds;
        // tier 1 (60 s) → tier 2 (120 s) → tier 1 again (the one repeat) → tier 2 → tier 2 …
        assert_eq!(
            page(&inc.escalate_due(t0() + s(60)).await.unwrap()),
            (2, false)
        );
        assert_eq!(
            page(&inc.escalate_due(t0() + s(180)).await.unwrap()),
            (1, false)
        );
        assert_eq!(
            page(&inc.escalate_due(t0() + s(240)).await.unwrap()),
            (2, false)
        );
        assert_eq!(
            page(&inc.escalate_due(t0() + s(360)).await.unwrap()),
            (2, true)
        );
        assert_eq!(
            page(&inc.escalate_due(t0() + s(480)).await.unwrap()),
            (2, true)
        );
    }

    #[tokio::test]
    async fn a_tier_in_its_quiet_hours_is_passed_over() {
        use chrono::TimeZone;
        let mut quiet = tiers();
        quiet[0].quiet_hours = crate::config::QuietHours::parse("22:00-08:00");
        let inc = Incidents::new(Store::temporary().unwrap(), quiet, 3);
        // 23:30 in Shanghai (the store's zone) is 15:30 UTC: tier 1 sleeps, tier 2 is paged.
        let night = Utc.with_ymd_and_hms(2026, 3, 1, 15, 30, 0).unwrap();
        let opened = inc.open(&signal(5), night).await.unwrap();
        assert_eq!(opened.tier, 1);
        let Notice::Opened { tier, .. } = inc.opened_notice(opened) else {
            panic!()
        };
        assert_eq!(tier.unwrap().name, "second");
        // By day, tier 1 is paged first.
        let inc = Incidents::new(
            Store::temporary().unwrap(),
            {
                let mut q = tiers();
                q[0].quiet_hours = crate::config::QuietHours::parse("22:00-08:00");
                q
            },
            3,
        );
        assert_eq!(inc.open(&signal(5), t0()).await.unwrap().tier, 0);
    }

    #[tokio::test]
    async fn a_post_and_its_incident_count_are_stored_together() {
        let store = Store::temporary().unwrap();
        let inc = with_lifecycle(&store);
        inc.open(&signal(5), t0()).await.unwrap();
        let hits = vec![
            negative_hit(t0(), 3.0, "a"),
            Hit {
                brand: "招联".into(),
                ..negative_hit(t0(), 3.0, "b")
            },
        ];
        let keys = vec!["g:1".to_string()];
        let recorded = inc.record(&keys, &hits, None, t0()).unwrap();
        assert!(recorded.fresh);
        assert_eq!(recorded.attached, vec!["度小满".to_string()]);
        let stored = store.incident(1).unwrap().unwrap();
        assert_eq!(stored.hit_count, 6);
        assert!(stored.top_posts.iter().any(|p| p.title == "a"));
        assert_eq!(
            store
                .hits_between("度小满", t0(), t0() + ChronoDuration::seconds(1))
                .len(),
            1
        );
        // The same post again: neither stored nor counted twice.
        let again = inc.record(&keys, &hits, None, t0()).unwrap();
        assert!(!again.fresh && again.attached.is_empty());
        assert_eq!(store.incident(1).unwrap().unwrap().hit_count, 6);
        // A resolved incident takes nothing.
        inc.resolve(1, chat(&alice()), None, t0()).await.unwrap();
        let later = inc.record(&["g:2".to_string()], &hits, None, t0()).unwrap();
        assert!(later.fresh && later.attached.is_empty());
        assert_eq!(store.incident(1).unwrap().unwrap().hit_count, 6);
    }
}
