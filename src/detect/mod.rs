//! Spike detection: per brand, negative hits in the current window against the baseline rate.
//! Reads the store only; turning a signal into an incident is incident.rs's job.
//!
//! [`spike`] is the successor test: a pure function over a count series with a seasonal
//! baseline, overdispersion and several windows at once, run by `yuqing backtest`
//! ([`backtest`]); the daemon still uses [`Detector::check`] until it is switched over.

pub mod backtest;
pub mod spike;
mod tail;
pub mod watch;

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::config::DetectionConfig;
use crate::store::{Hit, Store};

/// Evidence that a brand is under fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub brand: String,
    pub window_count: u64,
    /// Average negative hits per window over the baseline period.
    pub baseline: f64,
    pub window: std::time::Duration,
    /// The most negative hits of the window, most negative first.
    pub top: Vec<Hit>,
}

#[derive(Clone)]
pub struct Detector {
    cfg: DetectionConfig,
}

impl Detector {
    pub fn new(cfg: DetectionConfig) -> Detector {
        Detector { cfg }
    }

    /// A signal when `brand`'s negative count in the window ending at `now` crosses the
    /// threshold against its baseline.
    pub fn check(&self, store: &Store, brand: &str, now: DateTime<Utc>) -> Option<Signal> {
        let window = to_chrono(self.cfg.window);
        // Hits at `now` itself belong to the window.
        let end = now + ChronoDuration::milliseconds(1);
        let window_start = end - window;
        let count = store.count_negative(brand, window_start, end);
        if count < self.cfg.min_negative {
            return None;
        }
        let baseline_start = window_start - (to_chrono(self.cfg.baseline_window) - window);
        let before = store.count_negative(brand, baseline_start, window_start);
        let windows_in_baseline = (self.cfg.baseline_window.as_secs_f64()
            - self.cfg.window.as_secs_f64())
            / self.cfg.window.as_secs_f64();
        let baseline = before as f64 / windows_in_baseline.max(1.0);
        if (count as f64) < self.cfg.spike_ratio * baseline {
            return None;
        }
        Some(Signal {
            brand: brand.to_string(),
            window_count: count,
            baseline,
            window: self.cfg.window,
            top: self.top_hits(store, brand, window_start, end),
        })
    }

    /// `brand`'s negative hits in the window ending at `now`, and its baseline per window.
    pub fn level(&self, store: &Store, brand: &str, now: DateTime<Utc>) -> (u64, f64) {
        let window = to_chrono(self.cfg.window);
        let end = now + ChronoDuration::milliseconds(1);
        let window_start = end - window;
        let count = store.count_negative(brand, window_start, end);
        let baseline_start = window_start - (to_chrono(self.cfg.baseline_window) - window);
        let before = store.count_negative(brand, baseline_start, window_start);
        let windows_in_baseline = (self.cfg.baseline_window.as_secs_f64()
            - self.cfg.window.as_secs_f64())
            / self.cfg.window.as_secs_f64();
        (count, before as f64 / windows_in_baseline.max(1.0))
    }

    /// Whether `brand` is calm: below 1.5× its baseline, or below the fewest hits that could
    /// open an incident at all (a brand with no baseline is calm once its window is quiet).
    pub fn is_calm(&self, store: &Store, brand: &str, now: DateTime<Utc>) -> bool {
        let (count, baseline) = self.level(store, brand, now);
        count < self.cfg.min_negative || (count as f64) < 1.5 * baseline
    }

    pub fn window(&self) -> std::time::Duration {
        self.cfg.window
    }

    pub fn top_hits(
        &self,
        store: &Store,
        brand: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<Hit> {
        let mut hits: Vec<Hit> = store
            .hits_between(brand, from, to)
            .into_iter()
            .filter(|h| h.negative)
            .collect();
        hits.sort_by(|a, b| {
            b.severity
                .total_cmp(&a.severity)
                .then(a.score.total_cmp(&b.score))
        });
        hits.truncate(self.cfg.top_posts);
        hits
    }
}

fn to_chrono(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> DetectionConfig {
        DetectionConfig {
            window: Duration::from_secs(600),
            baseline_window: Duration::from_secs(6600), // ten windows of baseline
            min_negative: 3,
            spike_ratio: 3.0,
            top_posts: 2,
            spike: Default::default(),
        }
    }

    fn put(store: &Store, at: DateTime<Utc>, negative: bool, score: f64) {
        store
            .insert_hit(&Hit {
                brand: "b".into(),
                source: "s".into(),
                url: None,
                title: format!("{score}"),
                snippet: String::new(),
                at,
                fetched_at: at,
                score,
                negative,
                terms: vec![],
                severity: if negative { -score } else { 0.0 },
                crisis: vec![],
                amplification: 0,
                reposted_by: vec![],
            })
            .unwrap();
    }

    #[test]
    fn quiet_brand_gives_no_signal() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        put(&store, now, true, -2.0);
        put(&store, now, true, -2.0);
        put(&store, now, false, 1.0);
        assert!(Detector::new(cfg()).check(&store, "b", now).is_none());
    }

    #[test]
    fn burst_over_empty_baseline_signals_with_top_posts() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        for s in [-1.0, -5.0, -3.0] {
            put(&store, now - ChronoDuration::seconds(30), true, s);
        }
        let sig = Detector::new(cfg()).check(&store, "b", now).unwrap();
        assert_eq!(sig.window_count, 3);
        assert_eq!(sig.baseline, 0.0);
        assert_eq!(sig.top.len(), 2);
        assert_eq!(sig.top[0].score, -5.0);
    }

    #[test]
    fn a_noisy_baseline_raises_the_bar() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        // Two negatives per window for the last ten windows: baseline 2, bar 6.
        for w in 1..=10 {
            for _ in 0..2 {
                put(
                    &store,
                    now - ChronoDuration::seconds(600 * w + 30),
                    true,
                    -1.0,
                );
            }
        }
        for _ in 0..5 {
            put(&store, now, true, -1.0);
        }
        let d = Detector::new(cfg());
        assert!(d.check(&store, "b", now).is_none(), "5 < 3 x 2");
        put(&store, now, true, -1.0);
        let sig = d.check(&store, "b", now).unwrap();
        assert_eq!(sig.window_count, 6);
        assert!((sig.baseline - 2.0).abs() < 1e-9, "{}", sig.baseline);
    }

    #[test]
    fn old_hits_fall_out_of_the_window() {
        let store = Store::temporary().unwrap();
        let now = Utc::now();
        for _ in 0..5 {
            put(&store, now - ChronoDuration::seconds(700), true, -1.0);
        }
        assert!(Detector::new(cfg()).check(&store, "b", now).is_none());
    }
}
