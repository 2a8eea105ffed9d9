//! Recovery: what a previous process (or this one, before a crash) left
//! unfinished. Run at start and periodically while serving.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use super::{Admission, Case, Handled, RespondError, Responder};
use crate::alert::Alert;
use crate::audit::Entry;
use crate::guardrails::{Millis, now_ms};
use crate::store::{Change, IncidentQuery, IncidentState, StoreError, owner};

/// At most this many undecided incidents (or stale shadow runs) are taken up per pass.
const UNDECIDED_PER_PASS: u32 = 1000;

/// Far longer than any shadow run takes: the run's timeout (at most the
/// ceiling's 10 s by default) plus one verification query.
const SHADOW_RUN_LIMIT: Duration = Duration::from_secs(15 * 60);

impl Responder {
    /// Finds runs whose process is gone (it crashed, was killed, or gave the
    /// run up), marks each interrupted, releases its target and escalates it.
    /// Interrupted runs are never retried automatically: their effects are
    /// unknown. Runs held by live processes on the same store are left alone.
    pub async fn recover(&self) -> Result<Vec<Handled>, RespondError> {
        let mut recovered = Vec::new();
        for run in self.store.active_runs().await? {
            if owner::is_alive(&run.owner) {
                continue;
            }
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
            let case = Case {
                id: run.incident.clone(),
                alert: alert.unwrap_or_else(placeholder_alert),
                target: Some(run.target.clone()),
                target_text: run.target.to_string(),
                class: row
                    .and_then(|r| r.class)
                    .unwrap_or_else(|| "unknown".into()),
                confidence: 0.0,
                carry: Default::default(),
            };
            self.settle_releasing(&case, IncidentState::Interrupted, &reason, Some(&run.run))
                .await?;
            self.escalate(&case, "interrupted", &reason, None).await?;
            let mut handled = case.handled("interrupted", reason, IncidentState::Interrupted);
            handled.escalated = true;
            recovered.push(handled);
        }
        recovered.extend(self.recover_shadow_runs().await?);
        Ok(recovered)
    }

    /// Shadow runs hold no claim (they change nothing, so they must not block
    /// real runs on their target), so a process that stops during one leaves
    /// its incident `running` with no claim to find. Such an incident left
    /// alone far longer than any shadow run takes is settled as `failed`, on
    /// the record, and decided again at its next delivery. Nobody is paged:
    /// nothing was changed.
    async fn recover_shadow_runs(&self) -> Result<Vec<Handled>, RespondError> {
        let claimed: HashSet<String> = self
            .store
            .active_runs()
            .await?
            .into_iter()
            .map(|run| run.incident)
            .collect();
        let now = now_ms();
        let query = IncidentQuery {
            state: Some(IncidentState::Running),
            updated_before: Some(now - SHADOW_RUN_LIMIT.as_millis() as i64),
            after_id: None,
            unresolved: false,
            limit: UNDECIDED_PER_PASS,
        };
        let mut recovered = Vec::new();
        for row in self.store.incidents(&query).await? {
            if claimed.contains(&row.id) {
                continue;
            }
            let reason = format!(
                "a shadow run that never finished (the host stopped during it, {} ago at the latest); shadow runs change nothing, so the incident will be decided again at its next delivery",
                humantime::format_duration(SHADOW_RUN_LIMIT)
            );
            let change = Change::SetState {
                id: row.id.clone(),
                state: IncidentState::Failed,
                class: None,
                at: now,
            };
            let records = vec![
                Entry {
                    incident: Some(row.id.clone()),
                    kind: "run.interrupted".into(),
                    body: json!({"shadow": true, "reason": &reason}),
                },
                Entry {
                    incident: Some(row.id.clone()),
                    kind: "incident.state".into(),
                    body: json!({"state": IncidentState::Failed, "reason": &reason}),
                },
            ];
            self.store.commit(vec![change], records).await?;
            recovered.push(Handled {
                incident: row.id,
                target: row.target,
                class: row.class.unwrap_or_else(|| "unknown".into()),
                confidence: 0.0,
                decision: "interrupted".into(),
                guardrail: None,
                reason,
                state: IncidentState::Failed,
                run: None,
                escalated: false,
                decided: None,
            });
        }
        Ok(recovered)
    }

    /// Alerts admitted but never decided on (the process stopped between
    /// admitting and deciding), untouched since `before`, as admissions to
    /// process again. Deciding is idempotent (a second decision on one
    /// incident is a duplicate), so taking one up twice is safe.
    pub async fn undecided(&self, before: Millis) -> Result<Vec<Admission>, RespondError> {
        let query = IncidentQuery {
            state: Some(IncidentState::Open),
            updated_before: Some(before),
            after_id: None,
            unresolved: true,
            limit: UNDECIDED_PER_PASS,
        };
        let mut admissions = Vec::new();
        for row in self.store.incidents(&query).await? {
            let alert = self
                .store
                .alert_of(&row.id)
                .await?
                .ok_or(StoreError::Corrupt {
                    what: "incident without its alert",
                    value: row.id.clone(),
                })?;
            admissions.push(Admission {
                id: row.id,
                alert,
                at: row.updated_at,
                first: false,
            });
        }
        Ok(admissions)
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
