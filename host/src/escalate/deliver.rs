//! One notifier, validated, and the retrying delivery of one payload to it.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, StatusCode, Url};

use super::payload::{one_line, pagerduty_payload, slack_payload, webhook_payload};
use super::{Delivery, EscalateError, Escalation, NotifierConfig, RetryPolicy};

/// Headers blastwall sets itself or that frame the request; configuration may not set them.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
];
/// Bytes of a refusing server's answer quoted in the delivery error.
const ANSWER_SNIPPET_BYTES: usize = 200;
/// Secrets shorter than this are not scrubbed from messages: replacing every `1`
/// would garble them, and such a value protects nothing.
const MIN_SCRUBBED_SECRET: usize = 4;

/// A validated notifier, ready to send.
pub(super) struct Notifier {
    pub(super) name: String,
    pub(super) kind: &'static str,
    url: Url,
    target: Target,
    /// Strings that must never appear in an error or a log line, longest first.
    secrets: Vec<String>,
}

enum Target {
    Webhook { headers: HeaderMap },
    Slack,
    Pagerduty { routing_key: String },
}

impl Notifier {
    /// Validates one configured notifier; `index` counts from 1 and names an unnamed notifier.
    pub(super) fn new(index: usize, config: &NotifierConfig) -> Result<Self, EscalateError> {
        let name = config.name();
        if name.trim().is_empty() {
            return Err(EscalateError::EmptyName { index });
        }
        let notifier = || name.to_string();
        let url = Url::parse(config.url()).map_err(|e| EscalateError::InvalidUrl {
            notifier: notifier(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EscalateError::UrlScheme {
                notifier: notifier(),
                scheme: url.scheme().to_string(),
            });
        }
        let mut secrets = vec![config.url().to_string(), url.as_str().to_string()];
        secrets.extend(url.password().map(str::to_string));
        secrets.push(url.path().to_string());
        secrets.extend(url.query().map(str::to_string));
        let target = match config {
            NotifierConfig::Webhook { headers, .. } => {
                let mut map = HeaderMap::new();
                for (key, value) in headers {
                    let problem = |problem| EscalateError::Header {
                        notifier: notifier(),
                        header: key.clone(),
                        problem,
                    };
                    let header = HeaderName::from_bytes(key.as_bytes())
                        .map_err(|_| problem("is not a valid header name"))?;
                    if RESERVED_HEADERS.contains(&header.as_str()) {
                        return Err(problem("cannot be set: blastwall sets it"));
                    }
                    // The value is not quoted in the error: header values are secrets.
                    let mut header_value = HeaderValue::from_str(value)
                        .map_err(|_| problem("has a value that is not valid in a header"))?;
                    header_value.set_sensitive(true);
                    if map.insert(header, header_value).is_some() {
                        return Err(problem("is set twice (header names ignore case)"));
                    }
                    secrets.push(value.clone());
                }
                Target::Webhook { headers: map }
            }
            NotifierConfig::Slack { .. } => Target::Slack,
            NotifierConfig::Pagerduty { routing_key, .. } => {
                if routing_key.trim().is_empty() {
                    return Err(EscalateError::EmptyRoutingKey {
                        notifier: notifier(),
                    });
                }
                secrets.push(routing_key.clone());
                Target::Pagerduty {
                    routing_key: routing_key.clone(),
                }
            }
        };
        secrets.retain(|s| s.len() >= MIN_SCRUBBED_SECRET);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Ok(Notifier {
            name: name.to_string(),
            kind: config.kind(),
            url,
            target,
            secrets,
        })
    }

    /// The request body for this notifier's kind.
    pub(super) fn body(&self, escalation: &Escalation) -> Vec<u8> {
        let payload = match &self.target {
            Target::Webhook { .. } => webhook_payload(escalation),
            Target::Slack => slack_payload(escalation),
            Target::Pagerduty { routing_key } => pagerduty_payload(escalation, routing_key),
        };
        crate::text::to_json_vec(&payload).unwrap_or_default()
    }

    /// Replaces every secret in `message` and bounds it, so it may be logged and reported.
    fn scrub(&self, message: &str) -> String {
        let mut message = message.to_string();
        for secret in &self.secrets {
            message = message.replace(secret.as_str(), "<redacted>");
        }
        one_line(&message, 300)
    }
}

/// How one attempt ended.
enum Attempt {
    Delivered(StatusCode),
    Failed {
        status: Option<StatusCode>,
        error: String,
        retry: bool,
    },
}

/// Sends `body` to `notifier`, retrying connection errors, timeouts, 429 and
/// 5xx with capped exponential backoff. Never fails: the delivery says what happened.
pub(super) async fn deliver(
    client: &Client,
    notifier: &Notifier,
    retry: &RetryPolicy,
    body: Vec<u8>,
) -> Delivery {
    let mut backoff = retry.initial_backoff;
    let mut attempts = 0;
    let (status, error) = loop {
        attempts += 1;
        match attempt(client, notifier, retry.timeout, body.clone()).await {
            Attempt::Delivered(status) => {
                tracing::debug!(
                    notifier = %notifier.name,
                    kind = notifier.kind,
                    attempts,
                    "escalation delivered"
                );
                return Delivery {
                    notifier: notifier.name.clone(),
                    kind: notifier.kind,
                    delivered: true,
                    attempts,
                    status: Some(status.as_u16()),
                    error: None,
                };
            }
            Attempt::Failed {
                status,
                error,
                retry: retryable,
            } => {
                if !retryable || attempts >= retry.attempts {
                    break (status, notifier.scrub(&error));
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(retry.max_backoff);
    };
    let status = status.map(|s| s.as_u16());
    tracing::warn!(
        notifier = %notifier.name,
        kind = notifier.kind,
        attempts,
        status,
        error = %error,
        "escalation not delivered"
    );
    Delivery {
        notifier: notifier.name.clone(),
        kind: notifier.kind,
        delivered: false,
        attempts,
        status,
        error: Some(error),
    }
}

async fn attempt(
    client: &Client,
    notifier: &Notifier,
    timeout: Duration,
    body: Vec<u8>,
) -> Attempt {
    let mut request = client.post(notifier.url.clone());
    if let Target::Webhook { headers } = &notifier.target {
        request = request.headers(headers.clone());
    }
    let sent = request
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            return Attempt::Failed {
                status: None,
                retry: !error.is_builder(),
                error: describe(error, timeout),
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Delivered(status);
    }
    let mut error = format!("server answered {status}");
    if status.is_redirection() {
        error.push_str(" (redirects are not followed)");
    }
    // A few bytes of the answer name the problem (`invalid_token`, `no_service`).
    let mut answer = Vec::new();
    while answer.len() < ANSWER_SNIPPET_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            _ => break,
        }
    }
    answer.truncate(ANSWER_SNIPPET_BYTES);
    let answer = String::from_utf8_lossy(&answer);
    if !answer.trim().is_empty() {
        error = format!("{error}: {}", answer.trim());
    }
    Attempt::Failed {
        status: Some(status),
        error,
        retry: status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
    }
}

/// Describes a failed request without its URL (which may carry a token).
fn describe(error: reqwest::Error, timeout: Duration) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        return format!("timed out after {}", humantime::format_duration(timeout));
    }
    let mut root: &dyn std::error::Error = &error;
    while let Some(source) = root.source() {
        root = source;
    }
    if error.is_connect() {
        format!("connection failed: {root}")
    } else {
        format!("request failed: {root}")
    }
}
