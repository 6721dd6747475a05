//! The read model: the queries the API and the web console share, so both show the same
//! figures. Everything here reads the store; nothing writes.

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use serde::Serialize;

use crate::config::SourceConfig;
use crate::store::{DailyFigures, HitPage, HitQuery, Incident, IncidentState, SourceHealth, Store};

/// Which incidents a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    All,
    /// Triggered or acknowledged.
    Open,
    Only(IncidentState),
}

impl StateFilter {
    pub fn parse(text: &str) -> Result<StateFilter, String> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "" | "all" => StateFilter::All,
            "open" => StateFilter::Open,
            "triggered" => StateFilter::Only(IncidentState::Triggered),
            "acknowledged" | "acked" => StateFilter::Only(IncidentState::Acknowledged),
            "resolved" => StateFilter::Only(IncidentState::Resolved),
            other => {
                return Err(format!(
                    "unknown state {other:?}; use open, triggered, acknowledged, resolved or all"
                ))
            }
        })
    }

    fn keeps(self, state: IncidentState) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Open => state.is_open(),
            StateFilter::Only(s) => s == state,
        }
    }
}

/// Incidents, newest first.
pub fn incidents(store: &Store, filter: StateFilter) -> anyhow::Result<Vec<Incident>> {
    let mut list = match filter {
        StateFilter::Open => store.open_incidents()?,
        _ => store.incidents()?,
    };
    list.retain(|i| filter.keeps(i.state));
    list.sort_by_key(|i| std::cmp::Reverse(i.id));
    Ok(list)
}

/// One local day of a brand's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub mentions: u64,
    pub negative: u64,
    /// 客诉率: negative hits / mentions; `None` on a day without mentions.
    pub complaint_rate: Option<f64>,
    /// 用户伤害程度: the sum of the day's per-hit severity.
    pub harm: f64,
    pub incidents_opened: u64,
}

impl Day {
    fn new(date: NaiveDate, f: &DailyFigures) -> Day {
        Day {
            date,
            mentions: f.mentions,
            negative: f.negative,
            complaint_rate: f.complaint_rate(),
            harm: f.harm,
            incidents_opened: f.incidents_opened,
        }
    }
}

/// The most days one daily request may ask for.
pub const MAX_DAYS: u32 = 366;

/// The last `days` local days up to and including today's, oldest first.
pub fn daily(
    store: &Store,
    brand: &str,
    days: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Day>> {
    let today = store.local_date(now);
    let first = today - ChronoDuration::days(i64::from(days.clamp(1, MAX_DAYS)) - 1);
    days_between(store, brand, first, today)
}

/// The local days from `first` to `last` inclusive, oldest first; empty when `first > last`.
pub fn days_between(
    store: &Store,
    brand: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> anyhow::Result<Vec<Day>> {
    Ok(store
        .daily(brand, first, last)?
        .iter()
        .map(|(date, f)| Day::new(*date, f))
        .collect())
}

/// A configured source with its health; never-polled sources have an empty health.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub interval: String,
    pub weight: f64,
    /// Its last poll failed.
    pub failing: bool,
    #[serde(flatten)]
    pub health: SourceHealth,
}

pub fn sources(store: &Store, configured: &[SourceConfig]) -> anyhow::Result<Vec<SourceView>> {
    let mut health: std::collections::HashMap<String, SourceHealth> =
        store.source_health()?.into_iter().collect();
    Ok(configured
        .iter()
        .map(|s| {
            let health = health.remove(&s.name).unwrap_or_default();
            SourceView {
                name: s.name.clone(),
                kind: s.kind.to_string(),
                url: s.url.clone(),
                interval: crate::config::human_duration(s.interval),
                weight: s.weight,
                failing: health.consecutive_failures > 0,
                health,
            }
        })
        .collect())
}

pub fn hits(store: &Store, query: &HitQuery) -> anyhow::Result<HitPage> {
    store.hits_page(query)
}

/// Hourly mention and negative counts over the last 24 hours, oldest bin first; the last bin
/// is the current, unfinished hour.
pub fn last_24_hours(
    store: &Store,
    brand: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(DateTime<Utc>, u64, u64)>> {
    let this_hour = now - ChronoDuration::seconds(now.timestamp().rem_euclid(3600));
    let start = this_hour - ChronoDuration::hours(23);
    let mut bins: Vec<(DateTime<Utc>, u64, u64)> = (0..24)
        .map(|h| (start + ChronoDuration::hours(h), 0, 0))
        .collect();
    let mut query = HitQuery {
        brand: Some(brand.to_string()),
        since: Some(start),
        until: Some(now + ChronoDuration::seconds(1)),
        limit: crate::store::MAX_PAGE,
        ..HitQuery::default()
    };
    // At most a few pages a day for a typical brand; bounded so a viral day cannot stall a
    // page load (the daily aggregates hold the exact totals).
    for _ in 0..50 {
        let page = store.hits_page(&query)?;
        for stored in &page.hits {
            let offset = (stored.hit.at - start).num_hours();
            if let Some(bin) = usize::try_from(offset).ok().and_then(|i| bins.get_mut(i)) {
                bin.1 += 1;
                bin.2 += u64::from(stored.hit.negative);
            }
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    Ok(bins)
}

/// A time as an API caller writes it: RFC 3339 (`2026-03-01T08:00:00Z`), a date
/// (`2026-03-01`, local midnight in the store's zone), or an age (`24h`, `7d`, `90m`) meaning
/// that long before `now`.
pub fn parse_when(text: &str, store: &Store, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        use chrono::TimeZone;
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        return store
            .time_zone()
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("{text:?} has no midnight in {}", store.time_zone()));
    }
    let age = humantime::parse_duration(text).map_err(|_| {
        format!("{text:?} is not a time: write 2026-03-01T08:00:00Z, 2026-03-01 or an age like 24h")
    })?;
    let age = ChronoDuration::from_std(age).map_err(|_| format!("{text:?} is too long ago"))?;
    now.checked_sub_signed(age)
        .ok_or_else(|| format!("{text:?} is too long ago"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Actor, Hit};
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap()
    }

    fn hit(brand: &str, when: DateTime<Utc>, negative: bool) -> Hit {
        Hit {
            brand: brand.into(),
            source: "s".into(),
            url: None,
            title: "t".into(),
            snippet: "s".into(),
            at: when,
            fetched_at: when,
            score: if negative { -2.0 } else { 1.0 },
            negative,
            terms: vec![],
            severity: if negative { 1.5 } else { 0.0 },
            crisis: vec![],
            amplification: 0,
            reposted_by: vec![],
        }
    }

    #[test]
    fn state_filters_parse_and_refuse() {
        assert_eq!(StateFilter::parse("open"), Ok(StateFilter::Open));
        assert_eq!(
            StateFilter::parse("Resolved"),
            Ok(StateFilter::Only(IncidentState::Resolved))
        );
        assert!(StateFilter::parse("closed").unwrap_err().contains("closed"));
        let _ = Actor {
            id: 0,
            name: String::new(),
        };
    }

    #[test]
    fn daily_covers_the_asked_days_up_to_today() {
        let store = Store::temporary().unwrap();
        store.insert_hit(&hit("b", at(3, 0), true)).unwrap();
        store.insert_hit(&hit("b", at(4, 0), false)).unwrap();
        let days = daily(&store, "b", 7, at(5, 0)).unwrap();
        assert_eq!(days.len(), 7);
        let today = days.last().unwrap();
        assert_eq!(today.date, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        assert_eq!((today.mentions, today.negative), (2, 1));
        assert_eq!(today.complaint_rate, Some(0.5));
        assert!((today.harm - 1.5).abs() < 1e-9);
        assert_eq!(days[0].complaint_rate, None, "no mentions, no rate");
        assert_eq!(daily(&store, "b", 100_000, at(5, 0)).unwrap().len(), 366);
    }

    #[test]
    fn the_24_hour_chart_bins_by_hour() {
        let store = Store::temporary().unwrap();
        let now = at(12, 30);
        store.insert_hit(&hit("b", at(12, 10), true)).unwrap();
        store.insert_hit(&hit("b", at(11, 59), false)).unwrap();
        store
            .insert_hit(&hit("b", now - ChronoDuration::hours(30), true))
            .unwrap();
        let bins = last_24_hours(&store, "b", now).unwrap();
        assert_eq!(bins.len(), 24);
        assert_eq!(bins[23], (at(12, 0), 1, 1));
        assert_eq!(bins[22], (at(11, 0), 1, 0));
        assert_eq!(
            bins.iter().map(|b| b.1).sum::<u64>(),
            2,
            "older hits left out"
        );
    }

    #[test]
    fn times_parse_in_three_forms() {
        let store = Store::temporary().unwrap();
        let now = at(12, 0);
        assert_eq!(
            parse_when("24h", &store, now),
            Ok(now - ChronoDuration::hours(24))
        );
        assert_eq!(
            parse_when("2026-03-01T08:00:00+08:00", &store, now),
            Ok(at(0, 0))
        );
        // Local midnight in Asia/Shanghai is 16:00 UTC the day before.
        assert_eq!(
            parse_when("2026-03-01", &store, now),
            Ok(Utc.with_ymd_and_hms(2026, 2, 28, 16, 0, 0).unwrap())
        );
        assert!(parse_when("yesterday-ish", &store, now)
            .unwrap_err()
            .contains("yesterday-ish"));
    }
}
