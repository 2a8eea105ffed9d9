//! `blastwall demo`: the whole loop on embedded defaults, in one command.
//!
//! Replays incidents through an in-process host (see [`crate::demo`]) and
//! prints what each scenario expected and what happened, as a table or as
//! JSON, with a progress line on stderr. Exit codes: 0 every scenario matched
//! and the audit chain verifies; 1 otherwise, or the demo could not start.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::demo::{self, Options, StderrProgress};

/// Arguments of `blastwall demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep state and the audit chain in this directory (new, or without a
    /// store yet) to read them afterwards with `blastwall audit show --data DIR`.
    /// Default: a temporary directory, removed at the end.
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Runs `blastwall demo`.
pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut progress = StderrProgress::new();
    let report = demo::run(Options { data: args.data }, &mut progress).await?;
    if args.json {
        println!("{}", demo::json(&report));
    } else {
        // Scenario facts quote plugin summaries and messages: escaped for the screen.
        print!("{}", blastwall::text::visible_lines(&demo::table(&report)));
    }
    Ok(ExitCode::from(report.exit_status()))
}
