//! Loading: compile a component once, check what it imports, link exactly what
//! is granted, and keep an `InstancePre` for fast per-run instantiation.
//!
//! The import check enforces *imports ⊆ declared ⊆ granted*: a component that
//! imports a capability its manifest does not declare, or one the policy does
//! not grant, or any WASI interface outside the restricted set, is refused
//! with an error naming the import. Nothing it imports is ever stubbed out.
//!
//! One exception, chosen by the host and never by the plugin
//! ([`Withheld::DenyEachCall`], used for the runner of AI agents' plans): an
//! import its manifest declares but a later layer withheld is linked to the
//! real host function with *no grant*, so each call is refused by the grant
//! check and recorded as a denial. Nothing ungranted can happen either way;
//! the difference is that a plan asking for a forbidden capability meets its
//! denial at the call, on the record, instead of stopping every plan at load.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::PluginPre;
use super::bindings::blastwall::remediation::{
    context, log_rotation, restart, rollback, scale, types,
};
use super::limits::{ComponentSizes, RunLimits};
use super::state::RunState;
use super::wasi;
use crate::manifest::Manifest;
use crate::policy::{Capability, Grants};
use crate::signature::{Digest, PluginArtifact, Provenance};

const PACKAGE: &str = "blastwall:remediation/";
/// Interfaces of our package every plugin may import.
const ALWAYS_LINKED: [&str; 2] = ["types", "context"];

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly binary at all.
    #[error("{name}: not a WebAssembly binary (no \\0asm header)")]
    NotWasm {
        /// The plugin's name.
        name: String,
    },
    /// The component is larger than the host compiles (`[ceilings]`).
    #[error("{name}: {what} is {size} bytes, more than this host's limit of {limit} ({setting})")]
    TooLarge {
        /// The plugin's name.
        name: String,
        /// What is too large, e.g. `the component` or `function 3 of core module 0`.
        what: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
        /// The `[ceilings]` setting that sets the limit.
        setting: &'static str,
    },
    /// Wasmtime could not compile the bytes as a component.
    #[error("{name}: not a valid WebAssembly component: {reason}")]
    Compile {
        /// The plugin's name.
        name: String,
        /// Wasmtime's explanation.
        reason: String,
    },
    /// The component imports a capability its manifest does not declare.
    #[error(
        "{name}: imports {import}, but its manifest does not declare the {capability} capability"
    )]
    Undeclared {
        /// The plugin's name.
        name: String,
        /// The full import name.
        import: String,
        /// The capability.
        capability: Capability,
    },
    /// The component imports a declared capability that a tier or the policy does not grant.
    #[error("{name}: imports {import}, but {by} does not grant the {capability} capability")]
    NotGranted {
        /// The plugin's name.
        name: String,
        /// The full import name.
        import: String,
        /// The capability.
        capability: Capability,
        /// Which layer withheld it, e.g. `policy` or `the ai-agent tier`.
        by: String,
    },
    /// The component imports something outside blastwall's interfaces and the restricted WASI.
    #[error("{name}: imports {import}, which plugins may not use ({why})")]
    Forbidden {
        /// The plugin's name.
        name: String,
        /// The full import name.
        import: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// Linking failed (e.g. a version of an interface this host does not provide).
    #[error("{name}: cannot link: {reason}")]
    Link {
        /// The plugin's name.
        name: String,
        /// Wasmtime's explanation, which names the import.
        reason: String,
    },
}

/// A compiled, import-checked, linked plugin, ready for runs. Cheap to clone:
/// the linked `InstancePre` is shared with every load of the same component
/// and capability set.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub(super) pre: Arc<PluginPre<RunState>>,
    pub(super) limits: RunLimits,
    summary: PluginSummary,
}

/// What reports say about the plugin that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginSummary {
    /// Name from the manifest.
    pub name: String,
    /// Version from the manifest.
    pub version: String,
    /// SHA-256 of the component.
    pub digest: Digest,
    /// How the bytes came to be trusted.
    pub provenance: Provenance,
    /// Capability interfaces linked into it (with [`Withheld::DenyEachCall`],
    /// also the withheld ones it imports, whose every call is denied).
    pub linked: BTreeSet<Capability>,
    /// Every import of the component, for review.
    pub imports: Vec<String>,
}

impl LoadedPlugin {
    /// What reports say about this plugin.
    pub fn summary(&self) -> &PluginSummary {
        &self.summary
    }

    /// The limits every run of this plugin gets.
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }
}

/// Refuses a component larger than `sizes` allows, before anything compiles
/// it: its bytes, the function bodies of all its core modules together, and
/// the largest one. Reads only section headers (wasmparser), so its cost is
/// small and independent of what the code does.
pub fn check_sizes(artifact: &PluginArtifact, sizes: &ComponentSizes) -> Result<(), LoadError> {
    let name = &artifact.manifest().name;
    let bytes = artifact.bytes();
    let too_large = |what: String, size: u64, limit: u64, setting| LoadError::TooLarge {
        name: name.clone(),
        what,
        size,
        limit,
        setting,
    };
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm { name: name.clone() });
    }
    let size = bytes.len() as u64;
    if size > sizes.component_bytes {
        return Err(too_large(
            "the component".into(),
            size,
            sizes.component_bytes,
            "max-component-bytes",
        ));
    }
    let mut code = 0u64;
    // Core modules nested in the component, counted as they begin; the
    // function index counts within the current code section.
    let (mut modules, mut function) = (0usize, 0usize);
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::Compile {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        match payload {
            wasmparser::Payload::ModuleSection { .. } => modules += 1,
            wasmparser::Payload::CodeSectionStart { .. } => function = 0,
            wasmparser::Payload::CodeSectionEntry(body) => {
                let body_size = body.range().len() as u64;
                if body_size > sizes.function_bytes {
                    return Err(too_large(
                        format!(
                            "function {function} of core module {}",
                            modules.saturating_sub(1)
                        ),
                        body_size,
                        sizes.function_bytes,
                        "max-function-bytes",
                    ));
                }
                code += body_size;
                if code > sizes.code_bytes {
                    return Err(too_large(
                        "the code of its core modules".into(),
                        code,
                        sizes.code_bytes,
                        "max-code-bytes",
                    ));
                }
                function += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Compiles `artifact`'s bytes (exactly those bytes) into a component.
pub fn compile(engine: &Engine, artifact: &PluginArtifact) -> Result<Component, LoadError> {
    let name = artifact.manifest().name.clone();
    let bytes = artifact.bytes();
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm { name });
    }
    // `from_binary`, not `new`: text (WAT) is never accepted as a plugin.
    Component::from_binary(engine, bytes).map_err(|e| LoadError::Compile {
        name,
        reason: format!("{e:#}"),
    })
}

/// The names of everything `component` imports.
pub fn imports_of(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// What a load does with an import whose capability the manifest declares
/// but a tier, the catalog or the policy withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Withheld {
    /// Refuse the load, naming the layer that withheld it (the default).
    #[default]
    Refuse,
    /// Link it without a grant: every call is denied at call time.
    DenyEachCall,
}

/// Checks every import against the manifest and the grants, and returns the
/// capability interfaces to link: the granted ones, plus, with
/// [`Withheld::DenyEachCall`], the declared-but-withheld ones it imports.
pub fn check_imports(
    manifest: &Manifest,
    imports: &[String],
    grants: &Grants,
    withheld: Withheld,
) -> Result<BTreeSet<Capability>, LoadError> {
    let declared = manifest.capabilities.capabilities();
    let granted = grants.capabilities();
    let mut linked = granted.clone();
    let name = || manifest.name.clone();
    for import in imports {
        if let Some(rest) = import.strip_prefix(PACKAGE) {
            let interface = rest.split('@').next().unwrap_or(rest);
            if ALWAYS_LINKED.contains(&interface) {
                continue;
            }
            let Some(capability) = Capability::from_interface(interface) else {
                return Err(LoadError::Forbidden {
                    name: name(),
                    import: import.clone(),
                    why: "no such blastwall interface",
                });
            };
            if !declared.contains(&capability) {
                return Err(LoadError::Undeclared {
                    name: name(),
                    import: import.clone(),
                    capability,
                });
            }
            if !granted.contains(&capability) {
                if withheld == Withheld::DenyEachCall {
                    linked.insert(capability);
                    continue;
                }
                return Err(LoadError::NotGranted {
                    name: name(),
                    import: import.clone(),
                    capability,
                    by: grants
                        .withheld_by(capability)
                        .unwrap_or("policy")
                        .to_string(),
                });
            }
        } else if !wasi::ALLOWED_WASI.iter().any(|p| import.starts_with(p)) {
            let why = if import.starts_with("wasi:sockets/") || import.starts_with("wasi:http/") {
                "plugins get no network; act through capabilities"
            } else {
                "only blastwall interfaces and the restricted WASI are available"
            };
            return Err(LoadError::Forbidden {
                name: name(),
                import: import.clone(),
                why,
            });
        }
    }
    Ok(linked)
}

/// A linker with the restricted WASI, `context`, and exactly the `granted` capabilities.
pub fn linker(
    engine: &Engine,
    granted: &BTreeSet<Capability>,
) -> wasmtime::Result<Linker<RunState>> {
    let mut linker = Linker::new(engine);
    wasi::add_to_linker(&mut linker)?;
    types::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?;
    context::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?;
    for capability in granted {
        match capability {
            Capability::Scale => scale::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?,
            Capability::Restart => {
                restart::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?
            }
            Capability::Rollback => {
                rollback::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?
            }
            Capability::LogRotation => {
                log_rotation::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?
            }
        }
    }
    Ok(linker)
}

/// Links `component` with exactly `granted`, checking that every import is satisfied.
pub fn link(
    engine: &Engine,
    name: &str,
    component: &Component,
    granted: &BTreeSet<Capability>,
) -> Result<PluginPre<RunState>, LoadError> {
    let link_error = |e: wasmtime::Error| LoadError::Link {
        name: name.to_string(),
        reason: format!("{e:#}"),
    };
    let linker = linker(engine, granted).map_err(link_error)?;
    let instance_pre = linker.instantiate_pre(component).map_err(link_error)?;
    PluginPre::new(instance_pre).map_err(link_error)
}

/// A plugin ready to run: the shared linked component plus this load's identity and limits.
pub fn loaded(
    artifact: &PluginArtifact,
    pre: Arc<PluginPre<RunState>>,
    granted: BTreeSet<Capability>,
    imports: Vec<String>,
    limits: RunLimits,
) -> LoadedPlugin {
    let manifest = artifact.manifest();
    LoadedPlugin {
        pre,
        limits,
        summary: PluginSummary {
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            digest: artifact.digest(),
            provenance: artifact.provenance().clone(),
            linked: granted,
            imports,
        },
    }
}
