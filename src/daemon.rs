//! Wires the stages into a running daemon. No business rules live here.
//!
//! Tasks and the bounded channels between them:
//!
//! ```text
//! pollers (one task; each due poll runs as its own task): fetch → parse → drop seen posts →
//!     analyze (blocking pool)
//!     │  mpsc<AnalyzedBatch>(32)
//!     ▼
//! recorder: store post as seen + its hits (one transaction) → detect → incident (open / attach)
//!                                    ▲
//! escalator (timer): spike test, auto-resolve, reminders, overdue acks → incident
//!
//! incident decisions and people's transitions → outbox (sled) → one worker per channel:
//!     console, Telegram, Feishu, DingTalk, WeCom, Slack, webhooks
//!
//! commands (Telegram getUpdates): /ack /resolve /incidents → incident
//! ```
//!
//! Shutdown (SIGTERM, SIGINT, or any task failing): no new poll starts, the polls under way
//! finish and the pollers drop their sender; the recorder drains what was already analyzed;
//! each outbox worker finishes the request it has under way (what is still queued stays in
//! the store for the next start); then the store is flushed. A post becomes seen only when
//! the recorder stores it, so one that was polled but never recorded (a crash, or a stop
//! before the recorder got it) is polled and analyzed again on the next start. Bounded
//! channels mean a slow chat slows polling instead of growing memory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::admin::{self, auth::TokenSource, Readiness};
use crate::analyze::shared::{Reloaded, SharedAnalyzer};
use crate::analyze::Analyzer;
use crate::config::{Config, DedupeConfig};
use crate::dedupe;
use crate::detect::watch::SpikeWatch;
use crate::detect::Detector;
use crate::fetch::{self, Fetcher};
use crate::incident::Incidents;
use crate::metrics::Metrics;
use crate::notify::channel::Channel;
use crate::notify::console::ConsoleChannel;
use crate::notify::telegram;
use crate::outbox::{ChartFn, DigestFn, Outbox, ReportFn, RetryPolicy, Worker};
use crate::poller::{AnalyzedBatch, Pollers};
use crate::report::Rounds;
use crate::shutdown::{self, Shutdown};
use crate::store::{Hit, RecordedPost, Store};

/// How often overdue acknowledgements are looked for.
const ESCALATION_TICK: Duration = Duration::from_millis(500);

/// Secrets that never come from the config file.
#[derive(Clone, Default)]
pub struct Secrets {
    pub telegram_token: Option<String>,
}

impl Secrets {
    /// Reads the token from the environment variable the config names.
    pub fn from_env(config: &Config) -> Secrets {
        let token = std::env::var(&config.telegram.token_env)
            .ok()
            .filter(|t| !t.trim().is_empty());
        Secrets {
            telegram_token: token,
        }
    }
}

/// The two spike tests, shared by the recorder and the timer: the simple threshold, which
/// guards a brand while the seasonal spike test warms up, and the spike test itself.
#[derive(Clone)]
struct Detection {
    threshold: Detector,
    watch: Arc<std::sync::Mutex<SpikeWatch>>,
}

/// Runs until `shutdown` fires or a task fails. Returns the first failure.
pub async fn run(config: Config, secrets: Secrets, external: Shutdown) -> Result<()> {
    start(config, secrets, external).await?.wait().await
}

/// A daemon whose tasks are running.
pub struct Running {
    admin_addr: Option<SocketAddr>,
    supervisor: tokio::task::JoinHandle<Result<()>>,
    reloader: Reloader,
}

/// Reloads the analyzer's lexicons and learned weights from `analysis.lexicon_dir` (on
/// SIGHUP): new weights take effect from the next poll, without a restart.
#[derive(Clone)]
pub struct Reloader {
    analyzer: SharedAnalyzer,
    analysis: crate::config::AnalysisConfig,
    brands: Vec<crate::config::BrandConfig>,
}

impl Reloader {
    /// Builds the new analyzer off the async threads and puts it in place. A file that does
    /// not load is logged as an error naming it, and the analyzer in use stays.
    pub async fn reload(&self) -> Result<Reloaded> {
        let this = self.clone();
        let from = match &self.analysis.lexicon_dir {
            Some(dir) => dir.display().to_string(),
            None => "the built-in lexicons".to_string(),
        };
        let result =
            tokio::task::spawn_blocking(move || this.analyzer.reload(&this.analysis, &this.brands))
                .await
                .context("the reload task panicked")
                .and_then(|r| r);
        match &result {
            Ok(r) => tracing::info!(
                brand_weights = r.brand_weights,
                general_weights = r.general_weights,
                "reloaded the lexicons and learned weights from {from}: {} brand weights, {} general weights",
                r.brand_weights,
                r.general_weights,
            ),
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                "reload refused, the weights in use stay: {e:#}"
            ),
        }
        result
    }
}

impl Running {
    /// The handle that reloads the analyzer (main calls it on SIGHUP).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Where the admin server listens (the real port when the config asked for port 0).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Waits until every task has stopped and the store is flushed.
    pub async fn wait(self) -> Result<()> {
        self.supervisor
            .await
            .context("the daemon's supervisor panicked")?
    }
}

/// Opens the store, builds the analyzer, binds the admin server and spawns every task.
/// Returns once all of it is running; a bad config, a locked store or a taken port fail here.
pub async fn start(config: Config, secrets: Secrets, external: Shutdown) -> Result<Running> {
    config.ensure_runnable()?;
    let admin_listener = match config.admin.enabled {
        true => Some(admin::bind(config.admin.listen).await?),
        false => None,
    };
    let admin_addr = admin_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let readiness = Readiness::default();
    let store = Store::open_in_zone(&config.daemon.data_dir, config.admin.time_zone)?;
    readiness.store_open.store(true, Ordering::Relaxed);

    let analysis = config.analysis.clone();
    let brands = config.brands.clone();
    let analyzer = SharedAnalyzer::new(
        tokio::task::spawn_blocking(move || Analyzer::from_config(&analysis, &brands))
            .await
            .context("building the analyzer")??,
    );
    let reloader = Reloader {
        analyzer: analyzer.clone(),
        analysis: config.analysis.clone(),
        brands: config.brands.clone(),
    };
    readiness.analyzer_built.store(true, Ordering::Relaxed);

    let client = fetch::http_client(&config.daemon)?;
    let fetcher = Fetcher::new(client.clone(), &config.daemon);
    let incidents = Incidents::new(
        store.clone(),
        config.telegram.tiers.clone(),
        config.detection.top_posts,
    )
    .with_lifecycle(config.incidents.clone())
    .with_repeat(config.telegram.repeat);
    for silence in &config.silences {
        incidents.ensure_silence(silence, Utc::now())?;
    }
    let detector = Detector::new(config.detection.clone());
    let brand_names: Vec<String> = config.brands.iter().map(|b| b.name.clone()).collect();
    // The spike test learns each brand's stored history before anything runs, so the timer
    // only ever feeds it a bin at a time and the recorder never waits on that lock for long.
    // Alarms in that history were the previous run's to act on.
    let watch = {
        let (store, spike) = (store.clone(), config.detection.spike.clone());
        tokio::task::spawn_blocking(move || {
            let mut watch = SpikeWatch::new(spike, &brand_names);
            let _history = watch.advance(&store, Utc::now());
            watch
        })
        .await
        .context("learning the brands' history")?
    };
    let detection = Detection {
        threshold: detector,
        watch: Arc::new(std::sync::Mutex::new(watch)),
    };

    let bot = match (&secrets.telegram_token, config.telegram.chat_id) {
        (Some(token), Some(_)) => Some(telegram::bot(&config.telegram, token, client.clone())?),
        (Some(_), None) => {
            tracing::warn!(
                "a Telegram token is set but telegram.chat_id is not: alerting to the console"
            );
            None
        }
        (None, _) => None,
    };
    let mut channels: Vec<Arc<dyn Channel>> = Vec::new();
    if let (Some(bot), Some(chat)) = (&bot, config.telegram.chat_id) {
        channels.push(Arc::new(telegram::TelegramChannel::new(bot.clone(), chat)));
    }
    // Each channel scrubs its own secrets from the errors it reports, so the redactor that
    // comes back is not needed here.
    let (webhooks, _) =
        crate::notify::webhooks::build(&config.channels, |v| std::env::var(v).ok(), client.clone())
            .context("setting up [[channels]]")?;
    channels.extend(webhooks);
    if channels.is_empty() {
        channels.push(Arc::new(ConsoleChannel));
    }
    let outbox = Outbox::new(
        store.clone(),
        channels.iter().map(|c| c.name().to_string()).collect(),
    )
    .with_reports();
    let in_doubt = outbox.recover()?;
    let waiting = store.outbox_waiting()?.len();
    if waiting > 0 {
        tracing::info!(
            waiting,
            in_doubt,
            "messages from before the last stop are still to be sent"
        );
    }
    let incidents = incidents.with_announcer(Arc::new(outbox.clone()));
    let alerts = channels
        .iter()
        .map(|c| format!("{} ({})", c.name(), c.kind()))
        .collect::<Vec<_>>()
        .join(", ");
    let data_dir = std::path::absolute(&config.daemon.data_dir)
        .unwrap_or_else(|_| config.daemon.data_dir.clone());
    tracing::info!(
        sources = config.sources.len(),
        brands = config.brands.len(),
        data_dir = %data_dir.display(),
        stored_hits = store.hit_count(),
        alerts = %alerts,
        "yuqing running: {} sources, {} brands, data in {}",
        config.sources.len(),
        config.brands.len(),
        data_dir.display(),
    );
    let rounds = Rounds::new(config.sources.len(), tokio::time::Instant::now());
    let metrics = Metrics::new();
    for source in &config.sources {
        metrics.declare_source(&source.name);
    }
    for brand in &config.brands {
        metrics.declare_brand(&brand.name);
    }

    // Our own stop signal: fired by the caller's, or by a failing task.
    let (stop, stopped) = shutdown::channel();
    let mut tasks: JoinSet<(&'static str, Result<()>)> = JoinSet::new();
    {
        let stop = stop.clone();
        let mut external = external;
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = external.wait() => stop.trigger(),
                _ = stopped.wait() => {}
            }
            ("signal", Ok(()))
        });
    }

    let (batch_tx, batch_rx) = mpsc::channel::<AnalyzedBatch>(32);

    let sources = Arc::new(config.sources.clone());
    let pollers = Pollers {
        sources: Arc::clone(&sources),
        fetcher,
        analyzer: analyzer.clone(),
        store: store.clone(),
        batches: batch_tx,
        rounds: rounds.clone(),
        metrics: metrics.clone(),
        outbox: outbox.clone(),
    };
    tasks.spawn(pollers.run(stop.subscribe()).map_named("pollers"));
    readiness.pollers_running.store(true, Ordering::Relaxed);

    tasks.spawn(
        record(
            batch_rx,
            incidents.clone(),
            detection.clone(),
            rounds,
            metrics.clone(),
            (store.clone(), config.dedupe.clone()),
        )
        .map_named("recorder"),
    );
    tasks.spawn(
        escalate(
            incidents.clone(),
            store.clone(),
            detection,
            stop.subscribe(),
        )
        .map_named("escalator"),
    );
    let policy = RetryPolicy {
        first: config.delivery.retry_first,
        max: config.delivery.retry_max,
        fallback_after: config.delivery.fallback_after,
    };
    let console_url = config
        .admin
        .enabled
        .then(|| config.admin.public_url.clone());
    let writers = Writers::new(&store, &config.brands, console_url.clone());
    for channel in channels {
        // Charts go to chats that show photos; the others would only drop them.
        let chart = (channel.kind() == "telegram").then(|| writers.chart.clone());
        let worker = Worker {
            channel,
            outbox: outbox.clone(),
            incidents: incidents.clone(),
            console_url: console_url.clone(),
            policy,
            chart,
            report: Some(writers.report.clone()),
            digest: Some(writers.digest.clone()),
        };
        tasks.spawn(worker.run(stop.subscribe()).map_named("outbox worker"));
    }
    if let Some(at) = config.reports.digest_at {
        tasks.spawn(
            crate::digest::schedule(
                store.clone(),
                outbox.clone(),
                at,
                config.reports.digest_channels.clone(),
                stop.subscribe(),
            )
            .map_named("digest timer"),
        );
    }
    if let (Some(bot), Some(chat)) = (bot, config.telegram.chat_id) {
        let ctx = telegram::CommandContext::new(
            incidents.clone(),
            store.clone(),
            config.telegram.ack_users.clone(),
            Some(chat),
            config.brands.iter().map(|b| b.name.clone()).collect(),
        )
        .with_replies(outbox.clone(), "telegram")
        .with_report(writers.on_demand.clone());
        tasks.spawn(
            telegram::run_commands(bot, ctx, config.telegram.poll_timeout, stop.subscribe())
                .map_named("commands"),
        );
    }

    if let (Some(listener), Some(addr)) = (admin_listener, admin_addr) {
        let auth = admin::auth::Auth::new(&config.admin, &config.daemon.data_dir, addr)?;
        match &auth.source {
            TokenSource::Env(var) => tracing::info!("admin token from ${var}"),
            TokenSource::File(path) => tracing::info!(
                "admin token in {} (mode 0600; the CLI reads it there)",
                path.display()
            ),
        }
        if !addr.ip().is_loopback() && auth.reads_open() {
            tracing::warn!(
                %addr,
                "admin.open_reads = true: anyone who can reach {addr} can read incidents and hits"
            );
        }
        let state = admin::AdminState {
            store: store.clone(),
            incidents: incidents.clone(),
            auth,
            brands: Arc::new(config.brands.iter().map(|b| b.name.clone()).collect()),
            sources,
            public_url: config.admin.public_url.clone(),
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            default_lang: admin::i18n::Lang::parse(&config.admin.language)
                .unwrap_or(admin::i18n::Lang::Zh),
            clock: Arc::new(Utc::now),
        };
        tracing::info!(
            "web console and API at http://{addr} (links use {})",
            config.admin.public_url
        );
        tasks.spawn(admin::serve(listener, state, stop.subscribe()).map_named("admin server"));
    }

    let supervisor = tokio::spawn(supervise(tasks, stop, store));
    Ok(Running {
        admin_addr,
        supervisor,
        reloader,
    })
}

/// Waits for every task; the first failure stops the others and is returned once the store is
/// flushed.
async fn supervise(
    mut tasks: JoinSet<(&'static str, Result<()>)>,
    stop: shutdown::Trigger,
    store: Store,
) -> Result<()> {
    let mut first_error: Option<anyhow::Error> = None;
    while let Some(joined) = tasks.join_next().await {
        let failure = match joined {
            Ok((_, Ok(()))) => None,
            Ok((name, Err(e))) => Some(e.context(format!("the {name} task failed"))),
            Err(e) if e.is_panic() => Some(anyhow::anyhow!("a task panicked: {e}")),
            Err(e) => Some(anyhow::anyhow!("a task was cancelled: {e}")),
        };
        if let Some(e) = failure {
            tracing::error!(error = %format!("{e:#}"), "stopping yuqing");
            stop.trigger();
            first_error.get_or_insert(e);
        }
    }
    store.flush().await?;
    tracing::info!("yuqing stopped; store flushed");
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Names a task's result for the supervisor's log.
trait MapNamed: std::future::Future<Output = Result<()>> + Sized {
    fn map_named(
        self,
        name: &'static str,
    ) -> impl std::future::Future<Output = (&'static str, Result<()>)> {
        async move { (name, self.await) }
    }
}
impl<F: std::future::Future<Output = Result<()>>> MapNamed for F {}

/// Stores hits, then lets detection and incidents react to the new negatives.
async fn record(
    mut batches: mpsc::Receiver<AnalyzedBatch>,
    incidents: Incidents,
    detection: Detection,
    rounds: Rounds,
    metrics: Metrics,
    (store, reposts): (Store, DedupeConfig),
) -> Result<()> {
    while let Some(batch) = batches.recv().await {
        let mut negatives: BTreeMap<String, Vec<Hit>> = BTreeMap::new();
        for (post, judgments, near) in &batch.items {
            // A copy of a recorded post raises that post's amplification: no new hits.
            if let Some(key) = near {
                let brands: Vec<String> = judgments.iter().map(|(b, _)| b.clone()).collect();
                let at = post.event_time();
                if let Some(original) = dedupe::original_of(&store, *key, at, &brands, &reposts)? {
                    let keys = dedupe::keys(post);
                    if let Some(hits) =
                        store.record_repost(&keys, &original, &post.source, Utc::now())?
                    {
                        let amplification = hits.iter().map(|h| h.amplification).max();
                        tracing::info!(source = %post.source, title = %post.title, amplification = ?amplification, "repost of a recorded post");
                        // Reposts can make the original critical; what it decides goes to the
                        // outbox with the decision.
                        incidents
                            .on_amplified(&hits, &detection.threshold, Utc::now())
                            .await?;
                    }
                    continue;
                }
            }
            let hits: Vec<Hit> = judgments
                .iter()
                .map(|(brand, judgment)| {
                    let severity = judgment.severity(batch.source_weight, 0);
                    Hit::new(
                        post,
                        brand,
                        judgment.score,
                        judgment.negative,
                        judgment.terms(),
                        severity,
                    )
                    .with_crisis(judgment.crisis.clone())
                })
                .collect();
            // The post becomes seen together with its hits, in one transaction.
            let kept = RecordedPost {
                source: post.source.clone(),
                title: post.title.clone(),
                text: post.body.clone(),
                url: post.url.clone(),
                author: post.author.clone(),
                published: post.event_time(),
                brands: hits.iter().map(|h| h.brand.clone()).collect(),
                fingerprint: near.map(|k| k.fingerprint),
            };
            let recorded = incidents.record(&dedupe::keys(post), &hits, Some(&kept), Utc::now())?;
            if !recorded.fresh {
                continue; // another source handed the same post over first
            }
            let negative = hits.iter().filter(|h| h.negative).count();
            rounds.recorded(hits.len() as u64, negative as u64);
            for hit in &hits {
                metrics.hit_recorded(&hit.brand, hit.negative, hit.severity);
            }
            for hit in hits.into_iter().filter(|h| h.negative) {
                tracing::info!(brand = %hit.brand, source = %post.source, score = %format!("{:.2}", hit.score), title = %post.title, "negative hit");
                // Hits already attached to an open incident need no detection.
                if !recorded.attached.contains(&hit.brand) {
                    negatives.entry(hit.brand.clone()).or_default().push(hit);
                }
            }
        }
        for (brand, hits) in negatives {
            let now = Utc::now();
            let use_threshold = !detection
                .watch
                .lock()
                .expect("spike watch lock")
                .is_warm(&brand, now);
            // What it decides goes to the outbox with the decision.
            incidents
                .on_negative_hits(&brand, &hits, &detection.threshold, use_threshold, now)
                .await?;
        }
    }
    Ok(())
}

/// The timed part of detection and the lifecycle: the spike test, auto-resolve, reminders,
/// ack expiry and overdue acks. What it decides goes to the outbox with the decision.
async fn escalate(
    incidents: Incidents,
    store: Store,
    detection: Detection,
    mut shutdown: Shutdown,
) -> Result<()> {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tokio::time::sleep(ESCALATION_TICK) => {}
        }
        let now = Utc::now();
        // The spike test reads the store bin by bin (all of a brand's history on the first
        // tick), so it runs on the blocking pool.
        let alarms = {
            let (watch, store) = (detection.watch.clone(), store.clone());
            tokio::task::spawn_blocking(move || {
                watch.lock().expect("spike watch lock").advance(&store, now)
            })
            .await?
        };
        for (brand, alarm) in alarms {
            tracing::info!(%brand, count = alarm.count, expected = %format!("{:.2}", alarm.expected), p = %format!("{:.1e}", alarm.p), "spike test alarm");
            incidents
                .on_spike(&brand, &alarm, &detection.threshold, now)
                .await?;
        }
        incidents.tick(&detection.threshold, now).await?;
        incidents.escalate_due(now).await?;
    }
}

/// What the outbox's workers and the chat's `/report` write messages with: the report, digest
/// and chart modules over the store.
struct Writers {
    chart: ChartFn,
    report: ReportFn,
    digest: DigestFn,
    on_demand: telegram::ReportHook,
}

impl Writers {
    fn new(
        store: &Store,
        brands: &[crate::config::BrandConfig],
        console: Option<String>,
    ) -> Writers {
        let brands: Vec<String> = brands.iter().map(|b| b.name.clone()).collect();
        let chart: ChartFn = {
            let store = store.clone();
            Arc::new(move |incident: &crate::store::Incident| {
                let until = incident.resolved_at.unwrap_or_else(Utc::now);
                let window = Some((incident.opened_at, until));
                match crate::chart::negative_volume_png(&store, &incident.brand, until, window) {
                    Ok(png) => Some(png),
                    Err(e) => {
                        tracing::warn!(id = incident.id, error = %format!("{e:#}"), "no chart for this alert");
                        None
                    }
                }
            })
        };
        let report: ReportFn = {
            let (store, console) = (store.clone(), console.clone());
            Arc::new(move |incident: &crate::store::Incident| {
                let report = crate::diagnosis::diagnose(
                    &store,
                    incident.id,
                    console.as_deref(),
                    Utc::now(),
                )?
                .with_context(|| format!("incident #{} is gone", incident.id))?;
                Ok((
                    format!(
                        "📋 yuqing incident report #{} — {} (问题诊断报告)",
                        incident.id, incident.brand
                    ),
                    report.markdown(),
                ))
            })
        };
        let digest: DigestFn = {
            let (store, brands, console) = (store.clone(), brands.clone(), console.clone());
            Arc::new(move |day, with_chart| {
                let digest = crate::digest::build(&store, &brands, day, console.as_deref())?;
                // The chart of the brand with the most negative posts that day, if any had any.
                let worst = digest
                    .brands
                    .iter()
                    .filter(|b| b.negative.value.is_some_and(|n| n > 0.0))
                    .max_by(|a, b| {
                        a.negative
                            .value
                            .partial_cmp(&b.negative.value)
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                let image = match (with_chart, worst) {
                    (true, Some(b)) => {
                        let (_, end) = crate::digest::day_bounds(store.time_zone(), day)?;
                        crate::chart::negative_volume_png(&store, &b.brand, end, None).ok()
                    }
                    _ => None,
                };
                Ok((
                    format!("📊 yuqing daily digest — {day}"),
                    digest.text(),
                    image,
                ))
            })
        };
        let on_demand: telegram::ReportHook = {
            let (store, brands, console) = (store.clone(), brands.clone(), console.clone());
            Arc::new(move |brand: Option<String>| {
                let chosen: Vec<String> = match brand {
                    Some(b) => vec![b],
                    None => brands.clone(),
                };
                let today = store.local_date(Utc::now());
                let text = match crate::digest::build(&store, &chosen, today, console.as_deref()) {
                    Ok(d) => d.text(),
                    Err(e) => format!("⚠️ cannot build the digest: {e:#}"),
                };
                Box::pin(async move { text })
            })
        };
        Writers {
            chart,
            report,
            digest,
            on_demand,
        }
    }
}
