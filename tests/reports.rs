//! The incident report and the daily digest over a real loopback admin server, and through
//! the `yuqing report` / `yuqing digest` client commands: a store seeded by the real incident
//! lifecycle, a fixed clock, unknown ids, bad days and a daemon that is not running.

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use yuqing::admin::auth::Auth;
use yuqing::admin::AdminState;
use yuqing::config::TierConfig;
use yuqing::detect::Signal;
use yuqing::incident::{By, Incidents};
use yuqing::store::{Actor, Hit, Store};

const TOKEN: &str = "s3cret-report-token";
const BRAND: &str = "度小满";

/// 2026-03-10 `h:m` in Shanghai.
fn local(h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 3, 10, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn complaint(n: u32, title: &str) -> Hit {
    let at = local(9, n);
    Hit {
        amplification: 0,
        reposted_by: Vec::new(),
        brand: BRAND.into(),
        source: "tousu".into(),
        url: Some(format!("https://tousu.example/{n}")),
        title: title.into(),
        snippet: String::new(),
        at,
        fetched_at: at,
        score: -3.0,
        negative: true,
        terms: vec!["催收".into()],
        severity: f64::from(n + 1),
        crisis: vec![],
    }
}

/// A store with one incident lived through the real lifecycle: three complaints from 09:00
/// local (one with a hostile title), opened 09:05, acknowledged by alice at 09:15 via web,
/// resolved by her at 10:05 with a note.
async fn seeded_store() -> Store {
    let store = Store::temporary().unwrap();
    store.insert_hit(&complaint(0, "度小满暴力催收")).unwrap();
    store
        .insert_hit(&complaint(1, "<script>alert(1)</script> **催收**"))
        .unwrap();
    store.insert_hit(&complaint(2, "催收电话打到单位")).unwrap();
    let tiers = vec![TierConfig {
        name: "on-call".into(),
        mention: vec![],
        ack_timeout: std::time::Duration::from_secs(600),
        quiet_hours: None,
        targets: Default::default(),
    }];
    let incidents = Incidents::new(store.clone(), tiers, 3);
    let signal = Signal {
        brand: BRAND.into(),
        window_count: 3,
        baseline: 0.2,
        window: std::time::Duration::from_secs(900),
        top: store.hits_between(BRAND, local(8, 50), local(9, 5)),
    };
    let id = incidents.open(&signal, local(9, 5)).await.unwrap().id;
    let alice = Actor {
        id: 0,
        name: "alice".into(),
    };
    let web = By {
        actor: &alice,
        via: "web",
    };
    incidents.acknowledge(id, web, local(9, 15)).await.unwrap();
    incidents
        .resolve(id, web, Some("refunded the fees"), local(10, 5))
        .await
        .unwrap();
    store
}

struct Server {
    base: String,
    client: reqwest::Client,
    trigger: yuqing::shutdown::Trigger,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    session_cookie: String,
}

impl Server {
    /// Serves `store` with reads behind the token; "now" is the next morning, 09:30 local.
    async fn start(store: Store) -> Server {
        let auth = Auth::with_token(TOKEN, false);
        let (session, _) = auth.login("carol");
        let state = AdminState {
            incidents: Incidents::new(store.clone(), vec![], 3),
            store,
            auth,
            brands: Arc::new(vec![BRAND.into(), "招联".into()]),
            sources: Arc::new(vec![]),
            public_url: "https://yq.example".into(),
            readiness: Default::default(),
            metrics: yuqing::metrics::Metrics::new(),
            default_lang: yuqing::admin::i18n::Lang::En,
            clock: Arc::new(|| local(9, 30) + chrono::Duration::days(1)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (trigger, shutdown) = yuqing::shutdown::channel();
        let task = tokio::spawn(yuqing::admin::serve(listener, state, shutdown));
        Server {
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            trigger,
            task,
            session_cookie: format!("yuqing_session={session}"),
        }
    }

    /// GET with the token: (status, content type, body).
    async fn get(&self, path: &str) -> (u16, String, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, kind, r.text().await.unwrap())
    }

    async fn stop(self) {
        self.trigger.trigger();
        self.task.await.unwrap().unwrap();
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_markdown_over_the_api_and_unknown_ids_are_json_404s() {
    let s = Server::start(seeded_store().await).await;
    let (status, kind, md) = s.get("/api/v1/incidents/1/report").await;
    assert_eq!(status, 200, "{md}");
    assert_eq!(kind, "text/markdown; charset=utf-8");
    for line in [
        "# 问题诊断报告 · Incident report #1 — 度小满",
        "- **Time to acknowledge:** 10m",
        "- **Time to resolve:** 1h",
        "- **Console:** [https://yq.example/incidents/1](https://yq.example/incidents/1)",
        "- 2026-03-10 09:00 — first negative post: [度小满暴力催收](https://tousu.example/0) (tousu)",
        "- 2026-03-10 09:15 — acknowledged by alice (via web)",
        "- 2026-03-10 10:05 — resolved by alice (via web): refunded the fees",
        "- **By source:** tousu 3",
        "\\<script\\>alert(1)\\</script\\> \\*\\*催收\\*\\*",
    ] {
        assert!(md.contains(line), "missing {line:?} in\n{md}");
    }

    let (status, kind, body) = s.get("/api/v1/incidents/42/report").await;
    assert_eq!(status, 404);
    assert!(kind.starts_with("application/json"), "{kind}");
    assert_eq!(json(&body)["error"], "no incident #42");
    let (status, _, body) = s.get("/api/v1/incidents/abc/report").await;
    assert_eq!(status, 400);
    assert!(json(&body)["error"].as_str().unwrap().contains("\"abc\""));
    // POSTing the report is not a transition: the same JSON answer as any unknown verb.
    let r = s
        .client
        .post(format!("{}/api/v1/incidents/1/report", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("no transition \\\"report\\\""));
    // Reads need the token here.
    let r = s
        .client
        .get(format!("{}/api/v1/incidents/1/report", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_is_served_as_json_markdown_and_text() {
    let s = Server::start(seeded_store().await).await;
    // No day: yesterday, as the clock (the 11th, 09:30 local) sees it.
    let (status, kind, body) = s.get("/api/v1/digest").await;
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("application/json"), "{kind}");
    let digest = &json(&body)["digest"];
    assert_eq!(digest["day"], "2026-03-10");
    assert_eq!(digest["time_zone"], "Asia/Shanghai");
    let brand = &digest["brands"][0];
    assert_eq!(brand["brand"], BRAND);
    assert_eq!(brand["negative"]["value"], 3.0);
    assert_eq!(brand["negative"]["week_mean"], 0.0);
    assert_eq!(brand["mtta_secs"], 600);
    assert_eq!(brand["mttr_secs"], 3600);
    assert_eq!(
        brand["top_negative"][0]["title"], "催收电话打到单位",
        "most harmful first"
    );
    assert_eq!(brand["incidents"][0]["id"], 1);
    assert_eq!(
        digest["brands"][1]["incidents"].as_array().unwrap().len(),
        0,
        "the other brand had a quiet day"
    );

    let (status, kind, md) = s
        .get(&format!(
            "/api/v1/digest?day=2026-03-10&brand={}&format=markdown",
            "%E5%BA%A6%E5%B0%8F%E6%BB%A1"
        ))
        .await;
    assert_eq!(status, 200, "{md}");
    assert_eq!(kind, "text/markdown; charset=utf-8");
    assert!(md.contains("## 度小满"), "{md}");
    assert!(!md.contains("## 招联"), "only the brand asked for: {md}");
    assert!(
        md.contains("[open](https://yq.example/incidents/1)"),
        "{md}"
    );

    let (status, kind, text) = s.get("/api/v1/digest?day=today&format=text").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert!(text.contains("日报 — 2026-03-11"), "{text}");
    assert!(text.contains("no negative posts"), "an empty day: {text}");

    for (query, status, needle) in [
        ("day=2026-13-01", 400, "day: \"2026-13-01\" is not a day"),
        ("format=pdf", 400, "format: \"pdf\""),
        ("brand=nobody", 404, "\"nobody\" is not a configured brand"),
        ("days=7", 400, "unknown parameter \"days\""),
    ] {
        let (got, _, body) = s.get(&format!("/api/v1/digest?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        let error = json(&body)["error"].as_str().unwrap().to_string();
        assert!(error.contains(needle), "{query}: {error}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_links_the_report_and_shows_it_escaped() {
    let s = Server::start(seeded_store().await).await;
    let page = |path: &str| {
        s.client
            .get(format!("{}{path}", s.base))
            .header("cookie", &s.session_cookie)
            .send()
    };
    let incident = page("/incidents/1").await.unwrap().text().await.unwrap();
    assert!(
        incident.contains(r#"href="/incidents/1/report" id="report""#),
        "{incident}"
    );
    let r = page("/incidents/1/report").await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<pre class="report" id="report-text">"#),
        "{html}"
    );
    assert!(
        html.contains("# 问题诊断报告 · Incident report #1"),
        "{html}"
    );
    assert!(
        !html.contains("<script>alert"),
        "post text never becomes markup"
    );
    assert!(html.contains("\\&lt;script\\&gt;alert(1)"), "{html}");
    assert!(
        html.contains(r#"href="/api/v1/incidents/1/report""#),
        "{html}"
    );
    assert_eq!(page("/incidents/77/report").await.unwrap().status(), 404);
    // Without a session, the page asks for a login first.
    let r = s
        .client
        .get(format!("{}/incidents/1/report", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    s.stop().await;
}

/// Runs `yuqing ARGS` against `admin_url` with the token in the environment, from a folder
/// with no sources.toml (so the built-in config is used).
async fn cli(admin_url: &str, args: &[&str]) -> (i32, String, String) {
    let dir = common::temp_dir();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_yuqing"));
    cmd.arg("--admin-url")
        .arg(admin_url)
        .args(args)
        .current_dir(dir.path())
        .env_remove("YUQING_CONFIG")
        .env_remove("YUQING_ADMIN_URL")
        .env("YUQING_ADMIN_TOKEN", TOKEN);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    drop(dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yuqing_report_and_digest_print_what_the_api_serves() {
    let s = Server::start(seeded_store().await).await;
    let (code, out, err) = cli(&s.base, &["report", "1"]).await;
    assert_eq!(code, 0, "{err}");
    let (_, _, served) = s.get("/api/v1/incidents/1/report").await;
    assert_eq!(out, served, "the CLI prints the Markdown as served");
    let (code, out, _) = cli(&s.base, &["--json", "report", "1"]).await;
    assert_eq!(code, 0);
    assert_eq!(json(out.trim())["report"], served);

    let (code, _, err) = cli(&s.base, &["report", "42"]).await;
    assert_eq!(code, 4, "not found: {err}");
    assert!(err.contains("no incident #42"), "{err}");

    let (code, out, err) = cli(&s.base, &["digest", "--day", "2026-03-10"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("日报 — 2026-03-10 (Asia/Shanghai)"), "{out}");
    assert!(out.contains("incidents: 1 · MTTA 10m · MTTR 1h"), "{out}");
    let (code, out, _) = cli(&s.base, &["digest", "--markdown"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("# 日报 · Daily digest — 2026-03-10"),
        "{out}"
    );
    let (code, out, _) = cli(&s.base, &["--json", "digest", "--brand", "招联"]).await;
    assert_eq!(code, 0);
    let one = json(out.trim());
    assert_eq!(one["brands"].as_array().unwrap().len(), 1);
    assert_eq!(one["brands"][0]["brand"], "招联");
    let (code, _, err) = cli(&s.base, &["digest", "--day", "someday"]).await;
    assert_eq!(code, 2, "bad input: {err}");
    assert!(err.contains("\"someday\" is not a day"), "{err}");
    let (code, _, err) = cli(&s.base, &["digest", "--brand", "nobody"]).await;
    assert_eq!(code, 4, "{err}");
    s.stop().await;

    // Nothing listens any more.
    let url = s_base_after_stop();
    let (code, _, err) = cli(&url, &["report", "1"]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not running"), "{err}");
}

/// An address where nothing listens: a port the OS handed out and took back.
fn s_base_after_stop() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}
