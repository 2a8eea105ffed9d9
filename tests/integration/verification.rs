//! Verification against a real Prometheus scraping a test exporter.
//!
//! The tests start Prometheus themselves, from the Debian `prometheus` package
//! (CI installs it; `PROMETHEUS` may name another binary), scraping an
//! exporter in this process every second. Tests that run at the same time
//! share one Prometheus, which stops when the last of them finishes; each test
//! owns its own series, told apart by the `scenario` label.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use blastwall::verify::{
    OnEmpty, Prometheus, PrometheusConfig, ResolutionSource, VerificationSpec, judge_once, verify,
};

/// A real Prometheus (`test_servers::prometheus`) and blastwall's client of it.
struct TestPrometheus {
    server: test_servers::prometheus::Prometheus,
    client: Prometheus,
}

impl TestPrometheus {
    async fn start() -> Self {
        let server = test_servers::prometheus::Prometheus::start().await;
        let client = Prometheus::new(&PrometheusConfig {
            url: server.url.clone(),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        TestPrometheus { server, client }
    }

    /// Sets the exporter's value for `scenario` and waits until Prometheus has scraped it.
    async fn set_and_wait(&self, scenario: &str, value: f64) {
        self.server.set(&series(scenario), value).await;
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
    let gauges = prometheus.server.gauges();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        gauges.set(&series("recovers"), 0.01);
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
