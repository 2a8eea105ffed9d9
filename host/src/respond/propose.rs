//! AI proposals through the loop: the same guardrails, sandbox and audit as
//! the catalog's plugins, under the `ai-agent` tier.
//!
//! A proposal is *admitted* in one commit: its nonce is spent (refused if
//! spent before, so it is accepted once even across processes), its
//! `proposal.received` record written, and the incident opened or
//! classified. Then the decision is taken inside the store's writer like any
//! other, and the plan runner (or the agent's component) runs with grants of
//! its manifest ∩ the `ai-agent` tier ∩ the class's catalog entry ∩ the
//! incident's target.
//!
//! Mode: the catalog entry's, except that `auto` becomes `approve` unless the
//! entry sets `model-may-trigger` (an agent's word, like a model's, does not
//! start a run alone) or when the capped confidence is below
//! `auto-confidence`. Below the entry's confidence floor the floor guardrail
//! refuses, as for any classification. Actions the grant will deny do not
//! change the mode: a human's approval lifts only the mode, never the grant,
//! so they are denied at the boundary, on the record, either way.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::json;

use super::{Ask, Case, Handled, RespondError, Responder, decidable};
use crate::alert::Alert;
use crate::audit::Entry;
use crate::catalog::{CatalogEntry, Resolved};
use crate::guardrails::{Mode, now_ms};
use crate::incident::{incident_id, target_of};
use crate::proposal::{self, Headers, ProposalError, Verified};
use crate::sandbox::Withheld;
use crate::store::{Change, StoreError};

/// Why a proposal did not reach a decision. [`ProposeError::status`] is the
/// HTTP status an API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// The envelope or body was refused, or the proposal was replayed.
    #[error(transparent)]
    Rejected(#[from] ProposalError),
    /// The host has no trust store for agents' keys (503).
    #[error("proposals are disabled: this host has no trust store for ai-agent keys")]
    Disabled,
    /// The named incident does not exist (404).
    #[error("incident {0} does not exist")]
    UnknownIncident(String),
    /// The incident is not open to a decision: running, with a human, resolved (409).
    #[error("{0}")]
    NotDecidable(String),
    /// The proposal cannot apply to the incident: no target, a class outside
    /// the catalog, a different class than the incident's (422).
    #[error("{0}")]
    Refused(String),
    /// The loop failed (the store), or an approval is no longer pending.
    #[error(transparent)]
    Respond(#[from] RespondError),
}

impl From<StoreError> for ProposeError {
    fn from(e: StoreError) -> Self {
        ProposeError::Respond(RespondError::Store(e))
    }
}

impl ProposeError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ProposeError::Rejected(e) => e.status(),
            ProposeError::Disabled => 503,
            ProposeError::UnknownIncident(_) => 404,
            ProposeError::NotDecidable(_)
            | ProposeError::Respond(RespondError::NotApprovable(_)) => 409,
            ProposeError::Refused(_) => 422,
            ProposeError::Respond(_) => 500,
        }
    }
}

/// What an agent proposed, before it is admitted.
pub(super) struct Intake {
    /// The incident's id.
    pub incident: String,
    /// The alert to open the incident from, when the proposal carries one.
    pub alert: Option<Alert>,
    /// The class the agent claims; `None`: the incident's own.
    pub class: Option<String>,
    /// The agent's confidence; `None`: the incident's classification's.
    pub confidence: Option<f32>,
    /// The `proposal.received` record's body.
    pub received: serde_json::Map<String, serde_json::Value>,
    /// The replay guard: spent in the admitting commit.
    pub spend: Change,
}

/// An admitted proposal.
pub(super) struct Accepted<'a> {
    pub case: Case,
    pub resolved: &'a Resolved,
    pub mode: Mode,
}

impl Responder {
    /// Verifies a plan proposal's envelope (against this host's trust store
    /// and freshness window) and proposes it: what `POST /v1/proposals` calls
    /// with the exact body bytes and the four header values.
    pub async fn propose_signed(
        &self,
        body: &[u8],
        headers: &Headers<'_>,
    ) -> Result<Handled, ProposeError> {
        let trust = self.trust.as_ref().ok_or(ProposeError::Disabled)?;
        let verified = proposal::verify(
            body,
            headers,
            trust,
            self.proposals.freshness,
            SystemTime::now(),
        )?;
        self.propose(verified).await
    }

    /// Runs a verified plan proposal through the loop, once: its nonce is
    /// spent with its `proposal.received` record, or it is refused as replayed.
    pub async fn propose(&self, proposal: Verified) -> Result<Handled, ProposeError> {
        if self.trust.is_none() {
            return Err(ProposeError::Disabled);
        }
        let plan = &proposal.plan;
        let incident = match (&plan.incident, &plan.alert) {
            (Some(id), _) => id.clone(),
            (None, Some(alert)) => incident_id(alert),
            (None, None) => unreachable!("a verified plan names an incident or an alert"),
        };
        let mut received = serde_json::Map::new();
        received.insert("form".into(), json!("plan"));
        received.insert("key".into(), json!(proposal.key));
        received.insert("signer".into(), json!(proposal.signer));
        received.insert("nonce".into(), json!(proposal.nonce));
        received.insert("timestamp".into(), json!(proposal.timestamp));
        received.insert("body_sha256".into(), json!(proposal.body_sha256));
        received.insert("class".into(), json!(plan.class));
        received.insert("claimed_confidence".into(), json!(plan.confidence));
        received.insert("rationale".into(), json!(plan.rationale));
        received.insert("actions".into(), json!(plan.actions));
        let intake = Intake {
            incident,
            alert: plan.alert.clone(),
            class: Some(plan.class.clone()),
            confidence: Some(plan.confidence),
            received,
            spend: Change::SpendNonce {
                key: proposal.key.to_string(),
                nonce: proposal.nonce.clone(),
                at: now_ms(),
                expires: Some(proposal.expires),
            },
        };
        let Accepted {
            case,
            resolved,
            mode,
        } = self.accept_proposal(intake).await?;
        let subject = json!({
            "kind": "plan",
            "class": &case.class,
            "confidence": case.confidence,
            "key": &proposal.key,
            "nonce": &proposal.nonce,
            "rationale": &plan.rationale,
            "actions": &plan.actions,
        });
        let params = BTreeMap::from([("plan".to_string(), plan.actions_json())]);
        let runner = self.plan_runner.clone();
        let ask = Ask {
            subject,
            approval: None,
        };
        self.run_proposed(
            &case,
            resolved,
            runner,
            params,
            Withheld::DenyEachCall,
            mode,
            ask,
        )
        .await
    }

    /// Checks the proposal against the incident and the catalog, and admits
    /// it in one commit, or records why not. Either way its nonce is spent.
    pub(super) async fn accept_proposal(
        &self,
        intake: Intake,
    ) -> Result<Accepted<'_>, ProposeError> {
        let Intake {
            incident: id,
            alert,
            class,
            confidence,
            mut received,
            spend,
        } = intake;
        let row = self.store.incident(&id).await?;
        let carried = alert.is_some();
        let stored = match (&alert, &row) {
            (None, Some(_)) => self.store.alert_of(&id).await?,
            _ => None,
        };
        let checked = match (alert.clone().or(stored), &row) {
            (None, _) => Err(ProposeError::UnknownIncident(id.clone())),
            (Some(_), Some(row)) if !decidable(row) => Err(ProposeError::NotDecidable(format!(
                "incident {id} is {}{}: not open to a decision",
                row.state.as_str(),
                if row.resolved_at.is_some() {
                    " and its alert resolved"
                } else {
                    ""
                }
            ))),
            (Some(alert), row) => {
                let known = row
                    .as_ref()
                    .and_then(|r| r.class.clone())
                    .filter(|c| c != "unknown");
                self.check(&id, alert, class.as_deref(), known.as_deref())
            }
        };
        let (alert, target, class, resolved) = match checked {
            Ok(ok) => ok,
            Err(refusal) => {
                let refused = Entry {
                    incident: Some(id.clone()),
                    kind: "proposal.refused".into(),
                    body: json!({"reason": refusal.to_string()}),
                };
                let received = Entry {
                    incident: Some(id.clone()),
                    kind: "proposal.received".into(),
                    body: received.into(),
                };
                self.admit_commit(vec![spend], vec![received, refused])
                    .await?;
                return Err(refusal);
            }
        };
        let claimed = match confidence {
            Some(c) => c,
            None => self.classified_confidence(&id).await?,
        };
        let confidence = claimed.min(self.classifier.max_confidence());
        let (mode, why) = self.proposal_mode(&resolved.entry, confidence);
        received.insert("confidence".into(), json!(confidence));
        received.insert("mode".into(), json!(mode));
        received.insert("mode_reason".into(), json!(why));
        let mut changes = vec![spend];
        let mut records = vec![Entry {
            incident: Some(id.clone()),
            kind: "proposal.received".into(),
            body: received.into(),
        }];
        let target_text = target.to_string();
        if row.is_none() || carried {
            changes.push(Change::OpenIncident {
                id: id.clone(),
                alert: Box::new(alert.clone()),
                target: target_text.clone(),
                at: now_ms(),
            });
            records.push(Entry {
                incident: Some(id.clone()),
                kind: "alert.received".into(),
                body: json!({"alert": &alert}),
            });
        }
        changes.push(Change::SetClass {
            id: id.clone(),
            class: class.clone(),
        });
        records.push(Entry {
            incident: Some(id.clone()),
            kind: "classification".into(),
            body: json!({"class": &class, "confidence": confidence, "by": "proposal",
                         "reason": "an ai-agent proposal named the class"}),
        });
        self.admit_commit(changes, records).await?;
        let case = Case {
            id,
            alert,
            target: Some(target),
            target_text,
            class,
            confidence,
            carry: Default::default(),
        };
        Ok(Accepted {
            case,
            resolved,
            mode,
        })
    }

    /// Commits an admission; a refused commit means the nonce was spent before.
    async fn admit_commit(
        &self,
        changes: Vec<Change>,
        records: Vec<Entry>,
    ) -> Result<(), ProposeError> {
        match self.store.commit(changes, records).await {
            Ok(_) => Ok(()),
            Err(StoreError::Refused(why)) => Err(ProposalError::Replayed(why).into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The incident's target, class and catalog entry, or why the proposal
    /// cannot apply.
    fn check(
        &self,
        id: &str,
        alert: Alert,
        claimed: Option<&str>,
        known: Option<&str>,
    ) -> Result<(Alert, crate::workload::Workload, String, &Resolved), ProposeError> {
        let target = target_of(&alert)
            .map_err(|e| ProposeError::Refused(format!("incident {id} has no target: {e}")))?;
        let class = match (claimed, known) {
            (Some(claimed), Some(known)) if claimed != known => {
                return Err(ProposeError::Refused(format!(
                    "incident {id} is classified {known}; a proposal cannot reclassify it as {claimed}"
                )));
            }
            (Some(class), _) | (None, Some(class)) => class.to_string(),
            (None, None) => {
                return Err(ProposeError::Refused(format!(
                    "incident {id} has no class from the catalog to run a proposal under"
                )));
            }
        };
        let resolved = self.catalog.get(&class).ok_or_else(|| {
            ProposeError::Refused(format!(
                "class {class} is not in the catalog (classes: {})",
                self.catalog.classes().join(", ")
            ))
        })?;
        Ok((alert, target, class, resolved))
    }

    /// The latest classification's confidence on the record, or 0.
    async fn classified_confidence(&self, id: &str) -> Result<f32, StoreError> {
        let records = self.store.audit().incident(id).await?;
        Ok(records
            .iter()
            .rev()
            .find(|r| r.kind == "classification")
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
            .and_then(|body| body["confidence"].as_f64())
            .unwrap_or(0.0) as f32)
    }

    /// The mode a proposal runs in, and why (see the module's comment).
    fn proposal_mode(&self, entry: &CatalogEntry, confidence: f32) -> (Mode, String) {
        match entry.mode {
            Mode::Auto if !entry.model_may_trigger => (
                Mode::Approve,
                "the catalog entry does not set model-may-trigger: an agent's proposal waits for a human".into(),
            ),
            Mode::Auto if confidence < self.proposals.auto_confidence => (
                Mode::Approve,
                format!(
                    "confidence {confidence} is below {}: a human decides",
                    self.proposals.auto_confidence
                ),
            ),
            mode => (mode, "the catalog entry's mode".into()),
        }
    }
}
