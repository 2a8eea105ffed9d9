//! The remediation loop: alert → incident → classification → grant →
//! guardrails → signed plugin in the sandbox → verification → escalation,
//! with an audit record for every step, durable before the step it
//! describes acts.
//!
//! [`Responder::handle`] reads as the list of stages. The decision itself is
//! taken inside the store's writer (see [`crate::store::DecideRequest`]): the
//! history read, the guardrails, the decision record and the target's claim
//! are one step of one transaction, so two alerts (or two deliveries of one)
//! can never both pass the same budget, and no lock is held across an fsync.
//! Plugins run outside it.

mod act;
mod approve;
mod build;
mod component;
mod notify;
pub mod operate;
mod proposal_run;
mod propose;
mod recover;
mod witness;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::json;

use crate::alert::Alert;
use crate::audit::Entry;
use crate::catalog::{Catalog, Resolved};
use crate::classify::{Classification, ClassifiedBy, Classifier};
use crate::escalate::Escalator;
use crate::guardrails::{
    Decision, FleetSize, GuardrailConfig, Millis, Mode, Verdict, Window, now_ms,
};
use crate::incident::{incident_id, target_of};
use crate::policy::{Capability, TierPolicy};
use crate::provider::{CallContext, Effects};
use crate::sandbox::Sandbox;
use crate::store::{
    Approver, Change, DecideRequest, Decided, IncidentRow, IncidentState, Store, StoreError, owner,
};
use crate::verify::{Prometheus, ResolutionSource};
use crate::workload::Workload;

pub use act::RunSummary;
pub use build::Parts;
pub use propose::ProposeError;

/// Everything the loop needs, built once at start by [`Responder::from_config`].
pub struct Responder {
    catalog: Catalog,
    classifier: Classifier,
    guardrails: GuardrailConfig,
    windows: Vec<Window>,
    sandbox: Arc<Sandbox>,
    tiers: TierPolicy,
    effects: Effects,
    simulated: bool,
    store: Arc<dyn Store>,
    escalator: Escalator,
    prometheus: Option<Prometheus>,
    /// Keys AI agents sign proposals with; none: proposals are refused.
    trust: Option<Arc<crate::signature::TrustStore>>,
    proposals: crate::proposal::ProposalSettings,
    /// The built-in runner of agents' plans.
    plan_runner: Arc<crate::signature::PluginArtifact>,
}

/// Why the loop could not handle an alert. Only the store can fail it: when
/// the audit cannot record a step, the step does not happen.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The store (or the audit chain) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An approval that does not exist, is no longer pending, or whose
    /// incident no longer waits for it.
    #[error("{0}")]
    NotApprovable(String),
    /// An approval whose plugin or class the host no longer has.
    #[error("{0}")]
    Unrunnable(String),
}

/// What a decision would ask a human to approve, and the approval it
/// carries when a human already has.
pub(crate) struct Ask {
    /// Stored with the approval request (see [`crate::store::Approval::subject`]).
    pub subject: serde_json::Value,
    /// The approval this decision consumes.
    pub approval: Option<Approver>,
}

impl Ask {
    /// The catalog's plugin for the incident's class.
    fn catalog(case: &Case) -> Ask {
        Ask {
            subject: json!({"kind": "catalog", "class": &case.class, "confidence": case.confidence}),
            approval: None,
        }
    }
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
    /// Which guardrail (or earlier stage) decided, when one refused or held.
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
    /// When the decision was durable (for latency metrics; not serialised).
    /// `None` when no guardrail decision was taken (refused earlier, a
    /// duplicate, a resolution).
    #[serde(skip)]
    pub decided: Option<std::time::Instant>,
}

/// An alert on the record, waiting to be decided.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Its incident.
    pub id: String,
    /// The alert.
    pub alert: Alert,
    /// When it was admitted.
    pub at: Millis,
    /// Whether this delivery opened the incident: then nothing has been
    /// decided on it, and processing need not read it back first (a second
    /// decision, say by recovery, is still caught inside the writer).
    pub first: bool,
}

/// What admitting an alert came to.
#[derive(Debug)]
pub enum Admitted {
    /// A firing alert, on the record, to be processed.
    Firing(Admission),
    /// A resolved alert: nothing more to do.
    Resolved(Box<Handled>),
}

/// What the loop knows about an incident while handling it.
pub(crate) struct Case {
    pub id: String,
    pub alert: Alert,
    pub target: Option<Workload>,
    pub target_text: String,
    pub class: String,
    pub confidence: f32,
    /// State changes and records that ride along with the next commit about
    /// this case (the classification goes with the decision: one fsync
    /// fewer between an alert and its decision).
    pub carry: std::sync::Mutex<Carry>,
}

/// See [`Case::carry`].
#[derive(Default)]
pub(crate) struct Carry {
    pub changes: Vec<Change>,
    pub records: Vec<Entry>,
}

impl Case {
    /// Adds records to what rides along with the next commit.
    fn carry_records(&self, records: Vec<Entry>) {
        self.carry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .records
            .extend(records);
    }

    /// What rides along with the next commit, taken.
    fn take_carry(&self) -> Carry {
        std::mem::take(
            &mut *self
                .carry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

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
            decided: None,
        }
    }
}

/// Whether a delivery of an existing incident may be decided on again.
fn decidable(row: &IncidentRow) -> bool {
    row.state.may_decide_again() && row.resolved_at.is_none()
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
    /// The store: state and the audit chain.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

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

    /// Moves the incident to its final state for this delivery, on the record.
    pub(crate) async fn settle(
        &self,
        case: &Case,
        state: IncidentState,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.settle_releasing(case, state, reason, None).await
    }

    /// Settles and, in the same commit, releases the run's claim on its target.
    pub(crate) async fn settle_releasing(
        &self,
        case: &Case,
        state: IncidentState,
        reason: &str,
        run: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut changes = vec![Change::SetState {
            id: case.id.clone(),
            state,
            class: None,
            at: now_ms(),
        }];
        if let Some(run) = run {
            changes.push(Change::EndRun {
                run: run.to_string(),
            });
        }
        let Carry {
            changes: mut carried,
            mut records,
        } = case.take_carry();
        carried.extend(changes);
        records.push(Entry {
            incident: Some(case.id.clone()),
            kind: "incident.state".into(),
            body: json!({"state": state, "reason": reason}),
        });
        self.store.commit(carried, records).await.map(|_| ())
    }

    /// Records a step of the case, with whatever rides along.
    pub(crate) async fn record_case(
        &self,
        case: &Case,
        kind: &str,
        body: serde_json::Value,
    ) -> Result<(), StoreError> {
        let Carry {
            changes,
            mut records,
        } = case.take_carry();
        records.push(Entry {
            incident: Some(case.id.clone()),
            kind: kind.to_string(),
            body,
        });
        self.store.commit(changes, records).await.map(|_| ())
    }

    /// Handles one alert, start to finish: [`Responder::admit`], then
    /// [`Responder::process`].
    pub async fn handle(&self, alert: Alert) -> Result<Handled, RespondError> {
        let admitted = self.admit(vec![alert]).await?.pop();
        match admitted.expect("one alert in, one out") {
            Admitted::Resolved(handled) => Ok(*handled),
            Admitted::Firing(admission) => self.process(admission).await,
        }
    }

    /// The durable half of receiving alerts: for firing alerts, each incident
    /// (or its repeated delivery) and its `alert.received` record, all in one
    /// commit; for resolved alerts, the whole resolution. Once this returns,
    /// the alerts are on the record and cannot be lost: [`Responder::process`]
    /// continues from here, now or after a restart (see
    /// [`Responder::undecided`]). Results are in the order of `alerts`.
    pub async fn admit(&self, alerts: Vec<Alert>) -> Result<Vec<Admitted>, RespondError> {
        let now = now_ms();
        let mut changes = Vec::new();
        let mut records = Vec::new();
        let mut admitted = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let id = incident_id(&alert);
            if alert.status == "resolved" {
                admitted.push(Admitted::Resolved(Box::new(
                    self.resolve(id, alert, now).await?,
                )));
                continue;
            }
            let target_text = match target_of(&alert) {
                Ok(t) => t.to_string(),
                Err(e) => format!("none: {e}"),
            };
            records.push(Entry {
                incident: Some(id.clone()),
                kind: "alert.received".into(),
                body: json!({"alert": &alert}),
            });
            changes.push(Change::OpenIncident {
                id: id.clone(),
                alert: Box::new(alert.clone()),
                target: target_text,
                at: now,
            });
            admitted.push(Admitted::Firing(Admission {
                id,
                alert,
                at: now,
                first: false,
            }));
        }
        if changes.is_empty() {
            return Ok(admitted);
        }
        // One delivery count per `OpenIncident`, in the order of the firing alerts.
        let deliveries = self.store.commit(changes, records).await?.results;
        let firing = admitted.iter_mut().filter_map(|a| match a {
            Admitted::Firing(admission) => Some(admission),
            Admitted::Resolved(_) => None,
        });
        for (admission, count) in firing.zip(deliveries) {
            admission.first = count == 1;
        }
        Ok(admitted)
    }

    /// Decides on an admitted alert and follows the decision through.
    pub async fn process(&self, admission: Admission) -> Result<Handled, RespondError> {
        let Admission {
            id, alert, first, ..
        } = admission;
        // Decided as of now, not as of the admission: an alert taken up by
        // recovery meets today's switches, windows and budgets.
        let now = now_ms();
        let target = target_of(&alert);
        let target_text = match &target {
            Ok(t) => t.to_string(),
            Err(e) => format!("none: {e}"),
        };
        let mut case = Case {
            id: id.clone(),
            alert,
            target: target.as_ref().ok().cloned(),
            target_text,
            class: "unknown".into(),
            confidence: 0.0,
            carry: Default::default(),
        };
        if !first {
            let row = self.store.incident(&id).await?.ok_or(StoreError::Corrupt {
                what: "incident that was just written",
                value: id.clone(),
            })?;
            let redelivered = row.state != IncidentState::Open
                && now - row.updated_at < self.guardrails.redelivery_window.as_millis() as i64;
            if !decidable(&row) || redelivered {
                // A repeated delivery nobody will decide on: counted and recorded.
                case.class = row.class.clone().unwrap_or_else(|| "unknown".into());
                return Ok(self.duplicate(&case, &row).await?);
            }
        }
        // The classification (committed with the decision or refusal that follows).
        let classification = match &target {
            Ok(_) => Some(self.classify(&case).await),
            Err(_) => None,
        };
        if let Some(classification) = &classification {
            case.class = classification.label().to_string();
            case.confidence = classification.confidence;
            *case
                .carry
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Carry {
                changes: vec![Change::SetClass {
                    id: id.clone(),
                    class: case.class.clone(),
                }],
                records: vec![Entry {
                    incident: Some(id.clone()),
                    kind: "classification".into(),
                    body: serde_json::to_value(classification).expect("serialises"),
                }],
            };
        }
        let (Ok(_), Some(classification)) = (&target, classification) else {
            let reason = match &target {
                Err(e) => format!("no target: {e}"),
                Ok(_) => "no classification".to_string(),
            };
            return Ok(self.refuse(&case, "target", reason).await?);
        };
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
            return Ok(self.refuse(&case, "catalog", reason).await?);
        };
        let mode = self.mode_for(resolved, &classification);
        let prepared = match self
            .prepare(&case, &resolved.plugin, &resolved.entry.policy())
            .await
        {
            Ok(prepared) => prepared,
            Err(reason) => return Ok(self.refuse(&case, "grant", reason).await?),
        };
        let started = self.started_body(&case, &prepared);
        let ask = Ask::catalog(&case);
        match self
            .decide(&case, resolved, mode, now, started, ask)
            .await?
        {
            Decided::Duplicate(state) => {
                // Another delivery (or a human) got there first: rare enough
                // to read the incident back now.
                let row = self.store.incident(&id).await?.ok_or(StoreError::Corrupt {
                    what: "incident that was just decided",
                    value: id.clone(),
                })?;
                let row = IncidentRow { state, ..row };
                Ok(self.duplicate(&case, &row).await?)
            }
            Decided::NotApprovable(reason) => Err(RespondError::NotApprovable(reason)),
            Decided::Decision { decision, run } => {
                let decided = std::time::Instant::now();
                let mut handled = self
                    .follow(&case, resolved, prepared, decision, run)
                    .await?;
                handled.decided = Some(decided);
                Ok(handled)
            }
        }
    }

    /// A model's word alone never triggers an automatic run unless the
    /// catalog entry opts in: `auto` becomes `approve`.
    fn mode_for(&self, resolved: &Resolved, classification: &Classification) -> Mode {
        let by_model = matches!(classification.by, ClassifiedBy::Model { .. });
        match resolved.entry.mode {
            Mode::Auto if by_model && !resolved.entry.model_may_trigger => Mode::Approve,
            mode => mode,
        }
    }

    async fn duplicate(&self, case: &Case, row: &IncidentRow) -> Result<Handled, StoreError> {
        let reason = match row.resolved_at {
            Some(_) => {
                "a repeated delivery of an incident whose alert has resolved: not decided again"
                    .to_string()
            }
            None if decidable(row) => format!(
                "a repeated delivery within {} of the incident becoming {}: not decided again",
                humantime::format_duration(self.guardrails.redelivery_window),
                row.state.as_str()
            ),
            None => format!(
                "a repeated delivery of an incident that is {}: not decided again",
                row.state.as_str()
            ),
        };
        self.record(
            &case.id,
            "alert.duplicate",
            json!({"state": row.state, "reason": &reason}),
        )
        .await?;
        Ok(case.handled("duplicate", reason, row.state))
    }

    async fn classify(&self, case: &Case) -> Classification {
        let classes = self.catalog.classes();
        self.classifier.classify(&case.alert, &classes).await
    }

    /// Workload counts for the blast-radius budget, from the provider.
    async fn fleet(&self, incident: &str, target: &Workload) -> FleetSize {
        let cx = CallContext::decision(incident, INVENTORY_BUDGET);
        let (namespace, ns_error) = split(
            self.effects
                .count_workloads(&cx, Some(target.namespace()))
                .await,
        );
        let (total, total_error) = split(self.effects.count_workloads(&cx, None).await);
        FleetSize {
            namespace,
            total,
            unknown_because: ns_error.or(total_error),
        }
    }

    /// Runs the guardrails inside the store's writer: it re-reads the incident
    /// and the history, decides, records the decision durably, sets the
    /// incident's state and, for `execute`, claims the target, all in one
    /// commit serialised with every other write.
    async fn decide(
        &self,
        case: &Case,
        resolved: &Resolved,
        mode: Mode,
        now: Millis,
        started: serde_json::Map<String, serde_json::Value>,
        ask: Ask,
    ) -> Result<Decided, StoreError> {
        let target = case.target.clone().expect("decided only with a target");
        let manifest = resolved.plugin.manifest();
        let mut rules = resolved.entry.rules();
        rules.mode = mode;
        let mut note = serde_json::Map::new();
        note.insert("plugin".into(), json!(resolved.entry.plugin.to_string()));
        note.insert("mode".into(), json!(mode));
        note.insert("catalog_mode".into(), json!(resolved.entry.mode));
        let outcome = Arc::new(std::sync::Mutex::new(None));
        let request = DecideRequest {
            incident: case.id.clone(),
            fleet: self.fleet(&case.id, &target).await,
            target,
            plugin: manifest.name.clone(),
            confidence: case.confidence,
            rules,
            config: self.guardrails.clone(),
            windows: self.windows.clone(),
            now,
            touches_workloads: manifest
                .capabilities
                .capabilities()
                .iter()
                .any(|c| *c != Capability::LogRotation),
            owner: owner::this_process().to_string(),
            note,
            started,
            subject: ask.subject,
            approval: ask.approval,
            outcome: outcome.clone(),
        };
        let Carry {
            mut changes,
            records,
        } = case.take_carry();
        changes.push(Change::Decide(Box::new(request)));
        self.store.commit(changes, records).await?;
        let decided = outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        decided.ok_or(StoreError::Corrupt {
            what: "decision the store did not return",
            value: case.id.clone(),
        })
    }

    async fn follow(
        &self,
        case: &Case,
        resolved: &Resolved,
        prepared: act::Prepared,
        decision: Decision,
        run: Option<String>,
    ) -> Result<Handled, StoreError> {
        let now = now_ms();
        match decision.verdict {
            Verdict::Execute => {
                let run = run.expect("execute claims a run");
                self.execute(case, resolved, prepared, run, false).await
            }
            Verdict::Shadow => {
                let run = format!("{}-shadow-{now}", case.id);
                self.execute(case, resolved, prepared, run, true).await
            }
            Verdict::Hold { by, reason } => {
                self.settle(case, IncidentState::Held, &reason).await?;
                let mut handled = case.handled("hold", reason, IncidentState::Held);
                handled.guardrail = Some(by.to_string());
                Ok(handled)
            }
            Verdict::Refuse { by, reason } => {
                self.escalate_refusal(case, &by.to_string(), reason).await
            }
            Verdict::Notify => {
                let reason = format!("the catalog only notifies for {}", case.class);
                self.settle(case, IncidentState::Escalated, &reason).await?;
                self.escalate(case, "notify", &reason, None).await?;
                let mut handled = case.handled("notify", reason, IncidentState::Escalated);
                handled.escalated = true;
                Ok(handled)
            }
            Verdict::AwaitApproval => {
                // The approval request was recorded with the decision.
                let reason = format!(
                    "{} needs a human's approval to run {}",
                    case.class, resolved.entry.plugin
                );
                self.settle(case, IncidentState::AwaitingApproval, &reason)
                    .await?;
                self.escalate(case, "await-approval", &reason, None).await?;
                let mut handled =
                    case.handled("await-approval", reason, IncidentState::AwaitingApproval);
                handled.escalated = true;
                Ok(handled)
            }
        }
    }

    /// Refused before the guardrails (no target, unknown class, no grant):
    /// still a decision on the record, then a human is told.
    async fn refuse(&self, case: &Case, by: &str, reason: String) -> Result<Handled, StoreError> {
        let Carry {
            changes,
            mut records,
        } = case.take_carry();
        records.push(Entry {
            incident: Some(case.id.clone()),
            kind: "decision".into(),
            body: json!({"decision": {"verdict": "refuse", "by": by, "reason": &reason}}),
        });
        self.store.commit(changes, records).await?;
        self.escalate_refusal(case, by, reason).await
    }

    async fn escalate_refusal(
        &self,
        case: &Case,
        by: &str,
        reason: String,
    ) -> Result<Handled, StoreError> {
        self.settle(case, IncidentState::Escalated, &reason).await?;
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
        // The resolution, the incident's closing and its record: one commit.
        let record = Entry {
            incident: Some(id.clone()),
            kind: "alert.resolved".into(),
            body: json!({"alert": &alert}),
        };
        let change = Change::MarkResolved {
            id: id.clone(),
            at: now,
        };
        let known = self.store.commit(vec![change], vec![record]).await?.results[0] > 0;
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
            decided: None,
        })
    }
}

/// How long the blast-radius inventory may take at a decision; past it the
/// count is unknown and the budget refuses workload plugins.
const INVENTORY_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

fn split<T, E: std::fmt::Display>(result: Result<T, E>) -> (Option<T>, Option<String>) {
    match result {
        Ok(value) => (Some(value), None),
        Err(e) => (None, Some(e.to_string())),
    }
}
