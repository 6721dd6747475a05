//! What the log says about polling as a whole, so a first start is not silent about success:
//! one summary when every source has been polled once, then one every few minutes, and one plain
//! error when no source at all can be reached (the usual cause is the network or a proxy, not
//! the sources).
//!
//! Pollers and the recorder tell [`Rounds`] what happened; it answers with the [`Report`]s that
//! are due, and the daemon logs them. Deciding here and logging there keeps this testable without
//! capturing log output.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How often a summary is logged after the first.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(5 * 60);

/// Something worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Polling since the previous summary (or since the start, for the first).
    Summary {
        first: bool,
        sources: usize,
        polled: usize,
        failing: Vec<String>,
        new_posts: u64,
        hits: u64,
        negative: u64,
    },
    /// Every source failed its first poll without reaching a server.
    NothingReachable { sources: usize },
}

/// How a poll ended, as far as the summaries care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollEnd {
    Fetched {
        new_posts: u64,
    },
    /// The server answered, but with an error or something unreadable.
    Failed,
    /// No server answered: connection refused, DNS failure, timeout.
    Unreachable,
}

/// Shared by every poller and the recorder.
#[derive(Clone)]
pub struct Rounds {
    inner: Arc<Mutex<State>>,
}

struct State {
    sources: usize,
    /// Sources polled at least once; the first summary waits until all have been.
    polled_once: HashSet<String>,
    /// The last outcome of each source polled since the previous summary.
    last_end: BTreeMap<String, PollEnd>,
    /// Sources whose most recent poll failed, whenever it was.
    failing: BTreeMap<String, PollEnd>,
    new_posts: u64,
    hits: u64,
    negative: u64,
    first_done: bool,
    last_summary: Instant,
}

impl Rounds {
    pub fn new(sources: usize, now: Instant) -> Rounds {
        Rounds {
            inner: Arc::new(Mutex::new(State {
                sources,
                polled_once: HashSet::new(),
                last_end: BTreeMap::new(),
                failing: BTreeMap::new(),
                new_posts: 0,
                hits: 0,
                negative: 0,
                first_done: false,
                last_summary: now,
            })),
        }
    }

    /// A poller finished one poll of `source`.
    pub fn polled(&self, source: &str, end: PollEnd, now: Instant) -> Vec<Report> {
        let mut s = self.inner.lock().expect("rounds lock");
        s.polled_once.insert(source.to_string());
        s.last_end.insert(source.to_string(), end);
        match end {
            PollEnd::Fetched { new_posts } => {
                s.new_posts += new_posts;
                s.failing.remove(source);
            }
            PollEnd::Failed | PollEnd::Unreachable => {
                s.failing.insert(source.to_string(), end);
            }
        }
        s.due(now)
    }

    /// The recorder stored new hits (`negative` of them negative).
    pub fn recorded(&self, hits: u64, negative: u64) {
        let mut s = self.inner.lock().expect("rounds lock");
        s.hits += hits;
        s.negative += negative;
    }
}

impl State {
    fn due(&mut self, now: Instant) -> Vec<Report> {
        let mut reports = Vec::new();
        if !self.first_done {
            if self.polled_once.len() < self.sources {
                return reports;
            }
            self.first_done = true;
            if self.sources > 0
                && self.failing.len() == self.sources
                && self.failing.values().all(|e| *e == PollEnd::Unreachable)
            {
                reports.push(Report::NothingReachable {
                    sources: self.sources,
                });
            }
            reports.push(self.summary(true, now));
        } else if now.duration_since(self.last_summary) >= SUMMARY_EVERY {
            reports.push(self.summary(false, now));
        }
        reports
    }

    fn summary(&mut self, first: bool, now: Instant) -> Report {
        let report = Report::Summary {
            first,
            sources: self.sources,
            polled: self.last_end.len(),
            failing: self.failing.keys().cloned().collect(),
            new_posts: self.new_posts,
            hits: self.hits,
            negative: self.negative,
        };
        self.last_end.clear();
        self.new_posts = 0;
        self.hits = 0;
        self.negative = 0;
        self.last_summary = now;
        report
    }
}

impl Report {
    /// Writes the report to the log at the level it deserves.
    pub fn log(&self) {
        match self {
            Report::Summary {
                first,
                sources,
                polled,
                failing,
                new_posts,
                hits,
                negative,
            } => {
                let what = if *first {
                    "first round of polls done"
                } else {
                    "polling summary"
                };
                if failing.is_empty() {
                    tracing::info!(
                        sources,
                        polled,
                        failing = 0,
                        new_posts,
                        hits,
                        negative,
                        "{what}"
                    );
                } else {
                    tracing::warn!(
                        sources,
                        polled,
                        failing = failing.len(),
                        failing_sources = %failing.join(", "),
                        new_posts,
                        hits,
                        negative,
                        "{what}"
                    );
                }
            }
            Report::NothingReachable { sources } => tracing::error!(
                sources,
                "none of the {sources} sources could be reached. Is this machine online? \
                 Behind a proxy, set HTTPS_PROXY (and HTTP_PROXY for http:// sources); \
                 yuqing honours them"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(r: &Report) -> (usize, Vec<String>, u64, u64) {
        match r {
            Report::Summary {
                polled,
                failing,
                new_posts,
                hits,
                ..
            } => (*polled, failing.clone(), *new_posts, *hits),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_summary_waits_for_every_source() {
        let t0 = Instant::now();
        let rounds = Rounds::new(2, t0);
        assert!(rounds
            .polled("a", PollEnd::Fetched { new_posts: 3 }, t0)
            .is_empty());
        rounds.recorded(2, 1);
        let reports = rounds.polled("b", PollEnd::Failed, t0);
        assert_eq!(reports.len(), 1);
        assert_eq!(summary(&reports[0]), (2, vec!["b".to_string()], 3, 2));
        // Nothing more until SUMMARY_EVERY has passed.
        assert!(rounds
            .polled(
                "a",
                PollEnd::Fetched { new_posts: 1 },
                t0 + SUMMARY_EVERY / 2
            )
            .is_empty());
        let later = rounds.polled("b", PollEnd::Fetched { new_posts: 0 }, t0 + SUMMARY_EVERY);
        let (polled, failing, new_posts, hits) = summary(&later[0]);
        assert_eq!((polled, new_posts, hits), (2, 1, 0));
        assert!(failing.is_empty(), "b recovered");
        assert!(matches!(later[0], Report::Summary { first: false, .. }));
    }

    #[test]
    fn nothing_reachable_is_said_once_and_only_when_all_are_unreachable() {
        let t0 = Instant::now();
        let rounds = Rounds::new(2, t0);
        rounds.polled("a", PollEnd::Unreachable, t0);
        let reports = rounds.polled("b", PollEnd::Unreachable, t0);
        assert_eq!(reports[0], Report::NothingReachable { sources: 2 });
        let again = rounds.polled("a", PollEnd::Unreachable, t0 + SUMMARY_EVERY);
        assert!(again
            .iter()
            .all(|r| !matches!(r, Report::NothingReachable { .. })));

        let rounds = Rounds::new(2, t0);
        rounds.polled("a", PollEnd::Unreachable, t0);
        let reports = rounds.polled("b", PollEnd::Failed, t0);
        assert!(
            reports
                .iter()
                .all(|r| !matches!(r, Report::NothingReachable { .. })),
            "a server answered, so the network is up"
        );
    }
}
