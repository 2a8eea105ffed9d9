//! `blastwall proposal sign`: the four headers of a signed AI proposal.
//!
//! For agents that shell out, for examples and for humans testing a host:
//! the plan file is checked (a malformed plan is never signed), its exact
//! bytes signed with a fresh nonce and the current time, and the header
//! values printed as JSON with a ready `curl` line that sends those bytes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde_json::json;

use blastwall::proposal::{self, Plan};
use blastwall::signature::read_signing_key;

/// `blastwall proposal` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProposalCommand {
    /// Sign a plan file with an ai-agent key; print the four header values as JSON.
    Sign(SignArgs),
}

/// Arguments of `blastwall proposal sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The agent's private key (NAME.key from `blastwall keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// The endpoint named in the printed curl line.
    #[arg(long, default_value = "http://127.0.0.1:8080/v1/proposals")]
    pub url: String,
    /// The plan (JSON); these exact bytes are signed and must be sent.
    pub plan: PathBuf,
}

/// Runs `blastwall proposal …`.
pub fn proposal(command: ProposalCommand) -> anyhow::Result<ExitCode> {
    match command {
        ProposalCommand::Sign(args) => sign(args),
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(&args.plan)
        .with_context(|| format!("cannot read {}", args.plan.display()))?;
    Plan::parse(&body).map_err(|e| anyhow!("{} is not a plan: {e}", args.plan.display()))?;
    let key = read_signing_key(&args.key)?;
    let nonce = proposal::new_nonce()
        .map_err(|e| anyhow!("cannot make a nonce: the system random source failed: {e}"))?;
    let headers = proposal::sign(&body, &key, SystemTime::now(), &nonce);
    let mut curl = String::from("curl -sS -X POST -H 'Content-Type: application/json'");
    for (name, value) in [
        (proposal::HEADER_KEY, &headers.key),
        (proposal::HEADER_TIMESTAMP, &headers.timestamp),
        (proposal::HEADER_NONCE, &headers.nonce),
        (proposal::HEADER_SIGNATURE, &headers.signature),
    ] {
        curl.push_str(&format!(" -H {}", shell_quote(&format!("{name}: {value}"))));
    }
    curl.push_str(&format!(
        " --data-binary @{} {}",
        shell_quote(&args.plan.display().to_string()),
        shell_quote(&args.url)
    ));
    let mut out = serde_json::to_value(&headers).expect("headers serialise");
    out["curl"] = json!(curl);
    println!("{}", blastwall::text::to_json_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
