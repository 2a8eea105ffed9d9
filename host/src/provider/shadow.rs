//! The shadow provider: real reads, simulated writes.
//!
//! A catalog entry in `shadow` mode runs its plugin for real against the
//! world's current state, but nothing it asks for happens: reads go to the
//! wrapped provider, writes answer as if they had succeeded and change
//! nothing. The run report marks every effect as not applied, so operators
//! see exactly what the plugin would have done before they opt in.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    CallContext, LogSetProvider, ProviderError, Rotation, WorkloadProvider, WorkloadStatus,
};
use crate::workload::Workload;

/// Reads from `inner`; never writes.
pub struct Shadow<P: ?Sized> {
    inner: Arc<P>,
}

impl<P: ?Sized> Shadow<P> {
    /// Wraps `inner`: its reads are used, its writes never called.
    pub fn new(inner: Arc<P>) -> Self {
        Shadow { inner }
    }
}

#[async_trait]
impl WorkloadProvider for Shadow<dyn WorkloadProvider> {
    fn name(&self) -> &'static str {
        "shadow"
    }

    async fn status(
        &self,
        cx: &CallContext,
        target: &Workload,
    ) -> Result<WorkloadStatus, ProviderError> {
        self.inner.status(cx, target).await
    }

    async fn set_replicas(
        &self,
        cx: &CallContext,
        target: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError> {
        // Fail as the real call would for a workload that does not exist.
        self.inner.status(cx, target).await?;
        Ok(replicas)
    }

    async fn restart(&self, cx: &CallContext, target: &Workload) -> Result<(), ProviderError> {
        self.inner.status(cx, target).await.map(|_| ())
    }

    async fn rollback(&self, cx: &CallContext, target: &Workload) -> Result<u64, ProviderError> {
        let status = self.inner.status(cx, target).await?;
        if status.revision <= 1 {
            return Err(ProviderError::Invalid(format!(
                "{target} is at its first revision; there is nothing to roll back to"
            )));
        }
        // Going back creates a new revision, as `kubectl rollout undo` does.
        Ok(status.revision + 1)
    }

    async fn count_workloads(
        &self,
        cx: &CallContext,
        namespace: Option<&str>,
    ) -> Result<u32, ProviderError> {
        self.inner.count_workloads(cx, namespace).await
    }
}

#[async_trait]
impl LogSetProvider for Shadow<dyn LogSetProvider> {
    fn name(&self) -> &'static str {
        "shadow"
    }

    async fn rotate(&self, _: &CallContext, _: &str) -> Result<Rotation, ProviderError> {
        // What a rotation would free is only known by doing it.
        Ok(Rotation::default())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::provider::{DryRunFleet, FleetSpec};

    #[tokio::test]
    async fn writes_change_nothing_and_reads_are_real() {
        let cx = CallContext::decision("i", Duration::from_secs(5));
        let fleet = Arc::new(DryRunFleet::new(FleetSpec::embedded_default()));
        let target: Workload = "deployment/prod/checkout".parse().unwrap();
        let before = fleet.status(&cx, &target).await.unwrap();
        let shadow = Shadow::<dyn WorkloadProvider>::new(fleet.clone());
        shadow
            .set_replicas(&cx, &target, before.replicas + 5)
            .await
            .unwrap();
        shadow.restart(&cx, &target).await.unwrap();
        assert_eq!(
            shadow.rollback(&cx, &target).await.unwrap(),
            before.revision + 1
        );
        assert_eq!(
            fleet.status(&cx, &target).await.unwrap(),
            before,
            "nothing changed"
        );
        let missing: Workload = "deployment/prod/nope".parse().unwrap();
        assert!(matches!(
            shadow.restart(&cx, &missing).await,
            Err(ProviderError::NotFound(_))
        ));
        assert_eq!(
            shadow.count_workloads(&cx, Some("prod")).await.unwrap(),
            fleet.count_workloads(&cx, Some("prod")).await.unwrap()
        );
        let logs = Shadow::<dyn LogSetProvider>::new(fleet.clone());
        assert_eq!(logs.rotate(&cx, "app").await.unwrap(), Rotation::default());
        let app = FleetSpec::embedded_default().log_sets["app"];
        let rotated = LogSetProvider::rotate(fleet.as_ref(), &cx, "app")
            .await
            .unwrap();
        assert_eq!(
            rotated.files_rotated, app.files,
            "the shadow rotated nothing"
        );
    }
}
