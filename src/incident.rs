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

use anyhow::Result;
use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::config::TierConfig;
use crate::detect::{Detector, Signal};
use crate::store::{Actor, Hit, Incident, IncidentState, PostSummary, Store, Transition};

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
}

impl Incidents {
    pub fn new(store: Store, tiers: Vec<TierConfig>, top_posts: usize) -> Incidents {
        Incidents {
            store,
            tiers,
            top_posts,
        }
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

    /// Handles new negative hits about `brand`: attaches them to its open incident, or opens
    /// one when the detector sees a spike. Returns the incident if one was opened.
    pub async fn on_negative_hits(
        &self,
        brand: &str,
        hits: &[Hit],
        detector: &Detector,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>> {
        if let Some(open) = self
            .store
            .open_incidents()?
            .into_iter()
            .find(|i| i.brand == brand)
        {
            let top_posts = self.top_posts;
            self.store.update_incident(open.id, |old| {
                let mut new = old.clone();
                new.hit_count += hits.len() as u64;
                merge_top(&mut new.top_posts, hits, top_posts);
                Ok::<_, ()>(new)
            })?;
            self.store.flush().await?;
            return Ok(None);
        }
        match detector.check(&self.store, brand, now) {
            Some(signal) => Ok(Some(self.open(&signal, now).await?)),
            None => Ok(None),
        }
    }

    /// Opens an incident for a signal and stores it.
    pub async fn open(&self, signal: &Signal, now: DateTime<Utc>) -> Result<Incident> {
        let id = self.store.next_incident_id()?;
        let mut top_posts = Vec::new();
        merge_top(&mut top_posts, &signal.top, self.top_posts);
        let incident = Incident {
            id,
            brand: signal.brand.clone(),
            state: IncidentState::Triggered,
            opened_at: now,
            window_count: signal.window_count,
            baseline: signal.baseline,
            window_secs: signal.window.as_secs(),
            hit_count: signal.window_count,
            top_posts,
            tier: 0,
            next_page_at: self.tiers.first().map(|t| now + to_chrono(t.ack_timeout)),
            alert_delivered: false,
            acked_by: None,
            acked_at: None,
            resolved_by: None,
            resolved_at: None,
            history: vec![Transition {
                at: now,
                to: IncidentState::Triggered,
                by: None,
                note: format!(
                    "{} negative in window, baseline {:.1}",
                    signal.window_count, signal.baseline
                ),
                via: None,
            }],
        };
        self.store.create_incident(&incident)?;
        self.store.flush().await?;
        tracing::warn!(id, brand = %incident.brand, count = signal.window_count, baseline = %format!("{:.2}", signal.baseline), "incident opened");
        Ok(incident)
    }

    /// The notice for an opened incident.
    pub fn opened_notice(&self, incident: Incident) -> Notice {
        Notice::Opened {
            tier: self.tiers.first().cloned(),
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

    /// Open incidents whose opening alert never reached anyone.
    pub fn undelivered(&self) -> Result<Vec<Incident>> {
        Ok(self
            .store
            .open_incidents()?
            .into_iter()
            .filter(|i| !i.alert_delivered)
            .collect())
    }

    /// Takes ownership: stops escalation.
    pub async fn acknowledge(&self, id: u64, by: By<'_>, now: DateTime<Utc>) -> Result<Outcome> {
        self.transition(id, |old| match old.state {
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
        self.transition(id, |old| match old.state {
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
        self.transition(id, |old| match old.state {
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

    async fn transition<F>(&self, id: u64, change: F) -> Result<Outcome>
    where
        F: Fn(&Incident) -> Result<Incident, Refusal>,
    {
        let outcome = match self.store.update_incident(id, change)? {
            None => return Ok(Outcome::NotFound(id)),
            Some(Ok(new)) => Outcome::Changed(new),
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
            let updated = self.store.update_incident(incident.id, |old| {
                // Re-check inside the swap: an /ack may have landed since the read.
                if old.state != IncidentState::Triggered
                    || old.next_page_at.is_none_or(|at| at > now)
                {
                    return Err(());
                }
                let mut new = old.clone();
                new.tier = (old.tier + 1).min(last);
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
                let repeat = incident.tier == last;
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
    actor.as_ref().map_or("someone", |a| a.name.as_str())
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
            },
            TierConfig {
                name: "second".into(),
                mention: vec!["@b".into()],
                ack_timeout: Duration::from_secs(120),
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
        };
        let first = vec![hit(-1.0, "a")];
        store.insert_hit(&first[0]).unwrap();
        let opened = inc
            .on_negative_hits("度小满", &first, &detector, now)
            .await
            .unwrap();
        assert!(opened.is_some());
        let more = vec![hit(-5.0, "b"), hit(-0.7, "c")];
        let opened_again = inc
            .on_negative_hits("度小满", &more, &detector, now)
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
}
