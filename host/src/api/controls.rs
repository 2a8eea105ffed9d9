//! What operators steer: approvals, kill switches, windows. Every change is
//! made through the audited operations, in the caller's name.

use super::error::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Caller, auth, body, json_body, query};
use crate::guardrails::WindowSpec;
use crate::policy::TargetPattern;
use crate::respond::operate::{self, OperateError};

impl From<OperateError> for ApiError {
    fn from(error: OperateError) -> ApiError {
        match error {
            OperateError::Invalid(message) => ApiError::bad_request(message),
            OperateError::Store(e) => e.into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    /// Why (required to deny, optional to approve).
    reason: Option<String>,
}

/// An optional JSON body: empty means the default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(bytes)
}

pub(super) async fn approve(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // An ai-agent can never approve anything, its own proposals included.
    caller.require(auth::OPERATORS)?;
    let _: Decision = optional_body(&body(bytes)?)?;
    let handled = app.responder.approve(&id, &caller.audit_name()).await?;
    Ok(Json(json!(handled)))
}

pub(super) async fn deny(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::OPERATORS)?;
    let decision: Decision = optional_body(&body(bytes)?)?;
    let reason = decision
        .reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("denying needs a reason: {\"reason\": \"…\"}"))?;
    if reason.len() > 512 {
        return Err(ApiError::bad_request(
            "the reason must be at most 512 characters",
        ));
    }
    let approval = app
        .responder
        .deny(&id, &caller.audit_name(), &reason)
        .await?;
    Ok(Json(json!(approval)))
}

fn scope(raw: Option<&str>) -> Result<Option<TargetPattern>, ApiError> {
    raw.map(|s| {
        s.parse::<TargetPattern>()
            .map_err(|e| ApiError::bad_request(format!("scope {s:?}: {e}")))
    })
    .transpose()
}

pub(super) async fn kill_switches(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::OPERATORS)?;
    let controls = app.responder.store().controls().await?;
    Ok(Json(json!({
        "kill_switches": controls.kill_switches,
        "storm_frozen_until": controls.storm_frozen_until,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetKillSwitch {
    /// The targets it covers (`kind/namespace/name` pattern); every target when absent.
    scope: Option<String>,
    /// Why.
    reason: String,
}

pub(super) async fn set_kill_switch(
    State(app): State<AppState>,
    caller: Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::OPERATORS)?;
    let request: SetKillSwitch = json_body(&body(bytes)?)?;
    let scope = scope(request.scope.as_deref())?;
    let switch = operate::set_kill_switch(
        app.responder.store().as_ref(),
        scope,
        &request.reason,
        &caller.audit_name(),
    )
    .await?;
    Ok(Json(json!(switch)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClearQuery {
    /// The switch's scope; the global switch when absent.
    scope: Option<String>,
}

pub(super) async fn clear_kill_switch(
    State(app): State<AppState>,
    caller: Caller,
    params: Result<Query<ClearQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require(auth::OPERATORS)?;
    let params = query(params)?;
    let scope = scope(params.scope.as_deref())?;
    let described = scope
        .as_ref()
        .map_or("global kill switch".to_string(), |s| {
            format!("kill switch on {s}")
        });
    let cleared =
        operate::clear_kill_switch(app.responder.store().as_ref(), scope, &caller.audit_name())
            .await?;
    if cleared {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("there is no {described}")))
    }
}

pub(super) async fn windows(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(auth::OPERATORS)?;
    let controls = app.responder.store().controls().await?;
    Ok(Json(json!({"windows": controls.windows})))
}

pub(super) async fn add_window(
    State(app): State<AppState>,
    caller: Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(auth::OPERATORS)?;
    let spec: WindowSpec = json_body(&body(bytes)?)?;
    operate::add_window(
        app.responder.store().as_ref(),
        spec.clone(),
        &caller.audit_name(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(spec))))
}

pub(super) async fn delete_window(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(auth::OPERATORS)?;
    if operate::delete_window(app.responder.store().as_ref(), &name, &caller.audit_name()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no window named {name:?}")))
    }
}
