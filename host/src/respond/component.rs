//! Component proposals: an agent's own signed plugin, run under its tier,
//! and approving what a proposal put on hold for a human.
//!
//! The signed file is verified against the trust store before anything is
//! compiled; its signer must be an `ai-agent` key. The same component runs
//! at most once per incident: `(incident, digest)` is spent like a nonce,
//! for good, with the `proposal.received` record. When it waits for a human,
//! the approval keeps the signed bytes (bounded), so what runs on approval
//! is exactly what was proposed, verified again against the trust store of
//! that moment.

use std::collections::BTreeMap;

use serde_json::json;

use super::propose::{Accepted, Intake, ProposeError};
use super::{Ask, Handled, RespondError, Responder};
use crate::guardrails::{Mode, now_ms};
use crate::policy::Tier;
use crate::proposal::{Action, ProposalError, check_actions};
use crate::sandbox::Withheld;
use crate::signature::{self, PluginArtifact, Provenance, VerifyError};
use crate::store::{Approval, Approver, Change};

/// The largest signed component a proposal may carry.
pub const MAX_COMPONENT_BYTES: usize = 2 * 1024 * 1024;

fn rejected(e: VerifyError) -> ProposeError {
    ProposeError::Rejected(ProposalError::Component(e))
}

/// An `ai-agent` signer's artifact, or why not.
fn agent_signed(
    bytes: &[u8],
    trust: &signature::TrustStore,
) -> Result<PluginArtifact, ProposeError> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(ProposalError::Malformed(format!(
            "the component is {} bytes; at most {MAX_COMPONENT_BYTES} are accepted",
            bytes.len()
        ))
        .into());
    }
    let artifact = signature::verify(bytes, trust).map_err(rejected)?;
    match artifact.provenance() {
        Provenance::Signed {
            tier: Tier::AiAgent,
            ..
        } => Ok(artifact),
        Provenance::Signed { key_id, tier, .. } => Err(ProposalError::WrongTier {
            key: key_id.clone(),
            tier: *tier,
        }
        .into()),
        _ => unreachable!("verify only yields signed artifacts"),
    }
}

impl Responder {
    /// Runs an agent's signed component for `incident`, once: what
    /// `POST /v1/proposals/component?incident=ID` calls with the file's bytes.
    pub async fn propose_component(
        &self,
        incident: &str,
        signed: &[u8],
    ) -> Result<Handled, ProposeError> {
        let trust = self.trust.as_ref().ok_or(ProposeError::Disabled)?;
        // Verified before anything is compiled; compiled only by the sandbox, later.
        let artifact = std::sync::Arc::new(agent_signed(signed, trust)?);
        let Provenance::Signed { key_id, signer, .. } = artifact.provenance().clone() else {
            unreachable!("checked above")
        };
        let digest = artifact.digest().to_string();
        let manifest = artifact.manifest();
        let mut received = serde_json::Map::new();
        received.insert("form".into(), json!("component"));
        received.insert("key".into(), json!(key_id));
        received.insert("signer".into(), json!(signer));
        received.insert("digest".into(), json!(digest));
        received.insert(
            "plugin".into(),
            json!(format!("{}@{}", manifest.name, manifest.version)),
        );
        received.insert("declares".into(), json!(manifest.capabilities));
        let intake = Intake {
            incident: incident.to_string(),
            alert: None,
            class: None,
            confidence: None,
            received,
            spend: Change::SpendNonce {
                key: key_id.to_string(),
                nonce: format!("component:{incident}:{digest}"),
                at: now_ms(),
                expires: None,
            },
        };
        let Accepted {
            case,
            resolved,
            mode,
        } = self.accept_proposal(intake).await?;
        let mut subject = json!({
            "kind": "component",
            "class": &case.class,
            "confidence": case.confidence,
            "key": key_id,
            "digest": digest,
        });
        if mode == Mode::Approve {
            subject["component"] = json!(hex::encode(signed));
        }
        let ask = Ask {
            subject,
            approval: None,
        };
        let params = resolved.entry.params.clone();
        self.run_proposed(
            &case,
            resolved,
            artifact,
            params,
            Withheld::Refuse,
            mode,
            ask,
        )
        .await
    }

    /// Runs an approved plan, once (the approval is spent in its decision).
    pub(super) async fn approve_plan(
        &self,
        approval: Approval,
        by: &str,
    ) -> Result<Handled, RespondError> {
        let (case, resolved) = self.approved_case(&approval).await?;
        let unrunnable =
            |why: String| RespondError::Unrunnable(format!("approval {}: {why}", approval.id));
        let actions: Vec<Action> = serde_json::from_value(approval.subject["actions"].clone())
            .map_err(|e| unrunnable(format!("its plan is unreadable: {e}")))?;
        check_actions(&actions).map_err(unrunnable)?;
        let plan = serde_json::to_string(&actions).expect("actions serialise");
        let params = BTreeMap::from([("plan".to_string(), plan)]);
        let ask = approved(&approval, by);
        self.run_proposed(
            &case,
            resolved,
            self.plan_runner.clone(),
            params,
            Withheld::DenyEachCall,
            Mode::Auto,
            ask,
        )
        .await
        .map_err(into_respond)
    }

    /// Runs an approved component, once, after verifying it again.
    pub(super) async fn approve_component(
        &self,
        approval: Approval,
        by: &str,
    ) -> Result<Handled, RespondError> {
        let (case, resolved) = self.approved_case(&approval).await?;
        let unrunnable =
            |why: String| RespondError::Unrunnable(format!("approval {}: {why}", approval.id));
        let trust = self
            .trust
            .as_ref()
            .ok_or_else(|| unrunnable("this host has no trust store for ai-agent keys".into()))?;
        let bytes = approval.subject["component"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| unrunnable("it holds no component".into()))?;
        let artifact = agent_signed(&bytes, trust).map_err(|e| unrunnable(e.to_string()))?;
        if approval.subject["digest"].as_str() != Some(&artifact.digest().to_string()) {
            return Err(unrunnable("its component does not match its digest".into()));
        }
        let params = resolved.entry.params.clone();
        let ask = approved(&approval, by);
        self.run_proposed(
            &case,
            resolved,
            std::sync::Arc::new(artifact),
            params,
            Withheld::Refuse,
            Mode::Auto,
            ask,
        )
        .await
        .map_err(into_respond)
    }

    async fn approved_case(
        &self,
        approval: &Approval,
    ) -> Result<(super::Case, &crate::catalog::Resolved), RespondError> {
        let case = self.case_of(approval).await?;
        let unrunnable =
            |why: String| RespondError::Unrunnable(format!("approval {}: {why}", approval.id));
        if case.target.is_none() {
            return Err(unrunnable("its incident has no target".into()));
        }
        if approval.subject["class"].as_str() != Some(case.class.as_str()) {
            return Err(unrunnable(format!(
                "it was proposed for class {}, the incident is now {}",
                approval.subject["class"], case.class
            )));
        }
        let resolved = self.catalog.get(&case.class).ok_or_else(|| {
            unrunnable(format!("class {} is no longer in the catalog", case.class))
        })?;
        Ok((case, resolved))
    }
}

fn approved(approval: &Approval, by: &str) -> Ask {
    Ask {
        subject: approval.subject.clone(),
        approval: Some(Approver {
            id: approval.id.clone(),
            by: by.to_string(),
        }),
    }
}

fn into_respond(e: ProposeError) -> RespondError {
    match e {
        ProposeError::Respond(e) => e,
        other => RespondError::NotApprovable(other.to_string()),
    }
}
