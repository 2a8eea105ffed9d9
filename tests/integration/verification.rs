//! Verification against a real Prometheus scraping a test exporter.
//!
//! The tests start Prometheus themselves, from the Debian `prometheus` package
//! (CI installs it; `PROMETHEUS` may name another binary), scraping an
//! exporter in this process every second. Tests that run at the same time
//! share one Prometheus, which stops when the last of them finishes; each test
//! owns its own series, told apart by the `scenario` label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use blastwall::verify::{
    OnEmpty, Prometheus, PrometheusConfig, ResolutionSource, VerificationSpec, judge_once, verify,
};
use tokio::sync::oneshot;

/// How long Prometheus may take to start, and a new value to become visible.
const PATIENCE: Duration = Duration::from_secs(30);

/// Gauge values served at `/metrics`, by scenario.
type Values = Arc<Mutex<BTreeMap<String, f64>>>;

/// The exporter runs on its own thread and runtime, because the Prometheus
/// that scrapes it outlives any one test's runtime.
struct Exporter {
    port: u16,
    values: Values,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds a local port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let values = Values::default();
        let served = values.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().route("/metrics", get(move || metrics(served.clone())));
                tokio::select! {
                    result = axum::serve(listener, app) => result.unwrap(),
                    _ = stopped => {}
                }
            });
        });
        Exporter {
            port,
            values,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        let _ = self.thread.take().map(std::thread::JoinHandle::join);
    }
}

/// The text exposition format, one gauge series per scenario.
async fn metrics(values: Values) -> ([(&'static str, &'static str); 1], String) {
    let mut text = String::from("# TYPE checkout_error_ratio gauge\n");
    for (scenario, value) in values.lock().unwrap().iter() {
        let _ = writeln!(
            text,
            "checkout_error_ratio{{scenario=\"{scenario}\"}} {value}"
        );
    }
    ([("content-type", "text/plain; version=0.0.4")], text)
}

/// A Prometheus child process, killed on drop, with its own storage and exporter.
struct TestPrometheus {
    child: Child,
    client: Prometheus,
    exporter: Exporter,
    dir: tempfile::TempDir,
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestPrometheus {
    async fn start() -> Self {
        let exporter = Exporter::start();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: exporter\n    static_configs:\n      \
                 - targets: [\"127.0.0.1:{}\"]\n",
                exporter.port
            ),
        )
        .unwrap();
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let binary = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary:?} ({e}): install the Debian `prometheus` package \
                     (CI installs it), or set PROMETHEUS to a Prometheus 2.x binary"
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        let mut prometheus = TestPrometheus {
            child,
            client: Prometheus::new(&PrometheusConfig {
                url: url.clone(),
                timeout: Duration::from_secs(5),
            })
            .unwrap(),
            exporter,
            dir,
        };
        prometheus.wait_until_ready(&url).await;
        prometheus
    }

    async fn wait_until_ready(&mut self, url: &str) {
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{url}/-/ready")).await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "prometheus was not ready within {PATIENCE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Sets the exporter's value for `scenario` and waits until Prometheus has scraped it.
    async fn set_and_wait(&self, scenario: &str, value: f64) {
        set(&self.exporter.values, scenario, value);
        let query = series(scenario);
        let started = Instant::now();
        loop {
            let samples = self.client.query(&query).await.unwrap_or_default();
            if samples.iter().any(|s| s.value == value) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{query} did not become {value} within {PATIENCE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The running Prometheus, started by the first test that needs it.
async fn prometheus() -> Arc<TestPrometheus> {
    static SHARED: tokio::sync::Mutex<Weak<TestPrometheus>> =
        tokio::sync::Mutex::const_new(Weak::new());
    let mut shared = SHARED.lock().await;
    if let Some(running) = shared.upgrade() {
        return running;
    }
    let started = Arc::new(TestPrometheus::start().await);
    *shared = Arc::downgrade(&started);
    started
}

fn set(values: &Values, scenario: &str, value: f64) {
    values.lock().unwrap().insert(scenario.to_string(), value);
}

fn series(scenario: &str) -> String {
    format!("checkout_error_ratio{{scenario=\"{scenario}\"}}")
}

fn below_5_percent(query: &str, window: Duration, interval: Duration) -> VerificationSpec {
    VerificationSpec::Promql {
        query: query.to_string(),
        expect: "< 0.05".parse().unwrap(),
        window,
        interval,
        on_empty: OnEmpty::Fail,
    }
}

/// PromQL verification never consults the alert's state.
struct NotAsked;

#[async_trait]
impl ResolutionSource for NotAsked {
    async fn resolved(&self, _incident: &str) -> bool {
        panic!("a promql verification does not ask about the alert")
    }
}

#[tokio::test]
async fn passes_when_the_error_ratio_drops_within_the_window() {
    let prometheus = prometheus().await;
    prometheus.set_and_wait("recovers", 0.3).await;
    let values = prometheus.exporter.values.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        set(&values, "recovers", 0.01);
    });
    let spec = below_5_percent(
        &series("recovers"),
        Duration::from_secs(20),
        Duration::from_secs(1),
    );
    let v = verify(&spec, Some(&prometheus.client), &NotAsked, "inc-1").await;
    assert!(v.passed, "{v:#?}");
    assert_eq!(v.judged, "live");
    assert!(v.checks > 1, "the first check saw the high ratio: {v:#?}");
    assert!(v.elapsed_ms >= 2_000, "{v:#?}");
    assert!(
        v.observations[0]
            .detail
            .ends_with("scenario=\"recovers\"} = 0.3, expected < 0.05"),
        "{v:#?}"
    );
    assert!(
        v.reason.ends_with(": 1 series, all < 0.05 (max 0.01)"),
        "{}",
        v.reason
    );
}

#[tokio::test]
async fn fails_when_the_ratio_stays_above_threshold() {
    let prometheus = prometheus().await;
    prometheus.set_and_wait("stays-high", 0.3).await;
    let spec = below_5_percent(
        &series("stays-high"),
        Duration::from_secs(4),
        Duration::from_secs(1),
    );
    let v = verify(&spec, Some(&prometheus.client), &NotAsked, "inc-1").await;
    assert!(!v.passed, "{v:#?}");
    assert!(v.checks >= 3, "polled through the window: {v:#?}");
    assert!(v.elapsed_ms >= 3_000, "{v:#?}");
    assert!(v.reason.starts_with("not met within 4s ("), "{}", v.reason);
    assert!(
        v.reason.contains("job=\"exporter\"")
            && v.reason
                .ends_with("scenario=\"stays-high\"} = 0.3, expected < 0.05"),
        "{}",
        v.reason
    );
    assert!(v.observations.iter().all(|o| !o.passed));
}

#[tokio::test]
async fn fails_with_prometheus_parse_error_for_an_invalid_query() {
    let prometheus = prometheus().await;
    let spec = below_5_percent(
        "sum(checkout_error_ratio",
        Duration::from_secs(20),
        Duration::from_secs(1),
    );
    let v = verify(&spec, Some(&prometheus.client), &NotAsked, "inc-1").await;
    assert_eq!((v.passed, v.checks), (false, 1), "{v:#?}");
    assert!(
        v.reason
            .contains("prometheus rejected the query (bad_data): "),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("parse error"), "{}", v.reason);
}

#[tokio::test]
async fn judge_once_gives_a_would_have_verdict_without_waiting() {
    let prometheus = prometheus().await;
    prometheus.set_and_wait("shadow", 0.01).await;
    let spec = below_5_percent(
        &series("shadow"),
        Duration::from_secs(300),
        Duration::from_secs(15),
    );
    let v = judge_once(&spec, Some(&prometheus.client), &NotAsked, "inc-1").await;
    assert_eq!(
        (v.passed, v.judged, v.checks),
        (true, "would-have", 1),
        "{v:#?}"
    );
    assert_eq!(
        v.reason,
        "would have passed: 1 series, all < 0.05 (max 0.01)"
    );
    assert!(v.elapsed_ms < 5_000, "{v:#?}");

    let absent = VerificationSpec::Promql {
        query: series("absent"),
        expect: "< 0.05".parse().unwrap(),
        window: Duration::from_secs(300),
        interval: Duration::from_secs(15),
        on_empty: OnEmpty::Pass,
    };
    let v = judge_once(&absent, Some(&prometheus.client), &NotAsked, "inc-1").await;
    assert_eq!(
        (v.passed, v.reason.as_str()),
        (
            true,
            "would have passed: no series returned (on-empty = pass)"
        )
    );
}

#[tokio::test]
async fn reads_scalars_and_special_values_as_prometheus_writes_them() {
    let prometheus = prometheus().await;
    let one = |query: &'static str| {
        let client = prometheus.client.clone();
        async move {
            let samples = client.query(query).await.unwrap();
            assert_eq!(samples.len(), 1, "{query}: {samples:?}");
            samples[0].clone()
        }
    };
    assert!(one("0/0").await.value.is_nan());
    assert_eq!(one("1/0").await.value, f64::INFINITY);
    assert_eq!(one("-1/0").await.value, f64::NEG_INFINITY);
    assert_eq!(one("scalar(vector(0.25))").await.value, 0.25);
    let labelled = one("label_replace(vector(2), \"pod\", \"a\", \"\", \"\")").await;
    assert_eq!(
        (
            labelled.labels.get("pod").map(String::as_str),
            labelled.value
        ),
        (Some("a"), 2.0)
    );
    let error = prometheus
        .client
        .query("checkout_error_ratio[1m]")
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("prometheus returned a matrix result"),
        "{error}"
    );
}
