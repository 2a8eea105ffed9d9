//! Policy: turns a manifest's declaration and an operator's policy into the
//! [`Grants`] of one run.
//!
//! Deny by default: a capability is granted only if the manifest declares it
//! *and* the policy grants it, and then only within the intersection of both
//! scopes. Unless a policy explicitly opts out, every workload capability is
//! further confined to the incident's own target, so a plugin handling an
//! incident on `deployment/prod/checkout` can act on nothing else.

mod grants;
mod pattern;
mod scope;
mod tier;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use grants::{Denial, GrantError, Grants};
pub use pattern::{PatternError, TargetPattern};
pub use scope::{
    Capability, CapabilityScopes, LogRotationScope, ScaleScope, ScopeError, TargetScope,
};
pub use tier::{Tier, TierCaps, TierPolicy, TierPolicyError};

use crate::workload::Workload;

/// An operator's grant policy, usually read from a TOML file (`--grants`).
///
/// ```toml
/// # Confine every workload capability to the incident's own target (the default).
/// confine-to-incident-target = true
///
/// [grant.scale]
/// targets = ["deployment/prod/*"]
/// min-replicas = 2
/// max-replicas = 8
/// max-step-up = 2
///
/// [grant.restart]
/// targets = ["deployment/prod/*", "deployment/staging/*"]
///
/// [grant.log-rotation]
/// log-sets = ["app"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Confine workload capabilities to the incident's target. Default `true`.
    #[serde(default = "yes")]
    pub confine_to_incident_target: bool,
    /// The capabilities this policy grants, with their scopes. Nothing is granted when absent.
    #[serde(default = "nothing")]
    pub grant: Option<CapabilityScopes>,
    /// Targets beyond the incident's own that a confined grant may still reach,
    /// e.g. `["deployment/prod/checkout-*"]`. Never applies to a tier that
    /// confines to the incident's target (such as `ai-agent`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub widen_to: Vec<TargetPattern>,
}

fn yes() -> bool {
    true
}

/// A policy file without a `[grant]` table grants nothing: deny by default.
/// (`None` is reserved for [`Policy::as_declared`], which no file can express.)
fn nothing() -> Option<CapabilityScopes> {
    Some(CapabilityScopes::default())
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read grants file {path}: {source}")]
    Read {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid policy TOML.
    #[error("grants file {path} is invalid: {message}")]
    Parse {
        /// The file's path.
        path: String,
        /// What the parser said, with the line and column.
        message: String,
    },
    /// The scopes contradict themselves.
    #[error("grants file {path}: {source}")]
    Scope {
        /// The file's path.
        path: String,
        /// The contradiction.
        source: ScopeError,
    },
}

impl Policy {
    /// The policy used when the operator gives none: grant what the manifest
    /// declares, confined to the incident's target. Suitable for local dry runs.
    pub fn as_declared() -> Self {
        Policy {
            confine_to_incident_target: true,
            grant: None,
            widen_to: Vec::new(),
        }
    }

    /// Parses a policy from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if let Some(grant) = &policy.grant {
            grant.validate().map_err(|source| PolicyError::Scope {
                path: origin.to_string(),
                source,
            })?;
        }
        Ok(policy)
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

/// The grants for one run: `declared ∩ tier caps ∩ policy`, confined to `target`
/// unless both the tier and the policy allow otherwise.
///
/// `tier` is `None` only for unsigned development plugins. [`Policy::as_declared`]
/// skips the policy layer (it grants exactly the declaration) but still confines
/// to the target.
pub fn grant(
    declared: &CapabilityScopes,
    tier: Option<(Tier, &TierCaps)>,
    policy: &Policy,
    target: &Workload,
) -> Result<Grants, GrantError> {
    grant_within(declared, tier, policy, &[], target)
}

/// [`grant`], further narrowed by `layers`, each named in denials (e.g. the
/// catalog entry whose consent an AI proposal borrows).
pub fn grant_within(
    declared: &CapabilityScopes,
    tier: Option<(Tier, &TierCaps)>,
    policy: &Policy,
    layers: &[(&str, &CapabilityScopes)],
    target: &Workload,
) -> Result<Grants, GrantError> {
    let mut grants = Grants::from_declared(declared);
    let mut only = vec![TargetPattern::exact(target)];
    let tier_confines = tier.is_some_and(|(_, caps)| caps.confine_to_incident_target);
    if !tier_confines {
        only.extend(policy.widen_to.iter().cloned());
    }
    if let Some((tier, caps)) = tier
        && let Some(layer) = &caps.caps
    {
        grants.narrow(layer, &format!("the {tier} tier"))?;
    }
    if let Some(layer) = &policy.grant {
        grants.narrow(layer, "policy")?;
    }
    for (who, layer) in layers {
        grants.narrow(layer, who)?;
    }
    if policy.confine_to_incident_target || tier_confines {
        grants.confine_to(&only);
    }
    Ok(grants)
}

#[cfg(test)]
mod tests;
