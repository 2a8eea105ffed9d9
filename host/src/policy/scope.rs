//! Capability scopes: what a manifest declares and what a policy grants.
//!
//! The same types serve both sides so that a reviewer reads one vocabulary:
//! a manifest says "I need `scale` on `deployment/prod/*` between 2 and 10
//! replicas", a policy says "you may `scale` `deployment/prod/checkout` up to 6",
//! and the grant for a run is their intersection (see [`super::grants`]).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::pattern::TargetPattern;

/// One of the four capabilities that can change the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Change a workload's replica count.
    Scale,
    /// Rolling restart of a workload.
    Restart,
    /// Return a workload to its previous revision.
    Rollback,
    /// Rotate a named log set.
    LogRotation,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 4] = [
        Capability::Scale,
        Capability::Restart,
        Capability::Rollback,
        Capability::LogRotation,
    ];

    /// The WIT interface name, e.g. `log-rotation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Scale => "scale",
            Capability::Restart => "restart",
            Capability::Rollback => "rollback",
            Capability::LogRotation => "log-rotation",
        }
    }

    /// The capability whose WIT interface is `name`, if any.
    pub fn from_interface(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which workloads a capability may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetScope {
    /// Patterns of workloads, `kind/namespace/name` with `*` wildcards, e.g. `["deployment/prod/*"]`. At least one.
    #[schemars(with = "Vec<String>")]
    pub targets: Vec<TargetPattern>,
}

/// Where and how far `scale` may move a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScaleScope {
    /// Patterns of workloads, `kind/namespace/name` with `*` wildcards, e.g. `["deployment/prod/*"]`. At least one.
    #[schemars(with = "Vec<String>")]
    pub targets: Vec<TargetPattern>,
    /// Never scale below this many replicas, e.g. `2`. Defaults to 1: scaling to zero is an outage.
    #[serde(default = "one")]
    pub min_replicas: u32,
    /// Never scale above this many replicas, e.g. `10`. Required.
    pub max_replicas: u32,
    /// Largest increase in one call, e.g. `2`. Unlimited (within the bounds) when absent.
    #[serde(default)]
    pub max_step_up: Option<u32>,
    /// Largest decrease in one call, e.g. `1`. Unlimited (within the bounds) when absent.
    #[serde(default)]
    pub max_step_down: Option<u32>,
}

fn one() -> u32 {
    1
}

/// Which log sets `log-rotation` may rotate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogRotationScope {
    /// Names of log sets from the host configuration, e.g. `["app", "nginx"]`. At least one.
    pub log_sets: BTreeSet<String>,
}

/// A set of capabilities with their scopes: a manifest's declaration or a policy's grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CapabilityScopes {
    /// `scale`, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleScope>,
    /// `restart`, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<TargetScope>,
    /// `rollback`, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<TargetScope>,
    /// `log-rotation`, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rotation: Option<LogRotationScope>,
}

/// Why a set of scopes is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A capability lists no targets, so it could never be used.
    #[error("capability {0} lists no targets")]
    NoTargets(Capability),
    /// `min-replicas` is above `max-replicas`.
    #[error("scale: min-replicas {min} is above max-replicas {max}")]
    ReplicaRange {
        /// The minimum given.
        min: u32,
        /// The maximum given.
        max: u32,
    },
    /// `max-replicas` is zero.
    #[error("scale: max-replicas must be at least 1")]
    ZeroMax,
    /// A step of zero would forbid every change in that direction; omit `scale` instead.
    #[error("scale: {0} must be at least 1 (omit it for no limit)")]
    ZeroStep(&'static str),
    /// `log-rotation` lists no log sets.
    #[error("log-rotation lists no log sets")]
    NoLogSets,
}

impl CapabilityScopes {
    /// The capabilities present, in a stable order.
    pub fn capabilities(&self) -> BTreeSet<Capability> {
        let mut set = BTreeSet::new();
        if self.scale.is_some() {
            set.insert(Capability::Scale);
        }
        if self.restart.is_some() {
            set.insert(Capability::Restart);
        }
        if self.rollback.is_some() {
            set.insert(Capability::Rollback);
        }
        if self.log_rotation.is_some() {
            set.insert(Capability::LogRotation);
        }
        set
    }

    /// Checks the scopes for contradictions that would make them unusable.
    pub fn validate(&self) -> Result<(), ScopeError> {
        if let Some(scale) = &self.scale {
            if scale.targets.is_empty() {
                return Err(ScopeError::NoTargets(Capability::Scale));
            }
            if scale.max_replicas == 0 {
                return Err(ScopeError::ZeroMax);
            }
            if scale.min_replicas > scale.max_replicas {
                return Err(ScopeError::ReplicaRange {
                    min: scale.min_replicas,
                    max: scale.max_replicas,
                });
            }
            if scale.max_step_up == Some(0) {
                return Err(ScopeError::ZeroStep("max-step-up"));
            }
            if scale.max_step_down == Some(0) {
                return Err(ScopeError::ZeroStep("max-step-down"));
            }
        }
        for (capability, scope) in [
            (Capability::Restart, &self.restart),
            (Capability::Rollback, &self.rollback),
        ] {
            if scope.as_ref().is_some_and(|s| s.targets.is_empty()) {
                return Err(ScopeError::NoTargets(capability));
            }
        }
        if self
            .log_rotation
            .as_ref()
            .is_some_and(|l| l.log_sets.is_empty())
        {
            return Err(ScopeError::NoLogSets);
        }
        Ok(())
    }
}
