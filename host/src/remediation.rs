//! The orchestrator for one remediation: grant, load, run. Each line is a stage.

use std::sync::Arc;

use crate::artifact::PluginArtifact;
use crate::incident::Incident;
use crate::policy::{self, GrantError, Policy};
use crate::provider::Provider;
use crate::sandbox::{LoadError, RunReport, RunRequest, Sandbox};

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

/// Grants `artifact` what `policy` allows for `incident`, loads it linked with
/// exactly those capabilities, and runs it once against `provider`.
pub async fn run_once(
    sandbox: &Sandbox,
    artifact: &PluginArtifact,
    incident: Incident,
    policy: &Policy,
    provider: Arc<dyn Provider>,
) -> Result<RunReport, RemediationError> {
    let grants = policy::grant(&artifact.manifest().capabilities, policy, &incident.target)?;
    let plugin = sandbox.load(artifact, &grants.capabilities())?;
    let request = RunRequest {
        incident,
        grants,
        provider,
    };
    Ok(sandbox.run(&plugin, request).await)
}
