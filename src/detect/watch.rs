//! The spike test in the daemon: one [`SpikeState`] per brand, fed from the store with each
//! brand's negative-hit count per bin as bins close, on the daemon's timer (and on replay's
//! simulated clock), so the daemon and `yuqing backtest` run the same code.
//!
//! A brand's series starts at its first stored hit (at most [`MAX_HISTORY`] back): the first
//! call replays that history so the seasonal baseline is learned before live bins arrive, and
//! only alarms of the bins closing now are returned. While a brand is inside the spike test's
//! warm-up, the simple threshold of `[detection]` (`min_negative`, `spike_ratio`) guards it
//! instead; see [`SpikeWatch::is_warm`].
//!
//! Values are counts of negative hits, each weighted by its amplification
//! (`Hit::amplification_factor`, `1 + ln(1 + reposts)`): a post nobody reposted counts 1, so
//! `min_count` keeps meaning "posts", and a post reposted ten times counts 3.4. They are not
//! severity sums, whose scale (negativity × harm × source weight) would change what the
//! thresholds mean.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use super::spike::{Alarm, SpikeConfig, SpikeState};
use crate::store::Store;

/// How far back the series of a brand reaches when the daemon starts.
pub const MAX_HISTORY: ChronoDuration = ChronoDuration::days(35);

pub struct SpikeWatch {
    cfg: SpikeConfig,
    bin: ChronoDuration,
    brands: BTreeMap<String, BrandSeries>,
    /// The first `advance`'s "now": bins that closed before it are history being learned.
    live_from: Option<DateTime<Utc>>,
}

struct BrandSeries {
    state: SpikeState,
    /// Start of the next bin to close; `None` until the brand has a hit.
    next: Option<DateTime<Utc>>,
}

impl SpikeWatch {
    pub fn new(cfg: SpikeConfig, brands: &[String]) -> SpikeWatch {
        let bin = ChronoDuration::from_std(cfg.bin)
            .unwrap_or(ChronoDuration::minutes(5))
            .max(ChronoDuration::seconds(1));
        SpikeWatch {
            brands: brands
                .iter()
                .map(|b| {
                    (
                        b.clone(),
                        BrandSeries {
                            state: SpikeState::new(cfg.clone()),
                            next: None,
                        },
                    )
                })
                .collect(),
            bin,
            cfg,
            live_from: None,
        }
    }

    /// Whether `brand`'s spike test is past its warm-up at `now`.
    pub fn is_warm(&self, brand: &str, now: DateTime<Utc>) -> bool {
        self.brands
            .get(brand)
            .is_some_and(|series| series.state.is_warm(now))
    }

    /// Feeds every bin that has closed by `now` and returns the alarms of bins that closed
    /// since the first call (the history fed on the first call is learned, not news).
    pub fn advance(&mut self, store: &Store, now: DateTime<Utc>) -> Vec<(String, Alarm)> {
        let bin = self.bin;
        let live_from = *self.live_from.get_or_insert(now - bin);
        let mut out = Vec::new();
        for (brand, series) in &mut self.brands {
            if series.next.is_none() {
                let Some(first) = store.first_hit_at(brand) else {
                    continue;
                };
                let first = first.max(now - MAX_HISTORY);
                // On the bin grid, so bins line up whatever the first hit's time.
                let secs = bin.num_seconds().max(1);
                let aligned = first.timestamp().div_euclid(secs) * secs;
                series.next = DateTime::from_timestamp(aligned, 0);
            }
            while let Some(start) = series.next.filter(|s| *s + bin <= now) {
                let count = store.weighted_negative(brand, start, start + bin);
                let mut alarms = series.state.push(start, count);
                alarms.extend(series.state.flush());
                for alarm in alarms {
                    if alarm.at > live_from {
                        out.push((brand.clone(), alarm));
                    }
                }
                series.next = Some(start + bin);
            }
        }
        out
    }

    pub fn config(&self) -> &SpikeConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Hit;
    use chrono::TimeZone;
    use std::time::Duration;

    fn hit(at: DateTime<Utc>) -> Hit {
        Hit {
            brand: "b".into(),
            source: "s".into(),
            url: None,
            title: format!("{at}"),
            snippet: String::new(),
            at,
            fetched_at: at,
            score: -2.0,
            negative: true,
            terms: vec![],
            severity: 2.0,
            crisis: vec![],
            amplification: 0,
            reposted_by: vec![],
        }
    }

    #[test]
    fn history_warms_the_test_and_a_fresh_burst_alarms() {
        let store = Store::temporary().unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        // A week of a couple of complaints an hour, then a burst of 40 in ten minutes.
        for h in 0..24 * 7 {
            for m in [7, 41] {
                store
                    .insert_hit(&hit(t0
                        + ChronoDuration::hours(h)
                        + ChronoDuration::minutes(m)))
                    .unwrap();
            }
        }
        let burst = t0 + ChronoDuration::days(7) + ChronoDuration::hours(3);
        for i in 0..40 {
            store
                .insert_hit(&hit(burst + ChronoDuration::seconds(i * 15)))
                .unwrap();
        }
        let cfg = SpikeConfig {
            warmup: Duration::from_secs(3 * 86_400),
            ..SpikeConfig::default()
        };
        let mut watch = SpikeWatch::new(cfg, &["b".to_string(), "quiet".to_string()]);
        assert!(!watch.is_warm("b", burst));
        // Catching up on the week before the burst: history, no news.
        assert!(watch
            .advance(&store, burst - ChronoDuration::minutes(1))
            .is_empty());
        assert!(watch.is_warm("b", burst));
        assert!(!watch.is_warm("quiet", burst), "no hits, no series");
        let alarms = watch.advance(&store, burst + ChronoDuration::minutes(15));
        assert!(
            alarms.iter().any(|(b, a)| b == "b" && a.count >= 20.0),
            "{alarms:?}"
        );
        // Nothing is fed twice.
        assert!(watch
            .advance(&store, burst + ChronoDuration::minutes(15))
            .is_empty());
    }
}
