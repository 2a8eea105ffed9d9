//! The `blastwall` binary: parse arguments, set up logging, dispatch.
//!
//! The command line and the demo live here, not in the library: they are
//! one user of its public API, like the tests and benches.

mod cli;
mod demo;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BLASTWALL_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    cli::dispatch(cli::Cli::parse()).await
}
