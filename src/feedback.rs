//! Staff verdicts on hits (the "robot trainer" loop): a person says a hit was not really
//! negative about the brand (a false positive), the verdict is stored with who gave it and
//! when, and `yuqing export-feedback` turns the verdicts into rows `yuqing learn` retrains on.
//!
//! Every surface (Telegram's `/fp` and False positive button, the console's button, the API)
//! goes through [`give_verdict`], so they all mean the same thing by "an incident": its hits.

use anyhow::Result;
use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::store::{Actor, Feedback, HitQuery, Incident, Store, StoredHit, MAX_PAGE};

/// What a verdict is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One hit, by its id (the hex string the API, the console and `/hits` show).
    Hit(String),
    /// Every negative hit of an incident (see [`incident_hits`]).
    Incident(u64),
}

impl Target {
    /// "12" or "#12" is an incident; a long hex string is a hit id.
    pub fn parse(text: &str) -> Option<Target> {
        let text = text.trim().trim_start_matches('#');
        if text.is_empty() {
            return None;
        }
        if text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().ok().map(Target::Incident);
        }
        // A hit id is its key in hex: the brand's bytes, a separator, then 16 bytes of time
        // and sequence, so at least 34 digits.
        (text.len() >= 34
            && text.len().is_multiple_of(2)
            && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Target::Hit(text.to_ascii_lowercase()))
    }
}

/// What [`give_verdict`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub brand: String,
    /// How many hits got the verdict.
    pub hits: usize,
}

/// Why nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotGiven {
    #[error("no hit {0}")]
    NoSuchHit(String),
    #[error("no incident #{0}")]
    NoSuchIncident(u64),
    #[error("incident #{0} has no stored negative hits")]
    NoHits(u64),
}

/// An incident's hits: its brand's negative hits from the start of the window that opened it
/// until it resolved (or now), newest first, at most [`MAX_PAGE`] (1,000) of them.
pub fn incident_hits(store: &Store, incident: &Incident) -> Result<Vec<StoredHit>> {
    let since = incident.opened_at
        - ChronoDuration::seconds(i64::try_from(incident.window_secs).unwrap_or(i64::MAX / 2));
    // `until` is exclusive; a hit stored in the very millisecond of the resolve belongs to it.
    let until = incident
        .resolved_at
        .map(|t| t + ChronoDuration::milliseconds(1));
    let page = store.hits_page(&HitQuery {
        brand: Some(incident.brand.clone()),
        since: Some(since),
        until,
        negative: Some(true),
        limit: MAX_PAGE,
        ..HitQuery::default()
    })?;
    Ok(page.hits)
}

/// Stores `negative` (false: a false positive) as `by`'s verdict on the target's hits.
/// `Ok(Err(..))` when the target names nothing; the store is then left as it was.
pub fn give_verdict(
    store: &Store,
    target: &Target,
    negative: bool,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<Result<Given, NotGiven>> {
    let hits: Vec<StoredHit> = match target {
        Target::Hit(id) => match store.hit(id)? {
            Some(hit) => vec![StoredHit {
                id: id.clone(),
                hit,
            }],
            None => return Ok(Err(NotGiven::NoSuchHit(id.clone()))),
        },
        Target::Incident(id) => {
            let Some(incident) = store.incident(*id)? else {
                return Ok(Err(NotGiven::NoSuchIncident(*id)));
            };
            let hits = incident_hits(store, &incident)?;
            if hits.is_empty() {
                return Ok(Err(NotGiven::NoHits(*id)));
            }
            hits
        }
    };
    let brand = hits[0].hit.brand.clone();
    for stored in &hits {
        let hit = &stored.hit;
        store.add_feedback(&Feedback {
            hit: Some(stored.id.clone()),
            brand: hit.brand.clone(),
            text: training_text(&hit.title, &hit.snippet),
            url: hit.url.clone(),
            negative,
            by: by.clone(),
            at: now,
        })?;
    }
    tracing::info!(target = ?target, negative, by = %by.name, hits = hits.len(), "feedback stored");
    Ok(Ok(Given {
        brand,
        hits: hits.len(),
    }))
}

/// The text a verdict trains on: the title and the start of the post, as the scorer read them.
fn training_text(title: &str, snippet: &str) -> String {
    match (title.trim(), snippet.trim()) {
        ("", s) => s.to_string(),
        (t, "") => t.to_string(),
        (t, s) if s.starts_with(t) => s.to_string(),
        (t, s) => format!("{t} {s}"),
    }
}

/// The verdicts to train on: a hit judged more than once keeps its latest verdict, so a person
/// who corrects a mis-click is not overruled by it. Oldest first.
pub fn latest_verdicts(all: Vec<(u64, Feedback)>) -> Vec<(u64, Feedback)> {
    let mut latest: std::collections::HashMap<String, usize> = Default::default();
    for (i, (_, f)) in all.iter().enumerate() {
        if let Some(hit) = &f.hit {
            latest.insert(hit.clone(), i);
        }
    }
    all.into_iter()
        .enumerate()
        .filter(|(i, (_, f))| f.hit.as_ref().is_none_or(|h| latest[h] == *i))
        .map(|(_, row)| row)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Hit, IncidentState};

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + ChronoDuration::minutes(minute)
    }

    fn hit(brand: &str, minute: i64, negative: bool, title: &str) -> Hit {
        Hit {
            amplification: 0,
            reposted_by: Vec::new(),
            brand: brand.into(),
            source: "weibo".into(),
            url: Some(format!("https://weibo.example/{minute}")),
            title: title.into(),
            snippet: format!("{title}，全文"),
            at: at(minute),
            fetched_at: at(minute),
            score: if negative { -2.0 } else { 1.0 },
            negative,
            terms: vec![],
            severity: 1.0,
            crisis: vec![],
        }
    }

    fn alice() -> Actor {
        Actor {
            id: 7,
            name: "@alice".into(),
        }
    }

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("#12"), Some(Target::Incident(12)));
        assert_eq!(Target::parse(" 3 "), Some(Target::Incident(3)));
        let id = "e5baa6e5b08fe6bba1".to_string() + "00" + &"0a".repeat(16);
        assert_eq!(Target::parse(&id.to_uppercase()), Some(Target::Hit(id)));
        assert_eq!(Target::parse("abc"), None);
        assert_eq!(Target::parse(""), None);
        assert_eq!(Target::parse("12x"), None);
    }

    #[test]
    fn a_hit_verdict_is_stored_with_who_and_when() {
        let store = Store::temporary().unwrap();
        store
            .insert_hit(&hit("度小满", 1, true, "欢度小满"))
            .unwrap();
        let id = store.hits_page(&HitQuery::default()).unwrap().hits[0]
            .id
            .clone();
        let given = give_verdict(&store, &Target::Hit(id.clone()), false, &alice(), at(5))
            .unwrap()
            .unwrap();
        assert_eq!(given.hits, 1);
        let rows = store.feedback().unwrap();
        assert_eq!(rows.len(), 1);
        let f = &rows[0].1;
        assert_eq!(f.hit.as_deref(), Some(id.as_str()));
        assert_eq!((f.brand.as_str(), f.negative), ("度小满", false));
        assert_eq!((f.by.clone(), f.at), (alice(), at(5)));
        assert_eq!(
            f.text, "欢度小满，全文",
            "the snippet starts with the title"
        );
    }

    #[test]
    fn unknown_targets_store_nothing() {
        let store = Store::temporary().unwrap();
        let missing = "00".repeat(20);
        assert_eq!(
            give_verdict(
                &store,
                &Target::Hit(missing.clone()),
                false,
                &alice(),
                at(0)
            )
            .unwrap(),
            Err(NotGiven::NoSuchHit(missing))
        );
        assert_eq!(
            give_verdict(&store, &Target::Incident(4), false, &alice(), at(0)).unwrap(),
            Err(NotGiven::NoSuchIncident(4))
        );
        assert!(store.feedback().unwrap().is_empty());
    }

    #[test]
    fn an_incident_means_its_negative_hits_in_its_time() {
        let store = Store::temporary().unwrap();
        // Before its window, inside it, after it opened, after it resolved; another brand.
        for (minute, negative) in [(-30, true), (-3, true), (2, true), (3, false), (20, true)] {
            store
                .insert_hit(&hit("度小满", minute, negative, &format!("p{minute}")))
                .unwrap();
        }
        store.insert_hit(&hit("别家", 2, true, "other")).unwrap();
        let incident = Incident {
            id: 1,
            brand: "度小满".into(),
            state: IncidentState::Resolved,
            opened_at: at(0),
            window_count: 2,
            baseline: 0.0,
            window_secs: 300,
            hit_count: 2,
            top_posts: vec![],
            tier: 0,
            policy_round: 0,
            next_page_at: None,
            alert_delivered: true,
            acked_by: None,
            acked_at: None,
            resolved_by: None,
            resolved_at: Some(at(10)),
            history: vec![],
            opened_because: String::new(),
            calm_since: None,
            next_remind_at: None,
            topic_terms: vec![],
            categories: Default::default(),
            term_counts: Default::default(),
        };
        store.create_incident(&incident).unwrap();
        let titles: Vec<String> = incident_hits(&store, &incident)
            .unwrap()
            .into_iter()
            .map(|h| h.hit.title)
            .collect();
        assert_eq!(titles, ["p2", "p-3"]);
        let given = give_verdict(&store, &Target::Incident(1), false, &alice(), at(30))
            .unwrap()
            .unwrap();
        assert_eq!(
            given,
            Given {
                brand: "度小满".into(),
                hits: 2
            }
        );
    }

    #[test]
    fn the_latest_verdict_on_a_hit_wins() {
        let f = |hit: Option<&str>, negative| Feedback {
            hit: hit.map(Into::into),
            brand: "b".into(),
            text: "t".into(),
            url: None,
            negative,
            by: alice(),
            at: at(0),
        };
        let kept = latest_verdicts(vec![
            (1, f(Some("aa"), false)),
            (2, f(None, true)),
            (3, f(Some("aa"), true)),
            (4, f(Some("bb"), false)),
        ]);
        let ids: Vec<u64> = kept.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [2, 3, 4]);
    }
}
