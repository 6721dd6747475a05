//! The JSON API under `/api/v1`, plus `/healthz` and `/readyz`.
//!
//! Every input is parsed by hand from strings, so that a malformed id, query or body gets a JSON
//! error naming what was wrong (axum's own rejections answer in plain text).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::read::{self, StateFilter};
use super::AdminState;
use crate::incident::{By, Outcome};
use crate::store::{HitQuery, Incident, IncidentState, DEFAULT_PAGE, MAX_PAGE};

/// An API failure: its status and a message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        tracing::error!(error = %format!("{e:#}"), "admin API request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl From<super::auth::Denied> for ApiError {
    fn from(d: super::auth::Denied) -> ApiError {
        match d {
            super::auth::Denied::Unauthenticated(why) => {
                ApiError::new(StatusCode::UNAUTHORIZED, why)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

pub async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let checks = state.readiness.snapshot();
    let ready = checks.values().all(|ok| *ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "checks": checks })))
}

/// Prometheus metrics. The gauges that describe the store are read now, at scrape time.
pub async fn metrics(State(state): State<AdminState>, headers: HeaderMap) -> ApiResult {
    state.auth.check_read(&headers)?;
    let incidents = state.store.incidents()?;
    let count = |s: IncidentState| incidents.iter().filter(|i| i.state == s).count() as u64;
    state.metrics.set_incidents(
        count(IncidentState::Triggered),
        count(IncidentState::Acknowledged),
        count(IncidentState::Resolved),
    );
    // Every message still waiting in the outbox, on any channel: pages, reminders, digests.
    let undelivered = state.store.outbox_waiting()?.len();
    state.metrics.set_undelivered_notices(undelivered as u64);
    state.metrics.set_store_bytes(state.store.size_on_disk()?);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        state.metrics.encode(),
    )
        .into_response())
}

/// `/api/*` paths that match no route.
pub async fn no_such_endpoint() -> ApiError {
    ApiError::not_found("no such endpoint; see the README's API section")
}

fn incident_json(state: &AdminState, incident: &Incident) -> Value {
    let mut value = serde_json::to_value(incident).expect("incidents serialize");
    value["url"] = json!(format!("{}/incidents/{}", state.public_url, incident.id));
    value
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    text.trim()
        .trim_start_matches('#')
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not an incident id (a number)")))
}

pub async fn list_incidents(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    state.auth.check_read(&headers)?;
    let filter = StateFilter::parse(params.get("state").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let list = read::incidents(&state.store, filter)?;
    let items: Vec<Value> = list.iter().map(|i| incident_json(&state, i)).collect();
    Ok(Json(json!({ "incidents": items })).into_response())
}

pub async fn get_incident(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    state.auth.check_read(&headers)?;
    let id = parse_id(&id)?;
    match state.store.incident(id)? {
        Some(incident) => Ok(Json(incident_json(&state, &incident)).into_response()),
        None => Err(ApiError::not_found(format!("no incident #{id}"))),
    }
}

/// The optional body of a transition.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    note: Option<String>,
}

/// The longest note kept in a timeline.
const MAX_NOTE_CHARS: usize = 2000;

pub async fn transition(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let actor = state.auth.check_api_write(&headers)?;
    let id = parse_id(&id)?;
    let body: TransitionBody = if body.iter().all(u8::is_ascii_whitespace) {
        TransitionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be JSON like {{\"note\": \"...\"}} or empty: {e}"
            ))
        })?
    };
    if body
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(ApiError::bad_request(format!(
            "the note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let via = if actor.name == "cli" { "cli" } else { "api" };
    let by = By { actor: &actor, via };
    let outcome = state.apply(id, &verb, by, body.note.as_deref()).await?;
    outcome_response(&state, outcome)
}

/// The answer to a transition, shared by the API and the console's JSON-free forms.
fn outcome_response(state: &AdminState, outcome: TransitionResult) -> ApiResult {
    let outcome = match outcome {
        TransitionResult::UnknownVerb(verb) => {
            return Err(ApiError::not_found(format!(
                "no transition {verb:?}; use ack, resolve or reopen"
            )))
        }
        TransitionResult::Done(outcome) => *outcome,
    };
    match outcome {
        Outcome::Changed(incident) => Ok(Json(json!({
            "changed": true,
            "message": super::outcome_message(&Outcome::Changed(incident.clone())),
            "incident": incident_json(state, &incident),
        }))
        .into_response()),
        Outcome::Unchanged {
            ref incident,
            reason: _,
        } => Ok(Json(json!({
            "changed": false,
            "message": super::outcome_message(&outcome),
            "incident": incident_json(state, incident),
        }))
        .into_response()),
        Outcome::Conflict { .. } => Err(ApiError::new(
            StatusCode::CONFLICT,
            super::outcome_message(&outcome),
        )),
        Outcome::NotFound(id) => Err(ApiError::not_found(format!("no incident #{id}"))),
    }
}

/// A transition by name, as the API and the console ask for it.
pub enum TransitionResult {
    Done(Box<Outcome>),
    UnknownVerb(String),
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// `false` (the default): a false positive; `true`: it was negative about the brand.
    #[serde(default)]
    pub negative: bool,
}

/// `POST /api/v1/hits/{id}/feedback`: a staff verdict on one hit, body `{"negative": false}`
/// (or empty, which means the same: a false positive).
pub async fn hit_feedback(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let actor = state.auth.check_api_write(&headers)?;
    let body: FeedbackBody = if body.iter().all(u8::is_ascii_whitespace) {
        FeedbackBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be JSON like {{\"negative\": false}} or empty: {e}"
            ))
        })?
    };
    let Some(crate::feedback::Target::Hit(hit)) = crate::feedback::Target::parse(&id) else {
        return Err(ApiError::not_found(format!("no hit {id:?}")));
    };
    let target = crate::feedback::Target::Hit(hit);
    match crate::feedback::give_verdict(&state.store, &target, body.negative, &actor, (state.clock)())? {
        Ok(given) => Ok((
            StatusCode::CREATED,
            Json(json!({"hit": id, "brand": given.brand, "negative": body.negative, "by": actor.name})),
        )
            .into_response()),
        Err(not) => Err(ApiError::not_found(not.to_string())),
    }
}

pub async fn list_hits(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    state.auth.check_read(&headers)?;
    let query = hit_query(&state, &params)?;
    let page = match read::hits(&state.store, &query) {
        Ok(page) => page,
        Err(e) if e.downcast_ref::<crate::store::InvalidCursor>().is_some() => {
            return Err(ApiError::bad_request(
                "invalid cursor: pass back next_cursor from the previous page",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let hits: Vec<Value> = page
        .hits
        .iter()
        .map(|h| {
            let mut v = serde_json::to_value(&h.hit).expect("hits serialize");
            v["id"] = json!(h.id);
            v
        })
        .collect();
    Ok(Json(json!({ "hits": hits, "next_cursor": page.next_cursor })).into_response())
}

/// The query string of `/api/v1/hits` (and the console's hits page) as a store query.
pub fn hit_query(
    state: &AdminState,
    params: &HashMap<String, String>,
) -> Result<HitQuery, ApiError> {
    const KNOWN: [&str; 7] = [
        "brand", "since", "until", "negative", "source", "limit", "cursor",
    ];
    if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {unknown:?}; known: {}",
            KNOWN.join(", ")
        )));
    }
    let now = (state.clock)();
    let non_empty = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let when = |k: &str| {
        non_empty(k)
            .map(|v| {
                read::parse_when(v, &state.store, now)
                    .map_err(|e| ApiError::bad_request(format!("{k}: {e}")))
            })
            .transpose()
    };
    let negative = match non_empty("negative") {
        None | Some("any") => None,
        Some("true" | "1" | "yes") => Some(true),
        Some("false" | "0" | "no") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "negative: {other:?} is not true or false"
            )))
        }
    };
    let limit = match non_empty("limit") {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit: {text:?} is not a number from 1 to {MAX_PAGE}"
                )))
            }
        },
    };
    Ok(HitQuery {
        brand: non_empty("brand").map(str::to_string),
        since: when("since")?,
        until: when("until")?,
        negative,
        source: non_empty("source").map(str::to_string),
        limit,
        cursor: non_empty("cursor").map(str::to_string),
    })
}

pub async fn list_sources(State(state): State<AdminState>, headers: HeaderMap) -> ApiResult {
    state.auth.check_read(&headers)?;
    let list = read::sources(&state.store, &state.sources)?;
    Ok(Json(json!({ "sources": list })).into_response())
}

pub async fn brand_daily(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(brand): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    state.auth.check_read(&headers)?;
    if !state.brands.contains(&brand) {
        return Err(ApiError::not_found(format!(
            "{brand:?} is not a configured brand; configured: {}",
            state.brands.join(", ")
        )));
    }
    let days = match params.get("days").map(|d| d.trim()) {
        None | Some("") => 7,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=read::MAX_DAYS).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "days: {text:?} is not a number from 1 to {}",
                    read::MAX_DAYS
                )))
            }
        },
    };
    let days = read::daily(&state.store, &brand, days, (state.clock)())?;
    Ok(Json(json!({
        "brand": brand,
        "time_zone": state.store.time_zone().name(),
        "days": days,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesQuery {
    /// Every recent message, delivered or not, instead of only those still waiting.
    #[serde(default)]
    all: bool,
    limit: Option<usize>,
}

/// The outbox: messages still waiting on any channel (or every recent one with `all=true`).
pub async fn list_notices(
    State(state): State<AdminState>,
    headers: HeaderMap,
    query: Result<Query<NoticesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    state.auth.check_read(&headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries = match query.all {
        true => state.store.outbox_recent(limit)?,
        false => {
            let mut waiting = state.store.outbox_waiting()?;
            waiting.truncate(limit);
            waiting
        }
    };
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).expect("outbox entries serialize");
            v["message"] = v["kind"].take();
            v["kind"] = json!(e.kind.name());
            v
        })
        .collect();
    Ok(Json(json!({ "notices": list })).into_response())
}

/// The incident report (问题诊断报告) as Markdown.
pub async fn incident_report(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    state.auth.check_read(&headers)?;
    let id = parse_id(&id)?;
    let now = (state.clock)();
    match crate::diagnosis::diagnose(&state.store, id, Some(&state.public_url), now)? {
        Some(report) => Ok((
            [(axum::http::header::CONTENT_TYPE, MARKDOWN)],
            report.markdown(),
        )
            .into_response()),
        None => Err(ApiError::not_found(format!("no incident #{id}"))),
    }
}

/// `POST /api/v1/incidents/{id}/report`: the report is read, not done.
pub async fn report_is_not_a_transition() -> ApiError {
    ApiError::not_found(
        "no transition \"report\"; use ack, resolve or reopen (GET reads the report)",
    )
}

/// The media type of the Markdown answers.
pub const MARKDOWN: &str = "text/markdown; charset=utf-8";

/// The daily digest of `day` (default: yesterday, the day a scheduled digest reports) for
/// every configured brand, or `brand`; as JSON, or `format=markdown` / `format=text`.
pub async fn digest(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    state.auth.check_read(&headers)?;
    const KNOWN: [&str; 3] = ["day", "brand", "format"];
    if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {unknown:?}; known: {}",
            KNOWN.join(", ")
        )));
    }
    let non_empty = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let tz = state.store.time_zone();
    let day = crate::digest::parse_day(non_empty("day").unwrap_or(""), (state.clock)(), tz)
        .map_err(|e| ApiError::bad_request(format!("day: {e}")))?;
    let brands: Vec<String> = match non_empty("brand") {
        None => state.brands.to_vec(),
        Some(brand) if state.brands.iter().any(|b| b == brand) => vec![brand.to_string()],
        Some(brand) => {
            return Err(ApiError::not_found(format!(
                "{brand:?} is not a configured brand; configured: {}",
                state.brands.join(", ")
            )))
        }
    };
    let digest = crate::digest::build(&state.store, &brands, day, Some(&state.public_url))?;
    Ok(match non_empty("format").unwrap_or("json") {
        "json" => Json(json!({ "digest": digest })).into_response(),
        "markdown" | "md" => (
            [(axum::http::header::CONTENT_TYPE, MARKDOWN)],
            digest.markdown(),
        )
            .into_response(),
        "text" => digest.text().into_response(),
        other => {
            return Err(ApiError::bad_request(format!(
                "format: {other:?} is not json, markdown or text"
            )))
        }
    })
}

pub async fn list_silences(State(state): State<AdminState>, headers: HeaderMap) -> ApiResult {
    state.auth.check_read(&headers)?;
    let now = (state.clock)();
    let list: Vec<Value> = state
        .incidents
        .silences()?
        .iter()
        .map(|s| silence_json(s, now))
        .collect();
    Ok(Json(json!({ "silences": list })).into_response())
}

fn silence_json(silence: &crate::store::Silence, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut v = serde_json::to_value(silence).expect("silences serialize");
    v["active"] = json!(silence.active(now));
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    kind: String,
    name: String,
    duration: String,
    #[serde(default)]
    reason: String,
}

pub async fn create_silence(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let actor = state.auth.check_api_write(&headers)?;
    let body: SilenceBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON like {{\"kind\": \"brand\", \"name\": \"度小满\", \"duration\": \"2h\", \"reason\": \"...\"}}: {e}"
        ))
    })?;
    let kind = crate::store::SilenceKind::parse(&body.kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "kind {:?} is not brand, source or topic",
            body.kind
        ))
    })?;
    if body.name.trim().is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    let duration = humantime::parse_duration(body.duration.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "duration {:?} is not a duration like 30m or 2h",
                body.duration
            ))
        })?;
    let via = if actor.name == "cli" { "cli" } else { "api" };
    let silence = state.incidents.mute(
        kind,
        &body.name,
        duration,
        By { actor: &actor, via },
        &body.reason,
        (state.clock)(),
    )?;
    let now = (state.clock)();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "silence": silence_json(&silence, now) })),
    )
        .into_response())
}

pub async fn expire_silence(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    state.auth.check_api_write(&headers)?;
    let now = (state.clock)();
    match state.incidents.unmute(&id, now)? {
        Some(silence) => {
            Ok(Json(json!({ "silence": silence_json(&silence, now) })).into_response())
        }
        None => Err(ApiError::not_found(format!("no silence {id}"))),
    }
}
