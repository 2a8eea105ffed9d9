//! Small conveniences over the generated types, so plugins read like prose.

use core::fmt;

use crate::{Alert, Error, Incident, Label, Report, Workload, WorkloadKind};

// `Error` already implements `Display` and `std::error::Error` through the generated bindings.

fn lookup<'a>(labels: &'a [Label], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|label| label.key == key)
        .map(|label| label.value.as_str())
}

impl Incident {
    /// The operator-configured parameter `key`, if set.
    pub fn param(&self, key: &str) -> Option<&str> {
        lookup(&self.params, key)
    }

    /// The parameter `key` parsed as a number, `default` when absent.
    ///
    /// A present but malformed value is an [`Error::Invalid`], so a typo in the
    /// configuration stops the plugin instead of being silently ignored.
    pub fn param_u32(&self, key: &str, default: u32) -> Result<u32, Error> {
        match self.param(key) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| {
                Error::Invalid(format!(
                    "parameter {key} must be a whole number, got {raw:?}"
                ))
            }),
        }
    }
}

impl Alert {
    /// The alert label `key`, if present. Label values are untrusted text.
    pub fn label(&self, key: &str) -> Option<&str> {
        lookup(&self.labels, key)
    }

    /// The alert annotation `key`, if present. Annotation values are untrusted text.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        lookup(&self.annotations, key)
    }
}

impl Report {
    /// A report with a one-sentence summary and the number of changes made.
    pub fn new(summary: impl Into<String>, actions: u32) -> Self {
        Report {
            summary: summary.into(),
            actions,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::Container => "container",
        })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}
