//! A whole daemon on loopback for the operator-surface tests: a fixture feed, console alerts,
//! and the admin server on a port the OS picks.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use yuqing::config::{Config, Origin};
use yuqing::daemon::{self, Running, Secrets};
use yuqing::shutdown::{self, Trigger};

use super::feeds::{rss, FeedServer, Item};

pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestDaemon {
    pub feeds: FeedServer,
    pub data: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`
    pub admin: String,
    pub client: reqwest::Client,
    /// The config file the daemon runs on, for the CLI.
    pub config_path: PathBuf,
    trigger: Trigger,
    running: Running,
}

/// Posts about 度小满 that judge calm, and one about the solar term.
pub fn calm_items() -> Vec<Item> {
    vec![
        Item::new(
            "calm-1",
            "度小满发布年度报告",
            "度小满业务稳健增长，获得用户好评",
        ),
        Item::new("calm-2", "小满节气", "欢度小满，天气闷热让人难受"),
    ]
}

/// Four complaints about 度小满: enough to open an incident at `min_negative = 3`.
pub fn burst_items() -> Vec<Item> {
    [
        (
            "neg-1",
            "有钱花暴力催收",
            "度小满有钱花暴力催收，天天打电话骚扰我家人，太恶心了！",
        ),
        (
            "neg-2",
            "有钱花砍头息",
            "有钱花利息太高，砍头息，就是高利贷",
        ),
        ("neg-3", "度小满投诉", "度小满客服态度极差，投诉无门"),
        ("neg-4", "乱收费", "度小满的有钱花乱收费，隐形费用坑人"),
    ]
    .iter()
    .map(|(g, t, d)| Item::new(g, t, d))
    .collect()
}

impl TestDaemon {
    /// Starts on calm posts and waits for the first poll.
    pub async fn start() -> TestDaemon {
        let feeds = FeedServer::start().await;
        feeds.set("/weibo", "application/rss+xml", rss("weibo", &calm_items()));
        let data = super::temp_dir();
        Self::start_on(feeds, data).await
    }

    /// Starts (again) on an existing feed server and data folder.
    pub async fn start_on(feeds: FeedServer, data: tempfile::TempDir) -> TestDaemon {
        let text = format!(
            r#"
[daemon]
data_dir = "{data}"

[admin]
listen = "127.0.0.1:0"
token_env = "YUQING_TEST_ADMIN_TOKEN_NEVER_SET"

[detection]
min_negative = 3

[[brands]]
name = "度小满"
aliases = ["有钱花", "度小满金融"]
exclusions = ["欢度小满"]

[[brands]]
name = "招联"

[[sources]]
name = "weibo"
kind = "feed"
url = "{feed}"
interval = "200ms"
"#,
            data = data.path().join("db").display(),
            feed = feeds.url("/weibo"),
        );
        let config_path = data.path().join("sources.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = Config::parse(&text, Origin::File(config_path.clone())).unwrap();
        let (trigger, shutdown) = shutdown::channel();
        let running = daemon::start(config, Secrets::default(), shutdown)
            .await
            .expect("the daemon starts");
        let admin = format!("http://{}", running.admin_addr().expect("admin enabled"));
        let daemon = TestDaemon {
            feeds,
            data,
            admin,
            client: reqwest::Client::new(),
            config_path,
            trigger,
            running,
        };
        daemon.polls(1).await;
        daemon
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("db")
    }

    /// Waits until the feed has been fetched `n` more times.
    pub async fn polls(&self, n: usize) {
        let now = self.feeds.hits("/weibo");
        self.feeds.wait_for_hits("/weibo", now + n, WAIT).await;
    }

    pub fn serve(&self, items: &[Item]) {
        self.feeds
            .set("/weibo", "application/rss+xml", rss("weibo", items));
    }

    /// Waits until a stored negative hit's title contains `fragment`, through the API. A poll
    /// hands its posts to the recorder, which stores them a moment later, so a count of polls
    /// alone does not say a post is stored yet.
    pub async fn negative_hit_stored(&self, fragment: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let hits = self.get_json("/api/v1/hits?negative=true").await;
            if hits.to_string().contains(fragment) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no negative hit with {fragment:?} within {WAIT:?}: {hits}"
            );
            self.polls(1).await;
        }
    }

    /// Serves the burst and waits for incident #1 through the API.
    pub async fn burst_until_incident(&self) -> Value {
        self.serve(&[calm_items(), burst_items()].concat());
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let list = self.get_json("/api/v1/incidents").await;
            if let Some(first) = list["incidents"].as_array().and_then(|l| l.first()) {
                return first.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no incident within {WAIT:?}"
            );
            self.polls(1).await;
        }
    }

    /// The token the daemon generated into its data folder.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin-token"))
            .expect("the admin token file")
            .trim()
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    /// GETs a path that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Stops the daemon and hands back the feed server and data folder, for a restart or a
    /// look at the store.
    pub async fn stop(self) -> (FeedServer, tempfile::TempDir) {
        self.trigger.trigger();
        tokio::time::timeout(WAIT, self.running.wait())
            .await
            .expect("the daemon stops promptly")
            .expect("the daemon stopped cleanly");
        (self.feeds, self.data)
    }
}
