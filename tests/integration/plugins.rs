//! The four example plugins, end to end, in dry-run and (for log rotation) live.

use std::collections::BTreeMap;

use blastwall::policy::Policy;
use blastwall::provider::{self, LogSetConfig, Sources, WorkloadsConfig};
use blastwall::sandbox::Outcome;
use blastwall_tests::{Harness, bundled, incident};

use crate::kind;

#[tokio::test]
async fn restart_on_oom_restarts_the_incident_target() {
    let h = Harness::new();
    let report = h
        .run(
            &bundled("restart-on-oom"),
            incident("deployment/prod/cart", &[]),
            &Policy::as_declared(),
        )
        .await
        .unwrap();
    assert_eq!(kind(&report), "completed", "{:?}", report.outcome);
    assert_eq!(report.effects.len(), 1);
    assert_eq!(report.effects[0].function, "restart.restart");
    assert_eq!(report.effects[0].target, "deployment/prod/cart");
    assert!(
        !report.effects[0].applied,
        "a dry run applies nothing for real"
    );
    let cart = h
        .fleet
        .snapshot(&"deployment/prod/cart".parse().unwrap())
        .unwrap();
    assert_eq!(
        cart.ready_replicas, 2,
        "the simulated restart brought every replica back"
    );
    assert!(
        report
            .log
            .iter()
            .any(|l| l.message.contains("1/2 replicas ready"))
    );
}

#[tokio::test]
async fn scale_on_saturation_scales_within_its_grant() {
    let h = Harness::new();
    let report = h
        .run(
            &bundled("scale-on-saturation"),
            incident("deployment/prod/checkout", &[("step", "2")]),
            &Policy::as_declared(),
        )
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Completed {
            summary: "scaled deployment prod/checkout from 3 to 5 replicas".into(),
            actions: 1
        }
    );
    let status = h
        .fleet
        .snapshot(&"deployment/prod/checkout".parse().unwrap())
        .unwrap();
    assert_eq!(status.replicas, 5);
}

#[tokio::test]
async fn scale_on_saturation_is_denied_past_the_operators_step() {
    let h = Harness::new();
    let policy = Policy::from_toml(
        "[grant.scale]\ntargets = [\"deployment/prod/*\"]\nmax-replicas = 6\nmax-step-up = 1\n",
        "test",
    )
    .unwrap();
    let report = h
        .run(
            &bundled("scale-on-saturation"),
            incident("deployment/prod/checkout", &[("step", "3")]),
            &policy,
        )
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::PluginError {
            error: "denied".into(),
            message: "scaling deployment/prod/checkout from 3 to 6 is a step of 3; at most 1 up is granted".into()
        }
    );
    assert!(report.effects.is_empty());
    assert_eq!(report.denials.len(), 1);
    let status = h
        .fleet
        .snapshot(&"deployment/prod/checkout".parse().unwrap())
        .unwrap();
    assert_eq!(status.replicas, 3, "nothing changed");
}

#[tokio::test]
async fn rollback_bad_deploy_goes_back_one_revision_and_declines_on_the_first() {
    let h = Harness::new();
    let report = h
        .run(
            &bundled("rollback-bad-deploy"),
            incident("deployment/prod/checkout", &[]),
            &Policy::as_declared(),
        )
        .await
        .unwrap();
    assert_eq!(kind(&report), "completed", "{:?}", report.outcome);
    let status = h
        .fleet
        .snapshot(&"deployment/prod/checkout".parse().unwrap())
        .unwrap();
    assert_eq!(status.image, "registry.example/checkout:1.8.1");
    assert_eq!(status.revision, 8);

    // A rollback of a statefulset is outside the manifest (deployments only): the
    // plugin cannot even read its status.
    let report = h
        .run(
            &bundled("rollback-bad-deploy"),
            incident("statefulset/prod/orders-db", &[]),
            &Policy::as_declared(),
        )
        .await
        .unwrap();
    assert_eq!(kind(&report), "plugin-error");
    assert_eq!(report.denials.len(), 1);
}

#[tokio::test]
async fn rotate_full_disk_frees_real_bytes_in_live_mode() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..50_000)
        .map(|i| format!("GET /checkout 200 {i}ms\n"))
        .collect();
    std::fs::write(dir.path().join("app.log"), &body).unwrap();
    let sets = BTreeMap::from([(
        "app".to_string(),
        LogSetConfig {
            root: dir.path().to_path_buf(),
            pattern: "*.log".into(),
            keep: 3,
            min_bytes: 1,
        },
    )]);
    let effects = live(&sets);
    let mut live = incident("container/default/app", &[]);
    live.dry_run = false;
    let h = Harness::new();
    let report = h
        .run_with(
            &bundled("rotate-full-disk"),
            live,
            &Policy::as_declared(),
            effects,
        )
        .await
        .unwrap();
    assert_eq!(kind(&report), "completed", "{:?}", report.outcome);
    assert_eq!(report.mode, "live");
    assert!(report.effects[0].applied);
    let archive = std::fs::metadata(dir.path().join("app.log.1.gz"))
        .unwrap()
        .len();
    assert_eq!(
        std::fs::metadata(dir.path().join("app.log")).unwrap().len(),
        0
    );
    let freed = body.len() as u64 - archive;
    assert_eq!(
        report.effects[0].result,
        format!("1 files rotated, {freed} bytes freed")
    );
}

#[tokio::test]
async fn rotate_full_disk_dry_run_touches_no_file() {
    let h = Harness::new();
    let report = h
        .run(
            &bundled("rotate-full-disk"),
            incident("container/default/app", &[]),
            &Policy::as_declared(),
        )
        .await
        .unwrap();
    assert_eq!(kind(&report), "completed", "{:?}", report.outcome);
    assert_eq!(
        report.effects[0].result,
        "14 files rotated, 1932735284 bytes freed"
    );
}

#[tokio::test]
async fn live_workload_calls_fail_clearly_without_a_live_provider() {
    let effects = live(&BTreeMap::new());
    let mut live = incident("deployment/prod/checkout", &[]);
    live.dry_run = false;
    let report = Harness::new()
        .run_with(
            &bundled("restart-on-oom"),
            live,
            &Policy::as_declared(),
            effects,
        )
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::PluginError {
            error: "failed".into(),
            message: "no live workload provider is configured on this host (run in dry-run mode)"
                .into()
        }
    );
}

/// What a live host with `log_sets` and no workload platform acts through.
fn live(log_sets: &BTreeMap<String, LogSetConfig>) -> provider::Effects {
    provider::build(Sources {
        live: true,
        workloads: &WorkloadsConfig::default(),
        fleet: None,
        log_sets,
    })
    .unwrap()
    .effects
}
