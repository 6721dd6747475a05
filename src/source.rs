//! When to poll each source: the interval, exponential backoff after failures (honouring
//! Retry-After), jitter so that sources configured alike do not fire in lockstep, and the cache
//! validators for conditional GETs. Decides when; never downloads.
//!
//! It also judges a source's stored health against its limits ([`health_transition`]): failing
//! longer than `alert_after`, or no new item for `silent_after`, is announced once, and so is
//! the recovery.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::SourceConfig;
use crate::fetch::Validators;
use crate::store::SourceHealth;

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

    /// Records a success; returns the delay until the next poll: the interval ± 5%, so sources
    /// that started together drift apart while each keeps its interval on average.
    pub fn succeeded(&mut self, validators: Option<Validators>) -> Duration {
        self.failures = 0;
        if let Some(v) = validators {
            self.validators = v;
        }
        self.interval - self.interval / 20 + self.jitter(self.interval / 10, 2)
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

/// A source's health limits, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthLimits {
    /// Failing this long is announced.
    pub alert_after: Duration,
    /// No new item this long is announced (None = never).
    pub silent_after: Option<Duration>,
}

impl HealthLimits {
    pub fn of(source: &SourceConfig) -> HealthLimits {
        HealthLimits {
            alert_after: source.alert_after,
            silent_after: source.silent_after,
        }
    }
}

/// A change in a source's health worth telling people about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// The source crossed a limit: failing too long, or silent too long.
    Unhealthy { why: String },
    /// It is back within its limits after an `Unhealthy` was announced.
    Recovered,
}

/// The transition to announce for a source with health `h` at `now`, and its health with the
/// announcement recorded; None when there is nothing (new) to say. Pure: storing the returned
/// health is what makes each announcement happen once (see `Store::announce_health`).
pub fn health_transition(
    h: &SourceHealth,
    limits: &HealthLimits,
    now: DateTime<Utc>,
) -> Option<(HealthEvent, SourceHealth)> {
    let longer_than = |since: Option<DateTime<Utc>>, limit: Duration| {
        since.is_some_and(|t| (now - t).to_std().is_ok_and(|age| age >= limit))
    };
    // A 410 says the feed is gone for good: waiting `alert_after` would only delay the fix.
    let gone = h.last_error_class == Some(crate::fetch::ErrorClass::Gone);
    let failing = (h.consecutive_failures > 0
        && (gone || longer_than(h.failing_since, limits.alert_after)))
    .then(|| {
        if gone {
            return format!(
                "the server says it is gone (HTTP 410): fix its URL or remove it ({})",
                h.last_error.as_deref().unwrap_or("410")
            );
        }
        let class = h
            .last_error_class
            .as_ref()
            .map(|c| format!("[{}] ", c.label()))
            .unwrap_or_default();
        format!(
            "failing for over {} ({} attempts): {class}{}",
            crate::config::human_duration(limits.alert_after),
            h.consecutive_failures,
            h.last_error.as_deref().unwrap_or("unknown error")
        )
    });
    let silent = limits.silent_after.and_then(|limit| {
        let since = h.last_new_item_at.or(h.watched_since);
        longer_than(since, limit).then(|| {
            format!(
                "no new item for over {}",
                crate::config::human_duration(limit)
            )
        })
    });
    match (failing.or(silent), &h.unhealthy) {
        (Some(why), None) => Some((
            HealthEvent::Unhealthy { why: why.clone() },
            SourceHealth {
                unhealthy: Some(why),
                ..h.clone()
            },
        )),
        (None, Some(_)) => Some((
            HealthEvent::Recovered,
            SourceHealth {
                unhealthy: None,
                ..h.clone()
            },
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(interval: u64) -> Schedule {
        Schedule::new(&SourceConfig::feed(
            "s",
            "http://127.0.0.1/",
            Duration::from_secs(interval),
        ))
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
        assert!(after >= Duration::from_secs(57) && after <= Duration::from_secs(63));
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
        let source = SourceConfig::feed("s", "http://127.0.0.1:9/", Duration::from_secs(60));
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

    fn at(minutes: i64) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn failing_since(minutes: i64, failures: u64) -> SourceHealth {
        SourceHealth {
            consecutive_failures: failures,
            failing_since: Some(at(minutes)),
            last_error: Some("HTTP 432 from https://weibo.example/".into()),
            last_error_class: Some(crate::fetch::ErrorClass::LoginWall),
            watched_since: Some(at(0)),
            ..SourceHealth::default()
        }
    }

    const LIMITS: HealthLimits = HealthLimits {
        alert_after: Duration::from_secs(6 * 3600),
        silent_after: None,
    };

    #[test]
    fn failing_past_the_limit_is_announced_once_then_the_recovery_once() {
        let h = failing_since(0, 3);
        assert_eq!(health_transition(&h, &LIMITS, at(359)), None, "not yet 6h");
        let (event, h) = health_transition(&h, &LIMITS, at(360)).unwrap();
        let HealthEvent::Unhealthy { why } = event else {
            panic!("{event:?}")
        };
        assert!(
            why.contains("[login wall]") && why.contains("HTTP 432") && why.contains("6h"),
            "{why}"
        );
        assert_eq!(
            health_transition(&h, &LIMITS, at(400)),
            None,
            "announced once"
        );
        let back = SourceHealth {
            consecutive_failures: 0,
            failing_since: None,
            ..h
        };
        let (event, back) = health_transition(&back, &LIMITS, at(410)).unwrap();
        assert_eq!(event, HealthEvent::Recovered);
        assert_eq!(
            health_transition(&back, &LIMITS, at(420)),
            None,
            "recovered once"
        );
    }

    #[test]
    fn a_feed_that_is_gone_is_announced_at_once_and_checked_rarely() {
        let mut h = failing_since(0, 1);
        h.last_error = Some("HTTP 410 from https://forum.example/feed".into());
        h.last_error_class = Some(crate::fetch::ErrorClass::Gone);
        let (event, h) = health_transition(&h, &LIMITS, at(1)).unwrap();
        let HealthEvent::Unhealthy { why } = event else {
            panic!("{event:?}")
        };
        assert!(why.contains("gone (HTTP 410)"), "{why}");
        assert_eq!(health_transition(&h, &LIMITS, at(2)), None, "once");
        let gone = crate::fetch::FetchError::Status {
            status: 410,
            url: "https://forum.example/feed".into(),
            retry_after: None,
        };
        assert_eq!(gone.class(), crate::fetch::ErrorClass::Gone);
        let mut schedule = schedule(60);
        assert!(schedule.failed(gone.retry_after()) >= MAX_BACKOFF);
    }

    #[test]
    fn silence_is_announced_only_when_asked_for() {
        let quiet = SourceHealth {
            watched_since: Some(at(0)),
            last_new_item_at: Some(at(10)),
            ..SourceHealth::default()
        };
        assert_eq!(
            health_transition(&quiet, &LIMITS, at(10_000)),
            None,
            "silent_after is off"
        );
        let limits = HealthLimits {
            silent_after: Some(Duration::from_secs(24 * 3600)),
            ..LIMITS
        };
        assert_eq!(
            health_transition(&quiet, &limits, at(10 + 24 * 60 - 1)),
            None
        );
        let (event, quiet) = health_transition(&quiet, &limits, at(10 + 24 * 60)).unwrap();
        assert!(
            matches!(&event, HealthEvent::Unhealthy { why } if why.contains("no new item")),
            "{event:?}"
        );
        let fresh = SourceHealth {
            last_new_item_at: Some(at(2000)),
            ..quiet
        };
        assert_eq!(
            health_transition(&fresh, &limits, at(2001)).unwrap().0,
            HealthEvent::Recovered
        );
        // Never a new item: silent since the first poll.
        let never = SourceHealth {
            watched_since: Some(at(0)),
            ..SourceHealth::default()
        };
        assert!(health_transition(&never, &limits, at(24 * 60)).is_some());
    }

    #[test]
    fn the_store_announces_each_transition_once() {
        let store = crate::store::Store::temporary().unwrap();
        let failed = crate::store::PollResult::Failed {
            error: "dns error".into(),
            class: crate::fetch::ErrorClass::Dns,
        };
        store.record_poll("s", at(0), failed.clone()).unwrap();
        assert_eq!(store.announce_health("s", &LIMITS, at(1)).unwrap(), None);
        store.record_poll("s", at(400), failed).unwrap();
        let first = store.announce_health("s", &LIMITS, at(400)).unwrap();
        assert!(
            matches!(first, Some(HealthEvent::Unhealthy { .. })),
            "{first:?}"
        );
        assert_eq!(store.announce_health("s", &LIMITS, at(401)).unwrap(), None);
        let ok = crate::store::PollResult::Fetched {
            items: 3,
            new_items: 1,
        };
        store.record_poll("s", at(402), ok).unwrap();
        assert_eq!(
            store.announce_health("s", &LIMITS, at(402)).unwrap(),
            Some(HealthEvent::Recovered)
        );
        assert_eq!(store.announce_health("s", &LIMITS, at(403)).unwrap(), None);
    }
}
