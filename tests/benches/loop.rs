//! Cost of the whole remediation loop per alert, with a durable audit chain.
//!
//! Each alert goes through `Responder::handle` as `blastwall handle` runs it:
//! incident opened in the store, classification by rules, the ten guardrails
//! over the store's history, the target claimed, the bundled `restart-on-oom`
//! plugin run in the sandbox against the simulated fleet, every step and call
//! appended to the audit chain (each durable before `handle` returns), the
//! claim released. Every alert is a distinct incident on its own target, so no
//! guardrail refuses and every alert pays for a full run.
//!
//! Two shapes: one alert at a time (latency), and `BENCH_CONCURRENCY` alerts
//! in flight (throughput, audit group commit at work). Run with
//! `cargo bench -p blastwall-tests --bench loop`; `BENCH_ALERTS` sets the
//! number of alerts per shape (default 2000).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blastwall::alert::Alert;
use blastwall::config::HostConfig;
use blastwall::policy::TierPolicy;
use blastwall::provider::{DryRunFleet, Effects, FleetSpec};
use blastwall::respond::{Parts, Responder};
use blastwall::sandbox::{PoolConfig, Sandbox, SandboxConfig};
use blastwall::store::SqliteStore;
use blastwall_tests::bundled;

const CONFIG: &str = r#"
[[classify.rules]]
alertname = "KubePodOOMKilled"
class = "oom-killed"
confidence = 0.95

[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"

[guardrails]
storm = { max-actions = 1000000, window = "10m", freeze = "1m" }
blast-radius = { max-fraction = 1.0, min-allowed = 64 }
"#;

fn alert(n: usize) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), "KubePodOOMKilled".to_string());
    labels.insert("namespace".to_string(), "bench".to_string());
    labels.insert("deployment".to_string(), format!("svc-{n}"));
    Alert {
        status: "firing".into(),
        labels,
        annotations: BTreeMap::new(),
        starts_at: "2026-11-23T03:00:00Z".into(),
        ends_at: String::new(),
        generator_url: String::new(),
        fingerprint: format!("bench-{n}"),
    }
}

async fn responder(dir: &std::path::Path, alerts: usize) -> Arc<Responder> {
    let fleet = DryRunFleet::new(FleetSpec::embedded_default());
    for n in 0..=alerts {
        fleet.adopt(&format!("deployment/bench/svc-{n}").parse().unwrap());
    }
    let store = Arc::new(SqliteStore::open(dir).await.unwrap());
    let config = HostConfig::from_toml(CONFIG, "bench").unwrap();
    let responder = Responder::from_config(
        &config,
        Parts {
            plugins: vec![Arc::new(bundled("restart-on-oom"))],
            sandbox: Arc::new(
                Sandbox::new(SandboxConfig {
                    ceilings: Default::default(),
                    pool: PoolConfig {
                        max_concurrent_runs: 64,
                        ..PoolConfig::default()
                    },
                    cache_dir: None,
                })
                .unwrap(),
            ),
            tiers: TierPolicy::embedded_default(),
            effects: Effects::simulated(Arc::new(fleet)),
            simulated: true,
            store,
        },
    )
    .unwrap();
    Arc::new(responder)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(label: &str, mut times: Vec<Duration>, wall: Duration) {
    times.sort();
    let n = times.len();
    println!(
        "{label:<28}{:>10.0} alerts/s   p50 {:>8.2} ms   p99 {:>8.2} ms   ({n} alerts)",
        n as f64 / wall.as_secs_f64(),
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
    );
}

async fn measure(alerts: usize, concurrency: usize) -> (Vec<Duration>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let responder = responder(dir.path(), alerts).await;
    // Warm up: compile and link the plugin once.
    let warm = alert(alerts);
    responder.handle(warm).await.unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let responder = responder.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= alerts {
                    return times;
                }
                let t = Instant::now();
                let handled = responder.handle(alert(n)).await.unwrap();
                assert_eq!(handled.decision, "execute", "{handled:?}");
                times.push(t.elapsed());
            }
        }));
    }
    let mut times = Vec::new();
    for worker in workers {
        times.extend(worker.await.unwrap());
    }
    let wall = started.elapsed();
    let verified = responder.store().audit().verify().await.unwrap();
    eprintln!("  audit chain verified: {} records", verified.records);
    (times, wall)
}

fn main() {
    let alerts: usize = std::env::var("BENCH_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    eprintln!("handling {alerts} alerts one at a time, then {concurrency} at a time ...");
    let (times, wall) = runtime.block_on(measure(alerts, 1));
    report("one at a time", times, wall);
    let (times, wall) = runtime.block_on(measure(alerts, concurrency));
    report(&format!("{concurrency} in flight"), times, wall);
}
