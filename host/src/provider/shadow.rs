//! The shadow provider: real reads, simulated writes.
//!
//! A catalog entry in `shadow` mode runs its plugin for real against the
//! world's current state, but nothing it asks for happens: reads go to the
//! wrapped provider, writes answer as if they had succeeded and change
//! nothing. The run report marks every effect as not applied, so operators
//! see exactly what the plugin would have done before they opt in.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Provider, ProviderError, Rotation, WorkloadStatus};
use crate::workload::Workload;

/// Reads from `inner`; never writes.
pub struct Shadow {
    inner: Arc<dyn Provider>,
}

impl Shadow {
    /// Wraps `inner`: its reads are used, its writes never called.
    pub fn new(inner: Arc<dyn Provider>) -> Self {
        Shadow { inner }
    }
}

#[async_trait]
impl Provider for Shadow {
    fn name(&self) -> &'static str {
        "shadow"
    }

    async fn status(&self, target: &Workload) -> Result<WorkloadStatus, ProviderError> {
        self.inner.status(target).await
    }

    async fn set_replicas(&self, target: &Workload, replicas: u32) -> Result<u32, ProviderError> {
        // Fail as the real call would for a workload that does not exist.
        self.inner.status(target).await?;
        Ok(replicas)
    }

    async fn restart(&self, target: &Workload) -> Result<(), ProviderError> {
        self.inner.status(target).await.map(|_| ())
    }

    async fn rollback(&self, target: &Workload) -> Result<u64, ProviderError> {
        let status = self.inner.status(target).await?;
        if status.revision <= 1 {
            return Err(ProviderError::Invalid(format!(
                "{target} is at its first revision; there is nothing to roll back to"
            )));
        }
        // Going back creates a new revision, as `kubectl rollout undo` does.
        Ok(status.revision + 1)
    }

    async fn rotate(&self, _: &str) -> Result<Rotation, ProviderError> {
        // What a rotation would free is only known by doing it.
        Ok(Rotation::default())
    }

    async fn count_workloads(&self, namespace: Option<&str>) -> Result<u32, ProviderError> {
        self.inner.count_workloads(namespace).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{DryRunFleet, FleetSpec};

    #[tokio::test]
    async fn writes_change_nothing_and_reads_are_real() {
        let fleet = Arc::new(DryRunFleet::new(FleetSpec::embedded_default()));
        let target: Workload = "deployment/prod/checkout".parse().unwrap();
        let before = fleet.status(&target).await.unwrap();
        let shadow = Shadow::new(fleet.clone());
        shadow
            .set_replicas(&target, before.replicas + 5)
            .await
            .unwrap();
        shadow.restart(&target).await.unwrap();
        assert_eq!(shadow.rollback(&target).await.unwrap(), before.revision + 1);
        assert_eq!(
            fleet.status(&target).await.unwrap(),
            before,
            "nothing changed"
        );
        let missing: Workload = "deployment/prod/nope".parse().unwrap();
        assert!(matches!(
            shadow.restart(&missing).await,
            Err(ProviderError::NotFound(_))
        ));
        assert_eq!(
            shadow.count_workloads(Some("prod")).await.unwrap(),
            fleet.count_workloads(Some("prod")).await.unwrap()
        );
    }
}
