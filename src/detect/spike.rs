//! The spike test: a pure function over a count series (no store, no clock, no I/O), used by
//! the daemon as bins close and by `yuqing backtest` over a CSV — the same code for both.
//!
//! # The test
//!
//! Values are summed into bins of `bin` length on a grid anchored at the first value's time.
//! Each closed bin gets an *expected* value from a seasonal baseline (below). For every window
//! length W in `windows`, the sum of the last W/bin bins is compared with the sum of their
//! expectations: the window alarms when
//!
//! * P(X ≥ count | expected, dispersion) < `p_value`, X negative binomial (or Poisson with
//!   [`TailModel::Poisson`]),
//! * count ≥ `min_count`, and
//! * count ≥ `min_ratio` × expected.
//!
//! # Seasonal baseline
//!
//! Three exponentially weighted means of the per-bin value, each forgetting with
//! `baseline_half_life` of elapsed time: the overall level, one per hour of the day (24 slots)
//! and one per hour of the week (168 slots; hours are UTC). A slot's mean is only trusted as far
//! as it has observations: with `k = slot_prior / bin` pseudo-observations,
//!
//! ```text
//! hour_of_day = (w_hod · mean_hod + k · level) / (w_hod + k)
//! expected    = (w_how · mean_how + k · hour_of_day) / (w_how + k)
//! ```
//!
//! where `w` is a slot's (decayed) number of observations. So a new series starts on its overall
//! level, moves to the daily cycle within a day or two, and to the weekly one over weeks.
//!
//! A bin is learned from only once it has left the longest window, and not at all if it was part
//! of a window that was in alarm then: a crisis does not teach the baseline that crises are
//! normal. A window stays in alarm until its p-value rises to `rearm_p` again, and only re-alarms
//! after that. One alarm per episode: while any window is in alarm, another window that crosses
//! the threshold goes into alarm silently (its bins stay out of the baseline, but no second
//! alarm is reported).
//!
//! # Overdispersion
//!
//! Real counts vary far more than a Poisson: the day's news moves them all at once. Each window
//! length keeps its own negative-binomial dispersion α (Var = μ + α μ²), estimated by weighted
//! moments of its calm sums — exponentially weighted means of (count − expected)² − expected
//! and of expected², α their ratio — forgetting with `baseline_half_life`. A residual enters
//! the estimate clipped at `CLIP_Z` standard deviations, so one unalarmed burst cannot make
//! every later burst look ordinary.
//!
//! # Warm-up
//!
//! No alarm is raised until `warmup` has passed since the first value: the baseline and the
//! dispersion learn in that time. Alarms can also not be raised by a window that is not yet full.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, Timelike, Utc};

use super::tail;

/// Which distribution the window counts are tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailModel {
    /// Negative binomial with the estimated dispersion (the shipped default).
    #[default]
    NegativeBinomial,
    /// Poisson: variance = mean. For comparison; it alarms on every ordinary busy hour of a
    /// real series.
    Poisson,
}

impl TailModel {
    /// The name written in `sources.toml` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TailModel::NegativeBinomial => "negative_binomial",
            TailModel::Poisson => "poisson",
        }
    }

    pub fn from_name(name: &str) -> Option<TailModel> {
        match name {
            "negative_binomial" => Some(TailModel::NegativeBinomial),
            "poisson" => Some(TailModel::Poisson),
            _ => None,
        }
    }
}

/// The settings of the spike test. `Default` is what ships (the `[detection]` defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeConfig {
    /// Bin length: values are summed per bin, and the test runs as each bin closes.
    pub bin: Duration,
    /// The window lengths tested at once, each a multiple of `bin`: short ones catch bursts,
    /// long ones slow swells.
    pub windows: Vec<Duration>,
    /// Fewest counts in a window that may alarm.
    pub min_count: f64,
    /// A window's count must be at least `min_ratio` × its expected count.
    pub min_ratio: f64,
    /// The alarm threshold on P(X ≥ count).
    pub p_value: f64,
    /// After an alarm, the same window alarms again only once its p-value has come back up to
    /// `rearm_p` (and its bins stay out of the baseline until then).
    pub rearm_p: f64,
    /// No alarm before this much time has passed since the first value.
    pub warmup: Duration,
    /// Half-life of the baseline's and the dispersion's exponentially weighted means.
    pub baseline_half_life: Duration,
    /// How much history a seasonal slot needs before it is trusted as much as the level it
    /// falls back on (see the module docs): `slot_prior / bin` pseudo-observations.
    pub slot_prior: Duration,
    pub tail: TailModel,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            bin: Duration::from_secs(5 * 60),
            windows: vec![
                Duration::from_secs(15 * 60),
                Duration::from_secs(3600),
                Duration::from_secs(6 * 3600),
            ],
            min_count: 5.0,
            min_ratio: 2.0,
            p_value: 1e-8,
            rearm_p: 0.001,
            warmup: Duration::from_secs(3 * 86_400),
            baseline_half_life: Duration::from_secs(14 * 86_400),
            slot_prior: Duration::from_secs(6 * 3600),
            tail: TailModel::NegativeBinomial,
        }
    }
}

/// One window that crossed the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// The end of the bin that fired.
    pub at: DateTime<Utc>,
    pub window: Duration,
    pub count: f64,
    pub expected: f64,
    pub p: f64,
}

/// Runs the test over a whole series of `(time, value)` in time order (values at the same or
/// earlier times than the one before are summed into the open bin).
pub fn detect(series: &[(DateTime<Utc>, f64)], cfg: &SpikeConfig) -> Vec<Alarm> {
    let mut state = SpikeState::new(cfg.clone());
    let mut alarms = Vec::new();
    for &(at, value) in series {
        alarms.extend(state.push(at, value));
    }
    alarms.extend(state.flush());
    alarms
}

/// A residual enters the dispersion estimate clipped at this many standard deviations.
const CLIP_Z: f64 = 8.0;
/// The dispersion a window starts from, with the weight of this many of its own sums.
const PRIOR_ALPHA: f64 = 0.05;
const PRIOR_WEIGHT: f64 = 12.0;

/// The test run incrementally: feed values as they come, get alarms as bins close.
#[derive(Debug, Clone)]
pub struct SpikeState {
    cfg: SpikeConfig,
    bin: ChronoDuration,
    origin: Option<DateTime<Utc>>,
    /// The bin being filled: its index on the grid and its sum so far.
    open: Option<(i64, f64)>,
    /// Closed bins not yet learned from, newest last; as many as the longest window holds.
    recent: VecDeque<Bin>,
    baseline: Baseline,
    windows: Vec<Window>,
}

#[derive(Debug, Clone)]
struct Bin {
    start: DateTime<Utc>,
    value: f64,
    expected: f64,
    /// Part of a window in alarm: never learned from.
    alarmed: bool,
}

#[derive(Debug, Clone)]
struct Window {
    length: Duration,
    bins: usize,
    in_alarm: bool,
    dispersion: Ewma2,
}

impl SpikeState {
    /// A fresh state; `cfg` is assumed valid (config.rs checks it): bin > 0, windows multiples
    /// of it.
    pub fn new(cfg: SpikeConfig) -> SpikeState {
        let bin_secs = cfg.bin.as_secs_f64().max(1.0);
        let windows = cfg
            .windows
            .iter()
            .map(|&length| Window {
                length,
                bins: ((length.as_secs_f64() / bin_secs).round() as usize).max(1),
                in_alarm: false,
                dispersion: Ewma2::prior(PRIOR_ALPHA, PRIOR_WEIGHT),
            })
            .collect();
        SpikeState {
            bin: ChronoDuration::milliseconds((bin_secs * 1000.0) as i64),
            baseline: Baseline::new(&cfg),
            cfg,
            origin: None,
            open: None,
            recent: VecDeque::new(),
            windows,
        }
    }

    /// Adds `value` at time `at`. Returns the alarms of the bins this closes: every bin before
    /// the one `at` falls in (bins with no value count as 0).
    pub fn push(&mut self, at: DateTime<Utc>, value: f64) -> Vec<Alarm> {
        let origin = *self.origin.get_or_insert(at);
        let index = (at - origin)
            .num_milliseconds()
            .div_euclid(self.bin.num_milliseconds());
        let mut alarms = Vec::new();
        match self.open {
            Some((open, sum)) if index > open => {
                alarms.extend(self.close(open, sum));
                // Bins that saw no value, up to a day of them; a longer gap starts the windows
                // afresh rather than filling them with zeros.
                let bins_per_day = (86_400_000 / self.bin.num_milliseconds()).max(1);
                if index - open - 1 > bins_per_day {
                    self.recent.clear();
                } else {
                    for empty in open + 1..index {
                        alarms.extend(self.close(empty, 0.0));
                    }
                }
                self.open = Some((index, value));
            }
            Some((open, sum)) => self.open = Some((open, sum + value)),
            None => self.open = Some((index, value)),
        }
        alarms
    }

    /// Whether `warmup` has passed since the first value by `now`: from then on the test may
    /// alarm.
    pub fn is_warm(&self, now: DateTime<Utc>) -> bool {
        self.origin
            .is_some_and(|origin| (now - origin).to_std().unwrap_or_default() >= self.cfg.warmup)
    }

    /// Closes the open bin (at the end of a backtest, or when the daemon knows the bin is over).
    pub fn flush(&mut self) -> Vec<Alarm> {
        match self.open.take() {
            Some((index, sum)) => self.close(index, sum),
            None => Vec::new(),
        }
    }

    fn close(&mut self, index: i64, value: f64) -> Vec<Alarm> {
        let origin = self.origin.expect("a bin implies an origin");
        let start = origin + self.bin * (index as i32);
        let end = start + self.bin;
        let expected = self.baseline.expected(start);
        self.recent.push_back(Bin {
            start,
            value,
            expected,
            alarmed: false,
        });
        let longest = self.windows.iter().map(|w| w.bins).max().unwrap_or(1);
        while self.recent.len() > longest {
            let old = self.recent.pop_front().expect("longer than longest");
            if !old.alarmed {
                self.baseline.learn(old.start, old.value);
            }
        }
        let warm = (end - origin).to_std().unwrap_or_default() >= self.cfg.warmup;
        let half_life = self.cfg.baseline_half_life.as_secs_f64();
        let decay = 0.5f64.powf(self.cfg.bin.as_secs_f64() / half_life.max(1.0));
        let mut alarms = Vec::new();
        // One alarm per episode: while any window is in alarm, the others go into alarm
        // silently (their bins still stay out of the baseline).
        let mut episode = self.windows.iter().any(|w| w.in_alarm);
        for w in &mut self.windows {
            if self.recent.len() < w.bins {
                continue;
            }
            let last = self.recent.range(self.recent.len() - w.bins..);
            let (count, expected) =
                last.fold((0.0, 0.0), |(c, e), b| (c + b.value, e + b.expected));
            let alpha = w.dispersion.ratio().max(0.0);
            let p = match self.cfg.tail {
                TailModel::NegativeBinomial => tail::negbin_upper(count, expected, alpha),
                TailModel::Poisson => tail::poisson_upper(count, expected),
            };
            let fires = p < self.cfg.p_value
                && count >= self.cfg.min_count
                && count >= self.cfg.min_ratio * expected;
            if w.in_alarm && p >= self.cfg.rearm_p {
                w.in_alarm = false;
            }
            if fires && warm && !w.in_alarm {
                w.in_alarm = true;
                if episode {
                    continue_marking(&mut self.recent, w.bins);
                    continue;
                }
                alarms.push(Alarm {
                    at: end,
                    window: w.length,
                    count,
                    expected,
                    p,
                });
                episode = true;
            }
            if w.in_alarm {
                continue_marking(&mut self.recent, w.bins);
            } else if !fires && expected > 0.0 {
                // Calm sums teach the dispersion, clipped so one burst cannot swamp it.
                let sd = (expected + alpha * expected * expected).sqrt();
                let resid = (count - expected).clamp(-CLIP_Z * sd, CLIP_Z * sd);
                w.dispersion
                    .update(decay, resid * resid - expected, expected * expected);
            }
        }
        alarms
    }
}

/// Marks the last `bins` bins as part of an alarm.
fn continue_marking(recent: &mut VecDeque<Bin>, bins: usize) {
    let n = recent.len();
    for b in recent.range_mut(n - bins..) {
        b.alarmed = true;
    }
}

/// Two exponentially weighted sums whose ratio is the estimate.
#[derive(Debug, Clone)]
struct Ewma2 {
    num: f64,
    den: f64,
    /// The starting ratio and its weight in observations, until the first one arrives.
    prior: Option<(f64, f64)>,
}

impl Ewma2 {
    fn prior(ratio: f64, weight: f64) -> Ewma2 {
        Ewma2 {
            num: ratio,
            den: 1.0,
            prior: Some((ratio, weight)),
        }
    }

    fn update(&mut self, decay: f64, num: f64, den: f64) {
        // The prior is set in the data's units once the first observation shows them, so that
        // it weighs as much as `weight` observations like it.
        if let Some((ratio, weight)) = self.prior.take() {
            self.den = weight * den;
            self.num = ratio * self.den;
        }
        self.num = self.num * decay + num;
        self.den = self.den * decay + den;
    }

    fn ratio(&self) -> f64 {
        if self.den > 0.0 {
            self.num / self.den
        } else {
            0.0
        }
    }
}

/// The seasonal baseline of the module docs.
#[derive(Debug, Clone)]
struct Baseline {
    half_life_secs: f64,
    prior: f64,
    level: Slot,
    hour_of_day: Vec<Slot>,
    hour_of_week: Vec<Slot>,
}

/// An exponentially weighted mean that forgets with elapsed time.
#[derive(Debug, Clone, Default)]
struct Slot {
    sum: f64,
    weight: f64,
    last: Option<DateTime<Utc>>,
}

impl Slot {
    fn learn(&mut self, at: DateTime<Utc>, value: f64, half_life_secs: f64) {
        if let Some(last) = self.last {
            let dt = (at - last).num_milliseconds().max(0) as f64 / 1000.0;
            let decay = 0.5f64.powf(dt / half_life_secs);
            self.sum *= decay;
            self.weight *= decay;
        }
        self.sum += value;
        self.weight += 1.0;
        self.last = Some(at);
    }

    fn mean(&self) -> f64 {
        if self.weight > 0.0 {
            self.sum / self.weight
        } else {
            0.0
        }
    }

    /// This slot's mean, shrunk towards `fallback` with `prior` pseudo-observations.
    fn shrunk(&self, fallback: f64, prior: f64) -> f64 {
        (self.sum + prior * fallback) / (self.weight + prior)
    }
}

impl Baseline {
    fn new(cfg: &SpikeConfig) -> Baseline {
        Baseline {
            half_life_secs: cfg.baseline_half_life.as_secs_f64().max(1.0),
            prior: cfg.slot_prior.as_secs_f64() / cfg.bin.as_secs_f64().max(1.0),
            level: Slot::default(),
            hour_of_day: vec![Slot::default(); 24],
            hour_of_week: vec![Slot::default(); 168],
        }
    }

    fn slots(at: DateTime<Utc>) -> (usize, usize) {
        let hour = at.hour() as usize;
        let day = at.weekday().num_days_from_monday() as usize;
        (hour, day * 24 + hour)
    }

    fn expected(&self, at: DateTime<Utc>) -> f64 {
        let (hod, how) = Baseline::slots(at);
        let level = self.level.mean();
        let daily = self.hour_of_day[hod].shrunk(level, self.prior);
        self.hour_of_week[how].shrunk(daily, self.prior)
    }

    fn learn(&mut self, at: DateTime<Utc>, value: f64) {
        let (hod, how) = Baseline::slots(at);
        self.level.learn(at, value, self.half_life_secs);
        self.hour_of_day[hod].learn(at, value, self.half_life_secs);
        self.hour_of_week[how].learn(at, value, self.half_life_secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// splitmix64: a fixed-seed generator, so every test series is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn uniform(&mut self) -> f64 {
            ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// Poisson by counting exponential arrivals (means here stay small).
        fn poisson(&mut self, mean: f64) -> f64 {
            let mut n = 0.0;
            let mut t = -self.uniform().ln();
            while t < mean {
                n += 1.0;
                t -= self.uniform().ln();
            }
            n
        }

        /// Gamma with shape 2 and the given mean: the sum of two exponentials.
        fn gamma2(&mut self, mean: f64) -> f64 {
            -(mean / 2.0) * (self.uniform().ln() + self.uniform().ln())
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap()
    }

    const BIN: i64 = 300;
    const PER_DAY: usize = 288;

    /// `days` of 5-minute bins, the value of bin i given by `f(i, time)`.
    fn series(
        days: usize,
        mut f: impl FnMut(usize, DateTime<Utc>) -> f64,
    ) -> Vec<(DateTime<Utc>, f64)> {
        (0..days * PER_DAY)
            .map(|i| {
                let at = t0() + ChronoDuration::seconds(BIN * i as i64);
                (at, f(i, at))
            })
            .collect()
    }

    fn daily_mean(at: DateTime<Utc>) -> f64 {
        // Quiet nights, a strong midday peak: 2 per bin at night, 40 at 12:00–14:00.
        match at.hour() {
            12..=13 => 40.0,
            9..=11 | 14..=18 => 15.0,
            _ => 2.0,
        }
    }

    #[test]
    fn a_learned_daily_peak_does_not_fire_but_a_spike_on_it_does() {
        let mut rng = Rng(1);
        let calm = series(21, |_, at| rng.poisson(daily_mean(at)));
        let alarms = detect(&calm, &SpikeConfig::default());
        assert!(alarms.is_empty(), "{alarms:?}");

        let spike_at = 20 * PER_DAY + 12 * 12 + 6; // day 20, 12:30, on the peak
        let mut rng = Rng(1);
        let spiked = series(21, |i, at| {
            // Six times the peak's usual count for 15 minutes.
            let extra = if (spike_at..spike_at + 3).contains(&i) {
                200.0
            } else {
                0.0
            };
            rng.poisson(daily_mean(at)) + extra
        });
        let alarms = detect(&spiked, &SpikeConfig::default());
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        let start = spiked[spike_at].0;
        assert!(alarms[0].at > start && alarms[0].at <= start + ChronoDuration::minutes(15));
    }

    #[test]
    fn overdispersion_keeps_a_calm_noisy_series_quiet_where_poisson_fires() {
        // A gamma-Poisson mixture: mean 20, variance 20 + 0.5 × 20² = 220.
        let mut rng = Rng(7);
        let noisy = series(21, |_, _| {
            let mean = rng.gamma2(20.0);
            rng.poisson(mean)
        });
        let nb = detect(&noisy, &SpikeConfig::default());
        assert!(nb.is_empty(), "{nb:?}");
        let poisson = SpikeConfig {
            tail: TailModel::Poisson,
            ..SpikeConfig::default()
        };
        let fired = detect(&noisy, &poisson);
        assert!(fired.len() >= 5, "{fired:?}");
    }

    #[test]
    fn a_slow_swell_is_caught_by_the_long_window_only() {
        let cfg = SpikeConfig {
            windows: vec![Duration::from_secs(15 * 60), Duration::from_secs(6 * 3600)],
            ..SpikeConfig::default()
        };
        // 2 per bin, then 2.5 × that for six hours.
        let swell = 14 * PER_DAY + 3 * 12;
        let mut rng = Rng(3);
        let data = series(15, |i, _| {
            let mean = if (swell..swell + 72).contains(&i) {
                5.0
            } else {
                2.0
            };
            rng.poisson(mean)
        });
        let alarms = detect(&data, &cfg);
        assert!(!alarms.is_empty());
        assert!(
            alarms
                .iter()
                .all(|a| a.window == Duration::from_secs(6 * 3600)),
            "{alarms:?}"
        );
        assert!(alarms[0].at > data[swell].0);
    }

    #[test]
    fn a_quiet_brand_does_not_alarm_on_two() {
        // One hit every 15 bins: 0.2 expected per 15 minutes; then 2 at once.
        let at = 10 * PER_DAY + 7;
        let data = series(11, |i, _| {
            if i == at {
                2.0
            } else if i % 15 == 0 {
                1.0
            } else {
                0.0
            }
        });
        // A loose p-value, so that only min_count stands in the way.
        let loose = SpikeConfig {
            p_value: 0.05,
            ..SpikeConfig::default()
        };
        assert!(detect(&data, &loose).is_empty());
        let no_floor = SpikeConfig {
            min_count: 1.0,
            ..loose
        };
        let fired = detect(&data, &no_floor);
        assert!(!fired.is_empty(), "without min_count it would have fired");
        assert!(fired[0].expected < 0.5, "{fired:?}");
    }

    #[test]
    fn alarmed_bins_stay_out_of_the_baseline() {
        let spike = |start: usize| start..start + 12; // an hour of +100 per bin
        let first = 14 * PER_DAY + 2 * 12;
        let second = first + 12 * 12; // twelve hours later
        let make = |with_spikes: bool| {
            let mut rng = Rng(11);
            series(16, |i, _| {
                let extra =
                    if with_spikes && (spike(first).contains(&i) || spike(second).contains(&i)) {
                        100.0
                    } else {
                        0.0
                    };
                rng.poisson(10.0) + extra
            })
        };
        let cfg = SpikeConfig::default();
        let alarms = detect(&make(true), &cfg);
        assert_eq!(alarms.len(), 2, "{alarms:?}");
        assert!(
            alarms[1].expected < 1.1 * alarms[0].expected,
            "{} then {}",
            alarms[0].expected,
            alarms[1].expected
        );

        // Learned from, the spikes would have lifted the level by about 4%.
        let level = |data: &[(DateTime<Utc>, f64)]| {
            let mut state = SpikeState::new(cfg.clone());
            for &(at, v) in data {
                state.push(at, v);
            }
            state.baseline.level.mean()
        };
        let (with, without) = (level(&make(true)), level(&make(false)));
        assert!((with / without - 1.0).abs() < 0.005, "{with} vs {without}");
    }

    #[test]
    fn incremental_pushes_give_the_same_alarms_as_detect() {
        let mut rng = Rng(5);
        let data = series(8, |i, _| {
            rng.poisson(4.0) + if i == 6 * PER_DAY { 80.0 } else { 0.0 }
        });
        let cfg = SpikeConfig::default();
        let mut state = SpikeState::new(cfg.clone());
        let mut pushed = Vec::new();
        for &(at, v) in &data {
            pushed.extend(state.push(at, v));
        }
        pushed.extend(state.flush());
        assert_eq!(pushed, detect(&data, &cfg));
        assert_eq!(pushed.len(), 1);
    }

    #[test]
    fn no_alarm_during_warm_up() {
        let data = series(2, |i, _| if i == PER_DAY { 500.0 } else { 1.0 });
        assert!(detect(&data, &SpikeConfig::default()).is_empty());
    }

    #[test]
    fn huge_counts_give_finite_p_values() {
        let data = series(5, |i, _| if i == 4 * PER_DAY { 1e6 } else { 5000.0 });
        let alarms = detect(&data, &SpikeConfig::default());
        assert!(!alarms.is_empty());
        assert!(alarms.iter().all(|a| a.p.is_finite() && a.p >= 0.0));
    }
}
