//! `blastwall handle`: alerts through the whole remediation loop, once.
//!
//! Reads an Alertmanager webhook payload (or one alert), and for each alert
//! classifies, applies the guardrails, runs the catalog's signed plugin,
//! verifies and escalates, recording every step in the audit chain under
//! `--data`. Prints one JSON line per alert. Before handling anything it
//! recovers runs a previous process left in flight (marks them interrupted
//! and escalates them).
//!
//! Exit codes: 0 every alert was handled (whatever was decided); 1 the
//! configuration, plugins, input or store were unusable, or the store failed
//! for some alert (the others are still handled).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;

use super::run::{live_log_sets, load_fleet, read_input};
use crate::alert;
use crate::bundled;
use crate::config::HostConfig;
use crate::incident::target_of;
use crate::policy::TierPolicy;
use crate::provider::{LogFiles, Provider, Router};
use crate::respond::{Parts, Responder};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::signature::{self, PluginArtifact, TrustStore};
use crate::store::SqliteStore;

/// Arguments of `blastwall handle`.
#[derive(Debug, Args)]
pub struct HandleArgs {
    /// The alerts: an Alertmanager webhook payload or one alert, as JSON. `-` reads stdin.
    #[arg(long)]
    pub alert: PathBuf,
    /// Host configuration (TOML) with the catalog, rules, guardrails,
    /// verification and escalation. Default: the embedded example configuration.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data directory: state and the audit chain (blastwall.db).
    #[arg(long, default_value = "blastwall-data")]
    pub data: PathBuf,
    /// Apply effects for real (log files; workloads need a live provider). Default: dry run.
    #[arg(long)]
    pub live: bool,
    /// A log set for --live, as NAME=DIRECTORY (repeatable); adds to --config.
    #[arg(long = "log-set", value_name = "NAME=DIR")]
    pub log_sets: Vec<String>,
    /// The simulated fleet for dry runs (TOML). Default: the embedded example fleet.
    #[arg(long)]
    pub fleet: Option<PathBuf>,
    /// A signed plugin (.wasm) the catalog may name (repeatable); needs --trust.
    #[arg(long = "plugin", value_name = "FILE")]
    pub plugins: Vec<PathBuf>,
    /// The trust store that signed plugins are verified against.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// Tier caps (TOML). Default: the embedded tiers.
    #[arg(long)]
    pub tiers: Option<PathBuf>,
    /// Keep compiled plugins in this directory (authenticated, per host).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Also load the bundled example plugins, unsigned. Local development only.
    #[arg(long)]
    pub insecure_unsigned: bool,
}

fn load_plugins(args: &HandleArgs) -> anyhow::Result<Vec<Arc<PluginArtifact>>> {
    let mut plugins = Vec::new();
    if !args.plugins.is_empty() {
        let trust = args
            .trust
            .as_ref()
            .context("--plugin needs --trust FILE to verify its signature")?;
        let store = TrustStore::load(trust)?;
        for path in &args.plugins {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read plugin {}", path.display()))?;
            let artifact = signature::verify(&bytes, &store).map_err(|reason| {
                anyhow::anyhow!("refusing plugin {}: {reason}", path.display())
            })?;
            plugins.push(Arc::new(artifact));
        }
    }
    if args.insecure_unsigned {
        if args.live {
            bail!(
                "--insecure-unsigned cannot be combined with --live: live effects need signed plugins"
            );
        }
        eprintln!(
            "WARNING: --insecure-unsigned: loading the bundled example plugins without signatures (local development only)."
        );
        plugins.extend(bundled::insecure_unsigned_all());
    }
    if plugins.is_empty() {
        bail!(
            "no plugins: pass --plugin FILE (signed) with --trust FILE, or --insecure-unsigned for the bundled examples"
        );
    }
    Ok(plugins)
}

/// Runs `blastwall handle`.
pub async fn handle(args: HandleArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => HostConfig::load(path)?,
        None if args.live => bail!(
            "--live needs --config FILE: an operator's catalog and guardrails, not the embedded examples"
        ),
        None => HostConfig::embedded_default(),
    };
    let alerts = alert::parse_all(&read_input(&args.alert)?)
        .with_context(|| format!("alerts in {} are invalid", args.alert.display()))?;
    let plugins = load_plugins(&args)?;
    let provider: Arc<dyn Provider> = if args.live {
        let sets = live_log_sets(&config, &args.log_sets)?;
        Arc::new(Router::new(None, Arc::new(LogFiles::new(sets))))
    } else {
        let fleet = load_fleet(args.fleet.as_deref())?;
        for alert in &alerts {
            if let Ok(target) = target_of(alert)
                && fleet.adopt(&target)
            {
                eprintln!(
                    "note: {target} is not in the simulated fleet; simulating it with 2 replicas at revision 2"
                );
            }
        }
        Arc::new(fleet)
    };
    let sandbox = Arc::new(Sandbox::new(SandboxConfig {
        ceilings: config.ceilings.clone().unwrap_or_default(),
        concurrent_runs: 4,
        cache_dir: args.cache_dir.clone(),
    })?);
    let tiers = match &args.tiers {
        Some(path) => TierPolicy::load(path)?,
        None => TierPolicy::embedded_default(),
    };
    let store = Arc::new(SqliteStore::open(&args.data).await?);
    let responder = Responder::from_config(
        &config,
        Parts {
            plugins,
            sandbox,
            tiers,
            provider,
            simulated: !args.live,
            store,
        },
    )
    .map_err(anyhow::Error::msg)?;
    for recovered in responder.recover().await? {
        println!("{}", serde_json::to_string(&recovered)?);
    }
    // One alert's failure (the store refusing a write) does not stop the
    // others; the exit code says something failed.
    let mut failed = 0;
    for alert in alerts {
        match responder.handle(alert).await {
            Ok(handled) => println!("{}", serde_json::to_string(&handled)?),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
