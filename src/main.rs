//! The `yuqing` command line: argument parsing, logging, signals. No logic lives here.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

use yuqing::admin::client::{self, ClientError};
use yuqing::analyze::lexicon::Lexicon;
use yuqing::analyze::Analyzer;
use yuqing::config::Config;
use yuqing::daemon::{self, Secrets};
use yuqing::eval;
use yuqing::shutdown;

// Analysis allocates many small, short-lived buffers per post (jieba's token lists, clause and
// explanation vectors). mimalloc's thread-local free lists serve them faster than glibc's
// malloc, whose consolidation of freed chunks showed in profiles: `yuqing bench` measured
// about 8% more analysis throughput with it (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's defaults trade memory for speed in a way this process does not need: arenas are
/// committed eagerly and freed pages go back to the OS only after a delay. With both, the
/// analyzer alone peaked at 97 MB resident against 59 MB without (BENCHMARKS.md, "Memory"),
/// and analysis speed did not move. The options must be set before mimalloc reserves its first
/// arena, which happens before `main`: this runs as an ELF constructor ordered ahead of
/// mimalloc's own (priority 101). A `MIMALLOC_*` variable in the environment still wins.
#[cfg(target_os = "linux")]
extern "C" fn tune_allocator() {
    // Indices into mimalloc v3's `mi_option_e` (include/mimalloc.h of libmimalloc-sys 0.1.49).
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    const PURGE_DELAY: std::ffi::c_int = 15;
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    for (option, variable) in [
        (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT"),
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY"),
    ] {
        // std::env reads the process environment without allocating for a missing variable.
        if std::env::var_os(variable).is_none() {
            // SAFETY: mi_option_set only stores an integer in mimalloc's static option table,
            // which needs no initialisation; both options are read later, when memory is
            // reserved or purged.
            unsafe { mi_option_set(option, 0) };
        }
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00099")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

#[derive(Parser)]
#[command(
    name = "yuqing",
    version,
    about = "Brand public-opinion monitoring daemon"
)]
struct Cli {
    /// Config file. Without it (and without YUQING_CONFIG), ./sources.toml is used if present,
    /// else the built-in default config.
    #[arg(long, global = true, env = "YUQING_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines as text for people, or as one JSON object per line for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "YUQING_LOG_FORMAT")]
    log_format: LogFormat,
    /// Colour in text logs: `auto` colours only when stderr is a terminal and NO_COLOR is unset.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Where the client commands (incidents, ack, hits…) reach the daemon; default
    /// http://<admin.listen>.
    #[arg(long, global = true, env = "YUQING_ADMIN_URL")]
    admin_url: Option<String>,
    /// Client commands print one JSON object per line instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM or SIGINT.
    Run {
        /// Overrides daemon.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Replay a scripted crisis about 度小满 on loopback feeds through the real pipeline, with
    /// the web console: no internet and no chat account needed.
    Demo {
        /// Keep the demo's data here (default: a temporary folder, removed at the end).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The admin server's address.
        #[arg(long, default_value = yuqing::config::DEFAULT_ADMIN_LISTEN)]
        listen: String,
        /// Stop as soon as the first incident opens (for scripts and tests).
        #[arg(long)]
        exit_after_incident: bool,
    },
    /// Validate the config and print a summary.
    Check,
    /// Time the admin API's hits and daily queries on a store of synthetic hits.
    BenchApi {
        /// The store to fill (kept, so later runs skip the fill).
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        hits: u64,
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
    /// List incidents (open ones unless --all), from the running daemon.
    Incidents {
        #[arg(long)]
        all: bool,
    },
    /// Show one incident with its timeline.
    Incident { id: String },
    /// Print an incident's report (问题诊断报告) as Markdown: timeline, counts, topic, top posts.
    Report { id: String },
    /// Print the daily digest (日报): each brand's day against the week before, top negative
    /// posts, incidents with MTTA/MTTR.
    Digest {
        /// A local day: 2026-03-01, today or yesterday (the default).
        #[arg(long, default_value = "yesterday")]
        day: String,
        /// One configured brand only.
        #[arg(long)]
        brand: Option<String>,
        /// Markdown instead of plain text.
        #[arg(long)]
        markdown: bool,
    },
    /// Acknowledge an incident: you own it until it is resolved.
    Ack { id: String },
    /// Resolve an incident.
    Resolve {
        id: String,
        /// What was done, kept in the timeline.
        #[arg(long)]
        note: Option<String>,
    },
    /// Reopen a resolved incident.
    Reopen {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// List hits, newest first.
    Hits {
        #[arg(long)]
        brand: Option<String>,
        /// An age (24h, 7d) or a time (2026-03-01, RFC 3339).
        #[arg(long, default_value = "24h")]
        since: String,
        /// Negative hits only.
        #[arg(long)]
        negative: bool,
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show each source's health.
    Sources,
    /// Hold back notices about a brand, a source or a topic word for a while; incidents are
    /// still recorded.
    Mute {
        /// brand, source or topic
        kind: String,
        name: String,
        /// How long, e.g. 30m or 2h.
        duration: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a silence now.
    Unmute { id: String },
    /// List silences, active and expired.
    Silences,
    /// Messages waiting in the outbox (pages, reminders, digests not yet delivered).
    Notices {
        /// Every recent message, delivered or not, with why it was or was not sent.
        #[arg(long)]
        all: bool,
    },
    /// The daily complaint rate (客诉率) and harm index (用户伤害程度) per brand.
    Stats {
        #[arg(long)]
        brand: Option<String>,
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Score texts (arguments, or stdin lines): one JSON object per line.
    Score {
        /// Judge against this brand only (a configured brand, or any name).
        #[arg(long)]
        brand: Option<String>,
        /// Add the full explanation: the clauses judged and every term's contribution.
        #[arg(long)]
        explain: bool,
        texts: Vec<String>,
    },
    /// Measure the scorer on a labeled CSV; the last line is a JSON summary.
    Eval {
        file: PathBuf,
        #[command(flatten)]
        columns: ColumnArgs,
    },
    /// Learn word weights from labeled CSVs and write them as a readable TSV.
    Learn {
        /// One or more CSVs with the same columns, learned from together (cross-validation
        /// then reports each file's figures too).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        columns: ColumnArgs,
        /// Where to write the weights.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report K-fold cross-validated figures first (see --group).
        #[arg(long, default_value_t = 0)]
        cv: usize,
        /// What a fold keeps together: `entity` (every row of an entity, and of the entities
        /// nested in its name, is tested in one fold, and no text of it is trained on: a brand
        /// the model has never seen) or `text` (every row of one text).
        #[arg(long, value_enum, default_value_t = eval::Grouping::Entity)]
        group: eval::Grouping,
        /// Cross-validate the rules alone: a model of the rule score and a bias only, which
        /// turns the rules' score into a calibrated probability.
        #[arg(long)]
        rules_only: bool,
        /// With --cv: write every row's held-out P(negative) and verdict to this CSV, to read
        /// the errors.
        #[arg(long)]
        cv_predictions: Option<PathBuf>,
        /// Inverse L2 regularisation strength.
        #[arg(long, default_value_t = 0.3)]
        c: f64,
        #[arg(long, default_value_t = 600)]
        iterations: usize,
        /// Drop weights smaller than this from the file.
        #[arg(long, default_value_t = 0.02)]
        prune: f64,
        /// Staff verdicts to learn from as well: the CSV `yuqing export-feedback` writes
        /// (id,entity,label,text). Brand model only (needs --entity-col).
        #[arg(long)]
        feedback: Option<PathBuf>,
        /// How many labelled rows one staff verdict counts for.
        #[arg(long, default_value_t = 5.0)]
        feedback_weight: f64,
    },
    /// Write staff feedback (false/true positives) as labeled CSV rows for `yuqing learn`.
    /// Reads the database, so the daemon must not be running on it.
    ExportFeedback {
        /// Overrides daemon.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The CSV to write (columns id,entity,label,text; label 1 = negative).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write kept posts as NDJSON (the shape `replay` reads). Reads the database, so the
    /// daemon must not be running on it.
    Export {
        /// An age (7d, 24h) or a time (2026-03-01, RFC 3339).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        brand: Option<String>,
        /// Overrides daemon.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Where to write (default stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Feed recorded posts through analysis, detection and the incident lifecycle on a
    /// simulated clock; print what would have happened, one JSON object per line.
    Replay {
        /// NDJSON posts: {"source","title","text","url","published"} per line.
        file: PathBuf,
        /// Only `max` (as fast as the machine goes) is offered.
        #[arg(long, default_value = "max")]
        speed: String,
    },
    /// Run the spike test over a `timestamp,value` CSV (header required, UTC timestamps
    /// `YYYY-MM-DD HH:MM:SS`, rows in time order) with the config's [detection] settings; one
    /// JSON object per alarm per line.
    Backtest {
        file: PathBuf,
        /// Bin length (overrides detection.bin), e.g. 5m.
        #[arg(long)]
        bin: Option<String>,
        /// Add "series": NAME to every line.
        #[arg(long)]
        series: Option<String>,
        /// Tail model (overrides detection.tail): negative_binomial or poisson.
        #[arg(long)]
        tail: Option<String>,
    },
    /// Time the whole analysis against bare jieba segmentation, on one core.
    Bench {
        /// A CSV whose text column supplies the documents.
        file: PathBuf,
        #[arg(long, default_value = "text")]
        text_col: String,
        /// Judge each document about the entity in this column (else the whole text).
        #[arg(long)]
        entity_col: Option<String>,
        /// Use at most this many documents.
        #[arg(long, default_value_t = 2000)]
        limit: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

#[derive(clap::Args, Clone)]
struct ColumnArgs {
    #[arg(long)]
    text_col: String,
    #[arg(long)]
    label_col: String,
    /// The label value that means "negative".
    #[arg(long)]
    negative_value: String,
    /// Judge each row about the entity in this column.
    #[arg(long)]
    entity_col: Option<String>,
}

impl ColumnArgs {
    fn describe(&self) -> String {
        let mut s = format!(
            "--text-col {} --label-col {} --negative-value {}",
            self.text_col, self.label_col, self.negative_value
        );
        if let Some(e) = &self.entity_col {
            s.push_str(&format!(" --entity-col {e}"));
        }
        s
    }

    fn columns(&self) -> yuqing::eval::Columns {
        yuqing::eval::Columns {
            text: self.text_col.clone(),
            label: self.label_col.clone(),
            negative_value: self.negative_value.clone(),
            entity: self.entity_col.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.color);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yuqing: {e:#}");
            match e.downcast_ref::<ClientError>() {
                Some(client) => ExitCode::from(client.exit_code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// Logs go to stderr. Colour codes only reach a terminal: under systemd, or piped into a file or
/// a shipper, they would be noise in every line.
fn init_logging(format: LogFormat, color: ColorChoice) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => {
            let ansi = match color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            builder.with_ansi(ansi).init()
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config> {
    let explicit = cli.config.is_some();
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("sources.toml"));
    Config::load(&path, explicit)
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Incidents { .. }
        | Command::Incident { .. }
        | Command::Report { .. }
        | Command::Digest { .. }
        | Command::Ack { .. }
        | Command::Resolve { .. }
        | Command::Reopen { .. }
        | Command::Hits { .. }
        | Command::Sources
        | Command::Mute { .. }
        | Command::Unmute { .. }
        | Command::Silences
        | Command::Notices { .. }
        | Command::Stats { .. } => run_client(&cli),
        Command::BenchApi {
            data_dir,
            hits,
            requests,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = runtime.block_on(yuqing::admin::bench::run(data_dir, *hits, *requests))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Demo {
            data_dir,
            listen,
            exit_after_incident,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(run_demo(data_dir.clone(), listen, *exit_after_incident))
        }
        Command::Export {
            since,
            brand,
            data_dir,
            out,
        } => {
            let config = load_config(&cli)?;
            let dir = data_dir.clone().unwrap_or(config.daemon.data_dir.clone());
            let store = yuqing::store::Store::open_in_zone(&dir, config.admin.time_zone)?;
            let since = match since {
                Some(text) => Some(
                    yuqing::admin::read::parse_when(text, &store, chrono::Utc::now())
                        .map_err(|e| anyhow::anyhow!("--since: {e}"))?,
                ),
                None => None,
            };
            let n = match out {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    yuqing::replay::export(&store, since, brand.as_deref(), &mut w)?
                }
                None => yuqing::replay::export(
                    &store,
                    since,
                    brand.as_deref(),
                    &mut std::io::stdout().lock(),
                )?,
            };
            eprintln!("exported {n} posts");
            Ok(())
        }
        Command::Replay { file, speed } => {
            if speed != "max" {
                anyhow::bail!("--speed {speed:?}: only `max` is offered (the clock is simulated)");
            }
            let config = load_config(&cli)?;
            let analyzer = build_analyzer(&config)?;
            let reader = std::io::BufReader::new(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            );
            let posts = yuqing::replay::read_posts(reader, &file.display().to_string())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let events = runtime.block_on(yuqing::replay::replay(&config, &analyzer, posts))?;
            for event in events {
                println!("{}", serde_json::to_string(&event)?);
            }
            Ok(())
        }
        Command::Backtest {
            file,
            bin,
            series,
            tail,
        } => {
            let config = load_config(&cli)?;
            let spike = backtest_config(config.detection.spike, bin.as_deref(), tail.as_deref())?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let alarms = yuqing::detect::backtest::run(&text, &spike)
                .with_context(|| format!("in {}", file.display()))?;
            for alarm in &alarms {
                println!(
                    "{}",
                    yuqing::detect::backtest::alarm_json(alarm, series.as_deref())
                );
            }
            Ok(())
        }
        Command::Check => {
            let config = load_config(&cli)?;
            print!("{}", config.summary());
            Ok(())
        }
        Command::Run { data_dir } => {
            let mut config = load_config(&cli)?;
            config.ensure_runnable()?;
            if let Some(dir) = data_dir {
                config.daemon.data_dir = dir.clone();
            }
            let secrets = Secrets::from_env(&config);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (trigger, shutdown) = shutdown::channel();
                tokio::spawn(async move {
                    wait_for_signal().await;
                    tracing::info!("signal received; finishing in-flight work");
                    trigger.trigger();
                });
                // Listening before the daemon starts: a SIGHUP sent as soon as it logs that it
                // runs must not meet the default action, which ends the process.
                let hangups = listen_for_hangups();
                let running = daemon::start(config, secrets, shutdown).await?;
                reload_on_hangup(hangups, running.reloader());
                running.wait().await
            })
        }
        Command::Eval { file, columns } => {
            let config = load_config(&cli)?;
            let analyzer = build_analyzer(&config)?;
            let data = read_dataset(file, &columns.columns())?;
            let (confusion, missing, docs_per_s) = eval::evaluate(&analyzer, &data.examples);
            let report = eval::Report::new(confusion, docs_per_s, data.malformed.len(), missing, 0);
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Learn {
            files,
            columns,
            out,
            cv,
            group,
            rules_only,
            cv_predictions,
            c,
            iterations,
            prune,
            feedback,
            feedback_weight,
        } => {
            let config = load_config(&cli)?;
            // Features are extracted by the rules alone: the model learns on top of them. About
            // an entity, the general model's verdict on its window is one more feature, so it
            // is loaded as the scorer would load it.
            let lexicon = Lexicon::load(config.analysis.lexicon_dir.as_deref())?;
            let general = (config.analysis.general && columns.entity_col.is_some())
                .then(|| {
                    yuqing::analyze::lexicon::load_general(config.analysis.lexicon_dir.as_deref())
                })
                .transpose()?;
            let general_note = match &general {
                Some(_) => format!(
                    "s:general (the general model's log-odds for the window of a post of up to 420 bytes, from {}). ",
                    match &config.analysis.lexicon_dir {
                        Some(dir) if dir.join("general.tsv").exists() =>
                            dir.join("general.tsv").display().to_string(),
                        _ => "lexicons/general.tsv, built in".to_string(),
                    }
                ),
                None => String::new(),
            };
            let analyzer =
                Analyzer::new(lexicon, &config.brands, config.analysis.negative_threshold)
                    .with_general(general);
            let mut examples: Vec<eval::Example> = Vec::new();
            let mut sets: Vec<usize> = Vec::new();
            let mut malformed = 0;
            for (i, file) in files.iter().enumerate() {
                let data = read_dataset(file, &columns.columns())?;
                sets.extend(std::iter::repeat_n(i, data.examples.len()));
                examples.extend(data.examples);
                malformed += data.malformed.len();
            }
            let first_verdict = examples.len();
            if let Some(path) = feedback {
                if columns.entity_col.is_none() {
                    anyhow::bail!(
                        "--feedback: staff verdicts are about a brand, so they train the brand \
                         model: add --entity-col"
                    );
                }
                if !(feedback_weight.is_finite() && *feedback_weight > 0.0) {
                    anyhow::bail!(
                        "--feedback-weight must be a positive number, not {feedback_weight}"
                    );
                }
                let verdicts = eval::read_feedback(path)?;
                for problem in &verdicts.malformed {
                    eprintln!("malformed: {problem}");
                }
                if verdicts.examples.is_empty() {
                    anyhow::bail!("{}: no staff verdicts in it", path.display());
                }
                eprintln!(
                    "{} staff verdicts from {}, each counting {feedback_weight}×",
                    verdicts.examples.len(),
                    path.display()
                );
                sets.extend(std::iter::repeat_n(files.len(), verdicts.examples.len()));
                examples.extend(verdicts.examples);
                malformed += verdicts.malformed.len();
            }
            let opts = yuqing::analyze::learned::TrainOptions {
                c: *c,
                iterations: *iterations,
                prune_below: *prune,
            };
            let started = std::time::Instant::now();
            let mut set = eval::extract(&analyzer, &examples);
            eval::weigh_from(&mut set, first_verdict, *feedback_weight);
            eprintln!(
                "{} rows, {} features, extracted in {:.1}s",
                examples.len(),
                set.vocabulary.names.len(),
                started.elapsed().as_secs_f64()
            );
            if cv_predictions.is_some() && *cv == 0 {
                anyhow::bail!("--cv-predictions writes cross-validated judgments: add --cv K");
            }
            if *cv > 0 {
                let started = std::time::Instant::now();
                let folds = eval::Folds::new(&examples, *cv, *group)?;
                let choice = if *rules_only {
                    eval::FeatureChoice::RulesOnly
                } else {
                    eval::FeatureChoice::All
                };
                let result = eval::cross_validate(&set, &examples, &folds, &opts, choice);
                if let Some(path) = cv_predictions {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    eval::write_cv_predictions(&examples, &folds, &result, file)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                let docs_per_s = examples.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
                let missing = set.rows.iter().filter(|r| r.is_none()).count() as u64;
                let reliability = eval::reliability(&result.predictions);
                eprintln!("reliability (held-out rows): P(negative) bin, rows, mean predicted, observed negative rate");
                for bin in &reliability {
                    eprintln!(
                        "  [{:.1}, {:.1})  {:>5}  {:.3}  {:.3}",
                        bin.low, bin.high, bin.n, bin.mean_predicted, bin.observed_negative
                    );
                }
                let report =
                    eval::Report::new(result.confusion, docs_per_s, malformed, missing, *cv);
                let mut line = serde_json::to_value(&report)?;
                line["group"] = serde_json::to_value(group)?;
                line["rules_only"] = json!(rules_only);
                line["purged_training_rows"] = json!(result.purged);
                line["reliability"] = serde_json::to_value(&reliability)?;
                if files.len() > 1 {
                    // Folds run over all the files together; each file's rows are scored
                    // apart, since one set's accuracy can hide another's.
                    let mut per_set = serde_json::Map::new();
                    for (file, c) in
                        files
                            .iter()
                            .zip(eval::by_set(&examples, &sets, &result.verdicts))
                    {
                        let r = eval::Report::new(c, docs_per_s, 0, 0, *cv);
                        per_set.insert(
                            file_name(file),
                            json!({
                                "n": r.n,
                                "accuracy": r.accuracy,
                                "neg_precision": r.neg_precision,
                                "neg_recall": r.neg_recall,
                                "neg_f1": r.neg_f1,
                            }),
                        );
                    }
                    line["by_set"] = serde_json::Value::Object(per_set);
                }
                println!("{line}");
            }
            if let Some(out) = out {
                let rows: Vec<&yuqing::analyze::learned::Row> = set.rows.iter().flatten().collect();
                let fitted = eval::fit(&set, &rows, &opts, config.analysis.negative_threshold);
                let negatives = examples.iter().filter(|e| e.negative).count();
                let names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
                let mut options = String::new();
                for (flag, value, default) in [("--c", *c, 0.3), ("--prune", *prune, 0.02)] {
                    if value != default {
                        options.push_str(&format!(" {flag} {value}"));
                    }
                }
                if *iterations != 600 {
                    options.push_str(&format!(" --iterations {iterations}"));
                }
                if let Some(path) = feedback {
                    options.push_str(&format!(" --feedback {}", file_name(path)));
                    if *feedback_weight != 5.0 {
                        options.push_str(&format!(" --feedback-weight {feedback_weight}"));
                    }
                }
                let kind = if fitted.targeted {
                    "s:text_neg (how much more negative the whole text is than the window, by the 64 words of TEXT_NEGATIVE_WORDS). \
                     <E> stands for the brand."
                } else {
                    "Learned from whole texts: it judges texts without a brand (lexicons/general.tsv)."
                };
                let header = format!(
                    "Learned weights for yuqing's scorer, written by `yuqing learn`. See lexicons/README.md.\n\
                     command: yuqing learn {} {}{} --out {}\n\
                     data: {} labeled rows ({} negative), {} malformed rows skipped\n\
                     model: L2 logistic regression, C={}, {} iterations; {} of {} non-zero weights kept (|w| >= {})\n\
                     __bias__ includes analysis.negative_threshold ({}), so a score below -{} means P(negative) > 0.5.\n\
                     Lines are feature<TAB>weight, strongest first; positive weights push towards negative.\n\
                     Features: word, a_b (bigram in a clause), s: (structure), s:ctx= (how the mention stands to what is said),\n\
                     {}lex:score (the hand-rule score). {}",
                    names.join(" "),
                    columns.describe(),
                    options,
                    out.display(),
                    examples.len(),
                    negatives,
                    malformed,
                    c,
                    iterations,
                    fitted.weights.len(),
                    fitted.nonzero,
                    prune,
                    config.analysis.negative_threshold,
                    config.analysis.negative_threshold,
                    general_note,
                    kind,
                );
                std::fs::write(out, fitted.to_tsv(&header))
                    .with_context(|| format!("writing {}", out.display()))?;
                eprintln!(
                    "wrote {} weights to {}",
                    fitted.weights.len(),
                    out.display()
                );
            }
            Ok(())
        }
        Command::ExportFeedback { data_dir, out } => {
            let config = load_config(&cli)?;
            let dir = data_dir.clone().unwrap_or(config.daemon.data_dir);
            let store = yuqing::store::Store::open(&dir)?;
            let file = std::fs::File::create(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let rows = yuqing::feedback::latest_verdicts(store.feedback()?);
            let n = eval::write_feedback_csv(&rows, file)?;
            eprintln!("wrote {n} feedback rows to {}", out.display());
            Ok(())
        }
        Command::Bench {
            file,
            text_col,
            entity_col,
            limit,
            rounds,
        } => {
            let config = load_config(&cli)?;
            let analyzer = build_analyzer(&config)?;
            let columns = eval::Columns {
                text: text_col.clone(),
                label: text_col.clone(),
                negative_value: String::new(),
                entity: entity_col.clone(),
            };
            let data = read_dataset(file, &columns)?;
            let examples: Vec<eval::Example> = data.examples.into_iter().take(*limit).collect();
            let report = eval::bench(&analyzer, &examples, *rounds);
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Score {
            brand,
            explain,
            texts,
        } => {
            let config = load_config(&cli)?;
            let analyzer = build_analyzer(&config)?;
            let target = brand.as_deref().map(|b| analyzer.matcher_for(b));
            let mut out = std::io::stdout().lock();
            let mut score_one = |text: &str| -> Result<()> {
                let line = score_json(&analyzer, target.as_ref(), text, *explain);
                use std::io::Write;
                writeln!(out, "{line}")?;
                Ok(())
            };
            if texts.is_empty() {
                for line in std::io::stdin().lock().lines() {
                    let line = line.context("reading stdin")?;
                    if !line.trim().is_empty() {
                        score_one(&line)?;
                    }
                }
            } else {
                for t in texts {
                    score_one(t)?;
                }
            }
            Ok(())
        }
    }
}

/// The client commands: thin callers of the running daemon's API.
fn run_client(cli: &Cli) -> Result<()> {
    let config = load_config(cli)?;
    let base = cli
        .admin_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.admin.listen));
    let token = yuqing::admin::auth::client_token(&config.admin, &config.daemon.data_dir);
    let client = client::Client::new(&base, token);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let json_lines = cli.json;
    let print_items = |items: &[serde_json::Value],
                       as_table: &dyn Fn(&[serde_json::Value]) -> String| {
        if json_lines {
            for item in items {
                println!("{item}");
            }
        } else {
            print!("{}", as_table(items));
        }
    };
    runtime.block_on(async {
        match &cli.command {
            Command::Incidents { all } => {
                let state = if *all { "all" } else { "open" };
                let list = client
                    .get(&format!("/api/v1/incidents?state={state}"))
                    .await?;
                print_items(as_array(&list["incidents"]), &client::incidents_table);
            }
            Command::Incident { id } => {
                let incident = client
                    .get(&format!("/api/v1/incidents/{}", client::encode(id)))
                    .await?;
                print_items(std::slice::from_ref(&incident), &|i| {
                    client::incident_text(&i[0])
                });
            }
            Command::Report { id } => {
                let markdown = client
                    .get_text(&format!("/api/v1/incidents/{}/report", client::encode(id)))
                    .await?;
                if json_lines {
                    println!("{}", json!({ "id": id, "report": markdown }));
                } else {
                    print!("{markdown}");
                }
            }
            Command::Digest {
                day,
                brand,
                markdown,
            } => {
                let format = match (json_lines, markdown) {
                    (true, _) => "json",
                    (false, true) => "markdown",
                    (false, false) => "text",
                };
                let mut query = format!("day={}&format={format}", client::encode(day));
                if let Some(b) = brand {
                    query.push_str(&format!("&brand={}", client::encode(b)));
                }
                let answer = client.get_text(&format!("/api/v1/digest?{query}")).await?;
                if json_lines {
                    // One line, as every --json answer.
                    let value: serde_json::Value =
                        serde_json::from_str(&answer).context("the daemon's digest is not JSON")?;
                    println!("{}", value["digest"]);
                } else {
                    print!("{answer}");
                }
            }
            Command::Ack { id } => transition(&client, id, "ack", None, json_lines).await?,
            Command::Resolve { id, note } => {
                transition(&client, id, "resolve", note.as_deref(), json_lines).await?
            }
            Command::Reopen { id, note } => {
                transition(&client, id, "reopen", note.as_deref(), json_lines).await?
            }
            Command::Hits {
                brand,
                since,
                negative,
                source,
                limit,
            } => {
                let mut query = format!("since={}&limit={limit}", client::encode(since));
                if let Some(b) = brand {
                    query.push_str(&format!("&brand={}", client::encode(b)));
                }
                if let Some(s) = source {
                    query.push_str(&format!("&source={}", client::encode(s)));
                }
                if *negative {
                    query.push_str("&negative=true");
                }
                let page = client.get(&format!("/api/v1/hits?{query}")).await?;
                print_items(as_array(&page["hits"]), &client::hits_table);
            }
            Command::Sources => {
                let list = client.get("/api/v1/sources").await?;
                print_items(as_array(&list["sources"]), &client::sources_table);
            }
            Command::Mute {
                kind,
                name,
                duration,
                reason,
            } => {
                let answer = client
                    .post(
                        "/api/v1/silences",
                        json!({"kind": kind, "name": name, "duration": duration, "reason": reason}),
                    )
                    .await?;
                print_items(
                    std::slice::from_ref(&answer["silence"]),
                    &client::silences_table,
                );
            }
            Command::Unmute { id } => {
                let answer = client
                    .post(
                        &format!("/api/v1/silences/{}/expire", client::encode(id)),
                        json!({}),
                    )
                    .await?;
                print_items(
                    std::slice::from_ref(&answer["silence"]),
                    &client::silences_table,
                );
            }
            Command::Silences => {
                let list = client.get("/api/v1/silences").await?;
                print_items(as_array(&list["silences"]), &client::silences_table);
            }
            Command::Notices { all } => {
                let list = client
                    .get(if *all {
                        "/api/v1/notices?all=true"
                    } else {
                        "/api/v1/notices"
                    })
                    .await?;
                print_items(as_array(&list["notices"]), &client::notices_table);
            }
            Command::Stats { brand, days } => {
                let brands: Vec<String> = match brand {
                    Some(b) => vec![b.clone()],
                    None => config.brands.iter().map(|b| b.name.clone()).collect(),
                };
                for b in brands {
                    let daily = client
                        .get(&format!(
                            "/api/v1/brands/{}/daily?days={days}",
                            client::encode(&b)
                        ))
                        .await?;
                    print_items(as_array(&daily["days"]), &|d| client::daily_table(&b, d));
                }
            }
            _ => unreachable!("only client commands reach here"),
        }
        Ok(())
    })
}

/// `yuqing demo`: the scripted crisis, the real daemon on it, and the console's address.
async fn run_demo(
    data_dir: Option<PathBuf>,
    listen: &str,
    exit_after_incident: bool,
) -> Result<()> {
    let started = std::time::Instant::now();
    let server =
        yuqing::demo::DemoServer::start(yuqing::demo::Script::default_crisis(), move || {
            started.elapsed()
        })
        .await?;
    let temporary = match &data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("yuqing-demo-")
                .tempdir()
                .context("creating the demo's data folder")?,
        ),
    };
    let dir = data_dir.unwrap_or_else(|| temporary.as_ref().expect("made above").path().into());
    let text = yuqing::demo::demo_config(&server, &dir, listen);
    let config = Config::parse(&text, yuqing::config::Origin::Embedded)?;
    let (trigger, shutdown) = shutdown::channel();
    let running = daemon::start(config.clone(), Secrets::default(), shutdown).await?;
    let admin = running
        .admin_addr()
        .context("the demo runs the admin server")?;
    // The daemon made (or found) the token as it started.
    let token = yuqing::admin::auth::client_token(&config.admin, &config.daemon.data_dir)
        .unwrap_or_default();
    println!("yuqing demo: a scripted crisis about 度小满 is being replayed on loopback feeds.");
    println!("  web console: http://{admin}  (log in with the token below to act)");
    println!("  admin token: {token}");
    println!("  data folder: {}", dir.display());
    println!("Calm posts first; the complaints start after about 10 seconds, and an incident");
    println!("opens within a minute. Then acknowledge it in the console, or run:");
    println!("  YUQING_ADMIN_TOKEN={token} yuqing --admin-url http://{admin} ack 1");
    println!("Ctrl-C ends the demo.\n");
    let client = client::Client::new(&format!("http://{admin}"), None);
    let stop = trigger.clone();
    let watcher = tokio::spawn(async move {
        loop {
            if let Ok(list) = client.get("/api/v1/incidents").await {
                if let Some(first) = list["incidents"].as_array().and_then(|l| l.first()) {
                    return Some(first["id"].as_u64().unwrap_or(1));
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    tokio::select! {
        opened = watcher, if exit_after_incident => {
            if let Ok(Some(id)) = opened {
                println!("yuqing demo: incident #{id} opened; stopping as asked (--exit-after-incident).");
            }
            stop.trigger();
        }
        _ = wait_for_signal() => {
            println!("yuqing demo: stopping.");
            trigger.trigger();
        }
    }
    running.wait().await?;
    server.stop().await;
    drop(temporary);
    Ok(())
}

/// The config's spike settings with `yuqing backtest`'s overrides applied and checked.
fn backtest_config(
    mut spike: yuqing::detect::spike::SpikeConfig,
    bin: Option<&str>,
    tail: Option<&str>,
) -> Result<yuqing::detect::spike::SpikeConfig> {
    if let Some(bin) = bin {
        spike.bin = humantime::parse_duration(bin)
            .with_context(|| format!("--bin {bin:?}: write it like 5m or 1h"))?;
        anyhow::ensure!(!spike.bin.is_zero(), "--bin must be longer than 0s");
        for w in &spike.windows {
            anyhow::ensure!(
                *w >= spike.bin && w.as_millis() % spike.bin.as_millis() == 0,
                "detection window {} is not a multiple of --bin {bin}",
                humantime::format_duration(*w)
            );
        }
    }
    if let Some(tail) = tail {
        spike.tail = yuqing::detect::spike::TailModel::from_name(tail)
            .with_context(|| format!("--tail {tail:?}: write negative_binomial or poisson"))?;
    }
    Ok(spike)
}

fn as_array(v: &serde_json::Value) -> &[serde_json::Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

async fn transition(
    client: &client::Client,
    id: &str,
    verb: &str,
    note: Option<&str>,
    json_lines: bool,
) -> Result<()> {
    let body = match note {
        Some(n) => json!({ "note": n }),
        None => json!({}),
    };
    let answer = client
        .post(
            &format!("/api/v1/incidents/{}/{verb}", client::encode(id)),
            body,
        )
        .await?;
    if json_lines {
        println!("{answer}");
    } else {
        println!("{}", answer["message"].as_str().unwrap_or("done"));
    }
    Ok(())
}

/// A file's name without its folder, as a learned file's header and `by_set` name it.
fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn build_analyzer(config: &Config) -> Result<Analyzer> {
    Analyzer::from_config(&config.analysis, &config.brands)
}

/// Reads a labeled CSV, reporting each malformed row on stderr.
fn read_dataset(file: &std::path::Path, columns: &eval::Columns) -> Result<eval::Dataset> {
    let data = eval::read_csv(file, columns)?;
    for problem in data.malformed.iter().take(20) {
        eprintln!("malformed: {problem}");
    }
    if data.malformed.len() > 20 {
        eprintln!("malformed: … and {} more", data.malformed.len() - 20);
    }
    Ok(data)
}

/// One `yuqing score` line. Without `--brand`, every configured brand the text mentions is
/// judged and the most negative verdict is reported. A text that names no brand (or not the
/// `--brand` asked about) is no brand hit: `brand_hit` is false, `negative` is false, and the
/// whole text's general tone is reported apart, under `tone`.
fn score_json(
    analyzer: &Analyzer,
    target: Option<&yuqing::analyze::brand::BrandMatcher>,
    text: &str,
    explain: bool,
) -> serde_json::Value {
    let judged: Vec<(String, yuqing::analyze::Judgment)> = match target {
        Some(t) => analyzer
            .judge_target(text, t)
            .map(|j| vec![(t.name.clone(), j)])
            .unwrap_or_default(),
        None => analyzer.analyze(text),
    };
    let brands: Vec<&str> = judged.iter().map(|(b, _)| b.as_str()).collect();
    let decisive = judged
        .iter()
        .map(|(_, j)| j)
        .min_by(|a, b| a.score.total_cmp(&b.score));
    let explanation = |j: &yuqing::analyze::Judgment| {
        json!({
            "clauses": j.clauses,
            "contributions": j.contributions,
            "harm_weight": j.harm_weight,
        })
    };
    let Some(decisive) = decisive else {
        let tone = analyzer.judge_text(text);
        let mut tone_json = json!({
            "score": round(tone.score),
            "negative": tone.negative,
            "terms": tone.terms(),
            "crisis": tone.crisis,
        });
        if explain {
            tone_json["explanation"] = explanation(&tone);
        }
        return json!({
            "text": text,
            "brand_hit": false,
            "brands": brands,
            "score": 0.0,
            "negative": false,
            "terms": [],
            "crisis": [],
            "by_brand": {},
            "tone": tone_json,
        });
    };
    let by_brand: serde_json::Map<String, serde_json::Value> = judged
        .iter()
        .map(|(b, j)| {
            (
                b.clone(),
                json!({"score": round(j.score), "negative": j.negative, "terms": j.terms()}),
            )
        })
        .collect();
    let mut line = json!({
        "text": text,
        "brand_hit": true,
        "brands": brands,
        "score": round(decisive.score),
        "negative": decisive.negative,
        "terms": decisive.terms(),
        "crisis": decisive.crisis,
        "by_brand": by_brand,
    });
    if explain {
        line["explanation"] = explanation(decisive);
    }
    line
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

fn listen_for_hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::hangup())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot listen for SIGHUP: reloading weights needs a restart");
            })
            .ok()
    }
    #[cfg(not(unix))]
    None
}

/// SIGHUP reloads the lexicons and learned weights from `analysis.lexicon_dir`, the way
/// daemons conventionally reread their files. The reloader logs what happened either way.
fn reload_on_hangup(hangups: Hangups, reloader: daemon::Reloader) {
    #[cfg(unix)]
    if let Some(mut hangups) = hangups {
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the lexicons and learned weights");
                let _ = reloader.reload().await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (hangups, reloader);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop yuqing");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
