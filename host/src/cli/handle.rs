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

use super::host::HostArgs;
use super::run::read_input;
use blastwall::alert;
use blastwall::bundled;
use blastwall::incident::target_of;
use blastwall::signature::PluginArtifact;

/// Arguments of `blastwall handle`.
#[derive(Debug, Args)]
pub struct HandleArgs {
    /// The alerts: an Alertmanager webhook payload or one alert, as JSON. `-` reads stdin.
    #[arg(long)]
    pub alert: PathBuf,
    /// Where the loop's configuration, plugins, world and state come from.
    #[command(flatten)]
    pub host: HostArgs,
    /// Also load the bundled example plugins, unsigned. Local development only.
    #[arg(long)]
    pub insecure_unsigned: bool,
}

fn load_plugins(args: &HandleArgs) -> anyhow::Result<Vec<Arc<PluginArtifact>>> {
    let mut plugins = args.host.signed_plugins(args.host.trust()?.as_ref())?;
    if args.insecure_unsigned {
        if args.host.live {
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
    let (config, _) = args.host.config()?;
    let alerts = alert::parse_all(&read_input(&args.alert)?)
        .with_context(|| format!("alerts in {} are invalid", args.alert.display()))?;
    let plugins = load_plugins(&args)?;
    let world = args.host.world(&config)?;
    if let Some(fleet) = &world.fleet {
        for alert in &alerts {
            if let Ok(target) = target_of(alert)
                && fleet.adopt(&target)
            {
                eprintln!(
                    "note: {target} is not in the simulated fleet; simulating it with 2 replicas at revision 2"
                );
            }
        }
    }
    let responder = args
        .host
        .responder(&config, plugins, world.effects, 4)
        .await?;
    for recovered in responder.recover().await? {
        println!("{}", blastwall::text::to_json(&recovered)?);
    }
    // One alert's failure (the store refusing a write) does not stop the
    // others; the exit code says something failed.
    let mut failed = 0;
    for alert in alerts {
        match responder.handle(alert).await {
            Ok(handled) => println!("{}", blastwall::text::to_json(&handled)?),
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
