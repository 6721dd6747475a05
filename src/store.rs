//! Persistence: the only module that touches sled.
//!
//! Trees (records are JSON, so `sled` dumps stay readable during an incident review; index
//! entries hold keys, and `meta` counters big-endian numbers):
//! - `meta`: schema version, counters, the Telegram update offset, and the read model's
//!   `index_version` and `daily_zone` (see "Read model" below).
//! - `seen`: dedupe keys (source GUIDs and URLs) → first-seen time.
//! - `hits`: `brand 0xFF time seq` → [`Hit`]. Keys sort by brand then time, so a detection
//!   window is one range scan. `time` is the event time in milliseconds, offset so that it sorts
//!   as unsigned big-endian bytes; `seq` is a big-endian id unique in the database.
//! - `negative`: the same keys for negative hits only, empty values, so counting negatives in a
//!   window never deserializes a hit.
//! - `by_time`: `time seq` (the last 16 bytes of a hit key) → that hit's key, so listing the
//!   newest hits of every brand is one reverse range scan.
//! - `daily`: `brand 0xFF date` → [`DailyFigures`], where `date` is the local calendar day (in
//!   the store's time zone) as chrono's day number from the Common Era (0001-01-01 is 1; `i32`,
//!   sign bit flipped, big-endian 4 bytes, so it sorts).
//! - `incidents`: big-endian id → [`Incident`].
//! - `feedback`: staff verdicts on hits (false or true positive), id → [`Feedback`]; exported
//!   as labeled rows to retrain the scorer.
//! - `open`: ids of incidents not yet resolved, so periodic escalation checks never scan the
//!   whole history.
//! - `source_health`: source name → [`SourceHealth`], the outcome of its recent polls.
//! - `near`: the near-duplicate index. For each recorded post with hits, four entries, one per
//!   16-bit band of its SimHash: `band value time seq` → [`NearEntry`] (its fingerprint, hit keys
//!   and brands). Two fingerprints within [`MAX_NEAR_DISTANCE`] bits agree on at least one band,
//!   so a repost's candidates are four range scans over a time window.
//!
//! A hit's `negative` entry holds its detection weight ([`Hit::amplification_factor`]) as a
//! big-endian `f64`; empty (as written before reposts counted) means 1.
//!
//! # Read model
//!
//! `by_time` and `daily` are derived from `hits` and `incidents` and are written in the same
//! transaction as what they derive from ([`Store::record_post`], [`Store::create_incident`]), so
//! a crash never makes them disagree. A store written before they existed, or whose `daily` was
//! counted in another time zone, is rebuilt from a full scan when opened; `meta` records what
//! was built (`index_version`, `daily_zone`). The schema version is unchanged by them: old data
//! still reads.
//!
//! Everything here is synchronous and short; callers on the async runtime may call it directly
//! except [`Store::flush`], which is async, and opening a store that needs its read model
//! rebuilt (a full scan, once). Incident updates go through [`Store::update_incident`], a
//! compare-and-swap loop whose closure must be pure because it may run more than once.

mod outbox;
pub use outbox::{DeliveryStatus, MessageKind, OutboxEntry};

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{IVec, Transactional};

/// Bumped whenever a stored type changes incompatibly.
pub const SCHEMA_VERSION: u64 = 1;

const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_NEXT_INCIDENT: &[u8] = b"next_incident_id";
const BRAND_SEP: u8 = 0xFF; // never occurs in UTF-8

/// Version of the derived trees (`by_time`, `daily`). A store whose `meta` names an older one
/// (or none: written before they existed) has them rebuilt when opened.
const INDEX_VERSION: u64 = 1;
const KEY_INDEX_VERSION: &str = "index_version";
/// The IANA name of the zone `daily` was counted in.
const KEY_DAILY_ZONE: &[u8] = b"daily_zone";

/// The zone local days are counted in unless the store is opened in another.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Shanghai;

/// Hits per page when a query names no limit, and the most one page may hold.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// One post that mentions a brand, with the judgment made about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub brand: String,
    pub source: String,
    pub url: Option<String>,
    pub title: String,
    /// The start of the post, for alerts.
    pub snippet: String,
    /// When the post counts in detection windows (see `Post::event_time`).
    pub at: DateTime<Utc>,
    pub fetched_at: DateTime<Utc>,
    /// Brand-targeted polarity: below zero is negative.
    pub score: f64,
    pub negative: bool,
    /// The words that decided the score, most influential first.
    pub terms: Vec<String>,
    /// Harm index of this post (0 for non-negative posts).
    pub severity: f64,
    /// The crisis categories the post signals (fraud, violent collection…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crisis: Vec<String>,
    /// How many reposts and near-copies of the post were seen after it (see
    /// [`Store::record_repost`]); `severity` already includes their weight.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub amplification: u32,
    /// The sources those reposts came from, each once, at most [`MAX_REPOSTING_SOURCES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reposted_by: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many reposting sources a hit remembers.
pub const MAX_REPOSTING_SOURCES: usize = 20;

/// Most bits two SimHash fingerprints may differ in for the near index to find one from the
/// other (four 16-bit bands: within 3 bits, one band is always equal).
pub const MAX_NEAR_DISTANCE: u32 = 3;

impl Hit {
    /// How much the post counts in spike detection, and the factor its severity carries:
    /// `1 + ln(1 + amplification)` ([`crate::post::amplification_factor`]). One post with no
    /// reposts counts 1; ten reposts make it count 3.4.
    pub fn amplification_factor(&self) -> f64 {
        crate::post::amplification_factor(self.amplification)
    }

    /// The same hit, with the crisis categories its judgment found.
    pub fn with_crisis(mut self, crisis: Vec<String>) -> Hit {
        self.crisis = crisis;
        self
    }

    /// The record for `post` as judged about `brand`.
    pub fn new(
        post: &crate::post::Post,
        brand: &str,
        score: f64,
        negative: bool,
        terms: Vec<String>,
        severity: f64,
    ) -> Hit {
        let text = post.text();
        Hit {
            brand: brand.to_string(),
            source: post.source.clone(),
            url: post.url.clone(),
            title: post.title.clone(),
            snippet: crate::post::collapse_whitespace(&text, 200),
            at: post.event_time(),
            fetched_at: post.fetched_at,
            score,
            negative,
            terms,
            severity,
            crisis: vec![],
            amplification: 0,
            reposted_by: vec![],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IncidentState {
    /// Open; nobody has taken it yet. Escalates on timeout.
    Triggered,
    /// Open and owned by a named person.
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub fn is_open(self) -> bool {
        self != IncidentState::Resolved
    }
}

/// A chat user (or the daemon itself) who changed an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub to: IncidentState,
    pub by: Option<Actor>,
    pub note: String,
    /// Where the change came from: `telegram`, `api`, `web` or `cli`; `None` for the daemon's
    /// own changes (opening, escalation), and for history written before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// A short view of a hit kept inside the incident, so alerts and reports need no hit lookups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostSummary {
    pub source: String,
    pub url: Option<String>,
    pub title: String,
    pub score: f64,
    pub terms: Vec<String>,
    pub at: DateTime<Utc>,
    /// The start of the post's text, for alerts that quote it.
    #[serde(default)]
    pub excerpt: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub brand: String,
    pub state: IncidentState,
    pub opened_at: DateTime<Utc>,
    /// Negative hits in the window that opened it, and the baseline per window then.
    pub window_count: u64,
    pub baseline: f64,
    /// Length of the detection window, in seconds.
    pub window_secs: u64,
    /// Negative hits attached since it opened (the opening window's included).
    pub hit_count: u64,
    /// Most negative posts, most negative first.
    pub top_posts: Vec<PostSummary>,
    /// Index of the escalation tier paged most recently.
    pub tier: usize,
    /// How many times the escalation policy has started again from its first tier.
    #[serde(default)]
    pub policy_round: u32,
    /// When the next tier is paged if still unacknowledged; `None` when not escalating.
    pub next_page_at: Option<DateTime<Utc>>,
    /// Whether the opening alert reached the chat. An incident stored but not yet delivered
    /// (the daemon died in between) is alerted on the next start.
    pub alert_delivered: bool,
    pub acked_by: Option<Actor>,
    pub acked_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Actor>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub history: Vec<Transition>,
    /// Why it opened, for the alert: a spike's figures, or the critical post that opened it.
    #[serde(default)]
    pub opened_because: String,
    /// Since when the brand has been calm; auto-resolve counts from here.
    #[serde(default)]
    pub calm_since: Option<DateTime<Utc>>,
    /// When the owner of an acknowledged incident is next reminded.
    #[serde(default)]
    pub next_remind_at: Option<DateTime<Utc>>,
    /// The words that set this incident's posts apart from the brand's usual mentions, most
    /// distinctive first.
    #[serde(default)]
    pub topic_terms: Vec<String>,
    /// How its negative posts split across the crisis categories.
    #[serde(default)]
    pub categories: std::collections::BTreeMap<String, u64>,
    /// How many of its negative posts carry each term (the most frequent few hundred), from
    /// which `topic_terms` is worked out.
    #[serde(default)]
    pub term_counts: std::collections::BTreeMap<String, u64>,
}

/// What [`Store::record_post_attaching`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// None of the post's keys had been seen: it and its hits were stored.
    pub fresh: bool,
    /// Brands whose open incident took the post's negative hits.
    pub attached: Vec<String>,
}

/// A post as it was read, kept for export and replay: the shape of `yuqing export`'s and
/// `yuqing replay`'s NDJSON lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedPost {
    pub source: String,
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub url: Option<String>,
    /// Who wrote it, when the source said (feed author, page or JSON author field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// When the post counts in detection (its publication time, or when it was fetched).
    pub published: DateTime<Utc>,
    /// The brands it was judged about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brands: Vec<String>,
    /// Its SimHash ([`crate::dedupe::near_key`]): when set, recording the post also enters it
    /// in the near-duplicate index, so later copies raise its amplification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<u64>,
}

/// One post in the near-duplicate index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NearEntry {
    fingerprint: u64,
    /// Keys of its hits, in hex.
    hits: Vec<String>,
    brands: Vec<String>,
}

/// A recorded post that a new one may copy ([`Store::near_candidates`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NearCandidate {
    pub fingerprint: u64,
    /// When it counts (its event time).
    pub at: DateTime<Utc>,
    /// Its hits' keys (hex).
    pub hits: Vec<String>,
    pub brands: Vec<String>,
}

/// What a silence matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceKind {
    Brand,
    Source,
    /// A word among an incident's top posts' terms.
    Topic,
}

impl SilenceKind {
    pub fn parse(text: &str) -> Option<SilenceKind> {
        match text.trim().to_ascii_lowercase().as_str() {
            "brand" => Some(SilenceKind::Brand),
            "source" => Some(SilenceKind::Source),
            "topic" => Some(SilenceKind::Topic),
            _ => None,
        }
    }
}

/// Notices about matching incidents are not sent until `until`; the incidents are still
/// recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub kind: SilenceKind,
    pub name: String,
    pub until: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub reason: String,
}

impl Silence {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }

    /// Whether this silence covers `incident`.
    pub fn matches(&self, incident: &Incident) -> bool {
        match self.kind {
            SilenceKind::Brand => incident.brand == self.name,
            SilenceKind::Source => incident.top_posts.iter().any(|p| p.source == self.name),
            SilenceKind::Topic => incident
                .top_posts
                .iter()
                .any(|p| p.terms.contains(&self.name)),
        }
    }
}

/// A triggered incident with nothing in it yet, for tests across modules.
#[cfg(test)]
impl Incident {
    pub(crate) fn sample(id: u64, brand: &str, opened_at: DateTime<Utc>) -> Incident {
        Incident {
            id,
            brand: brand.into(),
            state: IncidentState::Triggered,
            opened_at,
            window_count: 3,
            baseline: 0.5,
            window_secs: 900,
            hit_count: 3,
            top_posts: vec![],
            tier: 0,
            policy_round: 0,
            next_page_at: None,
            alert_delivered: false,
            acked_by: None,
            acked_at: None,
            resolved_by: None,
            resolved_at: None,
            history: vec![],
            opened_because: String::new(),
            calm_since: None,
            next_remind_at: None,
            topic_terms: vec![],
            categories: Default::default(),
            term_counts: Default::default(),
        }
    }
}

/// A person's verdict on one hit: was it really negative about the brand?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// The hit judged ([`StoredHit::id`]); `None` for feedback on a text alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit: Option<String>,
    pub brand: String,
    pub text: String,
    pub url: Option<String>,
    /// True: it was negative about the brand (a true positive); false: a false positive.
    pub negative: bool,
    pub by: Actor,
    pub at: DateTime<Utc>,
}

/// One brand's health on one local day: the two figures the product steers by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DailyFigures {
    /// Every hit about the brand.
    pub mentions: u64,
    /// The negative ones.
    pub negative: u64,
    /// Harm index (用户伤害程度): the sum of [`Hit::severity`].
    pub harm: f64,
    pub incidents_opened: u64,
}

impl DailyFigures {
    /// Complaint rate (客诉率): negative hits over mentions; `None` on a day without mentions.
    pub fn complaint_rate(&self) -> Option<f64> {
        (self.mentions > 0).then(|| self.negative as f64 / self.mentions as f64)
    }

    fn add_hit(&mut self, hit: &Hit) {
        self.mentions += 1;
        self.negative += u64::from(hit.negative);
        self.harm += harm_of(hit);
    }

    fn add(&mut self, other: &DailyFigures) {
        self.mentions += other.mentions;
        self.negative += other.negative;
        self.harm += other.harm;
        self.incidents_opened += other.incidents_opened;
    }
}

/// A hit's share of the harm index. A non-finite severity counts as none: JSON cannot hold it,
/// and one bad score must not poison a day's sum.
fn harm_of(hit: &Hit) -> f64 {
    if hit.severity.is_finite() {
        hit.severity
    } else {
        0.0
    }
}

/// Which hits [`Store::hits_page`] lists. Times are `since <= at < until`.
#[derive(Debug, Clone, PartialEq)]
pub struct HitQuery {
    pub brand: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only negative (`Some(true)`) or only non-negative (`Some(false)`) hits.
    pub negative: Option<bool>,
    pub source: Option<String>,
    /// Hits per page, clamped to `1..=MAX_PAGE`.
    pub limit: usize,
    /// [`HitPage::next_cursor`] of the previous page.
    pub cursor: Option<String>,
}

impl Default for HitQuery {
    fn default() -> HitQuery {
        HitQuery {
            brand: None,
            since: None,
            until: None,
            negative: None,
            source: None,
            limit: DEFAULT_PAGE,
            cursor: None,
        }
    }
}

/// A stored hit with its id: a stable, opaque string (hex of its key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredHit {
    pub id: String,
    pub hit: Hit,
}

/// One page of hits, newest first. `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitPage {
    pub hits: Vec<StoredHit>,
    pub next_cursor: Option<String>,
}

/// A cursor that no page handed out. The admin API answers it with a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

/// How one poll of a source ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PollResult {
    /// A body was fetched holding `items` posts, `new_items` of which had not been seen.
    Fetched { items: u64, new_items: u64 },
    /// The source answered 304 Not Modified.
    NotModified,
    Failed {
        error: String,
        class: crate::fetch::ErrorClass,
    },
}

/// What the admin API shows about one source's polling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceHealth {
    pub last_poll_at: Option<DateTime<Utc>>,
    /// The last poll that fetched a body or was told nothing changed.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Kept after later successes, so the console can show what last went wrong.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// New posts found by the last poll (0 after a failure or a 304).
    pub last_new_items: u64,
    pub total_new_items: u64,
    pub polls: u64,
    pub errors: u64,
    pub not_modified: u64,
    /// When the source is due next (interval, backoff or Retry-After), kept so a restart
    /// honours it.
    #[serde(default)]
    pub next_poll_at: Option<DateTime<Utc>>,
    /// What kind of failure the last error was (DNS, TLS, timeout, HTTP status, parse,
    /// charset, login wall…).
    pub last_error_class: Option<crate::fetch::ErrorClass>,
    /// The first failure of the current streak (None while the source works).
    pub failing_since: Option<DateTime<Utc>>,
    /// Items read over all polls, new or not.
    pub items_seen: u64,
    /// When a poll last found a post not seen before.
    pub last_new_item_at: Option<DateTime<Utc>>,
    /// The first poll: a source that never had a new item has been silent since then.
    pub watched_since: Option<DateTime<Utc>>,
    /// Why the source was announced unhealthy, while that notice stands; cleared when its
    /// recovery is announced. Stored so that each is announced once, across restarts too.
    pub unhealthy: Option<String>,
}

impl SourceHealth {
    fn after(&self, at: DateTime<Utc>, outcome: &PollResult) -> SourceHealth {
        let mut new = self.clone();
        new.polls += 1;
        new.last_poll_at = Some(at);
        new.watched_since.get_or_insert(at);
        match outcome {
            PollResult::Fetched { items, new_items } => {
                new.last_success_at = Some(at);
                new.consecutive_failures = 0;
                new.failing_since = None;
                new.last_new_items = *new_items;
                new.total_new_items += new_items;
                new.items_seen += items;
                if *new_items > 0 {
                    new.last_new_item_at = Some(at);
                }
            }
            PollResult::NotModified => {
                new.last_success_at = Some(at);
                new.consecutive_failures = 0;
                new.failing_since = None;
                new.last_new_items = 0;
                new.not_modified += 1;
            }
            PollResult::Failed { error, class } => {
                new.errors += 1;
                if new.consecutive_failures == 0 {
                    new.failing_since = Some(at);
                }
                new.consecutive_failures += 1;
                new.last_new_items = 0;
                new.last_error = Some(error.clone());
                new.last_error_class = Some(class.clone());
                new.last_error_at = Some(at);
            }
        }
        new
    }
}

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    seen: sled::Tree,
    hits: sled::Tree,
    negative: sled::Tree,
    by_time: sled::Tree,
    posts: sled::Tree,
    daily: sled::Tree,
    incidents: sled::Tree,
    open: sled::Tree,
    feedback: sled::Tree,
    silences: sled::Tree,
    source_health: sled::Tree,
    outbox: sled::Tree,
    outbox_waiting: sled::Tree,
    near: sled::Tree,
    /// The zone whose calendar days `daily` counts.
    tz: Tz,
}

/// How long [`Store::open`] waits for the folder's lock. A `Db` that was just dropped (a
/// restart within one process, as in the tests) releases its lock only when sled's background
/// flusher notices, within about half a second; a lock held by a live process is still reported,
/// after this wait.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// sled's page cache. Its default (1 GiB) lets a daemon that polls thousands of sources grow
/// toward it; the hot data here (seen keys, the open incidents, the outbox heads, today's
/// aggregates) is small, and the rest is read rarely (exports, old pages of hits), from the
/// OS's file cache. With 5,000 sources, 8 MiB instead of 32 held about 10 MB less resident
/// (BENCHMARKS.md, "Polling 5,000 sources").
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

fn open_waiting_for_lock(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Opens (or creates) the database folder, counting local days in [`DEFAULT_TIME_ZONE`].
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_in_zone(path, DEFAULT_TIME_ZONE)
    }

    /// Opens (or creates) the database folder and checks its schema version. Local days are
    /// counted in `tz`; if the stored daily figures were counted in another zone, or the store
    /// predates the read model, it is rebuilt first (a full scan of hits and incidents).
    pub fn open_in_zone(path: &Path, tz: Tz) -> Result<Store> {
        let db = open_waiting_for_lock(path).with_context(|| {
            format!(
                "cannot open the database at {} (is another yuqing running on it?)",
                path.display()
            )
        })?;
        let store = Store::from_db(db, tz)?;
        match store.meta.get(KEY_SCHEMA)? {
            None => {
                store
                    .meta
                    .insert(KEY_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = u64_from(&v).context("corrupt schema version")?;
                if found != SCHEMA_VERSION {
                    bail!(
                        "database at {} has schema version {found}, this yuqing expects {SCHEMA_VERSION}",
                        path.display()
                    );
                }
            }
        }
        store
            .upgrade_read_model()
            .with_context(|| format!("rebuilding the read model in {}", path.display()))?;
        Ok(store)
    }

    /// A throwaway in-memory store for tests and one-shot commands.
    pub fn temporary() -> Result<Store> {
        Store::temporary_in_zone(DEFAULT_TIME_ZONE)
    }

    /// A throwaway in-memory store counting local days in `tz`.
    pub fn temporary_in_zone(tz: Tz) -> Result<Store> {
        let store = Store::from_db(sled::Config::new().temporary(true).open()?, tz)?;
        store.upgrade_read_model()?;
        Ok(store)
    }

    fn from_db(db: sled::Db, tz: Tz) -> Result<Store> {
        Ok(Store {
            meta: db.open_tree("meta")?,
            seen: db.open_tree("seen")?,
            hits: db.open_tree("hits")?,
            negative: db.open_tree("negative")?,
            by_time: db.open_tree("by_time")?,
            posts: db.open_tree("posts")?,
            daily: db.open_tree("daily")?,
            incidents: db.open_tree("incidents")?,
            open: db.open_tree("open")?,
            feedback: db.open_tree("feedback")?,
            silences: db.open_tree("silences")?,
            source_health: db.open_tree("source_health")?,
            outbox: db.open_tree("outbox")?,
            outbox_waiting: db.open_tree("outbox_waiting")?,
            near: db.open_tree("near")?,
            db,
            tz,
        })
    }

    /// The zone whose calendar days the daily figures count.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The local calendar day of `at` in the store's zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    /// Writes everything to disk. Called after every incident change and at shutdown.
    pub async fn flush(&self) -> Result<()> {
        self.db
            .flush_async()
            .await
            .context("flushing the database")?;
        Ok(())
    }

    // ---- dedupe ---------------------------------------------------------------------------

    /// Whether any of a post's keys has been recorded.
    pub fn seen_any(&self, keys: &[String]) -> Result<bool> {
        for key in keys {
            if self.seen.contains_key(key.as_bytes())? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Records a post and its hits in one transaction: its keys as seen, and, if none of them
    /// had been seen before, its hits, their `negative` and `by_time` entries, and their share
    /// of the daily figures. Returns whether the post was new. Because all happen or none, a
    /// crash can lose neither a post (seen, hits missing) nor count one twice, and the daily
    /// figures always agree with the hits.
    pub fn record_post(&self, keys: &[String], hits: &[Hit], now: DateTime<Utc>) -> Result<bool> {
        self.record_post_with(keys, hits, None, now)
    }

    /// [`Store::record_post`], also keeping the post itself when it produced hits, so that
    /// `yuqing export` can write it out and `yuqing replay` judge it again.
    pub fn record_post_with(
        &self,
        keys: &[String],
        hits: &[Hit],
        post: Option<&RecordedPost>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self
            .record_post_attaching(keys, hits, post, &[], |_, _| {}, now)?
            .fresh)
    }

    /// [`Store::record_post_with`], and in the same transaction the post's negative hits are
    /// attached to open incidents: `open` names, per brand, the incident that was open when
    /// the caller looked, and `attach` adds hits to it (it must be pure: the transaction may
    /// run it more than once). An incident that is no longer open, or not that brand's, is
    /// left alone and its brand is not in [`Recorded::attached`]. So a crash can never leave a
    /// post stored but uncounted in its incident, nor counted twice.
    pub fn record_post_attaching<F>(
        &self,
        keys: &[String],
        hits: &[Hit],
        post: Option<&RecordedPost>,
        open: &[(String, u64)],
        attach: F,
        now: DateTime<Utc>,
    ) -> Result<Recorded>
    where
        F: Fn(&mut Incident, &[Hit]),
    {
        let kept_post = match post.filter(|_| !hits.is_empty()) {
            Some(p) => Some((p.published, serde_json::to_vec(p)?)),
            None => None,
        };
        // A post with hits and a fingerprint enters the near-duplicate index.
        let indexed: Option<(DateTime<Utc>, u64, Vec<String>)> =
            post.filter(|_| !hits.is_empty()).and_then(|p| {
                let brands = hits.iter().map(|h| h.brand.clone()).collect();
                p.fingerprint.map(|f| (p.published, f, brands))
            });
        let stamp = now.timestamp_millis().to_be_bytes();
        let encoded: Vec<(&Hit, Vec<u8>)> = hits
            .iter()
            .map(|h| Ok((h, serde_json::to_vec(h)?)))
            .collect::<Result<_>>()?;
        let mut days: BTreeMap<Vec<u8>, DailyFigures> = BTreeMap::new();
        for hit in hits {
            days.entry(daily_key(&hit.brand, self.local_date(hit.at)))
                .or_default()
                .add_hit(hit);
        }
        let negatives_of = |brand: &str| -> Vec<Hit> {
            hits.iter()
                .filter(|h| h.negative && h.brand == brand)
                .cloned()
                .collect()
        };
        let recorded = (
            &self.seen,
            &self.hits,
            &self.negative,
            &self.by_time,
            &self.daily,
            &self.posts,
            &self.incidents,
            &self.near,
        )
            .transaction(
                |(seen, hits_tree, negative, by_time, daily, posts, incidents, near)| {
                    let hits = hits_tree;
                    let mut fresh = true;
                    let mut attached = Vec::new();
                    for key in keys {
                        if seen.get(key.as_bytes())?.is_some() {
                            fresh = false;
                        } else {
                            seen.insert(key.as_bytes(), &stamp[..])?;
                        }
                    }
                    if fresh {
                        let mut hit_keys = Vec::with_capacity(encoded.len());
                        for (hit, value) in &encoded {
                            let key = hit_key(&hit.brand, hit.at, seen.generate_id()?);
                            hits.insert(&key[..], value.as_slice())?;
                            by_time.insert(time_seq_of(&key), &key[..])?;
                            if hit.negative {
                                negative.insert(&key[..], &negative_weight(hit)[..])?;
                            }
                            hit_keys.push(to_hex(&key));
                        }
                        if let Some((published, fingerprint, brands)) = &indexed {
                            let (published, fingerprint) = (*published, *fingerprint);
                            let entry = NearEntry {
                                fingerprint,
                                hits: hit_keys,
                                brands: brands.clone(),
                            };
                            let value = serde_json::to_vec(&entry)
                                .map_err(|_| ConflictableTransactionError::Abort(()))?;
                            let seq = near.generate_id()?;
                            for band in 0..4u8 {
                                let key = near_key(band, fingerprint, published, seq);
                                near.insert(&key[..], value.as_slice())?;
                            }
                        }
                        for (key, figures) in &days {
                            add_daily(daily, key, figures)?;
                        }
                        if let Some((published, value)) = &kept_post {
                            let key = time_seq_key(*published, posts.generate_id()?);
                            posts.insert(&key[..], value.as_slice())?;
                        }
                        for (brand, id) in open {
                            let new_hits = negatives_of(brand);
                            if new_hits.is_empty() {
                                continue;
                            }
                            let key = id.to_be_bytes();
                            let Some(bytes) = incidents.get(key)? else {
                                continue;
                            };
                            let Ok(mut incident) = serde_json::from_slice::<Incident>(&bytes)
                            else {
                                continue;
                            };
                            if !incident.state.is_open() || incident.brand != *brand {
                                continue;
                            }
                            attach(&mut incident, &new_hits);
                            let value = serde_json::to_vec(&incident)
                                .map_err(|_| ConflictableTransactionError::Abort(()))?;
                            incidents.insert(&key[..], value)?;
                            attached.push(brand.clone());
                        }
                    }
                    Ok(Recorded { fresh, attached })
                },
            )
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(e) => anyhow::Error::new(e),
                TransactionError::Abort(()) => anyhow::anyhow!("recording a post was aborted"),
            })
            .context("recording a post")?;
        Ok(recorded)
    }

    /// Recorded posts whose fingerprint shares a 16-bit band with `fingerprint` and that count
    /// at `from <= at < to`: the candidates a repost may copy. The caller checks the distance.
    pub fn near_candidates(
        &self,
        fingerprint: u64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<NearCandidate>> {
        let mut out: Vec<NearCandidate> = Vec::new();
        for band in 0..4u8 {
            let lo = near_key(band, fingerprint, from, 0);
            let hi = near_key(band, fingerprint, to, 0);
            for kv in self.near.range(lo..hi) {
                let (key, value) = kv.context("reading the near-duplicate index")?;
                let entry: NearEntry = match serde_json::from_slice(&value) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping an unreadable near-duplicate entry");
                        continue;
                    }
                };
                let at = time_of(&key[3..]);
                // The same post is found under each band it shares.
                if out.iter().any(|c| c.hits == entry.hits && c.at == at) {
                    continue;
                }
                out.push(NearCandidate {
                    fingerprint: entry.fingerprint,
                    at,
                    hits: entry.hits,
                    brands: entry.brands,
                });
            }
        }
        Ok(out)
    }

    /// Records a repost of `original` (found by [`Store::near_candidates`]) from `source`, in one
    /// transaction: its keys become seen, and, if none of them had been, each of the original's
    /// hits counts one more amplification: `amplification` + 1, `source` among `reposted_by`,
    /// `severity` and the `negative` weight scaled to the new [`Hit::amplification_factor`],
    /// and the daily harm index moved by the difference. Returns the original's hits as they
    /// are now, or `None` when the repost had been recorded before. A hit that is gone (or
    /// unreadable) is skipped; the repost is still seen, so it is never counted as new.
    pub fn record_repost(
        &self,
        keys: &[String],
        original: &NearCandidate,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<Hit>>> {
        let stamp = now.timestamp_millis().to_be_bytes();
        let hit_keys: Vec<Vec<u8>> = original.hits.iter().filter_map(|k| from_hex(k)).collect();
        let tz = self.tz;
        (&self.seen, &self.hits, &self.negative, &self.daily)
            .transaction(|(seen, hits, negative, daily)| {
                for key in keys {
                    if seen.get(key.as_bytes())?.is_some() {
                        return Ok(None);
                    }
                }
                for key in keys {
                    seen.insert(key.as_bytes(), &stamp[..])?;
                }
                let mut amplified = Vec::with_capacity(hit_keys.len());
                for key in &hit_keys {
                    let Some(bytes) = hits.get(key)? else {
                        continue;
                    };
                    let Ok(mut hit) = serde_json::from_slice::<Hit>(&bytes) else {
                        continue;
                    };
                    let before = harm_of(&hit);
                    let old_factor = hit.amplification_factor();
                    hit.amplification = hit.amplification.saturating_add(1);
                    if !hit.reposted_by.iter().any(|s| s == source)
                        && hit.reposted_by.len() < MAX_REPOSTING_SOURCES
                    {
                        hit.reposted_by.push(source.to_string());
                    }
                    hit.severity = hit.severity / old_factor * hit.amplification_factor();
                    let value = serde_json::to_vec(&hit)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?;
                    hits.insert(&key[..], value)?;
                    if hit.negative {
                        negative.insert(&key[..], &negative_weight(&hit)[..])?;
                    }
                    let delta = DailyFigures {
                        harm: harm_of(&hit) - before,
                        ..DailyFigures::default()
                    };
                    let date = hit.at.with_timezone(&tz).date_naive();
                    add_daily(daily, &daily_key(&hit.brand, date), &delta)?;
                    amplified.push(hit);
                }
                Ok(Some(amplified))
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(e) => anyhow::Error::new(e),
                TransactionError::Abort(()) => anyhow::anyhow!("recording a repost was aborted"),
            })
            .context("recording a repost")
    }

    /// Kept posts published at or after `since`, oldest first, that mention `brand` (any
    /// brand when `None`). Unreadable records are logged and skipped.
    pub fn recorded_posts(
        &self,
        since: Option<DateTime<Utc>>,
        brand: Option<&str>,
    ) -> Result<Vec<RecordedPost>> {
        let lo = time_seq_key(since.unwrap_or(DateTime::<Utc>::MIN_UTC), 0);
        let mut out = Vec::new();
        for kv in self.posts.range(lo..) {
            let (_, v) = kv?;
            match serde_json::from_slice::<RecordedPost>(&v) {
                Ok(p) if brand.is_none_or(|b| p.brands.iter().any(|x| x == b)) => out.push(p),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable kept post"),
            }
        }
        Ok(out)
    }

    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }

    // ---- hits -----------------------------------------------------------------------------

    /// Stores one hit with its index entries and daily share, as [`Store::record_post`] does
    /// for a post without dedupe keys.
    pub fn insert_hit(&self, hit: &Hit) -> Result<()> {
        self.record_post(&[], std::slice::from_ref(hit), hit.fetched_at)?;
        Ok(())
    }

    /// When `brand`'s oldest stored hit happened.
    pub fn first_hit_at(&self, brand: &str) -> Option<DateTime<Utc>> {
        let lo = hit_key(brand, DateTime::<Utc>::MIN_UTC, 0);
        let hi = hit_key(brand, DateTime::<Utc>::MAX_UTC, u64::MAX);
        let (_, v) = self.hits.range(lo..hi).next()?.ok()?;
        serde_json::from_slice::<Hit>(&v).ok().map(|h| h.at)
    }

    /// Negative hits about `brand` with `from <= at < to`.
    pub fn count_negative(&self, brand: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        let (lo, hi) = (hit_key(brand, from, 0), hit_key(brand, to, 0));
        self.negative.range(lo..hi).count() as u64
    }

    /// Negative hits about `brand` with `from <= at < to`, each weighted by its
    /// [`Hit::amplification_factor`]: what the spike test counts. Reads only the `negative`
    /// index, never a hit.
    pub fn weighted_negative(&self, brand: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        let (lo, hi) = (hit_key(brand, from, 0), hit_key(brand, to, 0));
        self.negative
            .range(lo..hi)
            .filter_map(|kv| kv.ok())
            .map(|(_, weight)| match <[u8; 8]>::try_from(weight.as_ref()) {
                Ok(bytes) => f64::from_be_bytes(bytes),
                Err(_) => 1.0,
            })
            .sum()
    }

    /// Hits about `brand` with `from <= at < to`, oldest first. Unreadable records are logged
    /// and skipped rather than failing the whole window.
    pub fn hits_between(&self, brand: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Hit> {
        let (lo, hi) = (hit_key(brand, from, 0), hit_key(brand, to, 0));
        self.hits
            .range(lo..hi)
            .filter_map(|kv| {
                let (_, v) = kv
                    .map_err(|e| tracing::warn!(error = %e, "reading a hit"))
                    .ok()?;
                serde_json::from_slice(&v)
                    .map_err(|e| tracing::warn!(error = %e, "skipping an unreadable hit"))
                    .ok()
            })
            .collect()
    }

    pub fn hit_count(&self) -> usize {
        self.hits.len()
    }

    /// One page of the hits `query` asks for, newest first.
    ///
    /// One reverse range scan from the cursor (or `until`): over `negative` for a brand's
    /// negative hits, over `hits` for a brand's hits, over `by_time` for all brands. The other
    /// filters are checked during the scan, so a rare source costs a longer one. Unreadable or
    /// dangling records are logged and skipped. A cursor is only a position (time and
    /// sequence), so it stays valid while hits are added; a malformed one is an
    /// [`InvalidCursor`] error.
    pub fn hits_page(&self, query: &HitQuery) -> Result<HitPage> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let cursor = query.cursor.as_deref().map(parse_cursor).transpose()?;
        let lo = query.since.map_or([0; 16], |t| time_seq(t, 0));
        let hi = match (query.until.map(|t| time_seq(t, 0)), cursor) {
            (Some(until), Some(cursor)) => Some(until.min(cursor)),
            (until, cursor) => until.or(cursor),
        };
        let empty = HitPage {
            hits: Vec::new(),
            next_cursor: None,
        };
        if hi.is_some_and(|hi| hi <= lo) {
            return Ok(empty);
        }
        // Candidates newest first: a hit key, and the hit when the scan already read it.
        type Candidates<'a> = Box<dyn Iterator<Item = sled::Result<(IVec, Option<IVec>)>> + 'a>;
        let candidates: Candidates = match (&query.brand, query.negative) {
            (Some(brand), Some(true)) => Box::new(
                self.negative
                    .range(brand_range(brand, lo, hi))
                    .rev()
                    .map(|kv| kv.map(|(k, _)| (k, None))),
            ),
            (Some(brand), _) => Box::new(
                self.hits
                    .range(brand_range(brand, lo, hi))
                    .rev()
                    .map(|kv| kv.map(|(k, v)| (k, Some(v)))),
            ),
            (None, _) => {
                let hi = hi.map_or(Bound::Unbounded, |hi| Bound::Excluded(hi.to_vec()));
                Box::new(
                    self.by_time
                        .range((Bound::Included(lo.to_vec()), hi))
                        .rev()
                        .map(|kv| kv.map(|(_, hit_key)| (hit_key, None))),
                )
            }
        };
        // Across brands the negative index can still spare reading hits that will not match.
        let check_negative_index = query.brand.is_none() && query.negative.is_some();
        let mut page = empty;
        for candidate in candidates {
            let (key, value) = candidate?;
            if check_negative_index && Some(self.negative.contains_key(&key)?) != query.negative {
                continue;
            }
            let value = match value {
                Some(v) => v,
                None => match self.hits.get(&key)? {
                    Some(v) => v,
                    None => {
                        tracing::warn!(key = %to_hex(&key), "an index names a missing hit");
                        continue;
                    }
                },
            };
            let hit: Hit = match serde_json::from_slice(&value) {
                Ok(hit) => hit,
                Err(e) => {
                    tracing::warn!(key = %to_hex(&key), error = %e, "skipping an unreadable hit");
                    continue;
                }
            };
            if query.negative.is_some_and(|n| n != hit.negative)
                || query.source.as_ref().is_some_and(|s| *s != hit.source)
            {
                continue;
            }
            if page.hits.len() == limit {
                // One more matches: there is a next page, and it starts below the last hit,
                // whose id ends with the hex of its time and sequence.
                let last = &page.hits[limit - 1].id;
                page.next_cursor = Some(last[last.len() - 32..].to_string());
                break;
            }
            page.hits.push(StoredHit {
                id: to_hex(&key),
                hit,
            });
        }
        Ok(page)
    }

    /// One hit by its [`StoredHit::id`]. `None` for an id that is malformed or names no hit.
    pub fn hit(&self, id: &str) -> Result<Option<Hit>> {
        let Some(key) = from_hex(id) else {
            return Ok(None);
        };
        match self.hits.get(key)? {
            None => Ok(None),
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).with_context(|| format!("unreadable hit {id}"))?,
            )),
        }
    }

    // ---- incidents ------------------------------------------------------------------------

    /// Allocates the next incident id: small, dense numbers that are easy to type in `/ack 7`.
    pub fn next_incident_id(&self) -> Result<u64> {
        let next = self.meta.update_and_fetch(KEY_NEXT_INCIDENT, |old| {
            let n = old.and_then(|v| u64_from(v).ok()).unwrap_or(0) + 1;
            Some(n.to_be_bytes().to_vec())
        })?;
        u64_from(&next.expect("update_and_fetch returned a value"))
            .context("corrupt incident counter")
    }

    /// Stores a new incident and counts it in its brand's `incidents_opened` for the local day
    /// it opened, in one transaction. Fails if an incident with its id exists.
    pub fn create_incident(&self, incident: &Incident) -> Result<()> {
        let id = incident.id.to_be_bytes();
        let value = serde_json::to_vec(incident)?;
        let day = daily_key(&incident.brand, self.local_date(incident.opened_at));
        let opened = DailyFigures {
            incidents_opened: 1,
            ..DailyFigures::default()
        };
        (&self.incidents, &self.open, &self.daily)
            .transaction(|(incidents, open, daily)| {
                if incidents.get(id)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                incidents.insert(&id[..], value.as_slice())?;
                if incident.state.is_open() {
                    open.insert(&id[..], &[][..])?;
                }
                add_daily(daily, &day, &opened)?;
                Ok(())
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(e) => anyhow::Error::new(e),
                TransactionError::Abort(()) => {
                    anyhow::anyhow!("incident #{} already exists", incident.id)
                }
            })
            .with_context(|| format!("storing new incident #{}", incident.id))
    }

    /// Stores an incident as it is, new or not. It does not count in the daily figures: new
    /// incidents go through [`Store::create_incident`].
    pub fn put_incident(&self, incident: &Incident) -> Result<()> {
        self.incidents
            .insert(incident.id.to_be_bytes(), serde_json::to_vec(incident)?)?;
        self.index_open(incident)
    }

    fn index_open(&self, incident: &Incident) -> Result<()> {
        let key = incident.id.to_be_bytes();
        if incident.state.is_open() {
            self.open.insert(key, &[])?;
        } else {
            self.open.remove(key)?;
        }
        Ok(())
    }

    pub fn incident(&self, id: u64) -> Result<Option<Incident>> {
        match self.incidents.get(id.to_be_bytes())? {
            None => Ok(None),
            Some(v) => {
                Ok(Some(serde_json::from_slice(&v).with_context(|| {
                    format!("incident #{id} is unreadable")
                })?))
            }
        }
    }

    /// All incidents, oldest first.
    pub fn incidents(&self) -> Result<Vec<Incident>> {
        let mut out = Vec::new();
        for kv in self.incidents.iter() {
            let (k, v) = kv?;
            match serde_json::from_slice(&v) {
                Ok(i) => out.push(i),
                Err(e) => tracing::error!(key = ?k, error = %e, "skipping an unreadable incident"),
            }
        }
        Ok(out)
    }

    /// Incidents not yet resolved, oldest first.
    pub fn open_incidents(&self) -> Result<Vec<Incident>> {
        let mut out = Vec::new();
        for key in self.open.iter().keys() {
            let key = key?;
            let id = u64_from(&key).context("corrupt open-incident index")?;
            match self.incident(id) {
                Ok(Some(i)) if i.state.is_open() => out.push(i),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(id, error = %format!("{e:#}"), "skipping an unreadable incident")
                }
            }
        }
        Ok(out)
    }

    /// Incidents in `state` (all when `None`), newest first.
    pub fn incidents_filtered(&self, state: Option<IncidentState>) -> Result<Vec<Incident>> {
        let mut found = match state {
            Some(s) if s.is_open() => self.open_incidents()?,
            _ => self.incidents()?,
        };
        found.retain(|i| state.is_none_or(|s| i.state == s));
        found.reverse();
        Ok(found)
    }

    /// Atomically applies `change` to incident `id`. `change` returns `Err(reason)` to refuse
    /// (nothing is written), and may run several times under contention, so it must not do
    /// I/O. Returns the stored result, or `Ok(Err(reason))` when refused.
    pub fn update_incident<F, E>(&self, id: u64, change: F) -> Result<Option<Result<Incident, E>>>
    where
        F: Fn(&Incident) -> Result<Incident, E>,
    {
        let key = id.to_be_bytes();
        loop {
            let Some(old_bytes) = self.incidents.get(key)? else {
                return Ok(None);
            };
            let old: Incident = serde_json::from_slice(&old_bytes)
                .with_context(|| format!("incident #{id} is unreadable"))?;
            let new = match change(&old) {
                Ok(new) => new,
                Err(reason) => return Ok(Some(Err(reason))),
            };
            let new_bytes = serde_json::to_vec(&new)?;
            match self
                .incidents
                .compare_and_swap(key, Some(old_bytes), Some(new_bytes))?
            {
                Ok(()) => {
                    self.index_open(&new)?;
                    return Ok(Some(Ok(new)));
                }
                Err(_) => continue, // someone else changed it in between: re-read and retry
            }
        }
    }

    // ---- daily figures --------------------------------------------------------------------

    /// `brand`'s figures for every local day from `first` to `last` inclusive, oldest first,
    /// zeros for days with nothing recorded. Empty when `first > last`.
    pub fn daily(
        &self,
        brand: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<(NaiveDate, DailyFigures)>> {
        if first > last {
            return Ok(Vec::new());
        }
        let mut stored = BTreeMap::new();
        for kv in self
            .daily
            .range(daily_key(brand, first)..=daily_key(brand, last))
        {
            let (k, v) = kv?;
            if let Some((_, date)) = split_daily_key(&k) {
                stored.insert(date, decode_daily(&k, &v).unwrap_or_default());
            }
        }
        Ok(first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|d| (d, stored.get(&d).copied().unwrap_or_default()))
            .collect())
    }

    /// Every stored daily figure, by brand and local day; days with nothing are absent.
    pub fn daily_all(&self) -> Result<BTreeMap<(String, NaiveDate), DailyFigures>> {
        let mut out = BTreeMap::new();
        for kv in self.daily.iter() {
            let (k, v) = kv?;
            match split_daily_key(&k) {
                Some((brand, date)) => {
                    out.insert((brand, date), decode_daily(&k, &v).unwrap_or_default());
                }
                None => tracing::warn!(key = %to_hex(&k), "skipping a malformed daily key"),
            }
        }
        Ok(out)
    }

    /// The daily figures computed from scratch: a full scan of hits and incidents. What the
    /// stored ones must equal (harm up to float rounding), and what a rebuild stores.
    pub fn recount_daily_all(&self) -> Result<BTreeMap<(String, NaiveDate), DailyFigures>> {
        let mut out: BTreeMap<(String, NaiveDate), DailyFigures> = BTreeMap::new();
        for kv in self.hits.iter() {
            let (k, v) = kv?;
            match serde_json::from_slice::<Hit>(&v) {
                Ok(hit) => out
                    .entry((hit.brand.clone(), self.local_date(hit.at)))
                    .or_default()
                    .add_hit(&hit),
                Err(e) => {
                    tracing::warn!(key = %to_hex(&k), error = %e, "not counting an unreadable hit")
                }
            }
        }
        for incident in self.incidents()? {
            out.entry((incident.brand.clone(), self.local_date(incident.opened_at)))
                .or_default()
                .incidents_opened += 1;
        }
        Ok(out)
    }

    /// Rebuilds `by_time` and `daily` when `meta` says they are missing, older than this
    /// version, or (`daily`) counted in another zone. Runs while the store is opened, before
    /// anyone else can write. `meta` is updated only after the trees are flushed, so a crash
    /// halfway means another rebuild, never a half-built index taken as complete.
    fn upgrade_read_model(&self) -> Result<()> {
        let index_version = self.meta_u64(KEY_INDEX_VERSION)?;
        let zone = self
            .meta
            .get(KEY_DAILY_ZONE)?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        let by_time_stale = index_version.is_none_or(|v| v < INDEX_VERSION);
        let daily_stale = by_time_stale || zone.as_deref() != Some(self.tz.name());
        if !daily_stale {
            return Ok(());
        }
        let started = std::time::Instant::now();
        if by_time_stale {
            self.by_time.clear()?;
            let mut batch = sled::Batch::default();
            let mut pending = 0;
            for key in self.hits.iter().keys() {
                let key = key?;
                if key.len() < 17 {
                    tracing::warn!(key = %to_hex(&key), "skipping a malformed hit key");
                    continue;
                }
                batch.insert(time_seq_of(&key), key.clone());
                pending += 1;
                if pending == 10_000 {
                    self.by_time.apply_batch(std::mem::take(&mut batch))?;
                    pending = 0;
                }
            }
            self.by_time.apply_batch(batch)?;
        }
        let figures = self.recount_daily_all()?;
        self.daily.clear()?;
        let mut batch = sled::Batch::default();
        for ((brand, date), f) in &figures {
            batch.insert(daily_key(brand, *date), serde_json::to_vec(f)?);
        }
        self.daily.apply_batch(batch)?;
        self.db.flush()?;
        if by_time_stale {
            self.set_meta_u64(KEY_INDEX_VERSION, INDEX_VERSION)?;
        }
        self.meta
            .insert(KEY_DAILY_ZONE, self.tz.name().as_bytes())?;
        self.db.flush()?;
        let (hits, days) = (self.by_time.len(), figures.len());
        let took_ms = started.elapsed().as_millis() as u64;
        if hits > 0 || days > 0 {
            tracing::info!(
                from_index_version = ?index_version,
                from_zone = ?zone,
                zone = self.tz.name(),
                rebuilt_by_time = by_time_stale,
                hits,
                days,
                took_ms,
                "rebuilt the read model"
            );
        }
        Ok(())
    }

    // ---- source health --------------------------------------------------------------------

    /// Counts one poll of `source` and returns its health after it. A compare-and-swap loop,
    /// so concurrent polls of one source lose no count.
    pub fn record_poll(
        &self,
        source: &str,
        at: DateTime<Utc>,
        outcome: PollResult,
    ) -> Result<SourceHealth> {
        self.update_health(source, |current| current.after(at, &outcome))
    }

    /// Records when `source` is due next.
    pub fn schedule_next_poll(&self, source: &str, at: DateTime<Utc>) -> Result<()> {
        self.update_health(source, |current| SourceHealth {
            next_poll_at: Some(at),
            ..current.clone()
        })?;
        Ok(())
    }

    /// Works out whether `source`'s health crossed a limit (or came back within them) and, if
    /// so, records that it is being announced, in one compare-and-swap: the transition is
    /// returned once, however many pollers or restarts ask.
    pub fn announce_health(
        &self,
        source: &str,
        limits: &crate::source::HealthLimits,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::source::HealthEvent>> {
        let key = source.as_bytes();
        // Most polls change nothing: then nothing is written.
        loop {
            let old = self.source_health.get(key)?;
            let current: SourceHealth = match &old {
                None => return Ok(None),
                Some(v) => serde_json::from_slice(v).unwrap_or_default(),
            };
            let Some((event, next)) = crate::source::health_transition(&current, limits, now)
            else {
                return Ok(None);
            };
            let bytes = serde_json::to_vec(&next)?;
            if self
                .source_health
                .compare_and_swap(key, old, Some(bytes))?
                .is_ok()
            {
                return Ok(Some(event));
            }
        }
    }

    /// When `source` was last scheduled to be polled next, if ever.
    pub fn next_poll_at(&self, source: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(match self.source_health.get(source.as_bytes())? {
            Some(v) => serde_json::from_slice::<SourceHealth>(&v)
                .ok()
                .and_then(|h| h.next_poll_at),
            None => None,
        })
    }

    fn update_health(
        &self,
        source: &str,
        change: impl Fn(&SourceHealth) -> SourceHealth,
    ) -> Result<SourceHealth> {
        let key = source.as_bytes();
        loop {
            let old = self.source_health.get(key)?;
            let current = match &old {
                None => SourceHealth::default(),
                Some(v) => serde_json::from_slice(v).unwrap_or_else(|e| {
                    tracing::warn!(source, error = %e, "resetting unreadable source health");
                    SourceHealth::default()
                }),
            };
            let new = change(&current);
            let bytes = serde_json::to_vec(&new)?;
            if self
                .source_health
                .compare_and_swap(key, old, Some(bytes))?
                .is_ok()
            {
                return Ok(new);
            }
        }
    }

    /// Every polled source's health, sorted by name. Unreadable records are logged and skipped.
    pub fn source_health(&self) -> Result<Vec<(String, SourceHealth)>> {
        let mut out = Vec::new();
        for kv in self.source_health.iter() {
            let (k, v) = kv?;
            let name = String::from_utf8_lossy(&k).into_owned();
            match serde_json::from_slice(&v) {
                Ok(h) => out.push((name, h)),
                Err(e) => {
                    tracing::warn!(source = %name, error = %e, "skipping unreadable source health")
                }
            }
        }
        Ok(out)
    }

    // ---- silences -------------------------------------------------------------------------

    /// Stores a silence under a new id (or its own, when it has one, as config silences do).
    pub fn put_silence(&self, silence: &mut Silence) -> Result<()> {
        if silence.id.is_empty() {
            silence.id = format!("{}", self.db.generate_id()?);
        }
        self.silences
            .insert(silence.id.as_bytes(), serde_json::to_vec(silence)?)?;
        Ok(())
    }

    pub fn silence(&self, id: &str) -> Result<Option<Silence>> {
        match self.silences.get(id.as_bytes())? {
            None => Ok(None),
            Some(v) => Ok(Some(
                serde_json::from_slice(&v)
                    .with_context(|| format!("silence {id} is unreadable"))?,
            )),
        }
    }

    /// Every silence, expired ones included (they stay listed as history).
    pub fn silences(&self) -> Result<Vec<Silence>> {
        let mut out = Vec::new();
        for kv in self.silences.iter() {
            let (_, v) = kv?;
            match serde_json::from_slice(&v) {
                Ok(s) => out.push(s),
                Err(e) => tracing::error!(error = %e, "skipping an unreadable silence"),
            }
        }
        out.sort_by_key(|s: &Silence| std::cmp::Reverse(s.created_at));
        Ok(out)
    }

    // ---- feedback -------------------------------------------------------------------------

    pub fn add_feedback(&self, feedback: &Feedback) -> Result<u64> {
        let id = self.db.generate_id()?;
        self.feedback
            .insert(id.to_be_bytes(), serde_json::to_vec(feedback)?)?;
        Ok(id)
    }

    /// All feedback, oldest first, with ids. Unreadable records are logged and skipped.
    pub fn feedback(&self) -> Result<Vec<(u64, Feedback)>> {
        let mut out = Vec::new();
        for kv in self.feedback.iter() {
            let (k, v) = kv?;
            let id = u64_from(&k).context("corrupt feedback key")?;
            match serde_json::from_slice(&v) {
                Ok(f) => out.push((id, f)),
                Err(e) => tracing::error!(id, error = %e, "skipping unreadable feedback"),
            }
        }
        Ok(out)
    }

    // ---- meta -----------------------------------------------------------------------------

    pub fn meta_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.meta.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => Ok(Some(
                u64_from(&v).with_context(|| format!("corrupt meta value {key}"))?,
            )),
        }
    }

    pub fn set_meta_u64(&self, key: &str, value: u64) -> Result<()> {
        self.meta.insert(key.as_bytes(), &value.to_be_bytes())?;
        Ok(())
    }
}

fn hit_key(brand: &str, at: DateTime<Utc>, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(brand.len() + 17);
    key.extend_from_slice(brand.as_bytes());
    key.push(BRAND_SEP);
    key.extend_from_slice(&time_seq(at, seq));
    key
}

/// A position in time order: the time (milliseconds, offset so that times before 1970 still
/// sort correctly as unsigned bytes) and a sequence number, both big-endian. The tail of every
/// hit key, the whole of a `by_time` key, and what a cursor holds.
fn time_seq(at: DateTime<Utc>, seq: u64) -> [u8; 16] {
    let millis = (at.timestamp_millis() as i128 - i64::MIN as i128) as u64;
    let mut out = [0; 16];
    out[..8].copy_from_slice(&millis.to_be_bytes());
    out[8..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// The time and sequence part of a hit key.
/// A key that sorts by time, then by a sequence number.
fn time_seq_key(at: DateTime<Utc>, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    let millis = (at.timestamp_millis() as i128 - i64::MIN as i128) as u64;
    key.extend_from_slice(&millis.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn time_seq_of(hit_key: &[u8]) -> &[u8] {
    &hit_key[hit_key.len() - 16..]
}

/// Keys of `brand`'s hits from position `lo` (inclusive) to `hi` (exclusive; the end of the
/// brand's keys when `None`).
fn brand_range(
    brand: &str,
    lo: [u8; 16],
    hi: Option<[u8; 16]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefixed = |tail: &[u8]| {
        let mut key = Vec::with_capacity(brand.len() + 1 + tail.len());
        key.extend_from_slice(brand.as_bytes());
        key.push(BRAND_SEP);
        key.extend_from_slice(tail);
        key
    };
    // 17 bytes of 0xFF sort after every 16-byte tail.
    let hi = hi.map_or_else(|| prefixed(&[0xFF; 17]), |hi| prefixed(&hi));
    (Bound::Included(prefixed(&lo)), Bound::Excluded(hi))
}

fn parse_cursor(cursor: &str) -> Result<[u8; 16]> {
    from_hex(cursor)
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .ok_or_else(|| anyhow::Error::new(InvalidCursor))
}

fn daily_key(brand: &str, date: NaiveDate) -> Vec<u8> {
    let mut key = Vec::with_capacity(brand.len() + 5);
    key.extend_from_slice(brand.as_bytes());
    key.push(BRAND_SEP);
    // Flipping the sign bit makes days before year 1 sort first as unsigned bytes.
    let days = (date.num_days_from_ce() as u32) ^ 0x8000_0000;
    key.extend_from_slice(&days.to_be_bytes());
    key
}

fn split_daily_key(key: &[u8]) -> Option<(String, NaiveDate)> {
    let (brand, rest) = key.split_at(key.len().checked_sub(5)?);
    if rest[0] != BRAND_SEP {
        return None;
    }
    let days = u32::from_be_bytes(rest[1..].try_into().ok()?) ^ 0x8000_0000;
    let date = NaiveDate::from_num_days_from_ce_opt(days as i32)?;
    Some((String::from_utf8(brand.to_vec()).ok()?, date))
}

fn decode_daily(key: &[u8], value: &[u8]) -> Option<DailyFigures> {
    serde_json::from_slice(value)
        .map_err(|e| tracing::error!(key = %to_hex(key), error = %e, "unreadable daily figures"))
        .ok()
}

/// Adds `figures` to the stored ones under `key`, inside a transaction. Unreadable stored
/// figures count as zero (and are logged) rather than stopping the recorder; a rebuild
/// restores them.
fn add_daily(
    daily: &TransactionalTree,
    key: &[u8],
    figures: &DailyFigures,
) -> Result<(), UnabortableTransactionError> {
    let mut sum = match daily.get(key)? {
        Some(v) => decode_daily(key, &v).unwrap_or_default(),
        None => DailyFigures::default(),
    };
    sum.add(figures);
    let bytes = serde_json::to_vec(&sum).expect("daily figures serialize");
    daily.insert(key, bytes)?;
    Ok(())
}

/// The value of a negative hit's `negative` entry: empty for weight 1 (as every entry was
/// before reposts counted), else its amplification factor.
fn negative_weight(hit: &Hit) -> Vec<u8> {
    if hit.amplification == 0 {
        Vec::new()
    } else {
        hit.amplification_factor().to_be_bytes().to_vec()
    }
}

/// A key of the near-duplicate index: band number, the fingerprint's 16 bits in that band,
/// then time and sequence.
fn near_key(band: u8, fingerprint: u64, at: DateTime<Utc>, seq: u64) -> [u8; 19] {
    let mut key = [0u8; 19];
    key[0] = band;
    let bits = (fingerprint >> (16 * u32::from(band))) as u16;
    key[1..3].copy_from_slice(&bits.to_be_bytes());
    key[3..].copy_from_slice(&time_seq(at, seq));
    key
}

/// The time of a [`time_seq`] position.
fn time_of(time_seq: &[u8]) -> DateTime<Utc> {
    let millis = time_seq
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    let millis = (i128::from(millis) + i128::from(i64::MIN)) as i64;
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xF)] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

fn u64_from(bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes.try_into().context("expected 8 bytes")?;
    Ok(u64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn hit(brand: &str, at: DateTime<Utc>, negative: bool) -> Hit {
        Hit {
            brand: brand.into(),
            source: "s".into(),
            url: None,
            title: "t".into(),
            snippet: "s".into(),
            at,
            fetched_at: at,
            score: if negative { -2.0 } else { 1.0 },
            negative,
            terms: vec![],
            severity: 0.0,
            crisis: vec![],
            amplification: 0,
            reposted_by: vec![],
        }
    }

    #[test]
    fn a_repost_amplifies_the_original_hits_once() {
        let store = Store::temporary().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 4, 0, 0).unwrap();
        let fingerprint = 0x0123_4567_89ab_cdef_u64;
        let negative = Hit {
            severity: 3.0,
            ..hit("b", at, true)
        };
        let hits = [negative, hit("c", at, false)];
        let post = RecordedPost {
            source: "s".into(),
            title: "t".into(),
            text: "x".into(),
            url: None,
            author: None,
            published: at,
            brands: vec!["b".into(), "c".into()],
            fingerprint: Some(fingerprint),
        };
        store
            .record_post_with(&["g\u{0}s\u{0}1".into()], &hits, Some(&post), at)
            .unwrap();
        // Found through any band, within the window only, once.
        let near = fingerprint ^ 0b1011; // 3 bits off, all in band 0
        let window = chrono::Duration::days(3);
        let found = store
            .near_candidates(near, at - window, at + window)
            .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].fingerprint, fingerprint);
        assert_eq!(found[0].at, at);
        assert_eq!(found[0].brands, ["b", "c"]);
        assert!(store
            .near_candidates(near, at + window, at + window * 2)
            .unwrap()
            .is_empty());
        assert!(store
            .near_candidates(!fingerprint, at - window, at + window)
            .unwrap()
            .is_empty());

        let day = |s: &Store| s.daily("b", s.local_date(at), s.local_date(at)).unwrap()[0].1;
        let harm_before = day(&store).harm;
        assert_eq!(store.weighted_negative("b", at - window, at + window), 1.0);
        let repost_keys = ["g\u{0}weibo\u{0}r1".to_string()];
        let amplified = store
            .record_repost(&repost_keys, &found[0], "weibo", at)
            .unwrap()
            .expect("a new repost");
        assert_eq!(amplified.len(), 2);
        assert!(amplified.iter().all(|h| h.amplification == 1));
        assert_eq!(amplified[0].reposted_by, ["weibo"]);
        let factor = crate::post::amplification_factor(1);
        assert!((amplified[0].severity - 3.0 * factor).abs() < 1e-9);
        // Recorded once: the same repost again changes nothing.
        assert!(store
            .record_repost(&repost_keys, &found[0], "weibo", at)
            .unwrap()
            .is_none());
        assert!(store.seen_any(&repost_keys).unwrap());
        store
            .record_repost(&["g\u{0}tieba\u{0}r2".into()], &found[0], "tieba", at)
            .unwrap()
            .unwrap();
        let stored = store.hits_between("b", at - window, at + window);
        assert_eq!(stored.len(), 1, "no new hits");
        assert_eq!(stored[0].amplification, 2);
        assert_eq!(stored[0].reposted_by, ["weibo", "tieba"]);
        let factor = crate::post::amplification_factor(2);
        assert!((stored[0].severity - 3.0 * factor).abs() < 1e-9);
        assert_eq!(store.count_negative("b", at - window, at + window), 1);
        assert!((store.weighted_negative("b", at - window, at + window) - factor).abs() < 1e-9);
        // The harm index moved with the severity, and a recount agrees.
        let harm = day(&store).harm;
        assert!(
            (harm - harm_before - 3.0 * (factor - 1.0)).abs() < 1e-9,
            "{harm}"
        );
        let recount = store.recount_daily_all().unwrap();
        let recounted = &recount[&("b".to_string(), store.local_date(at))];
        assert!((recounted.harm - harm).abs() < 1e-9);
        // A hit written before reposts counted reads as amplified 0 and weighs 1.
        let old: Hit = serde_json::from_str(
            r#"{"brand":"b","source":"s","url":null,"title":"t","snippet":"s","at":"2026-03-01T04:00:00Z","fetched_at":"2026-03-01T04:00:00Z","score":-2.0,"negative":true,"terms":[],"severity":1.0}"#,
        )
        .unwrap();
        assert_eq!(old.amplification, 0);
        assert_eq!(old.amplification_factor(), 1.0);
    }

    #[test]
    fn a_post_and_its_hits_are_recorded_together_once() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        let hits = [hit("度小满", now, true), hit("招联", now, false)];
        let keys = ["g:a".to_string(), "u:x".to_string()];
        assert!(store.record_post(&keys, &hits, now).unwrap());
        assert_eq!(store.seen_count(), 2);
        let day = Duration::days(1);
        assert_eq!(store.count_negative("度小满", now - day, now + day), 1);
        assert_eq!(store.hits_between("招联", now - day, now + day).len(), 1);
        // The same post again (here by its URL only): no second copy of its hits.
        let again = ["g:b".to_string(), "u:x".to_string()];
        assert!(!store.record_post(&again, &hits, now).unwrap());
        assert_eq!(store.count_negative("度小满", now - day, now + day), 1);
        assert!(
            store.seen_any(&["g:b".to_string()]).unwrap(),
            "its new key is taken"
        );
        assert!(!store.seen_any(&["g:zzz".to_string()]).unwrap());
    }

    #[test]
    fn negative_counts_are_per_brand_and_window() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        for i in 0..5 {
            store
                .insert_hit(&hit("度小满", now - Duration::minutes(i), true))
                .unwrap();
        }
        store
            .insert_hit(&hit("度小满", now - Duration::minutes(1), false))
            .unwrap();
        store
            .insert_hit(&hit("度小满", now - Duration::hours(3), true))
            .unwrap();
        store
            .insert_hit(&hit("度小满金", now - Duration::minutes(1), true))
            .unwrap();
        let from = now - Duration::minutes(15);
        let to = now + Duration::seconds(1);
        assert_eq!(store.count_negative("度小满", from, to), 5);
        assert_eq!(store.hits_between("度小满", from, to).len(), 6);
        assert_eq!(store.count_negative("度小满金", from, to), 1);
        assert_eq!(
            store.count_negative("度小满", now - Duration::hours(4), from),
            1
        );
    }

    #[test]
    fn seen_keys_dedupe() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        assert!(store
            .record_post(&["g:a".into(), "u:x".into()], &[], now)
            .unwrap());
        assert!(!store.record_post(&["g:a".into()], &[], now).unwrap());
        assert!(
            !store
                .record_post(&["g:b".into(), "u:x".into()], &[], now)
                .unwrap(),
            "same URL"
        );
        assert!(store.record_post(&["g:c".into()], &[], now).unwrap());
    }

    #[test]
    fn schema_version_is_checked_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.meta.insert(KEY_SCHEMA, &99u64.to_be_bytes()).unwrap();
            store.db.flush().unwrap();
        }
        let err = Store::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[test]
    fn a_second_opener_gets_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).err().expect("the folder is locked");
        assert!(
            format!("{err:#}").contains("is another yuqing running on it?"),
            "{err:#}"
        );
    }

    #[test]
    fn incident_ids_are_dense_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.next_incident_id().unwrap(), 1);
            assert_eq!(store.next_incident_id().unwrap(), 2);
            store.db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_incident_id().unwrap(), 3);
    }

    // ---- read model -----------------------------------------------------------------------

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A hit with a source and a harm share, as the recorder would store it.
    fn scored(brand: &str, at: DateTime<Utc>, negative: bool, severity: f64, source: &str) -> Hit {
        Hit {
            source: source.into(),
            severity,
            crisis: vec![],
            ..hit(brand, at, negative)
        }
    }

    fn incident(id: u64, brand: &str, opened_at: DateTime<Utc>) -> Incident {
        Incident::sample(id, brand, opened_at)
    }

    fn close(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
    }

    /// The stored daily figures equal a full recount (harm up to rounding); returns them.
    fn assert_daily_agrees(store: &Store) -> BTreeMap<(String, NaiveDate), DailyFigures> {
        let stored = store.daily_all().unwrap();
        let recount = store.recount_daily_all().unwrap();
        assert_eq!(
            stored.keys().collect::<Vec<_>>(),
            recount.keys().collect::<Vec<_>>()
        );
        for (key, s) in &stored {
            let r = &recount[key];
            assert_eq!(
                (s.mentions, s.negative, s.incidents_opened),
                (r.mentions, r.negative, r.incidents_opened),
                "{key:?}"
            );
            assert!(close(s.harm, r.harm), "{key:?}: {} vs {}", s.harm, r.harm);
        }
        stored
    }

    /// A burst around local midnight in Shanghai (16:00 UTC), two brands, some negative.
    fn record_burst(store: &Store) {
        let post = |n: usize| vec![format!("g:{n}")];
        let burst = [
            // 1 March, local (23:00 and 23:59:59 in Shanghai).
            vec![scored(
                "度小满",
                utc(2026, 3, 1, 15, 0, 0),
                true,
                0.1,
                "weibo",
            )],
            vec![scored(
                "度小满",
                utc(2026, 3, 1, 15, 59, 59),
                false,
                0.0,
                "tieba",
            )],
            vec![
                scored("度小满", utc(2026, 3, 1, 15, 30, 0), true, 0.2, "weibo"),
                scored("招联", utc(2026, 3, 1, 15, 30, 0), false, 0.0, "weibo"),
            ],
            // 2 March, local: midnight on the dot, and later.
            vec![scored(
                "度小满",
                utc(2026, 3, 1, 16, 0, 0),
                true,
                0.7,
                "tieba",
            )],
            vec![scored(
                "度小满",
                utc(2026, 3, 2, 1, 0, 0),
                true,
                1.3,
                "weibo",
            )],
            vec![scored(
                "度小满",
                utc(2026, 3, 2, 2, 0, 0),
                false,
                0.0,
                "weibo",
            )],
            vec![scored(
                "招联",
                utc(2026, 3, 2, 3, 0, 0),
                true,
                2.25,
                "tieba",
            )],
        ];
        for (n, hits) in burst.iter().enumerate() {
            assert!(store.record_post(&post(n), hits, hits[0].at).unwrap());
        }
        // The same post again records nothing, so it counts nothing.
        assert!(!store
            .record_post(&post(0), &burst[0], burst[0][0].at)
            .unwrap());
    }

    #[test]
    fn daily_figures_count_hits_by_local_day_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.time_zone(), chrono_tz::Asia::Shanghai);
            record_burst(&store);
            let days = store
                .daily("度小满", date(2026, 3, 1), date(2026, 3, 3))
                .unwrap();
            assert_eq!(days.len(), 3, "every day in the range");
            let (d1, f1) = days[0];
            assert_eq!(d1, date(2026, 3, 1));
            assert_eq!((f1.mentions, f1.negative, f1.incidents_opened), (3, 2, 0));
            assert!(close(f1.harm, 0.3), "{}", f1.harm);
            assert!(close(f1.complaint_rate().unwrap(), 2.0 / 3.0));
            let (d2, f2) = days[1];
            assert_eq!(d2, date(2026, 3, 2));
            assert_eq!((f2.mentions, f2.negative), (3, 2));
            assert!(close(f2.harm, 2.0), "{}", f2.harm);
            assert_eq!(days[2], (date(2026, 3, 3), DailyFigures::default()));
            assert_eq!(days[2].1.complaint_rate(), None);
            let zl = store
                .daily("招联", date(2026, 3, 2), date(2026, 3, 2))
                .unwrap();
            assert_eq!((zl[0].1.mentions, zl[0].1.negative), (1, 1));
            assert!(store
                .daily("招联", date(2026, 3, 2), date(2026, 3, 1))
                .unwrap()
                .is_empty());
            let stored = assert_daily_agrees(&store);
            store.db.flush().unwrap();
            stored
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(assert_daily_agrees(&store), first, "unchanged by reopening");
    }

    #[test]
    fn harm_sums_agree_with_a_recount_over_many_hits() {
        let store = Store::temporary().unwrap();
        let t0 = utc(2026, 3, 1, 0, 0, 0);
        for i in 0..200u32 {
            // Severities that do not add exactly in binary, recorded out of time order.
            let at = t0 + Duration::minutes(i64::from((i * 37) % 200) * 7);
            let h = scored("度小满", at, i % 3 == 0, f64::from(i) * 0.013 + 0.1, "s");
            store.record_post(&[format!("g:{i}")], &[h], at).unwrap();
        }
        let stored = assert_daily_agrees(&store);
        let total: u64 = stored.values().map(|f| f.mentions).sum();
        assert_eq!(total, 200);
        assert!(stored.len() > 1, "spread over several days");
    }

    #[test]
    fn a_non_finite_severity_adds_no_harm() {
        let store = Store::temporary().unwrap();
        let at = utc(2026, 3, 1, 4, 0, 0);
        store
            .insert_hit(&scored("度小满", at, true, f64::NAN, "s"))
            .unwrap();
        store
            .insert_hit(&scored("度小满", at, true, 1.5, "s"))
            .unwrap();
        let f = store
            .daily("度小满", date(2026, 3, 1), date(2026, 3, 1))
            .unwrap()[0]
            .1;
        assert_eq!((f.mentions, f.negative, f.harm), (2, 2, 1.5));
    }

    #[test]
    fn a_created_incident_counts_on_its_local_day() {
        let store = Store::temporary().unwrap();
        // 16:30 UTC on 1 March is 00:30 on 2 March in Shanghai.
        store
            .create_incident(&incident(1, "度小满", utc(2026, 3, 1, 16, 30, 0)))
            .unwrap();
        let days = store
            .daily("度小满", date(2026, 3, 1), date(2026, 3, 2))
            .unwrap();
        assert_eq!(days[0].1.incidents_opened, 0);
        assert_eq!(days[1].1.incidents_opened, 1);
        assert_eq!(store.open_incidents().unwrap().len(), 1);
        let again = store
            .create_incident(&incident(1, "度小满", utc(2026, 3, 1, 17, 0, 0)))
            .unwrap_err();
        assert!(format!("{again:#}").contains("already exists"), "{again:#}");
        assert_eq!(
            store
                .daily("度小满", date(2026, 3, 2), date(2026, 3, 2))
                .unwrap()[0]
                .1
                .incidents_opened,
            1,
            "a refused duplicate counts nothing"
        );
        store
            .create_incident(&incident(2, "度小满", utc(2026, 3, 2, 1, 0, 0)))
            .unwrap();
        assert_daily_agrees(&store);
    }

    #[test]
    fn incidents_filter_by_state_newest_first() {
        let store = Store::temporary().unwrap();
        for id in 1..=3 {
            store
                .create_incident(&incident(id, "度小满", utc(2026, 3, 1, id as u32, 0, 0)))
                .unwrap();
        }
        store
            .update_incident(2, |old| {
                let mut new = old.clone();
                new.state = IncidentState::Resolved;
                Ok::<_, ()>(new)
            })
            .unwrap();
        let ids = |state| -> Vec<u64> {
            store
                .incidents_filtered(state)
                .unwrap()
                .iter()
                .map(|i| i.id)
                .collect()
        };
        assert_eq!(ids(None), vec![3, 2, 1]);
        assert_eq!(ids(Some(IncidentState::Triggered)), vec![3, 1]);
        assert_eq!(ids(Some(IncidentState::Resolved)), vec![2]);
        assert!(ids(Some(IncidentState::Acknowledged)).is_empty());
    }

    #[test]
    fn a_store_from_before_the_read_model_is_rebuilt_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let store = Store::open(dir.path()).unwrap();
            record_burst(&store);
            store
                .create_incident(&incident(1, "招联", utc(2026, 3, 1, 20, 0, 0)))
                .unwrap();
            let before = assert_daily_agrees(&store);
            // What an older yuqing left: hits and incidents, no derived trees, no meta for them.
            store.daily.clear().unwrap();
            store.by_time.clear().unwrap();
            store.meta.remove(KEY_INDEX_VERSION).unwrap();
            store.meta.remove(KEY_DAILY_ZONE).unwrap();
            store.db.flush().unwrap();
            before
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(assert_daily_agrees(&store), before);
        assert_eq!(store.by_time.len(), store.hits.len());
        let page = store.hits_page(&HitQuery::default()).unwrap();
        assert_eq!(
            page.hits.len(),
            8,
            "every hit is listed again across brands"
        );
        assert_eq!(
            store.meta_u64(KEY_INDEX_VERSION).unwrap(),
            Some(INDEX_VERSION)
        );
        assert_eq!(
            store.meta.get(KEY_DAILY_ZONE).unwrap().as_deref(),
            Some(&b"Asia/Shanghai"[..])
        );
    }

    #[test]
    fn opening_in_another_zone_recounts_the_days() {
        let dir = tempfile::tempdir().unwrap();
        let shanghai = {
            let store = Store::open(dir.path()).unwrap();
            record_burst(&store);
            store.db.flush().unwrap();
            assert_daily_agrees(&store)
        };
        let utc_days = {
            let store = Store::open_in_zone(dir.path(), chrono_tz::UTC).unwrap();
            assert_eq!(store.time_zone(), chrono_tz::UTC);
            let days = assert_daily_agrees(&store);
            // In UTC, everything before 2 March 00:00 UTC is 1 March: 4 mentions of 度小满.
            let key = ("度小满".to_string(), date(2026, 3, 1));
            assert_eq!(days[&key].mentions, 4);
            assert_eq!(shanghai[&key].mentions, 3);
            // A hit recorded now is counted in the new zone too.
            store
                .insert_hit(&scored("度小满", utc(2026, 3, 1, 23, 0, 0), true, 1.0, "s"))
                .unwrap();
            assert_eq!(store.daily_all().unwrap()[&key].mentions, 5);
            store.db.flush().unwrap();
            assert_daily_agrees(&store)
        };
        assert_ne!(shanghai, utc_days);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.time_zone(), chrono_tz::Asia::Shanghai);
        let back = assert_daily_agrees(&store);
        assert_eq!(
            back[&("度小满".to_string(), date(2026, 3, 2))].mentions,
            4,
            "the hit at 23:00 UTC is on 2 March in Shanghai"
        );
    }

    /// Ten hits a minute apart (two at the same minute), two brands, two sources.
    fn listing_store() -> (Store, Vec<Hit>) {
        let store = Store::temporary().unwrap();
        let t0 = utc(2026, 3, 1, 8, 0, 0);
        let mut hits = Vec::new();
        for i in 0..10i64 {
            let brand = if i % 3 == 0 { "招联" } else { "度小满" };
            let source = if i % 2 == 0 { "weibo" } else { "tieba" };
            let minute = if i == 5 { 4 } else { i };
            let mut h = scored(
                brand,
                t0 + Duration::minutes(minute),
                i % 4 != 1,
                1.0,
                source,
            );
            h.title = format!("hit {i}");
            store
                .record_post(&[format!("g:{i}")], &[h.clone()], t0)
                .unwrap();
            hits.push(h);
        }
        (store, hits)
    }

    fn titles(page: &HitPage) -> Vec<&str> {
        page.hits.iter().map(|h| h.hit.title.as_str()).collect()
    }

    /// The titles `filter` keeps, newest first (ties: later recorded first).
    fn expected(hits: &[Hit], filter: impl Fn(&Hit) -> bool) -> Vec<String> {
        let mut kept: Vec<(usize, &Hit)> =
            hits.iter().enumerate().filter(|(_, h)| filter(h)).collect();
        kept.sort_by_key(|(i, h)| std::cmp::Reverse((h.at, *i)));
        kept.into_iter().map(|(_, h)| h.title.clone()).collect()
    }

    #[test]
    fn hits_are_listed_newest_first_and_filtered() {
        let (store, hits) = listing_store();
        let all = store.hits_page(&HitQuery::default()).unwrap();
        assert_eq!(titles(&all), expected(&hits, |_| true));
        assert_eq!(all.hits.len(), 10);
        assert_eq!(all.next_cursor, None);
        assert!(all.hits.windows(2).all(|w| w[0].hit.at >= w[1].hit.at));

        let query = |f: &dyn Fn(&mut HitQuery)| {
            let mut q = HitQuery::default();
            f(&mut q);
            titles(&store.hits_page(&q).unwrap())
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            query(&|q| q.brand = Some("度小满".into())),
            expected(&hits, |h| h.brand == "度小满")
        );
        assert_eq!(
            query(&|q| {
                q.brand = Some("度小满".into());
                q.negative = Some(true);
            }),
            expected(&hits, |h| h.brand == "度小满" && h.negative)
        );
        assert_eq!(
            query(&|q| {
                q.brand = Some("度小满".into());
                q.negative = Some(false);
            }),
            expected(&hits, |h| h.brand == "度小满" && !h.negative)
        );
        assert_eq!(
            query(&|q| q.negative = Some(true)),
            expected(&hits, |h| h.negative)
        );
        assert_eq!(
            query(&|q| q.negative = Some(false)),
            expected(&hits, |h| !h.negative)
        );
        assert_eq!(
            query(&|q| q.source = Some("tieba".into())),
            expected(&hits, |h| h.source == "tieba")
        );
        let (since, until) = (utc(2026, 3, 1, 8, 2, 0), utc(2026, 3, 1, 8, 6, 0));
        let in_window = |h: &Hit| since <= h.at && h.at < until;
        assert_eq!(
            query(&|q| {
                q.since = Some(since);
                q.until = Some(until);
            }),
            expected(&hits, in_window)
        );
        assert_eq!(
            query(&|q| {
                q.brand = Some("度小满".into());
                q.negative = Some(true);
                q.since = Some(since);
                q.until = Some(until);
                q.source = Some("weibo".into());
            }),
            expected(&hits, |h| in_window(h)
                && h.brand == "度小满"
                && h.negative
                && h.source == "weibo")
        );
        assert!(
            query(&|q| q.brand = Some("度小".into())).is_empty(),
            "no prefix matches"
        );
        assert!(query(&|q| {
            q.since = Some(until);
            q.until = Some(since);
        })
        .is_empty());
        // Ids are stable: the same hit has the same id whichever way it is listed.
        let by_brand = store
            .hits_page(&HitQuery {
                brand: Some("招联".into()),
                ..HitQuery::default()
            })
            .unwrap();
        for h in &by_brand.hits {
            assert!(all.hits.contains(h));
        }
    }

    #[test]
    fn pages_visit_every_matching_hit_once() {
        let (store, hits) = listing_store();
        let filters: [(Option<&str>, Option<bool>, Option<&str>); 5] = [
            (None, None, None),
            (Some("度小满"), None, None),
            (Some("度小满"), Some(true), None),
            (None, Some(true), None),
            (None, None, Some("weibo")),
        ];
        for (brand, negative, source) in filters {
            let mut query = HitQuery {
                brand: brand.map(String::from),
                negative,
                source: source.map(String::from),
                limit: 3,
                ..HitQuery::default()
            };
            let mut seen: Vec<String> = Vec::new();
            let mut ids = std::collections::HashSet::new();
            let mut pages = 0;
            loop {
                let page = store.hits_page(&query).unwrap();
                pages += 1;
                assert!(page.hits.len() <= 3);
                for h in &page.hits {
                    assert!(ids.insert(h.id.clone()), "{} listed twice", h.hit.title);
                    seen.push(h.hit.title.clone());
                }
                match page.next_cursor {
                    Some(c) => query.cursor = Some(c),
                    None => break,
                }
                assert!(pages < 10, "pagination ends");
            }
            let want = expected(&hits, |h| {
                brand.is_none_or(|b| h.brand == b)
                    && negative.is_none_or(|n| h.negative == n)
                    && source.is_none_or(|s| h.source == s)
            });
            assert_eq!(seen, want, "{brand:?} {negative:?} {source:?}");
            assert_eq!(pages, want.len().div_ceil(3).max(1), "no empty last page");
        }
    }

    #[test]
    fn a_malformed_cursor_is_an_error() {
        let (store, _) = listing_store();
        for bad in ["zz", "abc", "", "00ff", &"g".repeat(32), &"0".repeat(34)] {
            let err = store
                .hits_page(&HitQuery {
                    cursor: Some(bad.to_string()),
                    ..HitQuery::default()
                })
                .unwrap_err();
            assert!(
                err.downcast_ref::<InvalidCursor>().is_some(),
                "{bad:?}: {err:#}"
            );
            assert_eq!(err.to_string(), "invalid cursor");
        }
        // A well-formed cursor before every hit just ends the listing.
        let page = store
            .hits_page(&HitQuery {
                cursor: Some("0".repeat(32)),
                ..HitQuery::default()
            })
            .unwrap();
        assert!(page.hits.is_empty() && page.next_cursor.is_none());
    }

    #[test]
    fn the_page_size_is_clamped() {
        let store = Store::temporary().unwrap();
        let t0 = utc(2026, 3, 1, 0, 0, 0);
        let hits: Vec<Hit> = (0..MAX_PAGE as i64 + 5)
            .map(|i| hit("度小满", t0 + Duration::seconds(i), i % 2 == 0))
            .collect();
        store.record_post(&[], &hits, t0).unwrap();
        let page = |limit| {
            store
                .hits_page(&HitQuery {
                    limit,
                    ..HitQuery::default()
                })
                .unwrap()
        };
        let one = page(0);
        assert_eq!(one.hits.len(), 1);
        assert_eq!(
            one.hits[0].hit.at,
            t0 + Duration::seconds(MAX_PAGE as i64 + 4)
        );
        assert!(one.next_cursor.is_some());
        let most = page(usize::MAX);
        assert_eq!(most.hits.len(), MAX_PAGE);
        assert!(most.next_cursor.is_some());
    }

    #[test]
    fn source_health_counts_polls_and_keeps_the_last_error() {
        let store = Store::temporary().unwrap();
        let t = |m| utc(2026, 3, 1, 8, m, 0);
        let h = store
            .record_poll(
                "weibo",
                t(0),
                PollResult::Fetched {
                    items: 10,
                    new_items: 4,
                },
            )
            .unwrap();
        assert_eq!((h.polls, h.last_new_items, h.total_new_items), (1, 4, 4));
        assert_eq!(h.last_success_at, Some(t(0)));
        let h = store
            .record_poll("weibo", t(1), PollResult::NotModified)
            .unwrap();
        assert_eq!(
            (h.not_modified, h.last_new_items, h.total_new_items),
            (1, 0, 4)
        );
        assert_eq!(h.last_success_at, Some(t(1)));
        for m in [2, 3] {
            store
                .record_poll(
                    "weibo",
                    t(m),
                    PollResult::Failed {
                        error: format!("HTTP 503 at {m}"),
                        class: crate::fetch::ErrorClass::HttpStatus,
                    },
                )
                .unwrap();
        }
        store
            .record_poll("tieba", t(2), PollResult::NotModified)
            .unwrap();
        let all = store.source_health().unwrap();
        assert_eq!(
            all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["tieba", "weibo"]
        );
        let h = &all[1].1;
        assert_eq!((h.consecutive_failures, h.errors, h.polls), (2, 2, 4));
        assert_eq!(h.last_error.as_deref(), Some("HTTP 503 at 3"));
        assert_eq!(h.last_error_at, Some(t(3)));
        assert_eq!(h.last_success_at, Some(t(1)));
        assert_eq!(h.last_poll_at, Some(t(3)));
        assert_eq!(h.failing_since, Some(t(2)), "the streak's first failure");
        assert_eq!(
            h.last_error_class,
            Some(crate::fetch::ErrorClass::HttpStatus)
        );
        assert_eq!((h.items_seen, h.last_new_item_at), (10, Some(t(0))));
        let h = store
            .record_poll(
                "weibo",
                t(4),
                PollResult::Fetched {
                    items: 10,
                    new_items: 1,
                },
            )
            .unwrap();
        assert_eq!(h.consecutive_failures, 0);
        assert_eq!(
            h.last_error.as_deref(),
            Some("HTTP 503 at 3"),
            "kept for the console"
        );
        assert_eq!(h.last_error_at, Some(t(3)));
        assert_eq!((h.polls, h.errors, h.total_new_items), (5, 2, 5));
        assert_eq!(store.source_health().unwrap()[1].1, h);
    }
}
