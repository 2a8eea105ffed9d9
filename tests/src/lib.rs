//! Shared fixtures for blastwall's integration tests and benchmarks.
//!
//! The guests under `tests/guests/` are built by this crate's build script;
//! their paths arrive as compile-time environment variables.

mod big;
pub mod conformance;

pub use test_servers::dockerd;

pub use big::big_component;

use std::collections::BTreeMap;
use std::sync::Arc;

use blastwall::alert::Alert;
use blastwall::incident::Incident;
use blastwall::manifest::Manifest;
use blastwall::policy::{Policy, TierPolicy};
use blastwall::provider::{DryRunFleet, Effects, FleetSpec};
use blastwall::remediation::{Authority, RemediationError};
use blastwall::sandbox::{Ceilings, LoadError, PoolConfig, RunReport, Sandbox, SandboxConfig};
use blastwall::signature::PluginArtifact;
use blastwall::workload::Workload;

/// A test guest's component bytes and manifest text.
pub fn guest_files(name: &str) -> (Vec<u8>, String) {
    let (wasm, manifest) = match name {
        "adversary" => (env!("GUEST_ADVERSARY"), env!("GUEST_ADVERSARY_MANIFEST")),
        "net-guest" => (env!("GUEST_NET_GUEST"), env!("GUEST_NET_GUEST_MANIFEST")),
        "trivial" => (env!("GUEST_TRIVIAL"), env!("GUEST_TRIVIAL_MANIFEST")),
        other => panic!("no test guest {other}"),
    };
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("cannot read {wasm}: {e}"));
    let text =
        std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("cannot read {manifest}: {e}"));
    (bytes, text)
}

/// A test guest as an (unsigned) artifact with its own manifest.
pub fn guest(name: &str) -> PluginArtifact {
    let (bytes, text) = guest_files(name);
    PluginArtifact::insecure_unsigned(
        bytes,
        Manifest::from_toml(&text, name).expect("valid guest manifest"),
    )
}

/// A bundled example plugin as an artifact.
pub fn bundled(name: &str) -> PluginArtifact {
    let b = blastwall::bundled::find(name).unwrap_or_else(|| panic!("no bundled plugin {name}"));
    PluginArtifact::insecure_unsigned(b.wasm.to_vec(), b.manifest())
}

/// An incident on `target` with plugin parameters `params`, as a dry run.
pub fn incident(target: &str, params: &[(&str, &str)]) -> Incident {
    let target: Workload = target.parse().expect("valid target");
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), "TestAlert".to_string());
    labels.insert("namespace".to_string(), target.namespace().to_string());
    labels.insert("log_set".to_string(), "app".to_string());
    Incident {
        id: "inc-test".into(),
        class: "test".into(),
        confidence: 1.0,
        alert: Alert {
            status: "firing".into(),
            labels,
            annotations: BTreeMap::new(),
            starts_at: "2026-11-23T03:00:00Z".into(),
            ends_at: String::new(),
            generator_url: String::new(),
            fingerprint: "f00d".into(),
        },
        target,
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        dry_run: true,
    }
}

/// A sandbox and a simulated fleet, as one host process would have them.
pub struct Harness {
    /// The sandbox under test.
    pub sandbox: Sandbox,
    /// The simulated fleet effects go to.
    pub fleet: Arc<DryRunFleet>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A sandbox with default ceilings over the embedded example fleet.
    pub fn new() -> Self {
        Self::with_ceilings(Ceilings::default())
    }

    /// A sandbox with the given ceilings over the embedded example fleet.
    pub fn with_ceilings(ceilings: Ceilings) -> Self {
        Harness {
            sandbox: Sandbox::new(SandboxConfig {
                ceilings,
                pool: PoolConfig {
                    max_concurrent_runs: 8,
                    ..PoolConfig::default()
                },
                cache_dir: None,
            })
            .expect("sandbox starts"),
            fleet: Arc::new(DryRunFleet::new(FleetSpec::embedded_default())),
        }
    }

    /// Grants per `policy`, loads, and runs `artifact` on `incident` against the fleet.
    pub async fn run(
        &self,
        artifact: &PluginArtifact,
        incident: Incident,
        policy: &Policy,
    ) -> Result<RunReport, LoadError> {
        let effects = Effects::simulated(self.fleet.clone());
        self.run_with(artifact, incident, policy, effects).await
    }

    /// Like [`Harness::run`] through explicit providers.
    pub async fn run_with(
        &self,
        artifact: &PluginArtifact,
        incident: Incident,
        policy: &Policy,
        effects: Effects,
    ) -> Result<RunReport, LoadError> {
        let tiers = TierPolicy::embedded_default();
        let authority = Authority {
            tiers: &tiers,
            policy,
        };
        match blastwall::remediation::run_once(
            &self.sandbox,
            artifact,
            incident,
            authority,
            effects,
        )
        .await
        {
            Ok(report) => Ok(report),
            Err(RemediationError::Load(e)) => Err(e),
            Err(RemediationError::Grant(e)) => {
                panic!("the test's policy grants nothing usable: {e}")
            }
        }
    }
}
