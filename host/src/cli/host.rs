//! What `handle` and `serve` share: where the loop's configuration, plugins,
//! world and state come from, and building the `Responder` from them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;

use super::run::world;
use blastwall::config::HostConfig;
use blastwall::policy::TierPolicy;
use blastwall::provider::{Effects, World};
use blastwall::respond::{Parts, Responder};
use blastwall::sandbox::{Sandbox, SandboxConfig};
use blastwall::signature::{self, PluginArtifact, TrustStore};
use blastwall::store::SqliteStore;

/// The loop's sources, as flags.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// Host configuration (TOML): catalog, rules, guardrails, verification,
    /// escalation and `[api]`. Default: the embedded example configuration
    /// (`serve` runs every entry of it in shadow mode).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data directory: state and the audit chain (blastwall.db).
    #[arg(long, default_value = "blastwall-data")]
    pub data: PathBuf,
    /// Apply effects for real (log files; workloads need a live provider).
    /// Needs --config and signed plugins. Default: dry run.
    #[arg(long)]
    pub live: bool,
    /// A log set for --live, as NAME=DIRECTORY (repeatable); adds to --config.
    #[arg(long = "log-set", value_name = "NAME=DIR")]
    pub log_sets: Vec<String>,
    /// The simulated fleet for dry runs (TOML); overrides `[workloads] fleet`.
    /// Default: the embedded example fleet.
    #[arg(long)]
    pub fleet: Option<PathBuf>,
    /// A signed plugin (.wasm) the catalog may name (repeatable); needs --trust.
    #[arg(long = "plugin", value_name = "FILE")]
    pub plugins: Vec<PathBuf>,
    /// The trust store that signed plugins (and, for `serve`, AI agents'
    /// proposals) are verified against.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// Tier caps (TOML). Default: the embedded tiers.
    #[arg(long)]
    pub tiers: Option<PathBuf>,
    /// Keep compiled plugins in this directory (authenticated, per host).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

impl HostArgs {
    /// `--config`, or the embedded example (refused with `--live`).
    pub fn config(&self) -> anyhow::Result<(HostConfig, bool)> {
        match &self.config {
            Some(path) => Ok((HostConfig::load(path)?, false)),
            None if self.live => bail!(
                "--live needs --config FILE: an operator's catalog and guardrails, not the embedded examples"
            ),
            None => Ok((HostConfig::embedded_default(), true)),
        }
    }

    /// The trust store, when `--trust` is given.
    pub fn trust(&self) -> anyhow::Result<Option<TrustStore>> {
        self.trust
            .as_ref()
            .map(|path| TrustStore::load(path).map_err(anyhow::Error::from))
            .transpose()
    }

    /// The `--plugin` files, each verified against `trust` before anything else.
    pub fn signed_plugins(
        &self,
        trust: Option<&TrustStore>,
    ) -> anyhow::Result<Vec<Arc<PluginArtifact>>> {
        if self.plugins.is_empty() {
            return Ok(Vec::new());
        }
        let trust = trust.context("--plugin needs --trust FILE to verify its signature")?;
        self.plugins
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read plugin {}", path.display()))?;
                let artifact = signature::verify(&bytes, trust).map_err(|reason| {
                    anyhow::anyhow!("refusing plugin {}: {reason}", path.display())
                })?;
                Ok(Arc::new(artifact))
            })
            .collect()
    }

    /// The providers effects go to, as configured.
    pub fn world(&self, config: &HostConfig) -> anyhow::Result<World> {
        world(config, self.live, self.fleet.as_deref(), &self.log_sets)
    }

    /// Opens the store and builds the loop, every check done at start.
    pub async fn responder(
        &self,
        config: &HostConfig,
        plugins: Vec<Arc<PluginArtifact>>,
        effects: Effects,
        max_concurrent_runs: usize,
    ) -> anyhow::Result<Responder> {
        let mut sandbox = SandboxConfig::for_host(config, self.cache_dir.clone());
        sandbox.pool.max_concurrent_runs =
            sandbox.pool.max_concurrent_runs.min(max_concurrent_runs);
        let sandbox = Arc::new(Sandbox::new(sandbox)?);
        let tiers = match &self.tiers {
            Some(path) => TierPolicy::load(path)?,
            None => TierPolicy::embedded_default(),
        };
        let store = Arc::new(SqliteStore::open(&self.data).await?);
        Responder::from_config(
            config,
            Parts {
                plugins,
                sandbox,
                tiers,
                effects,
                simulated: !self.live,
                store,
            },
        )
        .map_err(anyhow::Error::msg)
    }
}
