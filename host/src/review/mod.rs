//! Capability review: what a plugin may do, what its code actually imports,
//! and what changed since the last version, for a human to approve.
//!
//! Nothing here executes or compiles the plugin. Imports are read from the
//! component's top-level import section with `wasmparser`; the manifest and
//! signer come from the signed file (checked against a trust store if one is
//! given). `blastwall review --against OLD.wasm --fail-on-escalation` turns the
//! escalation list into a CI gate.

mod diff;
mod render;

use std::collections::BTreeSet;

use serde::Serialize;

pub use diff::Escalation;
pub use render::{Format, render};

use crate::manifest::Manifest;
use crate::policy::{Capability, CapabilityScopes};
use crate::sandbox::{Ceilings, RunLimits};
use crate::signature::{self, Digest, Provenance, TrustStore, VerifyError};

const PACKAGE: &str = "blastwall:remediation/";
const ALWAYS_AVAILABLE: [&str; 2] = ["types", "context"];

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Worth knowing.
    Info,
    /// Needs a reviewer's attention.
    Warning,
    /// The plugin will not load, or must not be approved as is.
    Error,
}

/// One observation about a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious it is.
    pub level: Level,
    /// What was found.
    pub message: String,
}

/// Who signed the plugin, and whether the host would trust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignerInfo {
    /// The signing key's id, if signed.
    pub key_id: Option<String>,
    /// The signer's name in the trust store, if known.
    pub name: Option<String>,
    /// The signer's tier, if known.
    pub tier: Option<String>,
    /// `trusted`, `not checked` (no trust store given), or why verification failed.
    pub status: String,
}

/// The component's imports, grouped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Imports {
    /// Capability interfaces (`blastwall:remediation/scale@0.1.0`, ...).
    pub capabilities: Vec<String>,
    /// Always-available blastwall interfaces (`types`, `context`).
    pub context: Vec<String>,
    /// WASI interfaces.
    pub wasi: Vec<String>,
    /// Anything else (refused at load time).
    pub other: Vec<String>,
}

/// An overall risk level with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    /// `low`, `medium` or `high`.
    pub level: &'static str,
    /// Why, most important first.
    pub reasons: Vec<String>,
}

/// The whole review of one plugin (and, with `--against`, of its change).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    /// Name from the manifest.
    pub name: String,
    /// Version from the manifest.
    pub version: String,
    /// Description from the manifest.
    pub description: String,
    /// SHA-256 of the component.
    pub digest: Digest,
    /// Who signed it.
    pub signer: SignerInfo,
    /// Failure classes it remediates.
    pub classes: Vec<String>,
    /// Declared capabilities and scopes.
    pub capabilities: CapabilityScopes,
    /// The limits a run gets on a host with default ceilings.
    pub limits: RunLimits,
    /// What the code imports.
    pub imports: Imports,
    /// Mismatches and other observations.
    pub findings: Vec<Finding>,
    /// The overall risk.
    pub risk: Risk,
    /// Changes that widen what the plugin may do, when compared with an older version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalations: Option<Vec<Escalation>>,
    /// The version compared against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
}

/// Why a file could not be reviewed at all.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The file is malformed or carries no manifest.
    #[error("{origin}: {reason}")]
    Unreadable {
        /// Which file.
        origin: String,
        /// Why.
        reason: String,
    },
}

/// Reads the top-level import names of a component without compiling it.
pub fn component_imports(component: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.map_err(|e| format!("not a valid component: {e}"))? {
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| format!("unreadable import: {e}"))?;
                    // Type imports (a world's `use`) carry no behaviour; hosts never provide them.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        names.push(import.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

fn group(imports: &[String]) -> Imports {
    let mut grouped = Imports::default();
    for import in imports {
        let name = import.clone();
        if let Some(rest) = import.strip_prefix(PACKAGE) {
            let interface = rest.split('@').next().unwrap_or(rest);
            if ALWAYS_AVAILABLE.contains(&interface) {
                grouped.context.push(name);
            } else {
                grouped.capabilities.push(name);
            }
        } else if import.starts_with("wasi:") {
            grouped.wasi.push(name);
        } else {
            grouped.other.push(name);
        }
    }
    grouped
}

fn imported_capabilities(imports: &Imports) -> BTreeSet<Capability> {
    imports
        .capabilities
        .iter()
        .filter_map(|i| {
            let rest = i.strip_prefix(PACKAGE)?;
            Capability::from_interface(rest.split('@').next().unwrap_or(rest))
        })
        .collect()
}

/// The parts of a file a review needs, read without trusting them.
struct Subject {
    manifest: Manifest,
    component: Vec<u8>,
    imports: Imports,
    signer: SignerInfo,
    findings: Vec<Finding>,
}

fn read_subject(
    bytes: &[u8],
    origin: &str,
    trust: Option<&TrustStore>,
) -> Result<Subject, ReviewError> {
    let unreadable = |reason: String| ReviewError::Unreadable {
        origin: origin.to_string(),
        reason,
    };
    let claims = signature::claims(bytes).map_err(|e| unreadable(e.to_string()))?;
    let text = claims.manifest_text.ok_or_else(|| {
        unreadable("carries no manifest; sign it with `blastwall plugin sign` first".into())
    })?;
    let manifest = Manifest::from_toml(text, origin).map_err(|e| unreadable(e.to_string()))?;
    let imports = group(&component_imports(claims.component).map_err(unreadable)?);
    let mut findings = Vec::new();
    let key_id = claims.record.as_ref().map(|r| r.key_id.to_string());
    let signer = match (trust, &claims.record) {
        (_, None) => {
            findings.push(Finding {
                level: Level::Error,
                message: "unsigned: no host will run it without --insecure-unsigned".into(),
            });
            SignerInfo {
                key_id,
                name: None,
                tier: None,
                status: "unsigned".into(),
            }
        }
        (None, Some(_)) => SignerInfo {
            key_id,
            name: None,
            tier: None,
            status: "not checked (no trust store given)".into(),
        },
        (Some(trust), Some(_)) => match signature::verify(bytes, trust) {
            Ok(artifact) => match artifact.provenance() {
                Provenance::Signed { signer, tier, .. } => SignerInfo {
                    key_id,
                    name: Some(signer.clone()),
                    tier: Some(tier.to_string()),
                    status: "trusted".into(),
                },
                Provenance::InsecureUnsigned | Provenance::BuiltIn => {
                    unreachable!("verify only yields signed artifacts")
                }
            },
            Err(error) => {
                findings.push(Finding {
                    level: Level::Error,
                    message: format!("signature: {error}"),
                });
                let entry = claims.record.as_ref().and_then(|r| trust.get(&r.key_id));
                SignerInfo {
                    key_id,
                    name: entry.map(|e| e.name.clone()),
                    tier: entry.map(|e| e.tier.to_string()),
                    status: short_reason(&error),
                }
            }
        },
    };
    Ok(Subject {
        manifest,
        component: claims.component.to_vec(),
        imports,
        signer,
        findings,
    })
}

fn short_reason(error: &VerifyError) -> String {
    error
        .to_string()
        .split(':')
        .next()
        .unwrap_or("invalid")
        .to_string()
}

fn mismatch_findings(subject: &Subject) -> Vec<Finding> {
    let mut findings = Vec::new();
    let declared = subject.manifest.capabilities.capabilities();
    let imported = imported_capabilities(&subject.imports);
    for capability in imported.difference(&declared) {
        findings.push(Finding {
            level: Level::Error,
            message: format!("imports the {capability} capability but does not declare it: the host will refuse to load it"),
        });
    }
    for capability in declared.difference(&imported) {
        findings.push(Finding {
            level: Level::Warning,
            message: format!("declares the {capability} capability but its code never calls it: drop it from the manifest"),
        });
    }
    for import in &subject.imports.other {
        findings.push(Finding {
            level: Level::Error,
            message: format!(
                "imports {import}, which no host provides: the host will refuse to load it"
            ),
        });
    }
    for import in subject.imports.wasi.iter().filter(|i| {
        !crate::sandbox::ALLOWED_WASI
            .iter()
            .any(|p| i.starts_with(p))
    }) {
        findings.push(Finding {
            level: Level::Error,
            message: format!(
                "imports {import}: plugins get no network or other WASI beyond the restricted set"
            ),
        });
    }
    if subject
        .imports
        .wasi
        .iter()
        .any(|i| i.starts_with("wasi:filesystem/"))
    {
        findings.push(Finding {
            level: Level::Info,
            message: "imports wasi:filesystem; no directory is ever opened to plugins, so every file access fails".into(),
        });
    }
    findings
}

fn wide(patterns: &[crate::policy::TargetPattern]) -> bool {
    patterns
        .iter()
        .any(|p| p.to_string().split('/').nth(1) == Some("*"))
}

fn risk(subject: &Subject, limits: &RunLimits, ceilings: &Ceilings) -> Risk {
    let caps = &subject.manifest.capabilities;
    let mut high = Vec::new();
    let mut medium = Vec::new();
    if subject.signer.key_id.is_none() {
        high.push("unsigned".to_string());
    }
    if let Some(rollback) = &caps.rollback {
        high.push(format!(
            "rollback can change what code runs on {}",
            rollback
                .targets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(scale) = &caps.scale {
        if scale.max_step_up.is_none() || scale.max_replicas > 50 {
            high.push(format!(
                "scale up to {} replicas{}",
                scale.max_replicas,
                if scale.max_step_up.is_none() {
                    " in a single step"
                } else {
                    ""
                }
            ));
        } else {
            medium.push(format!(
                "scale between {} and {} replicas",
                scale.min_replicas, scale.max_replicas
            ));
        }
        if scale.min_replicas == 0 {
            high.push("may scale to zero replicas (an outage)".into());
        }
    }
    if caps.restart.is_some() {
        medium.push("restart causes a rolling restart".into());
    }
    for (name, patterns) in [
        ("scale", caps.scale.as_ref().map(|s| &s.targets)),
        ("restart", caps.restart.as_ref().map(|s| &s.targets)),
        ("rollback", caps.rollback.as_ref().map(|s| &s.targets)),
    ] {
        if patterns.is_some_and(|p| wide(p)) {
            medium.push(format!("{name} targets every namespace"));
        }
    }
    if limits.max_actions > 3 {
        medium.push(format!(
            "up to {} mutating calls per run",
            limits.max_actions
        ));
    }
    if limits.fuel >= ceilings.max_fuel
        || limits.timeout.as_millis() >= u128::from(ceilings.max_timeout_ms)
    {
        medium.push("asks for the host's maximum fuel or time".into());
    }
    let level = if !high.is_empty() {
        "high"
    } else if !medium.is_empty() {
        "medium"
    } else {
        "low"
    };
    let mut reasons = high;
    reasons.extend(medium);
    if reasons.is_empty() {
        reasons.push("read-only or log rotation only".into());
    }
    Risk { level, reasons }
}

/// Reviews `bytes` (named `origin` in messages), optionally against an older version.
pub fn review(
    bytes: &[u8],
    origin: &str,
    against: Option<(&[u8], &str)>,
    trust: Option<&TrustStore>,
) -> Result<Review, ReviewError> {
    let subject = read_subject(bytes, origin, trust)?;
    let ceilings = Ceilings::default();
    let limits = ceilings.limits_for(&subject.manifest.limits);
    let mut findings = subject.findings.clone();
    findings.extend(mismatch_findings(&subject));
    let risk = risk(&subject, &limits, &ceilings);
    let (escalations, against_version) = match against {
        Some((old_bytes, old_origin)) => {
            let old = read_subject(old_bytes, old_origin, trust)?;
            let escalations = diff::escalations(&old, &subject, &ceilings);
            if old.manifest.version >= subject.manifest.version {
                findings.push(Finding {
                    level: Level::Warning,
                    message: format!(
                        "version {} does not increase on {}: a registry could be serving an older build",
                        subject.manifest.version, old.manifest.version
                    ),
                });
            }
            (Some(escalations), Some(old.manifest.version.to_string()))
        }
        None => (None, None),
    };
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    Ok(Review {
        name: subject.manifest.name.clone(),
        version: subject.manifest.version.to_string(),
        description: subject.manifest.description.clone(),
        digest: Digest::of(&subject.component),
        signer: subject.signer,
        classes: subject.manifest.classes.clone(),
        capabilities: subject.manifest.capabilities.clone(),
        limits,
        imports: subject.imports,
        findings,
        risk,
        escalations,
        against: against_version,
    })
}

#[cfg(test)]
mod tests;
