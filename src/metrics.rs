//! The daemon's Prometheus metrics: what `/metrics` shows, so that a dashboard and an alert rule
//! can see what the logs and the pages only tell one event at a time.
//!
//! | metric | labels | answers |
//! |---|---|---|
//! | `yuqing_polls_total` | `source` | is the poller running at all |
//! | `yuqing_poll_errors_total` | `source` | is a source broken: errors over polls |
//! | `yuqing_poll_not_modified_total` | `source` | does the source honour conditional GET |
//! | `yuqing_poll_duration_seconds` | `source` | which source is slow (a histogram) |
//! | `yuqing_posts_seen_total` | `source` | does the source still bring new posts (after dedupe) |
//! | `yuqing_hits_total` | `brand` | how often a brand is mentioned |
//! | `yuqing_negative_hits_total` | `brand` | how often negatively |
//! | `yuqing_harm_total` | `brand` | the harm index (用户伤害程度), the sum of hit severities |
//! | `yuqing_analysis_seconds` | | CPU per post: jieba and scoring (a histogram) |
//! | `yuqing_incidents` | `state` | incidents in the store by state; a triggered one has no owner yet |
//! | `yuqing_undelivered_notices` | | messages waiting in the outbox on any channel: paging is broken or slow |
//! | `yuqing_store_size_bytes` | | the sled store on disk |
//! | `yuqing_build_info` | `version` | which build is running |
//!
//! Rates are left to PromQL rather than computed here, so any window can be asked for. The
//! complaint rate (客诉率) of the last hour, for example, is
//! `rate(yuqing_negative_hits_total[1h]) / rate(yuqing_hits_total[1h])`, and the share of failed
//! polls is `rate(yuqing_poll_errors_total[15m]) / rate(yuqing_polls_total[15m])`. For such a ratio to
//! be 0 rather than missing, a series and its siblings are created together (a poll touches the
//! error and 304 counters of its source, a hit the negative and harm counters of its brand), and
//! [`Metrics::declare_source`] and [`Metrics::declare_brand`] create a configured name's series
//! at zero before anything happens to it.
//!
//! Counters live in this process and restart at zero with it, which `rate()` copes with. The
//! gauges are copies of what the store holds, set by whoever reads the store (periodically or at
//! scrape time), because the store and not this process is the record of incidents and notices.
//!
//! Labels are only sources and brands from the configuration, and the three incident states: never
//! a post, a URL, a term or an error message, each of which would make a new series per value
//! and grow Prometheus without bound.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::encode`]'s output: the OpenMetrics text format, which is what
/// the crate's text encoder writes (`# EOF` and all). Prometheus asks for it and parses it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Poll durations: a healthy feed answers in tens of milliseconds to a second; the top buckets are
/// there to tell a slow source from one that runs into the fetch timeout.
const POLL_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

/// Analysis time per post: a short post takes tens of microseconds; a second would mean something
/// pathological (a huge body, a regression in the scorer).
const ANALYSIS_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// How a poll ended, as far as the metrics care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollOutcomeKind {
    /// A body came back (whether or not it held new posts).
    Fetched,
    /// 304: the source had nothing new and said so cheaply.
    NotModified,
    /// The fetch or the parse failed.
    Failed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrandLabels {
    brand: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// A gauge of a count or a size, which is never negative.
type UGauge = Gauge<u64, AtomicU64>;

/// The metrics of one daemon. Cloning is cheap and every clone records into the same registry, so
/// the daemon hands one to each poller, the recorder and the admin server.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    polls: Family<SourceLabels, Counter>,
    poll_errors: Family<SourceLabels, Counter>,
    poll_not_modified: Family<SourceLabels, Counter>,
    poll_duration: Family<SourceLabels, Histogram, fn() -> Histogram>,
    posts_seen: Family<SourceLabels, Counter>,
    hits: Family<BrandLabels, Counter>,
    negative_hits: Family<BrandLabels, Counter>,
    harm: Family<BrandLabels, Counter<f64, AtomicU64>>,
    analysis: Histogram,
    incidents: Family<StateLabels, UGauge>,
    undelivered_notices: UGauge,
    store_bytes: UGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, under the prefix `yuqing`, in a registry of its own (not a global
    /// one), so that tests and two daemons in one process do not share counts.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("yuqing");

        // Counter names go without `_total`: the encoder appends it.
        let polls = Family::default();
        registry.register(
            "polls",
            "Polls of a source, whatever their outcome",
            polls.clone(),
        );
        let poll_errors = Family::default();
        registry.register(
            "poll_errors",
            "Polls of a source that failed to fetch or parse",
            poll_errors.clone(),
        );
        let poll_not_modified = Family::default();
        registry.register(
            "poll_not_modified",
            "Polls of a source answered 304 Not Modified",
            poll_not_modified.clone(),
        );
        let poll_duration: Family<SourceLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(POLL_BUCKETS));
        registry.register_with_unit(
            "poll_duration",
            "Time from the start of a poll to its end, fetch and parse included",
            Unit::Seconds,
            poll_duration.clone(),
        );
        let posts_seen = Family::default();
        registry.register(
            "posts_seen",
            "Posts from a source not seen before (after dedupe)",
            posts_seen.clone(),
        );
        let hits = Family::default();
        registry.register("hits", "Hits: posts that mention a brand", hits.clone());
        let negative_hits = Family::default();
        registry.register(
            "negative_hits",
            "Hits judged negative about the brand",
            negative_hits.clone(),
        );
        let harm = Family::default();
        registry.register(
            "harm",
            "Harm index: the sum of the severities of a brand's hits",
            harm.clone(),
        );
        let analysis = Histogram::new(ANALYSIS_BUCKETS);
        registry.register_with_unit(
            "analysis",
            "Time to analyze one post: segmentation, brand mentions, sentiment",
            Unit::Seconds,
            analysis.clone(),
        );
        let incidents: Family<StateLabels, UGauge> = Family::default();
        registry.register(
            "incidents",
            "Incidents in the store by state",
            incidents.clone(),
        );
        let undelivered_notices = UGauge::default();
        registry.register(
            "undelivered_notices",
            "Notices in the store that no channel has delivered yet",
            undelivered_notices.clone(),
        );
        let store_bytes = UGauge::default();
        registry.register_with_unit(
            "store_size",
            "Size of the store on disk",
            Unit::Bytes,
            store_bytes.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );

        // All three states from the start, so "no triggered incident" reads 0, not "no data".
        for state in ["triggered", "acknowledged", "resolved"] {
            touch(&incidents, &StateLabels { state });
        }

        Metrics {
            inner: Arc::new(Inner {
                registry,
                polls,
                poll_errors,
                poll_not_modified,
                poll_duration,
                posts_seen,
                hits,
                negative_hits,
                harm,
                analysis,
                incidents,
                undelivered_notices,
                store_bytes,
            }),
        }
    }

    /// Creates a source's series at zero before its first poll. A series that appears with its
    /// first increment hides that increment from `rate()` and `increase()`; declaring the
    /// configured sources at start-up avoids it.
    pub fn declare_source(&self, source: &str) {
        let labels = source_labels(source);
        let inner = &self.inner;
        touch(&inner.polls, &labels);
        touch(&inner.poll_errors, &labels);
        touch(&inner.poll_not_modified, &labels);
        touch(&inner.poll_duration, &labels);
        touch(&inner.posts_seen, &labels);
    }

    /// Creates a brand's series at zero before its first hit, for the reason given at
    /// [`Metrics::declare_source`].
    pub fn declare_brand(&self, brand: &str) {
        let labels = brand_labels(brand);
        let inner = &self.inner;
        touch(&inner.hits, &labels);
        touch(&inner.negative_hits, &labels);
        touch(&inner.harm, &labels);
    }

    /// One poll of `source` ended after `duration`.
    pub fn poll_finished(&self, source: &str, outcome: PollOutcomeKind, duration: Duration) {
        let labels = source_labels(source);
        let inner = &self.inner;
        inner.polls.get_or_create(&labels).inc();
        // Touched on every poll, so that the ratios to `polls` exist from the first one.
        let errors = inner.poll_errors.get_or_create(&labels);
        let not_modified = inner.poll_not_modified.get_or_create(&labels);
        match outcome {
            PollOutcomeKind::Fetched => {}
            PollOutcomeKind::NotModified => {
                not_modified.inc();
            }
            PollOutcomeKind::Failed => {
                errors.inc();
            }
        }
        inner
            .poll_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// `n` posts from `source` were new after dedupe.
    pub fn posts_seen(&self, source: &str, n: u64) {
        self.inner
            .posts_seen
            .get_or_create(&source_labels(source))
            .inc_by(n);
    }

    /// A hit about `brand` was stored.
    ///
    /// A severity that is not finite and positive adds no harm, as in the store's daily figures:
    /// one bad score must not poison the sum, and a counter must never go down.
    pub fn hit_recorded(&self, brand: &str, negative: bool, severity: f64) {
        let labels = brand_labels(brand);
        let inner = &self.inner;
        inner.hits.get_or_create(&labels).inc();
        // Touched on every hit, so that the complaint rate of a brand without complaints is 0.
        let negatives = inner.negative_hits.get_or_create(&labels);
        if negative {
            negatives.inc();
        }
        let harm = inner.harm.get_or_create(&labels);
        if severity.is_finite() && severity > 0.0 {
            harm.inc_by(severity);
        }
    }

    /// The analysis of one post took `per_post`.
    pub fn analysis_time(&self, per_post: Duration) {
        self.inner.analysis.observe(per_post.as_secs_f64());
    }

    /// The incidents in the store by state.
    pub fn set_incidents(&self, triggered: u64, acknowledged: u64, resolved: u64) {
        for (state, n) in [
            ("triggered", triggered),
            ("acknowledged", acknowledged),
            ("resolved", resolved),
        ] {
            self.inner
                .incidents
                .get_or_create(&StateLabels { state })
                .set(n);
        }
    }

    /// The notices in the store that are not delivered yet.
    pub fn set_undelivered_notices(&self, n: u64) {
        self.inner.undelivered_notices.set(n);
    }

    /// The size of the store on disk, in bytes.
    pub fn set_store_bytes(&self, bytes: u64) {
        self.inner.store_bytes.set(bytes);
    }

    /// Everything, in the OpenMetrics text format ([`CONTENT_TYPE`]), ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail, and the encoder only fails for metric kinds that the
        // text format cannot hold (native-only histograms), which are not registered here.
        text::encode(&mut out, &self.inner.registry)
            .expect("the metrics encode as OpenMetrics text");
        out
    }
}

/// Creates the series of `labels` in `family` at zero, unless it exists.
fn touch<S, M, C>(family: &Family<S, M, C>, labels: &S)
where
    S: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: MetricConstructor<M>,
{
    let _series = family.get_or_create(labels);
}

fn source_labels(source: &str) -> SourceLabels {
    SourceLabels {
        source: source.to_owned(),
    }
}

fn brand_labels(brand: &str) -> BrandLabels {
    BrandLabels {
        brand: brand.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines (not comments) of an exposition, for exact-line assertions: a substring
    /// check would let `..._total{source="weibo"} 2` match `... 20`.
    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    fn has_line(text: &str, line: &str) -> bool {
        lines(text).contains(&line)
    }

    #[track_caller]
    fn assert_line(text: &str, line: &str) {
        assert!(has_line(text, line), "no line `{line}` in:\n{text}");
    }

    #[test]
    fn polls_count_per_source_and_outcome() {
        let m = Metrics::new();
        m.poll_finished("weibo", PollOutcomeKind::Fetched, Duration::from_millis(80));
        m.poll_finished("weibo", PollOutcomeKind::Failed, Duration::from_secs(3));
        m.poll_finished(
            "tieba",
            PollOutcomeKind::NotModified,
            Duration::from_millis(20),
        );
        let text = m.encode();

        assert_line(&text, r#"yuqing_polls_total{source="weibo"} 2"#);
        assert_line(&text, r#"yuqing_poll_errors_total{source="weibo"} 1"#);
        assert_line(&text, r#"yuqing_poll_not_modified_total{source="weibo"} 0"#);
        assert_line(&text, r#"yuqing_polls_total{source="tieba"} 1"#);
        assert_line(&text, r#"yuqing_poll_errors_total{source="tieba"} 0"#);
        assert_line(&text, r#"yuqing_poll_not_modified_total{source="tieba"} 1"#);

        assert_line(&text, "# TYPE yuqing_poll_duration_seconds histogram");
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_count{source="weibo"} 2"#,
        );
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_sum{source="weibo"} 3.08"#,
        );
        // Buckets are cumulative: 80 ms falls under 0.1 s, 3 s only under 5 s and above.
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_bucket{le="0.05",source="weibo"} 0"#,
        );
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_bucket{le="0.1",source="weibo"} 1"#,
        );
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_bucket{le="2.5",source="weibo"} 1"#,
        );
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_bucket{le="5.0",source="weibo"} 2"#,
        );
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_bucket{le="+Inf",source="weibo"} 2"#,
        );
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_count{source="tieba"} 1"#,
        );
    }

    #[test]
    fn posts_seen_add_up() {
        let m = Metrics::new();
        m.posts_seen("weibo", 3);
        m.posts_seen("weibo", 4);
        assert_line(&m.encode(), r#"yuqing_posts_seen_total{source="weibo"} 7"#);
    }

    #[test]
    fn hits_negatives_and_harm_per_brand() {
        let m = Metrics::new();
        m.hit_recorded("度小满", true, 1.5);
        m.hit_recorded("度小满", false, 0.0);
        m.hit_recorded("度小满", true, 0.25);
        m.hit_recorded("度小满", true, f64::NAN);
        m.hit_recorded("度小满", true, -4.0);
        m.hit_recorded("花呗", false, 0.0);
        let text = m.encode();

        assert_line(&text, r#"yuqing_hits_total{brand="度小满"} 5"#);
        assert_line(&text, r#"yuqing_negative_hits_total{brand="度小满"} 4"#);
        // NaN and a negative severity add nothing.
        assert_line(&text, r#"yuqing_harm_total{brand="度小满"} 1.75"#);
        // A brand without complaints still has its negative and harm series, at zero.
        assert_line(&text, r#"yuqing_hits_total{brand="花呗"} 1"#);
        assert_line(&text, r#"yuqing_negative_hits_total{brand="花呗"} 0"#);
        assert_line(&text, r#"yuqing_harm_total{brand="花呗"} 0.0"#);
    }

    #[test]
    fn analysis_time_is_a_histogram_of_seconds() {
        let m = Metrics::new();
        m.analysis_time(Duration::from_micros(80));
        m.analysis_time(Duration::from_millis(30));
        let text = m.encode();
        assert_line(&text, "# TYPE yuqing_analysis_seconds histogram");
        assert_line(&text, "# UNIT yuqing_analysis_seconds seconds");
        assert_line(&text, "yuqing_analysis_seconds_count 2");
        assert_line(&text, r#"yuqing_analysis_seconds_bucket{le="0.0001"} 1"#);
        assert_line(&text, r#"yuqing_analysis_seconds_bucket{le="0.025"} 1"#);
        assert_line(&text, r#"yuqing_analysis_seconds_bucket{le="0.05"} 2"#);
    }

    #[test]
    fn incident_gauges_start_at_zero_and_follow_the_last_set() {
        let m = Metrics::new();
        let text = m.encode();
        for state in ["triggered", "acknowledged", "resolved"] {
            assert_line(&text, &format!(r#"yuqing_incidents{{state="{state}"}} 0"#));
        }

        m.set_incidents(2, 1, 9);
        m.set_incidents(1, 2, 9);
        let text = m.encode();
        assert_line(&text, "# TYPE yuqing_incidents gauge");
        assert_line(&text, r#"yuqing_incidents{state="triggered"} 1"#);
        assert_line(&text, r#"yuqing_incidents{state="acknowledged"} 2"#);
        assert_line(&text, r#"yuqing_incidents{state="resolved"} 9"#);
    }

    #[test]
    fn store_gauges() {
        let m = Metrics::new();
        m.set_undelivered_notices(3);
        m.set_store_bytes(1 << 20);
        let text = m.encode();
        assert_line(&text, "yuqing_undelivered_notices 3");
        assert_line(&text, "yuqing_store_size_bytes 1048576");
    }

    #[test]
    fn build_info_and_eof() {
        let text = Metrics::new().encode();
        assert_line(
            &text,
            &format!(
                r#"yuqing_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        );
        assert_line(&text, "# TYPE yuqing_build info");
        assert!(text.ends_with("\n# EOF\n"), "no EOF at the end:\n{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn counters_have_help_and_one_total_suffix() {
        let m = Metrics::new();
        // A family without series is left out of the exposition altogether, HELP and TYPE too.
        m.poll_finished("weibo", PollOutcomeKind::Fetched, Duration::ZERO);
        let text = m.encode();
        assert_line(&text, "# TYPE yuqing_polls counter");
        assert_line(
            &text,
            "# HELP yuqing_polls Polls of a source, whatever their outcome.",
        );
        assert!(!text.contains("_total_total"), "{text}");
    }

    #[test]
    fn declared_names_show_at_zero_before_anything_happens() {
        let m = Metrics::new();
        let before = m.encode();
        assert!(!before.contains(r#"source="weibo""#), "{before}");
        assert!(!before.contains(r#"brand="度小满""#), "{before}");

        m.declare_source("weibo");
        m.declare_brand("度小满");
        let text = m.encode();
        assert_line(&text, r#"yuqing_polls_total{source="weibo"} 0"#);
        assert_line(&text, r#"yuqing_poll_errors_total{source="weibo"} 0"#);
        assert_line(
            &text,
            r#"yuqing_poll_duration_seconds_count{source="weibo"} 0"#,
        );
        assert_line(&text, r#"yuqing_posts_seen_total{source="weibo"} 0"#);
        assert_line(&text, r#"yuqing_hits_total{brand="度小满"} 0"#);
        assert_line(&text, r#"yuqing_negative_hits_total{brand="度小满"} 0"#);
    }

    #[test]
    fn clones_record_into_one_registry() {
        let m = Metrics::new();
        let poller = m.clone();
        let recorder = m.clone();
        poller.poll_finished("weibo", PollOutcomeKind::Fetched, Duration::ZERO);
        recorder.hit_recorded("度小满", true, 1.0);
        let text = m.encode();
        assert_line(&text, r#"yuqing_polls_total{source="weibo"} 1"#);
        assert_line(&text, r#"yuqing_negative_hits_total{brand="度小满"} 1"#);

        // A second daemon's metrics are its own.
        assert!(!Metrics::new().encode().contains("weibo"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.posts_seen("a\"b\\c\nd", 1);
        assert_line(
            &m.encode(),
            r#"yuqing_posts_seen_total{source="a\"b\\c\nd"} 1"#,
        );
    }
}
