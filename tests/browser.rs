//! Self-test of the browser harness in `tests/common/browser.rs`: a real headless Chromium,
//! driven through ChromeDriver, against a small form served by axum on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::{Form, Router};
use common::browser::{Browser, BrowserPaths};

const T: Duration = Duration::from_secs(10);

type Notes = Arc<Mutex<Vec<String>>>;

#[derive(serde::Deserialize)]
struct Note {
    note: String,
}

const FORM_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>note</title></head><body>
<form method="post" action="/">
  <input id="note" name="note" type="text">
  <button id="send" type="submit">发送</button>
</form>
</body></html>"#;

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

async fn take_note(State(notes): State<Notes>, Form(note): Form<Note>) -> Html<String> {
    let shown = escape_html(&note.note);
    notes.lock().unwrap().push(note.note);
    Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>saved</title></head><body>
<p id="got">{shown}</p>
</body></html>"#
    ))
}

/// Serves the form on a fresh loopback port; returns its URL.
async fn serve(notes: Notes) -> String {
    let app = Router::new()
        .route("/", get(|| async { Html(FORM_PAGE) }).post(take_note))
        .with_state(notes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

/// Processes of process group `pgid` that are still running (zombies do not count).
fn live_in_group(pgid: u32) -> Vec<String> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            live.push(format!("{head})"));
        }
    }
    live
}

#[tokio::test]
async fn browser_fills_a_form_posts_it_and_screenshots_the_result() {
    let notes = Notes::default();
    let url = serve(notes.clone()).await;
    let browser = Browser::start().await;
    let pgid = browser.driver_pid();

    browser.goto(&url).await;
    browser.wait_for("#note", T).await;
    let value = "差评 & <投诉> \"refund\"";
    browser.fill("#note", value).await;
    browser.click("#send").await;
    browser.wait_for("#got", T).await;

    assert_eq!(*notes.lock().unwrap(), vec![value.to_string()]);
    assert_eq!(browser.text_of("#got").await, value);
    assert!(browser.url().await.starts_with(&url));
    assert!(
        browser
            .page_source()
            .await
            .contains("差评 &amp; &lt;投诉&gt;"),
        "the value is shown escaped"
    );

    let dir = common::temp_dir();
    let png = dir.path().join("saved.png");
    browser.screenshot(&png).await;
    let bytes = std::fs::read(&png).expect("the screenshot file exists");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &bytes[..bytes.len().min(8)]
    );
    assert!(
        bytes.len() > 1000,
        "a whole window is more than a PNG header"
    );

    let profile = browser.profile_dir().to_path_buf();
    browser.close().await;
    assert_eq!(live_in_group(pgid), Vec::<String>::new(), "left running");
    assert!(!profile.exists(), "profile removed");
}

#[tokio::test]
async fn dropping_the_browser_kills_chromedriver_and_chromium() {
    let browser = Browser::start().await;
    let pgid = browser.driver_pid();
    browser.goto("about:blank").await;
    assert!(
        live_in_group(pgid).len() >= 2,
        "ChromeDriver and Chromium share its group: {:?}",
        live_in_group(pgid)
    );
    drop(browser); // as when a test panics
    assert_eq!(live_in_group(pgid), Vec::<String>::new(), "left running");
}

#[tokio::test]
#[should_panic(
    expected = "browser tests need ChromeDriver, but it was not found: /nonexistent/yuqing/chromedriver \
                (from YUQING_CHROMEDRIVER or BrowserPaths) is not an executable file; \
                install them with `apt-get install chromium chromium-driver` (or run `.ci/run`"
)]
async fn missing_chromedriver_panics_with_how_to_install() {
    Browser::start_with(BrowserPaths {
        chromedriver: Some("/nonexistent/yuqing/chromedriver".into()),
        chromium: None,
    })
    .await;
}

#[tokio::test]
#[should_panic(
    expected = "browser tests need Chromium, but it was not found: /nonexistent/yuqing/chromium"
)]
async fn missing_chromium_panics_with_how_to_install() {
    // Any executable stands in for ChromeDriver: Chromium is looked up before anything starts.
    let stand_in = std::env::current_exe().unwrap();
    Browser::start_with(BrowserPaths {
        chromedriver: Some(stand_in),
        chromium: Some("/nonexistent/yuqing/chromium".into()),
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "ChromeDriver /bin/false exited instead of listening, 5 times")]
async fn chromedriver_that_exits_panics_after_trying_five_ports() {
    // `false` exits at once, as ChromeDriver does when its port was taken in between; the
    // stand-in for Chromium is never started.
    Browser::start_with(BrowserPaths {
        chromedriver: Some("/bin/false".into()),
        chromium: Some(std::env::current_exe().unwrap()),
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "could not start Chromium /bin/false")]
async fn chromium_that_will_not_start_panics_with_chromedriver_output() {
    Browser::start_with(BrowserPaths {
        chromedriver: None,
        chromium: Some("/bin/false".into()),
    })
    .await;
}
