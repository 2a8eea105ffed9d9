//! [`Effects`]: the pair of providers a run acts through, and what every call
//! gets whichever provider answers it.
//!
//! Two rules live here so that no provider re-implements them, differently:
//! a call never outlives its [`CallContext::deadline`] (it ends as
//! [`ProviderError::Timeout`]), and a write that meets a
//! [`ProviderError::Conflict`] is tried again, at most [`CONFLICT_ATTEMPTS`]
//! times in all. Each attempt is a new call, so the provider reads the object
//! afresh before writing it again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{
    CallContext, DryRunFleet, LogSetProvider, ProviderError, Rotation, Shadow, WorkloadProvider,
    WorkloadStatus,
};
use crate::workload::Workload;

/// Attempts of a write that keeps conflicting, the first included.
pub const CONFLICT_ATTEMPTS: u32 = 3;

/// Pause before a conflicting write is tried again, times the attempt number:
/// enough for a controller's update to land, short against a run's deadline.
const CONFLICT_BACKOFF: Duration = Duration::from_millis(25);

/// The workload and log-set providers one host (or one run) acts through.
/// Cheap to clone: two `Arc`s.
#[derive(Clone)]
pub struct Effects {
    workloads: Arc<dyn WorkloadProvider>,
    log_sets: Arc<dyn LogSetProvider>,
}

impl Effects {
    /// Workload calls go to `workloads`, log-set calls to `log_sets`.
    pub fn new(workloads: Arc<dyn WorkloadProvider>, log_sets: Arc<dyn LogSetProvider>) -> Self {
        Effects {
            workloads,
            log_sets,
        }
    }

    /// Everything goes to one simulated fleet (its workloads and its log sets).
    pub fn simulated(fleet: Arc<DryRunFleet>) -> Self {
        Effects::new(fleet.clone(), fleet)
    }

    /// The workload provider.
    pub fn workloads(&self) -> &Arc<dyn WorkloadProvider> {
        &self.workloads
    }

    /// The log-set provider.
    pub fn log_sets(&self) -> &Arc<dyn LogSetProvider> {
        &self.log_sets
    }

    /// The same reads, and writes that change nothing: what a shadow run acts through.
    pub fn shadowed(&self) -> Effects {
        Effects::new(
            Arc::new(Shadow::new(self.workloads.clone())),
            Arc::new(Shadow::new(self.log_sets.clone())),
        )
    }

    /// Reads a workload's status.
    pub async fn status(
        &self,
        cx: &CallContext,
        target: &Workload,
    ) -> Result<WorkloadStatus, ProviderError> {
        let what = || format!("reading the status of {target}");
        within(cx, what, self.workloads.status(cx, target)).await
    }

    /// Sets a workload's replica count, retrying conflicts.
    pub async fn set_replicas(
        &self,
        cx: &CallContext,
        target: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError> {
        let what = || format!("scaling {target} to {replicas}");
        retrying(cx, what, || {
            self.workloads.set_replicas(cx, target, replicas)
        })
        .await
    }

    /// Restarts a workload, retrying conflicts.
    pub async fn restart(&self, cx: &CallContext, target: &Workload) -> Result<(), ProviderError> {
        let what = || format!("restarting {target}");
        retrying(cx, what, || self.workloads.restart(cx, target)).await
    }

    /// Rolls a workload back one revision, retrying conflicts.
    pub async fn rollback(
        &self,
        cx: &CallContext,
        target: &Workload,
    ) -> Result<u64, ProviderError> {
        let what = || format!("rolling back {target}");
        retrying(cx, what, || self.workloads.rollback(cx, target)).await
    }

    /// Counts workloads for the blast-radius budget.
    pub async fn count_workloads(
        &self,
        cx: &CallContext,
        namespace: Option<&str>,
    ) -> Result<u32, ProviderError> {
        let what = || match namespace {
            Some(ns) => format!("counting the workloads in namespace {ns}"),
            None => "counting the workloads of the fleet".to_string(),
        };
        within(cx, what, self.workloads.count_workloads(cx, namespace)).await
    }

    /// Rotates a log set.
    pub async fn rotate(&self, cx: &CallContext, log_set: &str) -> Result<Rotation, ProviderError> {
        let what = || format!("rotating log set {log_set:?}");
        within(cx, what, self.log_sets.rotate(cx, log_set)).await
    }
}

/// Runs `call`, cut off at the deadline.
async fn within<T>(
    cx: &CallContext,
    what: impl Fn() -> String,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let deadline = tokio::time::Instant::from_std(cx.deadline);
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(ProviderError::Timeout(format!(
                "{} did not finish before the run's deadline; it may or may not have taken effect",
                what()
            )))
        })
}

/// Runs `call`, again on a conflict, up to [`CONFLICT_ATTEMPTS`] times, all
/// within the deadline.
async fn retrying<T, F, Fut>(
    cx: &CallContext,
    what: impl Fn() -> String,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 1;
    loop {
        match within(cx, &what, call()).await {
            Err(ProviderError::Conflict(why)) if attempt < CONFLICT_ATTEMPTS => {
                let pause = tokio::time::Instant::now() + CONFLICT_BACKOFF * attempt;
                let deadline = tokio::time::Instant::from_std(cx.deadline);
                tokio::time::sleep_until(pause.min(deadline)).await;
                if tokio::time::Instant::now() >= deadline {
                    return Err(ProviderError::Conflict(format!(
                        "{} conflicted, and the run's deadline left no time to try again: {why}",
                        what()
                    )));
                }
                tracing::debug!("{}: conflict ({why}); attempt {}", what(), attempt + 1);
                attempt += 1;
            }
            Err(ProviderError::Conflict(why)) => {
                return Err(ProviderError::Conflict(format!(
                    "{} still conflicted after {CONFLICT_ATTEMPTS} attempts: {why}",
                    what()
                )));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests;
