//! Persistence: the only module that touches sled.
//!
//! Trees (all values JSON, so `sled` dumps stay readable during an incident review):
//! - `meta`: schema version, counters, the Telegram update offset.
//! - `seen`: dedupe keys (source GUIDs and URLs) → first-seen time.
//! - `hits`: `brand 0xFF time seq` → [`Hit`]. Keys sort by brand then time, so a detection
//!   window is one range scan.
//! - `negative`: the same keys for negative hits only, empty values, so counting negatives in a
//!   window never deserializes a hit.
//! - `incidents`: big-endian id → [`Incident`].
//! - `feedback`: staff verdicts on hits (false or true positive), id → [`Feedback`]; exported
//!   as labeled rows to retrain the scorer.
//! - `open`: ids of incidents not yet resolved, so periodic escalation checks never scan the
//!   whole history.
//!
//! Everything here is synchronous and short; callers on the async runtime may call it directly
//! except [`Store::flush`], which is async. Incident updates go through
//! [`Store::update_incident`], a compare-and-swap loop whose closure must be pure because it
//! may run more than once.

use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionError;
use sled::Transactional;

/// Bumped whenever a stored type changes incompatibly.
pub const SCHEMA_VERSION: u64 = 1;

const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_NEXT_INCIDENT: &[u8] = b"next_incident_id";
const BRAND_SEP: u8 = 0xFF; // never occurs in UTF-8

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
}

impl Hit {
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
}

/// A person's verdict on one hit: was it really negative about the brand?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub brand: String,
    pub text: String,
    pub url: Option<String>,
    /// True: it was negative about the brand (a true positive); false: a false positive.
    pub negative: bool,
    pub by: Actor,
    pub at: DateTime<Utc>,
}

/// A cheap-to-clone handle on the database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    seen: sled::Tree,
    hits: sled::Tree,
    negative: sled::Tree,
    incidents: sled::Tree,
    open: sled::Tree,
    feedback: sled::Tree,
}

/// How long [`Store::open`] waits for the folder's lock. A `Db` that was just dropped (a
/// restart within one process, as in the tests) releases its lock only when sled's background
/// flusher notices, within about half a second; a lock held by a live process is still reported,
/// after this wait.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn open_waiting_for_lock(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::open(path) {
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
    /// Opens (or creates) the database folder and checks its schema version.
    pub fn open(path: &Path) -> Result<Store> {
        let db = open_waiting_for_lock(path).with_context(|| {
            format!(
                "cannot open the database at {} (is another yuqing running on it?)",
                path.display()
            )
        })?;
        let store = Store::from_db(db)?;
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
        Ok(store)
    }

    /// A throwaway in-memory store for tests and one-shot commands.
    pub fn temporary() -> Result<Store> {
        Store::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Store> {
        Ok(Store {
            meta: db.open_tree("meta")?,
            seen: db.open_tree("seen")?,
            hits: db.open_tree("hits")?,
            negative: db.open_tree("negative")?,
            incidents: db.open_tree("incidents")?,
            open: db.open_tree("open")?,
            feedback: db.open_tree("feedback")?,
            db,
        })
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
    /// had been seen before, its hits. Returns whether the post was new. Because both happen or
    /// neither, a crash can lose neither a post (seen, hits missing) nor count one twice.
    pub fn record_post(&self, keys: &[String], hits: &[Hit], now: DateTime<Utc>) -> Result<bool> {
        let stamp = now.timestamp_millis().to_be_bytes();
        let encoded: Vec<(&Hit, Vec<u8>)> = hits
            .iter()
            .map(|h| Ok((h, serde_json::to_vec(h)?)))
            .collect::<Result<_>>()?;
        let fresh = (&self.seen, &self.hits, &self.negative)
            .transaction(|(seen, hits, negative)| {
                let mut fresh = true;
                for key in keys {
                    if seen.get(key.as_bytes())?.is_some() {
                        fresh = false;
                    } else {
                        seen.insert(key.as_bytes(), &stamp[..])?;
                    }
                }
                if fresh {
                    for (hit, value) in &encoded {
                        let key = hit_key(&hit.brand, hit.at, seen.generate_id()?);
                        hits.insert(&key[..], value.as_slice())?;
                        if hit.negative {
                            negative.insert(&key[..], &[][..])?;
                        }
                    }
                }
                Ok(fresh)
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(e) => anyhow::Error::new(e),
                TransactionError::Abort(()) => anyhow::anyhow!("recording a post was aborted"),
            })
            .context("recording a post")?;
        Ok(fresh)
    }

    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }

    // ---- hits -----------------------------------------------------------------------------

    pub fn insert_hit(&self, hit: &Hit) -> Result<()> {
        let seq = self.db.generate_id()?;
        let key = hit_key(&hit.brand, hit.at, seq);
        let value = serde_json::to_vec(hit)?;
        self.hits.insert(&key, value)?;
        if hit.negative {
            self.negative.insert(&key, &[])?;
        }
        Ok(())
    }

    /// Negative hits about `brand` with `from <= at < to`.
    pub fn count_negative(&self, brand: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        let (lo, hi) = (hit_key(brand, from, 0), hit_key(brand, to, 0));
        self.negative.range(lo..hi).count() as u64
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

    /// Atomically applies `change` to incident `id`. `change` returns `Err(reason)` to refuse
    /// (nothing is written), and may run several times under contention, so it must not do
    /// I/O. Returns the stored result, or `Ok(Err(reason))` when refused.
    pub fn update_incident<F>(&self, id: u64, change: F) -> Result<Option<Result<Incident, String>>>
    where
        F: Fn(&Incident) -> Result<Incident, String>,
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
    // Offset so that times before 1970 still sort correctly as unsigned bytes.
    let millis = (at.timestamp_millis() as i128 - i64::MIN as i128) as u64;
    key.extend_from_slice(&millis.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn u64_from(bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes.try_into().context("expected 8 bytes")?;
    Ok(u64::from_be_bytes(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

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
        }
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
}
