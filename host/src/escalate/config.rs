//! The `[escalation]` configuration section: where to send escalations and how hard to try.
//!
//! Notifier URLs (a Slack incoming-webhook URL *is* its credential), header
//! values and PagerDuty routing keys are secrets, so the `Debug` output of a
//! notifier shows only its name, its kind and the URL's origin.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// PagerDuty's Events API v2 endpoint, used when a `pagerduty` notifier names no `url`.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The `[escalation]` section: who is told when automation stops.
///
/// ```toml
/// [escalation]
/// retry = { attempts = 4, initial-backoff = "200ms", max-backoff = "5s", timeout = "5s" }
///
/// [[escalation.notifiers]]
/// kind = "slack"
/// name = "oncall-channel"
/// url = "https://hooks.slack.com/services/T000/B000/XXXX"
///
/// [[escalation.notifiers]]
/// kind = "pagerduty"
/// name = "pager"
/// routing-key = "R0UT1NGKEY"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EscalationConfig {
    /// Every notifier is told about every escalation, e.g.
    /// `[[escalation.notifiers]]` tables with `kind = "webhook"`. None configured means
    /// escalations are only logged and audited.
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
    /// How each notifier is retried, e.g. `retry = { attempts = 6 }`; the defaults when absent.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// How one delivery is retried: exponential backoff, capped, with a timeout per attempt.
///
/// A delivery takes at most `attempts × timeout` plus the backoffs between
/// attempts, so the bounds below keep a misconfiguration from stalling
/// escalation for hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetryPolicy {
    /// Attempts per notifier including the first, 1 to 10, e.g. `attempts = 4` (the default).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the second attempt, doubled for each further one, e.g.
    /// `initial-backoff = "200ms"` (the default). At most `max-backoff`.
    #[serde(default = "default_initial_backoff", with = "crate::duration")]
    pub initial_backoff: Duration,
    /// Longest wait between two attempts, at most five minutes, e.g.
    /// `max-backoff = "5s"` (the default).
    #[serde(default = "default_max_backoff", with = "crate::duration")]
    pub max_backoff: Duration,
    /// Time allowed for one attempt (connect, send, answer), more than zero and at
    /// most five minutes, e.g. `timeout = "5s"` (the default).
    #[serde(default = "default_timeout", with = "crate::duration")]
    pub timeout: Duration,
}

/// Most attempts a policy may ask for.
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest backoff or per-attempt timeout a policy may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

fn default_attempts() -> u32 {
    4
}

fn default_initial_backoff() -> Duration {
    Duration::from_millis(200)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(5)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: default_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            timeout: default_timeout(),
        }
    }
}

impl RetryPolicy {
    /// Checks the bounds documented on each field; the error says which and why.
    pub fn validate(&self) -> Result<(), String> {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if !(1..=MAX_ATTEMPTS).contains(&self.attempts) {
            return Err(format!(
                "retry attempts must be between 1 and {MAX_ATTEMPTS}, got {}",
                self.attempts
            ));
        }
        if self.timeout.is_zero() || self.timeout > MAX_WAIT {
            return Err(format!(
                "retry timeout must be more than 0s and at most {}, got {}",
                show(MAX_WAIT),
                show(self.timeout)
            ));
        }
        if self.max_backoff > MAX_WAIT {
            return Err(format!(
                "retry max-backoff must be at most {}, got {}",
                show(MAX_WAIT),
                show(self.max_backoff)
            ));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(format!(
                "retry initial-backoff {} is longer than max-backoff {}",
                show(self.initial_backoff),
                show(self.max_backoff)
            ));
        }
        Ok(())
    }
}

/// One place an escalation is sent, internally tagged by `kind`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "lowercase",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum NotifierConfig {
    /// A generic JSON webhook: the escalation itself, for ticketing systems,
    /// chat bridges or anything else that speaks HTTP.
    ///
    /// ```toml
    /// kind = "webhook"
    /// name = "tickets"
    /// url = "https://tickets.example.com/hooks/blastwall"
    /// headers = { Authorization = "Bearer s3cr3t" }
    /// ```
    Webhook {
        /// Unique name used in logs and delivery results, e.g. `name = "tickets"`.
        name: String,
        /// An http or https URL, e.g. `url = "https://tickets.example.com/hooks/blastwall"`.
        url: String,
        /// Extra request headers, e.g. `headers = { Authorization = "Bearer s3cr3t" }`.
        /// `Content-Type`, `Host` and the framing headers cannot be set.
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// A Slack incoming webhook.
    ///
    /// ```toml
    /// kind = "slack"
    /// name = "oncall-channel"
    /// url = "https://hooks.slack.com/services/T000/B000/XXXX"
    /// ```
    Slack {
        /// Unique name used in logs and delivery results, e.g. `name = "oncall-channel"`.
        name: String,
        /// The incoming-webhook URL (a secret), e.g.
        /// `url = "https://hooks.slack.com/services/T000/B000/XXXX"`.
        url: String,
    },
    /// A PagerDuty service, through the Events API v2.
    ///
    /// ```toml
    /// kind = "pagerduty"
    /// name = "pager"
    /// routing-key = "R0UT1NGKEY"
    /// ```
    Pagerduty {
        /// Unique name used in logs and delivery results, e.g. `name = "pager"`.
        name: String,
        /// The events endpoint, e.g. `url = "https://events.eu.pagerduty.com/v2/enqueue"`;
        /// PagerDuty's US endpoint when absent.
        #[serde(default = "default_pagerduty_url")]
        url: String,
        /// The service integration's routing key (a secret), e.g. `routing-key = "R0UT1NGKEY"`.
        routing_key: String,
    },
}

fn default_pagerduty_url() -> String {
    PAGERDUTY_EVENTS_URL.to_string()
}

impl NotifierConfig {
    /// The notifier's configured name.
    pub fn name(&self) -> &str {
        match self {
            NotifierConfig::Webhook { name, .. }
            | NotifierConfig::Slack { name, .. }
            | NotifierConfig::Pagerduty { name, .. } => name,
        }
    }

    /// The notifier's kind as written in configuration: `webhook`, `slack` or `pagerduty`.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifierConfig::Webhook { .. } => "webhook",
            NotifierConfig::Slack { .. } => "slack",
            NotifierConfig::Pagerduty { .. } => "pagerduty",
        }
    }

    /// The notifier's URL (a secret: do not log it).
    pub fn url(&self) -> &str {
        match self {
            NotifierConfig::Webhook { url, .. }
            | NotifierConfig::Slack { url, .. }
            | NotifierConfig::Pagerduty { url, .. } => url,
        }
    }
}

/// Shows name, kind, URL origin and header names, never the secrets.
impl fmt::Debug for NotifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = reqwest::Url::parse(self.url())
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_else(|_| "<invalid>".to_string());
        let mut out = f.debug_struct(self.kind());
        out.field("name", &self.name()).field("url", &origin);
        match self {
            NotifierConfig::Webhook { headers, .. } => {
                out.field("headers", &headers.keys().collect::<Vec<_>>());
            }
            NotifierConfig::Slack { .. } => {}
            NotifierConfig::Pagerduty { .. } => {
                out.field("routing_key", &"<redacted>");
            }
        }
        out.finish_non_exhaustive()
    }
}
