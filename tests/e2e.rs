//! The whole loop on real components over loopback: feed server → daemon (fetch, parse, dedupe,
//! analyze, sled, detect, incident) → real teloxide client → fake Bot API → /ack → restart.

mod common;

use std::time::Duration;

use common::daemon::{burst_items, calm_items};
use common::feeds::{rss, FeedServer, Item};
use common::telegram::{FakeTelegram, SentMessage};
use yuqing::config::{Config, Origin};
use yuqing::daemon::{self, Secrets};
use yuqing::shutdown::{self, Trigger};
use yuqing::store::{IncidentState, Store};

const CHAT: i64 = -1001;
const ALICE: u64 = 7;
const MALLORY: u64 = 99;
const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    feeds: FeedServer,
    telegram: FakeTelegram,
    data: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let feeds = FeedServer::start().await;
        feeds.set("/weibo", "application/rss+xml", rss("weibo", &calm_items()));
        Setup {
            feeds,
            telegram: FakeTelegram::start().await,
            data: common::temp_dir(),
        }
    }

    /// A test config: one feed polled every 200 ms, three negative posts open an incident,
    /// the first tier must ack within `ack_timeout`.
    fn config(&self, ack_timeout: &str) -> Config {
        Config::parse(&self.config_text(ack_timeout), Origin::Embedded)
            .expect("test config is valid")
    }

    fn config_text(&self, ack_timeout: &str) -> String {
        format!(
            r#"
[daemon]
data_dir = "{data}"
fetch_timeout = "5s"

[admin]
listen = "127.0.0.1:0"

# The timer would queue a digest into these tests' chats if one ran across 09:00 in Shanghai.
[reports]
digest_at = "off"

[detection]
window = "15m"
baseline_window = "24h"
min_negative = 3
spike_ratio = 3.0

[telegram]
api_url = "{api}"
token_env = "YUQING_E2E_TOKEN_UNUSED"
chat_id = {CHAT}
ack_users = [{ALICE}]
poll_timeout = "1s"

[[telegram.tiers]]
name = "responder"
mention = ["@alice"]
ack_timeout = "{ack_timeout}"

[[telegram.tiers]]
name = "lead"
mention = ["@boss"]
ack_timeout = "1h"

[[brands]]
name = "度小满"
aliases = ["有钱花", "度小满金融"]
exclusions = ["欢度小满"]

[[sources]]
name = "weibo"
kind = "feed"
url = "{feed}"
interval = "200ms"
"#,
            data = self.data.path().display(),
            api = self.telegram.api_url(),
            feed = self.feeds.url("/weibo"),
        )
    }

    fn start(&self, ack_timeout: &str) -> Daemon {
        self.start_with(self.config(ack_timeout))
    }

    fn start_with(&self, config: Config) -> Daemon {
        let (trigger, shutdown) = shutdown::channel();
        let secrets = Secrets {
            telegram_token: Some("123:TEST".into()),
        };
        let handle = tokio::spawn(daemon::run(config, secrets, shutdown));
        Daemon { trigger, handle }
    }

    fn alerts(&self) -> Vec<SentMessage> {
        self.telegram
            .sent_to(CHAT)
            .into_iter()
            .filter(|m| m.text.contains("🚨"))
            .collect()
    }

    fn pages(&self) -> Vec<SentMessage> {
        self.telegram
            .sent_to(CHAT)
            .into_iter()
            .filter(|m| m.text.contains("Escalating"))
            .collect()
    }

    async fn polls(&self, n: usize) {
        let now = self.feeds.hits("/weibo");
        self.feeds.wait_for_hits("/weibo", now + n, WAIT).await;
    }
}

struct Daemon {
    trigger: Trigger,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    async fn stop(self) {
        self.trigger.trigger();
        let result = tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("daemon stops promptly");
        result
            .expect("daemon task did not panic")
            .expect("daemon stopped cleanly");
    }
}

fn serve(setup: &Setup, items: Vec<Item>) {
    setup
        .feeds
        .set("/weibo", "application/rss+xml", rss("weibo", &items));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_alerts_once_ack_is_stored_and_restart_is_silent() {
    let setup = Setup::new().await;
    let daemon = setup.start("1h");
    setup.polls(2).await;
    assert!(
        setup.alerts().is_empty(),
        "calm posts raise nothing: {:?}",
        setup.telegram.sent()
    );

    // 1. A burst of negative posts: exactly one alert, with evidence.
    serve(&setup, [calm_items(), burst_items()].concat());
    let alert = setup
        .telegram
        .wait_for_sent_matching(|m| m.chat_id == CHAT && m.text.contains("🚨"), WAIT)
        .await;
    assert!(alert.text.contains("incident #1"), "{}", alert.text);
    assert!(alert.text.contains("度小满"), "{}", alert.text);
    assert!(
        alert.text.contains("https://news.example/neg-"),
        "links to the posts: {}",
        alert.text
    );
    assert!(
        alert.text.contains("暴力催收"),
        "the words that made it negative: {}",
        alert.text
    );
    assert!(alert.text.contains("baseline"), "{}", alert.text);
    // More negative posts attach to the open incident: still one alert.
    let mut more = [calm_items(), burst_items()].concat();
    more.push(Item::new(
        "neg-5",
        "有钱花又来了",
        "有钱花暴力催收，骚扰通讯录，太坑了",
    ));
    serve(&setup, more);
    setup.polls(3).await;
    assert_eq!(
        setup.alerts().len(),
        1,
        "no alert storm: {:?}",
        setup.telegram.sent()
    );

    // 3. Someone not on the list is refused, and nothing changes.
    setup.telegram.push_text(CHAT, MALLORY, "/ack 1");
    let refusal = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("not allowed"), WAIT)
        .await;
    assert!(refusal.text.contains("99"), "{}", refusal.text);

    // 2. The on-call person acknowledges.
    setup.telegram.push_text(CHAT, ALICE, "/ack 1");
    let reply = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("acknowledged by"), WAIT)
        .await;
    assert!(reply.text.contains("#1"), "{}", reply.text);
    setup.telegram.push_text(CHAT, ALICE, "/incidents");
    let list = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("open incident"), WAIT)
        .await;
    assert!(
        list.text.contains("acknowledged by @user7"),
        "{}",
        list.text
    );
    daemon.stop().await;

    // The acknowledgement is in the store, with who did it.
    {
        let store = Store::open(setup.data.path()).unwrap();
        let incident = store.incident(1).unwrap().expect("incident #1 stored");
        assert_eq!(incident.state, IncidentState::Acknowledged);
        assert_eq!(incident.acked_by.as_ref().map(|a| a.id), Some(ALICE));
        assert!(incident.hit_count >= 4, "{incident:?}");
        assert!(store.incident(2).unwrap().is_none(), "one incident only");
    }

    // 5. A restart on the same data folder does not alert again.
    let sent_before = setup.telegram.sent().len();
    let daemon = setup.start("1h");
    setup.polls(4).await;
    // Give the escalator and deliverer a moment too: they would act within a tick.
    tokio::time::sleep(Duration::from_millis(800)).await;
    daemon.stop().await;
    assert_eq!(setup.alerts().len(), 1, "{:?}", setup.telegram.sent());
    assert_eq!(
        setup.telegram.sent().len(),
        sent_before,
        "nothing new was sent after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_incident_escalates_and_ack_stops_it() {
    let setup = Setup::new().await;
    serve(&setup, burst_items());
    let daemon = setup.start("1s");
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("🚨"), WAIT)
        .await;
    // 4. Nobody acks within the first tier's timeout: tier 2 is paged.
    let page = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("Escalating"), WAIT)
        .await;
    assert!(page.text.contains("tier 2"), "{}", page.text);
    assert!(page.text.contains("@boss"), "{}", page.text);
    assert!(page.text.contains("incident #1"), "{}", page.text);
    setup.telegram.push_text(CHAT, ALICE, "/ack 1");
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("acknowledged by"), WAIT)
        .await;
    let pages = setup.pages().len();
    setup.polls(3).await;
    daemon.stop().await;
    assert_eq!(setup.pages().len(), pages, "no pages after the ack");
    assert_eq!(setup.alerts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_remembers_an_open_incident() {
    let setup = Setup::new().await;
    serve(&setup, burst_items());
    let daemon = setup.start("2s");
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("🚨"), WAIT)
        .await;
    daemon.stop().await;
    assert!(setup.pages().is_empty(), "stopped before the ack timeout");

    // Still unacknowledged after the restart: it escalates, without a second opening alert.
    let daemon = setup.start("2s");
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("Escalating"), WAIT)
        .await;
    daemon.stop().await;
    assert_eq!(setup.alerts().len(), 1, "{:?}", setup.telegram.sent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_that_could_not_be_delivered_is_sent_after_restart() {
    let setup = Setup::new().await;
    // The Bot API is down (502) for the whole first run; the alert waits in the outbox.
    setup.telegram.set_fail_send_status(502);
    setup.telegram.set_fail_send(true);
    serve(&setup, burst_items());
    let daemon = setup.start("1h");
    common::eventually("the alert was attempted", WAIT, || {
        setup.telegram.method_calls("sendMessage") > 0
    })
    .await;
    daemon.stop().await;
    assert!(setup.alerts().is_empty());
    {
        let store = Store::open(setup.data.path()).unwrap();
        let incident = store
            .incident(1)
            .unwrap()
            .expect("stored although undelivered");
        assert!(!incident.alert_delivered);
    }

    setup.telegram.set_fail_send(false);
    let daemon = setup.start("1h");
    let alert = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("🚨"), WAIT)
        .await;
    assert!(alert.text.contains("incident #1"), "{}", alert.text);
    setup.polls(2).await;
    daemon.stop().await;
    assert_eq!(setup.alerts().len(), 1);
    let store = Store::open(setup.data.path()).unwrap();
    assert!(store.incident(1).unwrap().unwrap().alert_delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_feed_does_not_stop_the_daemon_or_lose_data() {
    let setup = Setup::new().await;
    let daemon = setup.start("1h");
    setup.polls(2).await;
    // Garbage, an error status, a truncated feed: each fails alone, and polling goes on.
    setup.feeds.set(
        "/weibo",
        "text/html",
        "<html><body>502 Bad Gateway</body></html>",
    );
    setup.polls(1).await;
    setup.feeds.set_status("/weibo", 500, "oops");
    setup.polls(1).await;
    let full = rss("weibo", &burst_items());
    setup.feeds.set(
        "/weibo",
        "application/rss+xml",
        common::truncated(&full, full.len() / 2).to_string(),
    );
    setup.polls(1).await;
    // Back to health: the burst still gets through.
    serve(&setup, burst_items());
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("🚨"), Duration::from_secs(60))
        .await;
    daemon.stop().await;
    let store = Store::open(setup.data.path()).unwrap();
    assert!(
        store.hit_count() >= 5,
        "calm and burst hits are kept: {}",
        store.hit_count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_post_from_two_sources_is_one_hit() {
    let setup = Setup::new().await;
    // A second source polling the very same feed: every post arrives twice, often at once.
    let mut config = setup.config("1h");
    let mut mirror = config.sources[0].clone();
    mirror.name = "mirror".into();
    config.sources.push(mirror);
    let daemon = setup.start_with(config);
    setup.polls(6).await;
    serve(&setup, burst_items());
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("🚨"), Duration::from_secs(60))
        .await;
    setup.polls(6).await;
    daemon.stop().await;
    let store = Store::open(setup.data.path()).unwrap();
    // calm-1 and the four burst posts name the brand; calm-2 is the solar term.
    assert_eq!(store.hit_count(), 5, "each post is stored once");
}

/// A running daemon whose admin API the test reads (the outbox through /api/v1/notices).
struct Serving {
    trigger: Trigger,
    running: daemon::Running,
    admin: String,
}

impl Serving {
    async fn start(config: Config) -> Serving {
        let (trigger, shutdown) = shutdown::channel();
        let secrets = Secrets {
            telegram_token: Some("123:TEST".into()),
        };
        let running = daemon::start(config, secrets, shutdown)
            .await
            .expect("daemon starts");
        let admin = format!("http://{}", running.admin_addr().expect("admin enabled"));
        Serving {
            trigger,
            running,
            admin,
        }
    }

    async fn notices(&self) -> Vec<serde_json::Value> {
        let answer: serde_json::Value =
            reqwest::get(format!("{}/api/v1/notices?all=true&limit=1000", self.admin))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        answer["notices"].as_array().unwrap().clone()
    }

    /// Waits until some outbox entry satisfies `pred`.
    async fn until_notice(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let all = self.notices().await;
            if all.iter().any(&pred) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(WAIT, self.running.wait())
            .await
            .expect("daemon stops promptly")
            .expect("daemon stopped cleanly");
    }
}

fn status_of(notices: &[serde_json::Value], kind: &str) -> Vec<String> {
    notices
        .iter()
        .filter(|n| n["kind"] == kind)
        .map(|n| n["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_sends_no_page_after_an_ack_and_a_restart_during_it_loses_nothing() {
    let setup = Setup::new().await;
    // 1. The Bot API answers 502 to everything: the alert and, a second later, the escalation
    //    page to tier 2 are decided and wait in the outbox.
    setup.telegram.set_fail_send_status(502);
    setup.telegram.set_fail_send(true);
    serve(&setup, burst_items());
    let daemon = Serving::start(setup.config("1s")).await;
    daemon
        .until_notice("the escalation page to be decided", |n| {
            n["kind"] == "escalated"
        })
        .await;
    assert!(setup.telegram.method_calls("sendMessage") > 0, "attempted");

    // 2. Someone takes it in the console meanwhile.
    let token = std::fs::read_to_string(setup.data.path().join("admin-token")).unwrap();
    let acked = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents/1/ack", daemon.admin))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    // The pages decided before the ack are dropped when their turn comes, not sent.
    daemon
        .until_notice("the alert to be superseded", |n| {
            n["kind"] == "opened" && n["status"] == "superseded"
        })
        .await;
    daemon.stop().await;

    // 3. A restart while the outage goes on, now as refused connections.
    let mut refused = setup.config("1s");
    refused.telegram.api_url = FakeTelegram::refused_url().await;
    let daemon = Serving::start(refused).await;
    daemon
        .until_notice("a failed attempt after the restart", |n| {
            n["kind"] == "changed" && n["attempts"].as_u64().unwrap_or(0) > 0
        })
        .await;
    let notices = daemon.notices().await;
    // Still owed: waiting for its next attempt, or in one (the retry timer may fire between
    // the wait above and this read), never sent, dropped or given up.
    let changed = status_of(&notices, "changed");
    assert!(
        changed == ["pending"] || changed == ["sending"],
        "{notices:#?}"
    );
    daemon.stop().await;

    // 4. The Bot API is back: what is owed is sent once, and nothing stale.
    setup.telegram.set_fail_send(false);
    let daemon = Serving::start(setup.config("1s")).await;
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("acknowledged"), WAIT)
        .await;
    daemon
        .until_notice("the announcement to be recorded as delivered", |n| {
            n["kind"] == "changed" && n["status"] == "delivered"
        })
        .await;
    let notices = daemon.notices().await;
    daemon.stop().await;
    assert_eq!(status_of(&notices, "opened"), ["superseded"]);
    assert!(
        status_of(&notices, "escalated")
            .iter()
            .all(|s| s == "superseded"),
        "{notices:#?}"
    );
    let sent = setup.telegram.sent_to(CHAT);
    assert_eq!(sent.len(), 1, "only the ack announcement: {sent:#?}");
    assert!(sent[0].text.contains("incident #1"), "{}", sent[0].text);
    assert!(setup.pages().is_empty() && setup.alerts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_feishu_does_not_delay_telegram() {
    use common::webhooks::{Failure, FakeReceiver, Platform};
    let setup = Setup::new().await;
    let feishu = FakeReceiver::start(Platform::Feishu, "feishu-key-123456", None).await;
    for _ in 0..10_000 {
        feishu.fail_next(Failure::BadGateway);
    }
    // A name only this test uses, so parallel tests cannot see it.
    std::env::set_var("YUQING_E2E_FEISHU_URL_OUTAGE", feishu.url());
    let text = format!(
        "{}\n[[channels]]\nname = \"feishu-crisis\"\nkind = \"feishu\"\nurl_env = \"YUQING_E2E_FEISHU_URL_OUTAGE\"\n",
        setup.config_text("1h")
    );
    let config = Config::parse(&text, Origin::Embedded).expect("valid");
    serve(&setup, burst_items());
    let daemon = Serving::start(config).await;
    let alert = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("🚨"), WAIT)
        .await;
    assert!(alert.text.contains("incident #1"), "{}", alert.text);
    let notices = daemon.notices().await;
    let feishu_alert: Vec<_> = notices
        .iter()
        .filter(|n| n["channel"] == "feishu-crisis" && n["kind"] == "opened")
        .collect();
    assert_eq!(feishu_alert.len(), 1, "{notices:#?}");
    assert_eq!(feishu_alert[0]["status"], "pending", "{notices:#?}");
    assert!(
        feishu_alert[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("502"),
        "{notices:#?}"
    );
    assert!(feishu.accepted().is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_is_announced_once_then_its_recovery() {
    let setup = Setup::new().await;
    setup
        .feeds
        .set_status("/forum", 500, "down for maintenance");
    let text = format!(
        "{}\n[[sources]]\nname = \"forum\"\nkind = \"feed\"\nurl = \"{}\"\ninterval = \"100ms\"\nalert_after = \"300ms\"\n",
        setup.config_text("1h"),
        setup.feeds.url("/forum")
    );
    let daemon = Serving::start(Config::parse(&text, Origin::Embedded).expect("valid")).await;
    let unhealthy = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("forum is unhealthy"), WAIT)
        .await;
    assert!(unhealthy.text.contains("500"), "{}", unhealthy.text);
    setup
        .feeds
        .set("/forum", "application/rss+xml", rss("forum", &calm_items()));
    setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("forum recovered"), WAIT)
        .await;
    daemon.stop().await;
    let about_forum: Vec<_> = setup
        .telegram
        .sent_to(CHAT)
        .into_iter()
        .filter(|m| m.text.contains("forum"))
        .collect();
    assert_eq!(
        about_forum.len(),
        2,
        "announced once each: {about_forum:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_digest_is_caught_up_with_its_chart_and_a_resolve_sends_the_report() {
    let setup = Setup::new().await;
    {
        // The last digest this store queued was long ago: the daemon was down at digest time.
        let store = Store::open(setup.data.path()).unwrap();
        store
            .set_meta_u64(yuqing::digest::LAST_DIGEST_KEY, 1)
            .unwrap();
        store.flush().await.unwrap();
    }
    let text = setup
        .config_text("1h")
        .replace("digest_at = \"off\"", "digest_at = \"00:00\"");
    serve(&setup, burst_items());
    let daemon = Serving::start(Config::parse(&text, Origin::Embedded).expect("valid")).await;
    let digest = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("yuqing daily digest"), WAIT)
        .await;
    assert!(digest.text.contains("度小满"), "{}", digest.text);
    let alert = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("🚨"), WAIT)
        .await;
    // The alert's chart follows it as a photo replying to it.
    setup.telegram.wait_for_calls("sendphoto", 1, WAIT).await;
    let photo = setup.telegram.photos().remove(0);
    assert!(photo.bytes.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        photo.raw["reply_parameters"].is_string(),
        "it replies to the alert ({}): {:?}",
        alert.text,
        photo.raw
    );

    let token = std::fs::read_to_string(setup.data.path().join("admin-token")).unwrap();
    let resolved = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents/1/resolve", daemon.admin))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"note": "refunds sent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let report = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("问题诊断报告"), WAIT)
        .await;
    assert!(report.text.contains("refunds sent"), "{}", report.text);
    // Rendered for Telegram's HTML mode, not sent as raw Markdown.
    assert!(report.text.contains("<b>问题诊断报告"), "{}", report.text);
    assert!(
        !report.text.contains("**") && !report.text.contains("\n#"),
        "{}",
        report.text
    );
    daemon.stop().await;
    let digests = setup
        .telegram
        .sent_to(CHAT)
        .into_iter()
        .filter(|m| m.text.contains("yuqing daily digest"))
        .count();
    assert_eq!(digests, 1, "caught up once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reposts_raise_the_originals_amplification_instead_of_counting_again() {
    let setup = Setup::new().await;
    let complaint = "度小满暴力催收，每天打十几个电话骚扰我的家人和同事，还威胁要上门";
    let item = |guid: &str, text: &str| Item {
        title: text.to_string(),
        ..Item::new(guid, text, text)
    };
    let original = item("orig", complaint);
    serve(&setup, vec![original.clone()]);
    let daemon = setup.start("1h");
    setup.polls(3).await;
    // Two reposts with GUIDs and links of their own, and one different complaint.
    serve(
        &setup,
        vec![
            original,
            item("copy", &format!("转发：{complaint}")),
            item(
                "chain",
                &format!("太过分了//@小王:同感//@受害者:{complaint}"),
            ),
            item("other", "有钱花额度突然被降，客服一直推脱，根本不解决问题"),
        ],
    );
    setup.polls(4).await;
    daemon.stop().await;

    let store = Store::open(setup.data.path()).unwrap();
    let from = chrono::Utc::now() - chrono::Duration::days(1);
    let to = chrono::Utc::now() + chrono::Duration::days(1);
    let hits = store.hits_between("度小满", from, to);
    assert_eq!(hits.len(), 2, "the reposts are no new hits: {hits:#?}");
    let amplified = hits
        .iter()
        .find(|h| h.title == complaint)
        .expect("the original is stored");
    assert_eq!(amplified.amplification, 2);
    assert_eq!(amplified.reposted_by, ["weibo"]);
    assert!(amplified.negative);
    let other = hits.iter().find(|h| h.title != complaint).unwrap();
    assert_eq!(other.amplification, 0, "a different post is not a repost");
    // Detection counts the original with its reposts' weight.
    let weighted = store.weighted_negative("度小满", from, to);
    let expected = yuqing::post::amplification_factor(2) + f64::from(u8::from(other.negative));
    assert!(
        (weighted - expected).abs() < 1e-9,
        "{weighted} vs {expected}"
    );
    assert_eq!(
        store.count_negative("度小满", from, to),
        1 + u64::from(other.negative)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_is_gone_is_announced_at_once() {
    let setup = Setup::new().await;
    setup.feeds.set_status("/old", 410, "Gone");
    // The default alert_after (6h) does not apply: 410 means it will not come back.
    let text = format!(
        "{}\n[[sources]]\nname = \"old-forum\"\nkind = \"feed\"\nurl = \"{}\"\ninterval = \"100ms\"\n",
        setup.config_text("1h"),
        setup.feeds.url("/old")
    );
    let daemon = Serving::start(Config::parse(&text, Origin::Embedded).expect("valid")).await;
    let gone = setup
        .telegram
        .wait_for_sent_matching(|m| m.text.contains("old-forum is unhealthy"), WAIT)
        .await;
    assert!(gone.text.contains("gone (HTTP 410)"), "{}", gone.text);
    let sources: serde_json::Value = reqwest::get(format!("{}/api/v1/sources", daemon.admin))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "old-forum")
        .cloned()
        .unwrap();
    assert_eq!(old["last_error_class"], "gone", "{old}");
    daemon.stop().await;
    assert_eq!(setup.feeds.hits("/old"), 1, "not polled again for an hour");
}
