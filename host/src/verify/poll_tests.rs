//! Polling: a verification stops as soon as the condition holds, retries
//! errors through the window, and says which of those happened.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::query_tests::{answering, client, vector};
use super::tests::promql;
use super::*;

/// A state store whose alert resolves on the call after `after` (never if `None`).
struct FlipsAfter {
    calls: AtomicU32,
    after: Option<u32>,
}

impl FlipsAfter {
    fn new(after: Option<u32>) -> Self {
        FlipsAfter {
            calls: AtomicU32::new(0),
            after,
        }
    }
}

#[async_trait]
impl ResolutionSource for FlipsAfter {
    async fn resolved(&self, incident: &str) -> bool {
        assert_eq!(incident, "inc-1", "asks about the verified incident");
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.after.is_some_and(|after| call > after)
    }
}

fn alert(window_ms: u64, interval_ms: u64) -> VerificationSpec {
    VerificationSpec::AlertResolves {
        window: Duration::from_millis(window_ms),
        interval: Duration::from_millis(interval_ms),
    }
}

#[tokio::test]
async fn passes_as_soon_as_the_alert_resolves() {
    let source = FlipsAfter::new(Some(3));
    let v = verify(&alert(5_000, 20), None, &source, "inc-1").await;
    assert!(v.passed, "{v:?}");
    assert_eq!((v.judged, v.checks), ("live", 4));
    assert!(
        v.reason.starts_with("passed on check 4 after "),
        "{}",
        v.reason
    );
    assert!(
        v.reason.ends_with(": the alert has resolved"),
        "{}",
        v.reason
    );
    assert!(v.elapsed_ms >= 60, "three intervals waited: {v:?}");
    assert!(
        v.elapsed_ms < 2_000,
        "stopped early, not at the window end: {v:?}"
    );
    let verdicts: Vec<bool> = v.observations.iter().map(|o| o.passed).collect();
    assert_eq!(verdicts, [false, false, false, true]);
    assert!(
        v.observations
            .windows(2)
            .all(|w| w[0].after_ms <= w[1].after_ms)
    );
}

#[tokio::test]
async fn fails_at_the_window_end_when_the_alert_never_resolves() {
    let source = FlipsAfter::new(None);
    let v = verify(&alert(150, 30), None, &source, "inc-1").await;
    assert!(!v.passed);
    assert!((2..=6).contains(&v.checks), "{v:?}");
    assert_eq!(source.calls.load(Ordering::SeqCst), v.checks);
    assert!(v.elapsed_ms >= 120, "waited for the window: {v:?}");
    assert!(
        v.reason.starts_with("not met within 150ms (")
            && v.reason.ends_with("); last: the alert is still firing"),
        "{}",
        v.reason
    );
}

#[tokio::test]
async fn keeps_only_the_most_recent_observations() {
    let source = FlipsAfter::new(None);
    let v = verify(&alert(300, 2), None, &source, "inc-1").await;
    assert!(v.checks as usize > MAX_OBSERVATIONS, "{}", v.checks);
    assert_eq!(v.observations.len(), MAX_OBSERVATIONS);
    assert!(v.observations.last().unwrap().after_ms >= 250);
}

#[tokio::test]
async fn judge_once_evaluates_once_without_waiting() {
    let source = FlipsAfter::new(None);
    let v = judge_once(&alert(300_000, 5_000), None, &source, "inc-1").await;
    assert_eq!((v.passed, v.judged, v.checks), (false, "would-have", 1));
    assert_eq!(v.reason, "would have failed: the alert is still firing");
    assert!(v.elapsed_ms < 1_000, "{v:?}");
    let resolved = FlipsAfter::new(Some(0));
    let v = judge_once(&alert(300_000, 5_000), None, &resolved, "inc-1").await;
    assert_eq!(
        (v.passed, v.reason.as_str()),
        (true, "would have passed: the alert has resolved")
    );
}

#[tokio::test]
async fn promql_without_a_configured_prometheus_fails_without_checking() {
    let source = FlipsAfter::new(Some(0));
    let spec = promql("up", 1_000, 100);
    for v in [
        verify(&spec, None, &source, "inc-1").await,
        judge_once(&spec, None, &source, "inc-1").await,
    ] {
        assert_eq!((v.passed, v.checks), (false, 0));
        assert_eq!(v.reason, VerifyError::NoPrometheus.to_string());
        assert!(v.reason.contains("[prometheus] section"), "{}", v.reason);
    }
}

#[tokio::test]
async fn an_invalid_spec_fails_without_checking() {
    let source = FlipsAfter::new(Some(0));
    let v = verify(&alert(100, 0), None, &source, "inc-1").await;
    assert_eq!((v.passed, v.checks), (false, 0));
    assert_eq!(
        v.reason,
        "verification interval 0s must be greater than zero"
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), 0);
}

struct NeverConsulted;

#[async_trait]
impl ResolutionSource for NeverConsulted {
    async fn resolved(&self, _incident: &str) -> bool {
        panic!("a promql verification does not ask about the alert")
    }
}

fn ratio_below(window_ms: u64, interval_ms: u64) -> VerificationSpec {
    VerificationSpec::Promql {
        query: "ratio".into(),
        expect: "< 0.05".parse().unwrap(),
        window: Duration::from_millis(window_ms),
        interval: Duration::from_millis(interval_ms),
        on_empty: OnEmpty::Fail,
    }
}

#[tokio::test]
async fn passes_once_the_ratio_drops_and_retries_transient_errors() {
    let prometheus = answering(vec![
        (200, vector(&["0.3"])),
        (503, "unavailable".into()),
        (200, vector(&["0.01"])),
    ])
    .await;
    let v = verify(
        &ratio_below(5_000, 10),
        Some(&prometheus),
        &NeverConsulted,
        "inc-1",
    )
    .await;
    assert!(v.passed, "{v:?}");
    assert_eq!(v.checks, 3);
    let details: Vec<&str> = v.observations.iter().map(|o| o.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "ratio{pod=\"0\"} = 0.3, expected < 0.05",
            "error: prometheus answered http 503: unavailable",
            "1 series, all < 0.05 (max 0.01)",
        ]
    );
}

#[tokio::test]
async fn says_so_when_every_check_errored() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let prometheus = client(&url, Duration::from_secs(1));
    let v = verify(
        &ratio_below(60, 20),
        Some(&prometheus),
        &NeverConsulted,
        "inc-1",
    )
    .await;
    assert!(!v.passed);
    assert!(v.checks >= 2, "errors are retried: {v:?}");
    assert!(
        v.reason.starts_with("every check errored ("),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("is unreachable"), "{}", v.reason);
    assert!(
        v.observations
            .iter()
            .all(|o| !o.passed && o.detail.starts_with("error: "))
    );
}

#[tokio::test]
async fn does_not_retry_a_query_prometheus_cannot_parse() {
    let body = r#"{"status":"error","errorType":"bad_data","error":"1:6: parse error: unexpected end of input"}"#;
    let prometheus = answering(vec![(400, body.into())]).await;
    let v = verify(
        &ratio_below(5_000, 10),
        Some(&prometheus),
        &NeverConsulted,
        "inc-1",
    )
    .await;
    assert_eq!((v.passed, v.checks), (false, 1));
    assert!(v.elapsed_ms < 1_000, "{v:?}");
    assert_eq!(
        v.reason,
        "every check errored (1 check); an invalid query is not retried: prometheus rejected the query (bad_data): 1:6: parse error: unexpected end of input"
    );
}

#[tokio::test]
async fn judge_once_records_how_the_query_would_have_been_judged() {
    let prometheus = answering(vec![(200, vector(&["0.3", "0.01"]))]).await;
    let v = judge_once(
        &ratio_below(300_000, 15_000),
        Some(&prometheus),
        &NeverConsulted,
        "inc-1",
    )
    .await;
    assert_eq!((v.passed, v.judged, v.checks), (false, "would-have", 1));
    assert_eq!(
        v.reason,
        "would have failed: ratio{pod=\"0\"} = 0.3, expected < 0.05 (1 of 2 series fail)"
    );
}
