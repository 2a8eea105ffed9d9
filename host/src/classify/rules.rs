//! Rule-based classification: alert name and labels → class and confidence.
//!
//! Rules are the default classifier: written by operators, evaluated in order,
//! first match wins. A rule's class need not be in the catalog; a class
//! nobody mapped goes to a human like an unknown one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::wildcard;

/// One rule.
///
/// ```toml
/// [[classify.rules]]
/// alertname = "KubePodOOMKilled"       # `*` wildcards allowed
/// labels = { severity = "critical" }   # every label must match (`*` wildcards allowed)
/// class = "oom-killed"
/// confidence = 0.95
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rule {
    /// The alert name it matches, e.g. `KubePodOOMKilled` or `*OOM*`.
    pub alertname: String,
    /// Labels that must also match.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The class it assigns, e.g. `oom-killed`.
    pub class: String,
    /// The confidence it assigns, 0 to 1. Default 1.
    #[serde(default = "certain")]
    pub confidence: f32,
}

fn certain() -> f32 {
    1.0
}

impl Rule {
    /// Whether the rule matches `alert`.
    pub fn matches(&self, alert: &Alert) -> bool {
        wildcard::matches(&self.alertname, alert.name())
            && self.labels.iter().all(|(k, v)| {
                alert
                    .label(k)
                    .is_some_and(|actual| wildcard::matches(v, actual))
            })
    }

    /// Checks the rule's own values; `index` names it in the message.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(format!(
                "classify rule {index} (class {:?}): confidence {} is not between 0 and 1",
                self.class, self.confidence
            ));
        }
        if !crate::catalog::valid_class(&self.class) {
            return Err(format!(
                "classify rule {index}: class {:?} must be lowercase letters, digits and '-'",
                self.class
            ));
        }
        if self.alertname.is_empty() {
            return Err(format!(
                "classify rule {index} (class {:?}): alertname is empty; use \"*\" to match any alert",
                self.class
            ));
        }
        Ok(())
    }
}

/// The first rule that matches, with its index.
pub fn first_match<'a>(rules: &'a [Rule], alert: &Alert) -> Option<(usize, &'a Rule)> {
    rules
        .iter()
        .enumerate()
        .find(|(_, rule)| rule.matches(alert))
}
