//! `blastwall run`: one plugin, one alert, one JSON report.
//!
//! Exit codes: 0 the plugin completed; 3 the run ended otherwise (plugin error,
//! a limit, a trap); 1 nothing ran (bad input, refused plugin).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;

use crate::alert;
use crate::bundled;
use crate::config::HostConfig;
use crate::incident::{self, Incident};
use crate::manifest::Manifest;
use crate::policy::{Policy, TierPolicy};
use crate::provider::{DryRunFleet, FleetSpec, LogFiles, LogSetConfig, Provider, Router};
use crate::remediation::{self, Authority};
use crate::sandbox::{Outcome, Sandbox, SandboxConfig};
use crate::signature::{self, PluginArtifact, TrustStore};
use crate::workload::Workload;

/// Arguments of `blastwall run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A signed plugin (.wasm, with --trust), or with --insecure-unsigned a plain
    /// component (with --manifest) or a bundled example plugin
    /// (restart-on-oom, scale-on-saturation, rollback-bad-deploy, rotate-full-disk).
    pub plugin: String,
    /// The alert: one alert or an Alertmanager webhook payload, as JSON. `-` reads stdin.
    #[arg(long)]
    pub alert: PathBuf,
    /// Which alert of a webhook payload to use.
    #[arg(long, default_value_t = 0)]
    pub alert_index: usize,
    /// The plugin's manifest (TOML). Required for a .wasm file; bundled plugins carry theirs.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Grant policy (TOML). Without it (dry runs only), the plugin gets what its
    /// manifest declares, confined to the incident's target.
    #[arg(long)]
    pub grants: Option<PathBuf>,
    /// Apply effects for real (log files; workloads need a live provider). Default: dry run.
    #[arg(long)]
    pub live: bool,
    /// Host configuration (TOML): log sets and limit ceilings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A log set for --live, as NAME=DIRECTORY (repeatable); adds to --config.
    #[arg(long = "log-set", value_name = "NAME=DIR")]
    pub log_sets: Vec<String>,
    /// The simulated fleet for dry runs (TOML). Default: the embedded example fleet.
    #[arg(long)]
    pub fleet: Option<PathBuf>,
    /// The incident's failure class. Default: the alert's blastwall_class label, else its name.
    #[arg(long)]
    pub class: Option<String>,
    /// The incident's target as kind/namespace/name. Default: from the alert's labels.
    #[arg(long)]
    pub target: Option<Workload>,
    /// A plugin parameter as KEY=VALUE (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Tier caps (TOML, see host/src/policy/default-tiers.toml). Default: the embedded tiers.
    #[arg(long)]
    pub tiers: Option<PathBuf>,
    /// Keep compiled plugins in this directory (authenticated, per host) so later
    /// runs skip compilation.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The trust store: the plugin must be signed by a trusted, unrevoked key.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// Run a plugin nobody signed (a plain component with --manifest, or a bundled
    /// example). For local development only; the service never accepts it.
    #[arg(long)]
    pub insecure_unsigned: bool,
}

const UNSIGNED_WARNING: &str = "\
WARNING: --insecure-unsigned: running a plugin whose bytes nobody signed.
WARNING: nothing vouches for what this code is; never do this outside local development.";

pub(super) fn key_value(raw: &str, what: &str) -> anyhow::Result<(String, String)> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{what} {raw:?} is not of the form KEY=VALUE"),
    }
}

pub(super) fn read_input(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin())
            .context("cannot read the alert from stdin");
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read alert {}", path.display()))
}

fn load_artifact(args: &RunArgs) -> anyhow::Result<PluginArtifact> {
    if let Some(trust) = &args.trust {
        if args.insecure_unsigned {
            bail!("--trust and --insecure-unsigned contradict each other: pick one");
        }
        if args.manifest.is_some() {
            bail!(
                "a signed plugin carries its manifest; --manifest is only for --insecure-unsigned"
            );
        }
        let store = TrustStore::load(trust)?;
        let path = PathBuf::from(&args.plugin);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read plugin {}", path.display()))?;
        return signature::verify(&bytes, &store)
            .map_err(|reason| anyhow::anyhow!("refusing to run {}: {reason}", path.display()));
    }
    if !args.insecure_unsigned {
        bail!(
            "refusing to run {}: plugins must be signed; pass --trust FILE to verify a signed plugin, or --insecure-unsigned for local development",
            args.plugin
        );
    }
    eprintln!("{UNSIGNED_WARNING}");
    let path = PathBuf::from(&args.plugin);
    if path.exists() {
        let manifest_path = args.manifest.as_ref().with_context(|| {
            format!(
                "{} needs its manifest: pass --manifest FILE",
                path.display()
            )
        })?;
        let manifest = Manifest::load(manifest_path)?;
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read plugin {}", path.display()))?;
        return Ok(PluginArtifact::insecure_unsigned(bytes, manifest));
    }
    let Some(bundled) = bundled::find(&args.plugin) else {
        let names: Vec<&str> = bundled::ALL.iter().map(|b| b.name).collect();
        bail!(
            "no plugin file {:?} and no bundled plugin of that name (bundled: {})",
            args.plugin,
            names.join(", ")
        );
    };
    let manifest = match &args.manifest {
        Some(path) => Manifest::load(path)?,
        None => bundled.manifest(),
    };
    Ok(PluginArtifact::insecure_unsigned(
        bundled.wasm.to_vec(),
        manifest,
    ))
}

fn build_incident(args: &RunArgs, dry_run: bool) -> anyhow::Result<Incident> {
    let alert = alert::parse_one(&read_input(&args.alert)?, args.alert_index)?;
    let target = match &args.target {
        Some(target) => target.clone(),
        None => incident::target_of(&alert)?,
    };
    let class = args
        .class
        .clone()
        .or_else(|| alert.label("blastwall_class").map(str::to_string))
        .unwrap_or_else(|| alert.name().to_string());
    let params = args
        .params
        .iter()
        .map(|p| key_value(p, "--param"))
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    Ok(Incident {
        id: incident::incident_id(&alert),
        class,
        confidence: 1.0,
        alert,
        target,
        params,
        dry_run,
    })
}

fn provider(
    args: &RunArgs,
    config: &HostConfig,
    incident: &Incident,
) -> anyhow::Result<Arc<dyn Provider>> {
    if args.live {
        let sets = live_log_sets(config, &args.log_sets)?;
        return Ok(Arc::new(Router::new(None, Arc::new(LogFiles::new(sets)))));
    }
    let fleet = load_fleet(args.fleet.as_deref())?;
    if fleet.adopt(&incident.target) {
        eprintln!(
            "note: {} is not in the simulated fleet; simulating it with 2 replicas at revision 2",
            incident.target
        );
    }
    Ok(Arc::new(fleet))
}

/// The simulated fleet from `path`, or the embedded example fleet.
pub(super) fn load_fleet(path: Option<&std::path::Path>) -> anyhow::Result<DryRunFleet> {
    let spec = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read fleet {}", path.display()))?;
            FleetSpec::from_toml(&text, &path.display().to_string()).map_err(anyhow::Error::msg)?
        }
        None => FleetSpec::embedded_default(),
    };
    Ok(DryRunFleet::new(spec))
}

/// Log sets from the configuration plus `--log-set NAME=DIR` flags.
pub(super) fn live_log_sets(
    config: &HostConfig,
    flags: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, LogSetConfig>> {
    let mut sets = config.log_sets.clone();
    for raw in flags {
        let (name, root) = key_value(raw, "--log-set")?;
        sets.insert(
            name,
            LogSetConfig {
                root: root.into(),
                pattern: "*.log".into(),
                keep: 5,
                min_bytes: 1,
            },
        );
    }
    Ok(sets)
}

/// Runs `blastwall run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let artifact = load_artifact(&args)?;
    let config = match &args.config {
        Some(path) => HostConfig::load(path)?,
        None => HostConfig::default(),
    };
    let policy = match &args.grants {
        Some(path) => Policy::load(path)?,
        // A manifest is the plugin's own claim; live effects need the operator's word too.
        None if args.live => bail!(
            "--live needs --grants FILE: an operator's grant policy, not only the plugin's manifest"
        ),
        None => Policy::as_declared(),
    };
    let incident = build_incident(&args, !args.live)?;
    let provider = provider(&args, &config, &incident)?;
    let mut sandbox = SandboxConfig::for_host(&config, args.cache_dir.clone());
    sandbox.pool.max_concurrent_runs = 1;
    let sandbox = Sandbox::new(sandbox)?;
    let tiers = match &args.tiers {
        Some(path) => TierPolicy::load(path)?,
        None => TierPolicy::embedded_default(),
    };
    let authority = Authority {
        tiers: &tiers,
        policy: &policy,
    };
    let report = remediation::run_once(&sandbox, &artifact, incident, authority, provider).await?;
    println!("{}", crate::text::to_json_pretty(&report)?);
    Ok(match report.outcome {
        Outcome::Completed { .. } => ExitCode::SUCCESS,
        _ => ExitCode::from(3),
    })
}
