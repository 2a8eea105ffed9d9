//! Adversarial plugins: each misbehaviour ends with its typed outcome, has no
//! effect beyond the grant, and leaves the host able to run the next plugin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blastwall::manifest::Manifest;
use blastwall::policy::Policy;
use blastwall::provider::{
    CallContext, DryRunFleet, Effects, FleetSpec, ProviderError, WorkloadProvider, WorkloadStatus,
};
use blastwall::sandbox::{Ceilings, Outcome, RunReport};
use blastwall::signature::PluginArtifact;
use blastwall::workload::Workload;
use blastwall_tests::{Harness, bundled, guest, guest_files, incident};

use crate::{assert_next_run_succeeds, kind};

/// Runs the adversary with `behaviour` on `deployment/prod/checkout`.
async fn attack(h: &Harness, behaviour: &str) -> RunReport {
    attack_with(h, &guest("adversary"), behaviour, &Policy::as_declared()).await
}

async fn attack_with(
    h: &Harness,
    artifact: &PluginArtifact,
    behaviour: &str,
    policy: &Policy,
) -> RunReport {
    h.run(
        artifact,
        incident("deployment/prod/checkout", &[("behaviour", behaviour)]),
        policy,
    )
    .await
    .expect("the adversary loads")
}

/// The adversary with its manifest text edited by `edit`.
fn adversary_with(edit: impl FnOnce(String) -> String) -> PluginArtifact {
    let (bytes, text) = guest_files("adversary");
    PluginArtifact::insecure_unsigned(
        bytes,
        Manifest::from_toml(&edit(text), "adversary").unwrap(),
    )
}

#[tokio::test]
async fn an_infinite_loop_runs_out_of_fuel() {
    let h = Harness::new();
    let report = attack(&h, "loop").await;
    assert_eq!(report.outcome, Outcome::FuelExhausted);
    assert_eq!(report.fuel_consumed, report.limits.fuel);
    assert_next_run_succeeds(&h).await;
}

/// A sandbox whose fuel ceiling is far beyond what a guest can burn before a
/// deadline (a tight loop burns several billion units a second), and the
/// adversary asking for all of it with a short timeout.
fn deadline_bound(timeout_ms: u64) -> (Harness, PluginArtifact) {
    let h = Harness::with_ceilings(Ceilings {
        max_fuel: 10_000_000_000_000,
        ..Ceilings::default()
    });
    let artifact = adversary_with(|t| {
        t.replace("fuel = 200_000_000", "fuel = 10_000_000_000_000")
            .replace("timeout-ms = 3_000", &format!("timeout-ms = {timeout_ms}"))
    });
    (h, artifact)
}

#[tokio::test]
async fn an_infinite_loop_with_ample_fuel_hits_the_deadline() {
    let (h, artifact) = deadline_bound(100);
    let started = Instant::now();
    let report = attack_with(&h, &artifact, "loop", &Policy::as_declared()).await;
    assert_eq!(report.outcome, Outcome::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the deadline stopped it early"
    );
    assert!(report.fuel_consumed < report.limits.fuel);
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let h = Harness::new();
    let report = attack(&h, "memory-bomb").await;
    let Outcome::MemoryLimit { detail } = &report.outcome else {
        panic!("expected memory-limit, got {:?}", report.outcome);
    };
    assert!(detail.ends_with("the limit is 16777216"), "{detail}");
    assert!(report.peak_memory_bytes <= 16 * 1024 * 1024);
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn asking_for_64_mib_of_randomness_traps_at_the_cap() {
    let h = Harness::new();
    let report = attack(&h, "random-bomb").await;
    let Outcome::Trap { message } = &report.outcome else {
        panic!("expected a trap, got {:?}", report.outcome);
    };
    assert!(
        message.contains("requested len 67108864 exceeds limit 65536"),
        "{message}"
    );
    // The refusal happens before the host allocates: the run stays small.
    assert!(report.peak_memory_bytes < 16 * 1024 * 1024);
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn unbounded_recursion_traps_on_the_stack_limit() {
    let h = Harness::new();
    let report = attack(&h, "recurse").await;
    assert_eq!(
        report.outcome,
        Outcome::Trap {
            message: "wasm trap: call stack exhausted".into()
        }
    );
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn flooding_stdout_is_captured_up_to_the_cap() {
    let h = Harness::new();
    let report = attack(&h, "flood-stdout").await;
    assert_eq!(kind(&report), "completed", "{:?}", report.outcome);
    let cap = h.sandbox.ceilings().max_output_bytes as usize;
    assert_eq!(report.output.stdout.len() + report.output.stderr.len(), cap);
    assert!(
        report.output.dropped_bytes > 400_000,
        "{}",
        report.output.dropped_bytes
    );
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn flooding_the_log_is_capped() {
    let h = Harness::new();
    let report = attack(&h, "flood-log").await;
    assert_eq!(kind(&report), "completed", "{:?}", report.outcome);
    let kept: usize = report.log.iter().map(|l| l.message.len()).sum();
    assert!(kept <= h.sandbox.ceilings().max_log_bytes as usize);
    assert!(
        report.log_dropped_bytes > 500_000,
        "{}",
        report.log_dropped_bytes
    );
}

#[tokio::test]
async fn a_flood_of_empty_log_lines_is_bounded_too() {
    let h = Harness::new();
    let report = attack(&h, "flood-empty-log").await;
    // Host calls cost the guest little fuel, so the deadline may come first; either way the run ends.
    assert!(
        matches!(report.outcome, Outcome::FuelExhausted | Outcome::Timeout),
        "{:?}",
        report.outcome
    );
    assert!(report.log.len() <= 1024, "{} lines kept", report.log.len());
    assert!(
        report.log_lines_dropped > 100_000,
        "{}",
        report.log_lines_dropped
    );
}

#[tokio::test]
async fn status_reads_have_a_budget_of_their_own() {
    let h = Harness::new();
    let report = attack(&h, "status-spam").await;
    assert_eq!(
        report.outcome,
        Outcome::Completed {
            summary: "900 status reads denied".into(),
            actions: 0
        }
    );
}

#[tokio::test]
async fn a_call_cut_off_by_the_deadline_is_reported_as_a_possible_effect() {
    /// A provider whose restarts take longer than any plugin's deadline.
    struct Slow;
    #[async_trait::async_trait]
    impl WorkloadProvider for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        async fn status(
            &self,
            _: &CallContext,
            _: &Workload,
        ) -> Result<WorkloadStatus, ProviderError> {
            Err(ProviderError::Failed("unused".into()))
        }
        async fn set_replicas(
            &self,
            _: &CallContext,
            _: &Workload,
            _: u32,
        ) -> Result<u32, ProviderError> {
            Err(ProviderError::Failed("unused".into()))
        }
        async fn restart(&self, _: &CallContext, _: &Workload) -> Result<(), ProviderError> {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }
        async fn rollback(&self, _: &CallContext, _: &Workload) -> Result<u64, ProviderError> {
            Err(ProviderError::Failed("unused".into()))
        }
        async fn count_workloads(
            &self,
            _: &CallContext,
            _: Option<&str>,
        ) -> Result<u32, ProviderError> {
            Err(ProviderError::Failed("unused".into()))
        }
    }
    let (bytes, text) = guest_files("trivial");
    let manifest =
        Manifest::from_toml(&format!("{text}\n[limits]\ntimeout-ms = 200\n"), "trivial").unwrap();
    let artifact = PluginArtifact::insecure_unsigned(bytes, manifest);
    let report = Harness::new()
        .run_with(
            &artifact,
            incident("deployment/prod/checkout", &[]),
            &Policy::as_declared(),
            Effects::new(
                Arc::new(Slow),
                Arc::new(DryRunFleet::new(FleetSpec::default())),
            ),
        )
        .await
        .unwrap();
    // The call is cut off a little before the run's deadline, so the run ends
    // on it, as the platform's fault, with the call on the record.
    assert!(
        matches!(&report.outcome, Outcome::ProviderUnavailable { error, .. } if error == "timeout"),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.effects.len(), 1, "{:?}", report.calls);
    assert!(
        report.effects[0].result.starts_with(
            "unknown: restarting deployment/prod/checkout did not finish before the run's deadline"
        ),
        "{:?}",
        report.effects
    );
}

#[tokio::test]
async fn a_panic_is_a_trap_with_the_message_in_stderr() {
    let h = Harness::new();
    let report = attack(&h, "panic").await;
    assert_eq!(kind(&report), "trap", "{:?}", report.outcome);
    assert!(
        report
            .output
            .stderr
            .contains("adversary panicked on purpose"),
        "{:?}",
        report.output
    );
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn calling_exit_ends_the_run_not_the_host() {
    let h = Harness::new();
    let report = attack(&h, "exit").await;
    // WASI 0.2's `exit` carries only success or failure, so `exit(3)` arrives as 1.
    assert_eq!(
        report.outcome,
        Outcome::Trap {
            message: "plugin called exit(1)".into()
        }
    );
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn ignoring_denials_exhausts_the_action_budget_with_no_effect() {
    let h = Harness::new();
    let report = attack(&h, "spam-denied").await;
    assert_eq!(report.outcome, Outcome::ActionBudget { budget: 5 });
    assert_eq!(report.denials.len(), 5);
    assert!(report.effects.is_empty());
    assert!(
        report
            .denials
            .iter()
            .all(|d| d.target == "deployment/prod/cart")
    );
    let cart = h
        .fleet
        .snapshot(&"deployment/prod/cart".parse().unwrap())
        .unwrap();
    assert_eq!(cart.ready_replicas, 1, "the victim was never restarted");
    assert_next_run_succeeds(&h).await;
}

#[tokio::test]
async fn acting_outside_the_incident_target_is_denied() {
    let h = Harness::new();
    let report = attack(&h, "escape-target").await;
    assert_eq!(
        report.outcome,
        Outcome::PluginError {
            error: "denied".into(),
            message: "deployment/prod/cart is outside the restart grant (allowed: */*/*, and deployment/prod/checkout)".into()
        }
    );
    assert!(report.effects.is_empty());
}

#[tokio::test]
async fn scaling_beyond_the_operators_bounds_is_denied() {
    let h = Harness::new();
    let policy = Policy::from_toml(
        r#"
        [grant.scale]
        targets = ["deployment/prod/*"]
        max-replicas = 10
        max-step-up = 2
        [grant.restart]
        targets = ["deployment/prod/*"]
        [grant.rollback]
        targets = ["deployment/prod/*"]
        [grant.log-rotation]
        log-sets = ["app"]
        "#,
        "operator",
    )
    .unwrap();
    let report = attack_with(&h, &guest("adversary"), "scale-huge", &policy).await;
    assert_eq!(
        report.outcome,
        Outcome::PluginError {
            error: "denied".into(),
            message: "500 replicas for deployment/prod/checkout is above the granted maximum of 10"
                .into()
        }
    );
    let status = h
        .fleet
        .snapshot(&"deployment/prod/checkout".parse().unwrap())
        .unwrap();
    assert_eq!(status.replicas, 3);
}

#[tokio::test]
async fn rotating_a_log_set_outside_the_grant_is_denied() {
    let h = Harness::new();
    let report = attack(&h, "rotate-unlisted").await;
    assert_eq!(
        report.outcome,
        Outcome::PluginError {
            error: "denied".into(),
            message: "log set \"../../etc\" is not granted (allowed: app)".into()
        }
    );
}

#[tokio::test]
async fn the_filesystem_is_invisible() {
    let h = Harness::new();
    let marker = std::path::Path::new("/tmp/blastwall-adversary-was-here");
    let _ = std::fs::remove_file(marker);
    let report = attack(&h, "filesystem").await;
    assert_eq!(
        report.outcome,
        Outcome::Completed {
            summary: "read=false write=false list=false".into(),
            actions: 0
        }
    );
    assert!(!marker.exists(), "the guest wrote to the host filesystem");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_run_does_not_hold_up_a_concurrent_one() {
    let (h, artifact) = deadline_bound(1_000);
    let h = Arc::new(h);
    // Compile the well-behaved plugin first so its run below is only a run.
    assert_next_run_succeeds(&h).await;
    let runaway = {
        let h = h.clone();
        tokio::spawn(async move {
            let report = attack_with(&h, &artifact, "loop", &Policy::as_declared()).await;
            (report, Instant::now())
        })
    };
    // Give the runaway a head start so the two really overlap.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = h
        .run(
            &bundled("restart-on-oom"),
            incident("deployment/prod/checkout", &[]),
            &Policy::as_declared(),
        )
        .await
        .unwrap();
    let finished = Instant::now();
    assert_eq!(kind(&report), "completed");
    let (runaway, runaway_finished) = runaway.await.unwrap();
    assert_eq!(runaway.outcome, Outcome::Timeout);
    assert!(
        finished < runaway_finished,
        "the well-behaved run finished while the runaway was still spinning"
    );
}
