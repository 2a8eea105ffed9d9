//! Building the loop from configuration, with every check done at start.

use std::sync::Arc;

use super::Responder;
use crate::catalog::Catalog;
use crate::classify::Classifier;
use crate::config::HostConfig;
use crate::escalate::Escalator;
use crate::guardrails::Window;
use crate::policy::TierPolicy;
use crate::proposal::ProposalSettings;
use crate::provider::Effects;
use crate::sandbox::Sandbox;
use crate::signature::{PluginArtifact, TrustStore};
use crate::store::Store;
use crate::verify::Prometheus;

/// What the loop runs on, besides its configuration.
pub struct Parts {
    /// Verified plugins the catalog may name.
    pub plugins: Vec<Arc<PluginArtifact>>,
    /// The sandbox.
    pub sandbox: Arc<Sandbox>,
    /// Tier caps.
    pub tiers: TierPolicy,
    /// Where effects go.
    pub effects: Effects,
    /// Whether `effects` are simulated.
    pub simulated: bool,
    /// State and audit.
    pub store: Arc<dyn Store>,
}

impl Responder {
    /// Validates the loop's configuration against the loaded plugins and
    /// builds it. Errors name the section and the value at fault.
    pub fn from_config(config: &HostConfig, parts: Parts) -> Result<Self, String> {
        let catalog = Catalog::resolve(&config.catalog, &parts.plugins)?;
        let classifier = Classifier::new(&config.classify)?;
        let blast = &config.guardrails.blast_radius;
        if !(blast.max_fraction > 0.0 && blast.max_fraction <= 1.0) {
            return Err(format!(
                "guardrails.blast-radius max-fraction {} must be above 0 and at most 1",
                blast.max_fraction
            ));
        }
        if config.guardrails.storm.max_actions == 0 || config.guardrails.storm.window.is_zero() {
            return Err("guardrails.storm needs max-actions and window above zero".into());
        }
        let windows = config
            .guardrails
            .windows
            .iter()
            .map(|spec| Window::try_from(spec.clone()).map_err(|e| format!("guardrails: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let promql = config.catalog.iter().find(|(_, e)| {
            matches!(
                e.verify,
                Some(crate::verify::VerificationSpec::Promql { .. })
            )
        });
        if let (Some((class, _)), None) = (promql, &config.prometheus) {
            return Err(format!(
                "catalog class {class}: verify uses PromQL, but there is no [prometheus] section"
            ));
        }
        let escalator = Escalator::new(&config.escalation).map_err(|e| e.to_string())?;
        let prometheus = config
            .prometheus
            .as_ref()
            .map(Prometheus::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Responder {
            catalog,
            classifier,
            guardrails: config.guardrails.clone(),
            windows,
            sandbox: parts.sandbox,
            tiers: parts.tiers,
            effects: parts.effects,
            simulated: parts.simulated,
            store: parts.store,
            escalator,
            prometheus,
            trust: None,
            proposals: crate::proposal::ProposalSettings::default(),
            plan_runner: crate::bundled::plan_runner(),
        })
    }

    /// Accepts AI proposals signed by the `ai-agent` keys of `trust`. Without
    /// a trust store, every proposal is refused. The store is read once:
    /// revoking an agent's key takes effect when the host is rebuilt.
    pub fn with_trust(mut self, trust: Arc<TrustStore>) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Judges proposals with `settings` instead of the defaults.
    pub fn with_proposal_settings(mut self, settings: ProposalSettings) -> Self {
        self.proposals = settings;
        self
    }
}
