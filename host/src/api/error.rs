//! The API's one error shape: `{"status": 404, "message": "…"}`.
//!
//! Messages say what was wrong with the request. Failures inside the host
//! (the store, a bug) are logged in full and answered with a generic message:
//! an API client never sees paths, SQL or internal state.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::audit::AuditError;
use crate::respond::RespondError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What to tell the client.
    pub message: String,
    /// Seconds after which to retry (503s).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no valid token.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the token's role may not do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the state does not allow it (any more).
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 503: try again later.
    pub fn unavailable(message: impl Into<String>, retry_after: u32) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 500: logged in full here, answered without detail.
    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{what} failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {what} failed; see the host's log"),
        )
    }
}

/// How long a client should wait before retrying when the store cannot
/// commit (a full disk, an I/O error).
const STORE_RETRY_SECONDS: u32 = 5;

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match &error {
            // Nothing of the request was committed, and the condition may
            // pass (space freed, the disk back): 503 with Retry-After, so
            // Alertmanager keeps the alert and sends it again.
            StoreError::Audit(AuditError::Commit(_)) => {
                tracing::error!(%error, "the store cannot commit; answering 503");
                ApiError::unavailable(
                    "the store cannot record anything right now; nothing of this request was accepted, retry later",
                    STORE_RETRY_SECONDS,
                )
            }
            _ => ApiError::internal("the state store", &error),
        }
    }
}

impl From<RespondError> for ApiError {
    fn from(error: RespondError) -> ApiError {
        match error {
            RespondError::NotApprovable(message) => ApiError::conflict(message),
            RespondError::Unrunnable(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            RespondError::Store(e) => e.into(),
        }
    }
}

/// A JSON response body. Unlike `axum::Json`, strings are written with
/// every bidirectional override, zero-width and control character escaped
/// (see [`crate::text`]): bodies carry alert text, plugin summaries and log
/// lines, and whoever reads them with `curl` sees escapes, never the
/// characters themselves. Clients parsing the JSON get the exact strings.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match crate::text::to_json_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "a response did not serialise");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"status": self.status.as_u16(), "message": self.message}));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"blastwall\""),
            );
        }
        response
    }
}
