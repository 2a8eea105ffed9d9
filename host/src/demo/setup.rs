//! The demo's host: scratch directories, real log files, plugins signed with
//! an ephemeral development key, the embedded demo configuration, and two
//! responders over one store.
//!
//! The responders differ only in where effects go, so every report says
//! truthfully whether an effect was applied: `fleet` runs workload classes as
//! dry runs against the simulated fleet; `logs` runs the `disk-full` class
//! live, with log sets routed to real files and no workload platform at all.
//! Each class is in exactly one responder's
//! catalog. They share the sandbox, the store and its audit chain, as two
//! hosts on one store would. The fleet responder also takes AI proposals
//! signed by an ephemeral key in the `ai-agent` tier.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;

use blastwall::bundled::{self, dev::DevKey};
use blastwall::config::HostConfig;
use blastwall::policy::{Tier, TierPolicy};
use blastwall::provider::{self, DryRunFleet, Effects, LogSetConfig, Sources, WorkloadsConfig};
use blastwall::respond::{Parts, Responder};
use blastwall::sandbox::{Sandbox, SandboxConfig};
use blastwall::signature::{self, KeyId, TrustStore, TrustedKey};
use blastwall::store::{DATABASE_FILE, SqliteStore};

/// The class the live responder serves: the only one with real effects.
pub(super) const LIVE_CLASS: &str = "disk-full";

/// The AI agent's name in the fleet responder's trust store.
pub(super) const AGENT_NAME: &str = "demo-agent";

/// The log set the demo rotates, as the catalog names it.
pub(super) const LOG_SET: &str = "app";

/// The real log files written before the run: name and size.
pub(super) const LOG_FILES: [(&str, usize); 3] = [
    ("checkout.log", 8 << 20),
    ("payments.log", 8 << 20),
    ("cart.log", 8 << 20),
];

/// Everything the scenarios act through.
pub(super) struct Rig {
    /// Workload classes, dry run against the simulated fleet.
    pub fleet: Responder,
    /// The `disk-full` class, live on real log files.
    pub logs: Responder,
    /// The AI agent's key (tier `ai-agent`), for signed proposals.
    pub agent: SigningKey,
    /// The simulated fleet (to read replica counts before and after).
    pub simulated: Arc<DryRunFleet>,
    /// State and the audit chain, shared by both responders.
    pub store: Arc<SqliteStore>,
    /// The demo configuration, as validated.
    pub config: HostConfig,
    /// The directory of the log set `app`.
    pub log_dir: PathBuf,
    /// Scratch space (logs, and the store unless `--data` was given), removed on drop.
    _scratch: tempfile::TempDir,
}

/// The embedded demo configuration.
pub(super) fn demo_config() -> anyhow::Result<HostConfig> {
    Ok(HostConfig::from_toml(
        include_str!("demo-config.toml"),
        "embedded demo-config.toml",
    )?)
}

/// Writes realistic, compressible log lines until `path` holds `size` bytes.
fn write_log(path: &Path, service: &str, size: usize) -> std::io::Result<()> {
    let mut block = String::with_capacity(1 << 20);
    let mut n = 0u64;
    while block.len() < (1 << 20) - 200 {
        n += 1;
        block.push_str(&format!(
            "2026-11-23T03:{:02}:{:02}.{:03}Z INFO {service} request id={n:08x} method=GET path=/api/v1/items/{} status=200 duration_ms={}\n",
            (n / 60_000) % 60,
            (n / 1000) % 60,
            n % 1000,
            n % 997,
            n % 83,
        ));
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0;
    while written < size {
        let chunk = &block.as_bytes()[..block.len().min(size - written)];
        file.write_all(chunk)?;
        written += chunk.len();
    }
    file.into_inner()?.sync_all()
}

impl Rig {
    /// Builds the host. `data`: keep the store there instead of in scratch space.
    pub async fn build(data: Option<&Path>) -> anyhow::Result<Rig> {
        let scratch = tempfile::Builder::new()
            .prefix("blastwall-demo-")
            .tempdir()
            .context("cannot create a scratch directory")?;
        let data_dir = match data {
            Some(dir) => {
                if dir.join(DATABASE_FILE).exists() {
                    bail!(
                        "{} already holds a store; the demo needs a fresh one (earlier runs' cooldowns and rate limits would change its outcomes)",
                        dir.display()
                    );
                }
                dir.to_path_buf()
            }
            None => scratch.path().join("data"),
        };
        let log_dir = scratch.path().join("logs").join(LOG_SET);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        for (name, size) in LOG_FILES {
            let service = name.trim_end_matches(".log");
            write_log(&log_dir.join(name), service, size)
                .with_context(|| format!("cannot write {name} in {}", log_dir.display()))?;
        }

        // Development trust: an ephemeral key signs the bundled plugins and the
        // demo's broken-on-purpose one; each is verified against a trust store
        // holding only that key before anything loads it.
        let key = DevKey::ephemeral()?;
        let mut bundled: Vec<bundled::Bundled> = bundled::ALL.to_vec();
        bundled.push(bundled::DEMO_FAULTS);
        let (plugins, _trust) = bundled::dev::sign_all(&key, &bundled)?;

        let config = demo_config()?;
        let mut sandbox = SandboxConfig::for_host(&config, None);
        sandbox.pool.max_concurrent_runs = 4;
        let sandbox = Arc::new(Sandbox::new(sandbox)?);
        let store = Arc::new(SqliteStore::open(&data_dir).await?);
        let dry_run = provider::build(Sources {
            live: false,
            workloads: &WorkloadsConfig::default(),
            fleet: None,
            log_sets: &BTreeMap::new(),
        })?;
        let simulated = dry_run.fleet.clone().expect("a dry run has a fleet");
        let log_sets = BTreeMap::from([(
            LOG_SET.to_string(),
            LogSetConfig {
                root: log_dir.clone(),
                pattern: "*.log".into(),
                keep: 5,
                min_bytes: 1,
            },
        )]);
        // Live, with no workload platform: only log sets can be touched.
        let real_logs = provider::build(Sources {
            live: true,
            workloads: &WorkloadsConfig::default(),
            fleet: None,
            log_sets: &log_sets,
        })?
        .effects;

        let mut fleet_config = config.clone();
        fleet_config.catalog.remove(LIVE_CLASS);
        let mut logs_config = config.clone();
        logs_config.catalog.retain(|class, _| class == LIVE_CLASS);
        let responder = |config: &HostConfig, effects: Effects, simulated: bool| {
            Responder::from_config(
                config,
                Parts {
                    plugins: plugins.clone(),
                    sandbox: sandbox.clone(),
                    tiers: TierPolicy::embedded_default(),
                    effects,
                    simulated,
                    store: store.clone(),
                },
            )
            .map_err(|e| anyhow::anyhow!("the demo configuration is invalid: {e}"))
        };
        // AI proposals go to the fleet responder, signed by an ephemeral key
        // that only the ai-agent tier trusts.
        let agent = signature::generate()?;
        let agents = TrustStore {
            keys: vec![TrustedKey {
                id: KeyId::of(&agent.verifying_key()),
                name: AGENT_NAME.into(),
                tier: Tier::AiAgent,
                public_key: signature::public_key_pem(&agent.verifying_key()),
                added: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                revoked: None,
            }],
        };
        let fleet = responder(&fleet_config, dry_run.effects, true)?.with_trust(Arc::new(agents));
        let logs = responder(&logs_config, real_logs, false)?;
        Ok(Rig {
            fleet,
            logs,
            agent,
            simulated,
            store,
            config,
            log_dir,
            _scratch: scratch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded configuration passes every check the host makes at start,
    /// with the plugins the demo signs, and maps every class its rules name.
    #[test]
    fn the_demo_configuration_is_valid_and_complete() {
        let config = demo_config().unwrap();
        let key = DevKey::ephemeral().unwrap();
        let mut bundled: Vec<bundled::Bundled> = bundled::ALL.to_vec();
        bundled.push(bundled::DEMO_FAULTS);
        let (plugins, _) = bundled::dev::sign_all(&key, &bundled).unwrap();
        let catalog = blastwall::catalog::Catalog::resolve(&config.catalog, &plugins).unwrap();
        blastwall::classify::Classifier::new(&config.classify).unwrap();
        for rule in &config.classify.rules {
            assert!(
                catalog.get(&rule.class).is_some(),
                "rule for {} names an unmapped class",
                rule.alertname
            );
        }
        assert!(catalog.get(LIVE_CLASS).is_some());
    }

    #[test]
    fn the_default_configuration_never_maps_the_demo_faults() {
        let config = HostConfig::embedded_default();
        assert!(
            config
                .catalog
                .values()
                .all(|entry| !entry.plugin.to_string().starts_with("demo-faults"))
        );
    }
}
