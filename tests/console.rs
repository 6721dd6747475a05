//! The web console as a PR lead uses it, in a real headless Chromium: the daemon runs on a
//! fixture burst (with one hostile post), the browser opens the overview, logs in with the
//! token, opens the incident and clicks Acknowledge; the store then shows who took it.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::daemon::{burst_items, calm_items, TestDaemon};
use common::feeds::Item;
use yuqing::store::{IncidentState, Store};

const T: Duration = Duration::from_secs(15);

/// A complaint whose title tries to run script in the console.
fn hostile_item() -> Item {
    Item::new(
        "neg-hostile",
        // Entities in the feed's text decode to literal markup in the post, which is what a
        // hostile author would aim for.
        "&lt;script&gt;window.pwned = 1&lt;/script&gt;\"'&gt;&lt;img src=x onerror=window.pwned=2&gt;度小满暴力催收",
        &format!(
            "度小满暴力催收，骚扰通讯录，太恶心了 {}",
            "很长的标题".repeat(400)
        ),
    )
    .with_link("javascript:window.pwned=3")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_logs_in_and_acknowledges_the_incident_in_a_real_browser() {
    let d = TestDaemon::start().await;
    let incident = d.burst_until_incident().await;
    let id = incident["id"].as_u64().unwrap();
    // A hostile post joins the burst, stored before the browser looks at the hits.
    d.serve(&[calm_items(), burst_items(), vec![hostile_item()]].concat());
    d.negative_hit_stored("window.pwned").await;
    let token = d.token();
    let shots = common::temp_dir();

    let browser = Browser::start().await;
    // 1. The overview: today's figures and the open incident.
    browser.goto(&d.url("/")).await;
    let overview = browser.page_source().await;
    assert!(
        overview.contains("客诉率") || overview.contains("Complaint rate"),
        "{overview}"
    );
    assert!(overview.contains(&format!("/incidents/{id}")), "{overview}");
    assert!(overview.contains("<svg"), "the trend charts are drawn");

    // 2. Log in with the token, and come back to the incident.
    browser.goto(&d.url(&format!("/incidents/{id}"))).await;
    browser.click("#login-to-act").await;
    browser.wait_for("#token", T).await;
    browser.fill("#name", "alice").await;
    browser.fill("#token", "not the token").await;
    browser.click("#login").await;
    browser.wait_for("#login-error", T).await;
    browser.fill("#name", "alice").await;
    browser.fill("#token", &token).await;
    browser.click("#login").await;

    // 3. Acknowledge.
    browser.wait_for("#ack", T).await;
    browser
        .screenshot(shots.path().join("incident-before-ack.png"))
        .await;
    browser.click("#ack").await;
    browser.wait_for("#flash", T).await;
    let flash = browser.text_of("#flash").await;
    assert!(flash.contains("acknowledged by web:alice"), "{flash}");
    assert!(
        browser
            .wait_for("#resolve", T)
            .await
            .is_displayed()
            .await
            .unwrap(),
        "resolve is offered next"
    );
    let timeline = browser.text_of("#timeline").await;
    assert!(timeline.contains("web:alice"), "{timeline}");

    // The report (问题诊断报告) is one click away and tells the same story.
    browser.click("#report").await;
    browser.wait_for("#report-text", T).await;
    let report = browser.text_of("#report-text").await;
    assert!(report.contains("问题诊断报告"), "{report}");
    assert!(
        report.contains("acknowledged by web:alice (via web)"),
        "{report}"
    );

    // The hostile post is shown as text: no script ran, no javascript: link.
    browser.goto(&d.url("/hits?negative=true")).await;
    let hits = browser.page_source().await;
    assert!(
        hits.contains("&lt;script&gt;window.pwned"),
        "escaped in the page"
    );
    assert!(!hits.contains("href=\"javascript:"), "no javascript: links");
    let pwned = browser
        .client
        .execute("return typeof window.pwned;", vec![])
        .await
        .unwrap();
    assert_eq!(
        pwned,
        serde_json::json!("undefined"),
        "no injected script ran"
    );
    let screenshot = shots.path().join("console-hits.png");
    browser.screenshot(&screenshot).await;
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a real screenshot");
    browser.close().await;

    // 4. The store says who took it, from where.
    let (_feeds, data) = d.stop().await;
    let store = Store::open(&data.path().join("db")).unwrap();
    let stored = store.incident(id).unwrap().unwrap();
    assert_eq!(stored.state, IncidentState::Acknowledged);
    assert_eq!(stored.acked_by.unwrap().name, "web:alice");
    let last = stored.history.last().unwrap();
    assert_eq!(last.via.as_deref(), Some("web"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_posts_need_a_session_and_its_csrf_token() {
    let d = TestDaemon::start().await;
    d.burst_until_incident().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // No session: sent to the login page, nothing changes.
    let r = client
        .post(d.url("/incidents/1/ack"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));

    // A session, but a forged form without its CSRF token: refused.
    let r = client
        .post(d.url("/login"))
        .form(&[
            ("name", "mallory"),
            ("token", &d.token()),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/", "no open redirect");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let r = client
        .post(d.url("/incidents/1/ack"))
        .header("cookie", &session)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let list = d.get_json("/api/v1/incidents/1").await;
    assert_eq!(
        list["state"], "Triggered",
        "the forged post changed nothing"
    );

    // English on request; unknown pages are 404.
    let page = client
        .get(d.url("/"))
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Complaint rate"), "{page}");
    let r = client.get(d.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    d.stop().await;
}
