//! What the webhook channels (Feishu, DingTalk, WeCom, Slack, generic JSON) share: building
//! them from `[[channels]]`, one HTTP attempt with its failure classified, the redaction of the
//! URL's key and the signing secret, HMAC signing, a platform-neutral view of a message, and
//! trimming text to a platform's limit on a clean boundary.
//!
//! Each platform's module only renders that view in its own format and reads its own answer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use sha2::Sha256;

use super::channel::{Channel, Content, Message, Redactor, SendError};
use crate::config::{ChannelConfig, ChannelKind, ChannelUrl};
use crate::incident::Notice;
use crate::store::{Incident, IncidentState};

/// Where a channel reads the time for signatures; tests pin it, so signatures are known vectors.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// One send attempt may not take longer than this, so a hung platform cannot stall its queue.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// How much of an answer is read: enough for any platform's error, not a hostile megabyte.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Builds the configured channels, reading each URL and secret from the environment through
/// `env`, and the [`Redactor`] that hides them all. Every missing variable is named in one
/// error, with its channel.
pub fn build(
    configs: &[ChannelConfig],
    env: impl Fn(&str) -> Option<String>,
    client: reqwest::Client,
) -> Result<(Vec<Arc<dyn Channel>>, Redactor)> {
    build_with_clock(configs, env, client, Arc::new(Utc::now))
}

/// [`build`] with the clock that timestamps signatures.
pub fn build_with_clock(
    configs: &[ChannelConfig],
    env: impl Fn(&str) -> Option<String>,
    client: reqwest::Client,
    clock: Clock,
) -> Result<(Vec<Arc<dyn Channel>>, Redactor)> {
    let mut problems = Vec::new();
    let mut redactor = Redactor::default();
    let mut resolved = Vec::new();
    let read = |var: &str| {
        env(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    for config in configs {
        let url = match &config.url {
            ChannelUrl::Inline(url) => Some(url.clone()),
            ChannelUrl::Env(var) => {
                let url = read(var);
                if url.is_none() {
                    problems.push(format!(
                        "channel {:?}: environment variable {var} (its webhook URL) is not set",
                        config.name
                    ));
                }
                url
            }
        };
        let secret = match &config.secret_env {
            Some(var) => {
                let secret = read(var);
                if secret.is_none() {
                    problems.push(format!(
                        "channel {:?}: environment variable {var} (its signing secret) is not set",
                        config.name
                    ));
                }
                secret
            }
            None => None,
        };
        let Some(url) = url else { continue };
        let parsed = match Url::parse(&url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
            _ => {
                // The value itself is a secret: say where it came from, not what it is.
                problems.push(format!(
                    "channel {:?}: its webhook URL{} is not an http(s) URL",
                    config.name,
                    match &config.url {
                        ChannelUrl::Env(var) => format!(" (from {var})"),
                        ChannelUrl::Inline(_) => String::new(),
                    }
                ));
                continue;
            }
        };
        for secret in url_secrets(&parsed) {
            redactor.add(secret);
        }
        if let Some(s) = &secret {
            redactor.add(s.clone());
        }
        resolved.push((config, parsed, secret));
    }
    if !problems.is_empty() {
        bail!("cannot build the channels:\n  {}", problems.join("\n  "));
    }
    let channels = resolved
        .into_iter()
        .map(|(config, url, secret)| {
            let endpoint = Endpoint {
                name: config.name.clone(),
                client: client.clone(),
                url,
                secret,
                redactor: redactor.clone(),
                clock: clock.clone(),
            };
            let channel: Arc<dyn Channel> = match config.kind {
                ChannelKind::Feishu => Arc::new(super::feishu::Feishu::new(endpoint)),
                ChannelKind::Dingtalk => Arc::new(super::dingtalk::DingTalk::new(endpoint)),
                ChannelKind::Wecom => Arc::new(super::wecom::WeCom::new(endpoint)),
                ChannelKind::Slack => Arc::new(super::slack::Slack::new(endpoint)),
                ChannelKind::Webhook => Arc::new(super::webhook::Webhook::new(endpoint)),
            };
            channel
        })
        .collect();
    Ok((channels, redactor))
}

/// The parts of a webhook URL that are credentials: the whole URL, every query value
/// (DingTalk's `access_token`, WeCom's `key`), and every path segment that looks like a key
/// rather than a word (Feishu's hook id, Slack's `T…/B…/secret`): one with a digit and 8
/// characters or more, or 20 characters or more.
fn url_secrets(url: &Url) -> Vec<String> {
    let mut secrets = vec![url.as_str().to_string()];
    secrets.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
    for segment in url.path_segments().into_iter().flatten() {
        let n = segment.chars().count();
        if (n >= 8 && segment.chars().any(|c| c.is_ascii_digit())) || n >= 20 {
            secrets.push(segment.to_string());
        }
    }
    secrets
}

/// A channel's endpoint and credentials, and one POST to it.
pub(crate) struct Endpoint {
    pub name: String,
    client: reqwest::Client,
    pub url: Url,
    pub secret: Option<String>,
    pub redactor: Redactor,
    clock: Clock,
}

/// What the platform answered, whatever the status.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl Endpoint {
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// POSTs `body` as JSON to `url` (the endpoint's, or it with signature parameters) and
    /// reads the answer. Only a request that got no answer is an error here.
    pub async fn post(
        &self,
        url: Url,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Answer, SendError> {
        let mut request = self
            .client
            .post(url)
            .timeout(ATTEMPT_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = request.send().await.map_err(|e| {
            // Without its URL, whose query or path holds the key; redacted all the same.
            SendError::transient(self.redact(&format!(
                "{}: no answer: {}",
                self.name,
                error_chain(&e.without_url())
            )))
        })?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ANSWER_BYTES - bytes.len();
                    bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if bytes.len() >= MAX_ANSWER_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if status.is_success() => {
                    return Err(SendError::transient(self.redact(&format!(
                        "{}: the answer broke off: {}",
                        self.name,
                        error_chain(&e.without_url())
                    ))))
                }
                // The status says enough.
                Err(_) => break,
            }
        }
        Ok(Answer {
            status,
            retry_after,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// A failure named after the channel, with the platform's words, redacted.
    pub fn failure(&self, what: &str, answer: &str) -> String {
        let answer = answer.trim();
        let answer = trim_chars(answer, 300);
        self.redact(&format!("{}: {what}: {answer}", self.name))
    }

    /// How an answer's HTTP status classifies when the platform's own code said nothing.
    /// `None` for a success.
    pub fn by_status(&self, answer: &Answer) -> Option<SendError> {
        let status = answer.status;
        if status.is_success() {
            return None;
        }
        let reason = self.failure(&format!("HTTP {}", status.as_u16()), &answer.body);
        Some(if status == StatusCode::TOO_MANY_REQUESTS {
            SendError {
                reason,
                retry_after: answer.retry_after,
                permanent: false,
            }
        } else if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
        {
            // Authentication failures are not permanent: once the operator fixes the key or
            // secret, the waiting message should go out.
            SendError::transient(reason)
        } else if status.is_client_error() {
            SendError::permanent(reason)
        } else {
            SendError::transient(reason)
        })
    }

    /// Reads the answer of a platform that reports with `{"errcode": N, "errmsg": "..."}`
    /// (DingTalk, WeCom): 0 with a 2xx status is delivered; any other code is classified by
    /// `classify`; no code falls back to the HTTP status, and a 2xx without one is in doubt.
    pub fn errcode_answer(
        &self,
        answer: &Answer,
        classify: fn(i64) -> CodeClass,
    ) -> Result<super::channel::Delivered, SendError> {
        if answer.status.is_server_error() || answer.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(self.by_status(answer).expect("a failure status"));
        }
        if let Ok(reply) = serde_json::from_str::<serde_json::Value>(&answer.body) {
            match reply.get("errcode").and_then(serde_json::Value::as_i64) {
                Some(0) if answer.status.is_success() => {
                    return Ok(super::channel::Delivered::default())
                }
                Some(code) if code != 0 => {
                    let msg = reply
                        .get("errmsg")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default();
                    return Err(self.by_code(code, msg, classify(code)));
                }
                _ => {}
            }
        }
        match self.by_status(answer) {
            Some(failure) => Err(failure),
            None => Err(SendError::transient(self.failure(
                "answer without an errcode, delivery unknown",
                &answer.body,
            ))),
        }
    }

    /// A platform's error code, classified by the platform's table.
    pub fn by_code(&self, code: i64, message: &str, class: CodeClass) -> SendError {
        let reason = self.failure(&format!("platform error {code}"), message);
        match class {
            CodeClass::RateLimited | CodeClass::Credentials => SendError::transient(reason),
            CodeClass::Rejected => SendError::permanent(reason),
        }
    }
}

/// What a platform's error code means for retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeClass {
    /// Too many messages: later it goes through.
    RateLimited,
    /// Wrong key, signature, keyword or IP allow-list: an operator can fix it, and then the
    /// waiting message should go out.
    Credentials,
    /// The message itself was refused: sending it again cannot help.
    Rejected,
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Retry-After as seconds, or as an HTTP date from now.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
pub fn trim_bytes(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to at most `max` bytes at its last line break that fits (Markdown built here
/// escapes line breaks inside values, so a line's end never falls inside markup), or on a
/// char boundary when no line break fits; "…" marks the cut.
pub fn cut_at_line(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let room = trim_bytes(text, max.saturating_sub("\n…".len()));
    let kept = match room.rfind('\n') {
        Some(i) if i > 0 => &room[..i],
        _ => room,
    };
    format!("{kept}\n…")
}

/// `text` cut to at most `max` characters, with "…" when something was cut.
pub fn trim_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes `text` char by char with `escape`, stopping before the output would pass `max`
/// bytes (then "…" ends it), so the limit never cuts an escape or a character in half.
pub fn escape_within(text: &str, max: usize, escape: impl Fn(char, &mut String)) -> String {
    const ELLIPSIS: &str = "…";
    let mut out = String::with_capacity(text.len().min(max));
    // Where the output may be cut with room for the ellipsis: after the last whole escape.
    let mut cut = None;
    for c in text.chars() {
        let before = out.len();
        escape(c, &mut out);
        if cut.is_none() && out.len() + ELLIPSIS.len() > max {
            cut = Some(before);
        }
        if out.len() > max {
            let at = cut.unwrap_or(before);
            out.truncate(at);
            if at + ELLIPSIS.len() <= max {
                out.push_str(ELLIPSIS);
            }
            return out;
        }
    }
    out
}

/// An http(s) link that is safe to put in any markup: no spaces, quotes, brackets or pipes
/// that could end the link syntax early. `None` for anything else (a `javascript:` URL).
pub fn safe_link(url: &str) -> Option<String> {
    let parsed = Url::parse(url.trim()).ok()?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return None;
    }
    let mut out = String::new();
    for c in parsed.as_str().chars() {
        match c {
            '(' | ')' | '[' | ']' | '<' | '>' | '|' | '"' | '\'' | ' ' | '`' | '*' | '_' | '~'
            | '\\' | '{' | '}' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    Some(out)
}

/// How alarming a message is; each platform picks its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// A page: opened, escalated, ack expired.
    Alarm,
    /// A reminder to the owner.
    Warning,
    /// Resolved.
    Good,
    /// Anything else: an acknowledgement, a digest, a report.
    Info,
}

/// A post worth a link.
#[derive(Debug, Clone)]
pub struct PostLine {
    pub source: String,
    pub title: String,
    pub url: Option<String>,
    pub score: f64,
    pub terms: Vec<String>,
}

/// A message taken apart into what every platform shows, in the words of
/// [`super::render`]; each platform only formats and escapes it.
#[derive(Debug, Clone)]
pub struct View<'m> {
    /// The first line of the plain rendering ("🚨 yuqing incident #7 — 度小满").
    pub headline: String,
    pub tone: Tone,
    /// Labelled facts (Why, Severity, Topic, Paging…), plain text.
    pub fields: Vec<(&'static str, String)>,
    /// The top posts, at most three.
    pub posts: Vec<PostLine>,
    /// The plain-text rendering of the whole message.
    pub plain: String,
    /// A body that is already Markdown (a digest or report), instead of fields and posts.
    pub markdown: Option<String>,
    /// The incident's page in the web console, when the console has a public URL.
    pub console_link: Option<String>,
    pub incident: Option<&'m Incident>,
    pub possible_repeat: bool,
}

impl<'m> View<'m> {
    pub fn of(message: &'m Message) -> View<'m> {
        let possible_repeat = message.possible_repeat;
        match &message.content {
            Content::Text {
                title,
                body,
                markdown,
            } => View {
                headline: title.clone(),
                tone: Tone::Info,
                fields: Vec::new(),
                posts: Vec::new(),
                plain: format!("{title}\n{body}"),
                markdown: markdown.then(|| body.clone()),
                console_link: None,
                incident: None,
                possible_repeat,
            },
            // Replies go only to the chat a command came from; these platforms never ask one.
            Content::Reply { text, .. } => View {
                headline: "yuqing".to_string(),
                tone: Tone::Info,
                fields: Vec::new(),
                posts: Vec::new(),
                plain: text.clone(),
                markdown: None,
                console_link: None,
                incident: None,
                possible_repeat,
            },
            Content::Incident(notice) => {
                let incident = notice.incident();
                let plain = super::render(notice, &message.how);
                let headline = plain.lines().next().unwrap_or_default().to_string();
                let console_link = message
                    .how
                    .console_url
                    .as_ref()
                    .map(|u| format!("{}/incidents/{}", u.trim_end_matches('/'), incident.id));
                let (tone, fields, with_posts) = facts(notice);
                let posts = if with_posts {
                    incident
                        .top_posts
                        .iter()
                        .take(3)
                        .map(|p| PostLine {
                            source: p.source.clone(),
                            title: p.title.clone(),
                            url: p.url.clone(),
                            score: p.score,
                            terms: p.terms.clone(),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                View {
                    headline,
                    tone,
                    fields,
                    posts,
                    plain,
                    markdown: None,
                    console_link,
                    incident: Some(incident),
                    possible_repeat,
                }
            }
        }
    }
}

/// The tone, the labelled facts and whether the top posts belong in a notice.
fn facts(notice: &Notice) -> (Tone, Vec<(&'static str, String)>, bool) {
    let incident = notice.incident();
    let paging = |tier: &crate::config::TierConfig, what: String| {
        (
            "Paging",
            format!(
                "{what}: {}, acknowledge within {}",
                tier.name,
                crate::config::human_duration(tier.ack_timeout)
            ),
        )
    };
    let mut fields = Vec::new();
    match notice {
        Notice::Opened { tier, .. } => {
            fields.push(("Why", why(incident)));
            fields.push(("Severity", severity(incident)));
            push_topic(&mut fields, incident);
            if let Some(t) = tier {
                fields.push(paging(t, "tier 1".into()));
            }
            (Tone::Alarm, fields, true)
        }
        Notice::Escalated {
            tier, tier_number, ..
        } => {
            fields.push(("Negative posts", incident.hit_count.to_string()));
            fields.push(("Severity", severity(incident)));
            push_topic(&mut fields, incident);
            fields.push(paging(tier, format!("tier {tier_number}")));
            (Tone::Alarm, fields, true)
        }
        Notice::AckExpired { owner, tier, .. } => {
            fields.push(("Was owned by", owner.clone()));
            fields.push(("Severity", severity(incident)));
            if let Some(t) = tier {
                fields.push(paging(t, "tier 1".into()));
            }
            (Tone::Alarm, fields, true)
        }
        Notice::Reminder { .. } => {
            let owner = incident
                .acked_by
                .as_ref()
                .map_or("nobody", |a| a.name.as_str());
            fields.push(("Owner", owner.to_string()));
            fields.push(("Negative posts", incident.hit_count.to_string()));
            (Tone::Warning, fields, false)
        }
        Notice::AutoResolved { .. } => {
            fields.push(("Negative posts", incident.hit_count.to_string()));
            (Tone::Good, fields, false)
        }
        Notice::Changed { by, via, .. } => {
            fields.push(("By", format!("{by} (via {via})")));
            let tone = if incident.state == IncidentState::Resolved {
                Tone::Good
            } else {
                Tone::Info
            };
            (tone, fields, false)
        }
    }
}

/// Why it opened, in `render`'s words.
fn why(incident: &Incident) -> String {
    if incident.opened_because.is_empty() {
        format!(
            "{} negative posts in the last {} (baseline {:.1} per window)",
            incident.window_count,
            crate::config::human_duration(Duration::from_secs(incident.window_secs)),
            incident.baseline
        )
    } else {
        incident.opened_because.clone()
    }
}

/// How bad it is, from what the incident holds: a critical post, or the spike's ratio to the
/// baseline, and the most negative post's score.
fn severity(incident: &Incident) -> String {
    let worst = incident
        .top_posts
        .iter()
        .map(|p| p.score)
        .filter(|s| s.is_finite())
        .min_by(f64::total_cmp);
    let level = if incident.opened_because.starts_with("critical post") {
        "critical post".to_string()
    } else if incident.baseline > 0.0 {
        format!(
            "spike ×{:.1} the baseline",
            incident.window_count as f64 / incident.baseline
        )
    } else {
        format!(
            "{} negative posts from a quiet baseline",
            incident.window_count
        )
    };
    match worst {
        Some(score) => format!("{level}; worst post score {score:.1}"),
        None => level,
    }
}

fn push_topic(fields: &mut Vec<(&'static str, String)>, incident: &Incident) {
    if incident.topic_terms.is_empty() && incident.categories.is_empty() {
        return;
    }
    let mut categories: Vec<(&String, &u64)> = incident.categories.iter().collect();
    categories.sort_by(|a, b| b.1.cmp(a.1));
    let categories: Vec<String> = categories.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let mut topic = incident.topic_terms.join(", ");
    if !categories.is_empty() {
        if !topic.is_empty() {
            topic.push_str(" · ");
        }
        topic.push_str(&categories.join(", "));
    }
    fields.push(("Topic", topic));
}

/// The line that says a message may have arrived before.
pub const POSSIBLE_REPEAT: &str =
    "(possible repeat: yuqing stopped while sending this, so it may have arrived before)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn escaping_within_a_limit_never_cuts_an_escape_or_a_character() {
        let escape = |c: char, out: &mut String| match c {
            '<' => out.push_str("&lt;"),
            c => out.push(c),
        };
        let text = "舆情<<<<<<<<";
        let whole = escape_within(text, usize::MAX, escape);
        for max in 0..whole.len() + 2 {
            let out = escape_within(text, max, escape);
            assert!(out.len() <= max, "{max}: {out}");
            let kept = out.trim_end_matches('…');
            assert!(whole.starts_with(kept), "{max}: {out}");
            assert!(
                kept.is_empty()
                    || kept.ends_with("&lt;")
                    || kept.ends_with('情')
                    || kept.ends_with('舆'),
                "{max}: {out}"
            );
        }
        assert_eq!(escape_within("a<b", 100, escape), "a&lt;b");
        assert_eq!(escape_within("a<b", 6, escape), "a&lt;b", "fits exactly");
        assert_eq!(escape_within("a<b", 5, escape), "a…");
    }

    #[test]
    fn cutting_at_a_line_stays_within_the_limit() {
        let text = "line one\nline two \\* 舆情\nline three";
        for max in 0..text.len() + 2 {
            let out = cut_at_line(text, max);
            assert!(out.len() <= max.max("\n…".len() + 3), "{max}: {out:?}");
        }
        assert_eq!(cut_at_line(text, 20), "line one\n…");
        assert_eq!(cut_at_line(text, 100), text);
    }

    #[test]
    fn trimming_keeps_whole_characters() {
        assert_eq!(trim_bytes("舆情", 4), "舆");
        assert_eq!(trim_chars("舆情监测", 3), "舆情…");
        assert_eq!(trim_chars("舆情", 3), "舆情");
    }

    #[test]
    fn only_http_links_pass_and_none_can_break_out_of_markup() {
        assert_eq!(safe_link("javascript:alert(1)"), None);
        let link = safe_link("https://e.com/a b)(c|d>[x]").unwrap();
        assert!(
            !link.contains([' ', '(', ')', '|', '>', '[', ']']),
            "{link}"
        );
    }

    #[test]
    fn url_secrets_cover_query_values_and_key_like_segments() {
        let url = Url::parse("https://oapi.dingtalk.com/robot/send?access_token=abc123def456&x=1")
            .unwrap();
        let secrets = url_secrets(&url);
        assert!(secrets.contains(&"abc123def456".to_string()));
        assert!(!secrets.iter().any(|s| s == "robot" || s == "send"));
        let slack =
            Url::parse("https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx")
                .unwrap();
        let secrets = url_secrets(&slack);
        assert!(secrets.contains(&"abcdefghijklmnopqrstuvwx".to_string()));
        assert!(!secrets.iter().any(|s| s == "services"));
    }
}
