//! The behaviour every workload provider must have: one suite, run against
//! each provider (the simulated fleet here; each platform's provider against
//! its own server).
//!
//! A provider passes when, called through [`Effects`] as a run calls it:
//! status reflects each effect; scaling works within range, to zero and back,
//! and is refused (`invalid`) where the platform cannot scale; a restart is
//! observable on the platform; a rollback returns to the previous revision and
//! is refused (`invalid`) when there is none; unknown targets are `not-found`;
//! the platform's refusal is `forbidden`; a conflicting write is retried and
//! lands; no call outlives its deadline; and calls on different targets may
//! run at once.
//!
//! Faults a real platform produces on its own (a 403 from RBAC, a 409 on a
//! stale resource version, a stalled API server) are asked of the
//! [`Subject`], which makes its platform misbehave; [`Injected`] produces them
//! in front of a provider whose platform cannot (the simulated fleet).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use blastwall::provider::{
    CallContext, DryRunFleet, Effects, FleetSpec, ProviderError, WorkloadProvider, WorkloadStatus,
};
use blastwall::workload::Workload;

/// A fault the platform is asked to produce on the next call(s) on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refuse the next call, as RBAC would (403).
    Forbid,
    /// Make the next this-many writes conflict (409), then let them through.
    Conflict(u32),
    /// Stall the next call until long after any deadline.
    Stall,
}

/// A provider under test, with the fixtures its platform holds.
#[async_trait]
pub trait Subject: Send + Sync {
    /// The provider, as a host would build it.
    fn provider(&self) -> Arc<dyn WorkloadProvider>;
    /// A scalable workload with at least one replica and an earlier revision.
    fn scalable(&self) -> Workload;
    /// A second scalable workload, for calls at once.
    fn other(&self) -> Workload;
    /// A workload at its first revision.
    fn first_revision(&self) -> Workload;
    /// A workload the platform cannot scale, if the platform has such a kind.
    fn unscalable(&self) -> Option<Workload>;
    /// A workload that does not exist.
    fn missing(&self) -> Workload;
    /// What the platform shows of `target`'s restarts, read around the
    /// provider (an annotation, container start times): it must change when
    /// the provider restarts the workload.
    async fn restart_marker(&self, target: &Workload) -> String;
    /// Makes the platform produce `fault` on `target`.
    async fn inject(&self, target: &Workload, fault: Fault);
}

fn effects(subject: &dyn Subject) -> Effects {
    Effects::new(
        subject.provider(),
        Arc::new(DryRunFleet::new(FleetSpec::default())),
    )
}

fn cx(budget: Duration) -> CallContext {
    CallContext::run("conformance", "conformance-run", Instant::now() + budget)
}

/// A call's budget in the suite: as long as a generous plugin deadline.
const BUDGET: Duration = Duration::from_secs(20);

/// Runs every check against `subject`, panicking with the first failure.
pub async fn run_all(subject: &dyn Subject) {
    status_follows_scaling(subject).await;
    scaling_refuses_what_the_platform_cannot_scale(subject).await;
    restart_is_observable(subject).await;
    rollback_returns_to_the_previous_revision(subject).await;
    unknown_targets_are_not_found(subject).await;
    the_platforms_refusal_is_forbidden(subject).await;
    conflicting_writes_are_retried(subject).await;
    no_call_outlives_its_deadline(subject).await;
    calls_on_different_targets_run_at_once(subject).await;
}

async fn status(fx: &Effects, target: &Workload) -> WorkloadStatus {
    fx.status(&cx(BUDGET), target)
        .await
        .unwrap_or_else(|e| panic!("status of {target}: {e:?}"))
}

async fn status_follows_scaling(subject: &dyn Subject) {
    let fx = effects(subject);
    let target = subject.scalable();
    let before = status(&fx, &target).await;
    assert!(before.replicas >= 1, "the fixture has replicas: {before:?}");
    for replicas in [before.replicas + 1, 0, before.replicas] {
        let now = fx.set_replicas(&cx(BUDGET), &target, replicas).await;
        assert_eq!(now, Ok(replicas), "scaling {target} to {replicas}");
        assert_eq!(
            status(&fx, &target).await.replicas,
            replicas,
            "status after scaling {target} to {replicas}"
        );
    }
    let after = status(&fx, &target).await;
    assert_eq!(
        (after.image.as_str(), after.revision),
        (before.image.as_str(), before.revision),
        "scaling changes neither the image nor the revision"
    );
}

async fn scaling_refuses_what_the_platform_cannot_scale(subject: &dyn Subject) {
    let Some(target) = subject.unscalable() else {
        return;
    };
    let fx = effects(subject);
    let err = fx.set_replicas(&cx(BUDGET), &target, 3).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Invalid(_)),
        "{target}: {err:?}"
    );
}

async fn restart_is_observable(subject: &dyn Subject) {
    let fx = effects(subject);
    let target = subject.scalable();
    let before = subject.restart_marker(&target).await;
    let status_before = status(&fx, &target).await;
    fx.restart(&cx(BUDGET), &target)
        .await
        .unwrap_or_else(|e| panic!("restart of {target}: {e:?}"));
    let after = subject.restart_marker(&target).await;
    assert_ne!(before, after, "the platform shows {target} restarted");
    let status_after = status(&fx, &target).await;
    assert_eq!(
        (status_after.replicas, status_after.image.as_str()),
        (status_before.replicas, status_before.image.as_str()),
        "a restart keeps the replica count and the image"
    );
}

async fn rollback_returns_to_the_previous_revision(subject: &dyn Subject) {
    let fx = effects(subject);
    let target = subject.scalable();
    let before = status(&fx, &target).await;
    let live = fx
        .rollback(&cx(BUDGET), &target)
        .await
        .unwrap_or_else(|e| panic!("rollback of {target}: {e:?}"));
    let after = status(&fx, &target).await;
    assert_eq!(
        after.revision, live,
        "status shows the revision rollback returned"
    );
    assert!(
        after.revision > before.revision,
        "going back makes a new revision, as `kubectl rollout undo` does: {before:?} → {after:?}"
    );
    assert_ne!(
        after.image, before.image,
        "the previous image is live again"
    );

    let first = subject.first_revision();
    let err = fx.rollback(&cx(BUDGET), &first).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Invalid(_)),
        "{first} has nothing to roll back to: {err:?}"
    );
}

async fn unknown_targets_are_not_found(subject: &dyn Subject) {
    let fx = effects(subject);
    let missing = subject.missing();
    let cx = cx(BUDGET);
    let results = [
        ("status", fx.status(&cx, &missing).await.map(|_| ())),
        ("scale", fx.set_replicas(&cx, &missing, 2).await.map(|_| ())),
        ("restart", fx.restart(&cx, &missing).await),
        ("rollback", fx.rollback(&cx, &missing).await.map(|_| ())),
    ];
    for (call, result) in results {
        assert!(
            matches!(result, Err(ProviderError::NotFound(_))),
            "{call} of {missing}: {result:?}"
        );
    }
}

async fn the_platforms_refusal_is_forbidden(subject: &dyn Subject) {
    let fx = effects(subject);
    let target = subject.scalable();
    subject.inject(&target, Fault::Forbid).await;
    let err = fx.restart(&cx(BUDGET), &target).await.unwrap_err();
    assert!(matches!(err, ProviderError::Forbidden(_)), "{err:?}");
    // A refusal is for that call only.
    fx.restart(&cx(BUDGET), &target)
        .await
        .unwrap_or_else(|e| panic!("the next restart of {target}: {e:?}"));
}

async fn conflicting_writes_are_retried(subject: &dyn Subject) {
    let fx = effects(subject);
    let target = subject.scalable();
    let before = status(&fx, &target).await.replicas;
    subject
        .inject(
            &target,
            Fault::Conflict(blastwall::provider::CONFLICT_ATTEMPTS - 1),
        )
        .await;
    let now = fx.set_replicas(&cx(BUDGET), &target, before + 1).await;
    assert_eq!(now, Ok(before + 1), "the write landed on a later attempt");
    assert_eq!(status(&fx, &target).await.replicas, before + 1);
    fx.set_replicas(&cx(BUDGET), &target, before).await.unwrap();
}

async fn no_call_outlives_its_deadline(subject: &dyn Subject) {
    let fx = effects(subject);
    let target = subject.scalable();
    subject.inject(&target, Fault::Stall).await;
    let started = Instant::now();
    // The outer bound only keeps a broken provider from hanging the suite.
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        fx.restart(&cx(Duration::from_millis(300)), &target),
    )
    .await
    .expect("the call ended on its own deadline");
    assert!(
        matches!(result, Err(ProviderError::Timeout(_))),
        "{result:?} after {:?}",
        started.elapsed()
    );
}

async fn calls_on_different_targets_run_at_once(subject: &dyn Subject) {
    let fx = effects(subject);
    let (a, b) = (subject.scalable(), subject.other());
    let replicas = status(&fx, &b).await.replicas + 1;
    let marker = subject.restart_marker(&a).await;
    let cx = cx(BUDGET);
    let (restarted, scaled) = tokio::join!(fx.restart(&cx, &a), fx.set_replicas(&cx, &b, replicas));
    restarted.unwrap_or_else(|e| panic!("restart of {a}: {e:?}"));
    assert_eq!(scaled, Ok(replicas));
    assert_ne!(subject.restart_marker(&a).await, marker);
    assert_eq!(status(&fx, &b).await.replicas, replicas);
}

/// A provider with faults injected in front of it, for a platform that cannot
/// produce them itself.
pub struct Injected<P: ?Sized> {
    inner: Arc<P>,
    faults: Mutex<HashMap<Workload, Fault>>,
}

impl<P: ?Sized> Injected<P> {
    /// `inner`, with no faults yet.
    pub fn new(inner: Arc<P>) -> Self {
        Injected {
            inner,
            faults: Mutex::new(HashMap::new()),
        }
    }

    /// Makes the next call(s) on `target` fail with `fault`.
    pub fn inject(&self, target: &Workload, fault: Fault) {
        self.faults.lock().unwrap().insert(target.clone(), fault);
    }

    /// The fault for this call on `target`, if any, used up as it goes.
    async fn fault(&self, target: &Workload, write: bool) -> Result<(), ProviderError> {
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            match faults.get(target).copied() {
                // Reads see the object; only writes conflict.
                Some(Fault::Conflict(_)) if !write => None,
                Some(Fault::Conflict(n)) => {
                    if n <= 1 {
                        faults.remove(target);
                    } else {
                        faults.insert(target.clone(), Fault::Conflict(n - 1));
                    }
                    Some(Fault::Conflict(n))
                }
                Some(fault) => {
                    faults.remove(target);
                    Some(fault)
                }
                None => None,
            }
        };
        match fault {
            None => Ok(()),
            Some(Fault::Forbid) => Err(ProviderError::Forbidden(format!(
                "the platform refused this call on {target}"
            ))),
            Some(Fault::Conflict(_)) => Err(ProviderError::Conflict(format!(
                "{target} was modified; apply your changes to the latest version"
            ))),
            Some(Fault::Stall) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl WorkloadProvider for Injected<dyn WorkloadProvider> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn status(
        &self,
        cx: &CallContext,
        target: &Workload,
    ) -> Result<WorkloadStatus, ProviderError> {
        self.fault(target, false).await?;
        self.inner.status(cx, target).await
    }

    async fn set_replicas(
        &self,
        cx: &CallContext,
        target: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError> {
        self.fault(target, true).await?;
        self.inner.set_replicas(cx, target, replicas).await
    }

    async fn restart(&self, cx: &CallContext, target: &Workload) -> Result<(), ProviderError> {
        self.fault(target, true).await?;
        self.inner.restart(cx, target).await
    }

    async fn rollback(&self, cx: &CallContext, target: &Workload) -> Result<u64, ProviderError> {
        self.fault(target, true).await?;
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
