//! Write-ahead records of effects: the audit hears of every change before the
//! provider makes it.
//!
//! The sandbox calls the provider only after a call passed its grant check,
//! so wrapping the provider sees exactly the permitted effects. Before each
//! one, an `effect.intent` record (run, function, target, arguments) must be
//! durable; if the audit cannot take it, the effect does not happen and the
//! plugin gets a `failed` error. A host killed in the middle of a run
//! therefore leaves, for every effect that may have happened, its intent on
//! the record.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::audit::Entry;
use crate::provider::{Provider, ProviderError, Rotation, WorkloadStatus};
use crate::store::Store;
use crate::workload::Workload;

/// A provider that records each effect's intent before passing it on.
pub(crate) struct Witnessed {
    pub inner: Arc<dyn Provider>,
    pub store: Arc<dyn Store>,
    pub incident: String,
    pub run: String,
}

impl Witnessed {
    async fn intent(
        &self,
        function: &str,
        target: &str,
        arguments: &str,
    ) -> Result<(), ProviderError> {
        self.store
            .record(Entry {
                incident: Some(self.incident.clone()),
                kind: "effect.intent".into(),
                body: json!({
                    "run": &self.run,
                    "function": function,
                    "target": target,
                    "arguments": arguments,
                    "provider": self.inner.name(),
                }),
            })
            .await
            .map(|_| ())
            .map_err(|e| {
                ProviderError::Failed(format!(
                    "the audit log could not record this effect, so it was not made: {e}"
                ))
            })
    }
}

#[async_trait]
impl Provider for Witnessed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn status(&self, target: &Workload) -> Result<WorkloadStatus, ProviderError> {
        self.inner.status(target).await
    }

    async fn set_replicas(&self, target: &Workload, replicas: u32) -> Result<u32, ProviderError> {
        self.intent(
            "scale.set-replicas",
            &target.to_string(),
            &format!("replicas={replicas}"),
        )
        .await?;
        self.inner.set_replicas(target, replicas).await
    }

    async fn restart(&self, target: &Workload) -> Result<(), ProviderError> {
        self.intent("restart.restart", &target.to_string(), "")
            .await?;
        self.inner.restart(target).await
    }

    async fn rollback(&self, target: &Workload) -> Result<u64, ProviderError> {
        self.intent("rollback.rollback", &target.to_string(), "")
            .await?;
        self.inner.rollback(target).await
    }

    async fn rotate(&self, log_set: &str) -> Result<Rotation, ProviderError> {
        self.intent("log-rotation.rotate", log_set, "").await?;
        self.inner.rotate(log_set).await
    }

    async fn count_workloads(&self, namespace: Option<&str>) -> Result<u32, ProviderError> {
        self.inner.count_workloads(namespace).await
    }
}
