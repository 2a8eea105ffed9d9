//! `POST /v1/proposals` and `POST /v1/proposals/component`: AI agents'
//! proposals. The bearer token says the caller may propose at all; the
//! Ed25519 signature of an `ai-agent` key over the exact body says which
//! agent, and fresh, unspent nonces make each proposal count once (see
//! `crate::proposal`). Whatever the proposal asks for runs through the same
//! decision, sandbox, grants and audit as any plugin.

use super::error::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Caller, auth, body, query};
use crate::proposal::{HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, Headers};
use crate::respond::ProposeError;

impl From<ProposeError> for ApiError {
    fn from(error: ProposeError) -> ApiError {
        match error.status() {
            500 => ApiError::internal("handling a proposal", &error),
            status => ApiError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                error.to_string(),
            ),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(format!("header {name} is not ASCII")))
        })
        .transpose()
}

pub(super) async fn plan(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let arrived = std::time::Instant::now();
    caller.require(auth::AGENTS)?;
    let bytes = body(bytes)?;
    let envelope = Headers {
        key: header(&headers, HEADER_KEY)?,
        timestamp: header(&headers, HEADER_TIMESTAMP)?,
        nonce: header(&headers, HEADER_NONCE)?,
        signature: header(&headers, HEADER_SIGNATURE)?,
    };
    let handled = app.responder.propose_signed(&bytes, &envelope).await?;
    app.metrics.handled(&handled, arrived);
    Ok(Json(json!(handled)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ComponentQuery {
    /// The incident the component is proposed for.
    incident: String,
}

pub(super) async fn component(
    State(app): State<AppState>,
    caller: Caller,
    params: Result<Query<ComponentQuery>, QueryRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let arrived = std::time::Instant::now();
    caller.require(auth::AGENTS)?;
    let params = query(params)?;
    let bytes = body(bytes)?;
    let handled = app
        .responder
        .propose_component(&params.incident, &bytes)
        .await?;
    app.metrics.handled(&handled, arrived);
    Ok(Json(json!(handled)))
}
