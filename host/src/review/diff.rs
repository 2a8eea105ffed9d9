//! Escalations: every way a new version may do more than the old one.
//!
//! Deliberately conservative: any added target pattern or log set counts as a
//! wider scope, even if an old pattern already covered it, because a reviewer
//! should look at every change to what a plugin may touch.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Subject, imported_capabilities};
use crate::policy::{Capability, CapabilityScopes, TargetPattern};
use crate::sandbox::Ceilings;

/// One way the new version may do more than the old.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escalation {
    /// What kind of widening: `capability`, `scope`, `limit`, `class`, `import`, `signer`.
    pub kind: &'static str,
    /// What changed, old → new.
    pub message: String,
}

fn push(out: &mut Vec<Escalation>, kind: &'static str, message: String) {
    out.push(Escalation { kind, message });
}

fn patterns(p: Option<&Vec<TargetPattern>>) -> BTreeSet<String> {
    p.map(|p| p.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

fn targets(scopes: &CapabilityScopes, capability: Capability) -> Option<&Vec<TargetPattern>> {
    match capability {
        Capability::Scale => scopes.scale.as_ref().map(|s| &s.targets),
        Capability::Restart => scopes.restart.as_ref().map(|s| &s.targets),
        Capability::Rollback => scopes.rollback.as_ref().map(|s| &s.targets),
        Capability::LogRotation => None,
    }
}

fn step(value: Option<u32>) -> String {
    value.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

/// A larger step: `None` (unlimited) is the largest.
fn step_grew(old: Option<u32>, new: Option<u32>) -> bool {
    match (old, new) {
        (Some(_), None) => true,
        (Some(o), Some(n)) => n > o,
        (None, _) => false,
    }
}

fn scale_escalations(old: &CapabilityScopes, new: &CapabilityScopes, out: &mut Vec<Escalation>) {
    let (Some(o), Some(n)) = (&old.scale, &new.scale) else {
        return;
    };
    if n.max_replicas > o.max_replicas {
        push(
            out,
            "scope",
            format!(
                "scale: max-replicas {} → {}",
                o.max_replicas, n.max_replicas
            ),
        );
    }
    if n.min_replicas < o.min_replicas {
        push(
            out,
            "scope",
            format!(
                "scale: min-replicas {} → {}",
                o.min_replicas, n.min_replicas
            ),
        );
    }
    if step_grew(o.max_step_up, n.max_step_up) {
        push(
            out,
            "scope",
            format!(
                "scale: max-step-up {} → {}",
                step(o.max_step_up),
                step(n.max_step_up)
            ),
        );
    }
    if step_grew(o.max_step_down, n.max_step_down) {
        push(
            out,
            "scope",
            format!(
                "scale: max-step-down {} → {}",
                step(o.max_step_down),
                step(n.max_step_down)
            ),
        );
    }
}

/// Every escalation from `old` to `new`.
pub(super) fn escalations(old: &Subject, new: &Subject, ceilings: &Ceilings) -> Vec<Escalation> {
    let mut out = Vec::new();
    let (o, n) = (&old.manifest.capabilities, &new.manifest.capabilities);
    for capability in n.capabilities().difference(&o.capabilities()) {
        push(
            &mut out,
            "capability",
            format!("new capability: {capability}"),
        );
    }
    for capability in [Capability::Scale, Capability::Restart, Capability::Rollback] {
        if targets(o, capability).is_none() {
            continue;
        }
        let added: Vec<String> = patterns(targets(n, capability))
            .difference(&patterns(targets(o, capability)))
            .cloned()
            .collect();
        if !added.is_empty() {
            push(
                &mut out,
                "scope",
                format!("{capability}: new targets {}", added.join(", ")),
            );
        }
    }
    scale_escalations(o, n, &mut out);
    if let (Some(old_sets), Some(new_sets)) = (&o.log_rotation, &n.log_rotation) {
        let added: Vec<&String> = new_sets.log_sets.difference(&old_sets.log_sets).collect();
        if !added.is_empty() {
            let added: Vec<&str> = added.iter().map(|s| s.as_str()).collect();
            push(
                &mut out,
                "scope",
                format!("log-rotation: new log sets {}", added.join(", ")),
            );
        }
    }
    let (ol, nl) = (
        ceilings.limits_for(&old.manifest.limits),
        ceilings.limits_for(&new.manifest.limits),
    );
    if nl.fuel > ol.fuel {
        push(&mut out, "limit", format!("fuel {} → {}", ol.fuel, nl.fuel));
    }
    if nl.memory_bytes > ol.memory_bytes {
        push(
            &mut out,
            "limit",
            format!(
                "memory {} MiB → {} MiB",
                ol.memory_bytes >> 20,
                nl.memory_bytes >> 20
            ),
        );
    }
    if nl.timeout > ol.timeout {
        push(
            &mut out,
            "limit",
            format!(
                "timeout {} ms → {} ms",
                ol.timeout.as_millis(),
                nl.timeout.as_millis()
            ),
        );
    }
    if nl.max_actions > ol.max_actions {
        push(
            &mut out,
            "limit",
            format!("max-actions {} → {}", ol.max_actions, nl.max_actions),
        );
    }
    let old_classes: BTreeSet<&String> = old.manifest.classes.iter().collect();
    for class in new
        .manifest
        .classes
        .iter()
        .filter(|c| !old_classes.contains(c))
    {
        push(&mut out, "class", format!("new failure class: {class}"));
    }
    let old_imports: BTreeSet<&String> = old
        .imports
        .capabilities
        .iter()
        .chain(&old.imports.wasi)
        .chain(&old.imports.other)
        .collect();
    for import in new
        .imports
        .capabilities
        .iter()
        .chain(&new.imports.wasi)
        .chain(&new.imports.other)
        .filter(|i| !old_imports.contains(i))
    {
        push(&mut out, "import", format!("new import: {import}"));
    }
    let newly_called = imported_capabilities(&new.imports)
        .difference(&imported_capabilities(&old.imports))
        .count();
    if newly_called > 0 && out.iter().all(|e| e.kind != "import") {
        push(
            &mut out,
            "import",
            "the code calls capabilities it did not call before".into(),
        );
    }
    if old.signer.key_id != new.signer.key_id {
        push(
            &mut out,
            "signer",
            format!(
                "signed by {} (was {})",
                new.signer.key_id.as_deref().unwrap_or("nobody"),
                old.signer.key_id.as_deref().unwrap_or("nobody")
            ),
        );
    }
    out
}
