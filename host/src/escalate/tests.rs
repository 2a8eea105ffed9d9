//! Escalation tests against real local HTTP receivers.

mod config;
mod delivery;
mod payloads;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;

/// How a receiver answers one request.
#[derive(Clone)]
enum Reply {
    /// Answers with this status and a short body.
    Status(u16),
    /// Waits, then answers 200.
    After(Duration),
    /// Answers 302 to this location.
    Redirect(String),
    /// Answers this status with the request's path, header values and body echoed back.
    Echo(u16),
}

/// One request a receiver saw.
#[derive(Clone)]
struct Captured {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl Captured {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

struct ReceiverState {
    script: Vec<Reply>,
    seen: Mutex<Vec<Captured>>,
}

/// A local HTTP server on `127.0.0.1:0` that records every request and answers
/// by `script`: the n-th request gets the n-th reply, later ones the last.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(script: Vec<Reply>) -> Receiver {
        assert!(!script.is_empty());
        let state = Arc::new(ReceiverState {
            script,
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, state }
    }

    async fn ok() -> Receiver {
        Receiver::start(vec![Reply::Status(200)]).await
    }

    fn requests(&self) -> Vec<Captured> {
        self.state.seen.lock().unwrap().clone()
    }

    fn only_request(&self) -> Captured {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().unwrap()
    }
}

async fn answer(
    State(state): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Captured {
            at: Instant::now(),
            headers: headers.clone(),
            body: body.clone(),
        });
        seen.len() - 1
    };
    let reply = state.script[index.min(state.script.len() - 1)].clone();
    match reply {
        Reply::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            (status, format!("answer {}", index + 1)).into_response()
        }
        Reply::After(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK.into_response()
        }
        Reply::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Reply::Echo(code) => {
            let mut echo = format!("{uri} ").into_bytes();
            for value in headers.values() {
                echo.extend_from_slice(value.as_bytes());
                echo.push(b' ');
            }
            echo.extend_from_slice(&body);
            (StatusCode::from_u16(code).unwrap(), echo).into_response()
        }
    }
}

/// A URL on which nothing listens: the port was bound, then released.
async fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/hook")
}

/// Small backoffs so retries cost milliseconds.
fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        timeout: Duration::from_secs(5),
    }
}

fn escalator(notifiers: Vec<NotifierConfig>, retry: RetryPolicy) -> Escalator {
    Escalator::new(&EscalationConfig { notifiers, retry }).expect("valid configuration")
}

fn webhook(name: &str, url: &str) -> NotifierConfig {
    NotifierConfig::Webhook {
        name: name.into(),
        url: url.into(),
        headers: Default::default(),
    }
}

fn slack(name: &str, url: &str) -> NotifierConfig {
    NotifierConfig::Slack {
        name: name.into(),
        url: url.into(),
    }
}

fn pagerduty(name: &str, url: &str, routing_key: &str) -> NotifierConfig {
    NotifierConfig::Pagerduty {
        name: name.into(),
        url: url.into(),
        routing_key: routing_key.into(),
    }
}

fn alert_json() -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": "KubePodOOMKilled", "namespace": "prod", "deployment": "checkout"},
        "annotations": {"summary": "checkout was OOM killed"},
        "startsAt": "2026-11-23T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "a1b2c3"
    })
}

fn run_json() -> Value {
    json!({
        "outcome": {"kind": "plugin-error", "error": "failed", "message": "no ready replica"},
        "effects": [],
        "denials": [{"function": "scale.set-replicas", "target": "deployment/prod/checkout", "reason": "above max 20"}]
    })
}

fn sample() -> Escalation {
    Escalation {
        incident: "inc-4f2a9c".into(),
        alert: serde_json::from_value(alert_json()).unwrap(),
        target: "deployment/prod/checkout".into(),
        class: "oom-killed".into(),
        confidence: 0.87,
        decision: "run-failed".into(),
        reason: "the plugin found no ready replica to restart safely".into(),
        run: Some(run_json()),
        severity: Severity::Critical,
    }
}
