//! Escalation: telling a human, with the full context, when automation stops.
//!
//! Automation stops for many reasons: an unknown failure class, a guardrail
//! that refused, a run that failed or was interrupted, a verification that
//! failed, or a policy that only notifies. Each becomes an [`Escalation`], and
//! the [`Escalator`] sends it to every configured notifier (generic webhook,
//! Slack, PagerDuty) concurrently, retrying transient failures.
//!
//! Threat model:
//! - Alert text is untrusted and flows into messages read by humans. Labels and
//!   annotations are written by whoever controls alert rules or exporters, so
//!   Slack messages escape and bound every untrusted string (no `<!channel>`,
//!   no disguised links, no walls of text) and PagerDuty fields are bounded;
//!   see [`slack_payload`] and [`pagerduty_payload`].
//! - Notifier URLs, header values and routing keys are secrets (a Slack webhook
//!   URL is its own credential). They never appear in [`Delivery::error`], in
//!   logs or in `Debug` output; errors from the server are scrubbed of them.
//! - A notifier endpoint is not trusted to decide where the escalation goes:
//!   redirects are not followed, and only http and https URLs are accepted.

mod config;
mod deliver;
mod payload;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::alert::Alert;
use deliver::{Notifier, deliver};

pub use config::{
    EscalationConfig, MAX_ATTEMPTS, MAX_WAIT, NotifierConfig, PAGERDUTY_EVENTS_URL, RetryPolicy,
};
pub use payload::{
    PAGERDUTY_MAX_DETAILS_BYTES, PAGERDUTY_MAX_FIELD, PAGERDUTY_MAX_SUMMARY, SLACK_MAX_TEXT,
    one_line, pagerduty_payload, run_summary, slack_payload, slack_text, summary_line,
    webhook_payload,
};

/// How urgently a human must look, in PagerDuty's four levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Production is hurting and automation could not help.
    Critical,
    /// Something failed and needs a human soon.
    Error,
    /// Worth a look; nothing is known to be broken by the stop.
    Warning,
    /// For the record, e.g. notify-only mode.
    Info,
}

impl Severity {
    /// The lowercase name used in payloads, e.g. `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Everything a human needs to take over from automation.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    /// The incident id, stable across redeliveries of one alert.
    pub incident: String,
    /// The alert that opened the incident (untrusted text).
    pub alert: Alert,
    /// The workload, `kind/namespace/name`.
    pub target: String,
    /// The failure class, or `unknown`.
    pub class: String,
    /// Classification confidence, 0.0 to 1.0 (serialised to four decimals).
    #[serde(serialize_with = "four_decimals")]
    pub confidence: f32,
    /// What automation decided: `escalate`, `notify`, `await-approval`,
    /// `interrupted`, `verification-failed`, `run-failed`, ...
    pub decision: String,
    /// Why automation stopped, in one sentence.
    pub reason: String,
    /// What ran (outcome, effects, denials), if anything ran.
    pub run: Option<serde_json::Value>,
    /// How urgently a human must look.
    pub severity: Severity,
}

/// An `f32` like 0.87 would otherwise serialise as 0.8700000047683716.
fn four_decimals<S: serde::Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((f64::from(*value) * 10_000.0).round() / 10_000.0)
}

/// What happened when one notifier was told about one escalation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// The notifier's configured name.
    pub notifier: String,
    /// `webhook`, `slack` or `pagerduty`.
    pub kind: &'static str,
    /// Whether the notifier accepted the escalation (answered 2xx).
    pub delivered: bool,
    /// Attempts made, including the first.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if the server answered.
    pub status: Option<u16>,
    /// Why the last attempt failed, free of secrets; `None` when delivered.
    pub error: Option<String>,
}

/// Why an escalation configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscalateError {
    /// A notifier without a name could not be told apart in logs and results.
    #[error("notifier #{index} has an empty name")]
    EmptyName {
        /// The notifier's position in the configuration, counting from 1.
        index: usize,
    },
    /// Two notifiers share a name.
    #[error("notifier name {name:?} is used more than once; names must be unique")]
    DuplicateName {
        /// The shared name.
        name: String,
    },
    /// The URL does not parse.
    #[error("notifier {notifier:?}: url is not valid: {reason}")]
    InvalidUrl {
        /// The notifier's name.
        notifier: String,
        /// What the parser said (the URL itself is a secret and not repeated).
        reason: String,
    },
    /// The URL is not http or https.
    #[error("notifier {notifier:?}: url scheme {scheme:?} is not allowed; use http or https")]
    UrlScheme {
        /// The notifier's name.
        notifier: String,
        /// The refused scheme.
        scheme: String,
    },
    /// A PagerDuty notifier has no routing key.
    #[error("notifier {notifier:?}: routing-key is empty")]
    EmptyRoutingKey {
        /// The notifier's name.
        notifier: String,
    },
    /// A webhook header cannot be sent.
    #[error("notifier {notifier:?}: header {header:?} {problem}")]
    Header {
        /// The notifier's name.
        notifier: String,
        /// The header's name as configured.
        header: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The retry policy is out of bounds.
    #[error("{0}")]
    Retry(String),
    /// The HTTP client could not be built (e.g. no TLS roots).
    #[error("cannot build the http client: {0}")]
    Client(String),
}

/// Sends escalations to every configured notifier.
pub struct Escalator {
    notifiers: Vec<Arc<Notifier>>,
    retry: RetryPolicy,
    client: reqwest::Client,
}

/// Names and kinds only: the notifiers' URLs and keys are secrets.
impl std::fmt::Debug for Escalator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let notifiers: Vec<String> = self
            .notifiers
            .iter()
            .map(|n| format!("{} ({})", n.name, n.kind))
            .collect();
        f.debug_struct("Escalator")
            .field("notifiers", &notifiers)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Escalator {
    /// Validates the configuration up front, so a typo is found at startup and
    /// not during an incident: names must be non-empty and unique, URLs http or
    /// https, routing keys non-empty, headers valid and not ones blastwall sets,
    /// and the retry policy within its bounds.
    pub fn new(config: &EscalationConfig) -> Result<Self, EscalateError> {
        config.retry.validate().map_err(EscalateError::Retry)?;
        let mut notifiers: Vec<Arc<Notifier>> = Vec::with_capacity(config.notifiers.len());
        for (index, notifier) in config.notifiers.iter().enumerate() {
            let notifier = Notifier::new(index + 1, notifier)?;
            if notifiers.iter().any(|n| n.name == notifier.name) {
                return Err(EscalateError::DuplicateName {
                    name: notifier.name,
                });
            }
            notifiers.push(Arc::new(notifier));
        }
        // One client for all notifiers; a redirect could send the escalation (and
        // the webhook's headers) to a host nobody configured, so none is followed.
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.retry.timeout)
            .connect_timeout(config.retry.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("blastwall/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EscalateError::Client(e.to_string()))?;
        Ok(Escalator {
            notifiers,
            retry: config.retry.clone(),
            client,
        })
    }

    /// True when no notifier is configured: escalations then reach only logs and the audit.
    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty()
    }

    /// Sends the escalation to every notifier concurrently, so a slow or dead one
    /// does not delay the others. Each is retried with capped exponential backoff
    /// on connection errors, timeouts, 429 and 5xx, and not retried on other
    /// answers (a 4xx will not fix itself). Never fails: the result has one
    /// [`Delivery`] per notifier, in configuration order.
    pub async fn send(&self, escalation: &Escalation) -> Vec<Delivery> {
        let mut tasks = JoinSet::new();
        for (index, notifier) in self.notifiers.iter().enumerate() {
            let body = notifier.body(escalation);
            let (notifier, client, retry) =
                (notifier.clone(), self.client.clone(), self.retry.clone());
            tasks.spawn(async move { (index, deliver(&client, &notifier, &retry, body).await) });
        }
        let mut deliveries: Vec<Option<Delivery>> = vec![None; self.notifiers.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, delivery)) = joined {
                deliveries[index] = Some(delivery);
            }
        }
        deliveries
            .into_iter()
            .zip(&self.notifiers)
            .map(|(delivery, notifier)| {
                delivery.unwrap_or_else(|| {
                    tracing::warn!(notifier = %notifier.name, "escalation delivery task failed");
                    Delivery {
                        notifier: notifier.name.clone(),
                        kind: notifier.kind,
                        delivered: false,
                        attempts: 0,
                        status: None,
                        error: Some("delivery task failed".to_string()),
                    }
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
