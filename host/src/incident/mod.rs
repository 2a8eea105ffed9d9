//! Incidents: an alert turned into the one thing a plugin is asked to fix.
//!
//! For now an incident's class comes from the operator (`--class`) or from the
//! alert's `blastwall_class` label, falling back to the alert name; rule-based
//! and model-assisted classification build on this type.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::alert::Alert;
use crate::workload::{Workload, WorkloadError, WorkloadKind};

/// What a plugin is asked to remediate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Stable id: derived from the alert's fingerprint and start time.
    pub id: String,
    /// Failure class, e.g. `oom-killed`.
    pub class: String,
    /// Classification confidence, 0.0 to 1.0.
    pub confidence: f32,
    /// The alert that opened the incident.
    pub alert: Alert,
    /// The workload the incident is about.
    pub target: Workload,
    /// Operator-configured plugin parameters.
    pub params: BTreeMap<String, String>,
    /// Whether effects are simulated.
    pub dry_run: bool,
}

/// Why no incident could be made from an alert.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// No label names a workload.
    #[error(
        "alert {alert} names no workload: add a blastwall_target label (kind/namespace/name), a deployment, statefulset or daemonset label with a namespace, or a container label"
    )]
    NoTarget {
        /// The alert's name.
        alert: String,
    },
    /// A label names a workload, but not a valid one.
    #[error("alert {alert}: {source}")]
    BadTarget {
        /// The alert's name.
        alert: String,
        /// What is wrong with the workload reference.
        source: WorkloadError,
    },
}

/// The workload an alert is about, from its labels.
///
/// Precedence: `blastwall_target` (`kind/namespace/name`), then a Kubernetes
/// `deployment`, `statefulset` or `daemonset` label (namespace from `namespace`,
/// default `default`), then a Docker `container` label.
pub fn target_of(alert: &Alert) -> Result<Workload, IncidentError> {
    let bad = |source| IncidentError::BadTarget {
        alert: alert.name().to_string(),
        source,
    };
    if let Some(explicit) = alert.label("blastwall_target") {
        return explicit.parse().map_err(bad);
    }
    let namespace = alert.label("namespace").unwrap_or("default");
    for (label, kind) in [
        ("deployment", WorkloadKind::Deployment),
        ("statefulset", WorkloadKind::StatefulSet),
        ("daemonset", WorkloadKind::DaemonSet),
        ("container", WorkloadKind::Container),
    ] {
        if let Some(name) = alert.label(label) {
            return Workload::new(kind, namespace, name).map_err(bad);
        }
    }
    Err(IncidentError::NoTarget {
        alert: alert.name().to_string(),
    })
}

/// A stable incident id: the same alert delivered twice yields the same id.
pub fn incident_id(alert: &Alert) -> String {
    let mut hash = Sha256::new();
    hash.update(alert.name().as_bytes());
    hash.update([0]);
    hash.update(alert.fingerprint.as_bytes());
    hash.update([0]);
    hash.update(alert.starts_at.as_bytes());
    if alert.fingerprint.is_empty() {
        // Without Alertmanager's fingerprint, the labels identify the alert.
        for (k, v) in &alert.labels {
            hash.update([0]);
            hash.update(k.as_bytes());
            hash.update([0]);
            hash.update(v.as_bytes());
        }
    }
    format!("inc-{}", &hex::encode(hash.finalize())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            status: "firing".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: "2026-11-23T03:00:00Z".into(),
            ends_at: String::new(),
            generator_url: String::new(),
            fingerprint: String::new(),
        }
    }

    #[test]
    fn finds_the_target_by_label_precedence() {
        let a = alert(&[
            ("alertname", "X"),
            ("namespace", "prod"),
            ("deployment", "checkout"),
        ]);
        assert_eq!(
            target_of(&a).unwrap().to_string(),
            "deployment/prod/checkout"
        );
        let a = alert(&[
            ("alertname", "X"),
            ("blastwall_target", "statefulset/db/pg"),
            ("deployment", "x"),
        ]);
        assert_eq!(target_of(&a).unwrap().to_string(), "statefulset/db/pg");
        let a = alert(&[("alertname", "X"), ("container", "nginx")]);
        assert_eq!(
            target_of(&a).unwrap().to_string(),
            "container/default/nginx"
        );
    }

    #[test]
    fn explains_missing_or_bad_targets() {
        let err = target_of(&alert(&[("alertname", "DiskFull")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("alert DiskFull names no workload"), "{err}");
        let err = target_of(&alert(&[("alertname", "X"), ("deployment", "../../etc")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("only lowercase letters"), "{err}");
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = alert(&[("alertname", "X"), ("deployment", "a")]);
        let b = alert(&[("alertname", "X"), ("deployment", "b")]);
        assert_eq!(incident_id(&a), incident_id(&a.clone()));
        assert_ne!(incident_id(&a), incident_id(&b));
        assert!(incident_id(&a).starts_with("inc-"));
    }
}
