//! The HTTP API that Alertmanager, AI agents and operators talk to.
//!
//! [`router`] builds the routes over an [`App`]; serving them (listening,
//! TLS, shutdown) is `crate::serve`'s job, so tests drive the router with
//! `oneshot`. Every route but `/healthz` and `/readyz` needs a bearer token
//! whose role allows it ([`auth`]); every error is `{status, message}`
//! ([`error`]); request bodies are size-limited. The routes and their roles
//! are listed once, in [`ROUTES`], which the OpenAPI document is checked
//! against.

mod alerts;
pub mod auth;
pub mod config;
mod controls;
pub mod error;
mod incidents;
pub mod metrics;
mod proposals;
pub mod queue;
mod read;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use serde::Serialize;

pub use auth::{Caller, Role, Tokens};
pub use config::ApiConfig;
pub use error::ApiError;
pub use metrics::Metrics;
pub use queue::AlertQueue;

use crate::respond::Responder;

/// What a plugin the host knows about looks like to the API.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SHA-256 of its component.
    pub digest: String,
    /// Who signed it: the key id, or `unsigned`.
    pub signer: String,
    /// The signer's tier.
    pub tier: String,
    /// The capabilities its manifest declares.
    pub capabilities: Vec<String>,
    /// `loaded`, or why it was refused.
    pub status: String,
    /// How far to trust the signature: `trust-store`, or `development` for
    /// plugins signed by the host's own local development key.
    pub trust: String,
}

/// Everything the handlers share.
pub struct App {
    /// The loop.
    pub responder: Arc<Responder>,
    /// The alert queue in front of it.
    pub queue: AlertQueue,
    /// Who may call.
    pub tokens: Tokens,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The plugins, loaded or refused.
    pub plugins: Vec<PluginInfo>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// False once shutdown starts (and `/readyz` says so).
    pub ready: AtomicBool,
}

/// The shared state handlers get.
pub type AppState = Arc<App>;

impl App {
    /// Whether the host takes new work.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Every route: method, path (OpenAPI syntax) and the roles that may call it.
/// `None`: no token needed.
pub const ROUTES: &[(&str, &str, Option<&[Role]>)] = &[
    ("POST", "/v1/alerts", Some(auth::ALERT_SOURCES)),
    ("POST", "/v1/proposals", Some(auth::AGENTS)),
    ("POST", "/v1/proposals/component", Some(auth::AGENTS)),
    ("GET", "/v1/incidents", Some(auth::INCIDENT_READERS)),
    ("GET", "/v1/incidents/{id}", Some(auth::INCIDENT_READERS)),
    ("GET", "/v1/approvals", Some(auth::OPERATORS)),
    ("POST", "/v1/approvals/{id}/approve", Some(auth::OPERATORS)),
    ("POST", "/v1/approvals/{id}/deny", Some(auth::OPERATORS)),
    ("GET", "/v1/killswitch", Some(auth::OPERATORS)),
    ("PUT", "/v1/killswitch", Some(auth::OPERATORS)),
    ("DELETE", "/v1/killswitch", Some(auth::OPERATORS)),
    ("GET", "/v1/windows", Some(auth::OPERATORS)),
    ("POST", "/v1/windows", Some(auth::OPERATORS)),
    ("DELETE", "/v1/windows/{name}", Some(auth::OPERATORS)),
    ("GET", "/v1/plugins", Some(auth::OPERATORS)),
    ("GET", "/v1/audit", Some(auth::OPERATORS)),
    ("GET", "/v1/audit/verify", Some(auth::OPERATORS)),
    ("GET", "/metrics", Some(auth::OPERATORS)),
    ("GET", "/openapi.json", Some(auth::ANY)),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
];

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The API's routes over `app`.
pub fn router(app: AppState) -> Router {
    let limit = app.max_body_bytes;
    Router::new()
        .route("/v1/alerts", post(alerts::post))
        .route("/v1/proposals", post(proposals::plan))
        .route("/v1/proposals/component", post(proposals::component))
        .route("/v1/incidents", get(incidents::list))
        .route("/v1/incidents/{id}", get(incidents::one))
        .route("/v1/approvals", get(incidents::approvals))
        .route("/v1/approvals/{id}/approve", post(controls::approve))
        .route("/v1/approvals/{id}/deny", post(controls::deny))
        .route(
            "/v1/killswitch",
            get(controls::kill_switches)
                .put(controls::set_kill_switch)
                .delete(controls::clear_kill_switch),
        )
        .route(
            "/v1/windows",
            get(controls::windows).post(controls::add_window),
        )
        .route("/v1/windows/{name}", delete(controls::delete_window))
        .route("/v1/plugins", get(read::plugins))
        .route("/v1/audit", get(read::audit))
        .route("/v1/audit/verify", get(read::verify))
        .route("/metrics", get(read::metrics))
        .route("/openapi.json", get(read::openapi))
        .route("/healthz", get(read::healthz))
        .route("/readyz", get(read::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint; see /openapi.json",
    )
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            app.metrics.rejected("unauthorized");
            return Err(ApiError::unauthorized(
                "missing bearer token (Authorization: Bearer …)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match token.and_then(|t| app.tokens.identify(t)) {
            Some(caller) => Ok(caller),
            None => {
                app.metrics.rejected("unauthorized");
                Err(ApiError::unauthorized("invalid bearer token"))
            }
        }
    }
}

/// Parses a JSON request body into `T`, as a 400 naming the problem.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

/// Turns axum's body rejections (too large, unreadable) into our error shape.
pub(crate) fn body(
    bytes: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, ApiError> {
    bytes.map_err(|e| ApiError::new(e.status(), e.body_text()))
}

/// Turns a query string rejection into our error shape.
pub(crate) fn query<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

#[cfg(test)]
mod tests;
