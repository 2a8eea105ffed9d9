//! Running an admitted proposal: grant and load under the `ai-agent` tier,
//! decide inside the store's writer like any run, then follow the decision.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::act::{Prepared, label};
use super::propose::ProposeError;
use super::{Ask, Case, Handled, RespondError, Responder};
use crate::catalog::{PluginRef, Resolved};
use crate::guardrails::{Mode, now_ms};
use crate::policy::{self, Tier};
use crate::sandbox::Withheld;
use crate::signature::PluginArtifact;
use crate::store::Decided;

impl Responder {
    /// Grants, loads, decides and runs a proposal's plugin.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_proposed(
        &self,
        case: &Case,
        resolved: &Resolved,
        artifact: Arc<PluginArtifact>,
        params: BTreeMap<String, String>,
        withheld: Withheld,
        mode: Mode,
        ask: Ask,
    ) -> Result<Handled, ProposeError> {
        let manifest = artifact.manifest();
        let mut entry = resolved.entry.clone();
        entry.plugin = PluginRef::Version {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
        };
        entry.params = params;
        let proposed = Resolved {
            entry,
            plugin: artifact.clone(),
            rollback: resolved.rollback.clone(),
        };
        let approved = ask.approval.is_some();
        let prepared = match self
            .prepare_proposal(case, &artifact, resolved, withheld)
            .await
        {
            Ok(prepared) => prepared,
            Err(reason) if approved => return Err(RespondError::Unrunnable(reason).into()),
            Err(reason) => return Ok(self.refuse(case, "grant", reason).await?),
        };
        let started = self.started_body(case, &prepared);
        match self
            .decide(case, &proposed, mode, now_ms(), started, ask)
            .await?
        {
            Decided::Decision { decision, run } => Ok(self
                .follow(case, &proposed, prepared, decision, run)
                .await?),
            Decided::NotApprovable(reason) => Err(RespondError::NotApprovable(reason).into()),
            Decided::Duplicate(state) => Err(ProposeError::NotDecidable(format!(
                "incident {} is {}: not open to a decision",
                case.id,
                state.as_str()
            ))),
        }
    }

    /// Grants and loads an AI proposal's `artifact` (the plan runner, or an
    /// agent's component) under the `ai-agent` tier, whatever its provenance:
    /// its manifest ∩ the tier ∩ the catalog entry of the case's class (its
    /// `grant`, and what its pinned plugin declares: the operator's consent
    /// for that class) ∩ the incident's target.
    async fn prepare_proposal(
        &self,
        case: &Case,
        artifact: &Arc<PluginArtifact>,
        resolved: &Resolved,
        withheld: Withheld,
    ) -> Result<Prepared, String> {
        let target = case.target.as_ref().expect("prepared only with a target");
        let tier = Tier::AiAgent;
        let refused = |e: String| format!("{} was refused: {e}", label(artifact));
        let consent = format!("catalog class {} ({})", case.class, label(&resolved.plugin));
        let grants = policy::grant_within(
            &artifact.manifest().capabilities,
            Some((tier, self.tiers.caps(tier))),
            &resolved.entry.policy(),
            &[(&consent, &resolved.plugin.manifest().capabilities)],
            target,
        )
        .map_err(|e| refused(e.to_string()))?;
        let plugin = self
            .sandbox
            .load_with(artifact, &grants, withheld)
            .await
            .map_err(|e| refused(e.to_string()))?;
        Ok(Prepared {
            artifact: artifact.clone(),
            grants,
            plugin,
        })
    }
}
