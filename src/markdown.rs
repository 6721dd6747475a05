//! Markdown that the text it quotes cannot take over: the digest and the incident report put
//! post titles, sources, notes and names written by strangers into Markdown, and a title like
//! `**[click](javascript:…)**` must read as those characters, not as a link or bold text.
//!
//! Quoted text is put on one line (a newline inside a title would end the list item it sits in)
//! and every character that CommonMark or GitHub-flavoured Markdown gives a meaning to inside a
//! line is escaped with a backslash. Characters that only mean something at the start of a line
//! (`#`, `-`, `1.`) are left alone: quoted text never starts a line here.

use std::fmt::Write;

/// Characters escaped in quoted text. `(`/`)` and `!` only matter next to `[`/`]`, which are
/// escaped, so they stay readable; `&` is escaped so `&lt;` stays five characters.
const SPECIAL: &[char] = &['\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '&', '#'];

/// `text` as Markdown text: on one line, whitespace runs collapsed, specials escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if SPECIAL.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A link to `url` reading `text`, when `url` is `http(s)`; otherwise just the text (a
/// `javascript:` or `data:` URL never becomes a link). Characters that would end or break the
/// link destination (spaces, parentheses, angle brackets, controls) are percent-encoded.
pub fn link(text: &str, url: Option<&str>) -> String {
    let text = escape(text);
    let text = if text.is_empty() {
        "(untitled)".to_string()
    } else {
        text
    };
    match url.map(str::trim).filter(|u| is_web_url(u)) {
        Some(url) => format!("[{text}]({})", encode_destination(url)),
        None => text,
    }
}

fn is_web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn encode_destination(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            ' ' | '(' | ')' | '<' | '>' | '\\' | '`' | '"' => {
                let _ = write!(out, "%{:02X}", c as u32);
            }
            c if c.is_control() || c.is_whitespace() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_is_inert_and_on_one_line() {
        assert_eq!(escape("**bold** [x](y)"), r"\*\*bold\*\* \[x\](y)");
        assert_eq!(escape("a\n\n# b\t<script>"), r"a \# b \<script\>");
        assert_eq!(escape("  度小满 | 催收  "), r"度小满 \| 催收");
        assert_eq!(escape("&lt;"), r"\&lt;");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn only_web_urls_become_links_and_cannot_break_out() {
        assert_eq!(
            link("t", Some("https://x.cn/a b(1)")),
            "[t](https://x.cn/a%20b%281%29)"
        );
        assert_eq!(link("t", Some("javascript:alert(1)")), "t");
        assert_eq!(link("t", Some("data:text/html,x")), "t");
        assert_eq!(link("t", None), "t");
        assert_eq!(link("", Some("HTTP://x")), "[(untitled)](HTTP://x)");
        assert_eq!(
            link("a]b", Some("http://x/\n)")),
            r"[a\]b](http://x/%0A%29)"
        );
    }
}
