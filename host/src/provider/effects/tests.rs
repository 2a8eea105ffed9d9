//! The rules every provider call gets from [`Effects`], against providers
//! that misbehave on purpose.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::*;

/// Conflicts on its first `conflicts` writes, then succeeds; can hang instead.
struct Flaky {
    conflicts: u32,
    hang: bool,
    calls: AtomicU32,
}

impl Flaky {
    fn conflicting(conflicts: u32) -> Arc<Self> {
        Arc::new(Flaky {
            conflicts,
            hang: false,
            calls: AtomicU32::new(0),
        })
    }

    fn hanging() -> Arc<Self> {
        Arc::new(Flaky {
            conflicts: 0,
            hang: true,
            calls: AtomicU32::new(0),
        })
    }

    async fn answer<T>(&self, value: T) -> Result<T, ProviderError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hang {
            std::future::pending::<()>().await;
        }
        if call <= self.conflicts {
            return Err(ProviderError::Conflict(format!(
                "the object has been modified (call {call})"
            )));
        }
        Ok(value)
    }
}

#[async_trait]
impl WorkloadProvider for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn status(&self, _: &CallContext, _: &Workload) -> Result<WorkloadStatus, ProviderError> {
        self.answer(WorkloadStatus {
            replicas: 1,
            ready_replicas: 1,
            revision: 1,
            image: "x".into(),
        })
        .await
    }

    async fn set_replicas(
        &self,
        _: &CallContext,
        _: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError> {
        self.answer(replicas).await
    }

    async fn restart(&self, _: &CallContext, _: &Workload) -> Result<(), ProviderError> {
        self.answer(()).await
    }

    async fn rollback(&self, _: &CallContext, _: &Workload) -> Result<u64, ProviderError> {
        self.answer(2).await
    }

    async fn count_workloads(
        &self,
        _: &CallContext,
        _: Option<&str>,
    ) -> Result<u32, ProviderError> {
        self.answer(1).await
    }
}

#[async_trait]
impl LogSetProvider for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn rotate(&self, _: &CallContext, _: &str) -> Result<Rotation, ProviderError> {
        self.answer(Rotation::default()).await
    }
}

fn effects(provider: &Arc<Flaky>) -> Effects {
    Effects::new(provider.clone(), provider.clone())
}

fn cx(budget: Duration) -> CallContext {
    CallContext::run("incident-1", "run-1", Instant::now() + budget)
}

fn target() -> Workload {
    "deployment/prod/checkout".parse().unwrap()
}

#[tokio::test]
async fn a_conflicting_write_is_tried_again_until_it_lands() {
    let flaky = Flaky::conflicting(CONFLICT_ATTEMPTS - 1);
    let done = effects(&flaky)
        .set_replicas(&cx(Duration::from_secs(10)), &target(), 4)
        .await;
    assert_eq!(done, Ok(4));
    assert_eq!(flaky.calls.load(Ordering::SeqCst), CONFLICT_ATTEMPTS);
}

#[tokio::test]
async fn retries_are_bounded() {
    for write in ["set-replicas", "restart", "rollback"] {
        let flaky = Flaky::conflicting(u32::MAX);
        let fx = effects(&flaky);
        let cx = cx(Duration::from_secs(10));
        let err = match write {
            "set-replicas" => fx.set_replicas(&cx, &target(), 4).await.map(|_| ()),
            "restart" => fx.restart(&cx, &target()).await,
            _ => fx.rollback(&cx, &target()).await.map(|_| ()),
        }
        .unwrap_err();
        let ProviderError::Conflict(message) = &err else {
            panic!("{write}: a conflict stays a conflict, got {err:?}");
        };
        assert!(
            message.contains(&format!("after {CONFLICT_ATTEMPTS} attempts"))
                && message.contains("deployment/prod/checkout")
                && message.contains("has been modified"),
            "{write}: {message}"
        );
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            CONFLICT_ATTEMPTS,
            "{write}"
        );
    }
}

#[tokio::test]
async fn reads_are_not_retried() {
    let flaky = Flaky::conflicting(1);
    let err = effects(&flaky)
        .status(&cx(Duration::from_secs(10)), &target())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Conflict(_)), "{err:?}");
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_call_outlives_the_deadline() {
    let flaky = Flaky::hanging();
    let fx = effects(&flaky);
    let budget = Duration::from_millis(100);
    // A generous outer bound: the test fails rather than hangs if the
    // deadline is not enforced.
    let outer = Duration::from_secs(30);
    let calls: Vec<(&str, Result<(), ProviderError>)> = vec![
        (
            "status",
            tokio::time::timeout(outer, fx.status(&cx(budget), &target()))
                .await
                .unwrap()
                .map(|_| ()),
        ),
        (
            "restart",
            tokio::time::timeout(outer, fx.restart(&cx(budget), &target()))
                .await
                .unwrap(),
        ),
        (
            "rotate",
            tokio::time::timeout(outer, fx.rotate(&cx(budget), "app"))
                .await
                .unwrap()
                .map(|_| ()),
        ),
        (
            "count",
            tokio::time::timeout(outer, fx.count_workloads(&cx(budget), Some("prod")))
                .await
                .unwrap()
                .map(|_| ()),
        ),
    ];
    for (name, result) in calls {
        match result {
            Err(ProviderError::Timeout(message)) => assert!(
                message.contains("before the run's deadline"),
                "{name}: {message}"
            ),
            other => panic!("{name}: expected a timeout, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_conflict_is_not_retried_past_the_deadline() {
    let flaky = Flaky::conflicting(u32::MAX);
    // Shorter than the first pause: no time is left for a second attempt.
    let err = effects(&flaky)
        .restart(&cx(Duration::from_millis(5)), &target())
        .await
        .unwrap_err();
    let ProviderError::Conflict(message) = &err else {
        panic!("a conflict stays a conflict, got {err:?}");
    };
    assert!(message.contains("left no time to try again"), "{message}");
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 1);
}
