//! The admin API over a real socket, on a running daemon: every endpoint, auth refusals,
//! malformed input, pagination, idempotent transitions, and daily figures that equal a recount.

mod common;

use std::collections::HashSet;

use common::daemon::TestDaemon;
use serde_json::{json, Value};
use yuqing::store::{IncidentState, Store};

async fn post(
    d: &TestDaemon,
    path: &str,
    token: Option<&str>,
    actor: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = d.client.post(d.url(path)).body(body.to_string());
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(a) = actor {
        request = request.header("X-Yuqing-Actor", a);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST {path} answered non-JSON ({e}): {text}"));
    (status, value)
}

async fn get(d: &TestDaemon, path: &str) -> (u16, Value) {
    let response = d.client.get(d.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("GET {path} answered non-JSON ({e}): {text}"));
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_can_be_listed_acknowledged_resolved_and_reopened_over_the_api() {
    let d = TestDaemon::start().await;
    assert_eq!(get(&d, "/healthz").await.0, 200);
    let (status, ready) = get(&d, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["pollers_running"], true);

    let incident = d.burst_until_incident().await;
    assert_eq!(incident["id"], 1);
    assert_eq!(incident["state"], "Triggered");
    assert!(incident["url"].as_str().unwrap().ends_with("/incidents/1"));
    let token = d.token();

    // Prometheus metrics, in the exposition format.
    let response = d.client.get(d.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let metrics = response.text().await.unwrap();
    // The page for the new incident may or may not have reached the console yet.
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("yuqing_undelivered_notices ")),
        "{metrics}"
    );
    for line in [
        "yuqing_incidents{state=\"triggered\"} 1",
        "yuqing_incidents{state=\"acknowledged\"} 0",
        "yuqing_negative_hits_total{brand=\"度小满\"} 4",
        "yuqing_hits_total{brand=\"招联\"} 0",
        "yuqing_build_info{version=\"0.1.0\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
    for prefix in [
        "yuqing_polls_total{source=\"weibo\"} ",
        "yuqing_poll_duration_seconds_count{source=\"weibo\"} ",
        "yuqing_posts_seen_total{source=\"weibo\"} ",
        "yuqing_analysis_seconds_count ",
        "yuqing_store_size_bytes ",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(prefix)),
            "{prefix} missing:\n{metrics}"
        );
    }

    // Writes need the token, and the right one.
    let (status, body) = post(&d, "/api/v1/incidents/1/ack", None, None, "").await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let (status, _) = post(&d, "/api/v1/incidents/1/ack", Some("wrong"), None, "").await;
    assert_eq!(status, 401);

    // Malformed ids and bodies, unknown ids and verbs.
    assert_eq!(
        post(&d, "/api/v1/incidents/abc/ack", Some(&token), None, "")
            .await
            .0,
        400
    );
    assert_eq!(
        post(&d, "/api/v1/incidents/99/ack", Some(&token), None, "")
            .await
            .0,
        404
    );
    assert_eq!(
        post(&d, "/api/v1/incidents/1/explode", Some(&token), None, "")
            .await
            .0,
        404
    );
    let (status, body) = post(
        &d,
        "/api/v1/incidents/1/resolve",
        Some(&token),
        None,
        "{note",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(get(&d, "/api/v1/incidents/abc").await.0, 400);
    assert_eq!(get(&d, "/api/v1/incidents/99").await.0, 404);
    assert_eq!(get(&d, "/api/v1/nothing-here").await.0, 404);
    assert_eq!(get(&d, "/api/v1/incidents?state=closed").await.0, 400);

    // Ack, then ack again: not an error, and it says who has it.
    let (status, body) = post(
        &d,
        "/api/v1/incidents/1/ack",
        Some(&token),
        Some("alice"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["incident"]["state"], "Acknowledged");
    let (status, body) = post(&d, "/api/v1/incidents/1/ack", Some(&token), Some("bob"), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already acknowledged by alice"),
        "{body}"
    );

    let (_, open) = get(&d, "/api/v1/incidents?state=open").await;
    assert_eq!(open["incidents"].as_array().unwrap().len(), 1);

    // Resolve with a note; acking a resolved incident conflicts; reopen takes it back.
    let (status, body) = post(
        &d,
        "/api/v1/incidents/1/resolve",
        Some(&token),
        None,
        r#"{"note": "refunded and apologised"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&d, "/api/v1/incidents/1/ack", Some(&token), None, "").await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = post(
        &d,
        "/api/v1/incidents/1/reopen",
        Some(&token),
        Some("cli"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["incident"]["state"], "Acknowledged");

    // The whole history: who, when, what, from where.
    let (_, one) = get(&d, "/api/v1/incidents/1").await;
    let history = one["history"].as_array().unwrap();
    let lines: Vec<(Value, Value, Value)> = history
        .iter()
        .map(|t| (t["by"]["name"].clone(), t["note"].clone(), t["via"].clone()))
        .collect();
    assert_eq!(
        lines[1],
        (json!("alice"), json!("acknowledged"), json!("api")),
        "{one}"
    );
    assert_eq!(
        lines[2],
        (
            json!("api"),
            json!("resolved: refunded and apologised"),
            json!("api")
        ),
        "{one}"
    );
    assert_eq!(
        lines[3],
        (json!("cli"), json!("reopened"), json!("cli")),
        "{one}"
    );
    assert!(one["top_posts"].as_array().unwrap().len() >= 3, "{one}");
    assert!(!one["topic_terms"].as_array().unwrap().is_empty(), "{one}");
    assert!(
        one["categories"]["violent_collection"].as_u64() >= Some(1),
        "{one}"
    );
    assert!(
        one["opened_because"]
            .as_str()
            .unwrap()
            .starts_with("spike: "),
        "{one}"
    );

    let (feeds, data) = d.stop().await;
    drop(feeds);
    let store = Store::open(&data.path().join("db")).unwrap();
    let stored = store.incident(1).unwrap().unwrap();
    assert_eq!(stored.state, IncidentState::Acknowledged);
    assert_eq!(stored.acked_by.unwrap().name, "cli");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_page_newest_first_and_daily_figures_equal_a_recount_across_a_restart() {
    let d = TestDaemon::start().await;
    d.burst_until_incident().await;

    // Every hit once across pages of 2, newest first.
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut times = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/hits?limit=2&cursor={c}"),
            None => "/api/v1/hits?limit=2".to_string(),
        };
        let page = d.get_json(&path).await;
        for hit in page["hits"].as_array().unwrap() {
            assert!(
                seen.insert(hit["id"].as_str().unwrap().to_string()),
                "{hit}"
            );
            times.push(hit["at"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // calm-1 and the four complaints name the brand; calm-2 is the solar term.
    assert_eq!(seen.len(), 5, "{times:?}");
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    let negative = d
        .get_json("/api/v1/hits?brand=度小满&negative=true&since=24h")
        .await;
    assert_eq!(negative["hits"].as_array().unwrap().len(), 4);
    let none = d.get_json("/api/v1/hits?source=elsewhere").await;
    assert!(none["hits"].as_array().unwrap().is_empty());
    for bad in [
        "/api/v1/hits?cursor=zz",
        "/api/v1/hits?limit=0",
        "/api/v1/hits?limit=5000",
        "/api/v1/hits?negative=perhaps",
        "/api/v1/hits?since=last-tuesday",
        "/api/v1/hits?colour=red",
    ] {
        let (status, body) = get(&d, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }

    let sources = d.get_json("/api/v1/sources").await;
    let weibo = &sources["sources"][0];
    assert_eq!(weibo["name"], "weibo");
    assert_eq!(weibo["failing"], false);
    assert!(weibo["polls"].as_u64().unwrap() >= 2, "{weibo}");
    assert!(weibo["total_new_items"].as_u64().unwrap() >= 5, "{weibo}");
    assert!(
        weibo["next_poll_at"].is_string(),
        "the schedule is stored: {weibo}"
    );

    let daily = d.get_json("/api/v1/brands/度小满/daily?days=3").await;
    let days = daily["days"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    // Summed over the days, so a run that straddles local midnight counts the same.
    let total = |key: &str| days.iter().map(|d| d[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(total("mentions"), 5, "{daily}");
    assert_eq!(total("negative"), 4, "{daily}");
    assert_eq!(total("incidents_opened"), 1, "{daily}");
    let busy = days
        .iter()
        .find(|d| d["negative"].as_u64() > Some(0))
        .unwrap();
    let rate = busy["complaint_rate"].as_f64().unwrap();
    let expected = busy["negative"].as_f64().unwrap() / busy["mentions"].as_f64().unwrap();
    assert!((rate - expected).abs() < 1e-9, "{busy}");
    assert!(busy["harm"].as_f64().unwrap() > 0.0);
    assert_eq!(get(&d, "/api/v1/brands/nobody/daily").await.0, 404);
    assert_eq!(get(&d, "/api/v1/brands/度小满/daily?days=0").await.0, 400);
    assert_eq!(get(&d, "/api/v1/brands/度小满/daily?days=x").await.0, 400);
    let by_date = |days: &Value| -> std::collections::BTreeMap<String, Value> {
        days["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["date"].as_str().unwrap().to_string(), d.clone()))
            .collect()
    };
    let before = by_date(&daily);

    // After a restart the stored aggregates still equal a full recount.
    let (feeds, data) = d.stop().await;
    {
        let store = Store::open(&data.path().join("db")).unwrap();
        let (stored, recount) = (
            store.daily_all().unwrap(),
            store.recount_daily_all().unwrap(),
        );
        // Counts exactly; harm is a sum of floats, added in another order by the recount, so it
        // may differ in the last bit.
        assert_eq!(
            stored.keys().collect::<Vec<_>>(),
            recount.keys().collect::<Vec<_>>()
        );
        for (key, s) in &stored {
            let r = &recount[key];
            assert_eq!(
                (s.mentions, s.negative, s.incidents_opened),
                (r.mentions, r.negative, r.incidents_opened),
                "{key:?}"
            );
            assert!(
                (s.harm - r.harm).abs() <= 1e-9 * r.harm.abs().max(1.0),
                "{key:?}: {s:?} vs {r:?}"
            );
        }
    }
    let d = TestDaemon::start_on(feeds, data).await;
    let after = by_date(&d.get_json("/api/v1/brands/度小满/daily?days=3").await);
    for (date, figures) in &before {
        if let Some(again) = after.get(date) {
            assert_eq!(again, figures, "{date}");
        }
    }
    d.stop().await;
}

#[tokio::test]
async fn reads_off_loopback_need_the_token_or_a_login() {
    use std::sync::Arc;
    let store = Store::temporary().unwrap();
    let auth = yuqing::admin::auth::Auth::with_token("s3cret", false);
    let (session, _) = auth.login("alice");
    let state = yuqing::admin::AdminState {
        incidents: yuqing::incident::Incidents::new(store.clone(), vec![], 3),
        store,
        auth,
        brands: Arc::new(vec!["度小满".into()]),
        sources: Arc::new(vec![]),
        public_url: "http://yq.example".into(),
        readiness: Default::default(),
        metrics: yuqing::metrics::Metrics::new(),
        default_lang: yuqing::admin::i18n::Lang::En,
        clock: Arc::new(chrono::Utc::now),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (trigger, shutdown) = yuqing::shutdown::channel();
    let server = tokio::spawn(yuqing::admin::serve(listener, state, shutdown));
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/incidents");
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(client.get(&url).send().await.unwrap()), 401);
    assert_eq!(
        status(client.get(&url).bearer_auth("nope").send().await.unwrap()),
        401
    );
    assert_eq!(
        status(client.get(&url).bearer_auth("s3cret").send().await.unwrap()),
        200
    );
    let cookie = format!("yuqing_session={session}");
    assert_eq!(
        status(
            client
                .get(&url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        ),
        200
    );
    // Liveness never needs credentials.
    assert_eq!(
        status(client.get(format!("{base}/healthz")).send().await.unwrap()),
        200
    );
    trigger.trigger();
    server.await.unwrap().unwrap();
}

/// Runs the `yuqing` binary against the test daemon, off the async workers.
async fn cli(d: &TestDaemon, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_yuqing"));
    cmd.arg("--config")
        .arg(&d.config_path)
        .arg("--admin-url")
        .arg(&d.admin)
        .args(args)
        .env_remove("YUQING_CONFIG")
        .env_remove("YUQING_ADMIN_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_acks_and_resolves_through_the_running_daemon() {
    let d = TestDaemon::start().await;
    d.burst_until_incident().await;

    let (code, out, err) = cli(&d, &["incidents"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ID"), "{out}");
    assert!(
        out.contains("#1") && out.contains("度小满") && out.contains("UNACKNOWLEDGED"),
        "{out}"
    );
    let (_, out, _) = cli(&d, &["--json", "incidents"], &[]).await;
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], 1);

    let (code, out, err) = cli(&d, &["ack", "1"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acknowledged by cli"), "{out}");
    let (code, out, _) = cli(&d, &["ack", "1"], &[]).await;
    assert_eq!(code, 0, "acking twice is not an error");
    assert!(out.contains("already acknowledged by cli"), "{out}");

    let (code, out, _) = cli(&d, &["incident", "1"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("cli via cli: acknowledged"), "{out}");
    assert!(out.contains("top posts:"), "{out}");

    let (code, _, err) = cli(&d, &["ack", "99"], &[]).await;
    assert_eq!(code, 4, "not found: {err}");
    assert!(err.contains("no incident #99"), "{err}");
    let (code, _, err) = cli(&d, &["ack", "abc"], &[]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(
        &d,
        &["ack", "1"],
        &[("YUQING_TEST_ADMIN_TOKEN_NEVER_SET", "wrong")],
    )
    .await;
    assert_eq!(code, 5, "refused: {err}");
    assert!(err.contains("token is wrong"), "{err}");

    let (code, out, err) = cli(
        &d,
        &["resolve", "1", "--note", "called the customer back"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("resolved by cli"), "{out}");
    let (code, _, err) = cli(&d, &["ack", "1"], &[]).await;
    assert_eq!(code, 5, "acking a resolved incident conflicts: {err}");
    let (code, out, _) = cli(&d, &["incidents"], &[]).await;
    assert_eq!((code, out.as_str()), (0, "no incidents\n"));
    let (_, out, _) = cli(&d, &["incidents", "--all"], &[]).await;
    assert!(out.contains("Resolved"), "{out}");

    let (code, out, err) = cli(&d, &["hits", "--negative", "--brand", "度小满"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().count(),
        1 + 4,
        "header and four complaints: {out}"
    );
    let (code, out, _) = cli(&d, &["sources"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("weibo") && out.contains("ok"), "{out}");
    let (code, out, err) = cli(&d, &["stats", "--days", "2"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("COMPLAINT RATE") && out.contains("招联"),
        "{out}"
    );
    let (code, _, err) = cli(&d, &["hits", "--since", "someday"], &[]).await;
    assert_eq!(code, 2, "{err}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_plainly_when_the_daemon_is_not_running() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_yuqing"))
            .args(["--admin-url", &url, "incidents"])
            .env_remove("YUQING_CONFIG")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not running"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "names the address: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_brand_still_records_its_incident_but_is_not_announced() {
    let d = TestDaemon::start().await;
    let token = d.token();
    // Bad silences are refused with a reason.
    for (body, status) in [
        (r#"{"kind": "planet", "name": "x", "duration": "1h"}"#, 400),
        (
            r#"{"kind": "brand", "name": "度小满", "duration": "soon"}"#,
            400,
        ),
        (r#"{"kind": "brand", "name": " ", "duration": "1h"}"#, 400),
        ("not json", 400),
    ] {
        let (got, answer) = post(&d, "/api/v1/silences", Some(&token), None, body).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    assert_eq!(post(&d, "/api/v1/silences", None, None, "{}").await.0, 401);
    assert_eq!(
        post(&d, "/api/v1/silences/nope/expire", Some(&token), None, "")
            .await
            .0,
        404
    );

    // Mute through the CLI, as a person would.
    let (code, out, err) = cli(
        &d,
        &["mute", "brand", "度小满", "2h", "--reason", "known outage"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("brand 度小满") && out.contains("active"),
        "{out}"
    );
    let (_, out, _) = cli(&d, &["silences"], &[]).await;
    assert!(
        out.contains("known outage") && out.contains("cli via cli"),
        "{out}"
    );

    let incident = d.burst_until_incident().await;
    // Recorded, but not delivered: the console alert was held back.
    d.polls(2).await;
    let stored = d.get_json("/api/v1/incidents/1").await;
    assert_eq!(stored["alert_delivered"], false, "{incident}");
    // The outbox records why: the opening alert was held back by the silence.
    let mut held = Value::Null;
    for _ in 0..500 {
        let all = d.get_json("/api/v1/notices?all=true").await;
        if let Some(n) = all["notices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "opened" && n["status"] != "pending")
        {
            held = n.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(held["status"], "silenced", "{held}");
    assert_eq!(held["channel"], "console", "{held}");
    let (code, out, err) = cli(&d, &["notices"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no messages waiting"), "{out}");
    let (_, out, _) = cli(&d, &["notices", "--all"], &[]).await;
    assert!(
        out.contains("opened") && out.contains("silenced by brand 度小满"),
        "{out}"
    );
    assert_eq!(get(&d, "/api/v1/notices?all=maybe").await.0, 400);
    let silences = d.get_json("/api/v1/silences").await;
    let id = silences["silences"][0]["id"].as_str().unwrap().to_string();
    let (code, out, err) = cli(&d, &["unmute", &id], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("expired"), "{out}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gbk_feed_named_only_by_its_http_header_is_read() {
    let d = TestDaemon::start().await;
    // The document itself claims UTF-8; only the header tells the truth.
    let text = common::feeds::rss(
        "weibo",
        &[common::daemon::calm_items(), common::daemon::burst_items()].concat(),
    );
    let (gbk, _, lossy) = encoding_rs::GBK.encode(&text);
    assert!(!lossy);
    d.feeds.set(
        "/weibo",
        "application/rss+xml; charset=GBK",
        gbk.into_owned(),
    );
    let deadline = tokio::time::Instant::now() + common::daemon::WAIT;
    loop {
        let list = d.get_json("/api/v1/incidents").await;
        if let Some(first) = list["incidents"].as_array().and_then(|l| l.first()) {
            assert_eq!(first["brand"], "度小满");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the GBK burst was never read"
        );
        d.polls(1).await;
    }
    let hits = d.get_json("/api/v1/hits?negative=true").await;
    assert!(
        hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["title"] == "有钱花暴力催收"),
        "{hits}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_verdicts_on_hits_over_the_api() {
    let d = TestDaemon::start().await;
    d.burst_until_incident().await;
    let page = d.get_json("/api/v1/hits?negative=true&limit=1").await;
    let id = page["hits"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/hits/{id}/feedback");
    let token = d.token();

    assert_eq!(post(&d, &path, None, None, "").await.0, 401);
    let (status, body) = post(&d, &path, Some(&token), None, "{\"negative\": \"no\"}").await;
    assert_eq!(status, 400, "{body}");
    let missing = format!("/api/v1/hits/{}/feedback", "00".repeat(20));
    let (status, body) = post(&d, &missing, Some(&token), None, "").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no hit"), "{body}");
    let (status, body) = post(&d, "/api/v1/hits/xyz/feedback", Some(&token), None, "").await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = post(&d, &path, Some(&token), Some("alice"), "").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["negative"], false);
    assert_eq!(body["by"], "alice");
    assert_eq!(body["brand"], "度小满");
}
