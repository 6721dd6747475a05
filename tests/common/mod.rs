#![allow(dead_code)]
//! Shared loopback test harness: fixture feed server, fake Telegram Bot API
//! and small async helpers. Everything binds to 127.0.0.1 only.

pub mod feeds;
pub mod telegram;

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
