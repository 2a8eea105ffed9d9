//! Host configuration (TOML): log sets, limit ceilings, and the remediation
//! loop (catalog, classification, guardrails, verification, escalation).
//! `examples/loop/blastwall.toml` shows every section; with no file the host
//! uses the embedded `default-config.toml`, which maps the bundled example
//! plugins for dry runs.
//!
//! ```toml
//! [workloads]
//! fleet = "fleet.toml"
//!
//! [log-sets.app]
//! root = "/var/log/app"
//! pattern = "*.log"
//! keep = 5
//!
//! [ceilings]
//! max-fuel = 1_000_000_000
//! max-memory-mib = 64
//! max-timeout-ms = 10_000
//! max-actions = 20
//! max-table-elements = 20_000
//! wasm-stack-kib = 512
//! max-output-bytes = 65_536
//! max-log-bytes = 65_536
//! defaults = { fuel = 100_000_000, memory-mib = 16, timeout-ms = 2_000, max-actions = 3 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::catalog::CatalogEntry;
use crate::classify::ClassifyConfig;
use crate::escalate::EscalationConfig;
use crate::guardrails::GuardrailConfig;
use crate::provider::{LogSetConfig, WorkloadsConfig};
use crate::sandbox::Ceilings;
use crate::verify::PrometheusConfig;

/// The host's configuration. Every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostConfig {
    /// Where workload effects go (`[workloads]`).
    #[serde(default)]
    pub workloads: WorkloadsConfig,
    /// Named log sets that `log-rotation` may rotate in live mode.
    #[serde(default)]
    pub log_sets: BTreeMap<String, LogSetConfig>,
    /// Limit ceilings and defaults; the built-in ones when absent.
    #[serde(default)]
    pub ceilings: Option<Ceilings>,
    /// Failure class → plugin, parameters and per-class guardrails.
    #[serde(default)]
    pub catalog: BTreeMap<String, CatalogEntry>,
    /// Classification rules and the optional model.
    #[serde(default)]
    pub classify: ClassifyConfig,
    /// Global guardrails: storm breaker, blast radius, windows.
    #[serde(default)]
    pub guardrails: GuardrailConfig,
    /// The Prometheus that verifies live runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusConfig>,
    /// Who is told when automation stops.
    #[serde(default)]
    pub escalation: EscalationConfig,
    /// The HTTP API of `blastwall serve`.
    #[serde(default)]
    pub api: crate::api::ApiConfig,
    /// The threads plugins run on, and how many runs and compilations at once.
    #[serde(default)]
    pub sandbox: crate::sandbox::PoolConfig,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("config {path} is invalid: {message}")]
    Parse {
        /// The file's path.
        path: String,
        /// What the parser said.
        message: String,
    },
}

impl HostConfig {
    /// Parses configuration text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: HostConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config
            .sandbox
            .validate()
            .map_err(|message| ConfigError::Parse {
                path: origin.to_string(),
                message,
            })?;
        Ok(config)
    }

    /// The embedded default: the bundled example plugins mapped for dry runs.
    pub fn embedded_default() -> Self {
        Self::from_toml(
            include_str!("default-config.toml"),
            "embedded default-config.toml",
        )
        .expect("the embedded configuration is valid")
    }

    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod loop_tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::Catalog;
    use crate::classify::Classifier;
    use crate::escalate::Escalator;
    use crate::guardrails::Window;
    use crate::signature::PluginArtifact;

    fn bundled() -> Vec<Arc<PluginArtifact>> {
        crate::bundled::ALL
            .iter()
            .map(|b| {
                Arc::new(PluginArtifact::insecure_unsigned(
                    b.wasm.to_vec(),
                    b.manifest(),
                ))
            })
            .collect()
    }

    /// The shipped files stay valid: every section parses and every check the
    /// host makes at start passes.
    #[test]
    fn the_example_and_the_embedded_configuration_are_valid() {
        let example = HostConfig::from_toml(
            include_str!("../../examples/loop/blastwall.toml"),
            "examples/loop/blastwall.toml",
        )
        .unwrap();
        let serve = HostConfig::from_toml(
            include_str!("../../examples/serve/blastwall.toml"),
            "examples/serve/blastwall.toml",
        )
        .unwrap();
        assert_eq!(serve.api.tokens.len(), 2);
        let docker = HostConfig::from_toml(
            include_str!("../../examples/docker/blastwall.toml"),
            "examples/docker/blastwall.toml",
        )
        .unwrap();
        assert_eq!(
            docker.workloads.provider,
            Some(crate::provider::WorkloadsProvider::Docker)
        );
        Catalog::resolve(&docker.catalog, &bundled()).unwrap();
        for config in [example, serve, HostConfig::embedded_default()] {
            let catalog = Catalog::resolve(&config.catalog, &bundled()).unwrap();
            assert_eq!(catalog.classes().len(), 4);
            Classifier::new(&config.classify).unwrap();
            Escalator::new(&config.escalation).unwrap();
            for spec in &config.guardrails.windows {
                Window::try_from(spec.clone()).unwrap();
            }
        }
    }

    #[test]
    fn explains_a_misspelt_section() {
        let err =
            HostConfig::from_toml("[catalgo.oom-killed]\nplugin = \"x@1.0.0\"\n", "host.toml")
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("config host.toml is invalid:"), "{err}");
        assert!(err.contains("unknown field `catalgo`"), "{err}");
    }
}
