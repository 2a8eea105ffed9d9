//! `blastwall run`: one plugin, one alert, one JSON report.
//!
//! Exit codes: 0 the plugin completed; 3 the run ended otherwise (plugin error,
//! a limit, a trap); 1 nothing ran (bad input, refused plugin).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use blastwall::alert;
use blastwall::bundled;
use blastwall::config::HostConfig;
use blastwall::incident::{self, Incident};
use blastwall::manifest::Manifest;
use blastwall::policy::{Policy, TierPolicy};
use blastwall::provider::{self, Effects, LogSetConfig, Sources, World};
use blastwall::remediation::{self, Authority};
use blastwall::sandbox::{Outcome, Sandbox, SandboxConfig};
use blastwall::signature::{self, PluginArtifact, TrustStore};
use blastwall::workload::Workload;

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

fn effects(args: &RunArgs, config: &HostConfig, incident: &Incident) -> anyhow::Result<Effects> {
    let world = world(config, args.live, args.fleet.as_deref(), &args.log_sets)?;
    if let Some(fleet) = &world.fleet
        && fleet.adopt(&incident.target)
    {
        eprintln!(
            "note: {} is not in the simulated fleet; simulating it with 2 replicas at revision 2",
            incident.target
        );
    }
    Ok(world.effects)
}

/// The providers `config` and the flags name: the simulated fleet in a dry
/// run (`fleet` overriding `[workloads] fleet`), else the configured platform
/// and the log sets of `[log-sets]` plus `--log-set` flags.
pub(super) fn world(
    config: &HostConfig,
    live: bool,
    fleet: Option<&std::path::Path>,
    log_set_flags: &[String],
) -> anyhow::Result<World> {
    let log_sets = live_log_sets(config, log_set_flags)?;
    Ok(provider::build(Sources {
        live,
        workloads: &config.workloads,
        fleet,
        log_sets: &log_sets,
    })?)
}

/// Log sets from the configuration plus `--log-set NAME=DIR` flags.
fn live_log_sets(
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
    let effects = effects(&args, &config, &incident)?;
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
    let report = remediation::run_once(&sandbox, &artifact, incident, authority, effects).await?;
    println!("{}", blastwall::text::to_json_pretty(&report)?);
    Ok(match report.outcome {
        Outcome::Completed { .. } => ExitCode::SUCCESS,
        _ => ExitCode::from(3),
    })
}
