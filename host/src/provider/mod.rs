//! Effect providers: the only code that touches the world.
//!
//! Every capability call that passes its grant check ends here, behind one
//! async trait, whatever the mode. Dry-run is a provider (a simulated fleet),
//! not a second code path: the sandbox, grant checks and reports are the same
//! for a dry run and a live one.

mod dry_run;
mod log_files;
mod shadow;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use dry_run::{DryRunFleet, FleetSpec, SimulatedLogSet, SimulatedWorkload};
pub use log_files::{LogFiles, LogSetConfig};
pub use shadow::Shadow;

use crate::workload::Workload;

/// The observed state of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadStatus {
    /// Replicas requested by the spec.
    pub replicas: u32,
    /// Replicas ready now.
    pub ready_replicas: u32,
    /// Revision live now.
    pub revision: u64,
    /// Image live now.
    pub image: String,
}

/// What a log rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rotation {
    /// Files compressed into archives.
    pub files_rotated: u32,
    /// Disk space freed, in bytes.
    pub bytes_freed: u64,
}

/// Why a provider could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The workload or log set does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is well formed but impossible (e.g. scaling a DaemonSet).
    #[error("{0}")]
    Invalid(String),
    /// The provider tried and failed.
    #[error("{0}")]
    Failed(String),
}

/// One async trait for every effect. Implementations must be safe to call
/// concurrently from many runs.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name for reports, e.g. `dry-run`.
    fn name(&self) -> &'static str;
    /// Reads a workload's status.
    async fn status(&self, target: &Workload) -> Result<WorkloadStatus, ProviderError>;
    /// Sets a workload's replica count; returns the count now requested.
    async fn set_replicas(&self, target: &Workload, replicas: u32) -> Result<u32, ProviderError>;
    /// Rolling restart.
    async fn restart(&self, target: &Workload) -> Result<(), ProviderError>;
    /// Rolls back one revision; returns the revision now live.
    async fn rollback(&self, target: &Workload) -> Result<u64, ProviderError>;
    /// Rotates a named log set.
    async fn rotate(&self, log_set: &str) -> Result<Rotation, ProviderError>;
    /// How many workloads exist in `namespace` (or in the whole fleet when
    /// `None`), for the blast-radius budget. There is no default: a provider
    /// that cannot count makes the budget refuse, never guess.
    async fn count_workloads(&self, namespace: Option<&str>) -> Result<u32, ProviderError>;
}

/// Routes workload effects and log-set effects to different providers, so a
/// live host can pair (for example) Kubernetes for workloads with real log files.
pub struct Router {
    workloads: Option<Arc<dyn Provider>>,
    log_sets: Arc<dyn Provider>,
}

impl Router {
    /// Workload calls go to `workloads` (none: every workload call fails with a
    /// clear message), log-set calls to `log_sets`.
    pub fn new(workloads: Option<Arc<dyn Provider>>, log_sets: Arc<dyn Provider>) -> Self {
        Router {
            workloads,
            log_sets,
        }
    }

    fn workloads(&self) -> Result<&dyn Provider, ProviderError> {
        self.workloads.as_deref().ok_or_else(|| {
            ProviderError::Failed(
                "no live workload provider is configured on this host (run in dry-run mode)".into(),
            )
        })
    }
}

#[async_trait]
impl Provider for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    async fn status(&self, target: &Workload) -> Result<WorkloadStatus, ProviderError> {
        self.workloads()?.status(target).await
    }

    async fn set_replicas(&self, target: &Workload, replicas: u32) -> Result<u32, ProviderError> {
        self.workloads()?.set_replicas(target, replicas).await
    }

    async fn restart(&self, target: &Workload) -> Result<(), ProviderError> {
        self.workloads()?.restart(target).await
    }

    async fn rollback(&self, target: &Workload) -> Result<u64, ProviderError> {
        self.workloads()?.rollback(target).await
    }

    async fn rotate(&self, log_set: &str) -> Result<Rotation, ProviderError> {
        self.log_sets.rotate(log_set).await
    }

    async fn count_workloads(&self, namespace: Option<&str>) -> Result<u32, ProviderError> {
        self.workloads()?.count_workloads(namespace).await
    }
}
