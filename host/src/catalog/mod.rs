//! The catalog: which signed plugin handles which failure class, and how.
//!
//! Operators map each class to one plugin version (by name and version, or by
//! digest) with its parameters and the per-class guardrail settings. Pinning
//! a version is the operator's consent to that version's reviewed manifest,
//! so an entry without a `grant` table grants what the manifest declares;
//! a `grant` table narrows it further. Either way the grant is confined to the
//! incident's own target unless `widen-to` names more. Classes nobody mapped
//! are escalated. The catalog is validated against the loaded plugins when
//! the host starts, with an error naming the class and the problem.
//!
//! ```toml
//! [catalog.oom-killed]
//! plugin = "restart-on-oom@0.1.0"      # or "sha256:<digest of the component>"
//! params = { grace-seconds = "30" }
//! confidence-floor = 0.8
//! mode = "auto"                        # auto | approve | notify | shadow (default)
//! max-attempts = 2
//! cooldown = "10m"
//! rate-limit-per-hour = 6
//! verify = { kind = "promql", query = "...", expect = "< 0.05", window = "5m", interval = "15s" }
//! rollback = "rollback-bad-deploy@0.1.0" # run if verification fails
//! model-may-trigger = false            # a model's label alone waits for approval
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::guardrails::{EntryRules, Mode};
use crate::policy::{Capability, CapabilityScopes, Policy, TargetPattern};
use crate::signature::PluginArtifact;
use crate::verify::VerificationSpec;

/// Whether `class` is a well-formed class name: lowercase letters, digits and `-`.
pub fn valid_class(class: &str) -> bool {
    !class.is_empty()
        && class.len() <= 64
        && class
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Which plugin version: `name@version` or `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PluginRef {
    /// A name and an exact version.
    Version {
        /// The manifest's name.
        name: String,
        /// The manifest's version.
        version: semver::Version,
    },
    /// The SHA-256 of the component, as `sha256:<64 hex>`.
    Digest(String),
}

impl FromStr for PluginRef {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        if let Some(hex) = raw.strip_prefix("sha256:") {
            if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Ok(PluginRef::Digest(raw.to_ascii_lowercase()));
            }
            return Err(format!(
                "plugin {raw:?}: a digest is sha256: and 64 hex digits"
            ));
        }
        let Some((name, version)) = raw.split_once('@') else {
            return Err(format!(
                "plugin {raw:?} must be pinned: name@version (e.g. restart-on-oom@0.1.0) or sha256:<digest>"
            ));
        };
        let version = version
            .parse()
            .map_err(|e| format!("plugin {raw:?}: version {version:?} is not semver: {e}"))?;
        Ok(PluginRef::Version {
            name: name.to_string(),
            version,
        })
    }
}

impl TryFrom<String> for PluginRef {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        raw.parse()
    }
}

impl From<PluginRef> for String {
    fn from(r: PluginRef) -> String {
        r.to_string()
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRef::Version { name, version } => write!(f, "{name}@{version}"),
            PluginRef::Digest(digest) => f.write_str(digest),
        }
    }
}

impl PluginRef {
    /// Whether `artifact` is the version this reference pins.
    pub fn matches(&self, artifact: &PluginArtifact) -> bool {
        match self {
            PluginRef::Version { name, version } => {
                let m = artifact.manifest();
                &m.name == name && &m.version == version
            }
            PluginRef::Digest(digest) => artifact.digest().to_string() == *digest,
        }
    }
}

/// One class's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CatalogEntry {
    /// The plugin version that handles the class.
    pub plugin: PluginRef,
    /// Parameters passed to the plugin in the incident.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Below this confidence the host escalates instead. Default `0.8`.
    #[serde(default = "default_floor")]
    pub confidence_floor: f32,
    /// `auto`, `approve`, `notify` or `shadow`. Default `shadow`.
    #[serde(default)]
    pub mode: Mode,
    /// Runs per incident. Default `2`.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Quiet time per (target, plugin) after a run starts. Default `10m`.
    #[serde(default = "default_cooldown", with = "crate::duration")]
    pub cooldown: Duration,
    /// Runs per target per hour. Default `6`.
    #[serde(default = "default_rate")]
    pub rate_limit_per_hour: u32,
    /// How to tell whether a live run worked. None: a completed run counts as remediated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerificationSpec>,
    /// A plugin to run when verification fails (it needs the rollback capability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<PluginRef>,
    /// Narrows the manifest's declaration further. Default: what the manifest declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<CapabilityScopes>,
    /// Targets beyond the incident's own the plugin may act on. Default: none.
    /// Only with mode `approve` or `shadow`: the blast-radius budget and the
    /// one-at-a-time claim count a run as one target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub widen_to: Vec<TargetPattern>,
    /// Whether the model classifier's answer alone may start an `auto` run.
    /// Default `false`: a model-classified incident of an `auto` class waits
    /// for a human's approval, whatever the alert's text says.
    #[serde(default)]
    pub model_may_trigger: bool,
}

fn default_floor() -> f32 {
    0.8
}
fn default_attempts() -> u32 {
    2
}
fn default_cooldown() -> Duration {
    Duration::from_secs(600)
}
fn default_rate() -> u32 {
    6
}

impl CatalogEntry {
    /// The guardrail settings of this entry.
    pub fn rules(&self) -> EntryRules {
        EntryRules {
            confidence_floor: self.confidence_floor,
            mode: self.mode,
            max_attempts: self.max_attempts,
            cooldown: self.cooldown,
            rate_limit_per_hour: self.rate_limit_per_hour,
        }
    }

    /// The entry's layer of the grant intersection.
    pub fn policy(&self) -> Policy {
        Policy {
            confine_to_incident_target: true,
            grant: self.grant.clone(),
            widen_to: self.widen_to.clone(),
        }
    }
}

/// A class resolved to the loaded plugins that serve it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The entry.
    pub entry: CatalogEntry,
    /// The plugin.
    pub plugin: Arc<PluginArtifact>,
    /// The rollback plugin, if any.
    pub rollback: Option<Arc<PluginArtifact>>,
}

/// The catalog, validated against the loaded plugins.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    classes: BTreeMap<String, Resolved>,
}

fn find(
    class: &str,
    reference: &PluginRef,
    plugins: &[Arc<PluginArtifact>],
    role: &str,
) -> Result<Arc<PluginArtifact>, String> {
    plugins
        .iter()
        .find(|p| reference.matches(p))
        .cloned()
        .ok_or_else(|| {
            let loaded: Vec<String> = plugins
                .iter()
                .map(|p| format!("{}@{}", p.manifest().name, p.manifest().version))
                .collect();
            format!(
                "catalog class {class}: {role} {reference} is not loaded (loaded: {})",
                if loaded.is_empty() {
                    "none".to_string()
                } else {
                    loaded.join(", ")
                }
            )
        })
}

impl Catalog {
    /// Validates `entries` and pins each class to a loaded plugin.
    pub fn resolve(
        entries: &BTreeMap<String, CatalogEntry>,
        plugins: &[Arc<PluginArtifact>],
    ) -> Result<Self, String> {
        let mut classes = BTreeMap::new();
        for (class, entry) in entries {
            let fail = |message: String| format!("catalog class {class}: {message}");
            if !valid_class(class) {
                return Err(format!(
                    "catalog class {class:?}: a class is lowercase letters, digits and '-'"
                ));
            }
            if !(0.0..=1.0).contains(&entry.confidence_floor) {
                return Err(fail(format!(
                    "confidence-floor {} is not between 0 and 1",
                    entry.confidence_floor
                )));
            }
            if !(1..=100).contains(&entry.max_attempts) {
                return Err(fail(format!(
                    "max-attempts {} is not between 1 and 100",
                    entry.max_attempts
                )));
            }
            if entry.rate_limit_per_hour == 0 {
                return Err(fail(
                    "rate-limit-per-hour 0 would never act; use mode = \"notify\" instead".into(),
                ));
            }
            if !entry.widen_to.is_empty() && entry.mode == Mode::Auto {
                return Err(fail(
                    "widen-to needs mode \"approve\" or \"shadow\": an automatic run is budgeted as one target".into(),
                ));
            }
            if let Some(verify) = &entry.verify {
                verify
                    .validate()
                    .map_err(|e| fail(format!("verify: {e}")))?;
            }
            if let Some(grant) = &entry.grant {
                grant.validate().map_err(|e| fail(format!("grant: {e}")))?;
            }
            let plugin = find(class, &entry.plugin, plugins, "plugin")?;
            let handles = &plugin.manifest().classes;
            if !handles.iter().any(|c| c == class) {
                return Err(fail(format!(
                    "plugin {} declares classes [{}], not {class}",
                    entry.plugin,
                    handles.join(", ")
                )));
            }
            let rollback = match &entry.rollback {
                Some(reference) => {
                    let rollback = find(class, reference, plugins, "rollback plugin")?;
                    if !rollback
                        .manifest()
                        .capabilities
                        .capabilities()
                        .contains(&Capability::Rollback)
                    {
                        return Err(fail(format!(
                            "rollback plugin {reference} does not declare the rollback capability"
                        )));
                    }
                    if entry.verify.is_none() {
                        return Err(fail(
                            "rollback runs when verification fails, so it needs verify".into(),
                        ));
                    }
                    Some(rollback)
                }
                None => None,
            };
            classes.insert(
                class.clone(),
                Resolved {
                    entry: entry.clone(),
                    plugin,
                    rollback,
                },
            );
        }
        Ok(Catalog { classes })
    }

    /// The entry for `class`, if mapped.
    pub fn get(&self, class: &str) -> Option<&Resolved> {
        self.classes.get(class)
    }

    /// The mapped classes: the closed label set for classification.
    pub fn classes(&self) -> Vec<&str> {
        self.classes.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests;
