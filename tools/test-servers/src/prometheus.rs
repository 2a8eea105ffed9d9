//! A real Prometheus (Debian's `prometheus`; `PROMETHEUS` may name another
//! binary) scraping, every second, an exporter in this process whose gauges
//! the test sets. Killed when dropped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;

/// How long Prometheus may take to start, or a new value to become visible.
const PATIENCE: Duration = Duration::from_secs(30);

/// Gauge values by series (`name{labels}`).
type Values = Arc<Mutex<BTreeMap<String, f64>>>;

/// The exporter's gauges: set one, and the next scrape sees it.
#[derive(Clone)]
pub struct Gauges(Values);

impl Gauges {
    /// Sets the gauge `series` (e.g. `shop_error_ratio{service="web"}`).
    pub fn set(&self, series: &str, value: f64) {
        self.0.lock().unwrap().insert(series.to_string(), value);
    }
}

/// A Prometheus child process and the exporter it scrapes.
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    values: Values,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts the exporter and a Prometheus scraping it; waits until ready.
    pub async fn start() -> Prometheus {
        let values = Values::default();
        let port = exporter(values.clone());
        let dir = tempfile::tempdir().expect("a scratch directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: exporter\n    static_configs:\n      \
                 - targets: [\"127.0.0.1:{port}\"]\n"
            ),
        )
        .unwrap();
        let listen = free_port();
        let log = dir.path().join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let binary = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{listen}"))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary:?} ({e}): install Debian's `prometheus` (.ci/run does), \
                     or set PROMETHEUS to a Prometheus binary"
                )
            });
        let mut prometheus = Prometheus {
            url: format!("http://127.0.0.1:{listen}"),
            child,
            values,
            log,
            _dir: dir,
        };
        prometheus.wait_until_ready().await;
        prometheus
    }

    /// What Prometheus printed, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{}/-/ready", self.url)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
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

    /// The exporter's gauges, to set without waiting (from another task).
    pub fn gauges(&self) -> Gauges {
        Gauges(self.values.clone())
    }

    /// Sets the gauge `series` (e.g. `shop_error_ratio{service="web"}`) and
    /// waits until a query for it returns `value`.
    pub async fn set(&self, series: &str, value: f64) {
        self.gauges().set(series, value);
        let started = Instant::now();
        loop {
            if self.query(series).await.contains(&value) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{series} did not become {value} within {PATIENCE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn query(&self, promql: &str) -> Vec<f64> {
        let Ok(response) = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
        else {
            return Vec::new();
        };
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .filter_map(|s| s["value"][1].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves `values` at `/metrics` on a thread of its own; returns the port.
fn exporter(values: Values) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds a local port");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = Router::new().route("/metrics", get(move || metrics(values.clone())));
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

async fn metrics(values: Values) -> ([(&'static str, &'static str); 1], String) {
    let mut text = String::new();
    let mut typed = std::collections::BTreeSet::new();
    for (series, value) in values.lock().unwrap().iter() {
        let name = series.split('{').next().unwrap_or(series);
        if typed.insert(name.to_string()) {
            let _ = writeln!(text, "# TYPE {name} gauge");
        }
        let _ = writeln!(text, "{series} {value}");
    }
    ([("content-type", "text/plain; version=0.0.4")], text)
}
