//! Any text as a JSON API response read through a typical mapping.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use yuqing::parse::date::Zone;
use yuqing::parse::json::{parse_response, JsonPath, JsonRules};

fn rules() -> &'static JsonRules {
    static RULES: OnceLock<JsonRules> = OnceLock::new();
    RULES.get_or_init(|| JsonRules {
        items: JsonPath::parse("/data/list").unwrap(),
        id: Some(JsonPath::parse("id").unwrap()),
        title: Some(JsonPath::parse("title").unwrap()),
        link: Some(JsonPath::parse("/url").unwrap()),
        summary: Some(JsonPath::parse("content.text").unwrap()),
        time: Some(JsonPath::parse("created_at").unwrap()),
        author: Some(JsonPath::parse("user.name").unwrap()),
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let now = chrono::DateTime::from_timestamp(1_770_000_000, 0).unwrap();
    let _ = parse_response(
        "fuzz",
        &text,
        "https://api.example/search?q=%E5%BA%A6",
        rules(),
        Zone::default(),
        now,
    );
});
