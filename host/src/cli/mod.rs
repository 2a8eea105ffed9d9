//! The command line: argument definitions and one module per command.

mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use run::RunArgs;

/// blastwall runs infrastructure remediations as capability-gated WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "blastwall", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one plugin on one alert and print the JSON run report (dry run unless --live).
    Run(RunArgs),
}

/// Runs the parsed command and returns the process exit code.
pub async fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => run::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
