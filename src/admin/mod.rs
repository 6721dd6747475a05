//! The admin HTTP server: the JSON API (`/api/v1`), health and readiness, Prometheus metrics and
//! the web console, on the daemon's own runtime.
//!
//! - [`read`] holds the queries the API and the console share.
//! - [`api`] answers JSON; [`web`] serves the console's pages and forms, rendered by [`pages`]
//!   with [`charts`] and [`i18n`].
//! - [`auth`] decides who may read and who may act; [`client`] is the CLI's side of the API.
//!
//! Writes go through [`crate::incident::Incidents`], the same transitions the chat commands use,
//! so every surface shares one authorization check and one audit trail.

pub mod api;
pub mod auth;
pub mod bench;
pub mod charts;
pub mod client;
pub mod i18n;
pub mod pages;
pub mod read;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};

use crate::config::SourceConfig;
use crate::incident::{By, Incidents, Outcome};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// What `/readyz` checks: each part sets its flag when it is up.
#[derive(Clone, Default)]
pub struct Readiness {
    pub store_open: Arc<AtomicBool>,
    pub analyzer_built: Arc<AtomicBool>,
    pub pollers_running: Arc<AtomicBool>,
}

impl Readiness {
    pub fn snapshot(&self) -> BTreeMap<&'static str, bool> {
        BTreeMap::from([
            ("store_open", self.store_open.load(Ordering::Relaxed)),
            (
                "analyzer_built",
                self.analyzer_built.load(Ordering::Relaxed),
            ),
            (
                "pollers_running",
                self.pollers_running.load(Ordering::Relaxed),
            ),
        ])
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub incidents: Incidents,
    pub auth: auth::Auth,
    pub brands: Arc<Vec<String>>,
    pub sources: Arc<Vec<SourceConfig>>,
    /// Where people reach the console, for links.
    pub public_url: String,
    pub readiness: Readiness,
    pub metrics: crate::metrics::Metrics,
    /// The console's language when the browser states no preference.
    pub default_lang: i18n::Lang,
    /// "Now", injected so tests can fix the day the daily figures end on.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl AdminState {
    /// Runs a transition by the name the API and the console use.
    pub async fn apply(
        &self,
        id: u64,
        verb: &str,
        by: By<'_>,
        note: Option<&str>,
    ) -> Result<api::TransitionResult> {
        let now = (self.clock)();
        let outcome = match verb {
            "ack" => self.incidents.acknowledge(id, by, now).await?,
            "resolve" => self.incidents.resolve(id, by, note, now).await?,
            "reopen" => self.incidents.reopen(id, by, note, now).await?,
            other => return Ok(api::TransitionResult::UnknownVerb(other.to_string())),
        };
        Ok(api::TransitionResult::Done(Box::new(outcome)))
    }
}

/// One sentence for people on what a transition did.
pub fn outcome_message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Changed(i) => {
            let who = i
                .history
                .last()
                .and_then(|t| t.by.as_ref())
                .map_or("someone", |a| a.name.as_str());
            let what = match i.state {
                crate::store::IncidentState::Acknowledged => "acknowledged",
                crate::store::IncidentState::Resolved => "resolved",
                crate::store::IncidentState::Triggered => "triggered",
            };
            format!("incident #{} ({}) {what} by {who}", i.id, i.brand)
        }
        Outcome::Unchanged { incident, reason } | Outcome::Conflict { incident, reason } => {
            format!("incident #{} is {reason}", incident.id)
        }
        Outcome::NotFound(id) => format!("no incident #{id}"),
    }
}

/// The routes, without a listener: tests and the daemon share it.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/api/v1/incidents", get(api::list_incidents))
        .route("/api/v1/incidents/{id}", get(api::get_incident))
        // A static segment wins over `{verb}`; POSTing it gets the JSON answer of any unknown
        // transition rather than a bare 405.
        .route(
            "/api/v1/incidents/{id}/report",
            get(api::incident_report).post(api::report_is_not_a_transition),
        )
        .route("/api/v1/incidents/{id}/{verb}", post(api::transition))
        .route("/api/v1/hits", get(api::list_hits))
        .route("/api/v1/notices", get(api::list_notices))
        .route("/api/v1/hits/{id}/feedback", post(api::hit_feedback))
        .route("/api/v1/sources", get(api::list_sources))
        .route("/api/v1/brands/{brand}/daily", get(api::brand_daily))
        .route("/api/v1/digest", get(api::digest))
        .route(
            "/api/v1/silences",
            get(api::list_silences).post(api::create_silence),
        )
        .route("/api/v1/silences/{id}/expire", post(api::expire_silence))
        .route(
            "/api/{*rest}",
            get(api::no_such_endpoint).post(api::no_such_endpoint),
        )
        .route("/", get(web::overview))
        .route("/incidents/{id}", get(web::incident))
        .route("/incidents/{id}/report", get(web::report))
        .route("/incidents/{id}/{verb}", post(web::act))
        .route("/hits", get(web::hits))
        .route("/sources", get(web::sources))
        .route("/login", get(web::login_page).post(web::login))
        .route("/logout", post(web::logout))
        .fallback(web::not_found)
        .with_state(state)
}

/// Binds the admin address. Done before anything else starts, so a taken port stops the
/// daemon at once with a message that names the address and the setting.
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} for the admin server (admin.listen in sources.toml; is another yuqing running?)")
    })
}

/// Serves until `shutdown` fires, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    mut shutdown: Shutdown,
) -> Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
        .context("the admin server failed")
}
