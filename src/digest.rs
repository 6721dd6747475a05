//! The daily digest (日报): for one local day and each brand, the day's figures against the
//! week before, its most harmful negative posts, and its incidents with their response times.
//!
//! [`build`] reads the store (the daily aggregates through [`crate::admin::read`], the day's
//! negative hits, the incidents); [`Digest::text`] renders it for a chat and
//! [`Digest::markdown`] for Markdown channels and the API. [`next_digest_at`] and
//! [`digest_day`] tell the scheduler when to send and which day to send.
//!
//! Days are local days in the store's zone (`admin.time_zone`), the zone the daily figures are
//! counted in. Each figure is compared with the mean of the 7 days before: mentions, negative
//! hits and the harm index average every day (quiet days count as 0); the complaint rate
//! averages the days that had mentions (a day without any has no rate).
//!
//! An incident belongs to a day when it was open during some of it, or changed during it.
//! Its state and response times are taken as of the end of the day ([`diagnosis::response_times`]),
//! so a digest never changes once its day is over. MTTA averages the time to acknowledge of the
//! incidents first acknowledged by a person that day; MTTR the time to resolve of those resolved
//! that day.

use std::fmt::Write;

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::admin::read;
use crate::diagnosis::{self, human, response_times};
use crate::markdown;
use crate::store::{HitQuery, Incident, IncidentState, Store, MAX_PAGE};

/// How many negative posts each brand's section lists.
pub const TOP_POSTS: usize = 5;
/// How many days before the digest's day its figures are compared with.
pub const BASELINE_DAYS: i64 = 7;
/// How many of a day's negative hits are read to find the top posts; a viral day is cut there
/// (the figures themselves come from the daily aggregates and stay exact).
const MAX_SCANNED_HITS: usize = 20 * MAX_PAGE;
/// Topic terms shown per incident.
const TOPIC_TERMS: usize = 5;

/// One day's figure and the mean of the same figure over the previous [`BASELINE_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Compared {
    /// `None` only for a complaint rate on a day without mentions.
    pub value: Option<f64>,
    /// `None` for a complaint rate when none of the previous days had mentions.
    pub week_mean: Option<f64>,
}

impl Compared {
    /// The change against the week's mean as a fraction (+0.5 is 50% more); `None` when either
    /// side is missing or the mean is zero.
    pub fn change(&self) -> Option<f64> {
        match (self.value, self.week_mean) {
            (Some(v), Some(m)) if m != 0.0 => Some((v - m) / m),
            _ => None,
        }
    }
}

/// A negative post of the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPost {
    pub source: String,
    pub title: String,
    pub url: Option<String>,
    pub at: DateTime<Utc>,
    /// Its harm index; the list is ordered by it.
    pub severity: f64,
    pub score: f64,
}

/// An incident of the day, as it stood at the end of the day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayIncident {
    pub id: u64,
    pub state: IncidentState,
    pub opened_at: DateTime<Utc>,
    /// Who first acted on it, if anyone had by the end of the day.
    pub acknowledged_by: Option<String>,
    pub time_to_acknowledge_secs: Option<i64>,
    pub time_to_resolve_secs: Option<i64>,
    pub hit_count: u64,
    pub topic_terms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrandDigest {
    pub brand: String,
    pub mentions: Compared,
    pub negative: Compared,
    /// 客诉率: negative hits / mentions.
    pub complaint_rate: Compared,
    /// 用户伤害程度: the sum of the day's severities.
    pub harm: Compared,
    /// Most harmful first, at most [`TOP_POSTS`].
    pub top_negative: Vec<TopPost>,
    /// Oldest first.
    pub incidents: Vec<DayIncident>,
    pub mtta_secs: Option<i64>,
    pub mttr_secs: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    pub day: NaiveDate,
    pub time_zone: String,
    pub brands: Vec<BrandDigest>,
    /// Where the console is, for links; `None` when not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

/// The first and the last instant (exclusive) of local `day` in `tz`. A midnight that a
/// daylight-saving change skips starts the day at the first minute that exists.
pub fn day_bounds(tz: Tz, day: NaiveDate) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let start = first_instant_at_or_after(tz, day, NaiveTime::MIN)
        .with_context(|| format!("{day} has no start in {tz}"))?;
    let next = day
        .succ_opt()
        .with_context(|| format!("{day} is the last day chrono knows"))?;
    let end = first_instant_at_or_after(tz, next, NaiveTime::MIN)
        .with_context(|| format!("{next} has no start in {tz}"))?;
    Ok((start, end))
}

/// The earliest instant whose local time on `day` is `time`, or the first minute after it that
/// exists (a daylight-saving gap skips at most a few hours).
fn first_instant_at_or_after(tz: Tz, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let local = day.and_time(time);
    (0..=240).find_map(|minutes| {
        tz.from_local_datetime(&(local + ChronoDuration::minutes(minutes)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// When the next digest is due: the first instant after `now` at which the local clock in `tz`
/// reads `local_time` (on a day whose clock skips that time, the first minute after the gap).
pub fn next_digest_at(now: DateTime<Utc>, local_time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    today
        .iter_days()
        .take(3)
        .filter_map(|day| first_instant_at_or_after(tz, day, local_time))
        .find(|at| *at > now)
        .unwrap_or_else(|| now + ChronoDuration::days(1))
}

/// The day a digest sent at `sent_at` reports: the local day before.
pub fn digest_day(sent_at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let today = sent_at.with_timezone(&tz).date_naive();
    today.pred_opt().unwrap_or(today)
}

/// A day as people ask for one: `YYYY-MM-DD`, `today`, or `yesterday`; empty means
/// yesterday, the day a scheduled digest reports. Local days in `tz`.
pub fn parse_day(text: &str, now: DateTime<Utc>, tz: Tz) -> Result<NaiveDate, String> {
    let today = now.with_timezone(&tz).date_naive();
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "yesterday" => Ok(digest_day(now, tz)),
        "today" => Ok(today),
        other => NaiveDate::parse_from_str(other, "%Y-%m-%d")
            .map_err(|_| format!("{text:?} is not a day: write 2026-03-01, today or yesterday")),
    }
}

/// The digest of local `day` for `brands`, in the store's zone. `public_url` is the console's
/// address, for links.
pub fn build(
    store: &Store,
    brands: &[String],
    day: NaiveDate,
    public_url: Option<&str>,
) -> Result<Digest> {
    let tz = store.time_zone();
    let (start, end) = day_bounds(tz, day)?;
    let incidents = store
        .incidents()
        .context("reading incidents for the digest")?;
    let mut out = Vec::with_capacity(brands.len());
    for brand in brands {
        out.push(
            brand_digest(store, brand, day, (start, end), &incidents)
                .with_context(|| format!("the digest of {brand} for {day}"))?,
        );
    }
    Ok(Digest {
        day,
        time_zone: tz.name().to_string(),
        brands: out,
        console_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
    })
}

fn brand_digest(
    store: &Store,
    brand: &str,
    day: NaiveDate,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    incidents: &[Incident],
) -> Result<BrandDigest> {
    let first = day - ChronoDuration::days(BASELINE_DAYS);
    let days = read::days_between(store, brand, first, day)?;
    let (today, week) = days
        .split_last()
        .context("the daily figures came back without the day asked for")?;
    let mean = |values: Vec<f64>| -> Option<f64> {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let compare = |value: f64, of: fn(&read::Day) -> f64| Compared {
        value: Some(value),
        week_mean: mean(week.iter().map(of).collect()),
    };
    let mentions = compare(today.mentions as f64, |d| d.mentions as f64);
    let negative = compare(today.negative as f64, |d| d.negative as f64);
    let harm = compare(today.harm, |d| d.harm);
    let complaint_rate = Compared {
        value: today.complaint_rate,
        week_mean: mean(week.iter().filter_map(|d| d.complaint_rate).collect()),
    };

    let day_incidents: Vec<DayIncident> = incidents
        .iter()
        .filter(|i| i.brand == brand && belongs_to_day(i, start, end))
        .map(|i| day_incident(i, end))
        .collect();
    let in_day = |at: Option<DateTime<Utc>>| at.is_some_and(|at| start <= at && at < end);
    let (mut ack_times, mut resolve_times) = (Vec::new(), Vec::new());
    for i in incidents.iter().filter(|i| i.brand == brand) {
        let r = response_times(i, end);
        if in_day(r.acknowledged_at) {
            ack_times.extend(r.to_acknowledge(i.opened_at).map(|d| d.num_seconds()));
        }
        if in_day(r.resolved_at) {
            resolve_times.extend(r.to_resolve(i.opened_at).map(|d| d.num_seconds()));
        }
    }
    let mean_secs = |v: &[i64]| (!v.is_empty()).then(|| v.iter().sum::<i64>() / v.len() as i64);
    Ok(BrandDigest {
        brand: brand.to_string(),
        mentions,
        negative,
        complaint_rate,
        harm,
        top_negative: top_negative(store, brand, start, end)?,
        mtta_secs: mean_secs(&ack_times),
        mttr_secs: mean_secs(&resolve_times),
        incidents: day_incidents,
    })
}

/// Whether `incident` was open during some of `[start, end)` or changed in it.
fn belongs_to_day(incident: &Incident, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    if incident.opened_at >= end {
        return false;
    }
    let resolved_before = response_times(incident, start).resolved_at.is_some();
    let changed_during = incident.history.iter().any(|t| start <= t.at && t.at < end);
    !resolved_before || changed_during
}

fn day_incident(incident: &Incident, end: DateTime<Utc>) -> DayIncident {
    let r = response_times(incident, end);
    let state = incident
        .history
        .iter()
        .rfind(|t| t.at < end)
        .map_or(incident.state, |t| t.to);
    let acknowledged_by = r.acknowledged_at.and_then(|at| {
        incident
            .history
            .iter()
            .find(|t| t.at == at && t.by.is_some())
            .and_then(|t| t.by.as_ref())
            .or(incident.acked_by.as_ref())
            .map(|a| a.name.clone())
    });
    DayIncident {
        id: incident.id,
        state,
        opened_at: incident.opened_at,
        acknowledged_by,
        time_to_acknowledge_secs: r
            .to_acknowledge(incident.opened_at)
            .map(|d| d.num_seconds()),
        time_to_resolve_secs: r.to_resolve(incident.opened_at).map(|d| d.num_seconds()),
        hit_count: incident.hit_count,
        topic_terms: incident
            .topic_terms
            .iter()
            .take(TOPIC_TERMS)
            .cloned()
            .collect(),
    }
}

/// The day's most harmful negative posts of `brand`: by severity, then by the more negative
/// score, then the earlier.
fn top_negative(
    store: &Store,
    brand: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<TopPost>> {
    let mut query = HitQuery {
        brand: Some(brand.to_string()),
        since: Some(start),
        until: Some(end),
        negative: Some(true),
        limit: MAX_PAGE,
        ..HitQuery::default()
    };
    let mut posts = Vec::new();
    loop {
        let page = read::hits(store, &query)?;
        posts.extend(page.hits.into_iter().map(|s| TopPost {
            source: s.hit.source,
            title: s.hit.title,
            url: s.hit.url,
            at: s.hit.at,
            severity: if s.hit.severity.is_finite() {
                s.hit.severity
            } else {
                0.0
            },
            score: s.hit.score,
        }));
        match page.next_cursor {
            Some(cursor) if posts.len() < MAX_SCANNED_HITS => query.cursor = Some(cursor),
            _ => break,
        }
    }
    posts.sort_by(|a, b| {
        b.severity
            .total_cmp(&a.severity)
            .then(a.score.total_cmp(&b.score))
            .then(a.at.cmp(&b.at))
    });
    posts.truncate(TOP_POSTS);
    Ok(posts)
}

/// `12.3 (7-day mean 10.1, +22%)`.
fn compared_text(c: &Compared, value: impl Fn(f64) -> String, as_points: bool) -> String {
    let now = c.value.map_or("-".to_string(), &value);
    let Some(mean) = c.week_mean else {
        return format!("{now} (no earlier days to compare)");
    };
    let change = if as_points {
        // A rate's change reads best in percentage points: 10% → 15% is +5.0 pp.
        c.value
            .map(|v| format!(", {:+.1} pp", (v - mean) * 100.0))
            .unwrap_or_default()
    } else {
        c.change()
            .map(|ch| format!(", {:+.0}%", ch * 100.0))
            .unwrap_or_default()
    };
    format!("{now} (7-day mean {}{change})", value(mean))
}

fn count(v: f64) -> String {
    // Counts are whole; their means are not.
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn harm(v: f64) -> String {
    format!("{v:.1}")
}

fn state_word(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Triggered => "UNACKNOWLEDGED",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Resolved => "resolved",
    }
}

impl DayIncident {
    fn summary(&self, tz: Tz, quote: impl Fn(&str) -> String) -> String {
        let mut s = format!(
            "#{} {} · opened {} · {} negative posts",
            self.id,
            state_word(self.state),
            diagnosis::local_time(self.opened_at, tz),
            self.hit_count
        );
        match (self.time_to_acknowledge_secs, &self.acknowledged_by) {
            (Some(secs), Some(who)) => {
                let _ = write!(
                    s,
                    " · taken in {} by {}",
                    human(ChronoDuration::seconds(secs)),
                    quote(who)
                );
            }
            _ => s.push_str(" · not acknowledged"),
        }
        if let Some(secs) = self.time_to_resolve_secs {
            let _ = write!(s, " · resolved in {}", human(ChronoDuration::seconds(secs)));
        }
        if !self.topic_terms.is_empty() {
            let terms: Vec<String> = self.topic_terms.iter().map(|t| quote(t)).collect();
            let _ = write!(s, " · topic: {}", terms.join("、"));
        }
        s
    }
}

impl Digest {
    fn tz(&self) -> Tz {
        self.time_zone
            .parse()
            .unwrap_or(crate::store::DEFAULT_TIME_ZONE)
    }

    /// Plain text for a chat message: no markup, so a channel can escape it as it needs.
    pub fn text(&self) -> String {
        let tz = self.tz();
        let mut out = format!(
            "yuqing daily digest · 日报 — {} ({})\n",
            self.day, self.time_zone
        );
        if self.brands.is_empty() {
            out.push_str("\nNo brands are configured.\n");
        }
        for b in &self.brands {
            let _ = writeln!(out, "\n{}", b.brand);
            let _ = writeln!(
                out,
                "  mentions 提及: {}",
                compared_text(&b.mentions, count, false)
            );
            let _ = writeln!(
                out,
                "  negative hits 负面: {}",
                compared_text(&b.negative, count, false)
            );
            let _ = writeln!(
                out,
                "  complaint rate 客诉率: {}",
                compared_text(&b.complaint_rate, percent, true)
            );
            let _ = writeln!(
                out,
                "  harm index 用户伤害程度: {}",
                compared_text(&b.harm, harm, false)
            );
            if b.top_negative.is_empty() {
                let _ = writeln!(out, "  no negative posts");
            } else {
                let _ = writeln!(out, "  top negative posts:");
                for (n, p) in b.top_negative.iter().enumerate() {
                    let title = crate::post::collapse_whitespace(&p.title, 120);
                    let _ = writeln!(
                        out,
                        "    {}. [{}] {} (harm {:.1})",
                        n + 1,
                        p.source,
                        title,
                        p.severity
                    );
                    if let Some(url) = &p.url {
                        let _ = writeln!(out, "       {url}");
                    }
                }
            }
            let _ = writeln!(out, "  {}", response_line(b));
            for i in &b.incidents {
                let _ = writeln!(out, "    {}", i.summary(tz, |s: &str| s.to_string()));
            }
        }
        out
    }

    /// Markdown for channels and the API; quoted text is escaped and only `http(s)` URLs
    /// become links.
    pub fn markdown(&self) -> String {
        let tz = self.tz();
        let esc = markdown::escape;
        let mut out = format!(
            "# 日报 · Daily digest — {} ({})\n",
            self.day, self.time_zone
        );
        if self.brands.is_empty() {
            out.push_str("\nNo brands are configured.\n");
        }
        for b in &self.brands {
            let _ = writeln!(out, "\n## {}\n", esc(&b.brand));
            let _ = writeln!(
                out,
                "- **Mentions 提及:** {}",
                compared_text(&b.mentions, count, false)
            );
            let _ = writeln!(
                out,
                "- **Negative hits 负面:** {}",
                compared_text(&b.negative, count, false)
            );
            let _ = writeln!(
                out,
                "- **Complaint rate 客诉率:** {}",
                compared_text(&b.complaint_rate, percent, true)
            );
            let _ = writeln!(
                out,
                "- **Harm index 用户伤害程度:** {}",
                compared_text(&b.harm, harm, false)
            );
            let _ = writeln!(out, "\n### Top negative posts\n");
            if b.top_negative.is_empty() {
                let _ = writeln!(out, "None.");
            }
            for (n, p) in b.top_negative.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}. {} — {}, harm {:.1}",
                    n + 1,
                    markdown::link(&p.title, p.url.as_deref()),
                    esc(&p.source),
                    p.severity
                );
            }
            let _ = writeln!(out, "\n### Incidents\n");
            let _ = writeln!(out, "{}\n", response_line(b));
            for i in &b.incidents {
                let line = i.summary(tz, |s: &str| esc(s));
                let _ = match &self.console_url {
                    Some(url) => writeln!(
                        out,
                        "- {} — {}",
                        line,
                        markdown::link("open", Some(&format!("{url}/incidents/{}", i.id)))
                    ),
                    None => writeln!(out, "- {line}"),
                };
            }
        }
        out
    }
}

fn response_line(b: &BrandDigest) -> String {
    let mean =
        |secs: Option<i64>| secs.map_or("-".to_string(), |s| human(ChronoDuration::seconds(s)));
    format!(
        "incidents: {} · MTTA {} · MTTR {}",
        b.incidents.len(),
        mean(b.mtta_secs),
        mean(b.mttr_secs)
    )
}

/// The meta key under which the last local day whose digest was queued is kept, so a daemon
/// that was down at digest time catches up once when it starts.
pub const LAST_DIGEST_KEY: &str = "digest_last_day";

/// The newest day whose digest is due at `now`: yesterday's once the local clock has passed
/// `local_time` today, else the day before.
pub fn latest_due_day(now: DateTime<Utc>, local_time: NaiveTime, tz: Tz) -> NaiveDate {
    let today = now.with_timezone(&tz).date_naive();
    let sent_today = first_instant_at_or_after(tz, today, local_time).is_some_and(|at| at <= now);
    let day = if sent_today {
        today
    } else {
        today.pred_opt().unwrap_or(today)
    };
    day.pred_opt().unwrap_or(day)
}

/// The day whose digest should be queued now, given the last one queued. A store that never
/// queued one (a fresh install) owes none: it starts with the next digest time.
pub fn owed_digest(
    now: DateTime<Utc>,
    local_time: NaiveTime,
    tz: Tz,
    last: Option<NaiveDate>,
) -> Option<NaiveDate> {
    let due = latest_due_day(now, local_time, tz);
    last.filter(|l| *l < due).map(|_| due)
}

fn day_key(day: NaiveDate) -> u64 {
    day.num_days_from_ce().max(0) as u64
}

fn day_of_key(key: u64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(key).ok()?)
}

/// Queues each day's digest for `channels` (every channel when empty) at `local_time` in the
/// store's zone, until shutdown. What was queued is remembered in the store, so a restart
/// neither repeats a digest nor, if the daemon was down at digest time, skips the latest one.
pub async fn schedule(
    store: Store,
    outbox: crate::outbox::Outbox,
    local_time: NaiveTime,
    channels: Vec<String>,
    mut shutdown: crate::shutdown::Shutdown,
) -> Result<()> {
    let tz = store.time_zone();
    loop {
        let now = Utc::now();
        let last = store.meta_u64(LAST_DIGEST_KEY)?.and_then(day_of_key);
        let record = match owed_digest(now, local_time, tz, last) {
            Some(day) => {
                outbox
                    .enqueue_digest(&channels, day, now)
                    .with_context(|| format!("queueing the digest of {day}"))?;
                tracing::info!(%day, "daily digest queued");
                Some(day)
            }
            None if last.is_none() => Some(latest_due_day(now, local_time, tz)),
            None => None,
        };
        if let Some(day) = record {
            store.set_meta_u64(LAST_DIGEST_KEY, day_key(day))?;
            store.flush().await?;
        }
        let wait = (next_digest_at(now, local_time, tz) - now)
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Actor, Hit, Transition};

    const BRAND: &str = "度小满";

    /// 2026-03-10 in Shanghai is 2026-03-09 16:00 UTC to 2026-03-10 16:00 UTC.
    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
    }

    /// `h:m` local Shanghai time on `day`.
    fn local(day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .from_local_datetime(&day.and_hms_opt(h, m, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hit(when: DateTime<Utc>, negative: bool, severity: f64, title: &str) -> Hit {
        Hit {
            amplification: 0,
            reposted_by: Vec::new(),
            brand: BRAND.into(),
            source: "weibo".into(),
            url: Some(format!("https://weibo.example/{}", when.timestamp())),
            title: title.into(),
            snippet: String::new(),
            at: when,
            fetched_at: when,
            score: if negative { -1.0 - severity } else { 1.0 },
            negative,
            terms: vec![],
            severity: if negative { severity } else { 0.0 },
            crisis: vec![],
        }
    }

    fn step(at: DateTime<Utc>, to: IncidentState, by: Option<&str>, note: &str) -> Transition {
        Transition {
            at,
            to,
            by: by.map(|name| Actor {
                id: 1,
                name: name.into(),
            }),
            note: note.into(),
            via: by.map(|_| "web".to_string()),
        }
    }

    /// A week of 10 mentions a day with 1 negative (harm 2), then the digest's day: 20
    /// mentions, 5 negative with harms 1..=5, and two incidents.
    fn seeded() -> Store {
        let store = Store::temporary().unwrap();
        for back in 1..=7 {
            let d = day() - ChronoDuration::days(back);
            for n in 0..10 {
                store
                    .insert_hit(&hit(local(d, 10, n), n == 0, 2.0, "old"))
                    .unwrap();
            }
        }
        for n in 0..20u32 {
            let negative = n < 5;
            let title = format!("post {n}");
            store
                .insert_hit(&hit(local(day(), 9, n), negative, f64::from(n + 1), &title))
                .unwrap();
        }
        // Opened 09:00, acked 09:10 by alice, resolved 11:00.
        let mut a = Incident::sample(1, BRAND, local(day(), 9, 0));
        a.history = vec![
            step(local(day(), 9, 0), IncidentState::Triggered, None, "spike"),
            step(
                local(day(), 9, 10),
                IncidentState::Acknowledged,
                Some("alice"),
                "acknowledged",
            ),
            step(
                local(day(), 11, 0),
                IncidentState::Resolved,
                Some("alice"),
                "resolved",
            ),
        ];
        a.state = IncidentState::Resolved;
        a.topic_terms = vec!["催收".into(), "*bold*".into()];
        store.create_incident(&a).unwrap();
        // Opened 23:00 the day before, acked 30 minutes later, still open at the day's end;
        // resolved the day after, which the day's digest must not know.
        let before = day() - ChronoDuration::days(1);
        let mut b = Incident::sample(2, BRAND, local(before, 23, 0));
        b.history = vec![
            step(
                local(before, 23, 0),
                IncidentState::Triggered,
                None,
                "spike",
            ),
            step(
                local(day(), 0, 30),
                IncidentState::Acknowledged,
                Some("bob"),
                "acknowledged",
            ),
            step(
                local(day() + ChronoDuration::days(1), 8, 0),
                IncidentState::Resolved,
                Some("bob"),
                "resolved",
            ),
        ];
        b.state = IncidentState::Resolved;
        store.create_incident(&b).unwrap();
        // Resolved two days before: not the day's.
        let old_day = day() - ChronoDuration::days(2);
        let mut c = Incident::sample(3, BRAND, local(old_day, 9, 0));
        c.history = vec![
            step(
                local(old_day, 9, 0),
                IncidentState::Triggered,
                None,
                "spike",
            ),
            step(
                local(old_day, 10, 0),
                IncidentState::Resolved,
                None,
                "auto-resolved",
            ),
        ];
        c.state = IncidentState::Resolved;
        store.create_incident(&c).unwrap();
        store
    }

    #[test]
    fn a_digest_is_owed_once_a_day_after_its_time_and_never_on_a_fresh_store() {
        let tz = chrono_tz::Asia::Shanghai;
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let at = |d: u32, h: u32, m: u32| {
            tz.with_ymd_and_hms(2026, 3, d, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        assert_eq!(latest_due_day(at(5, 8, 59), nine, tz), day(3));
        assert_eq!(latest_due_day(at(5, 9, 0), nine, tz), day(4));
        assert_eq!(
            owed_digest(at(5, 9, 0), nine, tz, None),
            None,
            "fresh store"
        );
        assert_eq!(
            owed_digest(at(5, 9, 0), nine, tz, Some(day(3))),
            Some(day(4))
        );
        assert_eq!(
            owed_digest(at(5, 9, 1), nine, tz, Some(day(4))),
            None,
            "sent already"
        );
        assert_eq!(
            owed_digest(at(5, 8, 0), nine, tz, Some(day(3))),
            None,
            "not yet"
        );
        // Down for three days: only the latest is caught up.
        assert_eq!(
            owed_digest(at(9, 10, 0), nine, tz, Some(day(4))),
            Some(day(8))
        );
        assert_eq!(day_of_key(day_key(day(8))), Some(day(8)));
    }

    #[test]
    fn the_figures_are_compared_with_the_week_before() {
        let store = seeded();
        let d = build(&store, &[BRAND.to_string()], day(), None).unwrap();
        let b = &d.brands[0];
        assert_eq!(
            b.mentions,
            Compared {
                value: Some(20.0),
                week_mean: Some(10.0)
            }
        );
        assert_eq!(b.mentions.change(), Some(1.0));
        assert_eq!(
            b.negative,
            Compared {
                value: Some(5.0),
                week_mean: Some(1.0)
            }
        );
        assert_eq!(b.complaint_rate.value, Some(0.25));
        assert!((b.complaint_rate.week_mean.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(
            b.harm,
            Compared {
                value: Some(15.0),
                week_mean: Some(2.0)
            }
        );
        let harms: Vec<f64> = b.top_negative.iter().map(|p| p.severity).collect();
        assert_eq!(harms, vec![5.0, 4.0, 3.0, 2.0, 1.0], "most harmful first");
        assert_eq!(b.top_negative[0].title, "post 4");
    }

    #[test]
    fn incidents_and_response_times_are_as_of_the_day_end() {
        let store = seeded();
        let d = build(&store, &[BRAND.to_string()], day(), None).unwrap();
        let b = &d.brands[0];
        let ids: Vec<u64> = b.incidents.iter().map(|i| i.id).collect();
        assert_eq!(
            ids,
            vec![1, 2],
            "the one resolved two days before is left out"
        );
        let carried = &b.incidents[1];
        assert_eq!(
            carried.state,
            IncidentState::Acknowledged,
            "resolved only the day after"
        );
        assert_eq!(carried.time_to_resolve_secs, None);
        assert_eq!(carried.acknowledged_by.as_deref(), Some("bob"));
        assert_eq!(carried.time_to_acknowledge_secs, Some(90 * 60));
        // MTTA: (10m + 90m) / 2; MTTR: only #1 resolved that day, in 2h.
        assert_eq!(b.mtta_secs, Some(50 * 60));
        assert_eq!(b.mttr_secs, Some(2 * 3600));
    }

    #[test]
    fn the_renderings_say_it_for_people() {
        let store = seeded();
        let d = build(
            &store,
            &[BRAND.to_string()],
            day(),
            Some("https://yq.example/"),
        )
        .unwrap();
        let text = d.text();
        for line in [
            "yuqing daily digest · 日报 — 2026-03-10 (Asia/Shanghai)",
            "  mentions 提及: 20 (7-day mean 10, +100%)",
            "  complaint rate 客诉率: 25.0% (7-day mean 10.0%, +15.0 pp)",
            "  harm index 用户伤害程度: 15.0 (7-day mean 2.0, +650%)",
            "    1. [weibo] post 4 (harm 5.0)",
            "  incidents: 2 · MTTA 50m · MTTR 2h",
            "    #1 resolved · opened 2026-03-10 09:00 · 3 negative posts · taken in 10m by alice · resolved in 2h · topic: 催收、*bold*",
            "    #2 acknowledged · opened 2026-03-09 23:00",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let md = d.markdown();
        for line in [
            "# 日报 · Daily digest — 2026-03-10 (Asia/Shanghai)",
            "## 度小满",
            "- **Negative hits 负面:** 5 (7-day mean 1, +400%)",
            "1. [post 4](https://weibo.example/",
            "topic: 催收、\\*bold\\* — [open](https://yq.example/incidents/1)",
        ] {
            assert!(md.contains(line), "missing {line:?} in\n{md}");
        }
    }

    #[test]
    fn an_empty_day_and_a_new_brand_still_read() {
        let store = Store::temporary().unwrap();
        let d = build(&store, &["新品牌".to_string()], day(), None).unwrap();
        let b = &d.brands[0];
        assert_eq!(
            b.mentions,
            Compared {
                value: Some(0.0),
                week_mean: Some(0.0)
            }
        );
        assert_eq!(b.mentions.change(), None, "no change against a zero mean");
        assert_eq!(
            b.complaint_rate,
            Compared {
                value: None,
                week_mean: None
            }
        );
        assert!(b.top_negative.is_empty() && b.incidents.is_empty());
        assert_eq!((b.mtta_secs, b.mttr_secs), (None, None));
        let text = d.text();
        assert!(
            text.contains("complaint rate 客诉率: - (no earlier days to compare)"),
            "{text}"
        );
        assert!(text.contains("no negative posts"), "{text}");
        assert!(text.contains("incidents: 0 · MTTA - · MTTR -"), "{text}");
        assert!(d.markdown().contains("None."));
        let none = build(&store, &[], day(), None).unwrap();
        assert!(none.text().contains("No brands are configured."));
    }

    #[test]
    fn days_parse_as_people_write_them() {
        let tz = chrono_tz::Asia::Shanghai;
        // 01:00 local on the 10th is still the 9th in UTC: the local day decides.
        let now = local(day(), 1, 0);
        let yesterday = day() - ChronoDuration::days(1);
        assert_eq!(parse_day("", now, tz), Ok(yesterday));
        assert_eq!(parse_day("Yesterday", now, tz), Ok(yesterday));
        assert_eq!(parse_day("today", now, tz), Ok(day()));
        assert_eq!(
            parse_day(" 2026-02-28 ", now, tz),
            Ok(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())
        );
        let err = parse_day("2026-02-30", now, tz).unwrap_err();
        assert!(err.contains("\"2026-02-30\" is not a day"), "{err}");
    }

    #[test]
    fn the_next_digest_is_the_next_local_time() {
        let tz = chrono_tz::Asia::Shanghai;
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        // 08:59 local → 09:00 the same day; 09:00 exactly → tomorrow.
        assert_eq!(
            next_digest_at(local(day(), 8, 59), nine, tz),
            local(day(), 9, 0)
        );
        let tomorrow = day() + ChronoDuration::days(1);
        assert_eq!(
            next_digest_at(local(day(), 9, 0), nine, tz),
            local(tomorrow, 9, 0)
        );
        assert_eq!(
            next_digest_at(local(day(), 23, 59), nine, tz),
            local(tomorrow, 9, 0)
        );
        assert_eq!(
            digest_day(local(day(), 9, 0), tz),
            day() - ChronoDuration::days(1)
        );
        // Berlin skips 02:00–03:00 on 2026-03-29: a 02:30 digest goes at 03:00 local.
        let berlin = chrono_tz::Europe::Berlin;
        let half_past_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        let before = Utc.with_ymd_and_hms(2026, 3, 28, 23, 0, 0).unwrap();
        assert_eq!(
            next_digest_at(before, half_past_two, berlin),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()
        );
        let (start, end) =
            day_bounds(berlin, NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()).unwrap();
        assert_eq!(end - start, ChronoDuration::hours(23), "the short day");
    }
}
