//! Any text as a forum list page read with typical selectors, and as a followed item page.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use yuqing::parse::date::Zone;
use yuqing::parse::html::{parse_body, parse_list, Css, HtmlRules};

fn rules() -> &'static HtmlRules {
    static RULES: OnceLock<HtmlRules> = OnceLock::new();
    RULES.get_or_init(|| HtmlRules {
        item: Css::parse("li.post, div.item").unwrap(),
        title: Some(Css::parse("a.title, h3").unwrap()),
        link: Some(Css::parse("a").unwrap()),
        summary: Some(Css::parse(".summary").unwrap()),
        time: Some(Css::parse("time, .date").unwrap()),
        author: Some(Css::parse(".author").unwrap()),
        body: Some(Css::parse("article").unwrap()),
        follow: true,
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let now = chrono::DateTime::from_timestamp(1_770_000_000, 0).unwrap();
    let rules = rules();
    let _ = parse_list(
        "fuzz",
        &text,
        "https://bbs.example/list?page=1",
        rules,
        Zone::default(),
        now,
    );
    let _ = parse_body("fuzz", &text, rules.body.as_ref().unwrap());
});
