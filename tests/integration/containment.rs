//! Containment beyond a single run's limits: runs never hold the caller's
//! threads, deadlines end within a tick, and the limits wasmtime leaves at
//! generous defaults (data per host call, live handles) are the run's own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blastwall::manifest::Manifest;
use blastwall::policy::Policy;
use blastwall::sandbox::{Ceilings, EPOCH_TICK, Outcome, RunReport};
use blastwall::signature::PluginArtifact;
use blastwall_tests::{Harness, guest, guest_files, incident};

use crate::assert_next_run_succeeds;

/// The adversary asking for far more fuel than it can burn before a
/// `timeout_ms` deadline, in a sandbox whose ceilings allow it.
fn spinning(timeout_ms: u64) -> (Harness, PluginArtifact) {
    let h = Harness::with_ceilings(Ceilings {
        max_fuel: 10_000_000_000_000,
        ..Ceilings::default()
    });
    let (bytes, text) = guest_files("adversary");
    let text = text
        .replace("fuel = 200_000_000", "fuel = 10_000_000_000_000")
        .replace("timeout-ms = 3_000", &format!("timeout-ms = {timeout_ms}"));
    let manifest = Manifest::from_toml(&text, "adversary").unwrap();
    (h, PluginArtifact::insecure_unsigned(bytes, manifest))
}

async fn attack(h: &Harness, artifact: &PluginArtifact, behaviour: &str) -> RunReport {
    h.run(
        artifact,
        incident("deployment/prod/checkout", &[("behaviour", behaviour)]),
        &Policy::as_declared(),
    )
    .await
    .expect("the adversary loads")
}

/// How far past its deadline a run may end: one epoch tick (when the run
/// looks at the clock) plus room for a busy machine to schedule the thread.
/// When deadlines were counted in ticks, runs ended 3–5 % late (90–150 ms
/// at 3 seconds), since each tick's sleep takes a little longer than a tick.
fn allowed_overshoot() -> Duration {
    EPOCH_TICK + Duration::from_millis(60)
}

async fn assert_ends_on_time(behaviour: &str) {
    let timeout = Duration::from_millis(3_000);
    let (h, artifact) = spinning(timeout.as_millis() as u64);
    // Compile first, so the run below is only the run.
    assert_next_run_succeeds(&h).await;
    let report = attack(&h, &artifact, behaviour).await;
    assert_eq!(report.outcome, Outcome::Timeout, "{behaviour}");
    let ran = Duration::from_micros(report.duration_us);
    assert!(ran >= timeout, "{behaviour} ended early: {ran:?}");
    assert!(
        ran - timeout < allowed_overshoot(),
        "{behaviour} ended {:?} past its {timeout:?} deadline",
        ran - timeout
    );
}

#[tokio::test]
async fn a_cpu_loop_ends_within_a_tick_of_its_deadline() {
    assert_ends_on_time("loop").await;
}

#[tokio::test]
async fn a_loop_on_host_calls_ends_within_a_tick_of_its_deadline() {
    assert_ends_on_time("flood-empty-log").await;
}

/// The caller's runtime has one thread, and four plugins that never await
/// are in flight on it. A ticker on that same thread must keep its pace:
/// runs execute on the sandbox's own threads, so nothing holds the caller's.
#[tokio::test(flavor = "current_thread")]
async fn busy_plugins_never_hold_the_callers_runtime() {
    let (h, artifact) = spinning(1_500);
    let h = Arc::new(h);
    assert_next_run_succeeds(&h).await;
    let mut runs = Vec::new();
    for behaviour in ["loop", "loop", "flood-empty-log", "flood-empty-log"] {
        let (h, artifact) = (h.clone(), artifact.clone());
        runs.push(tokio::spawn(async move {
            attack(&h, &artifact, behaviour).await
        }));
    }
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    while started.elapsed() < Duration::from_millis(1_200) {
        let asked = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        worst = worst.max(asked.elapsed());
    }
    for run in runs {
        assert_eq!(run.await.unwrap().outcome, Outcome::Timeout);
    }
    // Generous for a noisy machine; a run held by this thread would stall
    // the ticker for the whole 1.5-second deadline.
    assert!(
        worst < Duration::from_millis(500),
        "the caller's thread was held for {worst:?}"
    );
}

#[tokio::test]
async fn passing_more_than_the_per_call_limit_to_the_host_ends_the_run() {
    let h = Harness::new();
    let artifact = guest("adversary");
    let report = attack(&h, &artifact, "huge-argument").await;
    assert_eq!(
        report.outcome,
        Outcome::HostcallLimit { limit: 1024 * 1024 }
    );
    assert_eq!(report.limits.hostcall_bytes, 1024 * 1024);
    assert!(
        report.log.is_empty(),
        "nothing of the line reached the host"
    );
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn the_per_call_limit_is_the_operators_ceiling() {
    let h = Harness::with_ceilings(Ceilings {
        max_hostcall_bytes: 8 * 1024 * 1024,
        ..Ceilings::default()
    });
    let artifact = guest("adversary");
    let report = attack(&h, &artifact, "huge-argument").await;
    // Allowed now; the journal still keeps only its own cap of the line.
    assert_eq!(
        report.outcome,
        Outcome::Completed {
            summary: "logged 4 MiB in one line".into(),
            actions: 0
        }
    );
    let kept: usize = report.log.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 64 * 1024, "{kept} bytes of log kept");
}

#[tokio::test]
async fn hoarding_resource_handles_ends_the_run_at_the_handle_limit() {
    let h = Harness::with_ceilings(Ceilings {
        max_handles: 200,
        ..Ceilings::default()
    });
    let artifact = guest("adversary");
    let report = attack(&h, &artifact, "many-handles").await;
    assert_eq!(report.outcome, Outcome::HandleLimit { limit: 200 });
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn the_default_handle_limit_stops_a_hoarder_long_before_wasmtimes() {
    let h = Harness::new();
    let artifact = guest("adversary");
    let report = attack(&h, &artifact, "many-handles").await;
    assert_eq!(report.outcome, Outcome::HandleLimit { limit: 1_000 });
}
