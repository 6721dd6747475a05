//! Drives every source's polls: one task keeps each source's next check in a queue, and starts
//! a poll (fetch → parse → drop seen posts → analyze on the blocking pool) when it is due. The
//! analyzed posts go to the recorder as [`AnalyzedBatch`]es.
//!
//! One scheduling task rather than one sleeping task per source: a source waiting for its
//! next check costs its [`Schedule`] and a queue entry (under 200 bytes), where a parked tokio
//! task cost 2.4 KB. At 5,000 sources that was 12 MB of the daemon's memory (BENCHMARKS.md,
//! "Polling 5,000 sources"). A poll that is due runs as its own task, so polls of different
//! sources still run in parallel and one slow source does not hold up the others.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::analyze::shared::SharedAnalyzer;
use crate::analyze::Judgment;
use crate::collect;
use crate::config::SourceConfig;
use crate::dedupe;
use crate::fetch::{self, FetchError, Fetcher, Validators};
use crate::metrics::{Metrics, PollOutcomeKind};
use crate::outbox::Outbox;
use crate::post::Post;
use crate::report::{PollEnd, Rounds};
use crate::shutdown::Shutdown;
use crate::source::{HealthEvent, HealthLimits, Schedule};
use crate::store::{PollResult, Store};

/// Posts of one poll that were new, each with its judgments and, when it has any, the key
/// its copies are found by.
pub struct AnalyzedBatch {
    pub source_weight: f64,
    pub items: Vec<AnalyzedPost>,
}

pub type AnalyzedPost = (Post, Vec<(String, Judgment)>, Option<dedupe::NearKey>);

/// What every poll uses, shared by all sources.
pub struct Pollers {
    pub sources: Arc<Vec<SourceConfig>>,
    pub fetcher: Fetcher,
    pub analyzer: SharedAnalyzer,
    pub store: Store,
    pub batches: mpsc::Sender<AnalyzedBatch>,
    pub rounds: Rounds,
    pub metrics: Metrics,
    /// Where source-health notices go.
    pub outbox: Outbox,
}

/// What one finished poll hands back to the scheduler.
struct Finished {
    source: usize,
    started: Instant,
    /// `Err` when the poll panicked: a bug, which must not take the other sources down.
    polled: std::thread::Result<Result<PollOutcome>>,
}

impl Pollers {
    /// Polls every source until `shutdown` fires, then lets the polls under way finish (what
    /// they fetched is not thrown away) and returns; dropping `self` then closes the
    /// recorder's channel.
    pub async fn run(self, mut shutdown: Shutdown) -> Result<()> {
        let this = Arc::new(self);
        let now = Utc::now();
        let start = Instant::now();
        let mut schedules = Vec::with_capacity(this.sources.len());
        let mut due = BinaryHeap::with_capacity(this.sources.len());
        for (index, source) in this.sources.iter().enumerate() {
            let schedule = Schedule::new(source);
            let stored = this.store.next_poll_at(&source.name).unwrap_or_else(|e| {
                tracing::warn!(source = %source.name, error = %format!("{e:#}"), "cannot read the stored schedule");
                None
            });
            due.push(Reverse((start + schedule.resume_delay(stored, now), index)));
            schedules.push(schedule);
        }

        let mut running: JoinSet<Finished> = JoinSet::new();
        let timer = tokio::time::sleep_until(start);
        tokio::pin!(timer);
        loop {
            if let Some(Reverse((at, _))) = due.peek() {
                timer.as_mut().reset(*at);
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = timer.as_mut(), if !due.is_empty() => {
                    let now = Instant::now();
                    while let Some(Reverse((at, source))) = due.peek().copied() {
                        if at > now {
                            break;
                        }
                        due.pop();
                        let validators = schedules[source].validators.clone();
                        running.spawn(Arc::clone(&this).poll_once(source, validators));
                    }
                }
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    let finished = joined?;
                    let source = finished.source;
                    match this.finish(&mut schedules[source], finished) {
                        Some(delay) => due.push(Reverse((Instant::now() + delay, source))),
                        // The recorder is gone: the daemon is stopping.
                        None => break,
                    }
                }
            }
        }
        while let Some(joined) = running.join_next().await {
            let finished = joined?;
            let source = finished.source;
            this.finish(&mut schedules[source], finished);
        }
        Ok(())
    }

    /// One poll of one source, as its own task.
    async fn poll_once(self: Arc<Self>, source: usize, validators: Validators) -> Finished {
        let started = Instant::now();
        // A poll's future is large (the HTTP request's state), but this task lives only as
        // long as the poll, so it needs no box of its own.
        let polled = AssertUnwindSafe(self.poll(source, &validators))
            .catch_unwind()
            .await;
        Finished {
            source,
            started,
            polled,
        }
    }

    /// Books a finished poll: metrics, health, the schedule (stored, so it survives a
    /// restart) and the round report. Returns the delay until the source's next poll, or
    /// `None` when the daemon is stopping.
    fn finish(&self, schedule: &mut Schedule, finished: Finished) -> Option<Duration> {
        let source = &self.sources[finished.source];
        let polled = finished.polled.unwrap_or_else(|panic| {
            let why = panic_message(panic.as_ref());
            tracing::error!(source = %source.name, "polling {} panicked: {why}", source.name);
            Err(anyhow::anyhow!("polling panicked: {why}"))
        });
        let kind = match &polled {
            Ok(PollOutcome::Done {
                validators: None, ..
            }) => PollOutcomeKind::NotModified,
            Ok(_) => PollOutcomeKind::Fetched,
            Err(_) => PollOutcomeKind::Failed,
        };
        self.metrics
            .poll_finished(&source.name, kind, finished.started.elapsed());
        let (next, end) = match polled {
            Ok(PollOutcome::Stopping) => return None,
            Ok(PollOutcome::Done {
                validators,
                items,
                new_posts,
            }) => {
                let health = match validators {
                    None => PollResult::NotModified,
                    Some(_) => PollResult::Fetched {
                        items,
                        new_items: new_posts,
                    },
                };
                self.record_health(source, health);
                (
                    schedule.succeeded(validators),
                    PollEnd::Fetched { new_posts },
                )
            }
            Err(e) => {
                self.record_health(
                    source,
                    PollResult::Failed {
                        error: format!("{e:#}"),
                        class: fetch::ErrorClass::of(&e),
                    },
                );
                let fetch_error = e.downcast_ref::<FetchError>();
                let next = schedule.failed(fetch_error.and_then(FetchError::retry_after));
                tracing::warn!(
                    source = %source.name,
                    failures = schedule.failures(),
                    retry_in = %human_delay(next),
                    error = %format!("{e:#}"),
                    "poll failed"
                );
                let end = if fetch_error.is_some_and(FetchError::is_unreachable) {
                    PollEnd::Unreachable
                } else {
                    PollEnd::Failed
                };
                (next, end)
            }
        };
        let due = Utc::now() + chrono::Duration::from_std(next).unwrap_or_default();
        if let Err(e) = self.store.schedule_next_poll(&source.name, due) {
            tracing::warn!(source = %source.name, error = %format!("{e:#}"), "could not store the schedule");
        }
        for report in self.rounds.polled(&source.name, end, Instant::now()) {
            report.log();
        }
        Some(next)
    }

    /// Source health is for people to look at; failing to write it must not stop polling.
    /// A health limit crossed (or come back within) is announced once on every channel.
    fn record_health(&self, source: &SourceConfig, result: PollResult) {
        let now = Utc::now();
        let name = &source.name;
        if let Err(e) = self.store.record_poll(name, now, result) {
            tracing::warn!(source = %name, error = %format!("{e:#}"), "could not store source health");
        }
        let limits = HealthLimits::of(source);
        match self.store.announce_health(name, &limits, now) {
            Ok(Some(event)) => {
                let (title, body) = match &event {
                    HealthEvent::Unhealthy { why } => {
                        tracing::warn!(source = %name, %why, "source unhealthy: {why}");
                        (
                            format!("⚠️ yuqing source {name} is unhealthy"),
                            format!(
                                "{why}\nPosts from {name} are not being read. `yuqing sources` \
                                 shows its last error."
                            ),
                        )
                    }
                    HealthEvent::Recovered => {
                        tracing::info!(source = %name, "source recovered");
                        (
                            format!("✅ yuqing source {name} recovered"),
                            format!("{name} is being read again."),
                        )
                    }
                };
                if let Err(e) = self.outbox.enqueue_text(&[], &title, &body, false, now) {
                    tracing::error!(source = %name, error = %format!("{e:#}"), "could not queue the source-health notice");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(source = %name, error = %format!("{e:#}"), "could not judge source health")
            }
        }
    }

    async fn poll(&self, index: usize, validators: &Validators) -> Result<PollOutcome> {
        let source = &self.sources[index];
        let collected = collect::poll(source, &self.fetcher, &self.store, validators).await?;
        let Some(validators) = collected.validators else {
            return Ok(PollOutcome::Done {
                validators: None,
                items: 0,
                new_posts: 0,
            });
        };
        let (items, mut fresh) = (collected.items, collected.fresh);
        // Oldest first (feeds list the newest first), and at one time originals before
        // reposts: an original is recorded before the reposts of it that came in the same
        // poll, so it is the one they amplify.
        fresh.sort_by_key(|p| (p.event_time(), dedupe::says_it_reposts(p)));
        tracing::debug!(source = %source.name, total = items, new = fresh.len(), "polled");
        let new_posts = fresh.len() as u64;
        self.metrics.posts_seen(&source.name, new_posts);
        if fresh.is_empty() {
            return Ok(PollOutcome::Done {
                validators: Some(validators),
                items,
                new_posts,
            });
        }
        let analyzer = self.analyzer.current();
        let metrics = self.metrics.clone();
        let sources = Arc::clone(&self.sources);
        let analyzed = tokio::task::spawn_blocking(move || {
            let source = &sources[index];
            fresh
                .into_iter()
                .map(|post| {
                    let started = std::time::Instant::now();
                    let mut judged = analyzer.analyze(&post.text());
                    // A source watched for some brands only says nothing about the others.
                    judged.retain(|(brand, _)| source.watches(brand));
                    let near = (!judged.is_empty()).then(|| dedupe::near_key(&analyzer, &post));
                    metrics.analysis_time(started.elapsed());
                    (post, judged, near)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        let batch = AnalyzedBatch {
            source_weight: source.weight,
            items: analyzed,
        };
        if self.batches.send(batch).await.is_err() {
            return Ok(PollOutcome::Stopping);
        }
        Ok(PollOutcome::Done {
            validators: Some(validators),
            items,
            new_posts,
        })
    }
}

enum PollOutcome {
    /// Polled: the validators to keep (None after a 304), how many items were read and how
    /// many posts were new.
    Done {
        validators: Option<Validators>,
        items: u64,
        new_posts: u64,
    },
    /// The recorder is gone: the daemon is stopping.
    Stopping,
}

/// What a panic said, for the log and the source's last error.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// A delay as a person writes it, to the second ("2m 14s"), or in ms below a second.
fn human_delay(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs_f64().round() as u64)
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    crate::config::human_duration(rounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_poll_comes_back_as_its_sources_failure_with_the_message() {
        let index = 7;
        let polled = AssertUnwindSafe(async move {
            if index == 7 {
                panic!("index {index} out of range");
            }
            Ok::<_, anyhow::Error>(PollOutcome::Stopping)
        })
        .catch_unwind()
        .await;
        let payload = polled.err().expect("the poll panicked");
        assert_eq!(panic_message(payload.as_ref()), "index 7 out of range");
        assert_eq!(panic_message(&"static words"), "static words");
        assert_eq!(panic_message(&42u32), "no message");
    }
}
