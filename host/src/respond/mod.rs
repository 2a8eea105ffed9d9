//! The remediation loop: alert → incident → classification → guardrails →
//! grant → signed plugin in the sandbox → verification → escalation, with an
//! audit record for every step, durable before the step it describes acts.
//!
//! [`Responder::handle`] reads as the list of stages. The one lock it takes
//! covers reading the history, deciding and claiming the target, so two
//! alerts can never both pass the same budget; plugins run outside it.

mod act;
mod build;
mod notify;
pub mod operate;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::json;

use crate::alert::Alert;
use crate::audit::Entry;
use crate::catalog::{Catalog, Resolved};
use crate::classify::{Classification, Classifier};
use crate::escalate::Escalator;
use crate::guardrails::{
    self, Decision, FleetSize, GuardrailConfig, Millis, Observed, Request, Verdict, Window, now_ms,
};
use crate::incident::{incident_id, target_of};
use crate::policy::{Capability, TierPolicy};
use crate::provider::Provider;
use crate::sandbox::Sandbox;
use crate::store::{ActiveRun, Approval, IncidentState, Store, StoreError};
use crate::verify::{Prometheus, ResolutionSource};
use crate::workload::Workload;

pub use act::RunSummary;
pub use build::Parts;

/// Everything the loop needs, built once at start.
pub struct Responder {
    /// Class → plugin and per-class rules.
    pub catalog: Catalog,
    /// Rules and the optional model.
    pub classifier: Classifier,
    /// Global guardrail settings.
    pub guardrails: GuardrailConfig,
    /// Windows from the configuration (the store holds those added later).
    pub windows: Vec<Window>,
    /// The sandbox every plugin runs in.
    pub sandbox: Arc<Sandbox>,
    /// Caps per signer tier.
    pub tiers: TierPolicy,
    /// Where effects go.
    pub provider: Arc<dyn Provider>,
    /// Whether `provider` is itself a simulation (a dry-run host): runs are
    /// marked dry-run and verification is judged as "would have".
    pub simulated: bool,
    /// All state and the audit chain.
    pub store: Arc<dyn Store>,
    /// Notifiers.
    pub escalator: Escalator,
    /// For PromQL verification.
    pub prometheus: Option<Prometheus>,
    /// Serialises decide-and-claim.
    pub decide_lock: tokio::sync::Mutex<()>,
}

/// Why the loop could not handle an alert. Only the store can fail it: when
/// the audit cannot record a step, the step does not happen.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The store (or the audit chain) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened to one alert, for the caller (CLI, API, demo).
#[derive(Debug, Clone, Serialize)]
pub struct Handled {
    /// The incident.
    pub incident: String,
    /// Its target, or why there is none.
    pub target: String,
    /// The class, or `unknown`.
    pub class: String,
    /// The classification's confidence.
    pub confidence: f32,
    /// The decision: `execute`, `shadow`, `await-approval`, `notify`, `hold`,
    /// `refuse`, `duplicate`, `resolved` or `interrupted`.
    pub decision: String,
    /// Which guardrail decided, when one refused or held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<String>,
    /// Why, in a sentence.
    pub reason: String,
    /// Where the incident stands now.
    pub state: IncidentState,
    /// The run, if one happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSummary>,
    /// Whether a human was notified (or at least attempted).
    pub escalated: bool,
}

/// What the loop knows about an incident while handling it.
pub(crate) struct Case {
    pub id: String,
    pub alert: Alert,
    pub target: Option<Workload>,
    pub target_text: String,
    pub class: String,
    pub confidence: f32,
}

impl Case {
    fn handled(&self, decision: &str, reason: String, state: IncidentState) -> Handled {
        Handled {
            incident: self.id.clone(),
            target: self.target_text.clone(),
            class: self.class.clone(),
            confidence: self.confidence,
            decision: decision.into(),
            guardrail: None,
            reason,
            state,
            run: None,
            escalated: false,
        }
    }
}

/// Reads alert resolution from the store, for `alert-resolves` verification.
struct StoreResolution<'a>(&'a dyn Store);

#[async_trait]
impl ResolutionSource for StoreResolution<'_> {
    async fn resolved(&self, incident: &str) -> bool {
        matches!(self.0.incident(incident).await, Ok(Some(row)) if row.resolved_at.is_some())
    }
}

impl Responder {
    pub(crate) async fn record(
        &self,
        incident: &str,
        kind: &str,
        body: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.store
            .record(Entry {
                incident: Some(incident.to_string()),
                kind: kind.to_string(),
                body,
            })
            .await?;
        Ok(())
    }

    /// Handles one alert, start to finish.
    pub async fn handle(&self, alert: Alert) -> Result<Handled, RespondError> {
        let now = now_ms();
        let id = incident_id(&alert);
        if alert.status == "resolved" {
            return self.resolve(id, alert, now).await;
        }
        let target = target_of(&alert);
        let target_text = match &target {
            Ok(t) => t.to_string(),
            Err(e) => format!("none: {e}"),
        };
        let (row, new) = self
            .store
            .open_incident(&id, &alert, &target_text, now)
            .await?;
        self.record(
            &id,
            "alert.received",
            json!({"alert": &alert, "new_incident": new, "delivery": row.deliveries}),
        )
        .await?;
        let mut case = Case {
            id,
            alert,
            target: target.as_ref().ok().cloned(),
            target_text,
            class: "unknown".into(),
            confidence: 0.0,
        };
        if !new && !row.state.may_decide_again() {
            let reason = format!(
                "a repeated delivery of an incident that is {}: not decided again",
                row.state.as_str()
            );
            self.record(
                &case.id,
                "alert.duplicate",
                json!({"state": row.state, "reason": &reason}),
            )
            .await?;
            return Ok(case.handled("duplicate", reason, row.state));
        }
        if let Err(e) = target {
            let reason = format!("no target: {e}");
            return self.refuse(&case, None, "target", reason).await;
        }
        let classification = self.classify(&case).await?;
        case.class = classification.label().to_string();
        case.confidence = classification.confidence;
        let Some(resolved) = classification
            .class
            .as_deref()
            .and_then(|c| self.catalog.get(c))
        else {
            let reason = match &classification.class {
                Some(class) => {
                    format!("class {class} is not in the catalog: nobody mapped a plugin to it")
                }
                None => format!("unknown class: {}", classification.reason),
            };
            return self.refuse(&case, None, "catalog", reason).await;
        };
        let decision = self.decide(&case, resolved, now).await?;
        self.follow(&case, resolved, decision).await
    }

    async fn classify(&self, case: &Case) -> Result<Classification, StoreError> {
        let classes = self.catalog.classes();
        let classification = self.classifier.classify(&case.alert, &classes).await;
        self.record(
            &case.id,
            "classification",
            serde_json::to_value(&classification).expect("serialises"),
        )
        .await?;
        Ok(classification)
    }

    /// Runs the guardrails and, when they say execute, claims the target, all
    /// under one lock; the decision is durable before anything acts on it.
    async fn decide(
        &self,
        case: &Case,
        resolved: &Resolved,
        now: Millis,
    ) -> Result<(Decision, Option<String>), StoreError> {
        let target = case.target.as_ref().expect("decided only with a target");
        let plugin = &resolved.plugin.manifest().name;
        let rules = resolved.entry.rules();
        let _serial = self.decide_lock.lock().await;
        let storm_window = self.guardrails.storm.window.as_millis() as i64;
        let history = self
            .store
            .history(
                &case.id,
                target,
                plugin,
                now - 3_600_000,
                now - storm_window,
            )
            .await?;
        let mut windows = self.windows.clone();
        windows.extend(
            history
                .windows
                .iter()
                .filter_map(|spec| Window::try_from(spec.clone()).ok()),
        );
        let fleet = FleetSize {
            namespace: self
                .provider
                .count_workloads(Some(target.namespace()))
                .await
                .ok(),
            total: self.provider.count_workloads(None).await.ok(),
        };
        let observed = Observed {
            kill_switches: history.kill_switches,
            windows,
            attempts: history.attempts,
            last_run_at: history.last_run_at,
            target_runs_last_hour: history.target_runs_last_hour,
            runs_in_storm_window: history.runs_in_storm_window,
            storm_frozen_until: history.storm_frozen_until,
            in_flight: history.in_flight,
            fleet,
        };
        let capabilities = resolved.plugin.manifest().capabilities.capabilities();
        let request = Request {
            target,
            plugin,
            confidence: case.confidence,
            rules: &rules,
            now,
            touches_workloads: capabilities.iter().any(|c| *c != Capability::LogRotation),
        };
        let decision = guardrails::evaluate(&self.guardrails, request, &observed);
        if let Some(until) = decision.freeze_until {
            self.store.freeze(until).await?;
        }
        self.record(
            &case.id,
            "decision",
            json!({"plugin": resolved.entry.plugin.to_string(), "decision": &decision, "fleet": fleet}),
        )
        .await?;
        let mut run = None;
        if decision.verdict == Verdict::Execute {
            let run_id = format!("{}-run-{}", case.id, history.attempts + 1);
            self.store
                .begin_run(&ActiveRun {
                    run: run_id.clone(),
                    incident: case.id.clone(),
                    target: target.clone(),
                    plugin: plugin.clone(),
                    started_at: now,
                })
                .await?;
            run = Some(run_id);
        }
        Ok((decision, run))
    }

    async fn follow(
        &self,
        case: &Case,
        resolved: &Resolved,
        (decision, run): (Decision, Option<String>),
    ) -> Result<Handled, RespondError> {
        let now = now_ms();
        let class = Some(case.class.as_str());
        match decision.verdict {
            Verdict::Execute => {
                let run = run.expect("execute claims a run");
                Ok(self.execute(case, resolved, run, false).await?)
            }
            Verdict::Shadow => {
                let run = format!("{}-shadow-{now}", case.id);
                Ok(self.execute(case, resolved, run, true).await?)
            }
            Verdict::Hold { by, reason } => {
                self.store
                    .set_state(&case.id, IncidentState::Held, class, now)
                    .await?;
                let mut handled = case.handled("hold", reason, IncidentState::Held);
                handled.guardrail = Some(by.to_string());
                Ok(handled)
            }
            Verdict::Refuse { by, reason } => Ok(self
                .refuse(case, Some(class), &by.to_string(), reason)
                .await?),
            Verdict::Notify => {
                let reason = format!("the catalog only notifies for {}", case.class);
                self.store
                    .set_state(&case.id, IncidentState::Escalated, class, now)
                    .await?;
                self.escalate(case, "notify", &reason, None).await?;
                let mut handled = case.handled("notify", reason, IncidentState::Escalated);
                handled.escalated = true;
                Ok(handled)
            }
            Verdict::AwaitApproval => {
                let approval = Approval {
                    id: format!("{}-approval", case.id),
                    incident: case.id.clone(),
                    plugin: resolved.entry.plugin.to_string(),
                    state: "pending".into(),
                    created_at: now,
                };
                self.store.request_approval(&approval).await?;
                self.record(&case.id, "approval.requested", json!(&approval))
                    .await?;
                self.store
                    .set_state(&case.id, IncidentState::AwaitingApproval, class, now)
                    .await?;
                let reason = format!(
                    "{} needs a human's approval to run {}",
                    case.class, resolved.entry.plugin
                );
                self.escalate(case, "await-approval", &reason, None).await?;
                let mut handled =
                    case.handled("await-approval", reason, IncidentState::AwaitingApproval);
                handled.escalated = true;
                Ok(handled)
            }
        }
    }

    /// Refuses: records the state, escalates, and says why.
    async fn refuse(
        &self,
        case: &Case,
        class: Option<Option<&str>>,
        by: &str,
        reason: String,
    ) -> Result<Handled, RespondError> {
        if class.is_none() {
            // Refused before the guardrails ran (no target, unknown class): still a decision.
            self.record(
                &case.id,
                "decision",
                json!({"decision": {"verdict": "refuse", "by": by, "reason": &reason}}),
            )
            .await?;
        }
        self.store
            .set_state(
                &case.id,
                IncidentState::Escalated,
                class.flatten(),
                now_ms(),
            )
            .await?;
        self.escalate(case, "refuse", &reason, None).await?;
        let mut handled = case.handled("refuse", reason, IncidentState::Escalated);
        handled.guardrail = Some(by.to_string());
        handled.escalated = true;
        Ok(handled)
    }

    async fn resolve(
        &self,
        id: String,
        alert: Alert,
        now: Millis,
    ) -> Result<Handled, RespondError> {
        let known = self.store.mark_resolved(&id, now).await?;
        if known {
            self.record(&id, "alert.resolved", json!({"alert": &alert}))
                .await?;
        }
        let state = match self.store.incident(&id).await? {
            Some(row) => row.state,
            None => IncidentState::Resolved,
        };
        let reason = if known {
            "the alert resolved".to_string()
        } else {
            "a resolved alert for an incident this host never opened".to_string()
        };
        Ok(Handled {
            incident: id,
            target: String::new(),
            class: "unknown".into(),
            confidence: 0.0,
            decision: "resolved".into(),
            guardrail: None,
            reason,
            state,
            run: None,
            escalated: false,
        })
    }

    /// Finds runs a previous process left in flight (it crashed or was
    /// killed mid-run), marks each interrupted, releases its target and
    /// escalates it. Interrupted runs are never retried automatically: their
    /// effects are unknown.
    pub async fn recover(&self) -> Result<Vec<Handled>, RespondError> {
        let mut recovered = Vec::new();
        for run in self.store.active_runs().await? {
            let alert = self.store.alert_of(&run.incident).await?;
            let row = self.store.incident(&run.incident).await?;
            let reason = format!(
                "the host stopped during run {} of {} on {}; its effects are unknown and it will not be retried automatically",
                run.run, run.plugin, run.target
            );
            self.record(
                &run.incident,
                "run.interrupted",
                json!({"run": &run, "reason": &reason}),
            )
            .await?;
            self.store
                .set_state(&run.incident, IncidentState::Interrupted, None, now_ms())
                .await?;
            self.store.end_run(&run.run).await?;
            let case = Case {
                id: run.incident.clone(),
                alert: alert.unwrap_or_else(placeholder_alert),
                target: Some(run.target.clone()),
                target_text: run.target.to_string(),
                class: row
                    .and_then(|r| r.class)
                    .unwrap_or_else(|| "unknown".into()),
                confidence: 0.0,
            };
            self.escalate(&case, "interrupted", &reason, None).await?;
            let mut handled = case.handled("interrupted", reason, IncidentState::Interrupted);
            handled.escalated = true;
            recovered.push(handled);
        }
        Ok(recovered)
    }
}

fn placeholder_alert() -> Alert {
    Alert {
        status: "firing".into(),
        labels: Default::default(),
        annotations: Default::default(),
        starts_at: String::new(),
        ends_at: String::new(),
        generator_url: String::new(),
        fingerprint: String::new(),
    }
}
