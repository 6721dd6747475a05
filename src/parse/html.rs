//! List pages (forums, complaint platforms, news lists) read with CSS selectors: one selector
//! finds the items, and within each item one selector per field. With `follow`, each new item's
//! own page is read for its body through one more selector.
//!
//! `scraper::Html` is not `Send`, so these functions are synchronous and the poller runs them on
//! the blocking pool; nothing here outlives the call.

use chrono::{DateTime, Utc};
use scraper::{ElementRef, Html, Selector};

use super::date::{self, Zone};
use super::{ParseError, ParseErrorKind};
use crate::post::{collapse_whitespace, plain_text, Post};

/// One CSS selector as written in the config, compiled.
#[derive(Debug, Clone)]
pub struct Css {
    pub text: String,
    compiled: Selector,
}

impl PartialEq for Css {
    fn eq(&self, other: &Css) -> bool {
        self.text == other.text
    }
}

impl Css {
    /// Compiles a selector; the error says what is wrong with it, for `yuqing check`.
    pub fn parse(text: &str) -> Result<Css, String> {
        Selector::parse(text)
            .map(|compiled| Css {
                text: text.to_string(),
                compiled,
            })
            .map_err(|e| format!("invalid CSS selector {text:?}: {e}"))
    }

    /// The item itself when it matches, else its first descendant that does: `link = "a"` works
    /// whether the item is the `<a>` or holds one.
    fn first<'a>(&self, item: ElementRef<'a>) -> Option<ElementRef<'a>> {
        if self.compiled.matches(&item) {
            return Some(item);
        }
        item.select(&self.compiled).next()
    }
}

/// The selectors of a `kind = "html"` source.
#[derive(Debug, Clone, PartialEq)]
pub struct HtmlRules {
    /// Each match is one post.
    pub item: Css,
    /// Default: the link's text.
    pub title: Option<Css>,
    /// Its `href`. Default: the item's first `a[href]`.
    pub link: Option<Css>,
    pub summary: Option<Css>,
    /// Its `datetime` or `title` attribute when it has one (`<time datetime>`, a tooltip with the
    /// full date), else its text.
    pub time: Option<Css>,
    pub author: Option<Css>,
    /// With `follow`: the body on each new item's own page.
    pub body: Option<Css>,
    /// Fetch each new item's page for its body.
    pub follow: bool,
}

/// Reads the posts of a list page. `page_url` resolves relative links.
pub fn parse_list(
    source: &str,
    text: &str,
    page_url: &str,
    rules: &HtmlRules,
    zone: Zone,
    fetched_at: DateTime<Utc>,
) -> Result<Vec<Post>, ParseError> {
    let fail = |kind| ParseError::new(source, kind);
    let document = Html::parse_document(text);
    let items: Vec<ElementRef> = document.select(&rules.item.compiled).collect();
    if items.is_empty() {
        // A login page in place of the list is the likelier story, and the one to tell.
        if super::is_login_wall(text.as_bytes()) {
            return Err(fail(ParseErrorKind::LoginWall(format!(
                "{page_url} answered with a password form"
            ))));
        }
        return Err(fail(ParseErrorKind::NothingMatched {
            field: "item",
            selector: rules.item.text.clone(),
        }));
    }
    let base = reqwest::Url::parse(page_url).ok();
    let default_link = Css::parse("a[href]").expect("a constant selector");
    let link_rule = rules.link.as_ref().unwrap_or(&default_link);
    // A field selector that matches in no item at all means the page changed under it; one
    // that misses in a few items is just optional there.
    let mut found = FieldsFound::default();
    let mut posts = Vec::with_capacity(items.len());
    for item in items {
        let link_el = link_rule.first(item);
        found.link |= link_el.is_some();
        let url = link_el
            .and_then(|a| a.attr("href"))
            .and_then(|href| resolve(base.as_ref(), href));
        let title = match &rules.title {
            Some(rule) => rule.first(item).map(element_text),
            None => link_el.map(element_text),
        };
        found.title |= title.is_some();
        let summary = rules.summary.as_ref().and_then(|r| r.first(item));
        found.summary |= summary.is_some();
        let time = rules.time.as_ref().and_then(|r| r.first(item));
        found.time |= time.is_some();
        let author = rules.author.as_ref().and_then(|r| r.first(item));
        found.author |= author.is_some();
        let title = title.unwrap_or_default();
        let body = summary.map(element_text).unwrap_or_default();
        if title.is_empty() && body.is_empty() && url.is_none() {
            continue;
        }
        let published = time.and_then(|t| {
            let written = t
                .attr("datetime")
                .or_else(|| t.attr("title"))
                .map(str::to_string)
                .unwrap_or_else(|| element_text(t));
            date::parse_date(&written, zone, fetched_at)
        });
        posts.push(Post {
            source: source.to_string(),
            guid: None,
            url,
            title,
            body,
            published: date::checked(source, published, fetched_at),
            fetched_at,
            author: author.map(element_text).filter(|a| !a.is_empty()),
        });
    }
    for (field, rule, hit) in [
        ("title", &rules.title, found.title),
        ("link", &rules.link, found.link),
        ("summary", &rules.summary, found.summary),
        ("time", &rules.time, found.time),
        ("author", &rules.author, found.author),
    ] {
        if let (Some(rule), false) = (rule, hit) {
            return Err(fail(ParseErrorKind::NothingMatched {
                field,
                selector: rule.text.clone(),
            }));
        }
    }
    Ok(posts)
}

/// The text of an item's own page under the `body` selector (all matches, in order).
pub fn parse_body(source: &str, text: &str, body: &Css) -> Result<String, ParseError> {
    let document = Html::parse_document(text);
    let parts: Vec<String> = document
        .select(&body.compiled)
        .map(element_text)
        .filter(|t| !t.is_empty())
        .collect();
    if parts.is_empty() {
        if super::is_login_wall(text.as_bytes()) {
            return Err(ParseError::new(
                source,
                ParseErrorKind::LoginWall("an item's page answered with a password form".into()),
            ));
        }
        return Err(ParseError::new(
            source,
            ParseErrorKind::NothingMatched {
                field: "body",
                selector: body.text.clone(),
            },
        ));
    }
    Ok(collapse_whitespace(
        &parts.join(" "),
        crate::post::MAX_TEXT_CHARS,
    ))
}

#[derive(Default)]
struct FieldsFound {
    title: bool,
    link: bool,
    summary: bool,
    time: bool,
    author: bool,
}

/// An element's readable text: scripts and styles dropped, entities decoded, whitespace folded.
fn element_text(element: ElementRef) -> String {
    plain_text(&element.inner_html())
}

/// An absolute http(s) link; relative ones are resolved against the page. `javascript:` and
/// other schemes are not links to a post.
fn resolve(base: Option<&reqwest::Url>, href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let url = match base {
        Some(base) => base.join(href).ok()?,
        None => reqwest::Url::parse(href).ok()?,
    };
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const PAGE: &str = r#"<!DOCTYPE html><html><head><title>投诉列表</title>
<script>var items = ["度小满 很好"];</script></head><body>
<ul class="list">
  <li class="post"><a class="t" href="/complaint/1001">度小满暴力催收 &amp; 骚扰家人</a>
      <p class="desc">每天打<b>十几个</b>电话<style>.x{}</style></p>
      <span class="time">2024-03-05 09:30</span><span class="user">张三</span></li>
  <li class="post"><a class="t" href="detail/1002?from=list">有钱花 利息太高</a>
      <span class="time" title="2024-03-04 20:00:00">昨天</span></li>
  <li class="post"><a class="t" href="javascript:void(0)">置顶公告</a></li>
</ul></body></html>"#;

    fn fetched() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 5, 4, 0, 0).unwrap()
    }

    fn rules() -> HtmlRules {
        HtmlRules {
            item: Css::parse("li.post").unwrap(),
            title: Some(Css::parse("a.t").unwrap()),
            link: Some(Css::parse("a.t").unwrap()),
            summary: Some(Css::parse(".desc").unwrap()),
            time: Some(Css::parse(".time").unwrap()),
            author: Some(Css::parse(".user").unwrap()),
            body: None,
            follow: false,
        }
    }

    #[test]
    fn items_and_fields_are_read_and_links_resolved() {
        let url = "https://ts.example.com/list/index.html?page=1";
        let posts = parse_list("ts", PAGE, url, &rules(), Zone::default(), fetched()).unwrap();
        assert_eq!(posts.len(), 3);
        assert_eq!(posts[0].title, "度小满暴力催收 & 骚扰家人");
        assert_eq!(
            posts[0].url.as_deref(),
            Some("https://ts.example.com/complaint/1001")
        );
        assert_eq!(posts[0].body, "每天打十几个电话");
        assert_eq!(posts[0].author.as_deref(), Some("张三"));
        assert_eq!(
            posts[0].published.unwrap().to_rfc3339(),
            "2024-03-05T01:30:00+00:00"
        );
        assert_eq!(
            posts[1].url.as_deref(),
            Some("https://ts.example.com/list/detail/1002?from=list")
        );
        assert_eq!(
            posts[1].published.unwrap().to_rfc3339(),
            "2024-03-04T12:00:00+00:00",
            "the title attribute's full date wins over 昨天"
        );
        assert_eq!(posts[2].url, None, "javascript: is not a link");
    }

    #[test]
    fn defaults_take_the_first_link_and_its_text() {
        let rules = HtmlRules {
            item: Css::parse("li.post").unwrap(),
            title: None,
            link: None,
            summary: None,
            time: None,
            author: None,
            body: None,
            follow: false,
        };
        let posts = parse_list(
            "ts",
            PAGE,
            "http://h/x/",
            &rules,
            Zone::default(),
            fetched(),
        )
        .unwrap();
        assert_eq!(posts[1].title, "有钱花 利息太高");
        assert_eq!(
            posts[1].url.as_deref(),
            Some("http://h/x/detail/1002?from=list")
        );
    }

    #[test]
    fn a_selector_that_matches_nothing_is_named() {
        let mut r = rules();
        r.item = Css::parse("div.thread").unwrap();
        let err =
            parse_list("forum", PAGE, "http://h/", &r, Zone::default(), fetched()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("forum") && text.contains("div.thread") && text.contains("item"),
            "{text}"
        );
        let mut r = rules();
        r.time = Some(Css::parse(".date").unwrap());
        let err =
            parse_list("forum", PAGE, "http://h/", &r, Zone::default(), fetched()).unwrap_err();
        assert!(err.to_string().contains("time selector \".date\""), "{err}");
    }

    #[test]
    fn malformed_html_still_yields_what_it_holds() {
        let broken = "<ul><li class=post><a class=t href=/a>度小满<li class=post><a class=t href=/b>有钱花</ul";
        let mut r = rules();
        (r.summary, r.time, r.author) = (None, None, None);
        let posts = parse_list("f", broken, "http://h/", &r, Zone::default(), fetched()).unwrap();
        let titles: Vec<&str> = posts.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["度小满", "有钱花"]);
        let err = parse_list(
            "f",
            "\u{0}<<>>",
            "http://h/",
            &r,
            Zone::default(),
            fetched(),
        )
        .unwrap_err();
        assert!(matches!(
            err.kind,
            ParseErrorKind::NothingMatched { field: "item", .. }
        ));
    }

    #[test]
    fn a_login_page_is_a_login_wall_not_a_selector_problem() {
        let login = r#"<html><body><form method="post"><input name="user"><input type="password" name="pw"></form></body></html>"#;
        let err = parse_list(
            "weibo",
            login,
            "http://h/",
            &rules(),
            Zone::default(),
            fetched(),
        )
        .unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::LoginWall(_)), "{err}");
        assert!(err.to_string().contains("cookie expired or login required"));
    }

    #[test]
    fn a_body_is_read_from_the_items_page() {
        let page = r#"<html><body><div class="nav">首页</div><div class="content"><p>借了一万，</p>
            <script>track()</script><p>催收打给我同事&hellip;</p></div></body></html>"#;
        let body = Css::parse("div.content").unwrap();
        assert_eq!(
            parse_body("s", page, &body).unwrap(),
            "借了一万， 催收打给我同事…"
        );
        let err = parse_body("s", "<html></html>", &body).unwrap_err();
        assert!(err.to_string().contains("body selector"), "{err}");
    }

    #[test]
    fn bad_selectors_are_refused_with_their_text() {
        let err = Css::parse("li[class=").unwrap_err();
        assert!(err.contains("li[class="), "{err}");
    }
}
