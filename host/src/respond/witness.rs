//! Write-ahead records of effects: the audit hears of every change before the
//! provider makes it.
//!
//! The sandbox calls the provider only after a call passed its grant check,
//! so wrapping the providers sees exactly the permitted effects. Before each
//! one, an `effect.intent` record (run, function, target, arguments) must be
//! durable; if the audit cannot take it, the effect does not happen and the
//! plugin gets a `failed` error. A host killed in the middle of a run
//! therefore leaves, for every effect that may have happened, its intent on
//! the record.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::audit::Entry;
use crate::provider::{
    CallContext, Effects, LogSetProvider, ProviderError, Rotation, WorkloadProvider, WorkloadStatus,
};
use crate::store::Store;
use crate::workload::Workload;

/// `effects`, with each effect's intent recorded in `store` before it is made.
pub(crate) fn witnessed(effects: &Effects, store: &Arc<dyn Store>) -> Effects {
    Effects::new(
        Arc::new(Witnessed {
            inner: effects.workloads().clone(),
            store: store.clone(),
        }),
        Arc::new(Witnessed {
            inner: effects.log_sets().clone(),
            store: store.clone(),
        }),
    )
}

/// A provider that records each effect's intent before passing it on.
struct Witnessed<P: ?Sized> {
    inner: Arc<P>,
    store: Arc<dyn Store>,
}

async fn intent(
    store: &dyn Store,
    provider: &str,
    cx: &CallContext,
    function: &str,
    target: &str,
    arguments: &str,
) -> Result<(), ProviderError> {
    store
        .record(Entry {
            incident: Some(cx.incident.clone()),
            kind: "effect.intent".into(),
            body: json!({
                "run": &cx.run,
                "function": function,
                "target": target,
                "arguments": arguments,
                "provider": provider,
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

#[async_trait]
impl WorkloadProvider for Witnessed<dyn WorkloadProvider> {
    fn name(&self) -> &'static str {
        self.inner.name()
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
        let arguments = format!("replicas={replicas}");
        let target_text = target.to_string();
        intent(
            self.store.as_ref(),
            self.name(),
            cx,
            "scale.set-replicas",
            &target_text,
            &arguments,
        )
        .await?;
        self.inner.set_replicas(cx, target, replicas).await
    }

    async fn restart(&self, cx: &CallContext, target: &Workload) -> Result<(), ProviderError> {
        let target_text = target.to_string();
        intent(
            self.store.as_ref(),
            self.name(),
            cx,
            "restart.restart",
            &target_text,
            "",
        )
        .await?;
        self.inner.restart(cx, target).await
    }

    async fn rollback(&self, cx: &CallContext, target: &Workload) -> Result<u64, ProviderError> {
        let target_text = target.to_string();
        intent(
            self.store.as_ref(),
            self.name(),
            cx,
            "rollback.rollback",
            &target_text,
            "",
        )
        .await?;
        self.inner.rollback(cx, target).await
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
impl LogSetProvider for Witnessed<dyn LogSetProvider> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn rotate(&self, cx: &CallContext, log_set: &str) -> Result<Rotation, ProviderError> {
        intent(
            self.store.as_ref(),
            self.name(),
            cx,
            "log-rotation.rotate",
            log_set,
            "",
        )
        .await?;
        self.inner.rotate(cx, log_set).await
    }
}
