//! Workloads: the things remediations act on, named `kind/namespace/name`.
//!
//! Names arrive from alerts and from plugins, both untrusted, so they are
//! validated once here and every later stage works with a [`Workload`] that is
//! known to be well formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// A Kubernetes Deployment.
    Deployment,
    /// A Kubernetes StatefulSet.
    StatefulSet,
    /// A Kubernetes DaemonSet.
    DaemonSet,
    /// A Docker container.
    Container,
}

impl WorkloadKind {
    /// Every kind, in a stable order.
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::Container,
    ];

    /// The lowercase name used in patterns and reports, e.g. `statefulset`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::Container => "container",
        }
    }
}

impl FromStr for WorkloadKind {
    type Err = WorkloadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| WorkloadError::UnknownKind(s.to_string()))
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A well-formed workload reference. Construct with [`Workload::new`] or parse `kind/namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Workload {
    kind: WorkloadKind,
    namespace: String,
    name: String,
}

/// Why a workload reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The kind is not one of deployment, statefulset, daemonset, container.
    #[error(
        "unknown workload kind {0:?}: expected deployment, statefulset, daemonset or container"
    )]
    UnknownKind(String),
    /// The reference is not `kind/namespace/name`.
    #[error("workload {0:?} is not of the form kind/namespace/name")]
    Shape(String),
    /// A namespace or name is empty, too long or has characters outside `[a-z0-9.-_]`.
    #[error("workload {field} {value:?} is invalid: {why}")]
    Name {
        /// `namespace` or `name`.
        field: &'static str,
        /// The offending value (truncated to 80 characters).
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Kubernetes allows 253 characters for most object names; Docker allows fewer.
const MAX_NAME_LEN: usize = 253;

fn check_name(field: &'static str, value: &str) -> Result<(), WorkloadError> {
    let bad = |why| WorkloadError::Name {
        field,
        value: value.chars().take(80).collect(),
        why,
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(bad("it is longer than 253 characters"));
    }
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_');
    if !value.chars().all(allowed) {
        return Err(bad(
            "only lowercase letters, digits, '-', '.' and '_' are allowed",
        ));
    }
    if value == "." || value == ".." {
        return Err(bad("it is a path component"));
    }
    Ok(())
}

impl Workload {
    /// A workload, after checking that namespace and name are well formed.
    pub fn new(kind: WorkloadKind, namespace: &str, name: &str) -> Result<Self, WorkloadError> {
        check_name("namespace", namespace)?;
        check_name("name", name)?;
        Ok(Workload {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// The workload's kind.
    pub fn kind(&self) -> WorkloadKind {
        self.kind
    }

    /// The workload's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for Workload {
    type Err = WorkloadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(kind), Some(namespace), Some(name), None) => {
                Workload::new(kind.parse()?, namespace, name)
            }
            _ => Err(WorkloadError::Shape(s.chars().take(80).collect())),
        }
    }
}

impl TryFrom<String> for Workload {
    type Error = WorkloadError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Workload> for String {
    fn from(value: Workload) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_kind_namespace_name() {
        let w: Workload = "deployment/prod/checkout".parse().unwrap();
        assert_eq!(w.kind(), WorkloadKind::Deployment);
        assert_eq!(w.namespace(), "prod");
        assert_eq!(w.name(), "checkout");
        assert_eq!(w.to_string(), "deployment/prod/checkout");
    }

    #[test]
    fn rejects_malformed_references_with_the_offending_value() {
        let err = "deployment/prod".parse::<Workload>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "workload \"deployment/prod\" is not of the form kind/namespace/name"
        );
        let err = "pod/prod/x".parse::<Workload>().unwrap_err();
        assert!(
            err.to_string().starts_with("unknown workload kind \"pod\""),
            "{err}"
        );
        let err = "deployment/prod/Checkout".parse::<Workload>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "workload name \"Checkout\" is invalid: only lowercase letters, digits, '-', '.' and '_' are allowed"
        );
        let err = "deployment/../x".parse::<Workload>().unwrap_err();
        assert!(err.to_string().contains("path component"), "{err}");
        let long = "a".repeat(254);
        let err = Workload::new(WorkloadKind::Container, "default", &long).unwrap_err();
        assert!(err.to_string().contains("longer than 253"), "{err}");
    }
}
