//! The `Post`: one item from a source, normalized, before any judgment.
//!
//! Everything downstream (dedupe, analysis, storage) sees only this type, whatever the source
//! kind, so a new source kind only has to produce `Post`s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Posts longer than this are cut before analysis: a page that pastes a novel into an RSS item
/// must not stall segmentation, and the start of a post is what readers (and we) judge.
pub const MAX_TEXT_CHARS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// Name of the configured source that produced it.
    pub source: String,
    /// The feed's own identifier (GUID / Atom id), if it gave one.
    pub guid: Option<String>,
    pub url: Option<String>,
    pub title: String,
    /// Plain text: HTML removed, whitespace collapsed, at most [`MAX_TEXT_CHARS`].
    pub body: String,
    pub published: Option<DateTime<Utc>>,
    pub fetched_at: DateTime<Utc>,
    /// Who wrote it, when the source says (a page's author selector, a JSON author field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

impl Post {
    /// Title and body as one text, which is what gets analyzed.
    pub fn text(&self) -> String {
        match (self.title.is_empty(), self.body.is_empty()) {
            (false, false) if self.body.starts_with(&self.title) => self.body.clone(),
            (false, false) => format!("{}。{}", self.title, self.body),
            (false, true) => self.title.clone(),
            _ => self.body.clone(),
        }
    }

    /// The time the post counts at in detection windows: its publication time, but never later
    /// than when we saw it (clocks on the web lie) and never missing.
    pub fn event_time(&self) -> DateTime<Utc> {
        match self.published {
            Some(p) if p <= self.fetched_at => p,
            _ => self.fetched_at,
        }
    }
}

/// How much a post that was reposted `reposts` times counts, in severity and in spike
/// detection: `1 + ln(1 + reposts)`. Reposts raise it with diminishing weight (1 → 1, 1 repost
/// → 1.69, 10 → 3.40, 100 → 5.62), so a viral post counts more than one complaint but never
/// as much as a hundred different ones.
pub fn amplification_factor(reposts: u32) -> f64 {
    1.0 + f64::from(reposts).ln_1p()
}

/// Turns an HTML fragment (feed descriptions are often HTML, list pages always are) into plain
/// text: tags dropped, the contents of scripts, styles and comments dropped, entities decoded,
/// whitespace collapsed, length capped.
pub fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut chars = html.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => {
                if chars.peek() == Some(&'!') {
                    skip_comment(&mut chars);
                    continue;
                }
                // Skip to the end of the tag; a block-level tag separates words.
                let mut tag = String::new();
                for t in chars.by_ref() {
                    if t == '>' {
                        break;
                    }
                    if tag.len() < 8 {
                        tag.push(t.to_ascii_lowercase());
                    }
                }
                // Code and styling are not text, and can hold words that read as a complaint.
                if let Some(hidden) = ["script", "style", "noscript", "template"]
                    .into_iter()
                    .find(|h| is_tag(&tag, h))
                {
                    skip_until_closing(&mut chars, hidden);
                    out.push(' ');
                    continue;
                }
                let name = tag.trim_start_matches('/');
                if ["p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4"]
                    .iter()
                    .any(|b| {
                        name.starts_with(b)
                            && name[b.len()..]
                                .chars()
                                .next()
                                .is_none_or(|c| !c.is_alphanumeric())
                    })
                {
                    out.push(' ');
                }
            }
            '&' => {
                let mut entity = String::new();
                while let Some(&n) = chars.peek() {
                    if n == ';' || entity.len() > 10 || n.is_whitespace() || n == '&' {
                        break;
                    }
                    entity.push(n);
                    chars.next();
                }
                if chars.peek() == Some(&';') {
                    chars.next();
                    match decode_entity(&entity) {
                        Some(d) => out.push(d),
                        None => {
                            out.push('&');
                            out.push_str(&entity);
                            out.push(';');
                        }
                    }
                } else {
                    out.push('&');
                    out.push_str(&entity);
                }
            }
            _ => out.push(c),
        }
    }
    collapse_whitespace(&out, MAX_TEXT_CHARS)
}

/// Whether an opening tag's text (lowercased, cut short) names `name`: `script` and
/// `script src=…` do, `scripts` and `/script` do not.
fn is_tag(tag: &str, name: &str) -> bool {
    tag.strip_prefix(name)
        .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_alphanumeric()))
}

/// Skips `<!-- … -->` (or a `<!DOCTYPE …>` / `<![CDATA[` opener up to its `>`), the `<` taken.
fn skip_comment(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    chars.next(); // '!'
    let comment = chars.clone().take(2).eq("--".chars());
    let mut tail = String::new();
    for c in chars.by_ref() {
        if !comment && c == '>' {
            return;
        }
        tail.push(c);
        if comment && tail.len() >= 4 && tail.ends_with("-->") {
            return;
        }
    }
}

/// Skips everything up to and including `</name…>`, case-insensitively; an unclosed element
/// runs to the end, as browsers treat it.
fn skip_until_closing(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, name: &str) {
    let closing: Vec<char> = format!("</{name}").chars().collect();
    let mut matched = 0;
    while let Some(c) = chars.next() {
        if c.to_ascii_lowercase() == closing[matched] {
            matched += 1;
            if matched == closing.len() {
                for t in chars.by_ref() {
                    if t == '>' {
                        return;
                    }
                }
                return;
            }
        } else {
            matched = usize::from(c == '<');
        }
    }
}

fn decode_entity(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" | "ensp" | "emsp" | "thinsp" => Some(' '),
        "ldquo" => Some('“'),
        "rdquo" => Some('”'),
        "lsquo" => Some('‘'),
        "rsquo" => Some('’'),
        "laquo" => Some('«'),
        "raquo" => Some('»'),
        "hellip" => Some('…'),
        "mdash" => Some('—'),
        "ndash" => Some('–'),
        "middot" => Some('·'),
        "bull" => Some('•'),
        "times" => Some('×'),
        "divide" => Some('÷'),
        "yen" => Some('¥'),
        "copy" => Some('©'),
        "reg" => Some('®'),
        "trade" => Some('™'),
        "deg" => Some('°'),
        "plusmn" => Some('±'),
        _ => {
            let num = entity.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Collapses runs of whitespace to one space, trims, and keeps at most `max_chars` characters.
pub fn collapse_whitespace(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 3));
    let mut count = 0;
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= max_chars {
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_plain_text() {
        assert_eq!(
            plain_text("<p>度小满 &amp; 有钱花</p><p>暴力催收&#65281;</p>"),
            "度小满 & 有钱花 暴力催收！"
        );
        assert_eq!(plain_text("a<b>b</b>c &bogus; x & y"), "abc &bogus; x & y");
    }

    #[test]
    fn scripts_styles_and_comments_are_not_text() {
        let page =
            "<div>度小满<script type=\"text/javascript\">var s = '暴力催收 </div>';</script>\
                    <STYLE>.x{color:red}</STYLE>客服<!-- 垃圾 --> 回电<noscript>请开启</noscript>\
                    <scripts>留下</scripts>&middot;&yen;5&nbsp;&nbsp;元</div>";
        assert_eq!(plain_text(page), "度小满 客服 回电 留下·¥5 元");
        assert_eq!(plain_text("a<script>never closed"), "a");
        assert_eq!(plain_text("<!DOCTYPE html><p>x</p><!-- open"), "x");
    }

    #[test]
    fn text_is_capped() {
        let long = "坑".repeat(MAX_TEXT_CHARS + 10);
        assert_eq!(plain_text(&long).chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn event_time_never_in_the_future() {
        let now = Utc::now();
        let post = Post {
            source: "s".into(),
            guid: None,
            url: None,
            title: "t".into(),
            body: String::new(),
            published: Some(now + chrono::Duration::hours(3)),
            fetched_at: now,
            author: None,
        };
        assert_eq!(post.event_time(), now);
    }
}
