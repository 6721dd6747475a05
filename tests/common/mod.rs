#![allow(dead_code)]
//! Shared loopback test harness: fixture feed server, fake Telegram Bot API,
//! a headless browser and small async helpers. Everything binds to 127.0.0.1 only.

pub mod browser;
pub mod daemon;
pub mod feeds;
pub mod telegram;
pub mod webhooks;

use std::time::{Duration, Instant};

/// A fresh temporary directory (removed when the returned guard is dropped).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("yuqing-test-")
        .tempdir()
        .expect("create temporary directory")
}

/// Polls `f` every 20 ms until it returns `true`; panics mentioning `what`
/// if that does not happen within `timeout`.
pub async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a char boundary, so
/// a test can cut a document "in half" whatever the lengths of the characters around the cut
/// (a feed's `pubDate` is one byte shorter on days 1–9, which moves every later byte).
pub fn truncated(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
