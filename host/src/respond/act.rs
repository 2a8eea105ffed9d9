//! Acting on a decision: grant, load, run, record, verify, roll back.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::witness::witnessed;
use super::{Case, Handled, Responder, StoreResolution};
use crate::audit::Entry;
use crate::catalog::Resolved;
use crate::guardrails::{self, Observed, Verdict, now_ms};
use crate::incident::Incident;
use crate::policy::{self, Grants, Policy};
use crate::sandbox::{DenialRecord, Effect, LoadedPlugin, Outcome, RunRequest};
use crate::signature::PluginArtifact;
use crate::store::{IncidentState, StoreError};
use crate::verify::{self, Verification};

/// A plugin granted and loaded for one incident, before any guardrail runs:
/// a plugin that cannot be granted what it needs is refused without using
/// up attempts, rate limits or the storm budget.
pub(crate) struct Prepared {
    pub(super) artifact: Arc<PluginArtifact>,
    pub(super) grants: Grants,
    pub(super) plugin: LoadedPlugin,
}

/// One run as the loop reports it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's id.
    pub run: String,
    /// `name@version` of the plugin.
    pub plugin: String,
    /// `live`, `dry-run` or `shadow`.
    pub mode: &'static str,
    /// How it ended; absent when it was refused before running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Changes made or simulated.
    pub effects: Vec<Effect>,
    /// Calls the grant refused.
    pub denials: Vec<DenialRecord>,
    /// Fuel used.
    pub fuel_consumed: u64,
    /// Peak linear memory.
    pub peak_memory_bytes: usize,
    /// Wall-clock time, microseconds.
    pub duration_us: u64,
    /// The verification, if one ran or was judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The rollback run, when verification failed and the catalog asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Box<RunSummary>>,
}

impl RunSummary {
    fn completed(&self) -> bool {
        matches!(self.outcome, Some(Outcome::Completed { .. }))
    }

    fn why_not(&self) -> String {
        match &self.outcome {
            Some(outcome) => format!(
                "the run ended with {}: {}",
                outcome.kind(),
                serde_json::to_string(outcome).expect("serialises")
            ),
            None => "the run did not happen".into(),
        }
    }
}

pub(super) fn label(artifact: &PluginArtifact) -> String {
    format!(
        "{}@{}",
        artifact.manifest().name,
        artifact.manifest().version
    )
}

impl Responder {
    /// Grants `artifact` what `policy`, its tier and its manifest allow on the
    /// case's target, and loads it linked with exactly that.
    pub(crate) async fn prepare(
        &self,
        case: &Case,
        artifact: &Arc<PluginArtifact>,
        policy: &Policy,
    ) -> Result<Prepared, String> {
        let target = case.target.as_ref().expect("prepared only with a target");
        let tier = artifact
            .provenance()
            .tier()
            .map(|tier| (tier, self.tiers.caps(tier)));
        let refused = |e: String| format!("{} was refused: {e}", label(artifact));
        let grants = policy::grant(&artifact.manifest().capabilities, tier, policy, target)
            .map_err(|e| refused(e.to_string()))?;
        let plugin = self
            .sandbox
            .load(artifact, &grants)
            .await
            .map_err(|e| refused(e.to_string()))?;
        Ok(Prepared {
            artifact: artifact.clone(),
            grants,
            plugin,
        })
    }

    /// The `run.started` record's body for `prepared` (its run id is added
    /// where the run is claimed).
    pub(crate) fn started_body(
        &self,
        case: &Case,
        prepared: &Prepared,
    ) -> serde_json::Map<String, serde_json::Value> {
        self.started_fields(case, &prepared.artifact, &prepared.grants, false)
    }

    fn started_fields(
        &self,
        case: &Case,
        artifact: &PluginArtifact,
        grants: &Grants,
        shadow: bool,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mode = match (shadow, self.simulated) {
            (true, _) => "shadow",
            (false, true) => "dry-run",
            (false, false) => "live",
        };
        let mut body = serde_json::Map::new();
        body.insert("plugin".into(), json!(label(artifact)));
        body.insert("digest".into(), json!(artifact.digest()));
        body.insert("provenance".into(), json!(artifact.provenance()));
        body.insert("mode".into(), json!(mode));
        body.insert("target".into(), json!(case.target));
        body.insert("grants".into(), json!(grants));
        body
    }

    /// Runs the prepared plugin and follows up. `run` holds the target unless
    /// this is a shadow run. If the store fails midway, the claim is marked
    /// abandoned (not released), so recovery reports the run as interrupted.
    pub(crate) async fn execute(
        &self,
        case: &Case,
        resolved: &Resolved,
        prepared: Prepared,
        run: String,
        shadow: bool,
    ) -> Result<Handled, StoreError> {
        let params = &resolved.entry.params;
        let claim = (!shadow).then_some(run.as_str());
        // An executed run's start was recorded with its claim; a shadow run's is recorded here.
        let result = match self
            .act(case, prepared, params, &run, shadow, !shadow)
            .await
        {
            Ok(Acted { summary, records }) => {
                // The run's records ride with the follow-up's first commit
                // (its final state, or its verification): nothing acts in
                // between, and each effect's intent is already durable.
                case.carry_records(records);
                self.follow_up(case, resolved, summary, claim).await
            }
            Err(e) => Err(e),
        };
        if shadow {
            if let Err(e) = &result {
                // A shadow run holds no claim; close its incident so it is not
                // left `running` (best effort: the store just failed).
                let reason = format!("the shadow run could not be recorded: {e}");
                if let Err(also) = self.settle(case, IncidentState::Failed, &reason).await {
                    tracing::error!("incident {}: {reason}; and then: {also}", case.id);
                }
            }
            return result;
        }
        match result {
            // The claim was released with the final state, in one commit.
            Ok(handled) => Ok(handled),
            Err(e) => {
                if let Err(also) = self.store.abandon_run(&run).await {
                    tracing::error!(
                        "run {run}: the store failed ({e}) and the claim could not be marked abandoned ({also}); the next start recovers it"
                    );
                }
                Err(e)
            }
        }
    }

    async fn follow_up(
        &self,
        case: &Case,
        resolved: &Resolved,
        mut summary: RunSummary,
        claim: Option<&str>,
    ) -> Result<Handled, StoreError> {
        let shadow = claim.is_none();
        let decision = if shadow { "shadow" } else { "execute" };
        let done = if shadow {
            IncidentState::Shadowed
        } else {
            IncidentState::Remediated
        };
        if !summary.completed() {
            let reason = summary.why_not();
            if shadow {
                self.settle_releasing(case, done, &reason, claim).await?;
                return Ok(self.handled(case, decision, reason, done, summary, false));
            }
            self.settle_releasing(case, IncidentState::Failed, &reason, claim)
                .await?;
            self.escalate(case, "run-failed", &reason, Some(json!(&summary)))
                .await?;
            return Ok(self.handled(case, decision, reason, IncidentState::Failed, summary, true));
        }
        let Some(spec) = &resolved.entry.verify else {
            let reason = "the run completed; no verification is configured".to_string();
            self.settle_releasing(case, done, &reason, claim).await?;
            return Ok(self.handled(case, decision, reason, done, summary, false));
        };
        let resolution = StoreResolution(self.store.as_ref());
        let prometheus = self.prometheus.as_ref();
        let verification = if shadow || self.simulated {
            verify::judge_once(spec, prometheus, &resolution, &case.id).await
        } else {
            self.record_case(
                case,
                "verification.started",
                json!({"run": &summary.run, "spec": spec}),
            )
            .await?;
            verify::verify(spec, prometheus, &resolution, &case.id).await
        };
        self.record_case(
            case,
            "verification",
            json!({"run": &summary.run, "verification": &verification}),
        )
        .await?;
        let (passed, conclusive) = (verification.passed, verification.conclusive);
        let outcome = verification.reason.clone();
        summary.verification = Some(verification);
        if shadow || self.simulated || passed {
            let reason = format!("the run completed; verification {outcome}");
            self.settle_releasing(case, done, &reason, claim).await?;
            return Ok(self.handled(case, decision, reason, done, summary, false));
        }
        let escalation = if conclusive {
            if let Some(rollback) = &resolved.rollback {
                summary.rollback = self.roll_back(case, rollback, &summary.run).await?;
            }
            "verification-failed"
        } else {
            // Nothing was judged, so nothing says the run did harm: no rollback.
            "verification-inconclusive"
        };
        let reason = format!("{escalation}: {outcome}");
        self.settle_releasing(case, IncidentState::Failed, &reason, claim)
            .await?;
        self.escalate(case, escalation, &reason, Some(json!(&summary)))
            .await?;
        Ok(self.handled(case, decision, reason, IncidentState::Failed, summary, true))
    }

    /// Runs the catalog's rollback plugin on the same target, under the run's
    /// claim, once the guardrails that still apply let it
    /// ([`guardrails::ROLLBACK_ORDER`]: kill switch, window, storm freeze).
    /// The rollback counts in the run history like any run.
    async fn roll_back(
        &self,
        case: &Case,
        artifact: &Arc<PluginArtifact>,
        run: &str,
    ) -> Result<Option<Box<RunSummary>>, StoreError> {
        let target = case
            .target
            .as_ref()
            .expect("rolled back only with a target");
        let now = now_ms();
        let controls = self.store.controls().await?;
        let stored = controls
            .windows
            .into_iter()
            .filter_map(|spec| crate::guardrails::Window::try_from(spec).ok());
        let seen = Observed {
            kill_switches: controls.kill_switches,
            windows: self.windows.iter().cloned().chain(stored).collect(),
            storm_frozen_until: controls.storm_frozen_until,
            ..Observed::default()
        };
        let decision = guardrails::evaluate_rollback(&self.guardrails, target, now, &seen);
        let refusal = match &decision.verdict {
            Verdict::Execute => None,
            Verdict::Hold { reason, .. } | Verdict::Refuse { reason, .. } => Some(reason.clone()),
            other => {
                unreachable!("a rollback is decided as execute, hold or refuse, not {other:?}")
            }
        };
        self.record(
            &case.id,
            "rollback.decision",
            json!({
                "run": run,
                "plugin": label(artifact),
                "allowed": refusal.is_none(),
                "reason": &refusal,
                "checks": &decision.checks,
            }),
        )
        .await?;
        if refusal.is_some() {
            return Ok(None);
        }
        let rollback_run = format!("{run}-rollback");
        let prepared = match self.prepare(case, artifact, &Policy::as_declared()).await {
            Ok(prepared) => prepared,
            Err(reason) => {
                self.record(
                    &case.id,
                    "run.refused",
                    json!({"run": &rollback_run, "reason": &reason}),
                )
                .await?;
                return Ok(None);
            }
        };
        self.store
            .count_run(target, &artifact.manifest().name, now)
            .await?;
        let Acted { summary, records } = self
            .act(
                case,
                prepared,
                &BTreeMap::new(),
                &rollback_run,
                false,
                false,
            )
            .await?;
        self.store.record_all(records).await?;
        Ok(Some(Box::new(summary)))
    }

    fn handled(
        &self,
        case: &Case,
        decision: &str,
        reason: String,
        state: IncidentState,
        summary: RunSummary,
        escalated: bool,
    ) -> Handled {
        let mut handled = case.handled(decision, reason, state);
        handled.run = Some(summary);
        handled.escalated = escalated;
        handled
    }

    /// Runs one prepared plugin, recording the start (durably, before the
    /// run, with its grants), the end, and every capability call.
    async fn act(
        &self,
        case: &Case,
        prepared: Prepared,
        params: &BTreeMap<String, String>,
        run: &str,
        shadow: bool,
        start_recorded: bool,
    ) -> Result<Acted, StoreError> {
        let Prepared {
            artifact,
            grants,
            plugin,
        } = prepared;
        let target = case.target.clone().expect("acted on only with a target");
        let mode = match (shadow, self.simulated) {
            (true, _) => "shadow",
            (false, true) => "dry-run",
            (false, false) => "live",
        };
        let name = label(&artifact);
        if !start_recorded {
            let mut body = self.started_fields(case, &artifact, &grants, shadow);
            body.insert("run".into(), json!(run));
            self.record(&case.id, "run.started", body.into()).await?;
        }
        let effects = if shadow {
            // Nothing changes, so there is nothing to write ahead.
            self.effects.shadowed()
        } else {
            witnessed(&self.effects, &self.store)
        };
        let incident = Incident {
            id: case.id.clone(),
            class: case.class.clone(),
            confidence: case.confidence,
            alert: case.alert.clone(),
            target,
            params: params.clone(),
            dry_run: shadow || self.simulated,
        };
        let report = self
            .sandbox
            .run(
                &plugin,
                RunRequest {
                    incident,
                    grants,
                    effects,
                    run: run.to_string(),
                },
            )
            .await;
        let mut entries = vec![Entry {
            incident: Some(case.id.clone()),
            kind: "run.finished".into(),
            body: json!({
                "run": run,
                "plugin": &name,
                "outcome": &report.outcome,
                "fuel_consumed": report.fuel_consumed,
                "peak_memory_bytes": report.peak_memory_bytes,
                "duration_us": report.duration_us,
                "limits": &report.limits,
                "actions_attempted": report.actions_attempted,
                "effects": &report.effects,
                "denials": &report.denials,
                "calls_dropped": report.calls_dropped,
                "log": &report.log,
                "log_dropped_bytes": report.log_dropped_bytes,
                "output": &report.output,
            }),
        }];
        entries.extend(report.calls.iter().enumerate().map(|(index, call)| Entry {
            incident: Some(case.id.clone()),
            kind: "call".into(),
            body: json!({"run": run, "index": index, "call": call}),
        }));
        Ok(Acted {
            records: entries,
            summary: RunSummary {
                run: run.to_string(),
                plugin: name,
                mode,
                outcome: Some(report.outcome),
                effects: report.effects,
                denials: report.denials,
                fuel_consumed: report.fuel_consumed,
                peak_memory_bytes: report.peak_memory_bytes,
                duration_us: report.duration_us,
                verification: None,
                rollback: None,
            },
        })
    }
}

/// A finished run: its summary, and its `run.finished` and `call` records,
/// for the caller to commit (see [`Responder::act`]).
struct Acted {
    summary: RunSummary,
    records: Vec<Entry>,
}
