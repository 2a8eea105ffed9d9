//! The host's Prometheus metrics, served at `/metrics`.
//!
//! What an operator graphs and alerts on: alerts received, decisions by
//! kind, runs by outcome, capability denials, alert→decision and
//! alert→handled latency, and the depth of the alert queue.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::respond::Handled;

/// Label set with one `kind` label.
type ByKind = Vec<(&'static str, String)>;

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    alerts: Family<ByKind, Counter>,
    decisions: Family<ByKind, Counter>,
    runs: Family<ByKind, Counter>,
    denials: Counter,
    rejected: Family<ByKind, Counter>,
    decision_latency: Histogram,
    handled_latency: Histogram,
    queue_depth: Gauge<i64, AtomicI64>,
    in_flight: Gauge<i64, AtomicI64>,
}

/// Latency buckets in seconds: 0.5 ms to about 65 s.
fn buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 18)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `blastwall` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("blastwall");
        let metrics = Metrics {
            alerts: Family::default(),
            decisions: Family::default(),
            runs: Family::default(),
            denials: Counter::default(),
            rejected: Family::default(),
            decision_latency: Histogram::new(buckets()),
            handled_latency: Histogram::new(buckets()),
            queue_depth: Gauge::default(),
            in_flight: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "alerts_received",
            "Alerts received, by status (firing or resolved)",
            metrics.alerts.clone(),
        );
        registry.register(
            "decisions",
            "Decisions on alerts, by kind (execute, shadow, await-approval, notify, hold, refuse, duplicate, resolved, interrupted)",
            metrics.decisions.clone(),
        );
        registry.register("runs", "Plugin runs, by outcome", metrics.runs.clone());
        registry.register(
            "capability_denials",
            "Capability calls a grant refused",
            metrics.denials.clone(),
        );
        registry.register(
            "requests_rejected",
            "Requests refused, by reason (unauthorized, forbidden, queue-full, invalid)",
            metrics.rejected.clone(),
        );
        registry.register(
            "alert_decision_seconds",
            "From an alert's arrival to its guardrail decision being durable",
            metrics.decision_latency.clone(),
        );
        registry.register(
            "alert_handled_seconds",
            "From an alert's arrival to the end of its handling (run and verification included)",
            metrics.handled_latency.clone(),
        );
        registry.register(
            "alert_queue_depth",
            "Alerts admitted and waiting to be processed",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "alerts_in_flight",
            "Alerts being processed",
            metrics.in_flight.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts an alert received.
    pub fn alert_received(&self, status: &str) {
        let status = if status == "resolved" {
            "resolved"
        } else {
            "firing"
        };
        self.alerts
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

    /// Counts a refused request.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Records what happened to one alert, `since` its arrival.
    pub fn handled(&self, handled: &Handled, since: std::time::Instant) {
        self.decisions
            .get_or_create(&vec![("kind", handled.decision.clone())])
            .inc();
        if let Some(run) = &handled.run {
            self.runs
                .get_or_create(&vec![(
                    "outcome",
                    run.outcome
                        .as_ref()
                        .map_or("not-started", |o| o.kind())
                        .to_string(),
                )])
                .inc();
            self.denials.inc_by(run.denials.len() as u64);
        }
        if let Some(decided) = handled.decided {
            self.decision_latency
                .observe(seconds(decided.saturating_duration_since(since)));
        }
        self.handled_latency.observe(seconds(since.elapsed()));
    }

    /// Sets the queue depth and the alerts in flight.
    pub fn load(&self, queued: usize, in_flight: usize) {
        self.queue_depth.set(queued as i64);
        self.in_flight.set(in_flight as i64);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}
