//! Acting on a decision: grant, load, run, record, verify, roll back.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::{Case, Handled, Responder, StoreResolution};
use crate::audit::Entry;
use crate::catalog::Resolved;
use crate::incident::Incident;
use crate::policy::{self, Policy};
use crate::provider::{Provider, Shadow};
use crate::sandbox::{DenialRecord, Effect, Outcome, RunRequest};
use crate::signature::PluginArtifact;
use crate::store::{IncidentState, StoreError};
use crate::verify::{self, Verification};

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
    /// Why it never ran (grant or load refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
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
        match (&self.refused, &self.outcome) {
            (Some(reason), _) => reason.clone(),
            (None, Some(outcome)) => format!(
                "the run ended with {}: {}",
                outcome.kind(),
                serde_json::to_string(outcome).expect("serialises")
            ),
            (None, None) => "the run did not happen".into(),
        }
    }
}

impl Responder {
    /// Runs the catalog's plugin for the case and follows up. `run` already
    /// holds the target unless this is a shadow run.
    pub(crate) async fn execute(
        &self,
        case: &Case,
        resolved: &Resolved,
        run: String,
        shadow: bool,
    ) -> Result<Handled, StoreError> {
        let policy = resolved.entry.policy();
        let result = self
            .act(
                case,
                &resolved.plugin,
                &policy,
                &resolved.entry.params,
                &run,
                shadow,
            )
            .await;
        // Whatever happens, the target is released once this run is over.
        let finished = self.follow_up(case, resolved, result, shadow).await;
        if !shadow {
            self.store.end_run(&run).await?;
        }
        finished
    }

    async fn follow_up(
        &self,
        case: &Case,
        resolved: &Resolved,
        result: Result<RunSummary, StoreError>,
        shadow: bool,
    ) -> Result<Handled, StoreError> {
        let mut summary = result?;
        let class = Some(case.class.as_str());
        let decision = if shadow { "shadow" } else { "execute" };
        if !summary.completed() {
            let reason = summary.why_not();
            let state = if shadow {
                IncidentState::Shadowed
            } else {
                IncidentState::Failed
            };
            self.store
                .set_state(&case.id, state, class, super::now_ms())
                .await?;
            if !shadow {
                self.escalate(case, "run-failed", &reason, Some(json!(&summary)))
                    .await?;
            }
            return Ok(self.handled(case, decision, reason, state, summary, !shadow));
        }
        let Some(spec) = &resolved.entry.verify else {
            let state = if shadow {
                IncidentState::Shadowed
            } else {
                IncidentState::Remediated
            };
            self.store
                .set_state(&case.id, state, class, super::now_ms())
                .await?;
            let reason = "the run completed; no verification is configured".to_string();
            return Ok(self.handled(case, decision, reason, state, summary, false));
        };
        let resolution = StoreResolution(self.store.as_ref());
        let prometheus = self.prometheus.as_ref();
        let verification = if shadow || self.simulated {
            verify::judge_once(spec, prometheus, &resolution, &case.id).await
        } else {
            self.record(
                &case.id,
                "verification.started",
                json!({"run": &summary.run, "spec": spec}),
            )
            .await?;
            verify::verify(spec, prometheus, &resolution, &case.id).await
        };
        self.record(
            &case.id,
            "verification",
            json!({"run": &summary.run, "verification": &verification}),
        )
        .await?;
        let passed = verification.passed;
        let reason = verification.reason.clone();
        summary.verification = Some(verification);
        if shadow || self.simulated {
            let state = if shadow {
                IncidentState::Shadowed
            } else {
                IncidentState::Remediated
            };
            self.store
                .set_state(&case.id, state, class, super::now_ms())
                .await?;
            let reason = format!("the run completed; verification {reason}");
            return Ok(self.handled(case, decision, reason, state, summary, false));
        }
        if passed {
            self.store
                .set_state(&case.id, IncidentState::Remediated, class, super::now_ms())
                .await?;
            let reason = format!("the run completed and verification {reason}");
            return Ok(self.handled(
                case,
                decision,
                reason,
                IncidentState::Remediated,
                summary,
                false,
            ));
        }
        if let Some(rollback) = &resolved.rollback {
            let run = format!("{}-rollback", summary.run);
            let rolled = self
                .act(
                    case,
                    rollback,
                    &Policy::as_declared(),
                    &Default::default(),
                    &run,
                    false,
                )
                .await?;
            summary.rollback = Some(Box::new(rolled));
        }
        self.store
            .set_state(&case.id, IncidentState::Failed, class, super::now_ms())
            .await?;
        let reason = format!("verification failed: {reason}");
        self.escalate(case, "verification-failed", &reason, Some(json!(&summary)))
            .await?;
        Ok(self.handled(case, decision, reason, IncidentState::Failed, summary, true))
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

    /// Grants, loads and runs one plugin, recording the grant, the start
    /// (durably, before the run), the end, and every capability call.
    async fn act(
        &self,
        case: &Case,
        artifact: &Arc<PluginArtifact>,
        policy: &Policy,
        params: &std::collections::BTreeMap<String, String>,
        run: &str,
        shadow: bool,
    ) -> Result<RunSummary, StoreError> {
        let target = case.target.clone().expect("acted on only with a target");
        let manifest = artifact.manifest();
        let mode = match (shadow, self.simulated) {
            (true, _) => "shadow",
            (false, true) => "dry-run",
            (false, false) => "live",
        };
        let mut summary = RunSummary {
            run: run.to_string(),
            plugin: format!("{}@{}", manifest.name, manifest.version),
            mode,
            outcome: None,
            refused: None,
            effects: Vec::new(),
            denials: Vec::new(),
            fuel_consumed: 0,
            peak_memory_bytes: 0,
            duration_us: 0,
            verification: None,
            rollback: None,
        };
        let tier = artifact
            .provenance()
            .tier()
            .map(|tier| (tier, self.tiers.caps(tier)));
        let loaded = policy::grant(&manifest.capabilities, tier, policy, &target)
            .map_err(|e| e.to_string())
            .and_then(|grants| {
                let plugin = self
                    .sandbox
                    .load(artifact, &grants)
                    .map_err(|e| e.to_string())?;
                Ok((grants, plugin))
            });
        let (grants, plugin) = match loaded {
            Ok(loaded) => loaded,
            Err(reason) => {
                self.record(
                    &case.id,
                    "run.refused",
                    json!({"run": run, "plugin": &summary.plugin, "reason": &reason}),
                )
                .await?;
                summary.refused = Some(format!("{} was refused: {reason}", summary.plugin));
                return Ok(summary);
            }
        };
        self.record(
            &case.id,
            "run.started",
            json!({
                "run": run,
                "plugin": &summary.plugin,
                "digest": artifact.digest(),
                "provenance": artifact.provenance(),
                "mode": mode,
                "target": target,
                "grants": &grants,
            }),
        )
        .await?;
        let provider: Arc<dyn Provider> = if shadow {
            Arc::new(Shadow::new(self.provider.clone()))
        } else {
            self.provider.clone()
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
                    provider,
                },
            )
            .await;
        let mut entries = vec![Entry {
            incident: Some(case.id.clone()),
            kind: "run.finished".into(),
            body: json!({
                "run": run,
                "plugin": &summary.plugin,
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
        self.store.record_all(entries).await?;
        summary.outcome = Some(report.outcome);
        summary.effects = report.effects;
        summary.denials = report.denials;
        summary.fuel_consumed = report.fuel_consumed;
        summary.peak_memory_bytes = report.peak_memory_bytes;
        summary.duration_us = report.duration_us;
        Ok(summary)
    }
}
