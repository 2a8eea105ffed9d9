//! Read-only endpoints: plugins, the audit chain, metrics, the API
//! description and health.

use super::error::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::{page_size, timeline_entry};
use super::{ApiError, AppState, Caller, OPENAPI, auth, query};
use crate::audit::AuditError;

pub(super) async fn plugins(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::OPERATORS)?;
    Ok(Json(json!({"plugins": app.plugins})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    /// Records after this sequence number (default 0: from the start).
    after: Option<u64>,
    /// At most this many (1 to 1000, default 100).
    limit: Option<u32>,
}

pub(super) async fn audit(
    State(app): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::OPERATORS)?;
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let records = app
        .responder
        .store()
        .audit()
        .records(params.after.unwrap_or(0), limit)
        .await
        .map_err(|e| ApiError::internal("reading the audit chain", &e))?;
    let next = (records.len() as u32 == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let records: Vec<Value> = records.iter().map(timeline_entry).collect();
    Ok(Json(json!({"records": records, "next": next})))
}

pub(super) async fn verify(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(auth::OPERATORS)?;
    match app.responder.store().audit().verify().await {
        Ok(verified) => Ok((
            StatusCode::OK,
            Json(
                json!({"valid": true, "records": verified.records, "head_hash": verified.head_hash}),
            ),
        )),
        // A broken chain is the answer, not a failure of the request: say
        // which record breaks it.
        Err(AuditError::Tampered(broken)) => Ok((
            StatusCode::OK,
            Json(json!({"valid": false, "problem": broken.to_string()})),
        )),
        Err(other) => Err(ApiError::internal("verifying the audit chain", &other)),
    }
}

pub(super) async fn metrics(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(auth::OPERATORS)?;
    app.metrics.load(app.queue.depth(), app.queue.in_flight());
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    ))
}

pub(super) async fn openapi(caller: Caller) -> Result<impl IntoResponse, ApiError> {
    caller.require(auth::ANY)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], OPENAPI))
}

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(super) async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut problems = Vec::new();
    if !app.is_ready() {
        problems.push("shutting down".to_string());
    }
    if !app.queue.has_room() {
        problems.push("the alert queue is full".to_string());
    }
    if let Err(e) = app.responder.store().controls().await {
        tracing::error!(error = %e, "readiness: the state store failed");
        problems.push("the state store is unavailable".to_string());
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": 503, "message": problems.join("; ")})),
        )
    }
}
