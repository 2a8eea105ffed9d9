//! Load on the HTTP API: sustained alerts/s and alert→decision latency of
//! `blastwall serve`, over loopback, with the durable audit chain.
//!
//! The server is the one `blastwall serve` runs, built in process: a
//! `Responder` over a `SqliteStore` in a scratch directory (every step
//! durable, group commit), the bundled plugins dry-running against a
//! simulated fleet, then `serve::start` (the bounded alert queue, default
//! capacity and concurrency) and `serve::run` on a `TcpListener` bound to
//! 127.0.0.1:0, on its own runtime.
//!
//! The generator is open loop: alert `i` is due at `start + i / BENCH_RATE`,
//! whether or not earlier requests have been answered, and is posted (one
//! alert per Alertmanager v4 payload, keep-alive connections from one
//! reqwest client, at most `BENCH_CONNECTIONS` requests outstanding) as a
//! task of its own. Every alert is a distinct incident with realistic
//! labels, on one of `BENCH_TARGETS` workloads of the fleet, with a mix of
//! classes: 40% OOM kills (restart), 25% CPU saturation (scale), 10% disk
//! full (log rotation), all `auto`; 15% error spikes after a deploy
//! (rollback, `approve`: the decision asks a human); 10% an alert no rule
//! knows (refused, escalated). Guardrails are the defaults except where a
//! load test would trip them by design (storm breaker, cooldown and rate
//! limit per target), so every classified alert gets a real decision.
//!
//! Alert→decision latency, per alert: the `at` timestamp of the incident's
//! `decision` audit record (RFC 3339 with microseconds, taken by the store's
//! writer when it appends the record, inside the transaction that then
//! commits it) minus the wall-clock time (`SystemTime`) just before the
//! client sent the POST. Same machine, same clock. It covers the HTTP round
//! trip to the handler, the admission commit (the 202 waits for its fsync),
//! the queue, classification and its commit, and the guardrails in the
//! writer, but not the decision's own fsync (a few hundred µs to a few ms
//! here): the record's time is taken before the commit. The POST (ack)
//! latency is measured on the client with `Instant`. The per-stage figures
//! come from the same audit records (`alert.received`, `classification`,
//! `decision`, and the incident's last record).
//!
//! Throughput: decisions whose record falls within the measured window,
//! divided by the window. The warm-up (`BENCH_WARMUP` seconds at the same
//! rate) is excluded from every figure. `503`s (queue full) are counted and
//! not retried; `generator lag` is how late the client sent an alert against
//! its schedule (if it grows, the client, not the server, is the bottleneck).
//!
//! Run with `cargo bench -p blastwall-tests --bench serve`. Environment:
//! `BENCH_RATE` (alerts/s, default 2000), `BENCH_SECONDS` (default 10),
//! `BENCH_WARMUP` (default 2), `BENCH_CONNECTIONS` (default 32),
//! `BENCH_TARGETS` (default 4096), `BENCH_SLICES` (the window is also
//! reported in this many consecutive slices, default 5, to show whether
//! latency holds or drifts), `BENCH_STORM_WINDOW` (the storm breaker's
//! window, default `10m`; the breaker counts the runs in it at every
//! decision).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use blastwall::api::config::TokenConfig;
use blastwall::api::{ApiConfig, Role, Tokens};
use blastwall::config::HostConfig;
use blastwall::policy::TierPolicy;
use blastwall::provider::{DryRunFleet, Effects, FleetSpec};
use blastwall::respond::{Parts, Responder};
use blastwall::sandbox::{PoolConfig, Sandbox, SandboxConfig};
use blastwall::store::SqliteStore;
use blastwall_tests::bundled;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};

const CONFIG: &str = r#"
[[classify.rules]]
alertname = "KubePodOOMKilled"
class = "oom-killed"
confidence = 0.95

[[classify.rules]]
alertname = "CPUThrottlingHigh"
class = "cpu-saturation"
confidence = 0.9

[[classify.rules]]
alertname = "NodeFilesystemAlmostFull"
class = "disk-full"
confidence = 0.95

[[classify.rules]]
alertname = "HighErrorRateAfterDeploy"
class = "error-spike-after-deploy"
confidence = 0.9

[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"
cooldown = "1s"
rate-limit-per-hour = 1000

[catalog.cpu-saturation]
plugin = "scale-on-saturation@0.1.0"
mode = "auto"
params = { step = "2", max = "8" }
cooldown = "1s"
rate-limit-per-hour = 1000

[catalog.disk-full]
plugin = "rotate-full-disk@0.1.0"
mode = "auto"
params = { log-set = "app" }
cooldown = "1s"
rate-limit-per-hour = 1000

[catalog.error-spike-after-deploy]
plugin = "rollback-bad-deploy@0.1.0"
mode = "approve"

[guardrails]
storm = { max-actions = 1000000, window = "STORM_WINDOW", freeze = "1m" }
"#;

/// The namespaces the bench's workloads live in.
const NAMESPACES: [&str; 4] = ["shop", "payments", "search", "platform"];

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Workload `t` of the bench: `(namespace, name)`.
fn workload(t: usize) -> (&'static str, String) {
    (NAMESPACES[t % NAMESPACES.len()], format!("svc-{t:04}"))
}

/// Alert `n`, as Alertmanager sends it: a v4 payload with one alert.
fn payload(n: usize, targets: usize, run: u64) -> String {
    let (namespace, name) = workload(n % targets);
    let pod = format!("{name}-6c9f7d8b5-{:05x}", n % 0xfffff);
    let (alertname, severity, summary, mut labels) = match n % 20 {
        0..=7 => (
            "KubePodOOMKilled",
            "critical",
            format!("{name} containers were OOM-killed 3 times in 10 minutes"),
            json!({"deployment": name, "container": "app", "pod": pod}),
        ),
        8..=12 => (
            "CPUThrottlingHigh",
            "warning",
            format!("{name} is throttled 80% of the time"),
            json!({"deployment": name, "container": "app", "pod": pod}),
        ),
        13..=14 => (
            "NodeFilesystemAlmostFull",
            "warning",
            "/var/log is 93% full".to_string(),
            json!({"container": name, "mountpoint": "/var/log", "log_set": "app",
                   "instance": format!("node-{}:9100", n % 64)}),
        ),
        15..=17 => (
            "HighErrorRateAfterDeploy",
            "critical",
            format!("5xx rate 14% since {name} revision 2 rolled out"),
            json!({"deployment": name, "service": name}),
        ),
        _ => (
            "KafkaConsumerLagHigh",
            "warning",
            format!("consumer group {name} is 120000 messages behind"),
            json!({"deployment": name, "consumergroup": name, "topic": "orders"}),
        ),
    };
    let extra = labels.as_object_mut().expect("an object");
    for (key, value) in [
        ("alertname", alertname.to_string()),
        ("namespace", namespace.to_string()),
        ("severity", severity.to_string()),
        ("cluster", "prod-eu-west-1".to_string()),
        ("job", "kube-state-metrics".to_string()),
        ("prometheus", "monitoring/k8s".to_string()),
    ] {
        extra.insert(key.into(), value.into());
    }
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "blastwall",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\", namespace=\"{namespace}\"}}"),
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": alertname, "namespace": namespace},
        "commonLabels": labels.clone(),
        "commonAnnotations": {"summary": summary},
        "externalURL": "http://alertmanager.monitoring:9093",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {
                "summary": summary,
                "runbook_url": format!("https://runbooks.example/{alertname}"),
            },
            "startsAt": "2026-11-23T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=up",
            "fingerprint": format!("{:08x}{n:08x}", run & 0xffff_ffff),
        }],
    })
    .to_string()
}

/// What the client saw of one alert.
struct Sample {
    n: usize,
    /// Wall-clock time just before the POST was sent.
    sent: SystemTime,
    /// How late against its schedule it was sent.
    lag: Duration,
    /// Time to the 202 (or other answer).
    ack: Duration,
    status: u16,
    incident: Option<String>,
}

/// What the audit chain says of one incident.
#[derive(Default)]
struct Story {
    received: Option<SystemTime>,
    classified: Option<SystemTime>,
    decided: Option<SystemTime>,
    verdict: Option<String>,
    last: Option<SystemTime>,
}

fn at(record: &blastwall::audit::Record) -> SystemTime {
    humantime::parse_rfc3339(&record.at)
        .unwrap_or_else(|e| panic!("record {} time {:?}: {e}", record.seq, record.at))
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    // Signed would be more exact; a record can only precede its POST by
    // clock noise, which saturates to zero here.
    later.duration_since(earlier).unwrap_or(Duration::ZERO)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn line(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "  {label:<30} p50 {:>7.2} ms   p90 {:>7.2} ms   p99 {:>7.2} ms   max {:>8.2} ms   ({} alerts)",
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.90)),
        ms(percentile(&times, 0.99)),
        ms(times.last().copied().unwrap_or_default()),
        times.len()
    );
}

async fn responder(dir: &std::path::Path, targets: usize) -> Arc<Responder> {
    let fleet = DryRunFleet::new(FleetSpec::embedded_default());
    for t in 0..targets {
        let (namespace, name) = workload(t);
        for kind in ["deployment", "container"] {
            fleet.adopt(&format!("{kind}/{namespace}/{name}").parse().unwrap());
        }
    }
    let store = Arc::new(SqliteStore::open(dir).await.unwrap());
    let storm = std::env::var("BENCH_STORM_WINDOW").unwrap_or_else(|_| "10m".into());
    let config =
        HostConfig::from_toml(&CONFIG.replace("STORM_WINDOW", &storm), "serve bench").unwrap();
    let plugins = [
        "restart-on-oom",
        "scale-on-saturation",
        "rotate-full-disk",
        "rollback-bad-deploy",
    ]
    .map(|name| Arc::new(bundled(name)))
    .to_vec();
    let responder = Responder::from_config(
        &config,
        Parts {
            plugins,
            sandbox: Arc::new(
                Sandbox::new(SandboxConfig {
                    ceilings: Default::default(),
                    // As `serve` sizes it: max-in-flight, at most 64.
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

fn main() {
    let rate = env("BENCH_RATE", 2000.0);
    let seconds = env("BENCH_SECONDS", 10.0);
    let warmup_seconds = env("BENCH_WARMUP", 2.0);
    let connections = env("BENCH_CONNECTIONS", 32.0) as usize;
    let targets = env("BENCH_TARGETS", 4096.0) as usize;
    let warmup = (rate * warmup_seconds) as usize;
    let total = warmup + (rate * seconds) as usize;
    let run = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // The server, on its own runtime, as `blastwall serve` runs it.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = "bw_bench-token-0123456789abcdef0123456789";
    let api = ApiConfig::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let (app, addr, served) = server_runtime.block_on(async {
        let responder = responder(dir.path(), targets).await;
        let digest: String = blastwall::api::auth::digest(token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tokens = Tokens::from_config(&[TokenConfig {
            name: "alertmanager".into(),
            role: Role::AlertSource,
            sha256: Some(digest),
            env: None,
        }])
        .unwrap();
        let app = blastwall::serve::start(responder, &api, tokens, Vec::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn({
            let (app, api) = (app.clone(), api.clone());
            async move {
                blastwall::serve::run(listener, app, &api, async move {
                    let _ = stopped.await;
                })
                .await
            }
        });
        (app, addr, served)
    });
    let bodies: Vec<String> = (0..total).map(|n| payload(n, targets, run)).collect();
    eprintln!(
        "serve: {rate:.0} alerts/s for {seconds} s after a {warmup_seconds} s warm-up, \
         {targets} workloads, at most {connections} requests outstanding, on http://{addr} ..."
    );

    // The generator, on a runtime of its own (one thread).
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://{addr}/v1/alerts");
    let (samples, window) = client_runtime.block_on(async {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(connections)
            .build()
            .unwrap();
        let outstanding = Arc::new(Semaphore::new(connections));
        let refused = Arc::new(AtomicUsize::new(0));
        let interval = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now() + Duration::from_millis(50);
        let mut tasks = Vec::with_capacity(total);
        let mut window = (SystemTime::now(), SystemTime::now());
        for (n, body) in bodies.into_iter().enumerate() {
            let due = start + interval * n as u32;
            tokio::time::sleep_until(due.into()).await;
            let permit = outstanding.clone().acquire_owned().await.unwrap();
            let lag = Instant::now().saturating_duration_since(due);
            let (http, url, refused) = (http.clone(), url.clone(), refused.clone());
            if n == warmup {
                window.0 = SystemTime::now();
            }
            tasks.push(tokio::spawn(async move {
                let sent = SystemTime::now();
                let clock = Instant::now();
                let response = http
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("the server answers");
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                let ack = clock.elapsed();
                drop(permit);
                if status == 503 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                Sample {
                    n,
                    sent,
                    lag,
                    ack,
                    status,
                    incident: answer["incidents"][0]["incident"]
                        .as_str()
                        .map(str::to_string),
                }
            }));
        }
        window.1 = SystemTime::now();
        let mut samples = Vec::with_capacity(total);
        for task in tasks {
            samples.push(task.await.unwrap());
        }
        (samples, window)
    });
    let sent_all = Instant::now();

    // Wait for the server to decide and finish everything admitted.
    let stories = server_runtime.block_on(async {
        while app.queue.depth() > 0 || app.queue.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drained = sent_all.elapsed();
        let audit = app.responder.store().audit();
        let mut stories: HashMap<String, Story> = HashMap::new();
        let mut after = 0;
        loop {
            let records = audit.records(after, 1000).await.unwrap();
            let Some(last) = records.last() else { break };
            after = last.seq;
            for record in &records {
                let Some(incident) = &record.incident else {
                    continue;
                };
                let story = stories.entry(incident.clone()).or_default();
                let time = at(record);
                match record.kind.as_str() {
                    "alert.received" => story.received = story.received.or(Some(time)),
                    "classification" => story.classified = story.classified.or(Some(time)),
                    "decision" if story.decided.is_none() => {
                        story.decided = Some(time);
                        let body: Value = serde_json::from_str(&record.body).unwrap();
                        story.verdict = body["decision"]["verdict"].as_str().map(str::to_string);
                    }
                    _ => {}
                }
                story.last = Some(time);
            }
        }
        let verified = audit.verify().await.unwrap();
        eprintln!(
            "  drained {drained:?} after the last send; audit chain verified: {} records",
            verified.records
        );
        let _ = stop.send(());
        served.await.unwrap().unwrap();
        stories
    });

    let measured: Vec<&Sample> = samples.iter().filter(|s| s.n >= warmup).collect();
    let refused = measured.iter().filter(|s| s.status == 503).count();
    let failed = measured
        .iter()
        .filter(|s| s.status != 202 && s.status != 503)
        .count();
    let slices = (env("BENCH_SLICES", 5.0) as usize).max(1);
    let slice_of = |sample: &Sample| {
        let offset = since(sample.sent, window.0).as_secs_f64();
        let length = since(window.1, window.0).as_secs_f64().max(1e-9);
        ((offset / length * slices as f64) as usize).min(slices - 1)
    };
    let mut by_slice: Vec<Vec<Duration>> = vec![Vec::new(); slices];
    let (mut to_decision, mut ack, mut lag) = (Vec::new(), Vec::new(), Vec::new());
    let (mut to_received, mut queued, mut deciding, mut after_decision) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut verdicts: HashMap<String, usize> = HashMap::new();
    let mut undecided = 0;
    let mut in_window = 0;
    for sample in &measured {
        ack.push(sample.ack);
        lag.push(sample.lag);
        let Some(story) = sample.incident.as_ref().and_then(|id| stories.get(id)) else {
            continue;
        };
        let Some(decided) = story.decided else {
            undecided += 1;
            continue;
        };
        if decided >= window.0 && decided <= window.1 {
            in_window += 1;
        }
        *verdicts
            .entry(story.verdict.clone().unwrap_or_default())
            .or_default() += 1;
        to_decision.push(since(decided, sample.sent));
        by_slice[slice_of(sample)].push(since(decided, sample.sent));
        if let Some(received) = story.received {
            to_received.push(since(received, sample.sent));
            match story.classified {
                Some(classified) => {
                    queued.push(since(classified, received));
                    deciding.push(since(decided, classified));
                }
                None => queued.push(since(decided, received)),
            }
        }
        if let Some(last) = story.last {
            after_decision.push(since(last, decided));
        }
    }
    let window_length = since(window.1, window.0);
    let mut verdicts: Vec<_> = verdicts.into_iter().collect();
    verdicts.sort();
    println!(
        "serve: {:.0} alerts/s offered over {:.1} s ({} alerts after {} warm-up)",
        rate,
        window_length.as_secs_f64(),
        measured.len(),
        warmup
    );
    println!(
        "  decisions/s in the window      {:>7.0}   ({in_window} decided in it; {undecided} undecided, {refused} answered 503, {failed} other failures)",
        in_window as f64 / window_length.as_secs_f64()
    );
    line("alert → decision", to_decision);
    line("POST → 202", ack);
    line("generator lag", lag);
    for (i, slice) in by_slice.into_iter().enumerate() {
        line(&format!("  slice {}/{slices}", i + 1), slice);
    }
    println!("  where the time goes (from the audit records' times):");
    line("sent → alert.received", to_received);
    line("alert.received → classification", queued);
    line("classification → decision", deciding);
    line("decision → last record", after_decision);
    println!("  decisions: {verdicts:?}");
}
