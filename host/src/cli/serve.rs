//! `blastwall serve`: the HTTP API and the loop behind it, until stopped.
//!
//! With no arguments it runs on embedded defaults: 127.0.0.1:8080, state in
//! `./blastwall-data/`, the bundled example plugins signed by a local
//! development key (created there on first start), every catalog entry in
//! shadow mode over the simulated fleet, and a local admin token. An
//! operator opts in to acting with `--config` (their catalog and modes) and
//! `--live` (real effects, signed plugins only).

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;

use super::host::HostArgs;
use blastwall::api::auth::{self, Role};
use blastwall::api::config::TokenConfig;
use blastwall::api::{PluginInfo, Tokens};
use blastwall::bundled::dev::{DEV_SIGNER, DevKey, sign_bundled};
use blastwall::guardrails::Mode;
use blastwall::serve;
use blastwall::signature::{PluginArtifact, Provenance, TrustStore};

/// Arguments of `blastwall serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the loop's configuration, plugins, world and state come from.
    /// Without --plugin, the bundled plugins are signed by a local development key.
    #[command(flatten)]
    pub host: HostArgs,
    /// Listen here instead of `[api] listen` (e.g. 0.0.0.0:8080, or 127.0.0.1:0 for any port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Where a local admin token is kept when the configuration names none.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Runs `blastwall serve`.
pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let host = &args.host;
    let (mut config, embedded) = host.config()?;
    if embedded {
        for entry in config.catalog.values_mut() {
            entry.mode = Mode::Shadow;
        }
        tracing::warn!(
            "no --config: the embedded example catalog runs in SHADOW mode (runs are recorded, nothing is changed) over the simulated fleet"
        );
    }
    let mut api = config.api.clone();
    if let Some(listen) = args.listen {
        api.listen = listen;
    }
    if api.queue_capacity < blastwall::alert::MAX_ALERTS {
        bail!(
            "api.queue-capacity {} must hold at least one full payload ({} alerts)",
            api.queue_capacity,
            blastwall::alert::MAX_ALERTS
        );
    }
    std::fs::create_dir_all(&host.data)
        .with_context(|| format!("cannot create the data directory {}", host.data.display()))?;
    let tokens = tokens(&api.tokens, &host.data)?;
    let trust = host.trust()?;
    let (plugins, development) = load_plugins(host, trust.as_ref())?;
    let infos = plugins
        .iter()
        .map(|p| plugin_info(p, development))
        .collect();
    let world = host.world(&config)?;
    // Alerts in flight beyond the run slots wait for one; never more slots
    // than alerts that can be in flight.
    let responder = host
        .responder(&config, plugins, world.effects, api.max_in_flight)
        .await?;
    let responder = match trust {
        Some(trust) => responder.with_trust(Arc::new(trust)),
        None => {
            tracing::warn!(
                "no --trust: AI proposals are disabled (they need ai-agent keys in a trust store)"
            );
            responder
        }
    };
    let app = serve::start(Arc::new(responder), &api, tokens, infos);
    let tcp = tokio::net::TcpListener::bind(api.listen)
        .await
        .with_context(|| format!("cannot listen on {}", api.listen))?;
    let local = tcp.local_addr()?;
    match &api.tls {
        Some(tls) => {
            let tls = serve::tls::server_config(tls).map_err(anyhow::Error::msg)?;
            let listener = serve::tls::TlsListener::new(tcp, tls)?;
            ready_line("https", local, &host.data);
            serve::run(listener, app, &api, serve::signalled()).await?;
        }
        None => {
            ready_line("http", local, &host.data);
            serve::run(tcp, app, &api, serve::signalled()).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line on stdout once the API is up (scripts and tests wait for it).
fn ready_line(scheme: &str, local: SocketAddr, data: &Path) {
    println!(
        "blastwall serving on {scheme}://{local} (data: {})",
        data.display()
    );
    let _ = std::io::stdout().flush();
}

/// Plugins from `--plugin` (verified against `--trust`), or the bundled ones
/// signed by the local development key. Returns whether it is development trust.
fn load_plugins(
    host: &HostArgs,
    trust: Option<&TrustStore>,
) -> anyhow::Result<(Vec<Arc<PluginArtifact>>, bool)> {
    if !host.plugins.is_empty() {
        return Ok((host.signed_plugins(trust)?, false));
    }
    if host.live {
        bail!("--live needs signed plugins: pass --plugin FILE ... --trust FILE");
    }
    let key = DevKey::load_or_create(&host.data.join("keys"))?;
    let (plugins, _) = sign_bundled(&key)?;
    tracing::warn!(
        key = %key.id(),
        "DEVELOPMENT TRUST: the bundled plugins are signed by this host's local development key; nobody reviewed or released them"
    );
    Ok((plugins, true))
}

fn plugin_info(plugin: &PluginArtifact, development: bool) -> PluginInfo {
    let manifest = plugin.manifest();
    let (signer, tier) = match plugin.provenance() {
        Provenance::Signed {
            key_id,
            signer,
            tier,
        } => (format!("{signer} ({key_id})"), tier.as_str().to_string()),
        Provenance::BuiltIn => (
            "built into this binary".to_string(),
            "ai-agent (always capped)".to_string(),
        ),
        Provenance::InsecureUnsigned => ("unsigned".to_string(), "none".to_string()),
    };
    PluginInfo {
        name: manifest.name.clone(),
        version: manifest.version.to_string(),
        digest: plugin.digest().to_string(),
        signer,
        tier,
        capabilities: manifest
            .capabilities
            .capabilities()
            .iter()
            .map(ToString::to_string)
            .collect(),
        status: "loaded".into(),
        trust: if development {
            format!("development: {DEV_SIGNER}")
        } else {
            "trust-store".into()
        },
    }
}

/// The configured tokens, or a local admin token kept in the data directory.
fn tokens(configured: &[TokenConfig], data: &Path) -> anyhow::Result<Tokens> {
    if !configured.is_empty() {
        return Tokens::from_config(configured).map_err(anyhow::Error::msg);
    }
    let path = data.join(ADMIN_TOKEN_FILE);
    let token = local_admin_token(&path)?;
    tracing::warn!(
        path = %path.display(),
        "no [api] tokens configured: using a local admin token from this file (development only; configure [[api.tokens]] for real use)"
    );
    let digest = hex::encode(auth::digest(&token));
    Tokens::from_config(&[TokenConfig {
        name: "local-admin".into(),
        role: Role::Admin,
        sha256: Some(digest),
        env: None,
    }])
    .map_err(anyhow::Error::msg)
}

/// Reads the local admin token, or creates it (mode 0600, never overwritten).
fn local_admin_token(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < auth::MIN_TOKEN_LEN {
                bail!(
                    "{} holds no usable token (at least {} characters); delete it to make a new one",
                    path.display(),
                    auth::MIN_TOKEN_LEN
                );
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = new_token()?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{token}")?;
            file.sync_all()?;
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A new random bearer token: 32 bytes, hex.
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("bw_{}", hex::encode(bytes)))
}

/// Arguments of `blastwall token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Who will hold it (e.g. `alertmanager`, `alice`).
    #[arg(long)]
    pub name: String,
    /// Its role: alert-source, ai-agent, operator or admin.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
}

fn parse_role(raw: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(raw.to_string()))
        .map_err(|_| format!("unknown role {raw:?}: alert-source, ai-agent, operator or admin"))
}

/// Runs `blastwall token`: a new token, and the configuration that admits it.
pub fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let token = new_token()?;
    println!("# Give this token to {} (shown once):", args.name);
    println!("# {token}");
    println!("[[api.tokens]]");
    println!("name = {:?}", args.name);
    println!("role = \"{}\"", args.role);
    println!("sha256 = \"{}\"", hex::encode(auth::digest(&token)));
    Ok(ExitCode::SUCCESS)
}
