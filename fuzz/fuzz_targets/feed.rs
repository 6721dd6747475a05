//! Any bytes as a feed: charset decoding, then feed-rs and our item mapping must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (utf8, _, _) = yuqing::fetch::to_utf8(data, Some("application/rss+xml"));
    let now = chrono::DateTime::from_timestamp(1_770_000_000, 0).unwrap();
    let _ = yuqing::parse::feed::parse_feed("fuzz", &utf8, now);
});
