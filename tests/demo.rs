//! `yuqing demo`'s scripted crisis: the texts judged by the shipped analyzer, the feeds growing
//! with the injected clock, and the real daemon opening an incident on them.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use yuqing::analyze::Analyzer;
use yuqing::config::{Config, Origin};
use yuqing::daemon::{self, Secrets};
use yuqing::dedupe;
use yuqing::demo::{demo_config, DemoServer, Phase, Script};
use yuqing::parse::feed::parse_feed;
use yuqing::post::Post;
use yuqing::shutdown;
use yuqing::store::{IncidentState, Store};

const BRAND: &str = "度小满";
const SOLAR_TERM_GUID: &str = "calm-solar-term";
/// Longest any single wait may take before the test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(30);

/// A clock the test sets by hand: the script time the server believes it is.
#[derive(Clone, Default)]
struct StepClock(Arc<AtomicU64>);

impl StepClock {
    fn set(&self, at: Duration) {
        self.0.store(at.as_millis() as u64, Ordering::SeqCst);
    }

    fn reader(&self) -> impl Fn() -> Duration + Send + Sync + 'static {
        let at = self.0.clone();
        move || Duration::from_millis(at.load(Ordering::SeqCst))
    }
}

async fn start(clock: &StepClock, start: DateTime<Utc>) -> DemoServer {
    DemoServer::start_at(Script::default_crisis(), start, clock.reader())
        .await
        .expect("the demo server starts")
}

fn config(server: &DemoServer, data: &std::path::Path) -> Config {
    let text = demo_config(server, data, "127.0.0.1:0");
    Config::parse(&text, Origin::Embedded).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Every post every feed of `server` serves right now, by GUID.
async fn fetch_all(server: &DemoServer) -> HashMap<String, Post> {
    let client = reqwest::Client::new();
    let mut posts = HashMap::new();
    for source in &server.script().sources {
        let url = server.feed_url(&source.name);
        let response = client.get(&url).send().await.expect(&url);
        assert_eq!(response.status(), 200, "{url}");
        let bytes = response.bytes().await.unwrap();
        for post in parse_feed(&source.name, &bytes, Utc::now()).expect("valid RSS") {
            let guid = post.guid.clone().expect("every post has a GUID");
            assert!(posts.insert(guid, post).is_none(), "GUIDs are unique");
        }
    }
    posts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_analyzer_reads_the_story_as_scripted() {
    let clock = StepClock::default();
    let server = start(&clock, Utc::now()).await;
    let data = tempfile::tempdir().unwrap();
    let config = config(&server, data.path());
    assert_eq!(config.sources.len(), server.script().sources.len());
    for source in &config.sources {
        assert_eq!(source.url, server.feed_url(&source.name));
        assert_eq!(source.interval, Duration::from_secs(1));
    }
    assert_eq!(
        config.brands[0].all_names(),
        [BRAND, "有钱花", "度小满金融"]
    );
    assert_eq!(config.brands[0].exclusions, ["欢度小满"]);
    assert_eq!(config.detection.min_negative, 4);
    assert_eq!(config.telegram.chat_id, None, "alerts go to the console");
    assert_eq!(config.daemon.data_dir, data.path());
    let analyzer = Analyzer::from_config(&config.analysis, &config.brands).unwrap();

    // The texts exactly as the daemon reads them: served, parsed, cleaned.
    clock.set(server.script().duration());
    let posts = fetch_all(&server).await;
    assert_eq!(posts.len(), server.script().posts.len());

    let mut wrong = Vec::new();
    for scripted in &server.script().posts {
        let text = posts[&scripted.guid].text();
        let judged = analyzer.analyze(&text);
        let about_brand = judged.iter().find(|(b, _)| b == BRAND).map(|(_, j)| j);
        let score = about_brand.map(|j| j.score);
        let ok = match (scripted.phase, scripted.guid.as_str()) {
            (_, SOLAR_TERM_GUID) => judged.is_empty(),
            (Phase::Calm, _) => judged.iter().all(|(_, j)| !j.negative),
            (Phase::Burst, _) => about_brand.is_some_and(|j| j.negative),
        };
        if !ok {
            wrong.push(format!(
                "{} ({:?}, score {score:?}): {text}",
                scripted.guid, scripted.phase
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "judged against the script:\n{}",
        wrong.join("\n")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_grow_with_the_clock_and_links_open() {
    let clock = StepClock::default();
    let start_at = Utc.with_ymd_and_hms(2026, 5, 21, 8, 0, 0).unwrap();
    let server = start(&clock, start_at).await;
    let script = server.script().clone();
    let offsets: HashMap<&str, (Duration, Phase)> = script
        .posts
        .iter()
        .map(|p| (p.guid.as_str(), (p.offset, p.phase)))
        .collect();
    let visible_at = |t: Duration| -> BTreeSet<String> {
        script
            .posts
            .iter()
            .filter(|p| p.offset <= t)
            .map(|p| p.guid.clone())
            .collect()
    };

    // 0 s: calm posts only.
    let posts = fetch_all(&server).await;
    assert!(!posts.is_empty());
    assert!(
        posts.keys().all(|g| offsets[g.as_str()].1 == Phase::Calm),
        "{:?}",
        posts.keys()
    );
    assert_eq!(
        posts.keys().cloned().collect::<BTreeSet<_>>(),
        visible_at(Duration::ZERO)
    );

    // 20 s: the calm phase and the first part of the burst.
    let at = Duration::from_secs(20);
    clock.set(at);
    let posts = fetch_all(&server).await;
    let guids: BTreeSet<String> = posts.keys().cloned().collect();
    assert_eq!(guids, visible_at(at));
    let burst = guids
        .iter()
        .filter(|g| offsets[g.as_str()].1 == Phase::Burst)
        .count();
    assert!(burst >= 4, "{burst}");
    assert!(guids.len() < script.posts.len(), "the burst is not over");
    for (guid, post) in &posts {
        let offset = offsets[guid.as_str()].0;
        let expected = start_at + chrono::Duration::from_std(offset).unwrap();
        assert_eq!(post.published, Some(expected), "{guid}");
        assert_eq!(
            post.url.as_deref(),
            Some(server.post_url(guid).as_str()),
            "{guid}"
        );
    }

    // The end: everything.
    clock.set(script.duration());
    let posts = fetch_all(&server).await;
    assert_eq!(
        posts.keys().cloned().collect::<BTreeSet<_>>(),
        visible_at(Duration::MAX)
    );
    for source in &script.sources {
        let served = server.served(&source.name);
        assert_eq!(served.requests, 3, "{}", source.name);
        assert_eq!(served.latest, Some(script.duration()), "{}", source.name);
    }

    // A post's link is a page, but only once the post has appeared.
    let client = reqwest::Client::new();
    let page = client
        .get(server.post_url("repost-threats"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("转发：有钱花的催收威胁说要上门"), "{html}");
    assert!(
        html.contains("/post/burst-threats"),
        "links the original: {html}"
    );
    clock.set(Duration::from_secs(5));
    let early = client
        .get(server.post_url("burst-usury"))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 404);
    let index = client.get(&server.base_url).send().await.unwrap();
    assert!(index.text().await.unwrap().contains("/feed/weibo"));

    // Stopping does not wait on the client's idle keep-alive connection.
    let stopping = Instant::now();
    server.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopping.elapsed()
    );
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_opens_an_incident_on_the_burst() {
    let begun = Instant::now();
    let clock = StepClock::default();
    let server = start(&clock, Utc::now()).await;
    let data = tempfile::tempdir().unwrap();
    let config = config(&server, data.path());
    let (trigger, stop) = shutdown::channel();
    let daemon = tokio::spawn(daemon::run(config, Secrets::default(), stop));

    // The script plays in three steps; each waits until every feed was served at that time.
    let script = server.script().clone();
    for at in [Duration::ZERO, Duration::from_secs(20), script.duration()] {
        clock.set(at);
        for source in &script.sources {
            tokio::time::timeout(WAIT, server.wait_served(&source.name, at))
                .await
                .unwrap_or_else(|_| panic!("{} was not polled at {at:?}", source.name));
        }
    }
    // A poll that has been answered is finished and recorded before the daemon stops.
    trigger.trigger();
    tokio::time::timeout(WAIT, daemon)
        .await
        .expect("the daemon stops promptly")
        .expect("the daemon did not panic")
        .expect("the daemon stopped cleanly");
    // What the store knows each post by (its GUID, its link).
    let keys: Vec<(String, Vec<String>)> = script
        .posts
        .iter()
        .map(|p| {
            let post = Post {
                source: p.source.clone(),
                guid: Some(p.guid.clone()),
                url: Some(server.post_url(&p.guid)),
                title: p.title.clone(),
                body: p.body.clone(),
                published: None,
                fetched_at: Utc::now(),
                author: None,
            };
            (p.guid.clone(), dedupe::keys(&post))
        })
        .collect();
    server.stop().await;
    eprintln!("the scripted crisis ran in {:?}", begun.elapsed());

    let store = Store::open(data.path()).unwrap();
    let incident = store.incident(1).unwrap().expect("incident #1 is stored");
    assert_eq!(incident.brand, BRAND);
    assert_eq!(incident.state, IncidentState::Triggered);
    assert!(incident.window_count >= 4, "{incident:?}");
    assert!(store.incident(2).unwrap().is_none(), "one incident only");

    // Every post was seen; the solar term was read and produced no hit.
    for (guid, keys) in &keys {
        assert!(store.seen_any(keys).unwrap(), "{guid} was recorded");
    }
    let hits = store.hits_between(BRAND, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let solar = script.post(SOLAR_TERM_GUID).unwrap();
    assert!(
        hits.iter().all(|h| h.title != solar.title),
        "the solar term is not the lender: {hits:?}"
    );
    let negatives = hits.iter().filter(|h| h.negative).count();
    let reposts: Vec<_> = script
        .posts
        .iter()
        .filter(|p| p.repost_of.is_some())
        .collect();
    let complaints = script
        .posts
        .iter()
        .filter(|p| p.phase == Phase::Burst && p.repost_of.is_none())
        .count();
    assert_eq!(
        negatives, complaints,
        "every complaint is a negative hit; a repost is none"
    );
    // Each repost raised its original's amplification instead.
    for repost in &reposts {
        let original = script.post(repost.repost_of.as_deref().unwrap()).unwrap();
        let hit = hits
            .iter()
            .find(|h| h.title == original.title)
            .unwrap_or_else(|| panic!("{} is stored: {hits:?}", original.guid));
        assert_eq!(hit.amplification, 1, "{hit:?}");
        assert_eq!(
            hit.reposted_by,
            std::slice::from_ref(&repost.source),
            "{hit:?}"
        );
    }
    assert_eq!(
        hits.len(),
        script.posts.len() - 3 - reposts.len(),
        "every post about the brand is a hit (not the outing, the solar term, the takeaway, \
         nor the reposts)"
    );
}

#[test]
fn yuqing_demo_opens_an_incident_and_exits_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yuqing"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--exit-after-incident",
            "--data-dir",
        ])
        .arg(dir.path().join("demo-data"))
        .env_remove("YUQING_CONFIG")
        .env_remove("YUQING_ADMIN_TOKEN")
        .env_remove("YUQING_TELEGRAM_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("web console: http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("yuqing incident #1"),
        "the console alert: {stdout}"
    );
    assert!(stdout.contains("incident #1 opened; stopping"), "{stdout}");
    // The incident and the token are in the kept data folder.
    let store = yuqing::store::Store::open(&dir.path().join("demo-data")).unwrap();
    assert_eq!(store.incident(1).unwrap().unwrap().brand, "度小满");
    let token = std::fs::read_to_string(dir.path().join("demo-data/admin-token")).unwrap();
    assert!(
        stdout.contains(token.trim()),
        "the token is printed for the CLI"
    );
}
