//! The incident report (问题诊断报告): what happened to one incident, in order, as Markdown.
//!
//! [`diagnose`] reads the stored incident and the hits around it; [`Diagnosis::markdown`]
//! renders it. The CLI (`yuqing report ID`), the API (`/api/v1/incidents/{id}/report`) and the
//! console show the same text, and the notifier can send it when an incident resolves.
//!
//! The timeline is read from the incident's history, which the lifecycle (`incident.rs`)
//! writes: its first entry is the opening (the alert), later ones are escalations, acks,
//! resolves and reopens, each with who, via what and a note. [`response_times`] derives the time
//! to acknowledge and to resolve from the same history, as of a given instant, so the daily
//! digest counts an incident's MTTA/MTTR the same way.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::markdown;
use crate::store::{HitQuery, Incident, IncidentState, Store, MAX_PAGE};

/// How many negative hits the per-source counts read at most; past that the counts say "at
/// least", so a viral incident cannot stall a report.
const MAX_COUNTED_HITS: usize = 20 * MAX_PAGE;

/// One step of an incident's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The earliest negative post of the opening window.
    FirstHit,
    /// The incident opened and its alert was raised.
    Opened,
    /// The next tier was paged.
    Escalated,
    Acknowledged,
    Resolved,
    Reopened,
    /// Triggered again for another reason (an acknowledgement that expired unresolved).
    Retriggered,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    /// Who did it; `None` for yuqing itself.
    pub by: Option<String>,
    /// Where it was done: `telegram`, `api`, `web`, `cli`.
    pub via: Option<String>,
    /// What they wrote, or why yuqing did it; empty when there is nothing to add.
    pub note: String,
}

/// When an incident was first taken by a person and when it was resolved, as of some instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResponseTimes {
    /// The first change made by a person (an ack, or a resolve of an unacknowledged incident).
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The last resolve, when the incident was resolved at that instant.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl ResponseTimes {
    pub fn to_acknowledge(&self, opened_at: DateTime<Utc>) -> Option<ChronoDuration> {
        self.acknowledged_at.map(|at| at - opened_at)
    }

    pub fn to_resolve(&self, opened_at: DateTime<Utc>) -> Option<ChronoDuration> {
        self.resolved_at.map(|at| at - opened_at)
    }
}

/// The response times of `incident` counting only what happened before `as_of`.
pub fn response_times(incident: &Incident, as_of: DateTime<Utc>) -> ResponseTimes {
    if incident.history.is_empty() {
        // Written before histories were kept: the incident's own fields are all there is.
        return ResponseTimes {
            acknowledged_at: incident.acked_at.filter(|at| *at < as_of),
            resolved_at: incident.resolved_at.filter(|at| *at < as_of),
        };
    }
    let known: Vec<_> = incident.history.iter().filter(|t| t.at < as_of).collect();
    let acknowledged_at = known.iter().find(|t| t.by.is_some()).map(|t| t.at);
    let resolved_at = match known.last() {
        Some(last) if last.to == IncidentState::Resolved => Some(last.at),
        _ => None,
    };
    ResponseTimes {
        acknowledged_at,
        resolved_at,
    }
}

/// The earliest negative post of an incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstHit {
    pub at: DateTime<Utc>,
    pub source: String,
    pub title: String,
    pub url: Option<String>,
}

/// Everything the report shows about one incident.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub incident: Incident,
    /// The zone times are shown in: the store's, so they agree with the daily figures.
    #[serde(serialize_with = "zone_name")]
    pub time_zone: Tz,
    pub first_hit: Option<FirstHit>,
    /// Oldest first.
    pub timeline: Vec<Event>,
    pub response: ResponseTimes,
    /// Negative posts per source from the first hit until the resolve (or now), most first.
    pub by_source: Vec<(String, u64)>,
    /// `by_source` stopped counting at [`MAX_COUNTED_HITS`].
    pub by_source_partial: bool,
    /// The incident in the web console, when its address is known.
    pub console_url: Option<String>,
}

fn zone_name<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// The report of incident `id`, or `None` when there is no such incident. `now` ends the
/// per-source counts of an incident still open; `public_url` makes the console link.
pub fn diagnose(
    store: &Store,
    id: u64,
    public_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Diagnosis>> {
    let Some(incident) = store
        .incident(id)
        .with_context(|| format!("reading incident #{id} for its report"))?
    else {
        return Ok(None);
    };
    let first_hit = first_hit(store, &incident);
    let mut timeline = Vec::with_capacity(incident.history.len() + 1);
    if let Some(first) = &first_hit {
        timeline.push(Event {
            at: first.at,
            kind: EventKind::FirstHit,
            by: None,
            via: None,
            note: format!("[{}] {}", first.source, first.title),
        });
    }
    timeline.extend(history_events(&incident));
    // The first hit can only come before the opening; a stable sort keeps the history's own
    // order for steps recorded at the same instant.
    timeline.sort_by_key(|e| e.at);
    let from = first_hit.as_ref().map_or(incident.opened_at, |f| f.at);
    let until = incident.resolved_at.unwrap_or(now).max(from);
    let (by_source, by_source_partial) = negative_by_source(store, &incident.brand, from, until)
        .with_context(|| format!("counting incident #{id}'s posts by source"))?;
    Ok(Some(Diagnosis {
        response: response_times(&incident, DateTime::<Utc>::MAX_UTC),
        console_url: public_url.map(|u| format!("{}/incidents/{id}", u.trim_end_matches('/'))),
        time_zone: store.time_zone(),
        first_hit,
        timeline,
        by_source,
        by_source_partial,
        incident,
    }))
}

/// The earliest negative post among the opening window's hits and the incident's top posts
/// (a post published earlier can arrive later and still be attached).
fn first_hit(store: &Store, incident: &Incident) -> Option<FirstHit> {
    let window = ChronoDuration::seconds(i64::try_from(incident.window_secs).unwrap_or(0));
    let from = incident.opened_at - window;
    let to = incident.opened_at + ChronoDuration::seconds(1);
    let in_window = store
        .hits_between(&incident.brand, from, to)
        .into_iter()
        .find(|h| h.negative)
        .map(|h| FirstHit {
            at: h.at,
            source: h.source,
            title: h.title,
            url: h.url,
        });
    let from_top = incident
        .top_posts
        .iter()
        .min_by_key(|p| p.at)
        .map(|p| FirstHit {
            at: p.at,
            source: p.source.clone(),
            title: p.title.clone(),
            url: p.url.clone(),
        });
    match (in_window, from_top) {
        (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The incident's history as events. The lifecycle writes a note for each step; the kind is
/// read from the target state and, where one state has several causes, from the note's start.
fn history_events(incident: &Incident) -> Vec<Event> {
    incident
        .history
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let kind = if i == 0 {
                EventKind::Opened
            } else if t.note.starts_with("reopened") {
                EventKind::Reopened
            } else {
                match t.to {
                    IncidentState::Resolved => EventKind::Resolved,
                    IncidentState::Acknowledged => EventKind::Acknowledged,
                    IncidentState::Triggered if t.note.starts_with("escalated") => {
                        EventKind::Escalated
                    }
                    IncidentState::Triggered => EventKind::Retriggered,
                }
            };
            Event {
                at: t.at,
                kind,
                by: t.by.as_ref().map(|a| a.name.clone()),
                via: t.via.clone(),
                note: own_words(kind, &t.note),
            }
        })
        .collect()
}

/// A person's note without the verb the lifecycle puts before it ("resolved: fixed" → "fixed");
/// empty when the note is only the verb.
fn own_words(kind: EventKind, note: &str) -> String {
    let verb = match kind {
        EventKind::Acknowledged => "acknowledged",
        EventKind::Resolved => "resolved",
        EventKind::Reopened => "reopened",
        _ => return note.to_string(),
    };
    match note.strip_prefix(verb) {
        Some("") => String::new(),
        Some(rest) if rest.starts_with(": ") => rest[2..].to_string(),
        _ => note.to_string(),
    }
}

/// Negative hits of `brand` with `from <= at <= until`, counted by source, most first (then by
/// name), and whether counting stopped early.
fn negative_by_source(
    store: &Store,
    brand: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(Vec<(String, u64)>, bool)> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut query = HitQuery {
        brand: Some(brand.to_string()),
        since: Some(from),
        until: Some(until + ChronoDuration::seconds(1)),
        negative: Some(true),
        limit: MAX_PAGE,
        ..HitQuery::default()
    };
    let mut read = 0;
    let partial = loop {
        let page = store.hits_page(&query)?;
        read += page.hits.len();
        for stored in page.hits {
            *counts.entry(stored.hit.source).or_default() += 1;
        }
        match page.next_cursor {
            Some(_) if read >= MAX_COUNTED_HITS => break true,
            Some(cursor) => query.cursor = Some(cursor),
            None => break false,
        }
    };
    let mut list: Vec<(String, u64)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok((list, partial))
}

/// A duration as people say it: `4m 12s`, `1h 20m`, `2d 3h`; never negative.
pub fn human(d: ChronoDuration) -> String {
    let secs = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) if seconds > 0 => format!("{minutes}m {seconds}s"),
        (0, 0, _) => format!("{minutes}m"),
        (0, _, 0) => format!("{hours}h"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        (_, 0, _) => format!("{days}d"),
        _ => format!("{days}d {hours}h"),
    }
}

/// A time in `tz`, to the minute.
pub fn local_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn state_name(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Triggered => "triggered (unacknowledged)",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Resolved => "resolved",
    }
}

impl Diagnosis {
    /// The report as Markdown. Everything quoted from posts, notes and names is escaped
    /// ([`markdown::escape`]), and only `http(s)` URLs become links.
    pub fn markdown(&self) -> String {
        let i = &self.incident;
        let tz = self.time_zone;
        let esc = markdown::escape;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# 问题诊断报告 · Incident report #{} — {}\n",
            i.id,
            esc(&i.brand)
        );
        let _ = writeln!(out, "- **State:** {}", state_name(i.state));
        let _ = writeln!(
            out,
            "- **Opened:** {} ({})",
            local_time(i.opened_at, tz),
            tz.name()
        );
        if !i.opened_because.is_empty() {
            let _ = writeln!(out, "- **Why:** {}", esc(&i.opened_because));
        }
        match &i.acked_by {
            Some(owner) => {
                let _ = writeln!(out, "- **Owner:** {}", esc(&owner.name));
            }
            None => {
                let _ = writeln!(out, "- **Owner:** nobody yet");
            }
        }
        let _ = writeln!(
            out,
            "- **Time to acknowledge:** {}",
            self.response
                .to_acknowledge(i.opened_at)
                .map_or("not acknowledged by a person".to_string(), human)
        );
        let _ = writeln!(
            out,
            "- **Time to resolve:** {}",
            self.response
                .to_resolve(i.opened_at)
                .map_or("not resolved".to_string(), human)
        );
        if let Some(url) = &self.console_url {
            let _ = writeln!(out, "- **Console:** {}", markdown::link(url, Some(url)));
        }

        let _ = writeln!(out, "\n## Timeline ({})\n", tz.name());
        for e in &self.timeline {
            let _ = writeln!(out, "- {} — {}", local_time(e.at, tz), self.event_text(e));
        }
        if !i.alert_delivered && i.state.is_open() {
            let _ = writeln!(
                out,
                "\n_The opening alert has not been confirmed delivered yet._"
            );
        }

        let _ = writeln!(out, "\n## Counts\n");
        let window = crate::config::human_duration(std::time::Duration::from_secs(i.window_secs));
        let _ = writeln!(
            out,
            "- **Opening window:** {} negative posts in {window} (expected {:.1})",
            i.window_count, i.baseline
        );
        let _ = writeln!(out, "- **Negative posts attached:** {}", i.hit_count);
        if !self.by_source.is_empty() {
            let list: Vec<String> = self
                .by_source
                .iter()
                .map(|(source, n)| format!("{} {n}", esc(source)))
                .collect();
            let _ = writeln!(
                out,
                "- **By source{}:** {}",
                if self.by_source_partial {
                    " (at least; counting stopped)"
                } else {
                    ""
                },
                list.join(", ")
            );
        }

        let _ = writeln!(out, "\n## Topic terms\n");
        if i.topic_terms.is_empty() {
            let _ = writeln!(out, "None stood out from the brand's usual mentions.");
        } else {
            let terms: Vec<String> = i.topic_terms.iter().map(|t| esc(t)).collect();
            let _ = writeln!(out, "{}", terms.join("、"));
        }

        let _ = writeln!(out, "\n## Crisis categories\n");
        if i.categories.is_empty() {
            let _ = writeln!(out, "None found.");
        } else {
            let mut categories: Vec<(&String, &u64)> = i.categories.iter().collect();
            categories.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            for (category, n) in categories {
                let _ = writeln!(out, "- {}: {n} posts", esc(category));
            }
        }

        let _ = writeln!(out, "\n## Top posts\n");
        if i.top_posts.is_empty() {
            let _ = writeln!(out, "None kept.");
        }
        for (n, p) in i.top_posts.iter().enumerate() {
            let terms: Vec<String> = p.terms.iter().map(|t| esc(t)).collect();
            let _ = writeln!(
                out,
                "{}. {} — {}, {}, score {:.1}{}",
                n + 1,
                markdown::link(&p.title, p.url.as_deref()),
                esc(&p.source),
                local_time(p.at, tz),
                p.score,
                if terms.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", terms.join(", "))
                }
            );
        }
        out
    }

    fn event_text(&self, e: &Event) -> String {
        let esc = markdown::escape;
        let who = || {
            let name = e.by.as_deref().map_or("yuqing".to_string(), esc);
            match &e.via {
                Some(via) => format!("{name} (via {})", esc(via)),
                None => name,
            }
        };
        let with_note = |what: String| {
            if e.note.is_empty() {
                what
            } else {
                format!("{what}: {}", esc(&e.note))
            }
        };
        match e.kind {
            EventKind::FirstHit => match &self.first_hit {
                Some(f) => format!(
                    "first negative post: {} ({})",
                    markdown::link(&f.title, f.url.as_deref()),
                    esc(&f.source)
                ),
                None => with_note("first negative post".into()),
            },
            EventKind::Opened => with_note("opened, alert raised".into()),
            EventKind::Escalated => with_note("paged".into()),
            EventKind::Acknowledged => with_note(format!("acknowledged by {}", who())),
            EventKind::Resolved => with_note(format!("resolved by {}", who())),
            EventKind::Reopened => with_note(format!("reopened by {}", who())),
            EventKind::Retriggered => with_note("triggered again".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TierConfig;
    use crate::detect::Signal;
    use crate::incident::{By, Incidents, Outcome};
    use crate::store::{Actor, Hit, PostSummary};
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap()
    }

    fn negative(source: &str, title: &str, when: DateTime<Utc>) -> Hit {
        Hit {
            amplification: 0,
            reposted_by: Vec::new(),
            brand: "度小满".into(),
            source: source.into(),
            url: Some(format!("https://{source}.example/{}", when.timestamp())),
            title: title.into(),
            snippet: String::new(),
            at: when,
            fetched_at: when,
            score: -2.0,
            negative: true,
            terms: vec!["催收".into()],
            severity: 3.0,
            crisis: vec![],
        }
    }

    fn tiers() -> Vec<TierConfig> {
        ["on-call", "PR lead"]
            .iter()
            .map(|name| TierConfig {
                name: name.to_string(),
                mention: vec![],
                ack_timeout: std::time::Duration::from_secs(600),
                quiet_hours: None,
                targets: Default::default(),
            })
            .collect()
    }

    fn person(name: &str) -> Actor {
        Actor {
            id: 7,
            name: name.into(),
        }
    }

    /// An incident taken through the real lifecycle: opened at 08:00 UTC on a spike whose
    /// first post came at 07:50, escalated at 08:10, acknowledged at 08:12, resolved with a
    /// note at 09:00, reopened at 09:30 and resolved for good at 10:00.
    async fn lived_incident(store: &Store) -> u64 {
        store
            .insert_hit(&negative("weibo", "暴力催收 **again**", at(7, 50)))
            .unwrap();
        store
            .insert_hit(&negative("tousu", "催收电话", at(7, 55)))
            .unwrap();
        store
            .insert_hit(&negative("weibo", "later", at(8, 30)))
            .unwrap();
        let incidents = Incidents::new(store.clone(), tiers(), 3);
        let signal = Signal {
            brand: "度小满".into(),
            window_count: 2,
            baseline: 0.2,
            window: std::time::Duration::from_secs(900),
            top: store.hits_between("度小满", at(7, 45), at(8, 0)),
        };
        let id = incidents.open(&signal, at(8, 0)).await.unwrap().id;
        let paged = incidents.escalate_due(at(8, 10)).await.unwrap();
        assert_eq!(paged.len(), 1, "tier 2 paged");
        let alice = person("alice");
        let web = By {
            actor: &alice,
            via: "web",
        };
        let done = |o: Outcome| assert!(matches!(o, Outcome::Changed(_)), "{o:?}");
        done(incidents.acknowledge(id, web, at(8, 12)).await.unwrap());
        done(
            incidents
                .resolve(id, web, Some("refunded | apologised"), at(9, 0))
                .await
                .unwrap(),
        );
        let bob = person("bob");
        let cli = By {
            actor: &bob,
            via: "cli",
        };
        done(
            incidents
                .reopen(id, cli, Some("complaints again"), at(9, 30))
                .await
                .unwrap(),
        );
        done(incidents.resolve(id, cli, None, at(10, 0)).await.unwrap());
        id
    }

    #[tokio::test]
    async fn the_report_tells_the_incident_in_order() {
        let store = Store::temporary().unwrap();
        let id = lived_incident(&store).await;
        let d = diagnose(&store, id, Some("https://yq.example/"), at(12, 0))
            .unwrap()
            .unwrap();
        let kinds: Vec<EventKind> = d.timeline.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::FirstHit,
                EventKind::Opened,
                EventKind::Escalated,
                EventKind::Acknowledged,
                EventKind::Resolved,
                EventKind::Reopened,
                EventKind::Resolved,
            ]
        );
        assert_eq!(d.first_hit.as_ref().unwrap().at, at(7, 50));
        assert_eq!(d.timeline[4].note, "refunded | apologised");
        assert_eq!(d.timeline[5].note, "complaints again");
        assert_eq!(d.timeline[6].note, "", "a bare resolve has no note");
        assert_eq!(
            d.response.to_acknowledge(at(8, 0)),
            Some(ChronoDuration::minutes(12))
        );
        assert_eq!(
            d.response.to_resolve(at(8, 0)),
            Some(ChronoDuration::hours(2)),
            "the last resolve counts"
        );
        assert_eq!(
            d.by_source,
            vec![("weibo".to_string(), 2), ("tousu".to_string(), 1)]
        );

        let md = d.markdown();
        // Times are local (Asia/Shanghai is UTC+8).
        for line in [
            "# 问题诊断报告 · Incident report #1 — 度小满",
            "- **Time to acknowledge:** 12m",
            "- **Time to resolve:** 2h",
            "- **Console:** [https://yq.example/incidents/1](https://yq.example/incidents/1)",
            "- 2026-03-01 15:50 — first negative post: [暴力催收 \\*\\*again\\*\\*](https://weibo.example/",
            "- 2026-03-01 16:10 — paged: escalated to tier 2 (PR lead)",
            "- 2026-03-01 16:12 — acknowledged by alice (via web)",
            "- 2026-03-01 17:00 — resolved by alice (via web): refunded \\| apologised",
            "- 2026-03-01 17:30 — reopened by bob (via cli): complaints again",
            "- 2026-03-01 18:00 — resolved by bob (via cli)\n",
            "- **Opening window:** 2 negative posts in 15m (expected 0.2)",
            "- **By source:** weibo 2, tousu 1",
        ] {
            assert!(md.contains(line), "missing {line:?} in\n{md}");
        }
        assert!(!md.contains("**again**"), "quoted Markdown is escaped");
    }

    #[test]
    fn an_unknown_incident_has_no_report() {
        let store = Store::temporary().unwrap();
        assert!(diagnose(&store, 42, None, at(12, 0)).unwrap().is_none());
    }

    #[test]
    fn a_bare_incident_still_reads() {
        let store = Store::temporary().unwrap();
        let mut incident = Incident::sample(3, "度小满", at(8, 0));
        incident.top_posts.push(PostSummary {
            source: "evil".into(),
            url: Some("javascript:alert(1)".into()),
            title: "[click](javascript:alert(1))".into(),
            score: -3.0,
            terms: vec![],
            at: at(7, 58),
            excerpt: String::new(),
        });
        store.create_incident(&incident).unwrap();
        let d = diagnose(&store, 3, None, at(12, 0)).unwrap().unwrap();
        assert_eq!(
            d.first_hit.as_ref().unwrap().source,
            "evil",
            "from the top posts"
        );
        assert_eq!(d.response, ResponseTimes::default());
        let md = d.markdown();
        assert!(md.contains("- **Owner:** nobody yet"), "{md}");
        assert!(md.contains("not acknowledged by a person"), "{md}");
        assert!(md.contains("None stood out"), "{md}");
        assert!(md.contains("None found."), "{md}");
        assert!(
            md.contains("_The opening alert has not been confirmed"),
            "{md}"
        );
        assert!(
            !md.replace("\\]", "").contains("](javascript"),
            "no javascript link: {md}"
        );
        assert!(md.contains("\\[click\\](javascript:alert(1))"), "{md}");
        assert!(!md.contains("**Console:**"), "no public URL, no link");
    }

    #[test]
    fn response_times_count_only_what_happened_before() {
        let mut i = Incident::sample(1, "b", at(8, 0));
        let step = |h, m, to, by: Option<&str>| crate::store::Transition {
            at: at(h, m),
            to,
            by: by.map(person),
            note: String::new(),
            via: None,
        };
        i.history = vec![
            step(8, 0, IncidentState::Triggered, None),
            step(8, 30, IncidentState::Acknowledged, Some("a")),
            step(9, 0, IncidentState::Resolved, Some("a")),
        ];
        assert_eq!(response_times(&i, at(8, 10)), ResponseTimes::default());
        let by_845 = response_times(&i, at(8, 45));
        assert_eq!(by_845.acknowledged_at, Some(at(8, 30)));
        assert_eq!(by_845.resolved_at, None);
        assert_eq!(response_times(&i, at(23, 0)).resolved_at, Some(at(9, 0)));
        // Auto-resolved by yuqing: resolved, but never acknowledged by a person.
        i.history = vec![
            step(8, 0, IncidentState::Triggered, None),
            step(10, 0, IncidentState::Resolved, None),
        ];
        let auto = response_times(&i, at(23, 0));
        assert_eq!(
            (auto.acknowledged_at, auto.resolved_at),
            (None, Some(at(10, 0)))
        );
    }

    #[test]
    fn durations_read_like_people_say_them() {
        let d = ChronoDuration::seconds;
        assert_eq!(human(d(42)), "42s");
        assert_eq!(human(d(252)), "4m 12s");
        assert_eq!(human(d(600)), "10m");
        assert_eq!(human(d(4800)), "1h 20m");
        assert_eq!(human(d(7200)), "2h");
        assert_eq!(human(d(2 * 86_400 + 3 * 3600 + 59)), "2d 3h");
        assert_eq!(human(d(-5)), "0s");
    }
}
