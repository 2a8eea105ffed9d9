//! The API's latency while plugins that never yield are running: a real
//! `blastwall serve` process, probed over loopback HTTP from this one.
//!
//! Three phases, each on a fresh server: no plugin running (the baseline),
//! twice as many runaway plugins as cores, and `max-in-flight` (8) of them
//! with `max-in-flight = 8`. Half the runaways loop in plain code, half on
//! `context.log`; each runs until its deadline. While every runaway runs,
//! one client polls `/healthz` every 5 ms and another posts a new alert
//! every 10 ms; the figures are their latencies.
//!
//! `cargo bench -p blastwall --bench hostile` (BENCH_SECONDS sets each
//! phase's probing window, default 4, at most 5).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::hostile::{RUNAWAY_TIMEOUT_MS, alert, payload, serve_with_runaways, still_running};
use common::serve::Api;

struct Latencies(Vec<Duration>);

impl Latencies {
    fn at(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
    }

    fn line(&self, what: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "{what:<18}{:>7}{:>10.2}{:>10.2}{:>10.2}",
            self.0.len(),
            ms(self.at(0.5)),
            ms(self.at(0.99)),
            ms(self.at(1.0))
        )
    }
}

async fn health(base: String, stop: Arc<AtomicBool>) -> Latencies {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let response = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert!(response.status().is_success());
        times.push(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Latencies(times)
}

async fn alerts(api: Arc<Api>, stop: Arc<AtomicBool>, generation: usize) -> Latencies {
    let mut times = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let body = payload(&[alert("ProbeAlert", n, generation)]);
        let asked = Instant::now();
        let (status, answer, _) = api.post_alerts(body).await;
        assert_eq!(status.as_u16(), 202, "{answer}");
        times.push(asked.elapsed());
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Latencies(times)
}

async fn phase(title: &str, max_in_flight: usize, runaways: usize, window: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, ids) = serve_with_runaways(dir.path(), max_in_flight, runaways).await;
    let stop = Arc::new(AtomicBool::new(false));
    let probes = (
        tokio::spawn(health(server.base.clone(), stop.clone())),
        tokio::spawn(alerts(api.clone(), stop.clone(), 1)),
    );
    tokio::time::sleep(window).await;
    let running = still_running(&api, &ids).await;
    stop.store(true, Ordering::Relaxed);
    let (health, alerts) = (probes.0.await.unwrap(), probes.1.await.unwrap());
    println!(
        "\n{title} ({runaways} runaway plugins, {running} still running at the end of the window)"
    );
    println!(
        "{:<18}{:>7}{:>10}{:>10}{:>10}",
        "", "n", "p50 ms", "p99 ms", "max ms"
    );
    println!("{}", health.line("GET /healthz"));
    println!("{}", alerts.line("POST /v1/alerts"));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
        .clamp(1, 5);
    // The window must end before the first runaway's deadline.
    assert!(seconds * 1000 + 1000 < RUNAWAY_TIMEOUT_MS);
    let window = Duration::from_secs(seconds);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    phase("baseline", 256, 0, window).await;
    phase("2 x cores", 256, 2 * cores, window).await;
    phase("max-in-flight = 8", 8, 8, window).await;
}
