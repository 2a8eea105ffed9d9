//! The dry-run provider: a simulated fleet that remembers what was done to it.
//!
//! Effects change the simulation, so a plugin that scales and then reads
//! status sees its own change, and a second rollback goes back one more
//! revision: dry runs answer consistently across calls and runs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    CallContext, LogSetProvider, ProviderError, Rotation, WorkloadProvider, WorkloadStatus,
};
use crate::workload::{Workload, WorkloadKind};

/// One simulated workload in a fleet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SimulatedWorkload {
    /// `kind/namespace/name`, e.g. `deployment/prod/checkout`.
    pub target: Workload,
    /// Replicas requested, e.g. `3`.
    pub replicas: u32,
    /// Replicas ready; defaults to `replicas`.
    #[serde(default)]
    pub ready_replicas: Option<u32>,
    /// Revision live, e.g. `7`.
    #[serde(default = "first_revision")]
    pub revision: u64,
    /// Image live, e.g. `registry.example/checkout:1.8.2`.
    pub image: String,
    /// Earlier images, oldest first; rollbacks walk back through them.
    #[serde(default)]
    pub history: Vec<String>,
}

fn first_revision() -> u64 {
    1
}

/// One simulated log set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SimulatedLogSet {
    /// Live log files, e.g. `14`.
    pub files: u32,
    /// Their total size in bytes, e.g. `2_147_483_648`.
    pub bytes: u64,
}

/// A fleet description (TOML): simulated workloads and log sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FleetSpec {
    /// The workloads.
    #[serde(default)]
    pub workloads: Vec<SimulatedWorkload>,
    /// The log sets, by name.
    #[serde(default)]
    pub log_sets: BTreeMap<String, SimulatedLogSet>,
}

impl FleetSpec {
    /// The fleet shipped with blastwall, used when no fleet file is given.
    pub fn embedded_default() -> Self {
        toml::from_str(include_str!("default-fleet.toml")).expect("the embedded fleet is valid")
    }

    /// Parses a fleet file; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| {
            format!(
                "fleet file {origin} is invalid: {}",
                e.to_string().trim_end()
            )
        })
    }
}

#[derive(Debug, Clone)]
struct State {
    replicas: u32,
    ready: u32,
    revision: u64,
    image: String,
    history: Vec<String>,
    restarts: u64,
}

/// Gzip typically shrinks text logs to about a tenth; the simulation frees 90%.
const SIMULATED_COMPRESSION: u64 = 10;

/// The simulated fleet. Cheap to share: clone the `Arc` around it.
#[derive(Debug)]
pub struct DryRunFleet {
    workloads: Mutex<BTreeMap<Workload, State>>,
    log_sets: Mutex<BTreeMap<String, SimulatedLogSet>>,
    /// Workloads per namespace, kept with `workloads`: the blast-radius
    /// budget asks at every decision, and a large fleet should not be
    /// scanned for it.
    namespaces: Mutex<BTreeMap<String, u32>>,
}

fn count_namespaces<'a>(targets: impl Iterator<Item = &'a Workload>) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for target in targets {
        *counts.entry(target.namespace().to_string()).or_insert(0) += 1;
    }
    counts
}

impl DryRunFleet {
    /// A fleet in the state `spec` describes.
    pub fn new(spec: FleetSpec) -> Self {
        let workloads = spec
            .workloads
            .into_iter()
            .map(|w| {
                let state = State {
                    ready: w.ready_replicas.unwrap_or(w.replicas).min(w.replicas),
                    replicas: w.replicas,
                    revision: w.revision,
                    image: w.image,
                    history: w.history,
                    restarts: 0,
                };
                (w.target, state)
            })
            .collect::<BTreeMap<_, _>>();
        DryRunFleet {
            namespaces: Mutex::new(count_namespaces(workloads.keys())),
            workloads: Mutex::new(workloads),
            log_sets: Mutex::new(spec.log_sets),
        }
    }

    /// Adds `target` with plausible defaults if the fleet does not know it, so a
    /// dry run of a real alert can proceed. Returns whether it was added.
    pub fn adopt(&self, target: &Workload) -> bool {
        let mut workloads = self.workloads.lock().expect("fleet lock");
        if workloads.contains_key(target) {
            return false;
        }
        workloads.insert(
            target.clone(),
            State {
                replicas: 2,
                ready: 2,
                revision: 2,
                image: format!("{}:current", target.name()),
                history: vec![format!("{}:previous", target.name())],
                restarts: 0,
            },
        );
        *self
            .namespaces
            .lock()
            .expect("fleet lock")
            .entry(target.namespace().to_string())
            .or_insert(0) += 1;
        true
    }

    /// The state of `target` now: how tests and the demo see what runs did.
    pub fn snapshot(&self, target: &Workload) -> Result<WorkloadStatus, ProviderError> {
        self.with(target, |s| {
            Ok(WorkloadStatus {
                replicas: s.replicas,
                ready_replicas: s.ready,
                revision: s.revision,
                image: s.image.clone(),
            })
        })
    }

    /// How many times `target` was restarted, as a platform shows it (a
    /// Deployment's `restartedAt`, a container's start time).
    pub fn restarts(&self, target: &Workload) -> Result<u64, ProviderError> {
        self.with(target, |s| Ok(s.restarts))
    }

    fn with<R>(
        &self,
        target: &Workload,
        f: impl FnOnce(&mut State) -> Result<R, ProviderError>,
    ) -> Result<R, ProviderError> {
        let mut workloads = self.workloads.lock().expect("fleet lock");
        let state = workloads.get_mut(target).ok_or_else(|| {
            ProviderError::NotFound(format!("{target} does not exist in the simulated fleet"))
        })?;
        f(state)
    }
}

#[async_trait]
impl WorkloadProvider for DryRunFleet {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    async fn status(
        &self,
        _: &CallContext,
        target: &Workload,
    ) -> Result<WorkloadStatus, ProviderError> {
        self.snapshot(target)
    }

    async fn set_replicas(
        &self,
        _: &CallContext,
        target: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError> {
        if target.kind() == WorkloadKind::DaemonSet {
            return Err(ProviderError::Invalid(format!(
                "{target} is a daemonset; daemonsets run one replica per node and cannot be scaled"
            )));
        }
        self.with(target, |s| {
            s.replicas = replicas;
            s.ready = replicas;
            Ok(replicas)
        })
    }

    async fn restart(&self, _: &CallContext, target: &Workload) -> Result<(), ProviderError> {
        self.with(target, |s| {
            // A rolling restart replaces every pod; in the simulation they all come back ready.
            s.ready = s.replicas;
            s.restarts += 1;
            Ok(())
        })
    }

    async fn rollback(&self, _: &CallContext, target: &Workload) -> Result<u64, ProviderError> {
        self.with(target, |s| {
            let previous = s.history.pop().ok_or_else(|| {
                ProviderError::Invalid(format!("{target} has no earlier revision to roll back to"))
            })?;
            // Like `kubectl rollout undo`, going back creates a new revision number.
            s.revision += 1;
            s.image = previous;
            s.ready = s.replicas;
            Ok(s.revision)
        })
    }

    async fn count_workloads(
        &self,
        _: &CallContext,
        namespace: Option<&str>,
    ) -> Result<u32, ProviderError> {
        Ok(match namespace {
            None => self.workloads.lock().expect("fleet lock").len() as u32,
            Some(ns) => self
                .namespaces
                .lock()
                .expect("fleet lock")
                .get(ns)
                .copied()
                .unwrap_or(0),
        })
    }
}

#[async_trait]
impl LogSetProvider for DryRunFleet {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    async fn rotate(&self, _: &CallContext, log_set: &str) -> Result<Rotation, ProviderError> {
        let mut sets = self.log_sets.lock().expect("fleet lock");
        let set = sets.get_mut(log_set).ok_or_else(|| {
            ProviderError::NotFound(format!(
                "log set {log_set:?} does not exist in the simulated fleet"
            ))
        })?;
        let rotation = Rotation {
            files_rotated: set.files,
            bytes_freed: set.bytes - set.bytes / SIMULATED_COMPRESSION,
        };
        set.bytes = 0;
        Ok(rotation)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cx() -> CallContext {
        CallContext::decision("test", Duration::from_secs(5))
    }

    fn w(s: &str) -> Workload {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn answers_stay_consistent_across_calls() {
        let fleet = DryRunFleet::new(FleetSpec::embedded_default());
        let checkout = w("deployment/prod/checkout");
        assert_eq!(fleet.set_replicas(&cx(), &checkout, 5).await.unwrap(), 5);
        assert_eq!(fleet.status(&cx(), &checkout).await.unwrap().replicas, 5);
        assert_eq!(fleet.rollback(&cx(), &checkout).await.unwrap(), 8);
        assert_eq!(
            fleet.status(&cx(), &checkout).await.unwrap().image,
            "registry.example/checkout:1.8.1"
        );
        assert_eq!(fleet.rollback(&cx(), &checkout).await.unwrap(), 9);
        let err = fleet.rollback(&cx(), &checkout).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployment/prod/checkout has no earlier revision to roll back to"
        );
        let first = fleet.rotate(&cx(), "app").await.unwrap();
        assert_eq!(first.files_rotated, 14);
        assert!(first.bytes_freed > 1_900_000_000);
        assert_eq!(
            fleet.rotate(&cx(), "app").await.unwrap().bytes_freed,
            0,
            "rotated logs free nothing twice"
        );
    }

    #[tokio::test]
    async fn unknown_targets_and_unscalable_kinds_are_errors() {
        let fleet = DryRunFleet::new(FleetSpec::default());
        let err = fleet
            .status(&cx(), &w("deployment/prod/ghost"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::NotFound(
                "deployment/prod/ghost does not exist in the simulated fleet".into()
            )
        );
        assert!(fleet.adopt(&w("daemonset/x/y")));
        assert!(matches!(
            fleet.set_replicas(&cx(), &w("daemonset/x/y"), 3).await,
            Err(ProviderError::Invalid(_))
        ));
        assert!(matches!(
            fleet.rotate(&cx(), "nope").await,
            Err(ProviderError::NotFound(_))
        ));
    }

    #[test]
    fn fleet_files_reject_unknown_fields() {
        let err = FleetSpec::from_toml("[[workloads]]\ntarget = \"deployment/a/b\"\nreplicas = 1\nimage = \"x\"\nreplica = 2\n", "f.toml")
            .unwrap_err();
        assert!(err.contains("unknown field `replica`"), "{err}");
    }
}
