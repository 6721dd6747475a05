//! `sources.toml`: what to watch, how to judge it, and whom to page.
//!
//! Loading is two-stage, in the manner of ripgrep's low/high args: serde first reads exactly what
//! the user wrote (`raw` structs), then `Config::from_raw` checks meaning and builds the typed
//! [`Config`] the daemon runs on.
//!
//! Every problem is reported at once, each naming the file, the line and the key, because a PR
//! team editing the file at 2 a.m. should fix it in one pass rather than by trial and error. So
//! short of a TOML syntax error, reading never stops: a value of the wrong type is kept as its
//! error (`raw::Checked`), a missing required key as `None`, and unknown keys are collected by
//! `serde_ignored`. Lines come from the document as `toml_edit` parsed it, looked up by the key's
//! path (`Locator`), which also covers keys that were never written or never read.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The `sources.toml` shipped with the repository, used when no config file exists at the
/// default path so that `yuqing run` works on a fresh clone.
pub const EMBEDDED_SOURCES_TOML: &str = include_str!("../sources.toml");

/// Where a config came from; used in every error message.
#[derive(Debug, Clone)]
pub enum Origin {
    File(PathBuf),
    Embedded,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Embedded => write!(f, "<embedded sources.toml>"),
        }
    }
}

/// One problem in a config file, located by line and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub line: usize,
    pub key: String,
    pub message: String,
}

/// Every problem found in one config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub origin: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} problem{} in {}",
            n,
            if n == 1 { "" } else { "s" },
            self.origin
        )?;
        for p in &self.problems {
            write!(
                f,
                "\n  {}:{}: {}: {}",
                self.origin, p.line, p.key, p.message
            )?;
        }
        Ok(())
    }
}

/// The validated configuration the daemon runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub origin: Origin,
    pub daemon: DaemonConfig,
    pub analysis: AnalysisConfig,
    pub detection: DetectionConfig,
    pub telegram: TelegramConfig,
    pub admin: AdminConfig,
    pub incidents: IncidentsConfig,
    pub delivery: DeliveryConfig,
    /// Chat and webhook channels besides Telegram (`[[channels]]`): Feishu, DingTalk, WeCom,
    /// Slack, generic webhooks.
    pub channels: Vec<ChannelConfig>,
    pub reports: ReportsConfig,
    pub dedupe: DedupeConfig,
    /// Silences written in the file (`[[silences]]`), put in place at start.
    pub silences: Vec<crate::store::Silence>,
    pub brands: Vec<BrandConfig>,
    pub sources: Vec<SourceConfig>,
    /// What is allowed but probably not meant (a config that watches nothing); printed by
    /// `yuqing check`.
    pub warnings: Vec<ConfigProblem>,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The sled folder. Relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    pub user_agent: String,
    pub fetch_timeout: Duration,
    pub max_body_bytes: usize,
    /// How many sources may be fetched at once across all hosts.
    pub max_concurrent_fetches: usize,
    /// How many requests may be in flight to one host (host:port) at once, so that twenty
    /// sources on one RSSHub do not hammer it.
    pub per_host: usize,
}

#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Directory whose lexicon files replace the embedded ones, file by file.
    pub lexicon_dir: Option<PathBuf>,
    /// A brand score below `-negative_threshold` makes a hit negative.
    pub negative_threshold: f64,
    /// Whether the learned weights (`learned.tsv`) join the hand rules.
    pub learned: bool,
    /// Whether the general model (`general.tsv`) judges texts without a brand and gives the
    /// brand model its view of each brand's window.
    pub general: bool,
}

#[derive(Debug, Clone)]
pub struct DetectionConfig {
    /// The sliding window negative hits are counted over.
    pub window: Duration,
    /// How far back the baseline looks (the current window excluded).
    pub baseline_window: Duration,
    /// Fewest negative hits in one window that may open an incident.
    pub min_negative: u64,
    /// The window count must reach `spike_ratio` × the baseline count per window.
    pub spike_ratio: f64,
    /// How many posts an alert shows.
    pub top_posts: usize,
    /// The seasonal, overdispersed, multi-window spike test (`detect::spike`), as used by
    /// `yuqing backtest`; read from the same section's `bin`, `windows`, `min_count`,
    /// `min_ratio`, `p_value`, `rearm_p`, `warmup`, `baseline_half_life`, `slot_prior` and
    /// `tail` keys.
    pub spike: crate::detect::spike::SpikeConfig,
}

/// How incidents live: what opens one at once, when they end by themselves, and how an owner is
/// kept to their word.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentsConfig {
    /// One hit at least this severe opens an incident at once, whatever the volume (0 = off).
    pub critical_severity: f64,
    /// An open incident resolves by itself once its brand has stayed below 1.5× its baseline
    /// this long (0 = never).
    pub resolve_after: Duration,
    /// A new spike this soon after a resolve reopens the same incident instead of a new one.
    pub reopen_within: Duration,
    /// How often the owner of an acknowledged, unresolved incident is reminded (0 = never).
    pub remind_every: Duration,
    /// After this long acknowledged but unresolved, the incident is triggered and paged again
    /// (0 = never).
    pub ack_expires: Duration,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            critical_severity: 20.0,
            resolve_after: Duration::from_secs(2 * 3600),
            reopen_within: Duration::from_secs(6 * 3600),
            remind_every: Duration::from_secs(4 * 3600),
            ack_expires: Duration::from_secs(24 * 3600),
        }
    }
}

/// How the outbox retries a failing channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryConfig {
    /// The wait after a channel's first failure; it doubles with each further one…
    pub retry_first: Duration,
    /// …up to this.
    pub retry_max: Duration,
    /// After failing this long, a message's full text also goes to the console and the log.
    pub fallback_after: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            fallback_after: Duration::from_secs(120),
        }
    }
}

/// When a post counts as a copy of another (`[dedupe]`): reposts raise the original's
/// amplification instead of being new hits.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupeConfig {
    /// Most bits in which two posts' SimHash fingerprints may differ for one to be a copy of
    /// the other (0 = identical words only; at most [`crate::store::MAX_NEAR_DISTANCE`]).
    pub near_distance: u32,
    /// How far apart in time a copy and its original may be.
    pub near_window: Duration,
}

impl Default for DedupeConfig {
    fn default() -> Self {
        DedupeConfig {
            near_distance: 3,
            near_window: Duration::from_secs(3 * 86_400),
        }
    }
}

/// The admin HTTP server: API, metrics and web console.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub enabled: bool,
    pub listen: std::net::SocketAddr,
    /// The address people reach the console at, for links in alerts. Defaults to
    /// `http://<listen>`.
    pub public_url: String,
    /// The zone whose days the daily figures (complaint rate, harm index) are counted in.
    pub time_zone: chrono_tz::Tz,
    /// Name of the environment variable that holds the API token; without it, a token is
    /// generated into the data folder.
    pub token_env: String,
    /// Serve reads without a token on a non-loopback address.
    pub open_reads: bool,
    /// The console's language when the browser states no preference: "zh" or "en".
    pub language: String,
}

/// The daily digest: when it goes out, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportsConfig {
    /// The local time of day (in `admin.time_zone`) the digest of the previous day is sent;
    /// `None` (`digest_at = "off"`) sends none.
    pub digest_at: Option<chrono::NaiveTime>,
    /// The channels the digest goes to, by name; empty means every configured channel.
    pub digest_channels: Vec<String>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            digest_at: Some(chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("09:00 exists")),
            digest_channels: Vec::new(),
        }
    }
}

/// The file in the data folder that holds the generated admin token (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The admin server's address unless configured: loopback only, a port of its own.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8847";

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub api_url: String,
    /// Name of the environment variable that holds the bot token.
    pub token_env: String,
    pub chat_id: Option<i64>,
    /// Telegram user ids allowed to /ack and /resolve.
    pub ack_users: Vec<u64>,
    pub tiers: Vec<TierConfig>,
    /// How many times the whole policy runs again from tier 1 after its last tier went
    /// unanswered; after that, the last tier is paged again at its interval until someone acks.
    pub repeat: u32,
    /// How long one getUpdates long poll waits for commands.
    pub poll_timeout: Duration,
}

/// One escalation tier: who is paged, and how long they have to acknowledge.
#[derive(Debug, Clone, PartialEq)]
pub struct TierConfig {
    pub name: String,
    /// Handles written into the page, e.g. `@alice`.
    pub mention: Vec<String>,
    pub ack_timeout: Duration,
    /// Local hours (in `admin.time_zone`) when this tier is not paged; escalation goes past it.
    pub quiet_hours: Option<QuietHours>,
    /// Who is @-mentioned on each channel, by channel name: Feishu user ids, DingTalk mobiles,
    /// WeCom user ids (`mentioned_list`). Telegram uses `mention`.
    pub targets: std::collections::BTreeMap<String, Vec<String>>,
}

/// A daily span of local time, e.g. 22:00–08:00 (it may cross midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub from: chrono::NaiveTime,
    pub to: chrono::NaiveTime,
}

impl QuietHours {
    /// "22:00-08:00"
    pub fn parse(text: &str) -> Option<QuietHours> {
        let (a, b) = text.trim().split_once('-')?;
        let time = |t: &str| chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
        let (from, to) = (time(a)?, time(b)?);
        (from != to).then_some(QuietHours { from, to })
    }

    pub fn contains(&self, at: chrono::NaiveTime) -> bool {
        if self.from < self.to {
            self.from <= at && at < self.to
        } else {
            at >= self.from || at < self.to
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BrandConfig {
    pub name: String,
    /// Other names the brand goes by; the name itself is always matched too.
    pub aliases: Vec<String>,
    /// Phrases in which an alias does not mean the brand (the solar term 小满 …).
    pub exclusions: Vec<String>,
}

impl BrandConfig {
    /// The name and every alias, deduplicated, in the order written.
    pub fn all_names(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        std::iter::once(self.name.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .filter(|n| seen.insert(*n))
            .collect()
    }
}

/// One `[[channels]]` entry: a group chat or endpoint that messages are delivered to, besides
/// Telegram and the console. Webhook URLs embed their key, so they are read from the
/// environment (`url_env`); the channel itself is built by [`crate::notify::webhooks::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Unique; `telegram` and `console` are reserved. Tier `targets` and outbox queues use it.
    pub name: String,
    pub kind: ChannelKind,
    pub url: ChannelUrl,
    /// The environment variable holding the signing secret (Feishu 签名校验, DingTalk 加签,
    /// the generic webhook's HMAC header).
    pub secret_env: Option<String>,
}

/// The platform a channel talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Feishu,
    Dingtalk,
    Wecom,
    Slack,
    Webhook,
}

impl ChannelKind {
    pub fn parse(text: &str) -> Option<ChannelKind> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "feishu" | "lark" => ChannelKind::Feishu,
            "dingtalk" => ChannelKind::Dingtalk,
            "wecom" => ChannelKind::Wecom,
            "slack" => ChannelKind::Slack,
            "webhook" => ChannelKind::Webhook,
            _ => return None,
        })
    }

    /// The kind as written in `sources.toml`.
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Feishu => "feishu",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// Whether the platform signs requests with a shared secret. WeCom and Slack webhooks
    /// have none: their URL is the only credential.
    pub fn signs(self) -> bool {
        matches!(
            self,
            ChannelKind::Feishu | ChannelKind::Dingtalk | ChannelKind::Webhook
        )
    }
}

/// Where a channel's webhook URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelUrl {
    /// The name of an environment variable that holds it (recommended: the URL embeds a key).
    Env(String),
    /// Written in the file; `yuqing check` warns that it is a secret in a file.
    Inline(String),
}

/// Channel names that belong to built-in channels.
pub const RESERVED_CHANNEL_NAMES: [&str; 2] = ["telegram", "console"];

#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// RSS, Atom or JSON Feed (RSSHub routes included).
    Feed,
    /// A list page read with CSS selectors (`[sources.select]`).
    Html(crate::parse::html::HtmlRules),
    /// A JSON API read through a mapping (`[sources.fields]`).
    Json(crate::parse::json::JsonRules),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    /// May hold `{brand}` (each watched brand's name, percent-encoded) and `{page}`.
    pub url: String,
    pub interval: Duration,
    /// How much a hit from this source counts in severity (1.0 = ordinary).
    pub weight: f64,
    /// The brands this source is watched for (all configured brands unless it says).
    pub brands: Vec<String>,
    /// Extra request headers, cookies included as one `Cookie` header; values may be secrets.
    pub headers: RequestHeaders,
    /// Replaces `[daemon] user_agent` for this source.
    pub user_agent: Option<String>,
    /// The zone the source writes local times in.
    pub time_zone: crate::parse::date::Zone,
    /// With `{page}` in the URL: pages 1 to `pages` are fetched, stopping at an empty one.
    pub pages: u32,
    /// Failing this long raises one health notice.
    pub alert_after: Duration,
    /// No new item for this long raises one health notice (None = never).
    pub silent_after: Option<Duration>,
}

impl SourceConfig {
    /// A feed with every option at its default, for tests and the demo.
    pub fn feed(name: &str, url: &str, interval: Duration) -> SourceConfig {
        SourceConfig {
            name: name.to_string(),
            kind: SourceKind::Feed,
            url: url.to_string(),
            interval,
            weight: 1.0,
            brands: Vec::new(),
            headers: RequestHeaders::default(),
            user_agent: None,
            time_zone: crate::parse::date::Zone::default(),
            pages: 1,
            alert_after: DEFAULT_ALERT_AFTER,
            silent_after: None,
        }
    }

    /// Whether hits about `brand` count for this source. A source configured without brands
    /// (as in tests) watches every brand.
    pub fn watches(&self, brand: &str) -> bool {
        self.brands.is_empty() || self.brands.iter().any(|b| b == brand)
    }

    /// Every URL one poll fetches, in order: one per watched brand when the URL holds
    /// `{brand}`, and for each of those pages 1 to `pages` when it holds `{page}`.
    pub fn request_urls(&self) -> Vec<RequestUrl> {
        let brands: Vec<Option<&str>> = if self.url.contains("{brand}") {
            self.brands.iter().map(|b| Some(b.as_str())).collect()
        } else {
            vec![None]
        };
        let pages = if self.url.contains("{page}") {
            self.pages.max(1)
        } else {
            1
        };
        brands
            .into_iter()
            .flat_map(|brand| {
                (1..=pages).map(move |page| RequestUrl {
                    url: crate::parse::json::expand_url(&self.url, brand, page),
                    brand: brand.map(str::to_string),
                    page,
                })
            })
            .collect()
    }
}

/// One request of a poll: its URL, and the brand and page it was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUrl {
    pub url: String,
    pub brand: Option<String>,
    pub page: u32,
}

/// A source stays failing this long before a health notice, unless it says otherwise.
pub const DEFAULT_ALERT_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Request headers of one source. Values may come from the environment (cookies, tokens), so
/// Debug shows names only: a config printed in a log or a panic leaks no secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders(pub Vec<(String, String)>);

impl fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| format!("{name}: ***")))
            .finish()
    }
}

impl fmt::Display for SourceKind {
    /// The kind as written in `sources.toml`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKind::Feed => f.write_str("feed"),
            SourceKind::Html(_) => f.write_str("html"),
            SourceKind::Json(_) => f.write_str("json"),
        }
    }
}

/// What `yuqing run` says when there is no source: `check` only warns about it.
const NOTHING_TO_WATCH: &str = "nothing to watch: the config has no [[sources]] entry; add one \
     per feed, e.g. [[sources]] with name = \"news\", kind = \"feed\", \
     url = \"https://example.com/rss\" and interval = \"10m\"";

impl Config {
    /// Loads `path`. When `path` is the implicit default and does not exist, falls back to the
    /// embedded `sources.toml`.
    pub fn load(path: &Path, path_was_explicit: bool) -> anyhow::Result<Config> {
        use anyhow::Context;
        if !path.exists() && !path_was_explicit {
            tracing::info!(
                path = %path.display(),
                "no config file at the default path; using the embedded sources.toml"
            );
            return Ok(Config::parse(EMBEDDED_SOURCES_TOML, Origin::Embedded)?);
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Ok(Config::parse(&text, Origin::File(path.to_path_buf()))?)
    }

    /// Parses and validates config text; `origin` is only used in messages.
    pub fn parse(text: &str, origin: Origin) -> Result<Config, ConfigError> {
        let lines = Lines::new(text);
        // Past a syntax error nothing can be read reliably, so it is the only problem reported.
        let doc = match toml_edit::ImDocument::parse(text) {
            Ok(doc) => doc,
            Err(err) => {
                let (line, key) = match err.span() {
                    Some(span) => (lines.line(span.start), lines.key_at(span.start)),
                    None => (1, "(file)".to_string()),
                };
                return Err(ConfigError {
                    origin: origin.to_string(),
                    problems: vec![ConfigProblem {
                        line,
                        key,
                        message: err.message().trim().to_string(),
                    }],
                });
            }
        };
        let locate = Locator { doc, lines };

        // The text is valid TOML, so reading `raw` cannot stop at a wrong value (see `Checked`);
        // serde_ignored hands over every key `raw` has no field for, to be reported as unknown.
        let mut unknown = Vec::new();
        let read: Result<raw::File, toml::de::Error> =
            serde_ignored::deserialize(toml::Deserializer::new(text), |path| {
                unknown.push(KeyPath::from_ignored(&path))
            });
        let raw = match read {
            Ok(raw) => raw,
            // Only a shape `raw` does not foresee could get here; report it rather than panic.
            Err(err) => {
                let line = err.span().map_or(1, |span| locate.lines.line(span.start));
                return Err(ConfigError {
                    origin: origin.to_string(),
                    problems: vec![ConfigProblem {
                        line,
                        key: "(file)".to_string(),
                        message: err.message().trim().to_string(),
                    }],
                });
            }
        };
        Config::from_raw(raw, unknown, origin, &locate)
    }

    /// Checks what was written and builds the typed config.
    ///
    /// Each value is taken out of `raw` once, where its type problem (if any) is recorded; a
    /// value that is unusable is then left out of every semantic check, so one mistake makes one
    /// problem, not a cascade. Unusable values are replaced by placeholders so that the rest of
    /// the file still gets checked; no `Config` is returned while any problem stands, so the
    /// placeholders never reach the daemon.
    fn from_raw(
        raw: raw::File,
        unknown: Vec<KeyPath>,
        origin: Origin,
        locate: &Locator,
    ) -> Result<Config, ConfigError> {
        let mut problems = Problems {
            locate,
            list: Vec::new(),
            warnings: Vec::new(),
            unknown,
            missing: Vec::new(),
        };
        let root = KeyPath::default();

        let daemon = {
            let at = root.key("daemon");
            let raw::Table(d) = problems.valid(raw.daemon, &at).unwrap_or_default();
            DaemonConfig {
                data_dir: problems
                    .valid(d.data_dir, &at.key("data_dir"))
                    .unwrap_or_default(),
                user_agent: problems
                    .valid(d.user_agent, &at.key("user_agent"))
                    .unwrap_or_default(),
                fetch_timeout: problems
                    .valid(d.fetch_timeout, &at.key("fetch_timeout"))
                    .unwrap_or_default()
                    .0,
                max_body_bytes: problems
                    .valid_if(
                        d.max_body_bytes,
                        &at.key("max_body_bytes"),
                        |&n| n >= 1024,
                        "must be at least 1024",
                    )
                    .unwrap_or_default(),
                max_concurrent_fetches: problems
                    .valid_if(
                        d.max_concurrent_fetches,
                        &at.key("max_concurrent_fetches"),
                        |&n| n >= 1,
                        "must be at least 1",
                    )
                    .unwrap_or_default(),
                per_host: problems
                    .valid_if(
                        d.per_host,
                        &at.key("per_host"),
                        |&n| n >= 1,
                        "must be at least 1",
                    )
                    .unwrap_or(1),
            }
        };

        let analysis = {
            let at = root.key("analysis");
            let raw::Table(a) = problems.valid(raw.analysis, &at).unwrap_or_default();
            let lexicon_dir = a
                .lexicon_dir
                .and_then(|dir| problems.valid(dir, &at.key("lexicon_dir")));
            if let Some(dir) = lexicon_dir.as_ref().filter(|dir| !dir.is_dir()) {
                problems.at(
                    &at.key("lexicon_dir"),
                    format!("{} is not a directory", dir.display()),
                );
            }
            AnalysisConfig {
                lexicon_dir,
                negative_threshold: problems
                    .valid_if(
                        a.negative_threshold,
                        &at.key("negative_threshold"),
                        |&t| t.is_finite() && t >= 0.0,
                        "must be a number >= 0",
                    )
                    .unwrap_or_default(),
                learned: problems
                    .valid(a.learned, &at.key("learned"))
                    .unwrap_or_default(),
                general: problems
                    .valid(a.general, &at.key("general"))
                    .unwrap_or_default(),
            }
        };

        let detection = {
            let at = root.key("detection");
            let raw::Table(d) = problems.valid(raw.detection, &at).unwrap_or_default();
            let window = problems.valid(d.window, &at.key("window")).map(|w| w.0);
            let baseline_window = problems
                .valid(d.baseline_window, &at.key("baseline_window"))
                .map(|w| w.0);
            if let (Some(window), Some(baseline)) = (window, baseline_window) {
                if baseline <= window {
                    problems.at(
                        &at.key("baseline_window"),
                        "must be longer than detection.window",
                    );
                }
            }
            DetectionConfig {
                window: window.unwrap_or_default(),
                baseline_window: baseline_window.unwrap_or_default(),
                min_negative: problems
                    .valid_if(
                        d.min_negative,
                        &at.key("min_negative"),
                        |&n| n >= 1,
                        "must be at least 1",
                    )
                    .unwrap_or_default(),
                spike_ratio: problems
                    .valid_if(
                        d.spike_ratio,
                        &at.key("spike_ratio"),
                        |&r| r.is_finite() && r >= 1.0,
                        "must be a number >= 1.0",
                    )
                    .unwrap_or_default(),
                top_posts: problems
                    .valid(d.top_posts, &at.key("top_posts"))
                    .unwrap_or_default(),
                spike: spike_config(
                    raw::Spike {
                        bin: d.bin,
                        windows: d.windows,
                        min_count: d.min_count,
                        min_ratio: d.min_ratio,
                        p_value: d.p_value,
                        rearm_p: d.rearm_p,
                        warmup: d.warmup,
                        baseline_half_life: d.baseline_half_life,
                        slot_prior: d.slot_prior,
                        tail: d.tail,
                    },
                    &at,
                    &mut problems,
                ),
            }
        };

        let mut tier_target_keys: Vec<(KeyPath, String)> = Vec::new();
        let telegram = {
            let at = root.key("telegram");
            let raw::Table(t) = problems.valid(raw.telegram, &at).unwrap_or_default();
            if t.token.is_some() {
                problems.at(
                    &at.key("token"),
                    "never put the bot token in the file; set token_env to the name of an \
                     environment variable that holds it",
                );
            }
            let api_url = problems.valid(t.api_url, &at.key("api_url"));
            if let Some(Err(e)) = api_url.as_deref().map(reqwest::Url::parse) {
                problems.at(&at.key("api_url"), format!("not a URL: {e}"));
            }
            let token_env = problems
                .valid_if(
                    t.token_env,
                    &at.key("token_env"),
                    |name| !name.trim().is_empty(),
                    "must name an environment variable",
                )
                .unwrap_or_default();
            let chat_id = t
                .chat_id
                .and_then(|id| problems.valid(id, &at.key("chat_id")));
            let ack_users = problems.valid_items(t.ack_users, &at.key("ack_users"));
            let raw_tiers = problems.valid(t.tiers, &at.key("tiers"));
            if chat_id.is_some() && raw_tiers.as_ref().is_some_and(|t| t.0.is_empty()) {
                problems.at(
                    &at.key("tiers"),
                    "at least one escalation tier is needed when a chat_id is set",
                );
            }
            let mut tiers = Vec::new();
            for (i, tier) in raw_tiers.unwrap_or_default().0.into_iter().enumerate() {
                let at = at.key("tiers").index(i);
                let Some(raw::Table(tier)) = problems.valid(tier, &at) else {
                    continue;
                };
                let name = problems
                    .required(tier.name, &at.key("name"))
                    .map(|name| name.trim().to_string());
                if name.as_ref().is_some_and(String::is_empty) {
                    problems.at(&at.key("name"), "must not be empty");
                }
                let mention = problems.valid_items(tier.mention, &at.key("mention"));
                let ack_timeout = problems.required(tier.ack_timeout, &at.key("ack_timeout"));
                if ack_timeout.is_some_and(|t| t.0.is_zero()) {
                    problems.at(&at.key("ack_timeout"), "must be longer than 0s");
                }
                let quiet_hours = tier
                    .quiet_hours
                    .and_then(|q| problems.valid(q, &at.key("quiet_hours")))
                    .and_then(|text| match QuietHours::parse(&text) {
                        Some(q) => Some(q),
                        None => {
                            problems.at(
                                &at.key("quiet_hours"),
                                format!("{text:?} is not a span like \"22:00-08:00\""),
                            );
                            None
                        }
                    });
                let targets: std::collections::BTreeMap<String, Vec<String>> = tier
                    .targets
                    .and_then(|t| problems.valid(t, &at.key("targets")))
                    .unwrap_or_default();
                // Checked once the channels are known, below.
                tier_target_keys.extend(
                    targets
                        .keys()
                        .map(|k| (at.key("targets").key(k), k.clone())),
                );
                tiers.push(TierConfig {
                    name: name.unwrap_or_default(),
                    mention: mention.into_iter().flatten().flatten().collect(),
                    ack_timeout: ack_timeout.unwrap_or_default().0,
                    quiet_hours,
                    targets,
                });
            }
            TelegramConfig {
                api_url: api_url.unwrap_or_default(),
                token_env,
                chat_id,
                ack_users: ack_users.into_iter().flatten().flatten().collect(),
                tiers,
                repeat: problems
                    .valid(t.repeat, &at.key("repeat"))
                    .unwrap_or_default(),
                poll_timeout: problems
                    .valid(t.poll_timeout, &at.key("poll_timeout"))
                    .unwrap_or_default()
                    .0,
            }
        };

        let incidents = {
            let at = root.key("incidents");
            let raw::Table(i) = problems.valid(raw.incidents, &at).unwrap_or_default();
            let defaults = IncidentsConfig::default();
            IncidentsConfig {
                critical_severity: problems
                    .valid_if(
                        i.critical_severity,
                        &at.key("critical_severity"),
                        |&v| v.is_finite() && v >= 0.0,
                        "must be a number >= 0 (0 turns it off)",
                    )
                    .unwrap_or(defaults.critical_severity),
                resolve_after: problems
                    .valid(i.resolve_after, &at.key("resolve_after"))
                    .map_or(defaults.resolve_after, |d| d.0),
                reopen_within: problems
                    .valid(i.reopen_within, &at.key("reopen_within"))
                    .map_or(defaults.reopen_within, |d| d.0),
                remind_every: problems
                    .valid(i.remind_every, &at.key("remind_every"))
                    .map_or(defaults.remind_every, |d| d.0),
                ack_expires: problems
                    .valid(i.ack_expires, &at.key("ack_expires"))
                    .map_or(defaults.ack_expires, |d| d.0),
            }
        };

        let delivery = {
            let at = root.key("delivery");
            let raw::Table(d) = problems.valid(raw.delivery, &at).unwrap_or_default();
            let defaults = DeliveryConfig::default();
            let mut positive = |value, key: &str, default: Duration| {
                let value = problems
                    .valid(value, &at.key(key))
                    .map_or(default, |d: HumanDuration| d.0);
                if value.is_zero() {
                    problems.at(&at.key(key), "must be longer than 0s");
                }
                value
            };
            let retry_first = positive(d.retry_first, "retry_first", defaults.retry_first);
            let retry_max = positive(d.retry_max, "retry_max", defaults.retry_max);
            let fallback_after =
                positive(d.fallback_after, "fallback_after", defaults.fallback_after);
            if retry_max < retry_first {
                problems.at(
                    &at.key("retry_max"),
                    format!(
                        "{} is shorter than retry_first ({})",
                        human_duration(retry_max),
                        human_duration(retry_first)
                    ),
                );
            }
            DeliveryConfig {
                retry_first,
                retry_max,
                fallback_after,
            }
        };

        let dedupe = {
            let at = root.key("dedupe");
            let raw::Table(d) = problems.valid(raw.dedupe, &at).unwrap_or_default();
            let defaults = DedupeConfig::default();
            DedupeConfig {
                near_distance: problems
                    .valid_if(
                        d.near_distance,
                        &at.key("near_distance"),
                        |&v| v <= crate::store::MAX_NEAR_DISTANCE,
                        "must be 0, 1, 2 or 3: the near-duplicate index splits the 64-bit SimHash \
                         into 4 bands, and only fingerprints within 3 bits always share one",
                    )
                    .unwrap_or(defaults.near_distance),
                near_window: problems
                    .valid(d.near_window, &at.key("near_window"))
                    .map_or(defaults.near_window, |w| w.0),
            }
        };

        let admin = {
            let at = root.key("admin");
            let raw::Table(a) = problems.valid(raw.admin, &at).unwrap_or_default();
            let listen = problems
                .valid(a.listen, &at.key("listen"))
                .and_then(|text| match text.trim().parse::<std::net::SocketAddr>() {
                    Ok(addr) => Some(addr),
                    Err(_) => {
                        problems.at(
                            &at.key("listen"),
                            format!("{text:?} is not an address like \"127.0.0.1:8847\""),
                        );
                        None
                    }
                });
            let listen = listen.unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.parse().expect("valid"));
            let public_url = a
                .public_url
                .and_then(|url| problems.valid(url, &at.key("public_url")));
            if let Some(url) = &public_url {
                match reqwest::Url::parse(url) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                    _ => problems.at(
                        &at.key("public_url"),
                        format!("{url:?} is not an http(s) URL"),
                    ),
                }
            }
            let time_zone = problems
                .valid(a.time_zone, &at.key("time_zone"))
                .and_then(|name| match name.trim().parse::<chrono_tz::Tz>() {
                    Ok(tz) => Some(tz),
                    Err(_) => {
                        problems.at(
                            &at.key("time_zone"),
                            format!("unknown time zone {name:?}; write an IANA name like \"Asia/Shanghai\""),
                        );
                        None
                    }
                })
                .unwrap_or(chrono_tz::Asia::Shanghai);
            let language = problems
                .valid_if(
                    a.language,
                    &at.key("language"),
                    |l| l == "zh" || l == "en",
                    "must be \"zh\" or \"en\"",
                )
                .unwrap_or_else(|| "zh".to_string());
            AdminConfig {
                enabled: problems
                    .valid(a.enabled, &at.key("enabled"))
                    .unwrap_or(true),
                listen,
                public_url: public_url
                    .map(|u| u.trim_end_matches('/').to_string())
                    .unwrap_or_else(|| format!("http://{listen}")),
                time_zone,
                token_env: problems
                    .valid_if(
                        a.token_env,
                        &at.key("token_env"),
                        |name| !name.trim().is_empty(),
                        "must name an environment variable",
                    )
                    .unwrap_or_default(),
                open_reads: problems
                    .valid(a.open_reads, &at.key("open_reads"))
                    .unwrap_or_default(),
                language,
            }
        };

        let reports = {
            let at = root.key("reports");
            let raw::Table(r) = problems.valid(raw.reports, &at).unwrap_or_default();
            let defaults = ReportsConfig::default();
            let digest_at = problems
                .valid(r.digest_at, &at.key("digest_at"))
                .and_then(|text| {
                    if text.trim().eq_ignore_ascii_case("off") {
                        return Some(None);
                    }
                    match chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M") {
                        Ok(t) => Some(Some(t)),
                        Err(_) => {
                            problems.at(
                                &at.key("digest_at"),
                                format!(
                                    "{text:?} is not a local time of day like \"09:00\" (24-hour HH:MM), or \"off\""
                                ),
                            );
                            None
                        }
                    }
                })
                .unwrap_or(defaults.digest_at);
            let mut digest_channels = Vec::new();
            let mut seen = HashSet::new();
            let channels = problems.valid_items(r.digest_channels, &at.key("digest_channels"));
            for (i, name) in channels.into_iter().flatten().enumerate() {
                let Some(name) = name.map(|n| n.trim().to_string()) else {
                    continue;
                };
                let path = at.key("digest_channels").index(i);
                if name.is_empty() {
                    problems.at(&path, "must name a channel");
                } else if !seen.insert(name.clone()) {
                    problems.at(&path, format!("channel {name:?} is listed twice"));
                } else {
                    digest_channels.push(name);
                }
            }
            ReportsConfig {
                digest_at,
                digest_channels,
            }
        };

        let mut brands = Vec::new();
        let raw_brands = problems.valid(raw.brands, &root.key("brands"));
        // A list that is not a list was reported already; "none" would only repeat it.
        if raw_brands.as_ref().is_some_and(|b| b.0.is_empty()) {
            problems.at(
                &root.key("brands"),
                "at least one [[brands]] entry is needed",
            );
        }
        let mut brand_names = HashSet::new();
        for (i, b) in raw_brands.unwrap_or_default().0.into_iter().enumerate() {
            let at = root.key("brands").index(i);
            let Some(raw::Table(b)) = problems.valid(b, &at) else {
                continue;
            };
            let name = problems
                .required(b.name, &at.key("name"))
                .map(|name| name.trim().to_string());
            problems.unique_name(name.as_deref(), &at, &mut brand_names, "brand");
            let aliases = problems.valid_items(b.aliases, &at.key("aliases"));
            for (j, alias) in aliases.iter().flatten().enumerate() {
                if alias.as_ref().is_some_and(|a| a.trim().is_empty()) {
                    problems.at(&at.key("aliases").index(j), "must not be empty");
                }
            }
            let exclusions = problems.valid_items(b.exclusions, &at.key("exclusions"));
            // Only judge exclusions against a full list of names: with one unreadable, an
            // exclusion containing it would be refused for the wrong reason.
            let names: Option<Vec<&str>> = name.as_deref().and_then(|name| {
                let aliases = aliases.as_ref()?;
                std::iter::once(Some(name))
                    .chain(aliases.iter().map(|a| a.as_deref().map(str::trim)))
                    .filter(|n| n != &Some(""))
                    .collect()
            });
            if let Some(names) = names {
                for (j, ex) in exclusions.iter().flatten().enumerate() {
                    let Some(ex) = ex.as_deref().map(str::trim) else {
                        continue;
                    };
                    // An exclusion names a phrase in which a name does not mean the brand, so it
                    // must contain a name. One that only overlaps a name at its edge would drop
                    // real mentions that run into an ordinary word (with 满意 as an exclusion,
                    // 度小满意见很大 would not mention 度小满); one that shares nothing does
                    // nothing. Either way it is a typo or a name missing from the aliases.
                    if !names.iter().any(|n| ex.contains(n)) {
                        problems.at(
                            &at.key("exclusions").index(j),
                            format!(
                                "exclusion {ex:?} contains none of the brand's names ({}); an \
                                 exclusion must contain the name or an alias",
                                names.join(", ")
                            ),
                        );
                    }
                }
            }
            brands.push(BrandConfig {
                name: name.unwrap_or_default(),
                aliases: aliases
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|a| a.trim().to_string())
                    .collect(),
                exclusions: exclusions
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.trim().to_string())
                    .collect(),
            });
        }

        let mut silences = Vec::new();
        let raw_silences = problems.valid(raw.silences, &root.key("silences"));
        for (i, entry) in raw_silences.unwrap_or_default().0.into_iter().enumerate() {
            let at = root.key("silences").index(i);
            let Some(raw::Table(entry)) = problems.valid(entry, &at) else {
                continue;
            };
            let kind = problems
                .required(entry.kind, &at.key("kind"))
                .and_then(|k| match crate::store::SilenceKind::parse(&k) {
                    Some(kind) => Some(kind),
                    None => {
                        problems.at(
                            &at.key("kind"),
                            format!("{k:?} is not brand, source or topic"),
                        );
                        None
                    }
                });
            let name = problems
                .required(entry.name, &at.key("name"))
                .map(|n| n.trim().to_string());
            if name.as_ref().is_some_and(String::is_empty) {
                problems.at(&at.key("name"), "must not be empty");
            }
            let until = problems
                .required(entry.until, &at.key("until"))
                .and_then(
                    |text| match chrono::DateTime::parse_from_rfc3339(text.trim()) {
                        Ok(t) => Some(t.with_timezone(&chrono::Utc)),
                        Err(_) => {
                            problems.at(
                                &at.key("until"),
                                format!(
                                    "{text:?} is not a time like \"2026-12-24T00:00:00+08:00\""
                                ),
                            );
                            None
                        }
                    },
                );
            let reason = problems
                .valid(entry.reason, &at.key("reason"))
                .unwrap_or_default();
            if let (Some(kind), Some(name), Some(until)) = (kind, name, until) {
                silences.push(crate::store::Silence {
                    id: format!("config:{}:{name}", format!("{kind:?}").to_lowercase()),
                    kind,
                    name,
                    until,
                    created_by: "sources.toml".into(),
                    // Replaced by the time it is first put in place.
                    created_at: chrono::DateTime::UNIX_EPOCH,
                    reason,
                });
            }
        }

        let mut channels = Vec::new();
        let mut channel_names: HashSet<String> = RESERVED_CHANNEL_NAMES
            .iter()
            .map(|n| n.to_string())
            .collect();
        let raw_channels = problems.valid(raw.channels, &root.key("channels"));
        for (i, c) in raw_channels.unwrap_or_default().0.into_iter().enumerate() {
            let at = root.key("channels").index(i);
            let Some(raw::Table(c)) = problems.valid(c, &at) else {
                continue;
            };
            let name = problems
                .required(c.name, &at.key("name"))
                .map(|name| name.trim().to_string());
            match name.as_deref() {
                Some(reserved) if RESERVED_CHANNEL_NAMES.contains(&reserved) => problems.at(
                    &at.key("name"),
                    format!(
                        "{reserved:?} is the built-in channel's name; give this one another \
                         (e.g. \"feishu-pr\")"
                    ),
                ),
                other => problems.unique_name(other, &at, &mut channel_names, "channel"),
            }
            let kind = problems.required(c.kind, &at.key("kind")).and_then(|k| {
                match ChannelKind::parse(&k) {
                    Some(kind) => Some(kind),
                    None => {
                        problems.at(
                            &at.key("kind"),
                            format!(
                                "unknown channel kind {k:?}; write feishu, dingtalk, wecom, \
                                 slack or webhook"
                            ),
                        );
                        None
                    }
                }
            });
            let url_env = c.url_env.and_then(|e| {
                problems.valid_if(
                    e,
                    &at.key("url_env"),
                    |name| !name.trim().is_empty(),
                    "must name an environment variable",
                )
            });
            let url = c.url.and_then(|u| problems.valid(u, &at.key("url")));
            let url = match (url_env, url) {
                (Some(env), None) => Some(ChannelUrl::Env(env.trim().to_string())),
                (None, Some(url)) => {
                    match reqwest::Url::parse(url.trim()) {
                        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                        _ => problems.at(&at.key("url"), "not an http(s) URL"),
                    }
                    problems.warn(
                        &at.key("url"),
                        "the webhook URL embeds its key, and here it sits in the config file; \
                         prefer url_env, the name of an environment variable that holds it",
                    );
                    Some(ChannelUrl::Inline(url.trim().to_string()))
                }
                (Some(_), Some(_)) => {
                    problems.at(&at.key("url"), "write url_env or url, not both");
                    None
                }
                (None, None) => {
                    // Reported with the other missing keys, so a misspelling is named as one.
                    problems.missing.push(at.key("url_env"));
                    None
                }
            };
            let secret_env = c.secret_env.and_then(|e| {
                problems.valid_if(
                    e,
                    &at.key("secret_env"),
                    |name| !name.trim().is_empty(),
                    "must name an environment variable",
                )
            });
            if let (Some(kind), Some(_)) = (kind, &secret_env) {
                if !kind.signs() {
                    problems.at(
                        &at.key("secret_env"),
                        format!(
                            "{} webhooks are not signed (the URL's key is their only \
                             credential); remove secret_env",
                            kind.name()
                        ),
                    );
                }
            }
            if let (Some(name), Some(kind), Some(url)) = (name, kind, url) {
                channels.push(ChannelConfig {
                    name,
                    kind,
                    url,
                    secret_env: secret_env.map(|e| e.trim().to_string()),
                });
            }
        }
        // A tier's targets are keyed by channel name; a typo would page nobody, silently.
        for (path, key) in &tier_target_keys {
            if key == "console" || !channel_names.contains(key) {
                let configured: Vec<&str> = std::iter::once("telegram")
                    .chain(channels.iter().map(|c| c.name.as_str()))
                    .collect();
                problems.at(
                    path,
                    format!(
                        "{key:?} is not a configured channel (configured: {})",
                        configured.join(", ")
                    ),
                );
            }
        }
        // So does a digest sent to a channel that does not exist.
        for (i, name) in reports.digest_channels.iter().enumerate() {
            if !RESERVED_CHANNEL_NAMES.contains(&name.as_str()) && !channel_names.contains(name) {
                let configured: Vec<&str> = RESERVED_CHANNEL_NAMES
                    .iter()
                    .copied()
                    .chain(channels.iter().map(|c| c.name.as_str()))
                    .collect();
                problems.at(
                    &root.key("reports").key("digest_channels").index(i),
                    format!(
                        "{name:?} is not a configured channel (configured: {})",
                        configured.join(", ")
                    ),
                );
            }
        }

        let mut sources = Vec::new();
        let raw_sources = problems.valid(raw.sources, &root.key("sources"));
        // `check` accepts a config that watches nothing (to try out brands and scoring);
        // `run` refuses it through `ensure_runnable`.
        if raw_sources.as_ref().is_some_and(|s| s.0.is_empty()) {
            problems.warn(
                &root.key("sources"),
                "no [[sources]] entry: there is nothing to watch, so `yuqing run` will refuse \
                 to start",
            );
        }
        let mut source_names = HashSet::new();
        for (i, s) in raw_sources.unwrap_or_default().0.into_iter().enumerate() {
            let at = root.key("sources").index(i);
            let Some(raw::Table(s)) = problems.valid(s, &at) else {
                continue;
            };
            let name = problems
                .required(s.name, &at.key("name"))
                .map(|name| name.trim().to_string());
            problems.unique_name(name.as_deref(), &at, &mut source_names, "source");
            let url = problems.required(s.url, &at.key("url"));
            let kind_name = problems.required(s.kind, &at.key("kind"));
            let (has_select, has_follow, has_fields) =
                (s.select.is_some(), s.follow.is_some(), s.fields.is_some());
            let kind = match kind_name.as_deref() {
                Some("feed" | "rss" | "atom" | "rsshub") | None => SourceKind::Feed,
                Some("html") => match s.select.and_then(|t| problems.valid(t, &at.key("select"))) {
                    Some(raw::Table(select)) => html_rules(select, s.follow, &at, &mut problems),
                    None => {
                        problems.missing.push(at.key("select"));
                        SourceKind::Feed
                    }
                },
                Some("json") => match s.fields.and_then(|t| problems.valid(t, &at.key("fields"))) {
                    Some(raw::Table(fields)) => json_rules(fields, &at, &mut problems),
                    None => {
                        problems.missing.push(at.key("fields"));
                        SourceKind::Feed
                    }
                },
                Some(other) => {
                    problems.at(
                        &at.key("kind"),
                        format!("unknown source kind {other:?}; write \"feed\" (RSS, Atom, JSON Feed, RSSHub routes), \"html\" (a list page and CSS selectors) or \"json\" (a JSON API and a field mapping)"),
                    );
                    SourceKind::Feed
                }
            };
            let kind_is = |name: &str| kind_name.as_deref() == Some(name);
            if !kind_is("html") {
                if has_select {
                    problems.at(
                        &at.key("select"),
                        "only kind = \"html\" sources have selectors",
                    );
                }
                if has_follow {
                    problems.at(
                        &at.key("follow"),
                        "only kind = \"html\" sources follow links",
                    );
                }
            }
            if !kind_is("json") && has_fields {
                problems.at(
                    &at.key("fields"),
                    "only kind = \"json\" sources have a field mapping",
                );
            }
            let watched = match s.brands {
                None => brands
                    .iter()
                    .map(|b: &BrandConfig| b.name.clone())
                    .collect(),
                Some(list) => {
                    let list = problems
                        .valid_items(list, &at.key("brands"))
                        .unwrap_or_default();
                    let mut watched = Vec::new();
                    for (i, name) in list.into_iter().enumerate() {
                        let Some(name) = name else { continue };
                        if brands.iter().any(|b: &BrandConfig| b.name == name) {
                            watched.push(name);
                        } else {
                            problems.at(
                                &at.key("brands").index(i),
                                format!(
                                    "unknown brand {name:?}; name one of the [[brands]] entries"
                                ),
                            );
                        }
                    }
                    watched
                }
            };
            let pages = match s.pages {
                Some(pages) => problems.valid_if(
                    pages,
                    &at.key("pages"),
                    |&p| (1..=100).contains(&p),
                    "must be between 1 and 100",
                ),
                None => Some(1),
            }
            .unwrap_or(1);
            if let Some(url) = &url {
                if url.contains("{brand}") && watched.is_empty() {
                    problems.at(&at.key("url"), "{brand} needs at least one brand to watch");
                }
                let is_feed = matches!(
                    kind_name.as_deref(),
                    Some("feed" | "rss" | "atom" | "rsshub")
                );
                if url.contains("{page}") && is_feed {
                    problems.at(
                        &at.key("url"),
                        "{page} is for html and json sources; a feed is one document",
                    );
                }
                if pages > 1 && !url.contains("{page}") {
                    problems.at(&at.key("pages"), "pages > 1 needs {page} in the url");
                }
                // What the templates become, so the check covers the real requests.
                let example = crate::parse::json::expand_url(url, Some("brand"), 1);
                match reqwest::Url::parse(&example) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                    Ok(u) => problems.at(
                        &at.key("url"),
                        format!("scheme {:?} is not http or https", u.scheme()),
                    ),
                    Err(e) => problems.at(&at.key("url"), format!("not a URL: {e}")),
                }
            }
            let interval = problems.required(s.interval, &at.key("interval"));
            if interval.is_some_and(|i| i.0 < Duration::from_millis(100)) {
                problems.at(&at.key("interval"), "must be at least 100ms");
            }
            let weight = match s.weight {
                Some(weight) => problems.valid_if(
                    weight,
                    &at.key("weight"),
                    |&w| w.is_finite() && w > 0.0,
                    "must be a number > 0",
                ),
                None => Some(1.0),
            };
            let headers = request_headers(s.headers, s.cookies, &at, &mut problems);
            let user_agent = s
                .user_agent
                .and_then(|ua| problems.valid(ua, &at.key("user_agent")))
                .filter(|ua| {
                    reqwest::header::HeaderValue::from_str(ua).is_ok() || {
                        problems.at(&at.key("user_agent"), "must be one line of visible text");
                        false
                    }
                });
            let time_zone = match s
                .time_zone
                .and_then(|z| problems.valid(z, &at.key("time_zone")))
            {
                Some(zone) => crate::parse::date::Zone::parse(&zone).unwrap_or_else(|e| {
                    problems.at(&at.key("time_zone"), e);
                    Default::default()
                }),
                None => Default::default(),
            };
            let alert_after = match s.alert_after {
                Some(d) => problems
                    .valid_if(
                        d,
                        &at.key("alert_after"),
                        |d| !d.0.is_zero(),
                        "must be longer than 0s",
                    )
                    .map_or(DEFAULT_ALERT_AFTER, |d| d.0),
                None => DEFAULT_ALERT_AFTER,
            };
            let silent_after = s
                .silent_after
                .and_then(|d| problems.valid(d, &at.key("silent_after")))
                .map(|d| d.0)
                .filter(|d| !d.is_zero());
            sources.push(SourceConfig {
                name: name.unwrap_or_default(),
                kind,
                url: url.unwrap_or_default(),
                interval: interval.unwrap_or_default().0,
                weight: weight.unwrap_or(1.0),
                brands: watched,
                headers,
                user_agent,
                time_zone,
                pages,
                alert_after,
                silent_after,
            });
        }

        let (problems, warnings) = problems.finish();
        if !problems.is_empty() {
            return Err(ConfigError {
                origin: origin.to_string(),
                problems,
            });
        }
        Ok(Config {
            origin,
            daemon,
            analysis,
            detection,
            telegram,
            admin,
            incidents,
            delivery,
            channels,
            reports,
            dedupe,
            silences,
            brands,
            sources,
            warnings,
        })
    }

    /// Whether `yuqing run` can start on this config: `check` shows an empty source list as a
    /// warning, but a daemon with nothing to watch would only look like it is protecting the
    /// brand.
    pub fn ensure_runnable(&self) -> Result<(), ConfigError> {
        if !self.sources.is_empty() {
            return Ok(());
        }
        let line = self
            .warnings
            .iter()
            .find(|w| w.key == "sources")
            .map_or(1, |w| w.line);
        Err(ConfigError {
            origin: self.origin.to_string(),
            problems: vec![ConfigProblem {
                line,
                key: "sources".to_string(),
                message: NOTHING_TO_WATCH.to_string(),
            }],
        })
    }

    /// A human summary for `yuqing check`.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "config: {} (ok)", self.origin);
        let _ = writeln!(out, "data_dir: {}", self.daemon.data_dir.display());
        let _ = writeln!(out, "brands: {}", self.brands.len());
        for b in &self.brands {
            let _ = writeln!(
                out,
                "  {}: {} alias(es) [{}], {} exclusion(s)",
                b.name,
                b.aliases.len(),
                b.aliases.join(", "),
                b.exclusions.len()
            );
        }
        let _ = writeln!(out, "sources: {}", self.sources.len());
        for s in &self.sources {
            let _ = writeln!(
                out,
                "  {} ({}, every {}, weight {}): {}",
                s.name,
                s.kind,
                human_duration(s.interval),
                s.weight,
                s.url
            );
        }
        let d = &self.detection;
        let window = human_duration(d.window);
        let _ = writeln!(
            out,
            "detection: >= {} negative hits in {window}, and >= {}x the baseline (the average \
             per {window} over the previous {})",
            d.min_negative,
            d.spike_ratio,
            human_duration(d.baseline_window)
        );
        let t = &self.telegram;
        let token = match std::env::var(&t.token_env) {
            Ok(v) if !v.trim().is_empty() => "set",
            _ => "not set: alerts go to the console",
        };
        let _ = writeln!(
            out,
            "telegram: {} (token from ${}: {})",
            t.api_url, t.token_env, token
        );
        match t.chat_id {
            Some(id) => {
                let _ = writeln!(
                    out,
                    "  crisis chat {id}, {} user(s) may ack",
                    t.ack_users.len()
                );
            }
            None => {
                let _ = writeln!(out, "  no crisis chat_id: alerts go to the console");
            }
        }
        for (i, tier) in t.tiers.iter().enumerate() {
            let _ = writeln!(
                out,
                "  tier {}: {} {} (ack within {})",
                i + 1,
                tier.name,
                tier.mention.join(" "),
                human_duration(tier.ack_timeout)
            );
        }
        for c in &self.channels {
            let url = match &c.url {
                ChannelUrl::Env(var) => match std::env::var(var) {
                    Ok(v) if !v.trim().is_empty() => format!("URL from ${var}"),
                    _ => format!("URL from ${var}: NOT SET"),
                },
                ChannelUrl::Inline(_) => "URL in the file".to_string(),
            };
            let secret = match &c.secret_env {
                Some(var) => format!(", signed with ${var}"),
                None => String::new(),
            };
            let _ = writeln!(out, "channel {} ({}): {url}{secret}", c.name, c.kind.name());
        }
        let a = &self.admin;
        if a.enabled {
            let token = match std::env::var(&a.token_env) {
                Ok(v) if !v.trim().is_empty() => format!("from ${}", a.token_env),
                _ => format!(
                    "${} not set: generated into {}",
                    a.token_env,
                    self.daemon.data_dir.join(ADMIN_TOKEN_FILE).display()
                ),
            };
            let _ = writeln!(
                out,
                "admin: console, API and metrics on http://{} (public {}); token {token}; \
                 days in {}",
                a.listen, a.public_url, a.time_zone
            );
        } else {
            let _ = writeln!(out, "admin: disabled");
        }
        let r = &self.reports;
        let _ = writeln!(
            out,
            "reports: daily digest {} {} to {}",
            r.digest_at
                .map_or("off".to_string(), |t| format!("at {}", t.format("%H:%M"))),
            self.admin.time_zone,
            if r.digest_channels.is_empty() {
                "every channel".to_string()
            } else {
                r.digest_channels.join(", ")
            }
        );
        for w in &self.warnings {
            let _ = writeln!(
                out,
                "warning: {}:{}: {}: {}",
                self.origin, w.line, w.key, w.message
            );
        }
        out
    }
}

/// A duration the way a person writes one: `1d`, `1h 30m`, `1m 30s`, `200ms`, largest unit
/// first. Anything finer than a millisecond is dropped.
pub fn human_duration(duration: Duration) -> String {
    const UNITS: [(&str, u128); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut left = duration.as_millis();
    let mut parts = Vec::new();
    for (unit, millis) in UNITS {
        if left >= millis {
            parts.push(format!("{}{unit}", left / millis));
            left %= millis;
        }
    }
    if parts.is_empty() {
        return "0s".to_string();
    }
    parts.join(" ")
}

/// Where a value sits in the file, e.g. `sources[1].interval`: it names the key in messages and
/// is how `Locator` finds the line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct KeyPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl KeyPath {
    fn key(&self, key: &str) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Step::Key(key.to_string()));
        path
    }

    fn index(&self, index: usize) -> KeyPath {
        let mut path = self.clone();
        path.0.push(Step::Index(index));
        path
    }

    fn parent(&self) -> &[Step] {
        &self.0[..self.0.len().saturating_sub(1)]
    }

    fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Step::Key(key)) => Some(key),
            _ => None,
        }
    }

    fn from_ignored(path: &serde_ignored::Path) -> KeyPath {
        use serde_ignored::Path;
        match path {
            Path::Root => KeyPath::default(),
            Path::Seq { parent, index } => KeyPath::from_ignored(parent).index(*index),
            Path::Map { parent, key } => KeyPath::from_ignored(parent).key(key),
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => KeyPath::from_ignored(parent),
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Index(index) => write!(f, "[{index}]")?,
                Step::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    // Written as TOML would need it, so an odd key reads unambiguously.
                    let bare = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The problems found so far, and the means to put a line on them.
struct Problems<'a> {
    locate: &'a Locator<'a>,
    /// Each with the byte offset it points at, to sort by.
    list: Vec<(usize, ConfigProblem)>,
    warnings: Vec<ConfigProblem>,
    /// Keys `raw` has no field for, as serde_ignored reported them.
    unknown: Vec<KeyPath>,
    /// Required keys that were not written; reported in `finish`, after misspellings are known.
    missing: Vec<KeyPath>,
}

impl Problems<'_> {
    fn problem(&self, path: &KeyPath, message: String) -> (usize, ConfigProblem) {
        let offset = self.locate.offset(path);
        let problem = ConfigProblem {
            line: self.locate.lines.line(offset),
            key: path.to_string(),
            message,
        };
        (offset, problem)
    }

    fn at(&mut self, path: &KeyPath, message: impl Into<String>) {
        let problem = self.problem(path, message.into());
        self.list.push(problem);
    }

    fn warn(&mut self, path: &KeyPath, message: &str) {
        let (_, warning) = self.problem(path, message.to_string());
        self.warnings.push(warning);
    }

    /// The value written at `path` if it has the right type; otherwise None, and the reason is
    /// recorded.
    /// A `[[brands]]` or `[[sources]]` name must be there and be new.
    fn unique_name(
        &mut self,
        name: Option<&str>,
        entry: &KeyPath,
        seen: &mut HashSet<String>,
        what: &str,
    ) {
        match name {
            Some("") => self.at(&entry.key("name"), "must not be empty"),
            Some(name) if !seen.insert(name.to_string()) => self.at(
                &entry.key("name"),
                format!("{what} {name:?} is defined twice"),
            ),
            _ => {}
        }
    }

    fn valid<T>(&mut self, value: raw::Checked<T>, path: &KeyPath) -> Option<T> {
        match value {
            raw::Checked::Valid(value) => Some(value),
            raw::Checked::Invalid(why) => {
                self.at(path, why);
                None
            }
        }
    }

    /// Like `valid`, and records `message` when the value breaks `rule`. The value is returned
    /// either way: its problem is on record.
    fn valid_if<T>(
        &mut self,
        value: raw::Checked<T>,
        path: &KeyPath,
        rule: impl FnOnce(&T) -> bool,
        message: &str,
    ) -> Option<T> {
        let value = self.valid(value, path)?;
        if !rule(&value) {
            self.at(path, message);
        }
        Some(value)
    }

    /// Like `valid`, for a key that must be written.
    fn required<T>(&mut self, value: Option<raw::Checked<T>>, path: &KeyPath) -> Option<T> {
        match value {
            Some(value) => self.valid(value, path),
            None => {
                self.missing.push(path.clone());
                None
            }
        }
    }

    /// A list of values, each checked: None when it is not a list at all, and None in place of
    /// each item that is unusable.
    fn valid_items<T>(
        &mut self,
        value: raw::Checked<raw::List<raw::Checked<T>>>,
        path: &KeyPath,
    ) -> Option<Vec<Option<T>>> {
        let raw::List(items) = self.valid(value, path)?;
        Some(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| self.valid(item, &path.index(i)))
                .collect(),
        )
    }

    /// Every problem in the order of the file, and the warnings.
    fn finish(mut self) -> (Vec<ConfigProblem>, Vec<ConfigProblem>) {
        for key in std::mem::take(&mut self.unknown) {
            let written = key.last_key().unwrap_or_default().to_string();
            // A misspelt required key is one mistake: name the key that was meant, and do not
            // also report it missing.
            let meant = self.missing.iter().position(|m| {
                m.parent() == key.parent() && m.last_key().is_some_and(|m| similar(m, &written))
            });
            let message = match meant {
                Some(i) => {
                    let meant = self.missing.remove(i);
                    format!(
                        "unknown key {written:?}; did you mean {:?}?",
                        meant.last_key().unwrap_or_default()
                    )
                }
                None => format!("unknown key {written:?} (misspelt, or in the wrong table?)"),
            };
            self.at(&key, message);
        }
        for key in std::mem::take(&mut self.missing) {
            let message = format!(
                "required key {:?} is missing",
                key.last_key().unwrap_or_default()
            );
            self.at(&key, message);
        }
        // Stable, so problems at one place keep the order of the checks.
        self.list.sort_by_key(|&(offset, _)| offset);
        let list = self.list.into_iter().map(|(_, problem)| problem).collect();
        (list, self.warnings)
    }
}

/// Whether `written` is plausibly a misspelling of `key`: at most two characters inserted,
/// deleted or changed (Levenshtein), ignoring case.
fn similar(key: &str, written: &str) -> bool {
    let a: Vec<char> = key.to_lowercase().chars().collect();
    let b: Vec<char> = written.to_lowercase().chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let change = previous[j] + usize::from(ca != cb);
            current.push(change.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()] <= 2
}

/// Byte offsets in the config text to lines.
struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Lines<'t> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.starts[line - 1];
        let end = self.starts.get(line).copied().unwrap_or(self.text.len());
        &self.text[start..end]
    }

    /// The dotted key a syntax error points into, guessed from the text since the document
    /// could not be parsed: the enclosing `[table]` plus the key on the error's line, e.g.
    /// `detection.window`.
    fn key_at(&self, offset: usize) -> String {
        let line = self.line(offset);
        let table = (1..=line)
            .rev()
            .map(|l| self.line_text(l).trim())
            .find(|t| t.starts_with('['))
            .map(|t| t.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        let here = self.line_text(line);
        let key = here
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        match (table, key) {
            (Some(t), Some(k)) => format!("{t}.{k}"),
            (Some(t), None) => t,
            (None, Some(k)) => k,
            (None, None) => "(top level)".to_string(),
        }
    }
}

/// Finds the line of a `KeyPath` in the parsed document, whose keys and tables keep their
/// spans; serde's view of the file has no place for keys it ignored or never saw.
struct Locator<'t> {
    doc: toml_edit::ImDocument<&'t str>,
    lines: Lines<'t>,
}

impl Locator<'_> {
    /// Where the deepest part of `path` that is written in the file starts: the key itself, or
    /// for a key that is not there (missing, or left to its default) the table it belongs in,
    /// or the start of the file for the top level.
    fn offset(&self, path: &KeyPath) -> usize {
        let mut node = Node::Item(self.doc.as_item());
        let mut offset = None;
        for step in &path.0 {
            let Some((span, next)) = node.step(step) else {
                break;
            };
            offset = span.map(|s| s.start).or(offset);
            node = next;
        }
        offset.unwrap_or(0)
    }
}

/// A place in the parsed document: an item under a key, a `[[table]]` of an array of tables, or
/// an element of an inline array.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d toml_edit::Item),
    Table(&'d toml_edit::Table),
    Value(&'d toml_edit::Value),
}

impl<'d> Node<'d> {
    /// One step down, with the span to point at: a key's own span, or an element's.
    fn step(self, step: &Step) -> Option<(Option<Range<usize>>, Node<'d>)> {
        match step {
            Step::Key(key) => {
                let table: &dyn toml_edit::TableLike = match self {
                    Node::Item(item) => item.as_table_like()?,
                    Node::Table(table) => table,
                    Node::Value(value) => value.as_inline_table()?,
                };
                let (key, item) = table.get_key_value(key)?;
                Some((key.span(), Node::Item(item)))
            }
            Step::Index(i) => match self {
                Node::Item(toml_edit::Item::ArrayOfTables(tables)) => {
                    let table = tables.get(*i)?;
                    Some((table.span(), Node::Table(table)))
                }
                Node::Item(toml_edit::Item::Value(value)) | Node::Value(value) => {
                    let value = value.as_array()?.get(*i)?;
                    Some((value.span(), Node::Value(value)))
                }
                _ => None,
            },
        }
    }
}

/// The spike test's keys of `[detection]`, checked; placeholders (the defaults) stand in for
/// unusable values, as everywhere in `from_raw`.
fn spike_config(
    d: raw::Spike,
    at: &KeyPath,
    problems: &mut Problems,
) -> crate::detect::spike::SpikeConfig {
    use crate::detect::spike::{SpikeConfig, TailModel};
    let defaults = SpikeConfig::default();
    let positive = |d: &HumanDuration| !d.0.is_zero();
    let probability = |p: &f64| p.is_finite() && *p > 0.0 && *p < 1.0;
    let bin = problems
        .valid_if(d.bin, &at.key("bin"), positive, "must be longer than 0s")
        .map(|b| b.0)
        .filter(|b| !b.is_zero());
    let windows: Vec<Duration> = problems
        .valid_items(d.windows, &at.key("windows"))
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let w = w?.0;
            let path = at.key("windows").index(i);
            match bin {
                Some(bin) if w < bin || w.as_millis() % bin.as_millis() != 0 => {
                    problems.at(
                        &path,
                        "must be a multiple of detection.bin (and at least one bin)",
                    );
                    None
                }
                _ => Some(w),
            }
        })
        .collect();
    if windows.is_empty() {
        problems.at(
            &at.key("windows"),
            "must list at least one window, e.g. [\"15m\"]",
        );
    }
    let tail =
        problems
            .valid(d.tail, &at.key("tail"))
            .and_then(|t| match TailModel::from_name(&t) {
                Some(tail) => Some(tail),
                None => {
                    problems.at(
                        &at.key("tail"),
                        format!("unknown tail {t:?}: write \"negative_binomial\" or \"poisson\""),
                    );
                    None
                }
            });
    SpikeConfig {
        bin: bin.unwrap_or(defaults.bin),
        windows,
        min_count: problems
            .valid_if(
                d.min_count,
                &at.key("min_count"),
                |&n| n.is_finite() && n >= 0.0,
                "must be a number >= 0",
            )
            .unwrap_or(defaults.min_count),
        min_ratio: problems
            .valid_if(
                d.min_ratio,
                &at.key("min_ratio"),
                |&r| r.is_finite() && r >= 1.0,
                "must be a number >= 1.0",
            )
            .unwrap_or(defaults.min_ratio),
        p_value: problems
            .valid_if(
                d.p_value,
                &at.key("p_value"),
                probability,
                "must be a probability between 0 and 1 (exclusive)",
            )
            .unwrap_or(defaults.p_value),
        rearm_p: problems
            .valid_if(
                d.rearm_p,
                &at.key("rearm_p"),
                probability,
                "must be a probability between 0 and 1 (exclusive)",
            )
            .unwrap_or(defaults.rearm_p),
        warmup: problems
            .valid(d.warmup, &at.key("warmup"))
            .map_or(defaults.warmup, |w| w.0),
        baseline_half_life: problems
            .valid_if(
                d.baseline_half_life,
                &at.key("baseline_half_life"),
                positive,
                "must be longer than 0s",
            )
            .map_or(defaults.baseline_half_life, |h| h.0),
        slot_prior: problems
            .valid(d.slot_prior, &at.key("slot_prior"))
            .map_or(defaults.slot_prior, |s| s.0),
        tail: tail.unwrap_or(defaults.tail),
    }
}

/// The selectors of a `kind = "html"` source, each compiled so that a typo is reported by
/// `check` with its line rather than by the first poll.
fn html_rules(
    select: raw::Select,
    follow: Option<raw::Checked<bool>>,
    at: &KeyPath,
    problems: &mut Problems,
) -> SourceKind {
    use crate::parse::html::{Css, HtmlRules};
    let follow_at = at.key("follow");
    let at = at.key("select");
    if select.item.is_none() {
        problems.missing.push(at.key("item"));
    }
    let mut css = |value: Option<raw::Checked<String>>, key: &str| -> Option<Css> {
        let text = problems.valid(value?, &at.key(key))?;
        Css::parse(&text)
            .map_err(|e| problems.at(&at.key(key), e))
            .ok()
    };
    let item = css(select.item, "item");
    let rules = HtmlRules {
        title: css(select.title, "title"),
        link: css(select.link, "link"),
        summary: css(select.summary, "summary"),
        time: css(select.time, "time"),
        author: css(select.author, "author"),
        body: css(select.body, "body"),
        follow: false,
        item: item.unwrap_or_else(|| Css::parse("*").expect("a constant selector")),
    };
    let follow = follow
        .and_then(|f| problems.valid(f, &follow_at))
        .unwrap_or(false);
    if follow && rules.body.is_none() {
        problems.at(
            &follow_at,
            "follow = true needs select.body: the selector of the text on each item's page",
        );
    }
    SourceKind::Html(HtmlRules { follow, ..rules })
}

/// The field mapping of a `kind = "json"` source, each path checked.
fn json_rules(fields: raw::Fields, at: &KeyPath, problems: &mut Problems) -> SourceKind {
    use crate::parse::json::{JsonPath, JsonRules};
    let at = at.key("fields");
    if fields.items.is_none() {
        problems.missing.push(at.key("items"));
    }
    let mut path = |value: Option<raw::Checked<String>>, key: &str| -> Option<JsonPath> {
        let text = problems.valid(value?, &at.key(key))?;
        JsonPath::parse(&text)
            .map_err(|e| problems.at(&at.key(key), e))
            .ok()
    };
    let items = path(fields.items, "items");
    let rules = JsonRules {
        items: items.unwrap_or_else(|| JsonPath::parse("").expect("the root path")),
        id: path(fields.id, "id"),
        title: path(fields.title, "title"),
        link: path(fields.link, "link"),
        summary: path(fields.summary, "summary"),
        time: path(fields.time, "time"),
        author: path(fields.author, "author"),
    };
    if rules.title.is_none() && rules.summary.is_none() {
        problems.at(
            &at,
            "map at least one of title or summary: a post needs text to judge",
        );
    }
    SourceKind::Json(rules)
}

/// A source's `headers` and `cookies`, with secrets read from the environment. A variable that
/// is not set is a warning, not an error: `check` may run where the secrets are not.
fn request_headers(
    headers: Option<raw::Section<std::collections::BTreeMap<String, raw::Checked<raw::Secret>>>>,
    cookies: Option<raw::Checked<raw::Cookies>>,
    at: &KeyPath,
    problems: &mut Problems,
) -> RequestHeaders {
    use reqwest::header::{HeaderName, HeaderValue};
    const SECRET: &str =
        "must be a string, or { env = \"VARIABLE\" } to read it from the environment";
    let mut out = Vec::new();
    let resolve =
        |secret: raw::Secret, path: &KeyPath, problems: &mut Problems| -> Option<String> {
            let value = match secret {
                raw::Secret::Plain(value) => value,
                raw::Secret::Env(raw::EnvRef { env }) => match std::env::var(&env) {
                    Ok(value) if !value.trim().is_empty() => value.trim().to_string(),
                    _ => {
                        problems.warn(path, &format!("${env} is not set: requests go without it"));
                        return None;
                    }
                },
            };
            if HeaderValue::from_str(&value).is_err() {
                // The value itself may be a secret: it is not repeated.
                problems.at(
                    path,
                    "is not a valid header value (one line of visible text)",
                );
                return None;
            }
            Some(value)
        };
    if let Some(headers) = headers {
        let headers_at = at.key("headers");
        if let Some(raw::Table(map)) = problems.valid(headers, &headers_at) {
            for (name, value) in map {
                let path = headers_at.key(&name);
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    problems.at(&path, format!("{name:?} is not a valid header name"));
                    continue;
                }
                let value = match value {
                    raw::Checked::Valid(v) => v,
                    raw::Checked::Invalid(_) => {
                        problems.at(&path, SECRET);
                        continue;
                    }
                };
                if let Some(value) = resolve(value, &path, problems) {
                    out.push((name, value));
                }
            }
        }
    }
    if let Some(cookies) = cookies {
        let path = at.key("cookies");
        let cookie = match cookies {
            raw::Checked::Valid(raw::Cookies::Whole(secret)) => resolve(secret, &path, problems),
            raw::Checked::Valid(raw::Cookies::Each(map)) => {
                let pairs: Vec<String> = map
                    .into_iter()
                    .filter_map(|(name, secret)| {
                        let value = resolve(secret, &path.key(&name), problems)?;
                        Some(format!("{name}={value}"))
                    })
                    .collect();
                (!pairs.is_empty()).then(|| pairs.join("; "))
            }
            raw::Checked::Invalid(_) => {
                problems.at(&path, "must be the Cookie header as a string or { env = \"VARIABLE\" }, or a table of cookie names to values");
                None
            }
        };
        if let Some(cookie) = cookie {
            out.push(("Cookie".to_string(), cookie));
        }
    }
    RequestHeaders(out)
}

/// A duration the human way: "90s", "15m", "1h 30m".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl serde::de::Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;
            // Read in "invalid type: integer `15`, expected …", where a bare number is the
            // likely mistake.
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration in quotes, like \"90s\", \"15m\" or \"1h 30m\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(text.trim())
                    .map(HumanDuration)
                    .map_err(|e| {
                        E::custom(format!(
                            "invalid duration {text:?} ({e}); write it like \"90s\", \"15m\" or \"1h 30m\""
                        ))
                    })
            }
        }
        d.deserialize_str(DurationVisitor)
    }
}

/// Exactly what the user wrote, read so that no mistake stops the reading: every value is
/// `Checked` (a wrong one is kept as its error message), required keys are `Option`s, and keys
/// without a field are collected by serde_ignored. Judging what was written is `from_raw`'s job.
mod raw {
    use super::HumanDuration;
    use serde::de::value::MapAccessDeserializer;
    use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;
    use std::collections::BTreeMap;
    use std::fmt;
    use std::marker::PhantomData;
    use std::path::PathBuf;
    use std::time::Duration;
    use Checked::Valid;

    /// A value as written: usable as a `T`, or why it is not one.
    ///
    /// Reading one never fails, so a wrong value does not hide the rest of the file. Catching
    /// `T`'s error is sound here because the toml deserializer hands every value over as its
    /// own already-parsed tree: a failure inside one value leaves the enclosing table intact for
    /// the next key (a streaming format such as JSON would be left mid-value).
    pub enum Checked<T> {
        Valid(T),
        Invalid(String),
    }

    impl<T: Default> Default for Checked<T> {
        fn default() -> Self {
            Valid(T::default())
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Checked<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(match T::deserialize(d) {
                Ok(value) => Valid(value),
                Err(e) => Checked::Invalid(e.to_string().trim().to_string()),
            })
        }
    }

    /// A TOML table read as `T`. Without it serde would also read a struct from an array, field
    /// by field in order, and turn a stray `[[daemon]]` into nonsense about its first field.
    #[derive(Default)]
    pub struct Table<T>(pub T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct TableVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for TableVisitor<T> {
                type Value = Table<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a table")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Table<T>, A::Error> {
                    T::deserialize(MapAccessDeserializer::new(map)).map(Table)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Table<T>, A::Error> {
                    Err(A::Error::custom("expected a table, found an array"))
                }
            }
            d.deserialize_map(TableVisitor(PhantomData))
        }
    }

    /// A TOML array (of values, or of `[[tables]]`).
    pub struct List<T>(pub Vec<T>);

    impl<T> Default for List<T> {
        fn default() -> Self {
            List(Vec::new())
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct ListVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
                type Value = List<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an array")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                    let mut items = Vec::new();
                    while let Some(item) = seq.next_element()? {
                        items.push(item);
                    }
                    Ok(List(items))
                }
                fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<List<T>, A::Error> {
                    Err(A::Error::custom(
                        "expected an array, found a table (a list of tables is written as \
                         [[name]] headers)",
                    ))
                }
            }
            d.deserialize_seq(ListVisitor(PhantomData))
        }
    }

    /// A table that may be absent, or not a table.
    pub type Section<T> = Checked<Table<T>>;
    /// An array of `[[tables]]`, each checked on its own.
    pub type Entries<T> = Checked<List<Checked<Table<T>>>>;
    /// An array of values, each checked on its own.
    pub type Values<T> = Checked<List<Checked<T>>>;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    pub struct File {
        pub daemon: Section<Daemon>,
        pub analysis: Section<Analysis>,
        pub detection: Section<Detection>,
        pub telegram: Section<Telegram>,
        pub admin: Section<Admin>,
        pub incidents: Section<Incidents>,
        pub delivery: Section<Delivery>,
        pub channels: Entries<Channel>,
        pub reports: Section<Reports>,
        pub dedupe: Section<Dedupe>,
        pub silences: Entries<SilenceEntry>,
        pub brands: Entries<Brand>,
        pub sources: Entries<Source>,
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Daemon {
        pub data_dir: Checked<PathBuf>,
        pub user_agent: Checked<String>,
        pub fetch_timeout: Checked<HumanDuration>,
        pub max_body_bytes: Checked<usize>,
        pub max_concurrent_fetches: Checked<usize>,
        pub per_host: Checked<usize>,
    }

    impl Default for Daemon {
        fn default() -> Self {
            Daemon {
                data_dir: Valid(PathBuf::from("yuqing-data")),
                user_agent: Valid(
                    concat!("yuqing/", env!("CARGO_PKG_VERSION"), " (brand monitoring)")
                        .to_string(),
                ),
                fetch_timeout: Valid(HumanDuration(Duration::from_secs(20))),
                max_body_bytes: Valid(8 * 1024 * 1024),
                max_concurrent_fetches: Valid(8),
                per_host: Valid(2),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Analysis {
        pub lexicon_dir: Option<Checked<PathBuf>>,
        pub negative_threshold: Checked<f64>,
        pub learned: Checked<bool>,
        pub general: Checked<bool>,
    }

    impl Default for Analysis {
        fn default() -> Self {
            Analysis {
                lexicon_dir: None,
                negative_threshold: Valid(0.5),
                learned: Valid(true),
                general: Valid(true),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Detection {
        pub window: Checked<HumanDuration>,
        pub baseline_window: Checked<HumanDuration>,
        pub min_negative: Checked<u64>,
        pub spike_ratio: Checked<f64>,
        pub top_posts: Checked<usize>,
        pub bin: Checked<HumanDuration>,
        pub windows: Values<HumanDuration>,
        pub min_count: Checked<f64>,
        pub min_ratio: Checked<f64>,
        pub p_value: Checked<f64>,
        pub rearm_p: Checked<f64>,
        pub warmup: Checked<HumanDuration>,
        pub baseline_half_life: Checked<HumanDuration>,
        pub slot_prior: Checked<HumanDuration>,
        pub tail: Checked<String>,
    }

    impl Default for Detection {
        fn default() -> Self {
            // The spike test's defaults are written once, in `SpikeConfig::default()`.
            let spike = crate::detect::spike::SpikeConfig::default();
            Detection {
                window: Valid(HumanDuration(Duration::from_secs(15 * 60))),
                baseline_window: Valid(HumanDuration(Duration::from_secs(24 * 3600))),
                min_negative: Valid(5),
                spike_ratio: Valid(3.0),
                top_posts: Valid(3),
                bin: Valid(HumanDuration(spike.bin)),
                windows: Valid(List(
                    spike
                        .windows
                        .iter()
                        .map(|&w| Valid(HumanDuration(w)))
                        .collect(),
                )),
                min_count: Valid(spike.min_count),
                min_ratio: Valid(spike.min_ratio),
                p_value: Valid(spike.p_value),
                rearm_p: Valid(spike.rearm_p),
                warmup: Valid(HumanDuration(spike.warmup)),
                baseline_half_life: Valid(HumanDuration(spike.baseline_half_life)),
                slot_prior: Valid(HumanDuration(spike.slot_prior)),
                tail: Valid(spike.tail.name().to_string()),
            }
        }
    }

    /// The spike test's keys of `Detection`, handed to `spike_config` together.
    pub struct Spike {
        pub bin: Checked<HumanDuration>,
        pub windows: Values<HumanDuration>,
        pub min_count: Checked<f64>,
        pub min_ratio: Checked<f64>,
        pub p_value: Checked<f64>,
        pub rearm_p: Checked<f64>,
        pub warmup: Checked<HumanDuration>,
        pub baseline_half_life: Checked<HumanDuration>,
        pub slot_prior: Checked<HumanDuration>,
        pub tail: Checked<String>,
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Telegram {
        pub api_url: Checked<String>,
        pub token_env: Checked<String>,
        /// Only here to be refused with a clear message.
        pub token: Option<toml::Value>,
        pub chat_id: Option<Checked<i64>>,
        pub ack_users: Values<u64>,
        pub tiers: Entries<Tier>,
        pub repeat: Checked<u32>,
        pub poll_timeout: Checked<HumanDuration>,
    }

    impl Default for Telegram {
        fn default() -> Self {
            Telegram {
                api_url: Valid("https://api.telegram.org".to_string()),
                token_env: Valid("YUQING_TELEGRAM_TOKEN".to_string()),
                token: None,
                chat_id: None,
                ack_users: Checked::default(),
                tiers: Checked::default(),
                repeat: Valid(0),
                poll_timeout: Valid(HumanDuration(Duration::from_secs(25))),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Incidents {
        pub critical_severity: Checked<f64>,
        pub resolve_after: Checked<HumanDuration>,
        pub reopen_within: Checked<HumanDuration>,
        pub remind_every: Checked<HumanDuration>,
        pub ack_expires: Checked<HumanDuration>,
    }

    impl Default for Incidents {
        fn default() -> Self {
            let d = super::IncidentsConfig::default();
            Incidents {
                critical_severity: Valid(d.critical_severity),
                resolve_after: Valid(HumanDuration(d.resolve_after)),
                reopen_within: Valid(HumanDuration(d.reopen_within)),
                remind_every: Valid(HumanDuration(d.remind_every)),
                ack_expires: Valid(HumanDuration(d.ack_expires)),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Delivery {
        pub retry_first: Checked<HumanDuration>,
        pub retry_max: Checked<HumanDuration>,
        pub fallback_after: Checked<HumanDuration>,
    }

    impl Default for Delivery {
        fn default() -> Self {
            let d = super::DeliveryConfig::default();
            Delivery {
                retry_first: Valid(HumanDuration(d.retry_first)),
                retry_max: Valid(HumanDuration(d.retry_max)),
                fallback_after: Valid(HumanDuration(d.fallback_after)),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Dedupe {
        pub near_distance: Checked<u32>,
        pub near_window: Checked<HumanDuration>,
    }

    impl Default for Dedupe {
        fn default() -> Self {
            let d = super::DedupeConfig::default();
            Dedupe {
                near_distance: Valid(d.near_distance),
                near_window: Valid(HumanDuration(d.near_window)),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Admin {
        pub enabled: Checked<bool>,
        pub listen: Checked<String>,
        pub public_url: Option<Checked<String>>,
        pub time_zone: Checked<String>,
        pub token_env: Checked<String>,
        pub open_reads: Checked<bool>,
        pub language: Checked<String>,
    }

    impl Default for Admin {
        fn default() -> Self {
            Admin {
                enabled: Valid(true),
                listen: Valid(super::DEFAULT_ADMIN_LISTEN.to_string()),
                public_url: None,
                time_zone: Valid("Asia/Shanghai".to_string()),
                token_env: Valid("YUQING_ADMIN_TOKEN".to_string()),
                open_reads: Valid(false),
                language: Valid("zh".to_string()),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(default)]
    pub struct Reports {
        pub digest_at: Checked<String>,
        pub digest_channels: Values<String>,
    }

    impl Default for Reports {
        fn default() -> Self {
            Reports {
                digest_at: Valid("09:00".to_string()),
                digest_channels: Valid(List(Vec::new())),
            }
        }
    }

    #[derive(Deserialize)]
    pub struct SilenceEntry {
        pub kind: Option<Checked<String>>,
        pub name: Option<Checked<String>>,
        pub until: Option<Checked<String>>,
        #[serde(default)]
        pub reason: Checked<String>,
    }

    #[derive(Deserialize)]
    pub struct Channel {
        pub name: Option<Checked<String>>,
        pub kind: Option<Checked<String>>,
        pub url_env: Option<Checked<String>>,
        pub url: Option<Checked<String>>,
        pub secret_env: Option<Checked<String>>,
    }

    #[derive(Deserialize)]
    pub struct Tier {
        pub name: Option<Checked<String>>,
        #[serde(default)]
        pub mention: Values<String>,
        pub ack_timeout: Option<Checked<HumanDuration>>,
        pub quiet_hours: Option<Checked<String>>,
        pub targets: Option<Checked<std::collections::BTreeMap<String, Vec<String>>>>,
    }

    #[derive(Deserialize)]
    pub struct Brand {
        pub name: Option<Checked<String>>,
        #[serde(default)]
        pub aliases: Values<String>,
        #[serde(default)]
        pub exclusions: Values<String>,
    }

    #[derive(Deserialize)]
    pub struct Source {
        pub name: Option<Checked<String>>,
        pub kind: Option<Checked<String>>,
        pub url: Option<Checked<String>>,
        pub interval: Option<Checked<HumanDuration>>,
        pub weight: Option<Checked<f64>>,
        pub brands: Option<Values<String>>,
        pub headers: Option<Section<BTreeMap<String, Checked<Secret>>>>,
        pub cookies: Option<Checked<Cookies>>,
        pub user_agent: Option<Checked<String>>,
        pub time_zone: Option<Checked<String>>,
        pub pages: Option<Checked<u32>>,
        pub alert_after: Option<Checked<HumanDuration>>,
        pub silent_after: Option<Checked<HumanDuration>>,
        pub follow: Option<Checked<bool>>,
        pub select: Option<Section<Select>>,
        pub fields: Option<Section<Fields>>,
    }

    /// A header or cookie value: written out, or the name of the environment variable that
    /// holds it (`{ env = "WEIBO_COOKIE" }`), for secrets that must not sit in the file.
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Secret {
        Plain(String),
        Env(EnvRef),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct EnvRef {
        pub env: String,
    }

    /// `cookies`: the whole `Cookie` header as one value, or a table of cookie names to values.
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Cookies {
        Whole(Secret),
        Each(BTreeMap<String, Secret>),
    }

    /// `[sources.select]` of a `kind = "html"` source.
    #[derive(Deserialize)]
    pub struct Select {
        pub item: Option<Checked<String>>,
        pub title: Option<Checked<String>>,
        pub link: Option<Checked<String>>,
        pub summary: Option<Checked<String>>,
        pub time: Option<Checked<String>>,
        pub author: Option<Checked<String>>,
        pub body: Option<Checked<String>>,
    }

    /// `[sources.fields]` of a `kind = "json"` source.
    #[derive(Deserialize)]
    pub struct Fields {
        pub items: Option<Checked<String>>,
        pub id: Option<Checked<String>>,
        pub title: Option<Checked<String>>,
        pub link: Option<Checked<String>>,
        pub summary: Option<Checked<String>>,
        pub time: Option<Checked<String>>,
        pub author: Option<Checked<String>>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[brands]]
name = "度小满"
aliases = ["有钱花"]
exclusions = ["欢度小满"]

[[sources]]
name = "news"
kind = "feed"
url = "http://127.0.0.1:1/rss"
interval = "90s"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Origin::File(PathBuf::from("sources.toml")))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.sources[0].interval, Duration::from_secs(90));
        assert_eq!(c.sources[0].weight, 1.0);
        assert_eq!(c.telegram.api_url, "https://api.telegram.org");
        assert_eq!(c.telegram.token_env, "YUQING_TELEGRAM_TOKEN");
        assert_eq!(c.detection.window, Duration::from_secs(900));
        assert_eq!(c.brands[0].all_names(), vec!["度小满", "有钱花"]);
    }

    #[test]
    fn shipped_config_is_valid() {
        let c = Config::parse(EMBEDDED_SOURCES_TOML, Origin::Embedded).unwrap();
        assert!(c.brands.iter().any(|b| b.name == "度小满"));
        assert!(c.sources.len() >= 5);
    }

    #[test]
    fn spike_settings_default_and_read() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            c.detection.spike,
            crate::detect::spike::SpikeConfig::default()
        );
        let text = format!(
            "{MINIMAL}\n[detection]\nbin = \"10m\"\nwindows = [\"30m\", \"2h\"]\np_value = 1e-4\n\
             tail = \"poisson\"\n"
        );
        let spike = parse(&text).unwrap().detection.spike;
        assert_eq!(spike.bin, Duration::from_secs(600));
        assert_eq!(
            spike.windows,
            [Duration::from_secs(1800), Duration::from_secs(7200)]
        );
        assert_eq!(spike.p_value, 1e-4);
        assert_eq!(spike.tail, crate::detect::spike::TailModel::Poisson);
    }

    #[test]
    fn bad_spike_settings_are_all_named() {
        let text = format!(
            "{MINIMAL}\n[detection]\nbin = \"10m\"\nwindows = [\"15m\", \"1h\"]\np_value = 1.5\n\
             min_ratio = 0.5\ntail = \"gaussian\"\nbaseline_half_life = \"0s\"\n"
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "detection.windows[0]",
                "detection.p_value",
                "detection.min_ratio",
                "detection.tail",
                "detection.baseline_half_life"
            ],
            "{err}"
        );
    }

    #[test]
    fn bad_duration_names_file_line_and_key() {
        let text = MINIMAL.replace("interval = \"90s\"", "interval = \"ninety seconds\"");
        let err = parse(&text).unwrap_err();
        let shown = err.to_string();
        assert_eq!(err.problems.len(), 1, "{shown}");
        let p = &err.problems[0];
        assert_eq!(p.line, 11, "{shown}");
        assert_eq!(p.key, "sources[0].interval", "{shown}");
        assert!(p.message.contains("invalid duration"), "{shown}");
        assert!(
            shown.contains("sources.toml:11: sources[0].interval"),
            "{shown}"
        );
    }

    #[test]
    fn toml_syntax_error_names_its_line() {
        let text = format!("{MINIMAL}\n[detection]\nwindow = \"15m\nspike_ratio = 2.0\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].line, 14, "{err}");
    }

    #[test]
    fn misspelt_key_is_refused_with_its_line() {
        let text = MINIMAL.replace("interval = \"90s\"", "intervall = \"90s\"");
        let err = parse(&text).unwrap_err();
        // One mistake, one problem: not also "interval is missing".
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert_eq!(
            (p.line, p.key.as_str()),
            (11, "sources[0].intervall"),
            "{err}"
        );
        assert!(p.message.contains("did you mean \"interval\""), "{err}");
    }

    #[test]
    fn semantic_problems_are_all_reported_with_lines() {
        let text = r#"
[telegram]
token = "123:abc"
chat_id = -100

[[brands]]
name = "度小满"
exclusions = ["春分"]

[[sources]]
name = "a"
kind = "sitemap"
url = "ftp://example/x"
interval = "10ms"
weight = -1.0
"#;
        let err = parse(text).unwrap_err();
        let keys: Vec<(usize, &str)> = err
            .problems
            .iter()
            .map(|p| (p.line, p.key.as_str()))
            .collect();
        assert!(keys.contains(&(3, "telegram.token")), "{err}");
        assert!(keys.contains(&(2, "telegram.tiers")), "{err}");
        assert!(keys.contains(&(8, "brands[0].exclusions[0]")), "{err}");
        assert!(keys.contains(&(12, "sources[0].kind")), "{err}");
        assert!(keys.contains(&(13, "sources[0].url")), "{err}");
        assert!(keys.contains(&(14, "sources[0].interval")), "{err}");
        assert!(keys.contains(&(15, "sources[0].weight")), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = format!(
            "{MINIMAL}\n[[sources]]\nname = \"news\"\nkind = \"feed\"\nurl = \"http://127.0.0.1:1/b\"\ninterval = \"1m\"\n"
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.problems[0].key, "sources[1].name", "{err}");
        assert_eq!(err.problems[0].line, 14, "{err}");
    }

    fn brand_with(aliases: &str, exclusions: &str) -> String {
        MINIMAL.replace(
            "aliases = [\"有钱花\"]\nexclusions = [\"欢度小满\"]",
            &format!("aliases = [{aliases}]\nexclusions = [{exclusions}]"),
        )
    }

    #[test]
    fn an_exclusion_must_contain_a_name_of_the_brand() {
        // Contains the name.
        parse(&brand_with("\"有钱花\"", "\"欢度小满\"")).unwrap();
        // Contains an alias, not the name.
        parse(&brand_with("\"有钱花\", \"小满\"", "\"小满节气\"")).unwrap();
        parse(&brand_with("\"有钱花\"", "\"有钱花呗\"")).unwrap();

        // Overlaps 度小满 at the edge (小满), but contains no name: refused, and the message
        // names the exclusion and the names it should contain.
        let err = parse(&brand_with("\"有钱花\"", "\"欢度小满\", \"小满节气\"")).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert_eq!(
            (p.line, p.key.as_str()),
            (5, "brands[0].exclusions[1]"),
            "{err}"
        );
        assert!(p.message.contains("\"小满节气\""), "{err}");
        assert!(p.message.contains("度小满, 有钱花"), "{err}");

        // Shares nothing at all.
        let err = parse(&brand_with("", "\"春分\"")).unwrap_err();
        assert_eq!(err.problems[0].key, "brands[0].exclusions[0]", "{err}");
    }

    /// A key at a line, as the tests compare problems.
    fn lines_and_keys(err: &ConfigError) -> Vec<(usize, &str)> {
        err.problems
            .iter()
            .map(|p| (p.line, p.key.as_str()))
            .collect()
    }

    #[test]
    fn three_mistakes_of_three_kinds_are_three_problems_in_line_order() {
        let text = r#"
[daemon]
data_dir = "yuqing-data"
fetch_timeot = "20s"

[[brands]]
name = "度小满"

[[sources]]
name = "news"
kind = "feed"
url = "http://127.0.0.1:1/rss"
interval = "ninety seconds"
weight = -1.0
"#;
        let err = parse(text).unwrap_err();
        assert_eq!(
            lines_and_keys(&err),
            vec![
                (4, "daemon.fetch_timeot"),
                (13, "sources[0].interval"),
                (14, "sources[0].weight"),
            ],
            "{err}"
        );
        assert!(err.problems[0].message.contains("unknown key"), "{err}");
        assert!(
            err.problems[1].message.contains("invalid duration"),
            "{err}"
        );
        assert!(err.problems[2].message.contains("> 0"), "{err}");
    }

    #[test]
    fn wrong_types_everywhere_are_each_reported_once() {
        let text = r#"
[daemon]
max_body_bytes = "8 MB"

[analysis]
learned = "yes"

[detection]
window = 15
spike_ratio = "x"

[telegram]
ack_users = [1, "bob", 3]

[[brands]]
name = "度小满"
aliases = "有钱花"

[[sources]]
name = "news"
kind = "feed"
url = "http://127.0.0.1:1/rss"
interval = "1m"
weight = "heavy"
"#;
        let err = parse(text).unwrap_err();
        assert_eq!(
            lines_and_keys(&err),
            vec![
                (3, "daemon.max_body_bytes"),
                (6, "analysis.learned"),
                (9, "detection.window"),
                (10, "detection.spike_ratio"),
                (13, "telegram.ack_users[1]"),
                (17, "brands[0].aliases"),
                (24, "sources[0].weight"),
            ],
            "{err}"
        );
        assert!(
            err.problems[5].message.contains("expected an array"),
            "{err}"
        );
    }

    #[test]
    fn a_table_of_the_wrong_shape_is_one_problem() {
        let text = format!("{MINIMAL}\n[[daemon]]\ndata_dir = \"x\"\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(lines_and_keys(&err), vec![(13, "daemon")], "{err}");
        assert!(
            err.problems[0].message.contains("expected a table"),
            "{err}"
        );

        let text = MINIMAL.replace("[[sources]]", "[sources]");
        let err = parse(&text).unwrap_err();
        assert_eq!(lines_and_keys(&err), vec![(7, "sources")], "{err}");
    }

    #[test]
    fn missing_required_key_names_the_entry_it_belongs_to() {
        let text = format!(
            "{MINIMAL}\n[[sources]]\nname = \"second\"\nkind = \"feed\"\ninterval = \"1m\"\n"
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(lines_and_keys(&err), vec![(13, "sources[1].url")], "{err}");
        assert!(err.problems[0].message.contains("missing"), "{err}");
    }

    #[test]
    fn an_invalid_required_value_is_not_also_missing() {
        let text = MINIMAL.replace("interval = \"90s\"", "interval = 90");
        let err = parse(&text).unwrap_err();
        assert_eq!(
            lines_and_keys(&err),
            vec![(11, "sources[0].interval")],
            "{err}"
        );
        assert!(!err.problems[0].message.contains("missing"), "{err}");
    }

    #[test]
    fn an_unknown_key_far_from_any_missing_one_does_not_claim_it() {
        let text = MINIMAL.replace("url = ", "address = ");
        let err = parse(&text).unwrap_err();
        assert_eq!(
            lines_and_keys(&err),
            vec![(7, "sources[0].url"), (10, "sources[0].address")],
            "{err}"
        );
    }

    #[test]
    fn no_sources_is_a_warning_for_check_and_an_error_for_run() {
        let text = &MINIMAL[..MINIMAL.find("[[sources]]").unwrap()];
        let c = parse(text).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].key, "sources");
        let summary = c.summary();
        assert!(
            summary.contains("warning: sources.toml:1: sources: no [[sources]]"),
            "{summary}"
        );
        let err = c.ensure_runnable().unwrap_err();
        assert_eq!(lines_and_keys(&err), vec![(1, "sources")], "{err}");
        assert!(err.to_string().contains("nothing to watch"), "{err}");
        assert!(err.to_string().contains("[[sources]]"), "{err}");

        let c = parse(MINIMAL).unwrap();
        assert!(c.warnings.is_empty());
        c.ensure_runnable().unwrap();
    }

    #[test]
    fn no_brands_is_still_an_error() {
        let text = &MINIMAL[MINIMAL.find("[[sources]]").unwrap()..];
        let err = parse(text).unwrap_err();
        assert_eq!(lines_and_keys(&err), vec![(1, "brands")], "{err}");
    }

    #[test]
    fn human_duration_writes_units_the_way_people_do() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(s(86_400)), "1d");
        assert_eq!(human_duration(s(5_400)), "1h 30m");
        assert_eq!(human_duration(s(90)), "1m 30s");
        assert_eq!(human_duration(s(900)), "15m");
        assert_eq!(human_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(human_duration(s(86_400 + 61)), "1d 1m 1s");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn summary_speaks_config_terms() {
        let summary = parse(MINIMAL).unwrap().summary();
        assert!(
            summary.contains("news (feed, every 1m 30s, weight 1)"),
            "{summary}"
        );
        assert!(
            summary.contains(
                "in 15m, and >= 3x the baseline (the average per 15m over the previous 1d)"
            ),
            "{summary}"
        );
        assert!(!summary.contains("warning"), "{summary}");
    }
    #[test]
    fn admin_defaults_and_problems() {
        let c = parse(MINIMAL).unwrap();
        assert!(c.admin.enabled);
        assert_eq!(c.admin.listen.to_string(), DEFAULT_ADMIN_LISTEN);
        assert_eq!(c.admin.public_url, "http://127.0.0.1:8847");
        assert_eq!(c.admin.time_zone, chrono_tz::Asia::Shanghai);
        assert_eq!(c.admin.token_env, "YUQING_ADMIN_TOKEN");
        assert!(!c.admin.open_reads);

        let text = format!(
            "[admin]\nlisten = \"localhost\"\ntime_zone = \"Mars/Olympus\"\nlanguage = \"fr\"\npublic_url = \"ftp://x\"\n{MINIMAL}"
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<(usize, &str)> = err
            .problems
            .iter()
            .map(|p| (p.line, p.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (2, "admin.listen"),
                (3, "admin.time_zone"),
                (4, "admin.language"),
                (5, "admin.public_url")
            ],
            "{err}"
        );

        let text = format!(
            "[admin]\nlisten = \"0.0.0.0:9000\"\npublic_url = \"https://yq.example/\"\ntime_zone = \"Europe/Berlin\"\nopen_reads = true\n{MINIMAL}"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.admin.listen.port(), 9000);
        assert_eq!(c.admin.public_url, "https://yq.example");
        assert_eq!(c.admin.time_zone, chrono_tz::Europe::Berlin);
        assert!(c.admin.open_reads);
    }

    #[test]
    fn reports_defaults_and_problems() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.reports, ReportsConfig::default());
        assert_eq!(c.reports.digest_at.unwrap().to_string(), "09:00:00");
        assert!(c.reports.digest_channels.is_empty(), "empty means all");

        let text = format!(
            "[reports]\ndigest_at = \"7:30\"\ndigest_channels = [\"telegram\", \"feishu-pr\"]\n{MINIMAL}\n\
             [[channels]]\nname = \"feishu-pr\"\nkind = \"feishu\"\nurl_env = \"FEISHU_URL\"\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.reports.digest_at.unwrap().to_string(), "07:30:00");
        let off = parse(&format!("[reports]\ndigest_at = \"off\"\n{MINIMAL}")).unwrap();
        assert_eq!(off.reports.digest_at, None);
        assert_eq!(c.reports.digest_channels, vec!["telegram", "feishu-pr"]);

        let text = format!(
            "[reports]\ndigest_at = \"9am\"\ndigest_channels = [\"telegram\", \" \", \"telegram\", 3]\nsend_at = 1\n{MINIMAL}"
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<(usize, &str)> = err
            .problems
            .iter()
            .map(|p| (p.line, p.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (2, "reports.digest_at"),
                (3, "reports.digest_channels[1]"),
                (3, "reports.digest_channels[2]"),
                (3, "reports.digest_channels[3]"),
                (4, "reports.send_at"),
            ],
            "{err}"
        );
        assert!(
            err.to_string().contains("\"9am\" is not a local time"),
            "{err}"
        );
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn dedupe_settings_default_read_and_are_checked() {
        assert_eq!(parse(MINIMAL).unwrap().dedupe, DedupeConfig::default());
        let text = format!("{MINIMAL}\n[dedupe]\nnear_distance = 1\nnear_window = \"12h\"\n");
        let d = parse(&text).unwrap().dedupe;
        assert_eq!(d.near_distance, 1);
        assert_eq!(d.near_window, Duration::from_secs(12 * 3600));
        let text = format!("{MINIMAL}\n[dedupe]\nnear_distance = 5\nnear_window = \"soon\"\n");
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["dedupe.near_distance", "dedupe.near_window"],
            "{err}"
        );
        assert!(err.to_string().contains("4 bands"), "{err}");
    }

    #[test]
    fn silences_in_the_file_are_checked() {
        let text = format!(
            "{MINIMAL}\n[[silences]]\nkind = \"brand\"\nname = \"度小满\"\nuntil = \"2026-12-24T00:00:00+08:00\"\nreason = \"year-end campaign\"\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.silences.len(), 1);
        assert_eq!(c.silences[0].id, "config:brand:度小满");
        assert_eq!(
            c.silences[0].until.to_rfc3339(),
            "2026-12-23T16:00:00+00:00"
        );
        let text = format!(
            "{MINIMAL}\n[[silences]]\nkind = \"planet\"\nname = \"x\"\nuntil = \"next week\"\n"
        );
        let err = parse(&text).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["silences[0].kind", "silences[0].until"], "{err}");
    }

    #[test]
    fn quiet_hours_parse_and_may_cross_midnight() {
        let q = QuietHours::parse("22:00-08:00").unwrap();
        let at = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(q.contains(at(23, 0)) && q.contains(at(7, 59)) && q.contains(at(22, 0)));
        assert!(!q.contains(at(8, 0)) && !q.contains(at(12, 0)));
        let day = QuietHours::parse("12:00-13:30").unwrap();
        assert!(day.contains(at(12, 30)) && !day.contains(at(13, 30)));
        assert!(QuietHours::parse("late").is_none());
        assert!(QuietHours::parse("08:00-08:00").is_none());
        let text = MINIMAL.replace(
            "[[brands]]",
            "[telegram]\nchat_id = -1\nrepeat = 2\n[[telegram.tiers]]\nname = \"a\"\nack_timeout = \"5m\"\nquiet_hours = \"23-7\"\n\n[[brands]]",
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(
            err.problems[0].key, "telegram.tiers[0].quiet_hours",
            "{err}"
        );
    }

    #[test]
    fn channels_are_read_and_every_mistake_named() {
        let good = format!(
            "{MINIMAL}\n[telegram]\nchat_id = -100\n[[telegram.tiers]]\nname = \"oncall\"\n\
             ack_timeout = \"10m\"\ntargets = {{ \"feishu-pr\" = [\"ou_1\"], telegram = [\"@a\"] }}\n\
             [[channels]]\nname = \"feishu-pr\"\nkind = \"feishu\"\nurl_env = \"FEISHU_URL\"\n\
             secret_env = \"FEISHU_SECRET\"\n\
             [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"https://hooks.example/x\"\n"
        );
        let c = parse(&good).unwrap();
        assert_eq!(
            c.channels[0],
            ChannelConfig {
                name: "feishu-pr".into(),
                kind: ChannelKind::Feishu,
                url: ChannelUrl::Env("FEISHU_URL".into()),
                secret_env: Some("FEISHU_SECRET".into()),
            }
        );
        assert_eq!(
            c.channels[1].url,
            ChannelUrl::Inline("https://hooks.example/x".into())
        );
        assert!(
            c.warnings
                .iter()
                .any(|w| w.key == "channels[1].url" && w.message.contains("url_env")),
            "{:?}",
            c.warnings
        );

        let bad = format!(
            "{MINIMAL}\n[[telegram.tiers]]\nname = \"oncall\"\nack_timeout = \"10m\"\n\
             targets = {{ \"feishu-typo\" = [\"ou_1\"] }}\n\
             [[channels]]\nname = \"telegram\"\nkind = \"slack\"\nurl_env = \"A\"\n\
             [[channels]]\nname = \"x\"\nkind = \"teams\"\nurl_env = \"B\"\n\
             [[channels]]\nname = \"x\"\nkind = \"wecom\"\nurl_env = \"C\"\nsecret_env = \"D\"\n\
             [[channels]]\nname = \"y\"\nkind = \"dingtalk\"\n\
             [[channels]]\nname = \"z\"\nkind = \"feishu\"\nurl_env = \"E\"\nurl = \"http://a/\"\n"
        );
        let err = parse(&bad).unwrap_err();
        let found = lines_and_keys(&err);
        let keys: Vec<&str> = found.iter().map(|(_, k)| *k).collect();
        for key in [
            "telegram.tiers[0].targets.feishu-typo",
            "channels[0].name",
            "channels[1].kind",
            "channels[2].name",
            "channels[2].secret_env",
            "channels[3].url_env",
            "channels[4].url",
        ] {
            assert!(keys.contains(&key), "{key} not in {err}");
        }
        let text = err.to_string();
        assert!(
            text.contains("\"feishu-typo\" is not a configured channel"),
            "{text}"
        );
        assert!(text.contains("unknown channel kind \"teams\""), "{text}");
        assert!(text.contains("channel \"x\" is defined twice"), "{text}");
        assert!(text.contains("wecom webhooks are not signed"), "{text}");
        assert!(
            text.contains("required key \"url_env\" is missing"),
            "{text}"
        );
        // Each problem points at its own line.
        let line_of = |key: &str| found.iter().find(|(_, k)| *k == key).unwrap().0;
        assert_eq!(
            bad.lines().nth(line_of("channels[1].kind") - 1).unwrap(),
            "kind = \"teams\""
        );
    }
    const KINDS: &str = r#"
[[brands]]
name = "度小满"

[[brands]]
name = "有钱花"

[[sources]]
name = "complaints"
kind = "html"
url = "https://ts.example.com/list?page={page}"
pages = 2
interval = "10m"
follow = true
brands = ["度小满"]
time_zone = "+08:00"
user_agent = "Mozilla/5.0 yuqing"
alert_after = "2h"
silent_after = "1day"
headers = { Referer = "https://ts.example.com/", "X-Token" = { env = "YUQING_TEST_CONFIG_TOKEN" } }
cookies = { SUB = { env = "YUQING_TEST_CONFIG_SUB" }, lang = "zh" }

[sources.select]
item = "ul.list > li"
title = "a.title"
time = ".time"
body = "div.article"

[[sources]]
name = "search"
kind = "json"
url = "https://api.example.com/search?q={brand}"
interval = "15m"
weight = 2.0

[sources.fields]
items = "/data/list"
title = "title"
link = "url"
time = "created_at"
author = "user.name"
"#;

    #[test]
    fn html_and_json_sources_with_every_option_are_read() {
        std::env::set_var("YUQING_TEST_CONFIG_TOKEN", "t0k3n");
        std::env::set_var("YUQING_TEST_CONFIG_SUB", "_2A25abc");
        let config = parse(KINDS).unwrap();
        let html = &config.sources[0];
        let SourceKind::Html(rules) = &html.kind else {
            panic!("{:?}", html.kind)
        };
        assert!(rules.follow);
        assert_eq!(rules.item.text, "ul.list > li");
        assert_eq!(rules.body.as_ref().unwrap().text, "div.article");
        assert_eq!(html.brands, ["度小满"]);
        assert_eq!(html.pages, 2);
        assert_eq!(html.time_zone.to_string(), "+08:00");
        assert_eq!(html.user_agent.as_deref(), Some("Mozilla/5.0 yuqing"));
        assert_eq!(html.alert_after, Duration::from_secs(2 * 3600));
        assert_eq!(html.silent_after, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(
            html.headers.0,
            [
                ("Referer".to_string(), "https://ts.example.com/".to_string()),
                ("X-Token".to_string(), "t0k3n".to_string()),
                ("Cookie".to_string(), "SUB=_2A25abc; lang=zh".to_string()),
            ]
        );
        assert!(
            !format!("{html:?}").contains("t0k3n"),
            "secrets stay out of Debug"
        );
        let urls: Vec<String> = html.request_urls().into_iter().map(|r| r.url).collect();
        assert_eq!(
            urls,
            [
                "https://ts.example.com/list?page=1",
                "https://ts.example.com/list?page=2"
            ]
        );

        let json = &config.sources[1];
        assert!(matches!(&json.kind, SourceKind::Json(r) if r.items.text == "/data/list"));
        assert_eq!(
            json.brands,
            ["度小满", "有钱花"],
            "every brand unless the source says"
        );
        assert_eq!(json.alert_after, DEFAULT_ALERT_AFTER);
        assert_eq!(json.silent_after, None);
        let urls: Vec<String> = json.request_urls().into_iter().map(|r| r.url).collect();
        assert_eq!(
            urls,
            [
                "https://api.example.com/search?q=%E5%BA%A6%E5%B0%8F%E6%BB%A1",
                "https://api.example.com/search?q=%E6%9C%89%E9%92%B1%E8%8A%B1"
            ]
        );
        assert!(
            config.summary().contains("search (json"),
            "{}",
            config.summary()
        );
    }

    #[test]
    fn an_unset_secret_is_a_warning_and_is_left_out() {
        let text = KINDS
            .replace("YUQING_TEST_CONFIG_TOKEN", "YUQING_TEST_CONFIG_UNSET_1")
            .replace("YUQING_TEST_CONFIG_SUB", "YUQING_TEST_CONFIG_UNSET_2");
        let config = parse(&text).unwrap();
        let warned: Vec<&str> = config.warnings.iter().map(|w| w.key.as_str()).collect();
        assert!(warned.contains(&"sources[0].headers.X-Token"), "{warned:?}");
        assert!(warned.contains(&"sources[0].cookies.SUB"), "{warned:?}");
        assert!(
            config.warnings.iter().all(|w| w.line == 20 || w.line == 21),
            "{:?}",
            config.warnings
        );
        assert_eq!(config.sources[0].headers.0.len(), 2);
    }

    #[test]
    fn bad_selectors_paths_and_options_are_reported_with_lines() {
        let text = KINDS
            .replace("item = \"ul.list > li\"", "item = \"ul.list > li[\"")
            .replace("items = \"/data/list\"", "items = \"/data/~2list\"")
            .replace("author = \"user.name\"", "author = \"user..name\"")
            .replace("brands = [\"度小满\"]", "brands = [\"度小满\", \"百度\"]")
            .replace("time_zone = \"+08:00\"", "time_zone = \"Beijing\"")
            .replace("pages = 2", "pages = 0")
            .replace("weight = 2.0", "weight = 2.0\nfollow = true")
            .replace("lang = \"zh\"", "lang = 5");
        let err = parse(&text).unwrap_err();
        let found: Vec<(usize, &str)> = err
            .problems
            .iter()
            .map(|p| (p.line, p.key.as_str()))
            .collect();
        for expected in [
            (12, "sources[0].pages"),
            (15, "sources[0].brands[1]"),
            (16, "sources[0].time_zone"),
            (21, "sources[0].cookies"),
            (24, "sources[0].select.item"),
            (35, "sources[1].follow"),
            (38, "sources[1].fields.items"),
            (42, "sources[1].fields.author"),
        ] {
            assert!(found.contains(&expected), "{expected:?} not in\n{err}");
        }
        let text = err.to_string();
        assert!(
            text.contains("invalid CSS selector \"ul.list > li[\""),
            "{text}"
        );
        assert!(text.contains("\"~\" must be followed by 0 or 1"), "{text}");
        assert!(text.contains("unknown brand \"百度\""), "{text}");
    }

    #[test]
    fn kinds_need_their_tables_and_templates_their_keys() {
        let text = r#"
[[brands]]
name = "度小满"

[[sources]]
name = "page"
kind = "html"
url = "https://h.example/list"
interval = "10m"
follow = true

[[sources]]
name = "rss"
kind = "feed"
url = "https://h.example/rss?p={page}"
interval = "10m"
pages = 3

[sources.fields]
items = "x"
"#;
        let err = parse(text).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sources[0].select: required key \"select\" is missing"),
            "{text}"
        );
        assert!(
            text.contains("sources[1].url: {page} is for html and json sources"),
            "{text}"
        );
        assert!(
            text.contains("sources[1].fields: only kind = \"json\""),
            "{text}"
        );
        let follow_without_body = KINDS.replace("body = \"div.article\"", "");
        let err = parse(&follow_without_body).unwrap_err();
        assert!(
            err.to_string().contains("follow = true needs select.body"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_examples_of_each_kind_are_valid() {
        let start = EMBEDDED_SOURCES_TOML.find("# BEGIN EXAMPLES").unwrap();
        let end = EMBEDDED_SOURCES_TOML.find("# END EXAMPLES").unwrap();
        let examples: String = EMBEDDED_SOURCES_TOML[start..end]
            .lines()
            .skip(1)
            .map(|line| {
                line.strip_prefix("# ")
                    .unwrap_or(line.trim_start_matches('#'))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let text = format!("[[brands]]\nname = \"度小满\"\n\n{examples}");
        let config = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let kinds: Vec<String> = config.sources.iter().map(|s| s.kind.to_string()).collect();
        assert_eq!(kinds, ["html", "json"]);
    }
}
