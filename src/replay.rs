//! `yuqing export` and `yuqing replay`: recorded posts out of the store, and back through
//! analysis, detection and the incident lifecycle on a simulated clock.
//!
//! The NDJSON shape, one post a line: `{"source": "...", "title": "...", "text": "...",
//! "url": "..." | null, "published": "RFC 3339"}` (export adds `"brands"`, which replay ignores).
//! Replay judges every post again with the current analyzer and config, so it answers "what
//! would this config have paged on?" as well as reproducing a live run.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;

use crate::analyze::Analyzer;
use crate::config::Config;
use crate::detect::watch::SpikeWatch;
use crate::detect::Detector;
use crate::incident::{Incidents, Notice};
use crate::post::Post;
use crate::store::{Hit, RecordedPost, Store};

/// Writes the kept posts as NDJSON; returns how many.
pub fn export(
    store: &Store,
    since: Option<DateTime<Utc>>,
    brand: Option<&str>,
    out: &mut impl Write,
) -> Result<usize> {
    let posts = store.recorded_posts(since, brand)?;
    for post in &posts {
        serde_json::to_writer(&mut *out, post)?;
        out.write_all(b"\n")?;
    }
    Ok(posts.len())
}

/// Reads NDJSON posts; a malformed line is an error that names it.
pub fn read_posts(input: impl BufRead, what: &str) -> Result<Vec<RecordedPost>> {
    let mut posts = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading {what}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let post: RecordedPost = serde_json::from_str(&line).with_context(|| {
            format!(
                "{what}:{}: not a post (want {{\"source\", \"title\", \"text\", \"url\", \"published\"}})",
                i + 1
            )
        })?;
        posts.push(post);
    }
    Ok(posts)
}

/// One thing that would have happened to an incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `opened`, `reopened`, `escalated`, `auto_resolved`, `reminder` or `ack_expired`.
    pub event: &'static str,
    pub at: DateTime<Utc>,
    pub incident: u64,
    pub brand: String,
    pub window_count: u64,
    pub hit_count: u64,
    pub because: String,
    pub top_posts: Vec<String>,
}

impl Event {
    fn from_notice(notice: &Notice, at: DateTime<Utc>) -> Event {
        let i = notice.incident();
        let event = match notice {
            Notice::Opened { .. } if i.history.len() > 1 => "reopened",
            Notice::Opened { .. } => "opened",
            Notice::Escalated { .. } => "escalated",
            Notice::AutoResolved { .. } => "auto_resolved",
            Notice::Reminder { .. } => "reminder",
            Notice::AckExpired { .. } => "ack_expired",
            Notice::Changed { incident, from, .. } => {
                crate::notify::changed_verb(*from, incident.state)
            }
        };
        Event {
            event,
            at,
            incident: i.id,
            brand: i.brand.clone(),
            window_count: i.window_count,
            hit_count: i.hit_count,
            because: i.opened_because.clone(),
            top_posts: i.top_posts.iter().map(|p| p.title.clone()).collect(),
        }
    }
}

/// How often the simulated clock runs the timed lifecycle between posts.
const TICK: ChronoDuration = ChronoDuration::minutes(1);

/// Feeds `posts` (in publication order) through analysis, dedupe, the store, detection and the
/// incident lifecycle, with "now" at each post's publication time and the timed checks run
/// every simulated minute, then on until the last incident could have resolved. Nobody acks.
pub async fn replay(
    config: &Config,
    analyzer: &Analyzer,
    posts: Vec<RecordedPost>,
) -> Result<Vec<Event>> {
    let store = Store::temporary_in_zone(config.admin.time_zone)?;
    let incidents = Incidents::new(
        store.clone(),
        config.telegram.tiers.clone(),
        config.detection.top_posts,
    )
    .with_lifecycle(config.incidents.clone())
    .with_repeat(config.telegram.repeat);
    let detector = Detector::new(config.detection.clone());
    let brand_names: Vec<String> = config.brands.iter().map(|b| b.name.clone()).collect();
    let mut watch = SpikeWatch::new(config.detection.spike.clone(), &brand_names);
    let mut posts = posts;
    // Stable: posts published at the same moment keep their order in the file.
    posts.sort_by_key(|p| p.published);
    let mut events = Vec::new();
    let mut clock: Option<DateTime<Utc>> = None;
    let ticks = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let mut at = from + TICK;
        std::iter::from_fn(move || {
            (at < to).then(|| {
                let t = at;
                at += TICK;
                t
            })
        })
    };
    // Posts arrive the way polls hand them over: everything published within one simulated
    // minute is recorded first, then detection looks at it once, as the daemon does per poll.
    let minute = |t: DateTime<Utc>| t.timestamp().div_euclid(TICK.num_seconds());
    let mut batches: Vec<Vec<RecordedPost>> = Vec::new();
    for post in posts {
        match batches.last_mut() {
            Some(batch) if minute(batch[0].published) == minute(post.published) => batch.push(post),
            _ => batches.push(vec![post]),
        }
    }
    for batch in batches {
        let now = batch.last().expect("batches are never empty").published;
        if let Some(previous) = clock {
            for at in ticks(previous, now) {
                for notice in timed(&incidents, &store, &detector, &mut watch, at).await? {
                    events.push(Event::from_notice(&notice, at));
                }
            }
        }
        clock = Some(now);
        let mut negatives: std::collections::BTreeMap<String, Vec<Hit>> = Default::default();
        for recorded in batch {
            let weight = config
                .sources
                .iter()
                .find(|s| s.name == recorded.source)
                .map_or(1.0, |s| s.weight);
            let post = Post {
                source: recorded.source.clone(),
                guid: None,
                url: recorded.url.clone(),
                title: recorded.title.clone(),
                body: recorded.text.clone(),
                published: Some(recorded.published),
                fetched_at: recorded.published,
                author: recorded.author.clone(),
            };
            let hits: Vec<Hit> = analyzer
                .analyze(&post.text())
                .iter()
                .map(|(brand, judgment)| {
                    Hit::new(
                        &post,
                        brand,
                        judgment.score,
                        judgment.negative,
                        judgment.terms(),
                        judgment.severity(weight, 0),
                    )
                    .with_crisis(judgment.crisis.clone())
                })
                .collect();
            let recorded = incidents.record(&crate::dedupe::keys(&post), &hits, None, now)?;
            if !recorded.fresh {
                continue;
            }
            for hit in hits.into_iter().filter(|h| h.negative) {
                if !recorded.attached.contains(&hit.brand) {
                    negatives.entry(hit.brand.clone()).or_default().push(hit);
                }
            }
        }
        for (brand, hits) in negatives {
            let use_threshold = !watch.is_warm(&brand, now);
            if let Some(notice) = incidents
                .on_negative_hits(&brand, &hits, &detector, use_threshold, now)
                .await?
            {
                events.push(Event::from_notice(&notice, now));
            }
        }
    }
    // Let the story end: run the clock on until every incident could have resolved itself.
    if let Some(last) = clock {
        let tail = config
            .detection
            .baseline_window
            .max(config.incidents.resolve_after)
            + config.detection.window;
        let end = last + ChronoDuration::from_std(tail).unwrap_or(ChronoDuration::days(2));
        for at in ticks(last, end) {
            for notice in timed(&incidents, &store, &detector, &mut watch, at).await? {
                events.push(Event::from_notice(&notice, at));
            }
            if store.open_incidents()?.is_empty() {
                break;
            }
        }
    }
    Ok(events)
}

/// What the daemon's timer does: the spike test on closed bins, then the timed lifecycle.
async fn timed(
    incidents: &Incidents,
    store: &Store,
    detector: &Detector,
    watch: &mut SpikeWatch,
    at: DateTime<Utc>,
) -> Result<Vec<Notice>> {
    let mut notices = Vec::new();
    for (brand, alarm) in watch.advance(store, at) {
        notices.extend(incidents.on_spike(&brand, &alarm, detector, at).await?);
    }
    notices.extend(incidents.tick(detector, at).await?);
    notices.extend(incidents.escalate_due(at).await?);
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_named() {
        let input = "{\"source\":\"a\",\"title\":\"t\",\"text\":\"x\",\"published\":\"2026-03-01T08:00:00Z\"}\n\nnot json\n";
        let err = read_posts(input.as_bytes(), "posts.ndjson").unwrap_err();
        assert!(format!("{err:#}").contains("posts.ndjson:3"), "{err:#}");
        let ok = read_posts(&input.as_bytes()[..input.find("\n\n").unwrap()], "p").unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].url, None);
        assert_eq!(
            ok[0].author, None,
            "exports from before authors were kept still read"
        );
    }

    #[test]
    fn the_author_is_kept_and_exported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let post = RecordedPost {
            source: "tieba".into(),
            title: "度小满催收".into(),
            text: "天天打电话".into(),
            url: Some("https://t.example/p/1".into()),
            author: Some("张三".into()),
            published: "2026-03-01T08:00:00Z".parse().unwrap(),
            brands: vec!["度小满".into()],
            fingerprint: None,
        };
        let fetched = Post {
            source: post.source.clone(),
            guid: None,
            url: post.url.clone(),
            title: post.title.clone(),
            body: post.text.clone(),
            published: Some(post.published),
            fetched_at: post.published,
            author: post.author.clone(),
        };
        let hit = Hit::new(&fetched, "度小满", -1.5, true, vec![], 1.5);
        store
            .record_post_with(&["k1".to_string()], &[hit], Some(&post), Utc::now())
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(export(&store, None, None, &mut out).unwrap(), 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"author\":\"张三\""), "{text}");
        let back = read_posts(text.as_bytes(), "export").unwrap();
        assert_eq!(back, vec![post]);
    }

    #[tokio::test]
    async fn a_burst_opens_and_later_resolves_on_the_simulated_clock() {
        use chrono::TimeZone;
        let config = Config::parse(
            "[detection]\nmin_negative = 3\n[[brands]]\nname = \"度小满\"\naliases = [\"有钱花\"]\n[[sources]]\nname = \"weibo\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1m\"\n",
            crate::config::Origin::Embedded,
        )
        .unwrap();
        let analyzer = Analyzer::from_config(&config.analysis, &config.brands).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
        let post = |i: i64, text: &str| RecordedPost {
            source: "weibo".into(),
            title: String::new(),
            text: text.into(),
            url: Some(format!("https://w.example/{i}")),
            author: None,
            published: t0 + ChronoDuration::minutes(i),
            brands: vec![],
            fingerprint: None,
        };
        let posts = vec![
            post(0, "度小满业务稳健增长，获得用户好评"),
            post(30, "度小满有钱花暴力催收，天天打电话骚扰我家人，太恶心了！"),
            post(31, "有钱花利息太高，砍头息，就是高利贷"),
            post(32, "度小满客服态度极差，投诉无门"),
        ];
        let events = replay(&config, &analyzer, posts).await.unwrap();
        let kinds: Vec<(&str, u64)> = events.iter().map(|e| (e.event, e.incident)).collect();
        assert_eq!(kinds.first(), Some(&("opened", 1)), "{events:#?}");
        assert_eq!(events[0].at, t0 + ChronoDuration::minutes(32));
        assert_eq!(events[0].window_count, 3);
        assert_eq!(
            events[0].because,
            "spike: 3 negative posts in 15m against a baseline of 0.0"
        );
        assert!(
            kinds.contains(&("auto_resolved", 1)),
            "the story ends on the simulated clock: {events:#?}"
        );
    }

    #[tokio::test]
    async fn after_warm_up_the_spike_test_opens_the_incident() {
        use chrono::TimeZone;
        let config = Config::parse(
            "[detection]\nmin_negative = 3\nwarmup = \"2days\"\n[incidents]\nresolve_after = \"0s\"\n[[brands]]\nname = \"度小满\"\n[[sources]]\nname = \"weibo\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1m\"\n",
            crate::config::Origin::Embedded,
        )
        .unwrap();
        let analyzer = Analyzer::from_config(&config.analysis, &config.brands).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let complaint = "度小满客服态度极差，投诉无门";
        let mut posts = Vec::new();
        // Three days of one complaint every two hours: the usual grumbling.
        for h in (0..72).step_by(2) {
            posts.push(RecordedPost {
                source: "weibo".into(),
                title: String::new(),
                text: format!("{complaint} {h}"),
                url: Some(format!("https://w.example/calm-{h}")),
                author: None,
                published: t0 + ChronoDuration::hours(h) + ChronoDuration::minutes(13),
                brands: vec![],
                fingerprint: None,
            });
        }
        // Then 30 complaints in ten minutes.
        let burst = t0 + ChronoDuration::hours(74);
        for i in 0..30 {
            posts.push(RecordedPost {
                source: "weibo".into(),
                title: String::new(),
                text: format!("度小满有钱花暴力催收，天天打电话骚扰我家人，太恶心了 {i}"),
                url: Some(format!("https://w.example/burst-{i}")),
                author: None,
                published: burst + ChronoDuration::seconds(i * 20),
                brands: vec![],
                fingerprint: None,
            });
        }
        let events = replay(&config, &analyzer, posts).await.unwrap();
        let opened: Vec<&Event> = events.iter().filter(|e| e.event == "opened").collect();
        assert_eq!(opened.len(), 1, "{events:#?}");
        assert!(
            opened[0]
                .because
                .contains("expected for the hour and weekday"),
            "the spike test, not the warm-up threshold, opened it: {:?}",
            opened[0]
        );
        assert!(opened[0].at >= burst, "{:?}", opened[0]);
    }
}
