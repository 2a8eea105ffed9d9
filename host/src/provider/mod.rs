//! Effect providers: the only code that touches the world.
//!
//! Two traits, one per kind of thing a plugin may change: a
//! [`WorkloadProvider`] (status, replicas, restart, rollback, and the
//! inventory the blast-radius budget counts) and a [`LogSetProvider`]
//! (rotation). A run reaches them only through [`Effects`], which adds what
//! every provider needs and none should re-implement: the run's deadline on
//! every call, and bounded retries of a conflicting write.
//!
//! Dry-run is a provider (a simulated fleet), not a second code path: the
//! sandbox, grant checks and reports are the same for a dry run and a live
//! one. Which providers a host uses is configuration (`[workloads]`,
//! `[log-sets]`), built in one place, [`build`].

mod build;
mod docker;
mod dry_run;
mod effects;
mod log_files;
mod shadow;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use build::{BuildError, Sources, WorkloadsConfig, WorkloadsProvider, World, build};
pub use docker::{Docker, DockerConfig, PREVIOUS_IMAGE_LABEL, REVISION_LABEL};
pub use dry_run::{DryRunFleet, FleetSpec, SimulatedLogSet, SimulatedWorkload};
pub use effects::{CONFLICT_ATTEMPTS, Effects};
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

/// Who is calling a provider, and until when.
///
/// A provider may use the incident and run to make a call idempotent or to
/// label what it changed; it must not outlive `deadline` (the [`Effects`]
/// layer cuts a call off there, but a provider that knows it can set its own
/// request timeouts to end cleanly first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The incident the call is for.
    pub incident: String,
    /// The run making the call; `None` for the loop's own reads (the
    /// blast-radius inventory at decision time).
    pub run: Option<String>,
    /// When the call must have answered.
    pub deadline: Instant,
}

impl CallContext {
    /// A call made by `run` of `incident`, due by `deadline`.
    pub fn run(incident: &str, run: &str, deadline: Instant) -> Self {
        CallContext {
            incident: incident.to_string(),
            run: Some(run.to_string()),
            deadline,
        }
    }

    /// A read the loop makes for `incident` outside any run, due within `budget`.
    pub fn decision(incident: &str, budget: Duration) -> Self {
        CallContext {
            incident: incident.to_string(),
            run: None,
            deadline: Instant::now() + budget,
        }
    }

    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Why a provider could not do what was asked: one variant per thing the loop
/// does differently.
///
/// How each reaches a plugin (the WIT `error` variant has four cases, and the
/// mapping is deliberate, in `sandbox::host`):
///
/// | provider error | plugin sees | run |
/// |---|---|---|
/// | `NotFound` | `not-found` | goes on |
/// | `Forbidden` | `denied` (recorded as a denial) | goes on |
/// | `Invalid` | `invalid` | goes on |
/// | `Conflict` (after [`CONFLICT_ATTEMPTS`]) | `failed` | goes on |
/// | `Failed` | `failed` | goes on |
/// | `Unavailable`, `Timeout` | nothing: the run ends | `provider-unavailable`, escalated |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The workload or log set does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The platform's own authorisation refused the call (Kubernetes RBAC, a
    /// Docker authorisation plugin): blastwall's grant allowed it, the
    /// platform did not.
    #[error("{0}")]
    Forbidden(String),
    /// The object changed under the call (a stale resource version); the
    /// [`Effects`] layer retries on a fresh read.
    #[error("{0}")]
    Conflict(String),
    /// The platform's API cannot be reached or is failing.
    #[error("{0}")]
    Unavailable(String),
    /// The call did not answer before the run's deadline; its effect may or
    /// may not have happened.
    #[error("{0}")]
    Timeout(String),
    /// The request is well formed but impossible (e.g. scaling a DaemonSet,
    /// rolling back a workload with no earlier revision).
    #[error("{0}")]
    Invalid(String),
    /// The provider tried and failed in a way none of the above describes
    /// (an I/O error on a log file).
    #[error("{0}")]
    Failed(String),
}

impl ProviderError {
    /// The error's kebab-case name, as audited.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::NotFound(_) => "not-found",
            ProviderError::Forbidden(_) => "forbidden",
            ProviderError::Conflict(_) => "conflict",
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Invalid(_) => "invalid",
            ProviderError::Failed(_) => "failed",
        }
    }

    /// Whether the platform itself is in trouble: the run cannot usefully go
    /// on, and a human must look.
    pub fn ends_run(&self) -> bool {
        matches!(
            self,
            ProviderError::Unavailable(_) | ProviderError::Timeout(_)
        )
    }
}

/// Workload effects: one implementation per platform (the simulated fleet,
/// Kubernetes, Docker). Implementations must be safe to call concurrently from
/// many runs, on the same target or different ones.
#[async_trait]
pub trait WorkloadProvider: Send + Sync {
    /// A short name for reports and the audit, e.g. `dry-run`.
    fn name(&self) -> &'static str;
    /// Reads a workload's status.
    async fn status(
        &self,
        cx: &CallContext,
        target: &Workload,
    ) -> Result<WorkloadStatus, ProviderError>;
    /// Sets a workload's replica count; returns the count now requested.
    async fn set_replicas(
        &self,
        cx: &CallContext,
        target: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError>;
    /// Rolling restart.
    async fn restart(&self, cx: &CallContext, target: &Workload) -> Result<(), ProviderError>;
    /// Rolls back one revision; returns the revision now live.
    async fn rollback(&self, cx: &CallContext, target: &Workload) -> Result<u64, ProviderError>;
    /// How many workloads exist in `namespace` (or in the whole fleet when
    /// `None`), for the blast-radius budget. There is no default: a provider
    /// that cannot count makes the budget refuse, never guess.
    async fn count_workloads(
        &self,
        cx: &CallContext,
        namespace: Option<&str>,
    ) -> Result<u32, ProviderError>;
}

/// Log-set effects: rotation of a set the host configuration names.
#[async_trait]
pub trait LogSetProvider: Send + Sync {
    /// A short name for reports and the audit, e.g. `log-files`.
    fn name(&self) -> &'static str;
    /// Rotates a named log set.
    async fn rotate(&self, cx: &CallContext, log_set: &str) -> Result<Rotation, ProviderError>;
}
