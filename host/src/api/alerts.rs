//! `POST /v1/alerts`: the Alertmanager webhook (payload version 4).
//!
//! Answers 202 once every alert of the payload is on the record (durably),
//! well inside Alertmanager's timeout; the loop then decides on each from
//! the queue. The same alert delivered twice (Alertmanager HA does this) is
//! one incident. When the queue has no room the answer is 503 with
//! `Retry-After`, before anything is admitted.

use std::time::Instant;

use super::error::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::queue::{QueueRefusal, Queued};
use super::{ApiError, AppState, Caller, auth, body};
use crate::alert;
use crate::respond::Admitted;

/// Seconds Alertmanager is asked to wait before retrying a full queue.
const RETRY_AFTER_SECONDS: u32 = 5;

pub(super) async fn post(
    State(app): State<AppState>,
    caller: Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let arrived = Instant::now();
    caller.require(auth::ALERT_SOURCES)?;
    let bytes = body(bytes)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the alert payload is not UTF-8"))?;
    let alerts = alert::parse_all(text).map_err(|e| {
        app.metrics.rejected("invalid");
        ApiError::bad_request(e.to_string())
    })?;
    if !app.is_ready() {
        return Err(ApiError::unavailable(
            "the host is shutting down",
            RETRY_AFTER_SECONDS,
        ));
    }
    let firing = alerts.iter().filter(|a| a.status != "resolved").count();
    let sender = app
        .queue
        .sender()
        .map_err(|_| ApiError::unavailable("the host is shutting down", RETRY_AFTER_SECONDS))?;
    // Room first, so a full queue admits nothing and Alertmanager's retry
    // delivers the whole payload again.
    let mut permits = sender.try_reserve_many(firing).map_err(|_| {
        app.metrics.rejected("queue-full");
        refusal(QueueRefusal::Full)
    })?;
    for alert in &alerts {
        app.metrics.alert_received(&alert.status);
    }
    let admitted = app.responder.admit(alerts).await?;
    let mut incidents = Vec::with_capacity(admitted.len());
    for admitted in admitted {
        match admitted {
            Admitted::Resolved(handled) => {
                app.metrics.handled(&handled, arrived);
                incidents.push(json!({"incident": handled.incident, "status": "resolved"}));
            }
            Admitted::Firing(admission) => {
                let id = admission.id.clone();
                let permit = permits
                    .next()
                    .expect("one permit reserved per firing alert");
                let queued = app.queue.send(permit, Queued { admission, arrived });
                let status = if queued { "queued" } else { "in-progress" };
                incidents.push(json!({"incident": id, "status": status}));
            }
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": incidents.len(), "incidents": incidents})),
    ))
}

fn refusal(refusal: QueueRefusal) -> ApiError {
    match refusal {
        QueueRefusal::Full => {
            ApiError::unavailable("the alert queue is full; retry later", RETRY_AFTER_SECONDS)
        }
        QueueRefusal::Closing => {
            ApiError::unavailable("the host is shutting down", RETRY_AFTER_SECONDS)
        }
    }
}
