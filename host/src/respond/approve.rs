//! Approvals: a human approves or denies what a decision put on hold for them.
//!
//! An approval runs at most once. Approving is not a separate write followed
//! by a run: it is carried by the decision it unlocks, so turning the pending
//! approval into `approved`, re-checking the guardrails (kill switches,
//! windows, one-at-a-time, budgets, the storm breaker: a human's yes lifts
//! only the `approve` mode, nothing else), recording the decision and claiming
//! the target are one transaction. Two operators approving at once, or one
//! approving twice, get one run; the other request is told the approval is
//! no longer pending. Denying is one commit too: the approval, the incident
//! (now `escalated`: a human has it) and the record.

use serde_json::json;

use super::{Ask, Case, Handled, RespondError, Responder};
use crate::audit::Entry;
use crate::guardrails::{Mode, now_ms};
use crate::incident::target_of;
use crate::store::{Approval, Approver, Change, Decided, StoreError};

impl Responder {
    /// Approves a pending approval and runs what it held, once.
    pub async fn approve(&self, id: &str, by: &str) -> Result<Handled, RespondError> {
        let approval = self.pending(id).await?;
        match approval.subject.get("kind").and_then(|k| k.as_str()) {
            Some("catalog") => self.approve_catalog(approval, by).await,
            Some("plan") => self.approve_plan(approval, by).await,
            Some("component") => self.approve_component(approval, by).await,
            other => Err(RespondError::Unrunnable(format!(
                "approval {id} holds an unknown kind of subject {other:?}"
            ))),
        }
    }

    /// Denies a pending approval: nothing runs, the incident stays with a human.
    pub async fn deny(&self, id: &str, by: &str, reason: &str) -> Result<Approval, RespondError> {
        let approval = self.pending(id).await?;
        let change = Change::DenyApproval {
            id: id.to_string(),
            by: by.to_string(),
            reason: reason.to_string(),
            at: now_ms(),
        };
        let record = Entry {
            incident: Some(approval.incident.clone()),
            kind: "approval.denied".into(),
            body: json!({"approval": id, "by": by, "reason": reason}),
        };
        match self.store.commit(vec![change], vec![record]).await {
            Ok(_) => {}
            // Another request decided it between our read and our write.
            Err(StoreError::Refused(reason)) => return Err(RespondError::NotApprovable(reason)),
            Err(e) => return Err(e.into()),
        }
        self.store
            .approval(id)
            .await?
            .ok_or_else(|| RespondError::NotApprovable(format!("approval {id} does not exist")))
    }

    /// The approval, if it exists and is still pending.
    async fn pending(&self, id: &str) -> Result<Approval, RespondError> {
        let approval =
            self.store.approval(id).await?.ok_or_else(|| {
                RespondError::NotApprovable(format!("approval {id} does not exist"))
            })?;
        if approval.state != "pending" {
            return Err(RespondError::NotApprovable(format!(
                "approval {id} is already {}",
                approval.state
            )));
        }
        Ok(approval)
    }

    /// Runs the catalog's plugin for the incident's class, as approved.
    async fn approve_catalog(&self, approval: Approval, by: &str) -> Result<Handled, RespondError> {
        let case = self.case_of(&approval).await?;
        if case.target.is_none() {
            return Err(RespondError::Unrunnable(format!(
                "approval {}: its incident has no target",
                approval.id
            )));
        }
        let Some(resolved) = self.catalog.get(&case.class) else {
            return Err(RespondError::Unrunnable(format!(
                "approval {}: class {} is no longer in the catalog",
                approval.id, case.class
            )));
        };
        let prepared = self
            .prepare(&case, &resolved.plugin, &resolved.entry.policy())
            .await
            .map_err(|reason| {
                RespondError::Unrunnable(format!("approval {}: {reason}", approval.id))
            })?;
        let started = self.started_body(&case, &prepared);
        let ask = Ask {
            subject: approval.subject.clone(),
            approval: Some(Approver {
                id: approval.id.clone(),
                by: by.to_string(),
            }),
        };
        // A human's approval stands in for the `approve` mode only.
        match self
            .decide(&case, resolved, Mode::Auto, now_ms(), started, ask)
            .await?
        {
            Decided::Decision { decision, run } => Ok(self
                .follow(&case, resolved, prepared, decision, run)
                .await?),
            Decided::NotApprovable(reason) => Err(RespondError::NotApprovable(reason)),
            Decided::Duplicate(state) => Err(RespondError::NotApprovable(format!(
                "incident {} is {}",
                case.id,
                state.as_str()
            ))),
        }
    }

    /// The incident an approval is about, as the loop knows it.
    pub(crate) async fn case_of(&self, approval: &Approval) -> Result<Case, RespondError> {
        let id = &approval.incident;
        let missing = || StoreError::Corrupt {
            what: "incident of an approval",
            value: id.clone(),
        };
        let row = self.store.incident(id).await?.ok_or_else(missing)?;
        let alert = self.store.alert_of(id).await?.ok_or_else(missing)?;
        let target = target_of(&alert).ok();
        let confidence = approval
            .subject
            .get("confidence")
            .and_then(|c| c.as_f64())
            .unwrap_or(0.0) as f32;
        Ok(Case {
            id: id.clone(),
            target_text: target.as_ref().map(ToString::to_string).unwrap_or_default(),
            target,
            alert,
            class: row.class.unwrap_or_else(|| "unknown".into()),
            confidence,
            carry: Default::default(),
        })
    }
}
