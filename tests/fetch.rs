//! The fetch stage against a real HTTP server on loopback: politeness (conditional GET,
//! Retry-After), and the unhappy paths (huge bodies, slow servers, error statuses).

mod common;

use std::time::Duration;

use common::feeds::FeedServer;
use yuqing::config::{Config, Origin};
use yuqing::fetch::{http_client, FetchError, Fetched, Fetcher, Validators};

fn fetcher(max_body: usize, timeout: &str) -> Fetcher {
    let text = format!(
        "[daemon]\nmax_body_bytes = {max_body}\nfetch_timeout = \"{timeout}\"\n\n[[brands]]\nname = \"b\"\n"
    );
    let config = Config::parse(&text, Origin::Embedded).unwrap();
    Fetcher::new(http_client(&config.daemon).unwrap(), &config.daemon)
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_and_named() {
    let server = FeedServer::start().await;
    server.set("/huge", "application/rss+xml", vec![b'x'; 64 * 1024]);
    let err = fetcher(4096, "5s")
        .fetch(&server.url("/huge"), &Validators::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 4096, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&server.url("/huge")), "{err}");
    // Under the cap the same body is fine.
    let ok = fetcher(128 * 1024, "5s")
        .fetch(&server.url("/huge"), &Validators::default())
        .await
        .unwrap();
    assert!(matches!(ok, Fetched::Body { ref bytes, .. } if bytes.len() == 64 * 1024));
}

#[tokio::test]
async fn validators_are_sent_back_and_304_means_nothing_new() {
    let server = FeedServer::start().await;
    server.set_response(
        "/feed",
        200,
        "application/rss+xml",
        &[
            ("ETag", "\"v1\""),
            ("Last-Modified", "Tue, 24 Nov 2026 01:00:00 GMT"),
        ],
        vec![b"<rss/>".to_vec()],
    );
    let f = fetcher(1 << 20, "5s");
    let Fetched::Body { validators, .. } = f
        .fetch(&server.url("/feed"), &Validators::default())
        .await
        .unwrap()
    else {
        panic!("expected a body");
    };
    assert_eq!(validators.etag.as_deref(), Some("\"v1\""));
    server.set_response("/feed", 304, "application/rss+xml", &[], vec![Vec::new()]);
    let second = f.fetch(&server.url("/feed"), &validators).await.unwrap();
    assert!(matches!(second, Fetched::NotModified));
    let headers = server.last_request_headers("/feed").unwrap();
    assert_eq!(
        headers.get("if-none-match").map(String::as_str),
        Some("\"v1\"")
    );
    assert_eq!(
        headers.get("if-modified-since").map(String::as_str),
        Some("Tue, 24 Nov 2026 01:00:00 GMT")
    );
}

#[tokio::test]
async fn error_status_carries_retry_after() {
    let server = FeedServer::start().await;
    server.set_response(
        "/busy",
        429,
        "text/plain",
        &[("Retry-After", "120")],
        vec![b"slow down".to_vec()],
    );
    let err = fetcher(1 << 20, "5s")
        .fetch(&server.url("/busy"), &Validators::default())
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(err.to_string().contains("HTTP 429"), "{err}");
}

#[tokio::test]
async fn a_slow_server_times_out_with_its_url() {
    let server = FeedServer::start().await;
    server.set("/slow", "application/rss+xml", "<rss/>");
    server.set_delay("/slow", Some(Duration::from_secs(5)));
    let err = fetcher(1 << 20, "300ms")
        .fetch(&server.url("/slow"), &Validators::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("/slow"), "{err}");
    assert!(err.to_string().contains("after 300ms"), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_a_named_network_error() {
    // Bind a port, then free it: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/feed");
    let err = fetcher(1 << 20, "5s")
        .fetch(&url, &Validators::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Network { .. }), "{err}");
    assert!(err.is_unreachable(), "{err:?}");
    let shown = err.to_string();
    assert_eq!(
        shown.matches(&url).count(),
        1,
        "the URL is named once: {shown}"
    );
    assert!(!shown.contains(&format!("{port}/feed)")), "{shown}");
}
