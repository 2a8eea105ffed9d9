//! Plugin manifests: what a plugin is, what it may ask for, and its limits.
//!
//! A manifest is TOML, written by the plugin's author and (from the signing
//! release on) covered by the same signature as the code, so a reviewer reads
//! the manifest to learn the most a plugin could ever do. Unknown fields are
//! rejected: a misspelt limit must never silently fall back to a default.
//!
//! ```toml
//! name = "scale-on-saturation"
//! version = "0.1.0"
//! description = "Adds replicas when a workload is saturated."
//! classes = ["cpu-saturation"]
//!
//! [capabilities.scale]
//! targets = ["deployment/*/*"]
//! min-replicas = 1
//! max-replicas = 20
//! max-step-up = 2
//!
//! [limits]
//! fuel = 50_000_000
//! memory-mib = 16
//! timeout-ms = 2000
//! max-actions = 1
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::{CapabilityScopes, ScopeError};

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The plugin's name, e.g. `restart-on-oom`: lowercase letters, digits and `-`.
    pub name: String,
    /// Semantic version, e.g. `0.1.0`.
    pub version: semver::Version,
    /// One or two sentences for reviewers and operators.
    pub description: String,
    /// Failure classes this plugin remediates, e.g. `["oom-killed"]`.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The capabilities the plugin needs, each with its scope. Empty means read-only.
    #[serde(default)]
    pub capabilities: CapabilityScopes,
    /// Resource limits the plugin asks for; the host caps them.
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// Limits a manifest asks for. Absent fields take the host's defaults; every
/// value is capped by the host's ceilings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsSpec {
    /// Wasm fuel (roughly, instructions) for one run, e.g. `50_000_000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Linear memory for one run in MiB, e.g. `16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Wall-clock time for one run in milliseconds, e.g. `2000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Mutating capability calls (granted or denied) one run may make, e.g. `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions: Option<u32>,
}

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a valid manifest.
    #[error("manifest {origin} is invalid: {message}")]
    Parse {
        /// Where the manifest came from.
        origin: String,
        /// What the parser said, with line and column.
        message: String,
    },
    /// A field has a value that is well-typed but unusable.
    #[error("manifest {origin}: {message}")]
    Field {
        /// Where the manifest came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The capability scopes contradict themselves.
    #[error("manifest {origin}: {source}")]
    Scope {
        /// Where the manifest came from.
        origin: String,
        /// The contradiction.
        source: ScopeError,
    },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Manifest {
    /// Parses and validates a manifest; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let field = |message: String| ManifestError::Field {
            origin: origin.to_string(),
            message,
        };
        if !valid_name(&manifest.name) {
            return Err(field(format!(
                "name {:?} must be 1-64 lowercase letters, digits or '-', starting with a letter",
                manifest.name
            )));
        }
        if manifest.description.trim().is_empty() {
            return Err(field("description must not be empty".into()));
        }
        if let Some(class) = manifest.classes.iter().find(|c| !valid_name(c)) {
            return Err(field(format!(
                "class {class:?} must be lowercase letters, digits or '-', starting with a letter"
            )));
        }
        let limits = &manifest.limits;
        for (name, zero) in [
            ("fuel", limits.fuel == Some(0)),
            ("memory-mib", limits.memory_mib == Some(0)),
            ("timeout-ms", limits.timeout_ms == Some(0)),
        ] {
            if zero {
                return Err(field(format!("limits.{name} must be greater than zero")));
            }
        }
        manifest
            .capabilities
            .validate()
            .map_err(|source| ManifestError::Scope {
                origin: origin.to_string(),
                source,
            })?;
        Ok(manifest)
    }

    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

/// The JSON schema of [`Manifest`], generated from the types (pretty-printed).
/// Editors use it to complete and check `blastwall.toml` files.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_string_pretty(&schema).expect("a schema always serializes")
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::policy::Capability;

    const GOOD: &str = r#"
        name = "scale-on-saturation"
        version = "0.1.0"
        description = "Adds replicas."
        classes = ["cpu-saturation"]
        [capabilities.scale]
        targets = ["deployment/*/*"]
        max-replicas = 20
        [limits]
        fuel = 1000
        memory-mib = 8
    "#;

    #[test]
    fn the_committed_schema_is_current() {
        let committed = include_str!("../../../schemas/manifest.schema.json");
        assert_eq!(
            committed.trim_end(),
            json_schema(),
            "schemas/manifest.schema.json is stale: run `cargo run -- manifest-schema > schemas/manifest.schema.json`"
        );
    }

    #[test]
    fn parses_a_complete_manifest() {
        let m = Manifest::from_toml(GOOD, "m.toml").unwrap();
        assert_eq!(m.name, "scale-on-saturation");
        assert_eq!(m.version.to_string(), "0.1.0");
        assert_eq!(
            m.capabilities
                .capabilities()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![Capability::Scale]
        );
        assert_eq!(
            m.capabilities.scale.unwrap().min_replicas,
            1,
            "min-replicas defaults to 1"
        );
        assert_eq!(m.limits.memory_mib, Some(8));
    }

    #[rstest]
    #[case(GOOD.replace("0.1.0", "one"), "unexpected character 'o'")]
    #[case(GOOD.replace("fuel = 1000", "fuel = 0"), "limits.fuel must be greater than zero")]
    #[case(GOOD.replace("fuel = 1000", "fuell = 1000"), "unknown field `fuell`")]
    #[case(GOOD.replace("\"scale-on-saturation\"", "\"Scale\""), "name \"Scale\" must be")]
    #[case(GOOD.replace("[capabilities.scale]", "[capabilities.delete]"), "unknown field `delete`")]
    #[case(GOOD.replace("max-replicas = 20", "max-replicas = 0"), "max-replicas must be at least 1")]
    #[case(GOOD.replace("Adds replicas.", " "), "description must not be empty")]
    fn rejects_bad_manifests_naming_the_problem(#[case] text: String, #[case] message: &str) {
        let err = Manifest::from_toml(&text, "m.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}");
        assert!(err.starts_with("manifest m.toml"), "{err}");
    }
}
