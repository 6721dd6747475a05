//! The web console's handlers: they read through [`super::read`], render with [`super::pages`],
//! and act through the same incident transitions as the API and the chat.
//!
//! Security, in the manner of Miniflux:
//! - acting needs a login, done by entering the admin token once; it sets an HttpOnly,
//!   SameSite=Strict session cookie;
//! - every form carries the session's CSRF token, checked on every post;
//! - after a post the browser is redirected (303), so reloading never repeats an action;
//! - `next` after a login is followed only when it is a path on this server.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::Markup;
use serde::Deserialize;

use super::auth::{Session as AuthSession, SESSION_COOKIE};
use super::i18n::Lang;
use super::pages::{self, BrandOverview, HitFilters, Overview, Page, Session};
use super::read::{self, StateFilter};
use super::AdminState;
use crate::incident::By;
use crate::store::{Actor, HitPage};

/// The page's language: the browser's preference, else the configured one.
fn lang(state: &AdminState, headers: &HeaderMap) -> Lang {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::from_accept_language(accept, state.default_lang)
}

fn page_session(session: &Option<AuthSession>) -> Option<Session> {
    session.as_ref().map(|s| Session {
        name: s.name.clone(),
        csrf: s.csrf.clone(),
    })
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// Renders a page for this request: its language, session and flash message.
fn render(
    state: &AdminState,
    headers: &HeaderMap,
    status: StatusCode,
    body: impl FnOnce(&Page) -> Markup,
) -> Response {
    let session = page_session(&state.auth.session(headers));
    let page = Page {
        lang: lang(state, headers),
        session: session.as_ref(),
        flash: state.auth.take_flash(headers),
        tz: state.store.time_zone(),
    };
    html(status, body(&page))
}

/// Pages are reads: open on loopback, else a login is needed first.
fn must_log_in(state: &AdminState, headers: &HeaderMap, here: &str) -> Option<Response> {
    if state.auth.check_read(headers).is_ok() {
        return None;
    }
    Some(Redirect::to(&format!("/login?next={}", super::client::encode(here))).into_response())
}

fn internal_error(state: &AdminState, headers: &HeaderMap, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "console page failed");
    render(state, headers, StatusCode::INTERNAL_SERVER_ERROR, |p| {
        pages::not_found(p, &format!("{e:#}"))
    })
}

pub async fn overview(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(r) = must_log_in(&state, &headers, "/") {
        return r;
    }
    match build_overview(&state) {
        Ok(o) => render(&state, &headers, StatusCode::OK, |p| pages::overview(p, &o)),
        Err(e) => internal_error(&state, &headers, e),
    }
}

fn build_overview(state: &AdminState) -> anyhow::Result<Overview> {
    let now = (state.clock)();
    let tz = state.store.time_zone();
    let mut brands = Vec::new();
    for brand in state.brands.iter() {
        let week = read::daily(&state.store, brand, 7, now)?;
        let week: Vec<_> = week
            .iter()
            .map(|d| {
                (
                    d.date,
                    crate::store::DailyFigures {
                        mentions: d.mentions,
                        negative: d.negative,
                        harm: d.harm,
                        incidents_opened: d.incidents_opened,
                    },
                )
            })
            .collect();
        let today = week.last().map(|(_, f)| *f).unwrap_or_default();
        let hours = read::last_24_hours(&state.store, brand, now)?
            .into_iter()
            .map(|(at, mentions, negative)| {
                (at.with_timezone(&tz).fixed_offset(), mentions, negative)
            })
            .collect();
        brands.push(BrandOverview {
            brand: brand.clone(),
            today,
            week,
            hours,
        });
    }
    let failing_sources = read::sources(&state.store, &state.sources)?
        .into_iter()
        .filter(|s| s.failing)
        .map(|s| (s.name, s.health))
        .collect();
    Ok(Overview {
        brands,
        open_incidents: read::incidents(&state.store, StateFilter::Open)?,
        failing_sources,
        time_zone: tz.name().to_string(),
    })
}

pub async fn incident(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/incidents/{id}");
    if let Some(r) = must_log_in(&state, &headers, &here) {
        return r;
    }
    let found = match id.parse::<u64>() {
        Ok(n) => state.store.incident(n),
        Err(_) => Ok(None),
    };
    match found {
        Ok(Some(i)) => render(&state, &headers, StatusCode::OK, |p| pages::incident(p, &i)),
        Ok(None) => render(&state, &headers, StatusCode::NOT_FOUND, |p| {
            pages::not_found(p, &format!("#{id}"))
        }),
        Err(e) => internal_error(&state, &headers, e),
    }
}

/// The incident report (问题诊断报告), shown as its Markdown text.
pub async fn report(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/incidents/{id}/report");
    if let Some(r) = must_log_in(&state, &headers, &here) {
        return r;
    }
    let found = match id.parse::<u64>() {
        Ok(n) => {
            crate::diagnosis::diagnose(&state.store, n, Some(&state.public_url), (state.clock)())
        }
        Err(_) => Ok(None),
    };
    match found {
        Ok(Some(d)) => render(&state, &headers, StatusCode::OK, |p| {
            pages::report(p, &d.incident, &d.markdown())
        }),
        Ok(None) => render(&state, &headers, StatusCode::NOT_FOUND, |p| {
            pages::not_found(p, &format!("#{id}"))
        }),
        Err(e) => internal_error(&state, &headers, e),
    }
}

pub async fn hits(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = must_log_in(&state, &headers, "/hits") {
        return r;
    }
    let non_empty = |k: &str| params.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let filters = HitFilters {
        brand: non_empty("brand"),
        negative: non_empty("negative").and_then(|v| match v.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }),
        source: non_empty("source"),
        since: Some(non_empty("since").unwrap_or_else(|| "24h".into())),
    };
    let mut query_params = params.clone();
    query_params.retain(|_, v| !v.trim().is_empty());
    query_params
        .entry("since".into())
        .or_insert_with(|| "24h".into());
    query_params
        .entry("limit".into())
        .or_insert_with(|| "50".into());
    let (data, problem) = match super::api::hit_query(&state, &query_params)
        .map_err(|e| e.message)
        .and_then(|q| read::hits(&state.store, &q).map_err(|e| format!("{e:#}")))
    {
        Ok(page) => (page, None),
        Err(message) => (
            HitPage {
                hits: vec![],
                next_cursor: None,
            },
            Some(message),
        ),
    };
    let next_link = data.next_cursor.as_ref().map(|cursor| {
        let mut link: Vec<String> = query_params
            .iter()
            .filter(|(k, _)| k.as_str() != "cursor")
            .map(|(k, v)| format!("{k}={}", super::client::encode(v)))
            .collect();
        link.sort();
        link.push(format!("cursor={cursor}"));
        format!("/hits?{}", link.join("&"))
    });
    let source_names: Vec<String> = state.sources.iter().map(|s| s.name.clone()).collect();
    let session = page_session(&state.auth.session(&headers));
    let page = Page {
        lang: lang(&state, &headers),
        session: session.as_ref(),
        flash: problem.or_else(|| state.auth.take_flash(&headers)),
        tz: state.store.time_zone(),
    };
    html(
        StatusCode::OK,
        pages::hits(
            &page,
            &filters,
            &state.brands,
            &source_names,
            &data,
            next_link,
        ),
    )
}

pub async fn sources(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(r) = must_log_in(&state, &headers, "/sources") {
        return r;
    }
    match read::sources(&state.store, &state.sources) {
        Ok(list) => {
            let list: Vec<_> = list.into_iter().map(|s| (s.name, s.health)).collect();
            render(&state, &headers, StatusCode::OK, |p| {
                pages::sources(p, &list)
            })
        }
        Err(e) => internal_error(&state, &headers, e),
    }
}

/// Only a path on this server: `/x`, never `//evil.example` or `https://…`.
fn local_path(next: &str) -> &str {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if ok {
        next
    } else {
        "/"
    }
}

pub async fn login_page(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let next = local_path(params.get("next").map_or("/", String::as_str)).to_string();
    render(&state, &headers, StatusCode::OK, |p| {
        pages::login(p, &next, None)
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local_path(&form.next).to_string();
    let error = if form.name.trim().is_empty() {
        Some("name")
    } else if !state.auth.token_matches(form.token.trim()) {
        Some("token")
    } else {
        None
    };
    if let Some(which) = error {
        let message = match (lang(&state, &headers), which) {
            (Lang::Zh, "name") => "请填写你的名字，它会记入事件时间线。",
            (Lang::Zh, _) => "令牌不正确。",
            (Lang::En, "name") => "Enter your name: it goes into the incident timeline.",
            (Lang::En, _) => "The token is wrong.",
        };
        tracing::warn!(name = %form.name, "console login refused: {which}");
        return render(&state, &headers, StatusCode::UNAUTHORIZED, |p| {
            pages::login(p, &next, Some(message))
        });
    }
    let (id, session) = state.auth.login(&form.name);
    tracing::info!(name = %session.name, "console login");
    let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn logout(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(session) = state.auth.session(&headers) {
        if state.auth.csrf_matches(&session, &form.csrf) {
            state.auth.logout(&headers);
        }
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// Acknowledge, resolve (with a note) or reopen from the incident page.
pub async fn act(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let here = format!("/incidents/{id}");
    let Some(session) = state.auth.session(&headers) else {
        return Redirect::to(&format!("/login?next={}", super::client::encode(&here)))
            .into_response();
    };
    if !state.auth.csrf_matches(&session, &form.csrf) {
        tracing::warn!(name = %session.name, "console post refused: CSRF token mismatch");
        return render(&state, &headers, StatusCode::FORBIDDEN, |p| {
            pages::not_found(p, "CSRF")
        });
    }
    let Ok(number) = id.parse::<u64>() else {
        return render(&state, &headers, StatusCode::NOT_FOUND, |p| {
            pages::not_found(p, &format!("#{id}"))
        });
    };
    let actor = Actor {
        id: 0,
        name: format!("web:{}", session.name),
    };
    let by = By {
        actor: &actor,
        via: "web",
    };
    let note = form
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let note: Option<String> = note.map(|n| n.chars().take(2000).collect());
    if verb == "fp" {
        let target = crate::feedback::Target::Incident(number);
        return match crate::feedback::give_verdict(
            &state.store,
            &target,
            false,
            &actor,
            (state.clock)(),
        ) {
            Ok(given) => {
                let message = match given {
                    Ok(g) => format!(
                        "#{number}: {} hit(s) marked as false positives by {}",
                        g.hits, actor.name
                    ),
                    Err(not) => format!("nothing marked: {not}"),
                };
                state.auth.set_flash(&headers, message);
                Redirect::to(&here).into_response()
            }
            Err(e) => internal_error(&state, &headers, e),
        };
    }
    match state.apply(number, &verb, by, note.as_deref()).await {
        Ok(super::api::TransitionResult::Done(outcome)) => {
            state
                .auth
                .set_flash(&headers, super::outcome_message(&outcome));
            Redirect::to(&here).into_response()
        }
        Ok(super::api::TransitionResult::UnknownVerb(_)) => {
            render(&state, &headers, StatusCode::NOT_FOUND, |p| {
                pages::not_found(p, &verb)
            })
        }
        Err(e) => internal_error(&state, &headers, e),
    }
}

/// Any other path.
pub async fn not_found(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    render(&state, &headers, StatusCode::NOT_FOUND, |p| {
        pages::not_found(p, "")
    })
}
