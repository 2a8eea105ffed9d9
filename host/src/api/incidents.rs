//! Reading incidents, their timelines, and approval requests.

use super::error::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Caller, auth, query};
use crate::audit::Record;
use crate::store::{IncidentQuery, IncidentState};

/// The most incidents or records one page holds.
pub(super) const MAX_PAGE: u32 = 1000;
/// A page's size when the client does not say.
pub(super) const DEFAULT_PAGE: u32 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only incidents in this state.
    state: Option<String>,
    /// At most this many (1 to 1000, default 100).
    limit: Option<u32>,
    /// Where the previous page ended: its `next` cursor.
    before: Option<String>,
}

pub(super) fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "limit {n} is out of range: 1 to {MAX_PAGE}"
        ))),
    }
}

pub(super) async fn list(
    State(app): State<AppState>,
    caller: Caller,
    params: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::INCIDENT_READERS)?;
    let params = query(params)?;
    let state = params
        .state
        .as_deref()
        .map(|s| {
            IncidentState::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("unknown incident state {s:?}")))
        })
        .transpose()?;
    let limit = page_size(params.limit)?;
    let (updated_before, after_id) = match params.before.as_deref().map(cursor).transpose()? {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = app
        .responder
        .store()
        .incidents(&IncidentQuery {
            state,
            updated_before,
            after_id,
            unresolved: false,
            limit,
        })
        .await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|r| format!("{}:{}", r.updated_at, r.id)))
        .flatten();
    Ok(Json(json!({"incidents": rows, "next": next})))
}

pub(super) async fn one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::INCIDENT_READERS)?;
    let store = app.responder.store();
    let Some(row) = store.incident(&id).await? else {
        return Err(ApiError::not_found(format!("no incident {id}")));
    };
    let records = store
        .audit()
        .incident(&id)
        .await
        .map_err(|e| ApiError::internal("reading the audit chain", &e))?;
    let timeline: Vec<Value> = records.iter().map(timeline_entry).collect();
    Ok(Json(json!({"incident": row, "timeline": timeline})))
}

/// A page cursor, `UPDATED_AT:ID` (as `next` gives it).
fn cursor(raw: &str) -> Result<(i64, String), ApiError> {
    raw.split_once(':')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "before {raw:?} is not a cursor: pass the previous page's next"
            ))
        })
}

/// One audit record as a timeline entry: its body as JSON, not text.
pub(super) fn timeline_entry(record: &Record) -> Value {
    let body: Value =
        serde_json::from_str(&record.body).unwrap_or(Value::String(record.body.clone()));
    json!({
        "seq": record.seq,
        "at": record.at,
        "kind": record.kind,
        "incident": record.incident,
        "body": body,
        "hash": record.hash,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalQuery {
    /// Only approvals in this state: `pending`, `approved` or `denied`.
    state: Option<String>,
}

pub(super) async fn approvals(
    State(app): State<AppState>,
    caller: Caller,
    params: Result<Query<ApprovalQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::OPERATORS)?;
    let params = query(params)?;
    if let Some(state) = &params.state
        && !["pending", "approved", "denied"].contains(&state.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "unknown approval state {state:?}: pending, approved or denied"
        )));
    }
    let approvals: Vec<_> = app
        .responder
        .store()
        .approvals()
        .await?
        .into_iter()
        .filter(|a| params.state.as_ref().is_none_or(|s| &a.state == s))
        .collect();
    Ok(Json(json!({"approvals": approvals})))
}
