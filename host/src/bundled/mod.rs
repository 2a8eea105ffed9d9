//! The example plugins, compiled into the binary so `blastwall run restart-on-oom`
//! works on a fresh machine. Built from `plugins/` by the build script.
//! [`dev`] signs them with a development key.

pub mod dev;

use std::sync::Arc;

use crate::manifest::Manifest;
use crate::signature::PluginArtifact;

/// One bundled plugin: its component bytes and manifest text.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    /// The plugin's name, e.g. `restart-on-oom`.
    pub name: &'static str,
    /// The component.
    pub wasm: &'static [u8],
    /// The manifest, TOML.
    pub manifest: &'static str,
}

macro_rules! bundle {
    ($name:literal) => {
        Bundled {
            name: $name,
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".wasm")),
            manifest: include_str!(concat!("../../../plugins/", $name, "/blastwall.toml")),
        }
    };
}

/// Every bundled plugin.
pub const ALL: [Bundled; 5] = [
    bundle!("restart-on-oom"),
    bundle!("scale-on-saturation"),
    bundle!("rollback-bad-deploy"),
    bundle!("rotate-full-disk"),
    PLAN_RUNNER,
];

/// The plugin `blastwall demo` uses to show the fuel and memory limits: it
/// loops or allocates forever on purpose. Not in [`ALL`], so nothing but the
/// demo loads it, and no catalog outside the demo can name it.
pub const DEMO_FAULTS: Bundled = bundle!("demo-faults");

/// The runner of AI agents' plans (see `plugins/plan-runner`). It travels
/// inside the binary, so it is exactly as trusted as the host that runs it;
/// its runs are always capped by the `ai-agent` tier, whatever its provenance.
pub const PLAN_RUNNER: Bundled = bundle!("plan-runner");

/// The bundled plugin called `name`, if any.
pub fn find(name: &str) -> Option<Bundled> {
    ALL.into_iter().find(|b| b.name == name)
}

impl Bundled {
    /// The parsed manifest. Bundled manifests are tested to parse.
    pub fn manifest(&self) -> Manifest {
        Manifest::from_toml(self.manifest, self.name).expect("bundled manifests are valid")
    }

    /// The plugin as an unsigned artifact, for local development and tests.
    pub fn insecure_unsigned(&self) -> PluginArtifact {
        PluginArtifact::insecure_unsigned(self.wasm.to_vec(), self.manifest())
    }
}

/// The plan runner as the host runs it for AI proposals.
pub fn plan_runner() -> Arc<PluginArtifact> {
    Arc::new(PluginArtifact::built_in(
        PLAN_RUNNER.wasm.to_vec(),
        PLAN_RUNNER.manifest(),
    ))
}

/// Every bundled plugin as an unsigned artifact (development only: nothing vouches for them).
pub fn insecure_unsigned_all() -> Vec<Arc<PluginArtifact>> {
    ALL.iter()
        .map(|b| Arc::new(b.insecure_unsigned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bundled_manifest_parses_and_names_its_plugin() {
        for bundled in super::ALL.into_iter().chain([super::DEMO_FAULTS]) {
            let manifest = bundled.manifest();
            assert_eq!(manifest.name, bundled.name);
            assert!(bundled.wasm.starts_with(b"\0asm"));
        }
        assert!(super::find(super::DEMO_FAULTS.name).is_none());
    }
}
