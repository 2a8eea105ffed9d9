//! Which providers a host acts through, from configuration, built in one
//! place: every command (`serve`, `handle`, `run`, `demo`) gets its
//! [`Effects`] from [`build`].
//!
//! ```toml
//! [workloads]
//! fleet = "fleet.toml"   # the simulated fleet dry runs act on (default: the embedded one)
//!
//! [log-sets.app]         # the log sets a live host may rotate
//! root = "/var/log/app"
//! ```
//!
//! A dry run always acts on the simulated fleet, its workloads and its log
//! sets. A live host rotates the configured log sets for real, and acts on
//! workloads through `[workloads] provider`; with none configured, every
//! workload call fails with a clear message and the blast-radius budget,
//! which cannot count, refuses workload plugins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    CallContext, Docker, DockerConfig, DryRunFleet, Effects, FleetSpec, LogFiles, LogSetConfig,
    ProviderError, WorkloadProvider, WorkloadStatus,
};
use crate::workload::Workload;

/// `[workloads]`: where workload effects go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkloadsConfig {
    /// The platform a live host acts on. None: a live host acts on log sets
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<WorkloadsProvider>,
    /// The simulated fleet (TOML) dry runs act on; `--fleet` overrides it.
    /// Default: the embedded example fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<PathBuf>,
    /// The Docker Engine, for `provider = "docker"`; defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerConfig>,
}

/// A workload platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadsProvider {
    /// The simulated fleet. Only for dry runs: a live host refuses it, so no
    /// run is ever reported as live while its workload effects were simulated.
    DryRun,
    /// Services on a Docker Engine (`[workloads.docker]`).
    Docker,
}

/// What [`build`] needs: the mode and the configured (and flagged) sources.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// Whether effects are applied for real.
    pub live: bool,
    /// `[workloads]`.
    pub workloads: &'a WorkloadsConfig,
    /// `--fleet`, which overrides `[workloads] fleet`.
    pub fleet: Option<&'a Path>,
    /// The log sets a live host may rotate (`[log-sets]` and `--log-set`).
    pub log_sets: &'a BTreeMap<String, LogSetConfig>,
}

/// The providers a host acts through.
pub struct World {
    /// What runs act through.
    pub effects: Effects,
    /// The simulated fleet, in a dry run (for commands that show or extend it).
    pub fleet: Option<Arc<DryRunFleet>>,
}

/// Why the configured providers cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The fleet file could not be read.
    #[error("cannot read fleet {path}: {source}")]
    FleetUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The fleet file is not a valid fleet.
    #[error("{0}")]
    FleetInvalid(String),
    /// The Docker provider cannot start.
    #[error("[workloads] provider = \"docker\": {0}")]
    Docker(String),
    /// `[workloads] provider = "dry-run"` on a live host.
    #[error(
        "[workloads] provider = \"dry-run\" simulates workloads, so a live host refuses it: configure a real platform, or remove the provider to act on log sets only"
    )]
    SimulatedWhileLive,
}

/// Builds the providers `sources` describe.
pub fn build(sources: Sources<'_>) -> Result<World, BuildError> {
    if !sources.live {
        let path = sources.fleet.or(sources.workloads.fleet.as_deref());
        let fleet = Arc::new(DryRunFleet::new(fleet_spec(path)?));
        return Ok(World {
            effects: Effects::simulated(fleet.clone()),
            fleet: Some(fleet),
        });
    }
    let workloads: Arc<dyn WorkloadProvider> = match sources.workloads.provider {
        None => Arc::new(Unconfigured),
        Some(WorkloadsProvider::DryRun) => return Err(BuildError::SimulatedWhileLive),
        Some(WorkloadsProvider::Docker) => Arc::new(
            Docker::connect(sources.workloads.docker.clone().unwrap_or_default())
                .map_err(BuildError::Docker)?,
        ),
    };
    Ok(World {
        effects: Effects::new(workloads, Arc::new(LogFiles::new(sources.log_sets.clone()))),
        fleet: None,
    })
}

fn fleet_spec(path: Option<&Path>) -> Result<FleetSpec, BuildError> {
    let Some(path) = path else {
        return Ok(FleetSpec::embedded_default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| BuildError::FleetUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    FleetSpec::from_toml(&text, &path.display().to_string()).map_err(BuildError::FleetInvalid)
}

/// A live host with no workload platform: every workload call says so.
struct Unconfigured;

fn unconfigured() -> ProviderError {
    ProviderError::Failed(
        "no live workload provider is configured on this host (run in dry-run mode)".into(),
    )
}

#[async_trait]
impl WorkloadProvider for Unconfigured {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn status(&self, _: &CallContext, _: &Workload) -> Result<WorkloadStatus, ProviderError> {
        Err(unconfigured())
    }

    async fn set_replicas(
        &self,
        _: &CallContext,
        _: &Workload,
        _: u32,
    ) -> Result<u32, ProviderError> {
        Err(unconfigured())
    }

    async fn restart(&self, _: &CallContext, _: &Workload) -> Result<(), ProviderError> {
        Err(unconfigured())
    }

    async fn rollback(&self, _: &CallContext, _: &Workload) -> Result<u64, ProviderError> {
        Err(unconfigured())
    }

    async fn count_workloads(
        &self,
        _: &CallContext,
        _: Option<&str>,
    ) -> Result<u32, ProviderError> {
        Err(unconfigured())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sources<'a>(
        live: bool,
        workloads: &'a WorkloadsConfig,
        fleet: Option<&'a Path>,
        log_sets: &'a BTreeMap<String, LogSetConfig>,
    ) -> Sources<'a> {
        Sources {
            live,
            workloads,
            fleet,
            log_sets,
        }
    }

    fn cx() -> CallContext {
        CallContext::decision("test", Duration::from_secs(5))
    }

    #[test]
    fn a_live_host_refuses_the_simulated_fleet() {
        let workloads: WorkloadsConfig = toml::from_str("provider = \"dry-run\"").unwrap();
        let err = build(sources(true, &workloads, None, &BTreeMap::new()))
            .err()
            .expect("refused");
        assert!(matches!(err, BuildError::SimulatedWhileLive), "{err}");
        assert!(err.to_string().contains("a live host refuses it"), "{err}");
        // The same configuration is fine for a dry run.
        assert!(build(sources(false, &workloads, None, &BTreeMap::new())).is_ok());
    }

    #[test]
    fn unknown_providers_and_fields_are_refused_by_name() {
        let err = toml::from_str::<WorkloadsConfig>("provider = \"kubernetes-ish\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `kubernetes-ish`"),
            "{err}"
        );
        let err = toml::from_str::<WorkloadsConfig>("fleets = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `fleets`"), "{err}");
    }

    #[tokio::test]
    async fn the_fleet_flag_overrides_the_configured_fleet() {
        let dir = tempfile::tempdir().unwrap();
        let configured = dir.path().join("configured.toml");
        let flagged = dir.path().join("flagged.toml");
        let fleet = |name: &str| {
            format!(
                "[[workloads]]\ntarget = \"deployment/prod/{name}\"\nreplicas = 2\nimage = \"{name}:1\"\n"
            )
        };
        std::fs::write(&configured, fleet("configured")).unwrap();
        std::fs::write(&flagged, fleet("flagged")).unwrap();
        let workloads = WorkloadsConfig {
            fleet: Some(configured.clone()),
            ..WorkloadsConfig::default()
        };
        let none = BTreeMap::new();
        let world = build(sources(false, &workloads, None, &none)).unwrap();
        let target: Workload = "deployment/prod/configured".parse().unwrap();
        assert_eq!(
            world.effects.status(&cx(), &target).await.unwrap().replicas,
            2
        );
        let world = build(sources(false, &workloads, Some(&flagged), &none)).unwrap();
        assert!(world.fleet.is_some());
        let target: Workload = "deployment/prod/flagged".parse().unwrap();
        assert!(world.effects.status(&cx(), &target).await.is_ok());
    }

    #[test]
    fn a_bad_fleet_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let none = BTreeMap::new();
        let workloads = WorkloadsConfig::default();
        let missing = dir.path().join("missing.toml");
        let err = build(sources(false, &workloads, Some(&missing), &none))
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("cannot read fleet "), "{err}");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[[workloads]]\ntarget = 3\n").unwrap();
        let err = build(sources(false, &workloads, Some(&bad), &none))
            .err()
            .unwrap();
        assert!(err.to_string().contains("bad.toml is invalid"), "{err}");
    }

    #[tokio::test]
    async fn a_live_host_without_a_platform_says_so_on_every_workload_call() {
        let none = BTreeMap::new();
        let world = build(sources(true, &WorkloadsConfig::default(), None, &none)).unwrap();
        assert!(world.fleet.is_none());
        let target: Workload = "deployment/prod/checkout".parse().unwrap();
        let err = world.effects.restart(&cx(), &target).await.unwrap_err();
        assert!(
            err.to_string().contains("no live workload provider"),
            "{err}"
        );
        let err = world
            .effects
            .count_workloads(&cx(), None)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no live workload provider"),
            "{err}"
        );
    }
}
