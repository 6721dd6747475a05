//! Telegram HTML for notices: every value escaped, only http(s) links, and the length limits
//! met by building the message again from smaller parts, never by cutting the HTML.
//!
//! A message is rendered at decreasing levels of detail (shorter excerpts, then fewer posts,
//! then shorter titles) until it fits; each level is whole, valid HTML. Lengths are counted in
//! UTF-16 units of the HTML source, which is never less than what Telegram counts (the text
//! after its tags are parsed), so a message that fits here fits there.

use std::fmt::Write;

use crate::config::{human_duration, TierConfig};
use crate::incident::Notice;
use crate::notify::HowToAct;
use crate::store::{Incident, IncidentState, PostSummary};

/// Telegram's limit for a message's text.
pub const MESSAGE_LIMIT: usize = 4096;
/// Telegram's limit for a photo's caption.
pub const CAPTION_LIMIT: usize = 1024;

/// Escapes text for Telegram HTML: `&`, `<`, `>` and `"` (for attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The length Telegram's limits are checked against (see the module docs).
pub fn length(html: &str) -> usize {
    html.encode_utf16().count()
}

/// The first `max` characters of `text`, with "…" when something was left off.
fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A link only for http(s) URLs; anything else (javascript:, data:) stays text.
fn link(url: Option<&str>, text: &str) -> String {
    match url.map(str::trim) {
        Some(u) if is_web_url(u) => format!("<a href=\"{}\">{}</a>", escape(u), escape(text)),
        _ => escape(text),
    }
}

fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.contains(char::is_whitespace)
}

/// `text`, escaped, with every occurrence of `terms` in bold (longest term first where they
/// overlap).
pub fn bold_terms(text: &str, terms: &[String]) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut bold = vec![false; chars.len()];
    let mut terms: Vec<Vec<char>> = terms
        .iter()
        .map(|t| t.trim().chars().collect::<Vec<char>>())
        .filter(|t| !t.is_empty())
        .collect();
    terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for term in &terms {
        let mut i = 0;
        while i + term.len() <= chars.len() {
            if chars[i..i + term.len()] == term[..] && !bold[i..i + term.len()].iter().any(|b| *b) {
                bold[i..i + term.len()].iter_mut().for_each(|b| *b = true);
                i += term.len();
            } else {
                i += 1;
            }
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && bold[i] == bold[start] {
            i += 1;
        }
        let piece: String = chars[start..i].iter().collect();
        if bold[start] {
            let _ = write!(out, "<b>{}</b>", escape(&piece));
        } else {
            out.push_str(&escape(&piece));
        }
    }
    out
}

/// How much of the posts a rendering shows.
#[derive(Debug, Clone, Copy)]
struct Detail {
    posts: usize,
    title_chars: usize,
    excerpt_chars: usize,
    /// Topic terms and categories, the tier line and other optional lines.
    extras: bool,
}

const DETAILS: &[Detail] = &[
    Detail {
        posts: 3,
        title_chars: 120,
        excerpt_chars: 300,
        extras: true,
    },
    Detail {
        posts: 3,
        title_chars: 100,
        excerpt_chars: 150,
        extras: true,
    },
    Detail {
        posts: 3,
        title_chars: 80,
        excerpt_chars: 60,
        extras: true,
    },
    Detail {
        posts: 3,
        title_chars: 60,
        excerpt_chars: 0,
        extras: true,
    },
    Detail {
        posts: 2,
        title_chars: 40,
        excerpt_chars: 0,
        extras: true,
    },
    Detail {
        posts: 1,
        title_chars: 30,
        excerpt_chars: 0,
        extras: true,
    },
    Detail {
        posts: 0,
        title_chars: 0,
        excerpt_chars: 0,
        extras: true,
    },
    Detail {
        posts: 0,
        title_chars: 0,
        excerpt_chars: 0,
        extras: false,
    },
];

/// The most detailed rendering that fits `limit`. The last resort shortens every free text
/// (the critical post quoted in "why", tier names, notes) to a fixed size that always fits.
fn fit(limit: usize, render: impl Fn(Detail, usize) -> String) -> String {
    for detail in DETAILS {
        let html = render(*detail, 1000);
        if length(&html) <= limit {
            return html;
        }
    }
    let mut free = 200;
    loop {
        let html = render(DETAILS[DETAILS.len() - 1], free);
        if length(&html) <= limit || free == 0 {
            return html;
        }
        free /= 2;
    }
}

/// The message for an incident notice, within `limit`.
pub fn notice(notice: &Notice, how: &HowToAct, possible_repeat: bool, limit: usize) -> String {
    fit(limit, |detail, free| {
        let mut out = String::new();
        if possible_repeat {
            out.push_str("🔁 <i>possible repeat: this may have been sent before</i>\n");
        }
        render_notice(&mut out, notice, how, detail, free);
        out.trim_end().to_string()
    })
}

/// The original alert as it stands now: its state, who moved it and through what, then the
/// alert's content. Used to edit the alert after a change.
pub fn card(incident: &Incident, by: &str, via: &str, how: &HowToAct, limit: usize) -> String {
    fit(limit, |detail, free| {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} <b>yuqing incident #{} — {}</b>",
            state_icon(incident.state),
            incident.id,
            escape(&incident.brand)
        );
        let _ = writeln!(
            out,
            "<b>{}</b> by {} (via {})",
            state_word(incident.state).to_uppercase(),
            escape(&shorten(by, free.max(20))),
            escape(&shorten(via, 40))
        );
        if incident.state == IncidentState::Resolved {
            write_note(&mut out, incident, free);
        }
        write_why(&mut out, incident, free);
        if detail.extras {
            write_topics(&mut out, incident, free);
        }
        write_posts(&mut out, &incident.top_posts, detail);
        write_console(&mut out, how, incident.id);
        out.trim_end().to_string()
    })
}

/// A short line about a change, posted after the alert was edited.
pub fn changed(
    incident: &Incident,
    by: &str,
    via: &str,
    how: &HowToAct,
    possible_repeat: bool,
) -> String {
    fit(MESSAGE_LIMIT, |_, free| {
        let mut out = String::new();
        if possible_repeat {
            out.push_str("🔁 <i>possible repeat</i>\n");
        }
        let _ = writeln!(
            out,
            "{} yuqing incident #{} — {} <b>{}</b> by {} (via {}).",
            state_icon(incident.state),
            incident.id,
            escape(&incident.brand),
            state_word(incident.state),
            escape(&shorten(by, free.max(20))),
            escape(&shorten(via, 40))
        );
        if incident.state == IncidentState::Resolved {
            write_note(&mut out, incident, free);
        }
        write_console(&mut out, how, incident.id);
        out.trim_end().to_string()
    })
}

/// A text message (digest, report, reply): the title in bold, the body as plain text.
pub fn text(title: &str, body: &str, possible_repeat: bool, limit: usize) -> String {
    let head = format!(
        "{}<b>{}</b>\n\n",
        if possible_repeat {
            "🔁 <i>possible repeat</i>\n"
        } else {
            ""
        },
        escape(&shorten(title, 200))
    );
    let mut chars = body.chars().count();
    loop {
        let html = format!("{head}{}", escape(&shorten(body, chars)));
        if length(&html) <= limit || chars == 0 {
            return html.trim_end().to_string();
        }
        // Escaping can only lengthen, so the overshoot in the source is at least the overshoot
        // in characters to drop.
        chars = chars.saturating_sub((length(&html) - limit).max(chars / 10).max(1));
    }
}

/// A Markdown text message (an incident report, a digest) as Telegram HTML. Telegram shows no
/// Markdown of its own in HTML mode, so the report's `#` headings, `**` and `\` escapes read
/// as noise there: headings and strong text become bold, emphasis italic, code spans `<code>`,
/// http(s) links links (any other link is its text), list items "•" lines and table rows
/// their cells joined by " · " (Telegram has no tables). Raw HTML in the Markdown is shown as
/// text. Rendered block by block, so a message cut to `limit` drops whole blocks, ends with
/// "…" and never ends inside a tag.
pub fn markdown(title: &str, body: &str, possible_repeat: bool, limit: usize) -> String {
    let head = text(title, "", possible_repeat, limit);
    let blocks = markdown_blocks(body);
    let mut kept = blocks.len();
    loop {
        let mut html = head.clone();
        if kept > 0 {
            html.push_str("\n\n");
            html.push_str(blocks[..kept].join("\n").trim_end());
        }
        if kept < blocks.len() {
            html.push_str("\n…");
        }
        if length(&html) <= limit || kept == 0 {
            return html;
        }
        kept -= 1;
    }
}

/// The Markdown's blocks as lines of Telegram HTML, each with its tags closed. An empty
/// string stands for a blank line: before a heading, after a paragraph, a list or a table.
fn markdown_blocks(body: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

    let mut blocks: Vec<String> = Vec::new();
    let mut line = String::new();
    // Open links: whether each became an <a> (only http(s) ones do).
    let mut links: Vec<bool> = Vec::new();
    // Open lists: the next number of each ordered one.
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut cells: Option<Vec<String>> = None;
    let mut header_row = false;
    let flush = |blocks: &mut Vec<String>, line: &mut String| {
        let done = std::mem::take(line);
        if !done.trim().is_empty() {
            blocks.push(done.trim_end().to_string());
        }
    };
    for event in Parser::new_ext(body, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                flush(&mut blocks, &mut line);
                gap(&mut blocks);
                line.push_str("<b>");
            }
            Event::End(TagEnd::Heading(_)) => {
                line.push_str("</b>");
                flush(&mut blocks, &mut line);
            }
            Event::Start(Tag::Paragraph) => {}
            Event::End(TagEnd::Paragraph) if lists.is_empty() => {
                flush(&mut blocks, &mut line);
                gap(&mut blocks);
            }
            Event::End(TagEnd::Paragraph) => line.push(' '),
            Event::Start(Tag::List(first)) => {
                flush(&mut blocks, &mut line);
                lists.push(first);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    gap(&mut blocks);
                }
            }
            Event::Start(Tag::Item) => {
                flush(&mut blocks, &mut line);
                line.push_str(&"  ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        let _ = write!(line, "{n}. ");
                        *n += 1;
                    }
                    _ => line.push_str("• "),
                }
            }
            Event::End(TagEnd::Item) => flush(&mut blocks, &mut line),
            Event::Start(Tag::Strong) => line.push_str("<b>"),
            Event::End(TagEnd::Strong) => line.push_str("</b>"),
            Event::Start(Tag::Emphasis) => line.push_str("<i>"),
            Event::End(TagEnd::Emphasis) => line.push_str("</i>"),
            Event::Start(Tag::Link { dest_url, .. }) => {
                let web = is_web_url(dest_url.trim());
                if web {
                    let _ = write!(line, "<a href=\"{}\">", escape(dest_url.trim()));
                }
                links.push(web);
            }
            // The guard pops every link's entry; only one that opened an <a> closes it.
            Event::End(TagEnd::Link) if links.pop() == Some(true) => line.push_str("</a>"),
            Event::Start(Tag::Table(_)) => flush(&mut blocks, &mut line),
            Event::End(TagEnd::Table) => gap(&mut blocks),
            Event::Start(Tag::TableHead) => {
                header_row = true;
                cells = Some(Vec::new());
            }
            Event::Start(Tag::TableRow) => cells = Some(Vec::new()),
            Event::End(TagEnd::TableCell) => {
                let cell = std::mem::take(&mut line).trim().to_string();
                cells.get_or_insert_with(Vec::new).push(cell);
            }
            Event::End(TagEnd::TableHead) | Event::End(TagEnd::TableRow) => {
                let row = cells.take().unwrap_or_default().join(" · ");
                blocks.push(if header_row {
                    format!("<b>{row}</b>")
                } else {
                    row
                });
                header_row = false;
            }
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => {
                line.push_str(&escape(&text))
            }
            Event::Code(code) => {
                let _ = write!(line, "<code>{}</code>", escape(&code));
            }
            Event::SoftBreak => line.push(' '),
            Event::HardBreak => line.push('\n'),
            Event::Rule => {
                flush(&mut blocks, &mut line);
                blocks.push("——".to_string());
            }
            Event::End(TagEnd::CodeBlock) | Event::End(TagEnd::BlockQuote(_)) => {
                flush(&mut blocks, &mut line)
            }
            _ => {}
        }
    }
    flush(&mut blocks, &mut line);
    while blocks.last().is_some_and(String::is_empty) {
        blocks.pop();
    }
    blocks
}

/// A blank line between blocks, once.
fn gap(blocks: &mut Vec<String>) {
    if blocks.last().is_some_and(|b| !b.is_empty()) {
        blocks.push(String::new());
    }
}

fn state_word(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Triggered => "reopened",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Resolved => "resolved",
    }
}

fn state_icon(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Triggered => "🚨",
        IncidentState::Acknowledged => "🙋",
        IncidentState::Resolved => "✅",
    }
}

fn render_notice(out: &mut String, notice: &Notice, how: &HowToAct, detail: Detail, free: usize) {
    match notice {
        Notice::Opened { incident, tier } => {
            let _ = writeln!(
                out,
                "🚨 <b>yuqing incident #{} — {}</b>",
                incident.id,
                escape(&incident.brand)
            );
            write_why(out, incident, free);
            let _ = writeln!(out, "Severity: {}", severity(incident));
            if incident.history.len() > 1 {
                let _ = writeln!(out, "<i>(reopened: it was resolved not long ago)</i>");
            }
            if detail.extras {
                write_topics(out, incident, free);
            }
            write_posts(out, &incident.top_posts, detail);
            if let Some(t) = tier {
                write_page(out, "Paging tier 1", t, free);
            }
            write_how(out, how, incident.id, true);
        }
        Notice::Escalated {
            incident,
            tier,
            tier_number,
            repeat,
        } => {
            let waited = chrono::Utc::now() - incident.opened_at;
            let _ = writeln!(
                out,
                "⏰ <b>yuqing incident #{} — {}</b> is still unacknowledged after {}m{}",
                incident.id,
                escape(&incident.brand),
                waited.num_minutes(),
                if *repeat { " (reminder)" } else { "" }
            );
            write_page(
                out,
                &format!("Escalating to tier {tier_number}"),
                tier,
                free,
            );
            let _ = writeln!(out, "{} negative posts so far.", incident.hit_count);
            write_posts(out, &incident.top_posts, detail);
            write_how(out, how, incident.id, false);
        }
        Notice::AutoResolved { incident } => {
            let _ = writeln!(
                out,
                "✅ <b>yuqing incident #{} — {}</b> resolved by itself: the complaints died down.",
                incident.id,
                escape(&incident.brand)
            );
            if let Some(t) = incident.history.last() {
                let _ = writeln!(out, "{}", escape(&shorten(&t.note, free)));
            }
            let _ = writeln!(
                out,
                "{} negative posts in all. It reopens if they come back soon.",
                incident.hit_count
            );
            write_console(out, how, incident.id);
        }
        Notice::Reminder { incident } => {
            let owner = incident
                .acked_by
                .as_ref()
                .map_or("nobody", |a| a.name.as_str());
            let _ = writeln!(
                out,
                "🔔 <b>yuqing incident #{} — {}</b> is still open, owned by {}.",
                incident.id,
                escape(&incident.brand),
                escape(&shorten(owner, free.max(20)))
            );
            let _ = writeln!(out, "{} negative posts so far.", incident.hit_count);
            write_console(out, how, incident.id);
            let _ = writeln!(out, "Resolve it when it is handled.");
        }
        Notice::AckExpired {
            incident,
            owner,
            tier,
        } => {
            let _ = writeln!(
                out,
                "⏰ <b>yuqing incident #{} — {}</b>: acknowledged by {} but still unresolved; \
                 it is unowned again.",
                incident.id,
                escape(&incident.brand),
                escape(&shorten(owner, free.max(20)))
            );
            if let Some(t) = tier {
                write_page(out, "Paging tier 1", t, free);
            }
            write_posts(out, &incident.top_posts, detail);
            write_how(out, how, incident.id, true);
        }
        Notice::Changed {
            incident, by, via, ..
        } => out.push_str(&changed(incident, by, via, how, false)),
    }
}

/// "12 negative posts in the last 1h (expected 2.0)" or the critical post that opened it.
fn write_why(out: &mut String, incident: &Incident, free: usize) {
    if incident.opened_because.is_empty() {
        let _ = writeln!(
            out,
            "Why: {} negative posts in the last {} (baseline {:.1} per window)",
            incident.window_count,
            human_duration(std::time::Duration::from_secs(incident.window_secs)),
            incident.baseline
        );
    } else {
        let _ = writeln!(
            out,
            "Why: {}",
            escape(&shorten(&incident.opened_because, free))
        );
    }
}

/// Critical when one post opened it (the lifecycle writes "critical post: …" into
/// `opened_because`); otherwise how far the window is above what was expected.
fn severity(incident: &Incident) -> String {
    if incident.opened_because.starts_with("critical post") {
        return "🔴 <b>critical</b> (one post was severe enough)".to_string();
    }
    let ratio = incident.window_count as f64 / incident.baseline.max(0.5);
    let word = if ratio >= 5.0 {
        "🔴 <b>high</b>"
    } else if ratio >= 2.0 {
        "🟠 <b>medium</b>"
    } else {
        "🟡 <b>low</b>"
    };
    format!("{word} ({ratio:.1}× the expected count)")
}

fn write_topics(out: &mut String, incident: &Incident, free: usize) {
    if incident.topic_terms.is_empty() && incident.categories.is_empty() {
        return;
    }
    let mut categories: Vec<(&String, &u64)> = incident.categories.iter().collect();
    categories.sort_by(|a, b| b.1.cmp(a.1));
    let categories: Vec<String> = categories.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let text = format!(
        "{}{}",
        incident.topic_terms.join(", "),
        if categories.is_empty() {
            String::new()
        } else {
            format!(" · {}", categories.join(", "))
        }
    );
    let _ = writeln!(out, "Topic: {}", escape(&shorten(&text, free.min(300))));
}

fn write_posts(out: &mut String, posts: &[PostSummary], detail: Detail) {
    if posts.is_empty() || detail.posts == 0 {
        return;
    }
    let _ = writeln!(out, "Top posts:");
    for (i, p) in posts.iter().take(detail.posts).enumerate() {
        let title = shorten(&p.title, detail.title_chars.max(1));
        let _ = writeln!(
            out,
            "{}. [{}] {} ({:.1})",
            i + 1,
            escape(&shorten(&p.source, 40)),
            link(p.url.as_deref(), &title),
            p.score
        );
        if detail.excerpt_chars > 0 && !p.excerpt.trim().is_empty() {
            let excerpt = shorten(&p.excerpt, detail.excerpt_chars);
            let _ = writeln!(out, "   <i>{}</i>", bold_terms(&excerpt, &p.terms));
        } else if !p.terms.is_empty() {
            let terms: Vec<String> = p
                .terms
                .iter()
                .map(|t| format!("<b>{}</b>", escape(&shorten(t, 20))))
                .collect();
            let _ = writeln!(out, "   {}", terms.join(", "));
        }
    }
}

fn write_note(out: &mut String, incident: &Incident, free: usize) {
    if let Some(note) = incident.history.last().map(|t| t.note.trim()) {
        if !note.is_empty() {
            let _ = writeln!(out, "Note: {}", escape(&shorten(note, free)));
        }
    }
}

fn write_page(out: &mut String, what: &str, tier: &TierConfig, free: usize) {
    let mentions = if tier.mention.is_empty() {
        String::new()
    } else {
        format!(" ({})", tier.mention.join(" "))
    };
    let _ = writeln!(
        out,
        "{what}, {}{}: acknowledge within {}.",
        escape(&shorten(&tier.name, free.clamp(20, 100))),
        escape(&shorten(&mentions, free.clamp(20, 300))),
        human_duration(tier.ack_timeout)
    );
}

fn write_console(out: &mut String, how: &HowToAct, id: u64) {
    if let Some(url) = &how.console_url {
        let url = format!("{}/incidents/{id}", url.trim_end_matches('/'));
        if is_web_url(&url) {
            let _ = writeln!(
                out,
                "<a href=\"{}\">Open incident #{id} in the console</a>",
                escape(&url)
            );
        }
    }
}

fn write_how(out: &mut String, how: &HowToAct, id: u64, resolve_too: bool) {
    write_console(out, how, id);
    if resolve_too {
        let _ = writeln!(
            out,
            "Use the buttons, or reply /ack {id} to take it, /resolve {id} when it is handled."
        );
    } else {
        let _ = writeln!(out, "Use the buttons, or reply /ack {id} to take it.");
    }
}

/// Checks that `html` is what Telegram's HTML parser accepts from us: tags balanced and
/// properly nested, only the tags we use, entities whole. Used by the tests, here and in
/// `tests/`, on every rendering.
pub fn check_markup(html: &str) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&', '>']) {
        let c = rest.as_bytes()[i];
        rest = &rest[i..];
        match c {
            b'>' => return Err(format!("a bare '>' at {:?}", excerpt(rest))),
            b'&' => {
                let end = rest
                    .find(';')
                    .ok_or_else(|| format!("an entity without ';' at {:?}", excerpt(rest)))?;
                let name = &rest[1..end];
                if !matches!(name, "amp" | "lt" | "gt" | "quot") {
                    return Err(format!("unknown entity &{name};"));
                }
                rest = &rest[end + 1..];
            }
            _ => {
                let end = rest
                    .find('>')
                    .ok_or_else(|| format!("an unclosed tag at {:?}", excerpt(rest)))?;
                let tag = &rest[1..end];
                if let Some(name) = tag.strip_prefix('/') {
                    match open.pop() {
                        Some(o) if o == name => {}
                        other => return Err(format!("</{name}> closes {other:?}")),
                    }
                } else {
                    let name = tag.split_whitespace().next().unwrap_or("");
                    if !matches!(name, "b" | "i" | "a" | "code") {
                        return Err(format!("unexpected tag <{tag}>"));
                    }
                    if name == "a"
                        && !(tag.starts_with("a href=\"http://")
                            || tag.starts_with("a href=\"https://"))
                    {
                        return Err(format!("a link that is not http(s): <{tag}>"));
                    }
                    if !tag.matches('"').count().is_multiple_of(2) || tag.contains('<') {
                        return Err(format!("a broken attribute in <{tag}>"));
                    }
                    open.push(name.to_string());
                }
                rest = &rest[end + 1..];
            }
        }
    }
    match open.last() {
        Some(tag) => Err(format!("<{tag}> is never closed")),
        None => Ok(()),
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(30).collect()
}

/// Fixtures shared with the channel's tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::store::{Incident, IncidentState, Transition};
    use chrono::{TimeZone, Utc};

    pub(crate) fn incident() -> Incident {
        incident_with(vec![])
    }

    pub(crate) fn incident_with(posts: Vec<crate::store::PostSummary>) -> Incident {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
        Incident {
            id: 12,
            brand: "度小满".into(),
            state: IncidentState::Triggered,
            opened_at: at,
            window_count: 9,
            baseline: 1.5,
            window_secs: 3600,
            hit_count: 9,
            top_posts: posts,
            tier: 0,
            policy_round: 0,
            next_page_at: None,
            alert_delivered: false,
            acked_by: None,
            acked_at: None,
            resolved_by: None,
            resolved_at: None,
            history: vec![Transition {
                at,
                to: IncidentState::Triggered,
                by: None,
                note: String::new(),
                via: None,
            }],
            opened_because: String::new(),
            calm_since: None,
            next_remind_at: None,
            topic_terms: vec!["爆通讯录".into()],
            categories: [("violent_collection".to_string(), 3)].into(),
            term_counts: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_markdown_report_reads_as_formatted_text_not_markup() {
        let body = "# 问题诊断报告 · Incident report #3 — 度小满\n\n\
                    - **State:** acknowledged\n\
                    - **Console:** [http://yq.example/incidents/3](http://yq.example/incidents/3)\n\n\
                    ## Top posts\n\n\
                    1. \\*\\*\\[click\\](javascript:alert(1))\\*\\* <script>x</script> a\\_b\n\
                    2. [bad](javascript:alert(1)) and `code <x>`\n\n\
                    | source | posts |\n|---|---|\n| 微博 | 12 |\n\n\
                    _The opening alert has not been confirmed delivered yet._\n";
        let html = markdown("yuqing report #3", body, false, MESSAGE_LIMIT);
        check_markup(&html).unwrap();
        assert!(html.starts_with("<b>yuqing report #3</b>\n\n"), "{html}");
        assert!(
            html.contains(
                "<b>问题诊断报告 · Incident report #3 — 度小满</b>\n• <b>State:</b> acknowledged"
            ),
            "{html}"
        );
        assert!(
            html.contains("• <b>Console:</b> <a href=\"http://yq.example/incidents/3\">"),
            "{html}"
        );
        assert!(html.contains("\n\n<b>Top posts</b>\n"), "{html}");
        // What a stranger wrote stays characters: no link, no bold, no tag, no backslashes.
        assert!(
            html.contains("1. **[click](javascript:alert(1))** &lt;script&gt;x&lt;/script&gt; a_b"),
            "{html}"
        );
        assert!(
            html.contains("2. bad and <code>code &lt;x&gt;</code>"),
            "{html}"
        );
        assert!(!html.contains("javascript:alert(1)\">"), "{html}");
        assert!(
            html.contains("\n\n<b>source · posts</b>\n微博 · 12\n\n<i>"),
            "{html}"
        );
        assert!(html.contains("<i>The opening alert"), "{html}");
        assert!(!html.contains("\n#") && !html.contains('\\'), "{html}");
    }

    #[test]
    fn a_long_markdown_report_is_cut_between_blocks_with_its_markup_whole() {
        let mut body = String::from("# Report\n\n");
        for n in 0..400 {
            body.push_str(&format!(
                "- **post {n}:** [度小满暴力催收](https://weibo.example/{n})\n"
            ));
        }
        for limit in [CAPTION_LIMIT, MESSAGE_LIMIT] {
            let html = markdown("title", &body, true, limit);
            check_markup(&html).unwrap();
            assert!(length(&html) <= limit, "{} > {limit}", length(&html));
            assert!(html.ends_with("\n…"), "{html}");
            assert!(html.contains("possible repeat"), "{html}");
            assert!(html.contains("• <b>post 0:</b>"), "{html}");
        }
        let short = markdown("title", "- one\n- two\n", false, MESSAGE_LIMIT);
        assert_eq!(short, "<b>title</b>\n\n• one\n• two");
    }

    use super::tests_support::incident_with as incident;
    use super::*;
    use chrono::{TimeZone, Utc};

    fn post(title: &str, excerpt: &str, url: Option<&str>) -> PostSummary {
        PostSummary {
            source: "黑猫投诉".into(),
            url: url.map(Into::into),
            title: title.into(),
            score: -3.2,
            terms: vec!["暴力催收".into(), "骚扰".into()],
            at: Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap(),
            excerpt: excerpt.into(),
        }
    }

    fn opened(incident: Incident) -> Notice {
        Notice::Opened {
            incident,
            tier: None,
        }
    }

    fn how() -> HowToAct {
        HowToAct {
            console_url: Some("https://yq.example/".into()),
            chat_commands: true,
        }
    }

    #[test]
    fn hostile_text_is_escaped_and_terms_are_bold() {
        let p = post(
            "</b><script>alert(1)</script> & \"quotes\"",
            "他们暴力催收 <b>骚扰</b> & 威胁",
            Some("https://x.example/?a=1&b=\"2\""),
        );
        let html = notice(&opened(incident(vec![p])), &how(), false, MESSAGE_LIMIT);
        check_markup(&html).unwrap();
        assert!(
            html.contains(
                "&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"
            ),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\">"),
            "{html}"
        );
        assert!(
            html.contains("<b>暴力催收</b> &lt;b&gt;<b>骚扰</b>&lt;/b&gt; &amp; 威胁"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://yq.example/incidents/12\">"),
            "{html}"
        );
        assert!(
            html.contains("#12") && html.contains("Severity: 🔴 <b>high</b>"),
            "{html}"
        );
        assert!(
            html.contains("Topic: 爆通讯录 · violent_collection 3"),
            "{html}"
        );
    }

    #[test]
    fn only_web_links_become_links() {
        for url in [
            "javascript:alert(1)",
            "data:text/html,x",
            "ftp://x.example/",
        ] {
            let html = notice(
                &opened(incident(vec![post("t", "", Some(url))])),
                &HowToAct::default(),
                false,
                MESSAGE_LIMIT,
            );
            check_markup(&html).unwrap();
            assert!(!html.contains("<a "), "{url}: {html}");
        }
    }

    #[test]
    fn a_huge_post_is_trimmed_to_whole_markup() {
        let huge = "暴力催收&<>\"😡".repeat(3000);
        let posts = vec![post(&huge, &huge, Some("https://x.example/1")); 3];
        let mut inc = incident(posts);
        inc.opened_because = huge.clone();
        inc.topic_terms = vec![huge.clone()];
        for limit in [MESSAGE_LIMIT, CAPTION_LIMIT] {
            let html = notice(&opened(inc.clone()), &how(), true, limit);
            assert!(length(&html) <= limit, "{limit}: {}", length(&html));
            check_markup(&html).unwrap_or_else(|e| panic!("{limit}: {e}\n{html}"));
            assert!(html.contains("#12") && html.contains("度小满"), "{html}");
            let edited = card(&inc, &huge, "telegram", &how(), limit);
            assert!(length(&edited) <= limit);
            check_markup(&edited).unwrap();
        }
        let full = notice(&opened(inc.clone()), &how(), false, MESSAGE_LIMIT);
        assert!(
            full.contains("Top posts:"),
            "posts are shortened before they are dropped: {full}"
        );
    }

    #[test]
    fn text_messages_fit_and_stay_escaped() {
        let body = "a<b>&".repeat(2000);
        let html = text("Daily <digest>", &body, false, MESSAGE_LIMIT);
        assert!(length(&html) <= MESSAGE_LIMIT);
        check_markup(&html).unwrap();
        assert!(html.starts_with("<b>Daily &lt;digest&gt;</b>"), "{html}");
        assert!(html.ends_with('…'), "{}", &html[html.len() - 20..]);
    }

    #[test]
    fn the_markup_check_finds_broken_html() {
        assert!(check_markup("<b>x</b> &amp; <a href=\"https://x\">y</a>").is_ok());
        for bad in [
            "<b>x",
            "<b><i>x</b></i>",
            "x &amp y",
            "<script>",
            "a > b",
            "<a href=\"javascript:x\">y</a>",
            "&nbsp;",
        ] {
            assert!(check_markup(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_terms_bold_the_longest() {
        assert_eq!(
            bold_terms("暴力催收和催收", &["催收".into(), "暴力催收".into()]),
            "<b>暴力催收</b>和<b>催收</b>"
        );
        assert_eq!(bold_terms("x<y", &[]), "x&lt;y");
    }
}
