//! `blastwall review`: what a plugin may do, what it imports, what changed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use blastwall::review::{self, Format};
use blastwall::signature::TrustStore;

/// Arguments of `blastwall review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The signed plugin to review.
    pub plugin: PathBuf,
    /// An older signed version to compare with: every escalation is listed.
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// A trust store, to check the signature and name the signer and tier.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 2 if --against finds any escalation (a CI gate).
    #[arg(long, requires = "against")]
    pub fail_on_escalation: bool,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs `blastwall review`.
pub fn review(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let trust = args.trust.as_deref().map(TrustStore::load).transpose()?;
    let bytes = read(&args.plugin)?;
    let old = args.against.as_ref().map(read).transpose()?;
    let old_name = args
        .against
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let result = review::review(
        &bytes,
        &args.plugin.display().to_string(),
        old.as_deref().map(|b| (b, old_name.as_str())),
        trust.as_ref(),
    )?;
    print!("{}", review::render(&result, args.format));
    let escalated = result.escalations.as_ref().is_some_and(|e| !e.is_empty());
    Ok(if args.fail_on_escalation && escalated {
        eprintln!(
            "review: {} escalation(s); failing as asked",
            result.escalations.map_or(0, |e| e.len())
        );
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
