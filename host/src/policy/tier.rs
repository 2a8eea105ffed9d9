//! Trust tiers: what any plugin signed by a key of a given tier may be granted at most.
//!
//! A tier is a cap layer between the manifest and the operator's policy. The
//! `publisher` tier (platform teams' release keys) is, by default, capped only
//! by manifests and policy; the `ai-agent` tier (keys held by AI agents that
//! propose remediations) may never roll back, scales at most two replicas per
//! step, and is always confined to the incident's own target.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::scope::{CapabilityScopes, ScopeError};

/// A trust tier, assigned to each key in the trust store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Platform teams' release keys.
    Publisher,
    /// Keys held by AI agents; the strictest tier.
    AiAgent,
}

impl Tier {
    /// The tier's name, e.g. `ai-agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Publisher => "publisher",
            Tier::AiAgent => "ai-agent",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "publisher" => Ok(Tier::Publisher),
            "ai-agent" => Ok(Tier::AiAgent),
            other => Err(format!(
                "unknown tier {other:?}: expected publisher or ai-agent"
            )),
        }
    }
}

/// The most a tier allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TierCaps {
    /// Always confine workload capabilities to the incident's target, whatever the policy says.
    #[serde(default)]
    pub confine_to_incident_target: bool,
    /// The capabilities and scopes the tier allows at most. Absent: no cap beyond manifest and policy.
    #[serde(default)]
    pub caps: Option<CapabilityScopes>,
}

/// The caps of every tier (TOML; see `default-tiers.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TierPolicy {
    /// Caps for `publisher` keys.
    pub publisher: TierCaps,
    /// Caps for `ai-agent` keys.
    pub ai_agent: TierCaps,
}

/// Why a tier policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TierPolicyError {
    /// The file could not be read.
    #[error("cannot read tier policy {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid tier policy.
    #[error("tier policy {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl TierPolicy {
    /// The tier caps shipped with blastwall.
    pub fn embedded_default() -> Self {
        Self::from_toml(
            include_str!("default-tiers.toml"),
            "the embedded tier policy",
        )
        .expect("the embedded tier policy is valid")
    }

    /// Parses a tier policy; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, TierPolicyError> {
        let parse_error = |message: String| TierPolicyError::Parse {
            path: origin.to_string(),
            message,
        };
        let policy: TierPolicy =
            toml::from_str(text).map_err(|e| parse_error(e.to_string().trim_end().to_string()))?;
        for caps in [&policy.publisher, &policy.ai_agent] {
            if let Some(scopes) = &caps.caps {
                scopes
                    .validate()
                    .map_err(|e: ScopeError| parse_error(e.to_string()))?;
            }
        }
        Ok(policy)
    }

    /// Reads a tier policy file.
    pub fn load(path: &Path) -> Result<Self, TierPolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TierPolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The caps for `tier`.
    pub fn caps(&self, tier: Tier) -> &TierCaps {
        match tier {
            Tier::Publisher => &self.publisher,
            Tier::AiAgent => &self.ai_agent,
        }
    }
}
