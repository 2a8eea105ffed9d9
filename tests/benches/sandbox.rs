//! Per-run cost of the sandbox, next to bare wasmtime on the same machine.
//!
//! Both sides instantiate the `trivial` test guest (one `restart` call) in a
//! fresh store and call `remediate`, thousands of times:
//! - **bare wasmtime**: pooling allocator, full WASI, the capability answered by
//!   a dynamic host function that does nothing; no fuel, deadline, limiter,
//!   grant check, journal or report. The floor an embedder pays.
//! - **blastwall**: `Sandbox::run` as the host uses it: fuel, epoch deadline,
//!   memory limiter, restricted WASI, the grant check, the dry-run provider,
//!   the journal and the full `RunReport`.
//!
//! Run with `cargo bench -p blastwall-tests --bench sandbox`. Set
//! `BENCH_RUNS` to change the number of measured runs (default 20000).

use std::hint::black_box;
use std::time::{Duration, Instant};

use blastwall::policy::{self, Policy, Tier};
use blastwall::provider::Effects;
use blastwall::sandbox::{Outcome, PoolConfig, RunRequest, Sandbox, SandboxConfig};
use blastwall::signature::{self, TrustStore};
use blastwall_tests::{Harness, guest, guest_files, incident};
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const WARMUP: usize = 1_000;

struct Bare {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

fn string(s: &str) -> Val {
    Val::String(s.into())
}

/// The incident record as a dynamic value, matching `types.incident`.
fn incident_val() -> Val {
    let label = |k: &str, v: &str| {
        Val::Record(vec![("key".into(), string(k)), ("value".into(), string(v))])
    };
    Val::Record(vec![
        ("id".into(), string("inc-bench")),
        ("class".into(), string("test")),
        ("confidence".into(), Val::Float32(1.0)),
        (
            "alert".into(),
            Val::Record(vec![
                ("name".into(), string("TestAlert")),
                ("status".into(), string("firing")),
                (
                    "labels".into(),
                    Val::List(vec![label("alertname", "TestAlert")]),
                ),
                ("annotations".into(), Val::List(vec![])),
                ("starts-at".into(), string("2026-11-23T03:00:00Z")),
                ("fingerprint".into(), string("f00d")),
            ]),
        ),
        (
            "target".into(),
            Val::Record(vec![
                ("kind".into(), Val::Enum("deployment".into())),
                ("namespace".into(), string("prod")),
                ("name".into(), string("checkout")),
            ]),
        ),
        ("params".into(), Val::List(vec![])),
        ("dry-run".into(), Val::Bool(true)),
    ])
}

async fn bare_wasmtime(runs: usize) -> wasmtime::Result<Vec<Duration>> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(
            PoolingAllocationConfig::default(),
        ));
    let engine = Engine::new(&config)?;
    let component = Component::from_binary(&engine, &guest_files("trivial").0)?;
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    linker.instance("blastwall:remediation/types@0.1.0")?;
    linker
        .instance("blastwall:remediation/restart@0.1.0")?
        .func_new_async("restart", |_store, _ty, _params, results| {
            Box::new(async move {
                results[0] = Val::Result(Ok(None));
                Ok(())
            })
        })?;
    linker.define_unknown_imports_as_traps(&component)?;
    let pre = linker.instantiate_pre(&component)?;
    let incident = [incident_val()];
    let mut times = Vec::with_capacity(runs);
    for i in 0..WARMUP + runs {
        let started = Instant::now();
        let mut store = Store::new(
            &engine,
            Bare {
                ctx: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        let instance = pre.instantiate_async(&mut store).await?;
        let func = instance
            .get_func(&mut store, "remediate")
            .expect("the guest exports remediate");
        let mut results = [Val::Bool(false)];
        func.call_async(&mut store, &incident, &mut results).await?;
        black_box(&results);
        if i >= WARMUP {
            times.push(started.elapsed());
        }
    }
    Ok(times)
}

/// Each run's time as the caller sees it, and as the run itself measured it
/// on the sandbox's threads (the difference is the hand-off between threads).
async fn blastwall_runs(runs: usize) -> (Vec<Duration>, Vec<Duration>) {
    let h = Harness::new();
    let artifact = guest("trivial");
    let incident = incident("deployment/prod/checkout", &[]);
    let grants = policy::grant(
        &artifact.manifest().capabilities,
        None,
        &Policy::as_declared(),
        &incident.target,
    )
    .expect("grant");
    let plugin = h.sandbox.load(&artifact, &grants).await.expect("loads");
    let effects = Effects::simulated(h.fleet.clone());
    let mut times = Vec::with_capacity(runs);
    let mut inside = Vec::with_capacity(runs);
    for i in 0..WARMUP + runs {
        let request = RunRequest {
            incident: incident.clone(),
            grants: grants.clone(),
            effects: effects.clone(),
            run: format!("bench-{i}"),
        };
        let started = Instant::now();
        let report = h.sandbox.run(&plugin, request).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(report.outcome, Outcome::Completed { .. }),
            "{:?}",
            report.outcome
        );
        if i >= WARMUP {
            times.push(elapsed);
            inside.push(Duration::from_micros(report.duration_us));
        }
    }
    (times, inside)
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut times: Vec<Duration>) -> Stats {
    times.sort();
    let n = times.len();
    Stats {
        p50: times[n / 2],
        p99: times[(n * 99 / 100).min(n - 1)],
        mean: times.iter().sum::<Duration>() / n as u32,
    }
}

fn us(d: Duration) -> String {
    format!("{:>10.1} µs", d.as_secs_f64() * 1e6)
}

/// Median and p99 of `f` over `n` calls.
fn time_n(n: usize, mut f: impl FnMut()) -> Stats {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f();
        times.push(started.elapsed());
    }
    stats(times)
}

/// The load path: verify, compile, precompiled reload, cached load.
fn load_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public, _) = signature::generate_files(dir.path(), "bench").expect("key");
    let key = signature::read_signing_key(&key).expect("key");
    let mut trust = TrustStore::default();
    trust.add(&public, Tier::Publisher, None).expect("trust");
    let (bytes, manifest) = guest_files("trivial");
    let signed = signature::sign(&bytes, &manifest, &key).expect("sign");
    let verify = time_n(2_000, || {
        black_box(signature::verify(&signed, &trust).expect("verifies"));
    });
    let artifact = signature::verify(&signed, &trust).expect("verifies");
    let target = "deployment/prod/checkout".parse().expect("target");
    let grants = policy::grant(
        &artifact.manifest().capabilities,
        None,
        &Policy::as_declared(),
        &target,
    )
    .expect("grant");
    let cache = dir.path().join("cache");
    let config = || SandboxConfig {
        pool: PoolConfig {
            max_concurrent_runs: 4,
            ..PoolConfig::default()
        },
        cache_dir: Some(cache.clone()),
        ..SandboxConfig::default()
    };
    // Loading is async (compilation runs on the sandbox's own threads); a
    // current-thread runtime adds the least to the cached-load figure.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cold = Sandbox::new(config()).expect("sandbox");
    let started = Instant::now();
    runtime
        .block_on(cold.load(&artifact, &grants))
        .expect("loads");
    let compile = started.elapsed();
    let cached = time_n(2_000, || {
        black_box(
            runtime
                .block_on(cold.load(&artifact, &grants))
                .expect("loads"),
        );
    });
    let mut reloads = Vec::new();
    for _ in 0..20 {
        let warm = Sandbox::new(config()).expect("sandbox");
        let started = Instant::now();
        runtime
            .block_on(warm.load(&artifact, &grants))
            .expect("loads");
        reloads.push(started.elapsed());
    }
    let reload = stats(reloads);
    println!(
        "load path for the signed {} KiB trivial plugin",
        signed.len() / 1024
    );
    println!(
        "{:<44}{}{}",
        "verify signature (sha256 + ed25519)",
        us(verify.p50),
        us(verify.p99)
    );
    println!("{:<44}{}", "first load: compile + link", us(compile));
    println!(
        "{:<44}{}{}",
        "new process: precompiled reload + link",
        us(reload.p50),
        us(reload.p99)
    );
    println!(
        "{:<44}{}{}",
        "same process: cached load",
        us(cached.p50),
        us(cached.p99)
    );
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");

    eprintln!("measuring {runs} runs each after {WARMUP} warm-up runs ...");
    let bare = stats(
        runtime
            .block_on(bare_wasmtime(runs))
            .expect("bare wasmtime"),
    );
    let (outside, inside) = runtime.block_on(blastwall_runs(runs));
    let (ours, run_itself) = (stats(outside), stats(inside));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "sandbox benchmark: instantiate + remediate with one capability call, fresh store per run"
    );
    println!("{:<16}{:>12}{:>12}{:>12}", "", "p50", "p99", "mean");
    println!(
        "{:<16}{}{}{}",
        "bare wasmtime",
        us(bare.p50),
        us(bare.p99),
        us(bare.mean)
    );
    println!(
        "{:<16}{}{}{}",
        "blastwall",
        us(ours.p50),
        us(ours.p99),
        us(ours.mean)
    );
    // The run as measured on the sandbox's threads: the sandbox step itself.
    println!(
        "{:<16}{}{}{}",
        "  of which run",
        us(run_itself.p50),
        us(run_itself.p99),
        us(run_itself.mean)
    );
    println!(
        "{:<16}{:>11.2}x{:>11.2}x{:>11.2}x",
        "ratio",
        ratio(ours.p50, bare.p50),
        ratio(ours.p99, bare.p99),
        ratio(ours.mean, bare.mean)
    );
    let met = ours.p99 < Duration::from_micros(100) && ratio(ours.p99, bare.p99) <= 3.0;
    println!(
        "goal (p99 < 100 µs and within 3x of bare wasmtime): {}",
        if met { "met" } else { "NOT met" }
    );
    println!();
    load_path();
}
