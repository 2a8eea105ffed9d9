//! `blastwall plugin sign|verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use blastwall::signature::{self, Provenance, TrustStore, read_signing_key};

/// `blastwall plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Sign a component together with its manifest into one signed .wasm file.
    Sign {
        /// The private key (NAME.key).
        #[arg(long)]
        key: PathBuf,
        /// The manifest (TOML).
        #[arg(long)]
        manifest: PathBuf,
        /// Where to write the signed component.
        #[arg(long)]
        out: PathBuf,
        /// The plain component built for wasm32-wasip2.
        component: PathBuf,
    },
    /// Verify a signed plugin: exit 0 if a trusted key signed exactly these bytes
    /// and this manifest, 1 with a one-line reason otherwise.
    Verify {
        /// The trust store (TOML).
        #[arg(long)]
        trust: PathBuf,
        /// The signed component.
        plugin: PathBuf,
    },
}

/// Runs `blastwall plugin ...`.
pub fn plugin(command: PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Sign {
            key,
            manifest,
            out,
            component,
        } => {
            let key = read_signing_key(&key)?;
            let text = std::fs::read_to_string(&manifest)
                .with_context(|| format!("cannot read manifest {}", manifest.display()))?;
            let bytes = std::fs::read(&component)
                .with_context(|| format!("cannot read component {}", component.display()))?;
            let signed = signature::sign(&bytes, &text, &key)?;
            std::fs::write(&out, &signed)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "signed {} with {} → {} ({} bytes)",
                component.display(),
                signature::KeyId::of(&key.verifying_key()),
                out.display(),
                signed.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Verify { trust, plugin } => {
            let store = TrustStore::load(&trust)?;
            let bytes = std::fs::read(&plugin)
                .with_context(|| format!("cannot read {}", plugin.display()))?;
            match signature::verify(&bytes, &store) {
                Ok(artifact) => {
                    let manifest = artifact.manifest();
                    if let Provenance::Signed {
                        key_id,
                        signer,
                        tier,
                    } = artifact.provenance()
                    {
                        println!(
                            "ok: {} {} signed by {signer} ({key_id}, tier {tier}), {}",
                            manifest.name,
                            manifest.version,
                            artifact.digest()
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(reason) => {
                    println!("invalid: {}: {reason}", plugin.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
