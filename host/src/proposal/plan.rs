//! The plan an AI agent proposes: bounded, closed, and checked for shape only.
//!
//! Whether an action is *allowed* is never decided here: that is the grant
//! check at the sandbox boundary, so a hallucinated action is denied (and on
//! the record) when the plan runner calls it. This module only refuses what
//! is not a plan at all: unknown fields, unknown capabilities, malformed
//! targets, missing or extra arguments, and anything beyond the size bounds.

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::policy::Capability;
use crate::workload::Workload;

/// The largest proposal body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most actions one plan may hold (within the sandbox's action ceiling).
pub const MAX_ACTIONS: usize = 16;
/// The longest rationale, in bytes.
pub const MAX_RATIONALE_BYTES: usize = 4 * 1024;
/// The longest incident id or log-set name, in bytes.
const MAX_NAME_BYTES: usize = 128;

/// A plan proposal's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The existing incident the plan is for (or give `alert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// An alert to open (or find) the incident from (or give `incident`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    /// The failure class: one of the catalog's.
    pub class: String,
    /// The agent's confidence, 0 to 1 (capped by the host).
    pub confidence: f32,
    /// Why, in the agent's words (recorded, never interpreted).
    pub rationale: String,
    /// What to do, in order.
    pub actions: Vec<Action>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// `scale`, `restart`, `rollback` or `log-rotation`.
    pub capability: Capability,
    /// The workload (`kind/namespace/name`); every capability but `log-rotation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Workload>,
    /// `replicas` for `scale`, `log-set` for `log-rotation`; nothing otherwise.
    #[serde(default, skip_serializing_if = "Arguments::is_empty")]
    pub arguments: Arguments,
}

/// An action's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Arguments {
    /// The replica count `scale` asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// The log set `log-rotation` asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_set: Option<String>,
}

impl Arguments {
    fn is_empty(&self) -> bool {
        self.replicas.is_none() && self.log_set.is_none()
    }
}

fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

impl Plan {
    /// Parses and checks a body. The error is one lowercase sentence naming
    /// the offending value.
    pub fn parse(body: &[u8]) -> Result<Plan, String> {
        if body.len() > MAX_BODY_BYTES {
            return Err(format!(
                "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                body.len()
            ));
        }
        let plan: Plan = serde_json::from_slice(body).map_err(|e| format!("invalid plan: {e}"))?;
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<(), String> {
        match (&self.incident, &self.alert) {
            (Some(_), Some(_)) => {
                return Err("give either incident or alert, not both".into());
            }
            (None, None) => return Err("give an incident or an alert".into()),
            (Some(id), None) => {
                let ok = !id.is_empty()
                    && id.len() <= MAX_NAME_BYTES
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    return Err(format!("incident {:?} is not an incident id", clip(id)));
                }
            }
            (None, Some(alert)) => {
                alert.validate().map_err(|e| e.to_string())?;
                if alert.status != "firing" {
                    return Err(format!(
                        "alert status {:?}: only a firing alert can be acted on",
                        alert.status
                    ));
                }
            }
        }
        if !crate::catalog::valid_class(&self.class) {
            return Err(format!("class {:?} is not a class name", clip(&self.class)));
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(format!(
                "confidence {} is not between 0 and 1",
                self.confidence
            ));
        }
        if self.rationale.len() > MAX_RATIONALE_BYTES {
            return Err(format!(
                "the rationale is {} bytes; at most {MAX_RATIONALE_BYTES} are accepted",
                self.rationale.len()
            ));
        }
        check_actions(&self.actions)
    }

    /// The actions as the plan runner reads them (its `plan` parameter).
    pub fn actions_json(&self) -> String {
        serde_json::to_string(&self.actions).expect("actions serialise")
    }
}

/// Checks a plan's actions: 1 to [`MAX_ACTIONS`], each well formed.
pub fn check_actions(actions: &[Action]) -> Result<(), String> {
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        return Err(format!(
            "{} actions; a plan holds 1 to {MAX_ACTIONS}",
            actions.len()
        ));
    }
    for (index, action) in actions.iter().enumerate() {
        action
            .check()
            .map_err(|e| format!("action {index} ({}): {e}", action.capability))?;
    }
    Ok(())
}

impl Action {
    fn check(&self) -> Result<(), String> {
        let Arguments { replicas, log_set } = &self.arguments;
        let needs_target = self.capability != Capability::LogRotation;
        match (needs_target, &self.target) {
            (true, None) => return Err("a target is required".into()),
            (false, Some(t)) => return Err(format!("takes no target, got {t}")),
            _ => {}
        }
        match self.capability {
            Capability::Scale if replicas.is_none() => Err("arguments.replicas is required".into()),
            Capability::LogRotation => match log_set {
                None => Err("arguments.log-set is required".into()),
                Some(set) if set.is_empty() || set.len() > MAX_NAME_BYTES => Err(format!(
                    "log-set {:?} must be 1 to {MAX_NAME_BYTES} bytes",
                    clip(set)
                )),
                Some(_) if replicas.is_some() => Err("takes no replicas".into()),
                Some(_) => Ok(()),
            },
            Capability::Scale if log_set.is_some() => Err("takes no log-set".into()),
            Capability::Scale => Ok(()),
            Capability::Restart | Capability::Rollback if !self.arguments.is_empty() => {
                Err("takes no arguments".into())
            }
            Capability::Restart | Capability::Rollback => Ok(()),
        }
    }
}
