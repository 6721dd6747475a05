//! The CLI's side of the admin API: `yuqing incidents`, `ack`, `hits`, `stats`… are thin
//! clients of the same endpoints the console uses, in the manner of amtool. sled allows one
//! process, so the CLI never opens the store while the daemon runs.
//!
//! Output is a table for people, or one JSON object per line with `--json`. Exit codes tell
//! scripts what happened: [`EXIT_NOT_RUNNING`], [`EXIT_NOT_FOUND`], [`EXIT_REFUSED`].

use std::fmt::Write;
use std::time::Duration;

use serde_json::Value;

/// Nothing answered at the admin address.
pub const EXIT_NOT_RUNNING: u8 = 3;
/// No such incident (or brand).
pub const EXIT_NOT_FOUND: u8 = 4;
/// The daemon refused: a wrong or missing token, or a transition that contradicts the state.
pub const EXIT_REFUSED: u8 = 5;
/// The request was malformed (a bad time, a bad number).
pub const EXIT_BAD_INPUT: u8 = 2;

/// A failed client call, with the exit code it deserves.
#[derive(Debug)]
pub struct ClientError {
    pub exit_code: u8,
    pub message: String,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `base` is `http://host:port`; `token` is needed for writes only.
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .connect_timeout(Duration::from_secs(3))
                // Loopback by default; a proxy from the environment must not swallow it.
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    pub async fn get(&self, path_and_query: &str) -> Result<Value, ClientError> {
        self.send(self.get_request(path_and_query)).await
    }

    /// GETs a text answer (the Markdown of a report, a digest as text) as it is.
    pub async fn get_text(&self, path_and_query: &str) -> Result<String, ClientError> {
        self.send_raw(self.get_request(path_and_query)).await
    }

    fn get_request(&self, path_and_query: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(format!("{}{path_and_query}", self.base));
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// POSTs a transition as `cli`.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        let Some(token) = &self.token else {
            return Err(ClientError {
                exit_code: EXIT_REFUSED,
                message: "no admin token: set the variable admin.token_env names, or run where \
                          the daemon's data folder (with its admin-token file) is readable"
                    .into(),
            });
        };
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(super::auth::ACTOR_HEADER, "cli")
            .json(&body);
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let text = self.send_raw(request).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Sends `request`; the body of a 2xx answer, or the error (from its JSON `error`) with
    /// the exit code its status deserves.
    async fn send_raw(&self, request: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let response = request.send().await.map_err(|e| ClientError {
            exit_code: EXIT_NOT_RUNNING,
            message: format!(
                "yuqing is not running at {} ({}). Start it with `yuqing run`, or point \
                 --admin-url at where it listens",
                self.base,
                if e.is_timeout() {
                    "no answer"
                } else {
                    "nothing listens there"
                }
            ),
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let message = value["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let exit_code = match status {
            404 => EXIT_NOT_FOUND,
            401 | 403 | 409 => EXIT_REFUSED,
            400 => EXIT_BAD_INPUT,
            _ => 1,
        };
        Err(ClientError { exit_code, message })
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Left-aligned columns, widths from the widest cell (counting CJK characters double, as a
/// terminal shows them).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| -> usize {
        s.chars()
            .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
            .sum()
    };
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - width(cell) + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// A string field, or "-".
pub fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time shortened to minutes: "2026-03-01 08:05".
pub fn short_time(v: &Value, key: &str) -> String {
    let text = field(v, key);
    match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => text,
    }
}

pub fn incidents_table(list: &[Value]) -> String {
    if list.is_empty() {
        return "no incidents\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                format!("#{}", field(i, "id")),
                field(i, "state"),
                field(i, "brand"),
                field(i, "hit_count"),
                short_time(i, "opened_at"),
                i["acked_by"]["name"]
                    .as_str()
                    .unwrap_or("UNACKNOWLEDGED")
                    .to_string(),
            ]
        })
        .collect();
    table(
        &["ID", "STATE", "BRAND", "HITS", "OPENED (UTC)", "OWNER"],
        &rows,
    )
}

pub fn incident_text(i: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "incident #{} — {} — {}",
        field(i, "id"),
        field(i, "brand"),
        field(i, "state")
    );
    let _ = writeln!(
        out,
        "opened {} UTC: {} negative posts in the window (baseline {}), {} in all",
        short_time(i, "opened_at"),
        field(i, "window_count"),
        i["baseline"]
            .as_f64()
            .map_or("-".into(), |b| format!("{b:.1}")),
        field(i, "hit_count"),
    );
    if let Some(why) = i["opened_because"].as_str().filter(|w| !w.is_empty()) {
        let _ = writeln!(out, "why: {why}");
    }
    if let Some(topic) = i["topic_terms"].as_array().filter(|t| !t.is_empty()) {
        let words: Vec<&str> = topic.iter().filter_map(Value::as_str).collect();
        let _ = writeln!(out, "topic: {}", words.join(", "));
    }
    if let Some(owner) = i["acked_by"]["name"].as_str() {
        let _ = writeln!(out, "owner: {owner}");
    }
    let _ = writeln!(out, "console: {}", field(i, "url"));
    if let Some(posts) = i["top_posts"].as_array().filter(|p| !p.is_empty()) {
        let _ = writeln!(out, "top posts:");
        for p in posts {
            let terms: Vec<&str> = p["terms"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  [{}] {} (score {:.1}; {})",
                field(p, "source"),
                field(p, "title"),
                p["score"].as_f64().unwrap_or(0.0),
                terms.join(", ")
            );
            if let Some(url) = p["url"].as_str() {
                let _ = writeln!(out, "      {url}");
            }
        }
    }
    let _ = writeln!(out, "timeline:");
    for t in i["history"].as_array().into_iter().flatten() {
        let who = t["by"]["name"].as_str().unwrap_or("yuqing");
        let via = t["via"]
            .as_str()
            .map(|v| format!(" via {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {who}{via}: {}",
            short_time(t, "at"),
            field(t, "note")
        );
    }
    out
}

pub fn hits_table(hits: &[Value]) -> String {
    if hits.is_empty() {
        return "no hits\n".into();
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            let title: String = field(h, "title").chars().take(60).collect();
            vec![
                short_time(h, "at"),
                field(h, "brand"),
                field(h, "source"),
                h["score"]
                    .as_f64()
                    .map_or("-".into(), |s| format!("{s:.2}")),
                if h["negative"] == Value::Bool(true) {
                    "yes".into()
                } else {
                    "".into()
                },
                title,
            ]
        })
        .collect();
    table(
        &["AT (UTC)", "BRAND", "SOURCE", "SCORE", "NEG", "TITLE"],
        &rows,
    )
}

pub fn sources_table(sources: &[Value]) -> String {
    let rows: Vec<Vec<String>> = sources
        .iter()
        .map(|s| {
            vec![
                field(s, "name"),
                if s["unhealthy"].is_string() {
                    // Past its alert_after or silent_after: announced as unhealthy.
                    "UNHEALTHY".into()
                } else if s["failing"] == Value::Bool(true) {
                    "FAILING".into()
                } else if s["last_poll_at"].is_null() {
                    "not polled yet".into()
                } else {
                    "ok".into()
                },
                short_time(s, "last_poll_at"),
                short_time(s, "last_success_at"),
                field(s, "consecutive_failures"),
                field(s, "total_new_items"),
                field(s, "items_seen"),
                short_time(s, "last_new_item_at"),
                s["last_error_class"]
                    .as_str()
                    .map(|c| c.replace('_', " "))
                    .unwrap_or_else(|| "-".into()),
                s["last_error"]
                    .as_str()
                    .map(|e| e.chars().take(80).collect())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "SOURCE",
            "STATE",
            "LAST POLL",
            "LAST OK",
            "FAILURES",
            "NEW ITEMS",
            "ITEMS SEEN",
            "LAST NEW",
            "CLASS",
            "LAST ERROR",
        ],
        &rows,
    )
}

pub fn notices_table(notices: &[Value]) -> String {
    if notices.is_empty() {
        return "no messages waiting: every channel is up to date\n".into();
    }
    let rows: Vec<Vec<String>> = notices
        .iter()
        .map(|n| {
            vec![
                field(n, "seq"),
                field(n, "channel"),
                field(n, "kind"),
                match n["incident"].as_u64() {
                    Some(id) => format!("#{id}"),
                    None => "-".into(),
                },
                field(n, "status"),
                field(n, "attempts"),
                short_time(n, "created_at"),
                n["last_error"]
                    .as_str()
                    .map(|e| e.chars().take(80).collect())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "SEQ",
            "CHANNEL",
            "KIND",
            "INCIDENT",
            "STATUS",
            "ATTEMPTS",
            "DECIDED (UTC)",
            "LAST ERROR / WHY",
        ],
        &rows,
    )
}

pub fn silences_table(silences: &[Value]) -> String {
    if silences.is_empty() {
        return "no silences\n".into();
    }
    let rows: Vec<Vec<String>> = silences
        .iter()
        .map(|s| {
            vec![
                field(s, "id"),
                format!("{} {}", field(s, "kind"), field(s, "name")),
                short_time(s, "until"),
                match s["active"].as_bool() {
                    Some(false) => "expired".into(),
                    _ => "active".into(),
                },
                field(s, "created_by"),
                field(s, "reason"),
            ]
        })
        .collect();
    table(
        &["ID", "MATCHES", "UNTIL (UTC)", "STATE", "BY", "REASON"],
        &rows,
    )
}

pub fn daily_table(brand: &str, days: &[Value]) -> String {
    let rows: Vec<Vec<String>> = days
        .iter()
        .map(|d| {
            vec![
                field(d, "date"),
                field(d, "mentions"),
                field(d, "negative"),
                d["complaint_rate"]
                    .as_f64()
                    .map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                d["harm"].as_f64().map_or("-".into(), |h| format!("{h:.2}")),
                field(d, "incidents_opened"),
            ]
        })
        .collect();
    format!(
        "{brand}\n{}",
        table(
            &[
                "DATE",
                "MENTIONS",
                "NEGATIVE",
                "COMPLAINT RATE",
                "HARM",
                "INCIDENTS"
            ],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_chinese_text() {
        let t = table(
            &["A", "B"],
            &[
                vec!["度小满".into(), "x".into()],
                vec!["ab".into(), "y".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A       B");
        assert_eq!(lines[1], "度小满  x");
        assert_eq!(lines[2], "ab      y");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("度小满"), "%E5%BA%A6%E5%B0%8F%E6%BB%A1");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }

    #[test]
    fn an_incident_reads_as_a_timeline() {
        let i = json!({
            "id": 3, "brand": "度小满", "state": "Acknowledged", "opened_at": "2026-03-01T08:05:00Z",
            "window_count": 4, "baseline": 0.25, "hit_count": 6, "url": "http://x/incidents/3",
            "acked_by": {"id": 0, "name": "cli"},
            "top_posts": [{"source": "weibo", "title": "暴力催收", "score": -2.5, "terms": ["暴力催收"], "url": "https://w/1"}],
            "history": [
                {"at": "2026-03-01T08:05:00Z", "by": null, "note": "4 negative in window"},
                {"at": "2026-03-01T08:09:00Z", "by": {"id": 0, "name": "cli"}, "note": "acknowledged", "via": "cli"}
            ]
        });
        let text = incident_text(&i);
        assert!(
            text.contains("incident #3 — 度小满 — Acknowledged"),
            "{text}"
        );
        assert!(text.contains("owner: cli"), "{text}");
        assert!(
            text.contains("2026-03-01 08:09  cli via cli: acknowledged"),
            "{text}"
        );
        assert!(
            text.contains("2026-03-01 08:05  yuqing: 4 negative"),
            "{text}"
        );
    }
}
