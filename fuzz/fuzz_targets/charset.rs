//! Any bytes with any Content-Type: the charset choice and decoding must not panic, and always
//! yield UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&n| usize::from(n) % 48).min(data.len());
    let (header, body) = data.split_at(split);
    let content_type = String::from_utf8_lossy(header);
    let decoded = yuqing::fetch::decode(body, Some(&content_type));
    assert!(std::str::from_utf8(&decoded.utf8).is_ok());
    let decoded = yuqing::fetch::decode(body, None);
    assert!(std::str::from_utf8(&decoded.utf8).is_ok());
});
