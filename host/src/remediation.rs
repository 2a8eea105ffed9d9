//! The orchestrator for one remediation: grant, load, run. Each line is a stage.

use crate::incident::Incident;
use crate::policy::{self, GrantError, Policy, TierPolicy};
use crate::provider::Effects;
use crate::sandbox::{LoadError, RunReport, RunRequest, Sandbox};
use crate::signature::PluginArtifact;

/// Why a remediation did not run at all. (Once it runs, every ending is an `Outcome`.)
#[derive(Debug, thiserror::Error)]
pub enum RemediationError {
    /// The manifest and the policy leave nothing grantable.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// The plugin was refused at load time.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Who decides what a plugin may do, besides its own manifest.
#[derive(Debug, Clone, Copy)]
pub struct Authority<'a> {
    /// Caps per trust tier; applied to signed plugins by their signer's tier.
    pub tiers: &'a TierPolicy,
    /// The operator's grant policy.
    pub policy: &'a Policy,
}

/// Grants `artifact` what its tier and the policy allow for `incident`, loads
/// it linked with exactly those capabilities, and runs it once through
/// `effects`. The run's id is the incident's, with `-once`.
pub async fn run_once(
    sandbox: &Sandbox,
    artifact: &PluginArtifact,
    incident: Incident,
    authority: Authority<'_>,
    effects: Effects,
) -> Result<RunReport, RemediationError> {
    let tier = artifact
        .provenance()
        .tier()
        .map(|tier| (tier, authority.tiers.caps(tier)));
    let grants = policy::grant(
        &artifact.manifest().capabilities,
        tier,
        authority.policy,
        &incident.target,
    )?;
    let plugin = sandbox.load(artifact, &grants).await?;
    let request = RunRequest {
        run: format!("{}-once", incident.id),
        incident,
        grants,
        effects,
    };
    Ok(sandbox.run(&plugin, request).await)
}
