//! Target patterns: `kind/namespace/name`, where any segment may use `*` wildcards.
//!
//! Patterns are the unit of scope in manifests and grants: `deployment/prod/*`
//! covers every Deployment in `prod`, `*/staging/web-*` every workload in
//! `staging` whose name starts with `web-`. Only `*` is special; there are no
//! character classes or alternations, so a pattern reads the same to a
//! reviewer as to the host (see [`crate::wildcard`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::wildcard::matches as wildcard_match;
use crate::workload::Workload;

/// A parsed `kind/namespace/name` pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetPattern {
    kind: String,
    namespace: String,
    name: String,
}

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Not three `/`-separated segments.
    #[error("target pattern {0:?} is not of the form kind/namespace/name (each segment may use *)")]
    Shape(String),
    /// The kind segment is neither a wildcard nor a known kind.
    #[error(
        "target pattern {0:?} names an unknown kind: expected deployment, statefulset, daemonset, container or *"
    )]
    Kind(String),
    /// A segment holds characters that can never match a workload.
    #[error("target pattern {0:?} has characters that no workload name can contain")]
    Characters(String),
}

fn segment_ok(segment: &str) -> bool {
    !segment.is_empty()
        && segment.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '*')
        })
}

impl TargetPattern {
    /// The pattern that matches exactly one workload.
    pub fn exact(workload: &Workload) -> Self {
        TargetPattern {
            kind: workload.kind().as_str().to_string(),
            namespace: workload.namespace().to_string(),
            name: workload.name().to_string(),
        }
    }

    /// `*/*/*`: every workload.
    pub fn any() -> Self {
        TargetPattern {
            kind: "*".into(),
            namespace: "*".into(),
            name: "*".into(),
        }
    }

    /// Whether `workload` is inside this pattern.
    pub fn matches(&self, workload: &Workload) -> bool {
        wildcard_match(&self.kind, workload.kind().as_str())
            && wildcard_match(&self.namespace, workload.namespace())
            && wildcard_match(&self.name, workload.name())
    }
}

impl FromStr for TargetPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let [kind, namespace, name] = parts.as_slice() else {
            return Err(PatternError::Shape(s.chars().take(80).collect()));
        };
        if !(segment_ok(kind) && segment_ok(namespace) && segment_ok(name)) {
            return Err(PatternError::Characters(s.chars().take(80).collect()));
        }
        let known = crate::workload::WorkloadKind::ALL
            .iter()
            .any(|k| wildcard_match(kind, k.as_str()));
        if !known {
            return Err(PatternError::Kind(s.to_string()));
        }
        Ok(TargetPattern {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl TryFrom<String> for TargetPattern {
    type Error = PatternError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<TargetPattern> for String {
    fn from(value: TargetPattern) -> Self {
        value.to_string()
    }
}

impl fmt::Display for TargetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("deployment/prod/checkout", "deployment/prod/checkout", true)]
    #[case("deployment/prod/*", "deployment/prod/checkout", true)]
    #[case("deployment/prod/*", "deployment/staging/checkout", false)]
    #[case("*/prod/web-*", "statefulset/prod/web-1", true)]
    #[case("*/prod/web-*", "statefulset/prod/api-1", false)]
    #[case("*/*/*", "container/default/nginx", true)]
    #[case("deployment/*/check*out", "deployment/prod/checkout", true)]
    #[case("deployment/*/check*out", "deployment/prod/checkout-v2", false)]
    #[case("statefulset/prod/*", "deployment/prod/checkout", false)]
    #[case("deployment/pro*/*", "deployment/prod/x", true)]
    #[case("deployment/prod/**a", "deployment/prod/aaa", true)]
    fn matches_by_segment(#[case] pattern: &str, #[case] workload: &str, #[case] expected: bool) {
        let pattern: TargetPattern = pattern.parse().unwrap();
        let workload: Workload = workload.parse().unwrap();
        assert_eq!(
            pattern.matches(&workload),
            expected,
            "{pattern} vs {workload}"
        );
    }

    #[rstest]
    #[case("prod/*", "is not of the form kind/namespace/name")]
    #[case("deployment/prod/*/x", "is not of the form kind/namespace/name")]
    #[case("pod/prod/*", "names an unknown kind")]
    #[case("deployment/Prod/*", "characters that no workload name can contain")]
    #[case("deployment//x", "characters that no workload name can contain")]
    fn rejects_bad_patterns_clearly(#[case] pattern: &str, #[case] message: &str) {
        let err = pattern.parse::<TargetPattern>().unwrap_err().to_string();
        assert!(err.contains(message), "{err}");
        assert!(err.contains(pattern), "error names the pattern: {err}");
    }
}
