//! `blastwall demo`: the whole loop on embedded defaults, for a newcomer.
//!
//! An in-process host, built the way `blastwall handle` builds one, replays a
//! list of incidents through the real [`Responder`](blastwall::respond::Responder):
//! real alerts (Alertmanager webhook JSON, parsed and validated), the real
//! classifier, guardrails, store and audit chain, and the bundled plugins
//! signed with an ephemeral development key and loaded through
//! [`signature::verify`](blastwall::signature::verify). Workload effects go to the
//! simulated fleet; log rotation goes to real files in a scratch directory.
//!
//! Every scenario states what it expects and reads what actually happened
//! from two places: the loop's [`Handled`](blastwall::respond::Handled) answer and
//! the incident's audit records (plus the files on disk and the simulated
//! fleet where they are the point). A scenario matches when both say what was
//! expected; the demo passes when every scenario matches and the audit chain
//! verifies.
//!
//! - `setup.rs`: the scratch directories, real log files, signed plugins, the
//!   embedded demo configuration (`demo-config.toml`) and the responders.
//! - `scenarios.rs`: the scenarios, in the order they run.
//! - `observe.rs`: reading the outcome from the answer and the audit record.
//! - `render.rs`: the table, the JSON and the progress line.

mod observe;
mod render;
mod scenarios;
mod setup;

use std::path::PathBuf;

use serde::Serialize;

pub use render::{Progress, StderrProgress, json, table};

use blastwall::audit::AuditError;
use blastwall::store::Store;

/// How the demo runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep state and the audit chain in this directory (created if missing,
    /// must hold no store yet). Default: a temporary directory, removed at the end.
    pub data: Option<PathBuf>,
}

/// One scenario's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioResult {
    /// A stable identifier, e.g. `oom-restart`.
    pub id: &'static str,
    /// What happens, in a few words.
    pub title: &'static str,
    /// What should happen, one fact per line.
    pub expected: Vec<String>,
    /// What happened, in the same words when it matches.
    pub actual: Vec<String>,
    /// Figures that are not expectations (bytes, fuel, replicas), for the reader.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// The incidents it opened, for `blastwall audit show`.
    pub incidents: Vec<String>,
}

impl ScenarioResult {
    /// Whether what happened is what was expected.
    pub fn matched(&self) -> bool {
        self.expected == self.actual
    }
}

/// What `audit verify` says about the chain after the demo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    /// Records checked.
    pub records: u64,
    /// The head's hash, hex.
    pub head: String,
    /// Why the chain does not verify, if it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

/// The whole demo's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every scenario, in the order run.
    pub scenarios: Vec<ScenarioResult>,
    /// The audit chain, verified at the end.
    pub audit: ChainCheck,
    /// Where state and the audit chain were kept, if `--data` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
}

impl Report {
    /// Scenarios whose outcome matched.
    pub fn matched(&self) -> usize {
        self.scenarios.iter().filter(|s| s.matched()).count()
    }

    /// Whether the demo passed: every scenario matched and the chain verifies.
    pub fn passed(&self) -> bool {
        !self.scenarios.is_empty()
            && self.matched() == self.scenarios.len()
            && self.audit.broken.is_none()
    }

    /// The process exit status: 0 only if the demo passed.
    pub fn exit_status(&self) -> u8 {
        if self.passed() { 0 } else { 1 }
    }
}

/// Runs every scenario through a fresh in-process host. `progress` hears of
/// each scenario as it starts. Fails only when the host cannot be built or
/// its store fails; a scenario that goes wrong is a mismatch in the report.
pub async fn run(options: Options, progress: &mut dyn Progress) -> anyhow::Result<Report> {
    let rig = setup::Rig::build(options.data.as_deref()).await?;
    let all = scenarios::ALL;
    let mut results = Vec::with_capacity(all.len());
    for (index, scenario) in all.iter().enumerate() {
        progress.step(index + 1, all.len(), scenario.title);
        results.push(scenario.run(&rig).await?);
    }
    progress.done();
    let audit = match rig.store.audit().verify().await {
        Ok(verified) => ChainCheck {
            records: verified.records,
            head: verified.head_hash,
            broken: None,
        },
        Err(AuditError::Tampered(e)) => ChainCheck {
            records: 0,
            head: String::new(),
            broken: Some(e.to_string()),
        },
        Err(e) => return Err(e.into()),
    };
    Ok(Report {
        scenarios: results,
        audit,
        data: options.data,
    })
}
