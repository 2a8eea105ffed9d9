//! What one live restart costs on a real Docker daemon.
//!
//! Two measurements, one container each (busybox `sleep`, stopped with
//! SIGKILL, so the figures are blastwall's and the Engine's, not an
//! application's shutdown):
//! - **provider**: `Effects::restart` on `container/bench/web`, as a run
//!   calls it: list the service, restart its container, wait until it runs
//!   again.
//! - **plugin run**: the bundled `restart-on-oom` plugin run live through the
//!   sandbox with the Docker provider (grant, fresh store, the call above, the
//!   report).
//!
//! The daemon is this bench's own (`blastwall_tests::dockerd`: root, Debian
//! `docker.io` and `busybox-static`). Run with
//! `cargo bench -p blastwall-tests --bench docker`; `BENCH_RUNS` sets the
//! number of measured restarts of each kind (default 300).

use std::sync::Arc;
use std::time::{Duration, Instant};

use blastwall::policy::Policy;
use blastwall::provider::{CallContext, Docker, DockerConfig, DryRunFleet, Effects, FleetSpec};
use blastwall::sandbox::Outcome;
use blastwall::workload::Workload;
use blastwall_tests::{Harness, bundled, dockerd, incident};

const WARMUP: usize = 10;

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let n = times.len();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = times.iter().sum::<Duration>() / n as u32;
    println!(
        "{label:<14} p50 {:>8.1} ms   p99 {:>8.1} ms   mean {:>8.1} ms   max {:>8.1} ms   ({n} restarts)",
        ms(times[n / 2]),
        ms(times[(n * 99 / 100).min(n - 1)]),
        ms(mean),
        ms(times[n - 1]),
    );
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let daemon = dockerd::daemon();
    daemon.run_service("bench", "web", 1, false).await;
    let docker = Docker::connect(DockerConfig {
        socket: daemon.socket.clone(),
        stop_grace_seconds: 1,
        ..DockerConfig::default()
    })
    .expect("the daemon's socket");
    let effects = Effects::new(
        Arc::new(docker),
        Arc::new(DryRunFleet::new(FleetSpec::default())),
    );
    let target: Workload = "container/bench/web".parse().unwrap();

    let mut provider = Vec::with_capacity(runs);
    for i in 0..WARMUP + runs {
        let cx = CallContext::run("bench", "bench", Instant::now() + Duration::from_secs(30));
        let started = Instant::now();
        effects.restart(&cx, &target).await.expect("restarts");
        if i >= WARMUP {
            provider.push(started.elapsed());
        }
    }

    let harness = Harness::new();
    let plugin = bundled("restart-on-oom");
    let mut plugin_runs = Vec::with_capacity(runs);
    for i in 0..WARMUP + runs {
        let mut live = incident("container/bench/web", &[]);
        live.dry_run = false;
        let started = Instant::now();
        let report = harness
            .run_with(&plugin, live, &Policy::as_declared(), effects.clone())
            .await
            .expect("loads");
        let elapsed = started.elapsed();
        assert!(
            matches!(report.outcome, Outcome::Completed { .. }),
            "{:?} {:?}",
            report.outcome,
            report.calls
        );
        if i >= WARMUP {
            plugin_runs.push(elapsed);
        }
    }
    println!("one live restart of one container on Docker ({runs} each, after {WARMUP} warm-up):");
    summary("provider", provider);
    summary("plugin run", plugin_runs);
}
