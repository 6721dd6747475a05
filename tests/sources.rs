//! The source kinds against fixture servers on loopback, with the fixture files in
//! `tests/fixtures/`: list pages read with selectors (relative links, `follow`), JSON APIs with
//! a Chinese query and paging, Chinese and implausible dates, malformed documents, login walls,
//! the per-host and global fetch caps, and the source-health table the daemon keeps.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::feeds::FeedServer;
use yuqing::collect;
use yuqing::config::{Config, Origin, SourceConfig};
use yuqing::fetch::{http_client, ErrorClass, Fetcher, Validators};
use yuqing::post::Post;
use yuqing::store::Store;

const WAIT: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A config of two brands and the given `[[sources]]` text.
fn config(sources: &str) -> Config {
    let text = format!(
        "[[brands]]\nname = \"度小满\"\naliases = [\"有钱花\"]\n\n[[brands]]\nname = \"招联\"\n\n{sources}"
    );
    Config::parse(&text, Origin::Embedded).unwrap_or_else(|e| panic!("{e}"))
}

fn fetcher(config: &Config) -> Fetcher {
    Fetcher::new(http_client(&config.daemon).unwrap(), &config.daemon)
}

async fn poll(
    source: &SourceConfig,
    fetcher: &Fetcher,
    store: &Store,
) -> anyhow::Result<Vec<Post>> {
    collect::poll(source, fetcher, store, &Validators::default())
        .await
        .map(|c| c.fresh)
}

const LIST_SOURCE: &str = r#"
[[sources]]
name = "complaints"
kind = "html"
url = "SERVER/list"
interval = "10m"
follow = true

[sources.select]
item = "li.item"
title = "a.title"
summary = ".summary"
time = ".time"
author = ".user"
body = "div.article"
"#;

#[tokio::test]
async fn a_list_page_is_read_with_selectors_links_resolved_and_new_items_followed() {
    let server = FeedServer::start().await;
    server.set(
        "/list",
        "text/html; charset=utf-8",
        fixture("complaints_list.html"),
    );
    server.set(
        "/complaint/1001",
        "text/html; charset=utf-8",
        fixture("complaint_1001.html"),
    );
    server.set(
        "/complaint/1002",
        "text/html; charset=utf-8",
        fixture("complaint_1002.html"),
    );
    // /complaint/1003 is not served: that post keeps its list summary.
    let config = config(&LIST_SOURCE.replace("SERVER", &format!("http://{}", server.addr())));
    let source = &config.sources[0];
    let (fetcher, store) = (fetcher(&config), Store::temporary().unwrap());

    let posts = poll(source, &fetcher, &store).await.unwrap();
    assert_eq!(posts.len(), 3, "{posts:#?}");
    let first = &posts[0];
    assert_eq!(first.title, "度小满暴力催收，骚扰家人");
    assert_eq!(
        first.url.as_deref(),
        Some(server.url("/complaint/1001").as_str())
    );
    assert_eq!(
        first.body,
        "我在度小满借款一万元，逾期三天后，催收人员每天打十几个电话， 还打给我的父母和同事，言语威胁，严重影响生活。",
        "the body comes from the item's page, its script left out"
    );
    assert_eq!(first.author.as_deref(), Some("匿名用户"));
    assert_eq!(
        first.published.unwrap().to_rfc3339(),
        "2024-01-02T02:00:00+00:00",
        "10:00 in Beijing"
    );
    assert_eq!(
        posts[1].url.as_deref(),
        Some(server.url("/complaint/1002?utm_source=list").as_str()),
        "a link relative to the page"
    );
    assert_eq!(posts[1].title, "有钱花 利息太高 & 乱收费");
    assert!(
        posts[1].body.starts_with("有钱花的利息加上服务费"),
        "{}",
        posts[1].body
    );
    assert_eq!(
        posts[2].body, "投诉一周无人处理",
        "a page that fails keeps the summary"
    );
    assert_eq!(server.hits("/complaint/1001"), 1);

    // Once recorded, the items are not new, and their pages are not fetched again.
    for post in &posts {
        store
            .record_post(&yuqing::dedupe::keys(post), &[], Utc::now())
            .unwrap();
    }
    assert!(poll(source, &fetcher, &store).await.unwrap().is_empty());
    assert_eq!(server.hits("/list"), 2);
    assert_eq!(
        server.hits("/complaint/1001"),
        1,
        "only new items are followed"
    );
}

/// 度小满 as the server must see it in the query: UTF-8, percent-encoded.
const ENCODED: &str = "%E5%BA%A6%E5%B0%8F%E6%BB%A1";

#[tokio::test]
async fn a_json_api_is_mapped_with_the_brand_in_the_query_and_pages_until_empty() {
    std::env::set_var(
        "YUQING_TEST_SOURCES_WEIBO_COOKIE",
        "SUB=_2A25secret; SUBP=0033",
    );
    let server = FeedServer::start().await;
    let page = |n: u32| format!("/api/search?q={ENCODED}&page={n}");
    server.set(&page(1), "application/json", fixture("search_page1.json"));
    server.set(
        &page(2),
        "application/json; charset=utf-8",
        fixture("search_page2.json"),
    );
    server.set(&page(3), "application/json", fixture("search_empty.json"));
    let base = format!("http://{}", server.addr());
    let config = config(&format!(
        r#"
[[sources]]
name = "weibo-search"
kind = "json"
url = "{base}/api/search?q={{brand}}&page={{page}}"
interval = "10m"
pages = 5
brands = ["度小满"]
user_agent = "Mozilla/5.0 (yuqing fixture)"
headers = {{ Referer = "https://m.weibo.example/" }}
cookies = {{ env = "YUQING_TEST_SOURCES_WEIBO_COOKIE" }}

[sources.fields]
items = "/data/list"
id = "mid"
summary = "text"
link = "scheme"
time = "created_at"
author = "user.screen_name"
"#
    ));
    let source = &config.sources[0];
    let (fetcher, store) = (fetcher(&config), Store::temporary().unwrap());
    let collected = collect::poll(source, &fetcher, &store, &Validators::default())
        .await
        .unwrap();

    for n in 1..=3 {
        assert_eq!(
            server.hits(&page(n)),
            1,
            "the server saw page {n} as {}",
            page(n)
        );
    }
    assert_eq!(
        server.hits(&page(4)),
        0,
        "paging stops at the first empty page"
    );
    assert_eq!(
        server.hits("/api/search"),
        3,
        "招联 is not watched by this source"
    );
    let headers = server.last_request_headers(&page(1)).unwrap();
    assert_eq!(headers["cookie"], "SUB=_2A25secret; SUBP=0033");
    assert_eq!(headers["user-agent"], "Mozilla/5.0 (yuqing fixture)");
    assert_eq!(headers["referer"], "https://m.weibo.example/");

    assert_eq!(collected.items, 3);
    let posts = collected.fresh;
    assert_eq!(posts.len(), 3);
    let first = &posts[0];
    assert_eq!(first.guid.as_deref(), Some("127.0.0.1:4981234567890"));
    assert_eq!(first.body, "度小满 的催收又打电话到我单位了 [怒]");
    assert_eq!(
        first.url.as_deref(),
        Some(server.url("/detail/4981234567890").as_str())
    );
    assert_eq!(first.author.as_deref(), Some("用户甲"));
    assert_eq!(
        first.published,
        Some(first.fetched_at - chrono::Duration::minutes(3)),
        "3分钟前 counts back from the fetch"
    );
    assert_eq!(
        posts[1].url.as_deref(),
        Some("https://m.weibo.example/detail/4981234567891")
    );
    assert_eq!(
        posts[2].published.unwrap().to_rfc3339(),
        "2024-01-02T02:00:00+00:00",
        "2024年1月2日 10:00 in Beijing"
    );
}

#[tokio::test]
async fn implausible_dates_become_the_fetch_time_and_chinese_ones_are_read_in_the_sources_zone() {
    let server = FeedServer::start().await;
    server.set("/dates", "application/json", fixture("odd_dates.json"));
    let source_text = |zone: &str| {
        format!(
            "[[sources]]\nname = \"dates\"\nkind = \"json\"\nurl = \"{}\"\ninterval = \"10m\"\ntime_zone = \"{zone}\"\n\n[sources.fields]\nitems = \"data.list\"\nid = \"mid\"\nsummary = \"text\"\ntime = \"created_at\"\n",
            server.url("/dates")
        )
    };
    for zone in ["Asia/Shanghai", "-05:00"] {
        let config = config(&source_text(zone));
        let posts = poll(
            &config.sources[0],
            &fetcher(&config),
            &Store::temporary().unwrap(),
        )
        .await
        .unwrap();
        let by_id = |id: &str| -> &Post {
            posts
                .iter()
                .find(|p| p.guid.as_deref() == Some(&format!("127.0.0.1:{id}")))
                .unwrap_or_else(|| panic!("no post {id} in {posts:#?}"))
        };
        for id in ["f1", "a1", "z1"] {
            let p = by_id(id);
            assert_eq!(
                p.published,
                Some(p.fetched_at),
                "{id}: replaced by the fetch time"
            );
        }
        assert_eq!(
            by_id("m1").published.unwrap().to_rfc3339(),
            "2024-01-02T02:00:00+00:00"
        );
        // 昨天 10:00 is the day before the fetch, in the source's zone.
        let y = by_id("y1");
        let zone = yuqing::parse::date::Zone::parse(zone).unwrap();
        let yesterday = zone.local_date(y.fetched_at) - chrono::Duration::days(1);
        let expected = zone
            .to_utc(yesterday.and_hms_opt(10, 0, 0).unwrap())
            .unwrap();
        assert_eq!(y.published, Some(expected));
    }
}

#[tokio::test]
async fn malformed_documents_fail_their_source_alone_and_say_what_failed() {
    let server = FeedServer::start().await;
    server.set(
        "/broken.json",
        "application/json",
        fixture("malformed.json"),
    );
    server.set("/redesigned", "text/html", fixture("not_the_list.html"));
    server.set("/good", "application/json", fixture("search_page2.json"));
    server.set(
        "/wrong-shape",
        "application/json",
        fixture("search_page2.json"),
    );
    let json = |name: &str, path: &str, items: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\nkind = \"json\"\nurl = \"{}\"\ninterval = \"10m\"\n\n[sources.fields]\nitems = \"{items}\"\nsummary = \"text\"\n\n",
            server.url(path)
        )
    };
    let config = config(&format!(
        "{}{}{}{}",
        json("broken-api", "/broken.json", "/data/list"),
        LIST_SOURCE.replace("SERVER/list", &server.url("/redesigned")),
        json("good-api", "/good", "/data/list"),
        json("shape-api", "/wrong-shape", "/data/items"),
    ));
    let (fetcher, store) = (fetcher(&config), Store::temporary().unwrap());
    let mut errors = Vec::new();
    let mut good = Vec::new();
    for source in &config.sources {
        match poll(source, &fetcher, &store).await {
            Ok(posts) => good.extend(posts),
            Err(e) => errors.push((source.name.clone(), ErrorClass::of(&e), format!("{e:#}"))),
        }
    }
    assert_eq!(good.len(), 1, "the good source went on: {errors:#?}");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let (name, class, text) = &errors[0];
    assert_eq!((name.as_str(), class), ("broken-api", &ErrorClass::Parse));
    assert!(
        text.contains("\"broken-api\"") && text.contains("malformed JSON"),
        "{text}"
    );
    let (name, class, text) = &errors[1];
    assert_eq!((name.as_str(), class), ("complaints", &ErrorClass::Parse));
    assert!(
        text.contains("\"complaints\"")
            && text.contains("item selector \"li.item\" matches nothing"),
        "{text}"
    );
    let (_, _, text) = &errors[2];
    assert!(
        text.contains("\"shape-api\"")
            && text.contains("items path \"/data/items\" does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn login_walls_are_told_apart_from_parse_errors() {
    let server = FeedServer::start().await;
    server.set(
        "/sso/login",
        "text/html; charset=utf-8",
        fixture("login.html"),
    );
    server.set_response(
        "/redirected",
        302,
        "text/html",
        &[("Location", "/sso/login?url=%2Frss")],
        vec![Vec::new()],
    );
    server.set_status("/expired", 432, "");
    server.set("/form-instead-of-feed", "text/html", fixture("login.html"));
    server.set("/form-instead-of-json", "text/html", fixture("login.html"));
    server.set("/form-instead-of-list", "text/html", fixture("login.html"));
    let feed = |name: &str, path: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\nkind = \"feed\"\nurl = \"{}\"\ninterval = \"10m\"\n\n",
            server.url(path)
        )
    };
    let config = config(&format!(
        "{}{}{}[[sources]]\nname = \"api\"\nkind = \"json\"\nurl = \"{}\"\ninterval = \"10m\"\n[sources.fields]\nitems = \"data\"\ntitle = \"t\"\n\n{}",
        feed("redirected", "/redirected"),
        feed("expired", "/expired"),
        feed("form-feed", "/form-instead-of-feed"),
        server.url("/form-instead-of-json"),
        LIST_SOURCE
            .replace("SERVER/list", &server.url("/form-instead-of-list"))
            .replace("\"complaints\"", "\"form-list\""),
    ));
    let (fetcher, store) = (fetcher(&config), Store::temporary().unwrap());
    for source in &config.sources {
        let err = poll(source, &fetcher, &store).await.unwrap_err();
        let text = format!("{err:#}");
        assert_eq!(
            ErrorClass::of(&err),
            ErrorClass::LoginWall,
            "{}: {text}",
            source.name
        );
        assert!(text.contains("cookie expired or login required"), "{text}");
    }
}

/// A loopback server that holds each request until it is one of `hold_for` in flight across
/// every such server, or 300 ms have passed, and records the most it saw in flight: its own
/// and across all of them.
struct CountingServer {
    url: String,
    max_here: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Counts {
    here: Arc<AtomicUsize>,
    max_here: Arc<AtomicUsize>,
    everywhere: Arc<AtomicUsize>,
    max_everywhere: Arc<AtomicUsize>,
    changed: Arc<tokio::sync::Notify>,
    hold_for: usize,
}

impl CountingServer {
    async fn start(
        everywhere: Arc<AtomicUsize>,
        max_everywhere: Arc<AtomicUsize>,
        changed: Arc<tokio::sync::Notify>,
        hold_for: usize,
    ) -> CountingServer {
        let counts = Counts {
            here: Arc::default(),
            max_here: Arc::default(),
            everywhere,
            max_everywhere,
            changed,
            hold_for,
        };
        let max_here = counts.max_here.clone();
        let app = axum::Router::new()
            .fallback(|axum::extract::State(c): axum::extract::State<Counts>| async move {
                let here = c.here.fetch_add(1, Ordering::SeqCst) + 1;
                let all = c.everywhere.fetch_add(1, Ordering::SeqCst) + 1;
                c.max_here.fetch_max(here, Ordering::SeqCst);
                c.max_everywhere.fetch_max(all, Ordering::SeqCst);
                c.changed.notify_waiters();
                let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
                loop {
                    let notified = c.changed.notified();
                    if c.everywhere.load(Ordering::SeqCst) >= c.hold_for {
                        break;
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        break;
                    }
                }
                c.here.fetch_sub(1, Ordering::SeqCst);
                c.everywhere.fetch_sub(1, Ordering::SeqCst);
                "{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"t\",\"items\":[]}"
            })
            .with_state(counts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/feed", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CountingServer {
            url,
            max_here,
            _task: task,
        }
    }
}

#[tokio::test]
async fn requests_to_one_host_are_capped_and_all_requests_by_the_global_cap() {
    let everywhere = Arc::new(AtomicUsize::new(0));
    let max_everywhere = Arc::new(AtomicUsize::new(0));
    let changed = Arc::new(tokio::sync::Notify::new());
    // Each request is held until 5 are in flight (more than the caps allow), or 300 ms.
    let mut servers = Vec::new();
    for _ in 0..2 {
        servers.push(
            CountingServer::start(
                everywhere.clone(),
                max_everywhere.clone(),
                changed.clone(),
                5,
            )
            .await,
        );
    }
    let config = Config::parse(
        "[daemon]\nper_host = 2\nmax_concurrent_fetches = 3\n\n[[brands]]\nname = \"b\"\n",
        Origin::Embedded,
    )
    .unwrap();
    let fetcher = fetcher(&config);
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (fetcher, url) = (fetcher.clone(), servers[i % 2].url.clone());
        requests.spawn(async move { fetcher.fetch(&url, &Validators::default()).await });
    }
    let finished = tokio::time::timeout(WAIT, async {
        let mut n = 0;
        while let Some(done) = requests.join_next().await {
            done.unwrap().unwrap();
            n += 1;
        }
        n
    })
    .await
    .expect("the requests finish");
    assert_eq!(finished, 12);
    for server in &servers {
        assert_eq!(server.max_here.load(Ordering::SeqCst), 2, "per host");
    }
    assert_eq!(max_everywhere.load(Ordering::SeqCst), 3, "global");
}

#[tokio::test]
async fn the_daemon_keeps_each_sources_health_and_the_others_go_on() {
    let server = FeedServer::start().await;
    server.set("/good", "application/json", fixture("search_page1.json"));
    server.set(
        "/broken.json",
        "application/json",
        fixture("malformed.json"),
    );
    server.set("/wall", "text/html", fixture("login.html"));
    let data = common::temp_dir();
    let json = |name: &str, path: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\nkind = \"json\"\nurl = \"{}\"\ninterval = \"200ms\"\n\n[sources.fields]\nitems = \"/data/list\"\nid = \"mid\"\nsummary = \"text\"\nlink = \"scheme\"\n\n",
            server.url(path)
        )
    };
    let text = format!(
        "[daemon]\ndata_dir = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"YUQING_TEST_ADMIN_TOKEN_NEVER_SET\"\n\n[[brands]]\nname = \"度小满\"\n\n{}{}{}",
        data.path().join("db").display(),
        json("good", "/good"),
        json("broken", "/broken.json"),
        LIST_SOURCE
            .replace("SERVER/list", &server.url("/wall"))
            .replace("follow = true\n", "")
            .replace("interval = \"10m\"", "interval = \"200ms\""),
    );
    let config = Config::parse(&text, Origin::Embedded).unwrap_or_else(|e| panic!("{e}"));
    let (trigger, shutdown) = yuqing::shutdown::channel();
    let running = yuqing::daemon::start(config, yuqing::daemon::Secrets::default(), shutdown)
        .await
        .unwrap();
    let api = format!("http://{}/api/v1/sources", running.admin_addr().unwrap());
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let sources = loop {
        let body: serde_json::Value = client.get(&api).send().await.unwrap().json().await.unwrap();
        let list = body["sources"].as_array().unwrap().clone();
        let polled_twice = list.iter().all(|s| s["polls"].as_u64().unwrap_or(0) >= 2);
        if polled_twice {
            break list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sources not polled: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let by_name = |name: &str| sources.iter().find(|s| s["name"] == name).unwrap().clone();
    let good = by_name("good");
    assert_eq!(good["failing"], false, "{good:#}");
    assert_eq!(good["kind"], "json");
    assert!(
        good["items_seen"].as_u64().unwrap() >= 4,
        "two items a poll: {good:#}"
    );
    assert!(good["total_new_items"].as_u64().unwrap() >= 2, "{good:#}");
    assert!(good["last_new_item_at"].is_string(), "{good:#}");
    let broken = by_name("broken");
    assert_eq!(broken["failing"], true);
    assert_eq!(broken["last_error_class"], "parse", "{broken:#}");
    assert!(
        broken["last_error"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{broken:#}"
    );
    assert!(broken["failing_since"].is_string());
    assert!(broken["consecutive_failures"].as_u64().unwrap() >= 2);
    let wall = by_name("complaints");
    assert_eq!(wall["last_error_class"], "login_wall", "{wall:#}");
    assert!(wall["last_error"]
        .as_str()
        .unwrap()
        .contains("cookie expired or login required"));

    // The console's sources page shows the same table.
    let page = client
        .get(format!("http://{}/sources", running.admin_addr().unwrap()))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("login wall") && page.contains("parse"),
        "{page}"
    );
    trigger.trigger();
    running.wait().await.unwrap();
}

/// Log lines written while the guard lives, on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn permanent_redirects_are_followed_and_logged_with_the_new_url() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = FeedServer::start().await;
    server.set(
        "/new-feed",
        "application/json",
        fixture("search_page2.json"),
    );
    server.set_response(
        "/old-feed",
        301,
        "text/plain",
        &[("Location", "/new-feed")],
        vec![Vec::new()],
    );
    server.set_response(
        "/moved-for-now",
        302,
        "text/plain",
        &[("Location", "/new-feed")],
        vec![Vec::new()],
    );
    let config = config("");
    let fetcher = fetcher(&config);
    for path in ["/old-feed", "/moved-for-now"] {
        let fetched = fetcher
            .fetch(&server.url(path), &Validators::default())
            .await
            .unwrap();
        assert!(
            matches!(fetched, yuqing::fetch::Fetched::Body { .. }),
            "{path}"
        );
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let permanent: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("permanent redirect"))
        .collect();
    assert_eq!(permanent.len(), 1, "only the 301 is logged:\n{text}");
    assert!(
        permanent[0].contains(&server.url("/old-feed"))
            && permanent[0].contains(&server.url("/new-feed")),
        "{text}"
    );
}

#[tokio::test]
async fn a_body_mislabelled_as_utf8_that_does_not_parse_is_a_charset_failure() {
    let server = FeedServer::start().await;
    // A GBK feed labelled UTF-8, cut short: the decoding errors are the likelier story.
    let (gbk, _, _) = encoding_rs::GBK.encode(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>度小满</title><item><title>暴力催收",
    );
    server.set(
        "/mislabelled",
        "application/rss+xml; charset=utf-8",
        gbk.into_owned(),
    );
    let config = config(&format!(
        "[[sources]]\nname = \"gbk-as-utf8\"\nkind = \"feed\"\nurl = \"{}\"\ninterval = \"10m\"\n",
        server.url("/mislabelled")
    ));
    let err = poll(
        &config.sources[0],
        &fetcher(&config),
        &Store::temporary().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(ErrorClass::of(&err), ErrorClass::Charset, "{err:#}");
    let text = format!("{err:#}");
    assert!(
        text.contains("not valid UTF-8") && text.contains("gbk-as-utf8"),
        "{text}"
    );
}
