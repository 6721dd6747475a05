//! `sources.toml`: what to watch, how to judge it, and whom to page.
//!
//! Loading is two-stage, in the manner of ripgrep's low/high args: serde first reads exactly what
//! the user wrote (`raw` structs, with spans kept for every value we validate by hand), then
//! `Config::from_raw` checks meaning and builds the typed [`Config`] the daemon runs on.
//! Every problem is reported at once, each naming the file, the line and the key, because a PR
//! team editing the file at 2 a.m. should fix it in one pass rather than by trial and error.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

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
    pub brands: Vec<BrandConfig>,
    pub sources: Vec<SourceConfig>,
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
}

#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    /// Directory whose lexicon files replace the embedded ones, file by file.
    pub lexicon_dir: Option<PathBuf>,
    /// A brand score below `-negative_threshold` makes a hit negative.
    pub negative_threshold: f64,
    /// Whether the learned weights (`learned.tsv`) join the hand rules.
    pub learned: bool,
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
}

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub api_url: String,
    /// Name of the environment variable that holds the bot token.
    pub token_env: String,
    pub chat_id: Option<i64>,
    /// Telegram user ids allowed to /ack and /resolve.
    pub ack_users: Vec<u64>,
    pub tiers: Vec<TierConfig>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// RSS, Atom or JSON Feed (RSSHub routes included).
    Feed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub url: String,
    pub interval: Duration,
    /// How much a hit from this source counts in severity (1.0 = ordinary).
    pub weight: f64,
}

impl fmt::Display for SourceKind {
    /// The kind as written in `sources.toml`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKind::Feed => f.write_str("feed"),
        }
    }
}

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
        let locate = Locator::new(text);
        let raw: raw::File = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                let (line, key) = match err.span() {
                    Some(span) => (locate.line(span.start), locate.key_at(span.start)),
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
        Config::from_raw(raw, origin, &locate)
    }

    fn from_raw(raw: raw::File, origin: Origin, locate: &Locator) -> Result<Config, ConfigError> {
        let mut problems = Problems {
            locate,
            list: Vec::new(),
        };

        let daemon = {
            let d = raw.daemon;
            if *d.max_body_bytes.get_ref() < 1024 {
                problems.at(
                    &d.max_body_bytes,
                    "daemon.max_body_bytes",
                    "must be at least 1024",
                );
            }
            if *d.max_concurrent_fetches.get_ref() == 0 {
                problems.at(
                    &d.max_concurrent_fetches,
                    "daemon.max_concurrent_fetches",
                    "must be at least 1",
                );
            }
            DaemonConfig {
                data_dir: d.data_dir,
                user_agent: d.user_agent,
                fetch_timeout: d.fetch_timeout.0,
                max_body_bytes: d.max_body_bytes.into_inner(),
                max_concurrent_fetches: d.max_concurrent_fetches.into_inner(),
            }
        };

        let analysis = {
            let a = raw.analysis;
            if !(a.negative_threshold.get_ref().is_finite()
                && *a.negative_threshold.get_ref() >= 0.0)
            {
                problems.at(
                    &a.negative_threshold,
                    "analysis.negative_threshold",
                    "must be a number >= 0",
                );
            }
            if let Some(dir) = &a.lexicon_dir {
                if !dir.get_ref().is_dir() {
                    problems.at(
                        dir,
                        "analysis.lexicon_dir",
                        &format!("{} is not a directory", dir.get_ref().display()),
                    );
                }
            }
            AnalysisConfig {
                lexicon_dir: a.lexicon_dir.map(Spanned::into_inner),
                negative_threshold: a.negative_threshold.into_inner(),
                learned: a.learned,
            }
        };

        let detection = {
            let d = raw.detection;
            if d.baseline_window.get_ref().0 <= d.window.0 {
                problems.at(
                    &d.baseline_window,
                    "detection.baseline_window",
                    "must be longer than detection.window",
                );
            }
            if *d.min_negative.get_ref() == 0 {
                problems.at(
                    &d.min_negative,
                    "detection.min_negative",
                    "must be at least 1",
                );
            }
            if !(d.spike_ratio.get_ref().is_finite() && *d.spike_ratio.get_ref() >= 1.0) {
                problems.at(
                    &d.spike_ratio,
                    "detection.spike_ratio",
                    "must be a number >= 1.0",
                );
            }
            DetectionConfig {
                window: d.window.0,
                baseline_window: d.baseline_window.into_inner().0,
                min_negative: d.min_negative.into_inner(),
                spike_ratio: d.spike_ratio.into_inner(),
                top_posts: d.top_posts,
            }
        };

        let telegram = {
            let t = raw.telegram;
            if let Some(token) = &t.token {
                problems.at(
                    token,
                    "telegram.token",
                    "never put the bot token in the file; set token_env to the name of an \
                     environment variable that holds it",
                );
            }
            if let Err(e) = reqwest::Url::parse(t.api_url.get_ref()) {
                problems.at(&t.api_url, "telegram.api_url", &format!("not a URL: {e}"));
            }
            if t.token_env.get_ref().trim().is_empty() {
                problems.at(
                    &t.token_env,
                    "telegram.token_env",
                    "must name an environment variable",
                );
            }
            if t.tiers.is_empty() && t.chat_id.is_some() {
                problems.at_line(
                    locate.line_of_table("telegram"),
                    "telegram.tiers",
                    "at least one escalation tier is needed when a chat_id is set",
                );
            }
            let mut tiers = Vec::new();
            for (i, tier) in t.tiers.into_iter().enumerate() {
                let name = tier.name.get_ref().trim().to_string();
                if name.is_empty() {
                    problems.at(
                        &tier.name,
                        &format!("telegram.tiers[{i}].name"),
                        "must not be empty",
                    );
                }
                if tier.ack_timeout.get_ref().0.is_zero() {
                    problems.at(
                        &tier.ack_timeout,
                        &format!("telegram.tiers[{i}].ack_timeout"),
                        "must be longer than 0s",
                    );
                }
                tiers.push(TierConfig {
                    name,
                    mention: tier.mention,
                    ack_timeout: tier.ack_timeout.into_inner().0,
                });
            }
            TelegramConfig {
                api_url: t.api_url.into_inner(),
                token_env: t.token_env.into_inner(),
                chat_id: t.chat_id,
                ack_users: t.ack_users,
                tiers,
                poll_timeout: t.poll_timeout.0,
            }
        };

        let mut brands = Vec::new();
        let mut brand_names = HashSet::new();
        for (i, b) in raw.brands.into_iter().enumerate() {
            let name = b.name.get_ref().trim().to_string();
            if name.is_empty() {
                problems.at(&b.name, &format!("brands[{i}].name"), "must not be empty");
            } else if !brand_names.insert(name.clone()) {
                problems.at(
                    &b.name,
                    &format!("brands[{i}].name"),
                    &format!("brand {name:?} is defined twice"),
                );
            }
            for (j, alias) in b.aliases.iter().enumerate() {
                if alias.get_ref().trim().is_empty() {
                    problems.at(
                        alias,
                        &format!("brands[{i}].aliases[{j}]"),
                        "must not be empty",
                    );
                }
            }
            let names: Vec<&str> = std::iter::once(name.as_str())
                .chain(b.aliases.iter().map(|a| a.get_ref().trim()))
                .filter(|n| !n.is_empty())
                .collect();
            for (j, ex) in b.exclusions.iter().enumerate() {
                let ex_text = ex.get_ref().trim();
                // An exclusion names a phrase in which a name does not mean the brand, so it
                // must contain a name. One that only overlaps a name at its edge would drop
                // real mentions that run into an ordinary word (with 满意 as an exclusion,
                // 度小满意见很大 would not mention 度小满); one that shares nothing does
                // nothing. Either way it is a typo or a name missing from the aliases.
                if !names.iter().any(|n| ex_text.contains(n)) {
                    problems.at(
                        ex,
                        &format!("brands[{i}].exclusions[{j}]"),
                        &format!(
                            "exclusion {ex_text:?} contains none of the brand's names ({}); an \
                             exclusion must contain the name or an alias",
                            names.join(", ")
                        ),
                    );
                }
            }
            brands.push(BrandConfig {
                name,
                aliases: b
                    .aliases
                    .into_iter()
                    .map(|a| a.into_inner().trim().to_string())
                    .collect(),
                exclusions: b
                    .exclusions
                    .into_iter()
                    .map(|e| e.into_inner().trim().to_string())
                    .collect(),
            });
        }
        if brands.is_empty() {
            problems.at_line(1, "brands", "at least one [[brands]] entry is needed");
        }

        let mut sources = Vec::new();
        let mut source_names = HashSet::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let name = s.name.get_ref().trim().to_string();
            if name.is_empty() {
                problems.at(&s.name, &format!("sources[{i}].name"), "must not be empty");
            } else if !source_names.insert(name.clone()) {
                problems.at(
                    &s.name,
                    &format!("sources[{i}].name"),
                    &format!("source {name:?} is defined twice"),
                );
            }
            let kind = match s.kind.get_ref().as_str() {
                "feed" | "rss" | "atom" | "rsshub" => SourceKind::Feed,
                other => {
                    problems.at(
                        &s.kind,
                        &format!("sources[{i}].kind"),
                        &format!("unknown source kind {other:?}; this version supports \"feed\" (RSS, Atom, JSON Feed, RSSHub routes)"),
                    );
                    SourceKind::Feed
                }
            };
            match reqwest::Url::parse(s.url.get_ref()) {
                Ok(url) if url.scheme() == "http" || url.scheme() == "https" => {}
                Ok(url) => problems.at(
                    &s.url,
                    &format!("sources[{i}].url"),
                    &format!("scheme {:?} is not http or https", url.scheme()),
                ),
                Err(e) => problems.at(
                    &s.url,
                    &format!("sources[{i}].url"),
                    &format!("not a URL: {e}"),
                ),
            }
            if s.interval.get_ref().0 < Duration::from_millis(100) {
                problems.at(
                    &s.interval,
                    &format!("sources[{i}].interval"),
                    "must be at least 100ms",
                );
            }
            let weight = s.weight.as_ref().map(|w| *w.get_ref()).unwrap_or(1.0);
            if let Some(w) = &s.weight {
                if !(w.get_ref().is_finite() && *w.get_ref() > 0.0) {
                    problems.at(w, &format!("sources[{i}].weight"), "must be a number > 0");
                }
            }
            sources.push(SourceConfig {
                name,
                kind,
                url: s.url.into_inner(),
                interval: s.interval.into_inner().0,
                weight,
            });
        }

        if !problems.list.is_empty() {
            return Err(ConfigError {
                origin: origin.to_string(),
                problems: problems.list,
            });
        }
        Ok(Config {
            origin,
            daemon,
            analysis,
            detection,
            telegram,
            brands,
            sources,
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

struct Problems<'a> {
    locate: &'a Locator,
    list: Vec<ConfigProblem>,
}

impl Problems<'_> {
    fn at<T>(&mut self, value: &Spanned<T>, key: &str, message: &str) {
        let line = self.locate.line(value.span().start);
        self.at_line(line, key, message);
    }
    fn at_line(&mut self, line: usize, key: &str, message: &str) {
        self.list.push(ConfigProblem {
            line,
            key: key.to_string(),
            message: message.to_string(),
        });
    }
}

/// Maps byte offsets in the config text to lines and keys.
struct Locator {
    text: String,
    line_starts: Vec<usize>,
}

impl Locator {
    fn new(text: &str) -> Locator {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Locator {
            text: text.to_string(),
            line_starts,
        }
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        &self.text[start..end]
    }

    /// The dotted key a parse error points into: the enclosing `[table]` plus the key on the
    /// error's line, e.g. `sources.interval`.
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

    fn line_of_table(&self, table: &str) -> usize {
        let header = format!("[{table}]");
        (1..=self.line_starts.len())
            .find(|&l| self.line_text(l).trim() == header)
            .unwrap_or(1)
    }
}

/// A duration written the human way: "90s", "15m", "1h 30m".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} ({e}); write it like \"90s\", \"15m\" or \"1h 30m\""
                ))
            })
    }
}

/// Exactly what the user may write. Unknown keys are errors, so a misspelt key is never
/// silently ignored.
mod raw {
    use super::HumanDuration;
    use serde::Deserialize;
    use std::path::PathBuf;
    use std::time::Duration;
    use toml::Spanned;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        #[serde(default)]
        pub daemon: Daemon,
        #[serde(default)]
        pub analysis: Analysis,
        #[serde(default)]
        pub detection: Detection,
        #[serde(default)]
        pub telegram: Telegram,
        #[serde(default)]
        pub brands: Vec<Brand>,
        #[serde(default)]
        pub sources: Vec<Source>,
    }

    fn spanned<T>(value: T) -> Spanned<T> {
        Spanned::new(0..0, value)
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Daemon {
        pub data_dir: PathBuf,
        pub user_agent: String,
        pub fetch_timeout: HumanDuration,
        pub max_body_bytes: Spanned<usize>,
        pub max_concurrent_fetches: Spanned<usize>,
    }

    impl Default for Daemon {
        fn default() -> Self {
            Daemon {
                data_dir: PathBuf::from("yuqing-data"),
                user_agent: concat!("yuqing/", env!("CARGO_PKG_VERSION"), " (brand monitoring)")
                    .to_string(),
                fetch_timeout: HumanDuration(Duration::from_secs(20)),
                max_body_bytes: spanned(8 * 1024 * 1024),
                max_concurrent_fetches: spanned(8),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Analysis {
        pub lexicon_dir: Option<Spanned<PathBuf>>,
        pub negative_threshold: Spanned<f64>,
        pub learned: bool,
    }

    impl Default for Analysis {
        fn default() -> Self {
            Analysis {
                lexicon_dir: None,
                negative_threshold: spanned(0.5),
                learned: true,
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Detection {
        pub window: HumanDuration,
        pub baseline_window: Spanned<HumanDuration>,
        pub min_negative: Spanned<u64>,
        pub spike_ratio: Spanned<f64>,
        pub top_posts: usize,
    }

    impl Default for Detection {
        fn default() -> Self {
            Detection {
                window: HumanDuration(Duration::from_secs(15 * 60)),
                baseline_window: spanned(HumanDuration(Duration::from_secs(24 * 3600))),
                min_negative: spanned(5),
                spike_ratio: spanned(3.0),
                top_posts: 3,
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Telegram {
        pub api_url: Spanned<String>,
        pub token_env: Spanned<String>,
        /// Only here to be refused with a clear message.
        pub token: Option<Spanned<toml::Value>>,
        pub chat_id: Option<i64>,
        pub ack_users: Vec<u64>,
        pub tiers: Vec<Tier>,
        pub poll_timeout: HumanDuration,
    }

    impl Default for Telegram {
        fn default() -> Self {
            Telegram {
                api_url: spanned("https://api.telegram.org".to_string()),
                token_env: spanned("YUQING_TELEGRAM_TOKEN".to_string()),
                token: None,
                chat_id: None,
                ack_users: Vec::new(),
                tiers: Vec::new(),
                poll_timeout: HumanDuration(Duration::from_secs(25)),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Tier {
        pub name: Spanned<String>,
        #[serde(default)]
        pub mention: Vec<String>,
        pub ack_timeout: Spanned<HumanDuration>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Brand {
        pub name: Spanned<String>,
        #[serde(default)]
        pub aliases: Vec<Spanned<String>>,
        #[serde(default)]
        pub exclusions: Vec<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Source {
        pub name: Spanned<String>,
        pub kind: Spanned<String>,
        pub url: Spanned<String>,
        pub interval: Spanned<HumanDuration>,
        pub weight: Option<Spanned<f64>>,
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
    fn bad_duration_names_file_line_and_key() {
        let text = MINIMAL.replace("interval = \"90s\"", "interval = \"ninety seconds\"");
        let err = parse(&text).unwrap_err();
        let shown = err.to_string();
        assert_eq!(err.problems.len(), 1, "{shown}");
        let p = &err.problems[0];
        assert_eq!(p.line, 11, "{shown}");
        assert_eq!(p.key, "sources.interval", "{shown}");
        assert!(p.message.contains("invalid duration"), "{shown}");
        assert!(
            shown.contains("sources.toml:11: sources.interval"),
            "{shown}"
        );
    }

    #[test]
    fn toml_syntax_error_names_its_line() {
        let text = format!("{MINIMAL}\n[detection]\nwindow = \"15m\nspike_ratio = 2.0\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.problems[0].line, 14, "{err}");
    }

    #[test]
    fn misspelt_key_is_refused_with_its_line() {
        let text = MINIMAL.replace("interval = \"90s\"", "intervall = \"90s\"");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.problems[0].line, 11, "{err}");
        assert!(err.problems[0].message.contains("intervall"), "{err}");
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
kind = "html"
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
    }
}
