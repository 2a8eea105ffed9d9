//! `blastwall guard`: the operator's switches, recorded in the audit chain.
//!
//! Changes go to the store under `--data`, so they apply to the next alert any
//! host process on that store handles.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use blastwall::guardrails::{WindowKind, WindowSpec};
use blastwall::policy::TargetPattern;
use blastwall::respond::operate;
use blastwall::store::{SqliteStore, Store};

/// Where the store lives, and who is acting.
#[derive(Debug, Args)]
pub struct Who {
    /// The data directory (blastwall.db).
    #[arg(long, default_value = "blastwall-data")]
    pub data: PathBuf,
    /// Who makes the change, for the audit record.
    #[arg(long)]
    pub by: String,
}

/// `blastwall guard ...`
#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Turn automation off for every target, or for those matching --scope.
    KillSwitch {
        #[command(flatten)]
        who: Who,
        /// Targets it covers (kind/namespace/name, `*` wildcards). Default: every target.
        #[arg(long)]
        scope: Option<TargetPattern>,
        /// Why; shown to whoever is paged while it is on.
        #[arg(long)]
        reason: String,
    },
    /// Turn automation back on for the same scope.
    ClearKillSwitch {
        #[command(flatten)]
        who: Who,
        /// The scope the switch was set with. Default: the global switch.
        #[arg(long)]
        scope: Option<TargetPattern>,
    },
    /// Add a maintenance (hold quietly) or exclusion (refuse and escalate) window.
    Window {
        #[command(flatten)]
        who: Who,
        /// Its name.
        #[arg(long)]
        name: String,
        /// `maintenance` or `exclusion`.
        #[arg(long, value_parser = parse_kind)]
        kind: WindowKind,
        /// Targets it covers (repeatable).
        #[arg(long = "target", required = true)]
        targets: Vec<TargetPattern>,
        /// Weekly: weekdays (mon..sun, repeatable); every day when absent.
        #[arg(long = "day")]
        days: Vec<String>,
        /// Weekly: start, HH:MM UTC.
        #[arg(long)]
        start: Option<String>,
        /// Weekly: length, e.g. 4h.
        #[arg(long)]
        duration: Option<String>,
        /// One-off: start, RFC 3339 UTC.
        #[arg(long)]
        from: Option<String>,
        /// One-off: end, RFC 3339 UTC.
        #[arg(long)]
        until: Option<String>,
    },
    /// Delete a window by name.
    DeleteWindow {
        #[command(flatten)]
        who: Who,
        /// Its name.
        name: String,
    },
    /// Print kill switches, windows and the storm breaker's freeze as JSON.
    Status {
        /// The data directory (blastwall.db).
        #[arg(long, default_value = "blastwall-data")]
        data: PathBuf,
    },
}

fn parse_kind(raw: &str) -> Result<WindowKind, String> {
    match raw {
        "maintenance" => Ok(WindowKind::Maintenance),
        "exclusion" => Ok(WindowKind::Exclusion),
        other => Err(format!("{other:?} is not maintenance or exclusion")),
    }
}

/// Runs `blastwall guard`.
pub async fn guard(command: GuardCommand) -> anyhow::Result<ExitCode> {
    match command {
        GuardCommand::KillSwitch { who, scope, reason } => {
            let store = SqliteStore::open(&who.data).await?;
            let switch = operate::set_kill_switch(&store, scope, &reason, &who.by).await?;
            println!("{}", blastwall::text::to_json(&switch)?);
        }
        GuardCommand::ClearKillSwitch { who, scope } => {
            let store = SqliteStore::open(&who.data).await?;
            let label = scope
                .as_ref()
                .map_or("every target".to_string(), ToString::to_string);
            if !operate::clear_kill_switch(&store, scope, &who.by).await? {
                anyhow::bail!("no kill switch is set for {label}");
            }
            println!("cleared the kill switch for {label}");
        }
        GuardCommand::Window {
            who,
            name,
            kind,
            targets,
            days,
            start,
            duration,
            from,
            until,
        } => {
            let store = SqliteStore::open(&who.data).await?;
            let spec = WindowSpec {
                name,
                kind,
                targets,
                days,
                start,
                duration,
                from,
                until,
            };
            operate::add_window(&store, spec.clone(), &who.by).await?;
            println!("{}", blastwall::text::to_json(&spec)?);
        }
        GuardCommand::DeleteWindow { who, name } => {
            let store = SqliteStore::open(&who.data).await?;
            if !operate::delete_window(&store, &name, &who.by).await? {
                anyhow::bail!("no window named {name:?}");
            }
            println!("deleted window {name:?}");
        }
        GuardCommand::Status { data } => {
            let store = SqliteStore::open(&data).await?;
            println!(
                "{}",
                blastwall::text::to_json_pretty(&store.controls().await?)?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
