//! `blastwall keygen` and `blastwall trust add|revoke|list`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use blastwall::policy::Tier;
use blastwall::signature::{KeyId, TrustStore, generate_files};

/// Arguments of `blastwall keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory to write NAME.key (mode 0600) and NAME.pub into.
    #[arg(long)]
    pub out: PathBuf,
    /// The key's name, e.g. `platform-release`.
    #[arg(long)]
    pub name: String,
}

/// `blastwall trust` subcommands.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a public key for a tier.
    Add {
        /// The trust store (TOML); created if missing.
        #[arg(long)]
        trust: PathBuf,
        /// The tier that caps what this key's plugins may be granted.
        #[arg(long, value_parser = parse_tier)]
        tier: Tier,
        /// The signer's name (default: the key file's name).
        #[arg(long)]
        name: Option<String>,
        /// The public key file (NAME.pub).
        key: PathBuf,
    },
    /// Revoke a key: every later verification of its signatures fails.
    Revoke {
        /// The trust store (TOML).
        #[arg(long)]
        trust: PathBuf,
        /// The key id, e.g. `ed25519:3f2a9c0d1b4e5f60`.
        key_id: String,
    },
    /// List trusted and revoked keys.
    List {
        /// The trust store (TOML).
        #[arg(long)]
        trust: PathBuf,
    },
}

fn parse_tier(raw: &str) -> Result<Tier, String> {
    raw.parse()
}

/// Runs `blastwall keygen`.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let (key, public, id) = generate_files(&args.out, &args.name)?;
    println!("{id}");
    eprintln!(
        "wrote {} (private, mode 0600) and {}; trust it with `blastwall trust add --trust FILE --tier publisher {}`",
        key.display(),
        public.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `blastwall trust ...`.
pub fn trust(command: TrustCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrustCommand::Add {
            trust,
            tier,
            name,
            key,
        } => {
            let mut store = TrustStore::load_or_empty(&trust)?;
            let added = store.add(&key, tier, name.as_deref())?.clone();
            store.save(&trust)?;
            println!("trusted {} ({}) as {}", added.id, added.name, added.tier);
        }
        TrustCommand::Revoke { trust, key_id } => {
            let mut store = TrustStore::load(&trust)?;
            let revoked = store.revoke(&KeyId::parse(&key_id)?)?.clone();
            store.save(&trust)?;
            println!(
                "revoked {} ({}) at {}",
                revoked.id,
                revoked.name,
                revoked.revoked.as_deref().unwrap_or_default()
            );
        }
        TrustCommand::List { trust } => {
            let store = TrustStore::load(&trust)?;
            if store.keys.is_empty() {
                println!("no keys in {}", trust.display());
            }
            for key in &store.keys {
                let state = match &key.revoked {
                    Some(at) => format!("REVOKED {at}"),
                    None => "trusted".to_string(),
                };
                println!(
                    "{}  {:<10} {:<24} added {}  {state}",
                    key.id,
                    key.tier.as_str(),
                    key.name,
                    key.added
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
