//! The precompiled cache: reused across sandboxes, and never trusted when tampered with.

use std::sync::atomic::Ordering;

use blastwall::policy::Policy;
use blastwall::sandbox::{Outcome, PoolConfig, Sandbox, SandboxConfig};
use blastwall_tests::{bundled, incident};

fn sandbox(dir: &std::path::Path) -> Sandbox {
    Sandbox::new(SandboxConfig {
        pool: PoolConfig {
            max_concurrent_runs: 2,
            ..PoolConfig::default()
        },
        cache_dir: Some(dir.to_path_buf()),
        ..SandboxConfig::default()
    })
    .unwrap()
}

async fn run_once(sandbox: &Sandbox) -> Outcome {
    let artifact = bundled("restart-on-oom");
    let incident = incident("deployment/prod/checkout", &[]);
    let grants = blastwall::policy::grant(
        &artifact.manifest().capabilities,
        None,
        &Policy::as_declared(),
        &incident.target,
    )
    .unwrap();
    let plugin = sandbox.load(&artifact, &grants).await.unwrap();
    let fleet = std::sync::Arc::new(blastwall::provider::DryRunFleet::new(
        blastwall::provider::FleetSpec::embedded_default(),
    ));
    sandbox
        .run(
            &plugin,
            blastwall::sandbox::RunRequest {
                run: format!("{}-run", incident.id),
                incident,
                grants,
                effects: blastwall::provider::Effects::simulated(fleet),
            },
        )
        .await
        .outcome
}

fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[tokio::test]
async fn a_second_host_process_reuses_the_compiled_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let first = sandbox(dir.path());
    assert!(matches!(run_once(&first).await, Outcome::Completed { .. }));
    assert_eq!(
        first.cache_stats().unwrap().misses.load(Ordering::Relaxed),
        1
    );
    assert_eq!(entries(dir.path()).len(), 1);
    let second = sandbox(dir.path());
    assert!(matches!(run_once(&second).await, Outcome::Completed { .. }));
    assert_eq!(
        second.cache_stats().unwrap().hits.load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_tampered_entry_is_detected_deleted_and_recompiled_never_executed() {
    let dir = tempfile::tempdir().unwrap();
    run_once(&sandbox(dir.path())).await;
    let entry = entries(dir.path()).pop().unwrap();
    for tamper in [
        |b: &mut Vec<u8>| {
            let i = b.len() / 2;
            b[i] ^= 0x01;
        },
        |b: &mut Vec<u8>| b.truncate(40),
        |b: &mut Vec<u8>| b[0] ^= 0xff,
    ] {
        let mut bytes = std::fs::read(&entry).unwrap();
        tamper(&mut bytes);
        std::fs::write(&entry, bytes).unwrap();
        let fresh = sandbox(dir.path());
        assert!(matches!(run_once(&fresh).await, Outcome::Completed { .. }));
        let stats = fresh.cache_stats().unwrap();
        assert_eq!(stats.rejected.load(Ordering::Relaxed), 1);
        assert_eq!(stats.hits.load(Ordering::Relaxed), 0);
        assert!(entry.exists(), "rewritten after recompiling");
    }
}

#[tokio::test]
async fn an_entry_written_under_another_hosts_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run_once(&sandbox(dir.path())).await;
    // Another host (another key) planting its own valid-looking entry: replace our key.
    std::fs::remove_file(dir.path().join("cache.key")).unwrap();
    let fresh = sandbox(dir.path());
    assert!(matches!(run_once(&fresh).await, Outcome::Completed { .. }));
    assert_eq!(
        fresh
            .cache_stats()
            .unwrap()
            .rejected
            .load(Ordering::Relaxed),
        1
    );
}
