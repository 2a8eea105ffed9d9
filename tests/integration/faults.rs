//! Faults around the loop end in an audited state, never a silent drop:
//! Prometheus down or hanging during verification, every notifier down, a
//! provider call that never returns. Each test runs the real loop over the
//! real store and reads the outcome back from the audit chain.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use blastwall::config::HostConfig;
use blastwall::policy::TierPolicy;
use blastwall::provider::{
    CallContext, DryRunFleet, Effects, FleetSpec, ProviderError, WorkloadProvider, WorkloadStatus,
};
use blastwall::respond::{Handled, Parts, Responder};
use blastwall::sandbox::{Sandbox, SandboxConfig};
use blastwall::store::{IncidentState, SqliteStore, Store};
use blastwall::workload::Workload;
use serde_json::Value;

use crate::respond::alert;

const OOM_RULE: &str = r#"
[[classify.rules]]
alertname = "KubePodOOMKilled"
class = "oom-killed"
confidence = 0.95
"#;

struct Faulty {
    responder: Responder,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

/// A live loop (effects applied, verification awaited) over `provider`
/// with `config` after the OOM rule.
async fn live(config: &str, effects: Effects) -> Faulty {
    let config = HostConfig::from_toml(&format!("{OOM_RULE}\n{config}"), "test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let responder = Responder::from_config(
        &config,
        Parts {
            plugins: blastwall::bundled::insecure_unsigned_all(),
            sandbox: Arc::new(Sandbox::new(SandboxConfig::default()).unwrap()),
            tiers: TierPolicy::embedded_default(),
            effects,
            simulated: false,
            store: store.clone(),
        },
    )
    .unwrap();
    Faulty {
        responder,
        store,
        _dir: dir,
    }
}

fn fleet() -> Effects {
    Effects::simulated(Arc::new(DryRunFleet::new(FleetSpec::embedded_default())))
}

impl Faulty {
    async fn oom(&self) -> Handled {
        self.responder
            .handle(alert("KubePodOOMKilled", "checkout", "03:00:00"))
            .await
            .unwrap()
    }

    /// The incident's records, kind and parsed body.
    async fn records(&self, incident: &str) -> Vec<(String, Value)> {
        self.store
            .audit()
            .incident(incident)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, serde_json::from_str(&r.body).unwrap()))
            .collect()
    }

    async fn only(&self, incident: &str, kind: &str) -> Value {
        let found: Vec<Value> = self
            .records(incident)
            .await
            .into_iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(found.len(), 1, "{kind}: {found:#?}");
        found.into_iter().next().unwrap()
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that accepts connections and never answers; kept open until dropped.
fn silent_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in accepting.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    (listener, port)
}

fn verified_oom(prometheus_port: u16) -> String {
    format!(
        r#"
[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"
verify = {{ kind = "promql", query = "up", expect = "== 1", window = "2s", interval = "500ms" }}

[prometheus]
url = "http://127.0.0.1:{prometheus_port}"
timeout = "1s"
"#
    )
}

async fn assert_inconclusive_and_escalated(f: &Faulty, h: &Handled) {
    assert_eq!(h.decision, "execute", "{h:#?}");
    // Failed as far as automation goes, and a human was told.
    assert_eq!(h.state, IncidentState::Failed, "{h:#?}");
    assert!(h.escalated);
    let verification = &h.run.as_ref().unwrap().verification.as_ref().unwrap();
    assert!(
        !verification.passed && !verification.conclusive,
        "{verification:#?}"
    );
    assert!(verification.checks >= 1);
    let escalation = f.only(&h.incident, "escalation").await;
    assert_eq!(
        escalation["decision"], "verification-inconclusive",
        "{escalation}"
    );
}

#[tokio::test]
async fn prometheus_down_during_verification_is_inconclusive_and_escalated() {
    let f = live(&verified_oom(closed_port()), fleet()).await;
    let h = f.oom().await;
    assert_inconclusive_and_escalated(&f, &h).await;
    let verification = &h.run.as_ref().unwrap().verification.as_ref().unwrap();
    assert!(
        verification.reason.contains("127.0.0.1"),
        "{}",
        verification.reason
    );
}

#[tokio::test]
async fn a_hanging_prometheus_is_cut_off_by_its_timeout_and_escalated() {
    let (_held, port) = silent_server();
    let f = live(&verified_oom(port), fleet()).await;
    let started = Instant::now();
    let h = f.oom().await;
    assert_inconclusive_and_escalated(&f, &h).await;
    let verification = &h.run.as_ref().unwrap().verification.as_ref().unwrap();
    assert!(
        verification
            .observations
            .iter()
            .all(|o| !o.passed && o.detail.contains("did not answer within 1s")),
        "{verification:#?}"
    );
    // The window (2s) plus one timed-out check (1s): never the minutes a
    // hung connection could last.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn with_every_notifier_down_the_incident_is_still_escalated_on_the_record() {
    let (webhook, slack, pagerduty) = (closed_port(), closed_port(), closed_port());
    let (_held, silent) = silent_server();
    let config = format!(
        r#"
[escalation]
retry = {{ attempts = 3, initial-backoff = "10ms", max-backoff = "50ms", timeout = "500ms" }}

[[escalation.notifiers]]
kind = "webhook"
name = "bot"
url = "http://127.0.0.1:{webhook}/hook"

[[escalation.notifiers]]
kind = "slack"
name = "channel"
url = "http://127.0.0.1:{slack}/services/x"

[[escalation.notifiers]]
kind = "pagerduty"
name = "pager"
routing-key = "0123456789abcdef0123456789abcdef"
url = "http://127.0.0.1:{pagerduty}/v2/enqueue"

[[escalation.notifiers]]
kind = "webhook"
name = "hung"
url = "http://127.0.0.1:{silent}/hook"
"#
    );
    // No catalog entry for the class: the loop's answer is a page.
    let f = live(&config, fleet()).await;
    let h = f.oom().await;
    assert_eq!(h.state, IncidentState::Escalated, "{h:#?}");
    assert!(h.escalated);
    let incident = f.store.incident(&h.incident).await.unwrap().unwrap();
    assert_eq!(incident.state, IncidentState::Escalated);
    let requested = f.only(&h.incident, "escalation.requested").await;
    assert_eq!(requested["decision"], h.decision);
    let escalation = f.only(&h.incident, "escalation").await;
    let deliveries = escalation["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 4, "{escalation}");
    let by_name: BTreeMap<&str, &Value> = deliveries
        .iter()
        .map(|d| (d["notifier"].as_str().unwrap(), d))
        .collect();
    for name in ["bot", "channel", "pager", "hung"] {
        let delivery = by_name[name];
        assert_eq!(delivery["delivered"], false, "{delivery}");
        assert_eq!(delivery["attempts"], 3, "retried within bounds: {delivery}");
    }
    assert!(
        by_name["hung"]["error"].as_str().unwrap().contains("time"),
        "{}",
        by_name["hung"]
    );
}

/// What a restart does instead of restarting.
enum Fault {
    /// Never returns.
    Hang,
    /// Fails with this error.
    Error(ProviderError),
}

/// The example fleet, except for its restarts.
struct FaultyRestart(DryRunFleet, Fault);

impl FaultyRestart {
    fn effects(fault: Fault) -> Effects {
        let fleet = Arc::new(DryRunFleet::new(FleetSpec::embedded_default()));
        let faulty = FaultyRestart(DryRunFleet::new(FleetSpec::embedded_default()), fault);
        Effects::new(Arc::new(faulty), fleet)
    }
}

#[async_trait]
impl WorkloadProvider for FaultyRestart {
    fn name(&self) -> &'static str {
        "hanging"
    }
    async fn status(
        &self,
        cx: &CallContext,
        target: &Workload,
    ) -> Result<WorkloadStatus, ProviderError> {
        self.0.status(cx, target).await
    }
    async fn set_replicas(
        &self,
        cx: &CallContext,
        target: &Workload,
        replicas: u32,
    ) -> Result<u32, ProviderError> {
        self.0.set_replicas(cx, target, replicas).await
    }
    async fn restart(&self, _: &CallContext, _: &Workload) -> Result<(), ProviderError> {
        match &self.1 {
            Fault::Hang => std::future::pending().await,
            Fault::Error(e) => Err(e.clone()),
        }
    }
    async fn rollback(&self, cx: &CallContext, target: &Workload) -> Result<u64, ProviderError> {
        self.0.rollback(cx, target).await
    }
    async fn count_workloads(
        &self,
        cx: &CallContext,
        namespace: Option<&str>,
    ) -> Result<u32, ProviderError> {
        self.0.count_workloads(cx, namespace).await
    }
}

#[tokio::test]
async fn a_provider_call_that_never_returns_ends_at_the_deadline_with_its_intent_on_the_record() {
    let config = r#"
[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"
"#;
    let f = live(config, FaultyRestart::effects(Fault::Hang)).await;
    let h = f.oom().await;
    let run = h.run.as_ref().unwrap();
    assert_eq!(
        run.outcome.as_ref().unwrap().kind(),
        "provider-unavailable",
        "{h:#?}"
    );
    assert_eq!(h.state, IncidentState::Failed, "{h:#?}");
    assert!(h.escalated);
    // Its intent was durable before the provider was called ...
    let intent = f.only(&h.incident, "effect.intent").await;
    assert_eq!(intent["function"], "restart.restart", "{intent}");
    // ... and its outcome is unknown: an operator must assume it happened.
    let finished = f.only(&h.incident, "run.finished").await;
    assert_eq!(
        finished["outcome"]["kind"], "provider-unavailable",
        "{finished}"
    );
    assert_eq!(finished["outcome"]["error"], "timeout", "{finished}");
    assert_eq!(run.effects.len(), 1, "{run:#?}");
    assert!(run.effects[0].result.starts_with("unknown:"), "{run:#?}");
    let escalation = f.only(&h.incident, "escalation").await;
    assert_eq!(escalation["decision"], "run-failed", "{escalation}");
}

const OOM_AUTO: &str = r#"
[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"
"#;

#[tokio::test]
async fn a_platform_that_is_down_ends_the_run_and_escalates() {
    let down = ProviderError::Unavailable("connection refused (os error 111)".into());
    let f = live(OOM_AUTO, FaultyRestart::effects(Fault::Error(down))).await;
    let h = f.oom().await;
    let run = h.run.as_ref().unwrap();
    assert_eq!(
        run.outcome,
        Some(blastwall::sandbox::Outcome::ProviderUnavailable {
            error: "unavailable".into(),
            message: "connection refused (os error 111)".into(),
        }),
        "{h:#?}"
    );
    assert_eq!(h.state, IncidentState::Failed);
    assert!(h.escalated);
    let escalation = f.only(&h.incident, "escalation").await;
    assert_eq!(escalation["decision"], "run-failed", "{escalation}");
    // The call is on the record as failed, not as an effect.
    assert!(run.effects.is_empty(), "{run:#?}");
    let restart = f
        .records(&h.incident)
        .await
        .into_iter()
        .find(|(kind, body)| kind == "call" && body["call"]["function"] == "restart.restart")
        .map(|(_, body)| body)
        .expect("the restart call is on the record");
    assert_eq!(restart["call"]["result"]["status"], "failed", "{restart}");
}

#[tokio::test]
async fn the_platform_refusing_a_call_is_a_denial_the_plugin_sees() {
    let rbac = ProviderError::Forbidden(
        "deployments.apps \"checkout\" is forbidden: User \"system:serviceaccount:ops:blastwall\" cannot patch resource".into(),
    );
    let f = live(OOM_AUTO, FaultyRestart::effects(Fault::Error(rbac))).await;
    let h = f.oom().await;
    let run = h.run.as_ref().unwrap();
    // The plugin got `denied` and gave up, as it does for the grant's denials.
    let outcome = run.outcome.as_ref().unwrap();
    assert_eq!(outcome.kind(), "plugin-error", "{h:#?}");
    assert_eq!(run.denials.len(), 1, "{run:#?}");
    assert!(
        run.denials[0].reason.starts_with("the platform refused: ")
            && run.denials[0].reason.contains("cannot patch"),
        "{run:#?}"
    );
    let finished = f.only(&h.incident, "run.finished").await;
    assert_eq!(
        finished["denials"][0]["function"], "restart.restart",
        "{finished}"
    );
    assert!(h.escalated, "a failed run is escalated");
}
