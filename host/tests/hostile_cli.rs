//! `blastwall serve` while plugins that never yield are running: the real
//! binary, its HTTP API probed from this process.
//!
//! Runs execute on the sandbox's own threads (at a lower priority) and yield
//! at every epoch tick, so however many runaway plugins are in flight, the
//! API's threads are never the ones held. The bounds asserted here are
//! generous on purpose (a noisy, shared 2-core machine); the latency figures
//! themselves come from `cargo bench -p blastwall --bench hostile`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::hostile::{alert, payload, serve_with_runaways, still_running};
use common::serve::{Api, DEADLINE};
use reqwest::StatusCode;

/// The slowest answer any probe may get.
const BOUND: Duration = Duration::from_secs(1);
/// How long the API is probed while every runaway is running.
const WINDOW: Duration = Duration::from_secs(3);

/// What the probes measured.
#[derive(Debug, Default)]
struct Probed {
    count: usize,
    worst: Duration,
}

/// Polls `/healthz` back to back until `stop`, over its own connection.
async fn probe_health(base: String, stop: Arc<AtomicBool>) -> Probed {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut probed = Probed::default();
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let response = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        probed.worst = probed.worst.max(asked.elapsed());
        probed.count += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    probed
}

/// Posts a new alert (one no rule classifies) every 50 ms until `stop`;
/// each must be admitted (202).
async fn probe_alerts(api: Arc<Api>, stop: Arc<AtomicBool>) -> Probed {
    let mut probed = Probed::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let body = payload(&[alert("ProbeAlert", n, 1)]);
        let asked = Instant::now();
        let (status, answer, _) = api.post_alerts(body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        probed.worst = probed.worst.max(asked.elapsed());
        probed.count += 1;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    probed
}

/// Starts `serve` admitting `max_in_flight` alerts at once, fires `runaways`
/// alerts whose plugins never yield (half loop in plain code, half on
/// `context.log`), and probes the API while all of them run.
async fn stays_responsive(max_in_flight: usize, runaways: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (server, api, ids) = serve_with_runaways(dir.path(), max_in_flight, runaways).await;

    let stop = Arc::new(AtomicBool::new(false));
    let health = tokio::spawn(probe_health(server.base.clone(), stop.clone()));
    let alerts = tokio::spawn(probe_alerts(api.clone(), stop.clone()));
    tokio::time::sleep(WINDOW).await;
    // The load held for the whole window: every runaway is still running.
    assert_eq!(
        still_running(&api, &ids).await,
        ids.len(),
        "a runaway ended before the window did"
    );
    stop.store(true, Ordering::Relaxed);
    let (health, alerts) = (health.await.unwrap(), alerts.await.unwrap());

    // Enough probes that the bound means something; each admission is a
    // durable commit, whose fsync a busy disk can slow (that is not what
    // this test is about, so the count asked for is small).
    assert!(health.count >= 20, "only {} health probes", health.count);
    assert!(alerts.count >= 3, "only {} alert probes", alerts.count);
    assert!(
        health.worst < BOUND,
        "/healthz took {:?} with {runaways} runaway plugins in flight\n{}",
        health.worst,
        server.log()
    );
    assert!(
        alerts.worst < BOUND,
        "POST /v1/alerts took {:?} with {runaways} runaway plugins in flight\n{}",
        alerts.worst,
        server.log()
    );

    // Each runaway ended at its deadline, on the record.
    let started = Instant::now();
    for id in &ids {
        let incident = api.decided(id).await;
        let finished: Vec<_> = incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "run.finished")
            .collect();
        assert_eq!(finished.len(), 1, "{incident}");
        assert_eq!(
            finished[0]["body"]["outcome"]["kind"], "timeout",
            "{incident}"
        );
    }
    assert!(started.elapsed() < DEADLINE);
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_as_many_runaway_plugins_as_cores_never_stall_the_api() {
    stays_responsive(256, 2 * cores()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_runaway_plugins_never_stall_the_api() {
    stays_responsive(8, 8).await;
}
