//! The command line: argument definitions and one module per command.

mod audit;
mod demo;
mod doctor;
mod guard;
mod handle;
mod host;
mod keys;
mod plugin;
mod proposal;
mod review;
mod run;
mod serve;

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
    Run(Box<RunArgs>),
    /// Take alerts through the whole loop: classify, guardrails, run, verify, escalate, audit.
    Handle(Box<handle::HandleArgs>),
    /// Kill switches and maintenance/exclusion windows (each change audited).
    #[command(subcommand)]
    Guard(guard::GuardCommand),
    /// Generate an Ed25519 signing key pair.
    Keygen(keys::KeygenArgs),
    /// Manage the trust store: which keys may sign plugins, in which tier.
    #[command(subcommand)]
    Trust(keys::TrustCommand),
    /// Sign and verify plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Sign AI proposals (the four Blastwall-* header values).
    #[command(subcommand)]
    Proposal(proposal::ProposalCommand),
    /// Review a plugin's capabilities, imports and escalations since an older version.
    Review(review::ReviewArgs),
    /// Print the JSON schema of plugin manifests.
    ManifestSchema,
    /// Serve the HTTP API and the loop behind it (embedded defaults: shadow mode, local dev trust).
    Serve(Box<serve::ServeArgs>),
    /// Make a bearer token for the API and print its [[api.tokens]] entry.
    Token(serve::TokenArgs),
    /// Verify, query and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Replay sample incidents through the whole loop in process and show what happened.
    Demo(demo::DemoArgs),
    /// Check what the host needs before it acts: configuration, trust, plugins,
    /// catalog, providers, Prometheus, notifiers, data directory.
    Doctor(Box<doctor::DoctorArgs>),
}

/// Runs the parsed command and returns the process exit code.
pub async fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Handle(args) => handle::handle(*args).await,
        Command::Guard(command) => guard::guard(command).await,
        Command::Keygen(args) => keys::keygen(args),
        Command::Trust(command) => keys::trust(command),
        Command::Plugin(command) => plugin::plugin(command),
        Command::Proposal(command) => proposal::proposal(command),
        Command::Review(args) => review::review(args),
        Command::Audit(command) => audit::audit(command).await,
        Command::Serve(args) => serve::serve(*args).await,
        Command::Token(args) => serve::token(args),
        Command::Demo(args) => demo::demo(args).await,
        Command::Doctor(args) => doctor::doctor(*args).await,
        Command::ManifestSchema => {
            println!("{}", blastwall::manifest::json_schema());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
