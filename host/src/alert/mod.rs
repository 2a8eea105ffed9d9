//! Alerts in Alertmanager's webhook format (version 4).
//!
//! Everything in an alert is untrusted text: labels and annotations are
//! written by whoever controls the metrics or the alert rules. This module
//! only parses and bounds it; it never turns alert text into permissions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Upper bound on one alert's labels plus annotations. Alertmanager has no
/// limit of its own; a flood of labels must not become a flood of memory.
const MAX_PAIRS: usize = 256;
/// Upper bound on one label or annotation value, or any other string field, in bytes.
const MAX_VALUE_LEN: usize = 16 * 1024;
/// Upper bound on an alert document or webhook payload, checked before parsing.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Upper bound on the alerts in one webhook payload (Alertmanager's `max_alerts` is unlimited by default).
pub const MAX_ALERTS: usize = 1000;

/// Alertmanager's webhook payload: a group of alerts sent together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// Payload format version; blastwall understands `4`.
    pub version: String,
    /// `firing` if any alert in the group fires, else `resolved`.
    #[serde(default)]
    pub status: String,
    /// Alertmanager's receiver name.
    #[serde(default)]
    pub receiver: String,
    /// The alerts of this notification.
    pub alerts: Vec<Alert>,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Identifying labels; `alertname` names the alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Descriptive annotations (summary, description, runbook URL, ...).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing (RFC 3339).
    #[serde(default)]
    pub starts_at: String,
    /// When it resolved, or a time in the future / the zero time while firing.
    #[serde(default)]
    pub ends_at: String,
    /// Link to the expression that fired.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's fingerprint of the label set.
    #[serde(default)]
    pub fingerprint: String,
}

/// Why an alert could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Not JSON, or not shaped like an alert or a webhook payload.
    #[error("alert is not valid Alertmanager JSON: {0}")]
    Json(String),
    /// A webhook payload of an unsupported version.
    #[error("Alertmanager webhook version {0:?} is not supported (expected \"4\")")]
    Version(String),
    /// A payload with no alerts, or the asked-for index is out of range.
    #[error("webhook payload holds {count} alerts; alert index {index} does not exist")]
    Index {
        /// How many alerts the payload holds.
        count: usize,
        /// The index asked for.
        index: usize,
    },
    /// The alert has no `alertname` label.
    #[error("alert has no alertname label")]
    NoName,
    /// The alert (or payload) is larger than blastwall accepts.
    #[error("alert is too large: {0}")]
    TooLarge(String),
    /// The status is neither `firing` nor `resolved`.
    #[error("alert status {0:?} is neither \"firing\" nor \"resolved\"")]
    Status(String),
}

impl Alert {
    /// The `alertname` label.
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Checks the bounds and required fields every alert must meet.
    pub fn validate(&self) -> Result<(), AlertError> {
        if self.name().is_empty() {
            return Err(AlertError::NoName);
        }
        if self.status != "firing" && self.status != "resolved" {
            return Err(AlertError::Status(self.status.chars().take(64).collect()));
        }
        let pairs = self.labels.len() + self.annotations.len();
        if pairs > MAX_PAIRS {
            return Err(AlertError::TooLarge(format!(
                "{pairs} labels and annotations, at most {MAX_PAIRS} allowed"
            )));
        }
        if let Some((key, _)) = self
            .labels
            .iter()
            .chain(&self.annotations)
            .find(|(k, v)| k.len() + v.len() > MAX_VALUE_LEN)
        {
            return Err(AlertError::TooLarge(format!(
                "{:?} is longer than {MAX_VALUE_LEN} bytes",
                key.chars().take(64).collect::<String>()
            )));
        }
        for (field, value) in [
            ("status", &self.status),
            ("startsAt", &self.starts_at),
            ("endsAt", &self.ends_at),
            ("generatorURL", &self.generator_url),
            ("fingerprint", &self.fingerprint),
        ] {
            if value.len() > MAX_VALUE_LEN {
                return Err(AlertError::TooLarge(format!(
                    "{field} is longer than {MAX_VALUE_LEN} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// Reads one alert from JSON: either a bare alert object or a webhook payload,
/// from which the alert at `index` is taken.
pub fn parse_one(json: &str, index: usize) -> Result<Alert, AlertError> {
    let alerts = parse_all(json)?;
    let count = alerts.len();
    alerts
        .into_iter()
        .nth(index)
        .ok_or(AlertError::Index { count, index })
}

/// Reads every alert from JSON: a webhook payload's alerts, or one bare alert.
/// Each is validated; one bad alert refuses the whole document, so nothing is
/// half-processed.
pub fn parse_all(json: &str) -> Result<Vec<Alert>, AlertError> {
    if json.len() > MAX_PAYLOAD_BYTES {
        return Err(AlertError::TooLarge(format!(
            "{} bytes, at most {MAX_PAYLOAD_BYTES} accepted",
            json.len()
        )));
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| AlertError::Json(e.to_string()))?;
    let alerts = if value.get("alerts").is_some() {
        let payload: WebhookPayload =
            serde_json::from_value(value).map_err(|e| AlertError::Json(e.to_string()))?;
        if payload.version != "4" {
            return Err(AlertError::Version(payload.version));
        }
        let count = payload.alerts.len();
        if count > MAX_ALERTS {
            return Err(AlertError::TooLarge(format!(
                "{count} alerts in one payload, at most {MAX_ALERTS}"
            )));
        }
        payload.alerts
    } else {
        vec![serde_json::from_value(value).map_err(|e| AlertError::Json(e.to_string()))?]
    };
    for alert in &alerts {
        alert.validate()?;
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{
      "version": "4", "status": "firing", "receiver": "blastwall", "groupKey": "{}:{}",
      "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
      "externalURL": "http://alertmanager:9093",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "KubePodOOMKilled", "namespace": "prod", "deployment": "checkout"},
        "annotations": {"summary": "checkout was OOM killed"},
        "startsAt": "2026-11-23T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph", "fingerprint": "a1b2c3"
      }]
    }"#;

    #[test]
    fn refuses_a_status_other_than_firing_or_resolved() {
        let text = PAYLOAD.replace(
            "\"status\": \"firing\",\n        \"labels\"",
            "\"status\": \"pending\",\n        \"labels\"",
        );
        assert_ne!(text, PAYLOAD);
        assert_eq!(
            parse_one(&text, 0).unwrap_err().to_string(),
            "alert status \"pending\" is neither \"firing\" nor \"resolved\""
        );
    }

    #[test]
    fn reads_a_webhook_payload_and_a_bare_alert() {
        let alert = parse_one(PAYLOAD, 0).unwrap();
        assert_eq!(alert.name(), "KubePodOOMKilled");
        assert_eq!(alert.label("deployment"), Some("checkout"));
        assert_eq!(alert.fingerprint, "a1b2c3");
        let bare = serde_json::to_string(&alert).unwrap();
        assert_eq!(parse_one(&bare, 0).unwrap(), alert);
    }

    #[test]
    fn rejects_bad_input_with_specific_errors() {
        assert!(
            parse_one("{", 0)
                .unwrap_err()
                .to_string()
                .starts_with("alert is not valid Alertmanager JSON")
        );
        assert_eq!(
            parse_one(PAYLOAD, 3).unwrap_err().to_string(),
            "webhook payload holds 1 alerts; alert index 3 does not exist"
        );
        assert_eq!(
            parse_one(&PAYLOAD.replace("\"4\"", "\"3\""), 0)
                .unwrap_err()
                .to_string(),
            "Alertmanager webhook version \"3\" is not supported (expected \"4\")"
        );
        assert_eq!(
            parse_one(&PAYLOAD.replace("alertname", "name"), 0)
                .unwrap_err()
                .to_string(),
            "alert has no alertname label"
        );
        let long_fingerprint = PAYLOAD.replace("a1b2c3", &"f".repeat(20_000));
        assert!(
            parse_one(&long_fingerprint, 0)
                .unwrap_err()
                .to_string()
                .contains("fingerprint is longer")
        );
        let enormous = " ".repeat(MAX_PAYLOAD_BYTES + 1);
        assert!(
            parse_one(&enormous, 0)
                .unwrap_err()
                .to_string()
                .starts_with("alert is too large")
        );
        let huge = PAYLOAD.replace("checkout was OOM killed", &"x".repeat(20_000));
        assert!(
            parse_one(&huge, 0)
                .unwrap_err()
                .to_string()
                .contains("\"summary\" is longer than")
        );
    }
}
