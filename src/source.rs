//! When to poll each source: the interval, exponential backoff after failures (honouring
//! Retry-After), jitter so that sources configured alike do not fire in lockstep, and the cache
//! validators for conditional GETs. Decides when; never downloads.

use std::time::Duration;

use crate::config::SourceConfig;
use crate::fetch::Validators;

/// The longest a failing source waits between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    failures: u32,
    pub validators: Validators,
    seed: u64,
}

impl Schedule {
    pub fn new(source: &SourceConfig) -> Schedule {
        // A stable per-source seed spreads the jitter without a random number generator.
        let seed = source.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Schedule {
            interval: source.interval,
            failures: 0,
            validators: Validators::default(),
            seed,
        }
    }

    /// Delay before the very first poll: a fraction of the interval (at most 5 s), so a
    /// restart does not hit every host in the same instant.
    pub fn first_delay(&self) -> Duration {
        self.jitter(self.interval.min(Duration::from_secs(5)), 1)
    }

    /// The first delay after a restart: a stored next check (a backoff or a server's
    /// Retry-After) still in the future is honoured, so a restart does not hammer a source
    /// that asked to be left alone.
    pub fn resume_delay(
        &self,
        stored_next: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Duration {
        let first = self.first_delay();
        match stored_next.and_then(|at| (at - now).to_std().ok()) {
            Some(wait) => wait.max(first),
            None => first,
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a success; returns the delay until the next poll.
    pub fn succeeded(&mut self, validators: Option<Validators>) -> Duration {
        self.failures = 0;
        if let Some(v) = validators {
            self.validators = v;
        }
        self.interval + self.jitter(self.interval / 10, 2)
    }

    /// Records a failure; returns the delay until the next attempt: the interval doubled per
    /// consecutive failure, capped, and never shorter than the server's Retry-After.
    pub fn failed(&mut self, retry_after: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(self.failures.min(16));
        let backoff = self
            .interval
            .saturating_mul(factor)
            .min(MAX_BACKOFF.max(self.interval));
        let base = backoff.max(retry_after.unwrap_or_default());
        base + self.jitter(base / 10, 3)
    }

    /// A deterministic pseudo-random duration in `0..max`.
    fn jitter(&self, max: Duration, salt: u64) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        let mix = (self.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(self.failures))
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let frac = (mix >> 11) as f64 / (1u64 << 53) as f64;
        max.mul_f64(frac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;

    fn schedule(interval: u64) -> Schedule {
        Schedule::new(&SourceConfig {
            name: "s".into(),
            kind: SourceKind::Feed,
            url: "http://127.0.0.1/".into(),
            interval: Duration::from_secs(interval),
            weight: 1.0,
        })
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut s = schedule(60);
        let d1 = s.failed(None);
        let d2 = s.failed(None);
        assert!(
            d1 >= Duration::from_secs(120) && d1 < Duration::from_secs(133),
            "{d1:?}"
        );
        assert!(
            d2 >= Duration::from_secs(240) && d2 < Duration::from_secs(265),
            "{d2:?}"
        );
        for _ in 0..20 {
            s.failed(None);
        }
        assert!(s.failed(None) <= MAX_BACKOFF + MAX_BACKOFF / 10);
        let after = s.succeeded(None);
        assert_eq!(s.failures(), 0);
        assert!(after >= Duration::from_secs(60) && after <= Duration::from_secs(66));
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut s = schedule(10);
        assert!(s.failed(Some(Duration::from_secs(600))) >= Duration::from_secs(600));
    }

    #[test]
    fn validators_are_kept() {
        let mut s = schedule(10);
        let v = Validators {
            etag: Some("\"x\"".into()),
            last_modified: None,
        };
        s.succeeded(Some(v.clone()));
        assert_eq!(s.validators, v);
        s.succeeded(None);
        assert_eq!(s.validators, v, "a 304 keeps the old validators");
    }

    #[test]
    fn a_stored_next_check_survives_a_restart() {
        use chrono::TimeZone;
        let source = crate::config::SourceConfig {
            name: "s".into(),
            kind: crate::config::SourceKind::Feed,
            url: "http://127.0.0.1:9/".into(),
            interval: Duration::from_secs(60),
            weight: 1.0,
        };
        let schedule = Schedule::new(&source);
        let now = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
        let first = schedule.first_delay();
        assert_eq!(schedule.resume_delay(None, now), first);
        // A server said Retry-After: 120 just before the restart.
        let later = now + chrono::Duration::seconds(119);
        assert_eq!(
            schedule.resume_delay(Some(later), now),
            Duration::from_secs(119).max(first)
        );
        // A time already past: the usual first delay.
        assert_eq!(
            schedule.resume_delay(Some(now - chrono::Duration::seconds(5)), now),
            first
        );
    }
}
