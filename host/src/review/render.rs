//! Renders a review as text (terminals), markdown (pull requests) or JSON (tools).

use std::fmt::Write as _;

use super::{Level, Review};
use crate::policy::CapabilityScopes;

/// Output format of `blastwall review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal.
    Text,
    /// For a pull-request comment.
    Markdown,
    /// For tools.
    Json,
}

fn capability_lines(caps: &CapabilityScopes) -> Vec<(String, String)> {
    let list = |p: &[crate::policy::TargetPattern]| {
        p.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = Vec::new();
    if let Some(s) = &caps.scale {
        lines.push((
            "scale".into(),
            format!(
                "{} · {}–{} replicas · step up {} · step down {}",
                list(&s.targets),
                s.min_replicas,
                s.max_replicas,
                s.max_step_up.map_or("unlimited".into(), |v| v.to_string()),
                s.max_step_down
                    .map_or("unlimited".into(), |v| v.to_string())
            ),
        ));
    }
    if let Some(s) = &caps.restart {
        lines.push(("restart".into(), list(&s.targets)));
    }
    if let Some(s) = &caps.rollback {
        lines.push(("rollback".into(), list(&s.targets)));
    }
    if let Some(s) = &caps.log_rotation {
        lines.push((
            "log-rotation".into(),
            format!(
                "log sets {}",
                s.log_sets.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if lines.is_empty() {
        lines.push(("(none)".into(), "read-only".into()));
    }
    lines
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Error => "ERROR",
        Level::Warning => "warning",
        Level::Info => "info",
    }
}

fn limits_line(r: &Review) -> String {
    format!(
        "fuel {} · memory {} MiB · timeout {} ms · max-actions {}",
        r.limits.fuel,
        r.limits.memory_bytes >> 20,
        r.limits.timeout.as_millis(),
        r.limits.max_actions
    )
}

fn signer_line(r: &Review) -> String {
    format!(
        "{} · key {} · tier {} · {}",
        r.signer.name.as_deref().unwrap_or("unknown signer"),
        r.signer.key_id.as_deref().unwrap_or("none"),
        r.signer.tier.as_deref().unwrap_or("unknown"),
        r.signer.status
    )
}

fn text(r: &Review) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} — {}", r.name, r.version, r.description);
    let _ = writeln!(out, "digest:  {}", r.digest);
    let _ = writeln!(out, "signer:  {}", signer_line(r));
    let _ = writeln!(out, "classes: {}", r.classes.join(", "));
    let _ = writeln!(
        out,
        "risk:    {} ({})",
        r.risk.level.to_uppercase(),
        r.risk.reasons.join("; ")
    );
    let _ = writeln!(out, "\ndeclared capabilities:");
    for (name, scope) in capability_lines(&r.capabilities) {
        let _ = writeln!(out, "  {name:<13} {scope}");
    }
    let _ = writeln!(out, "limits:    {}", limits_line(r));
    let _ = writeln!(out, "\nimports:");
    for i in r.imports.capabilities.iter().chain(&r.imports.context) {
        let _ = writeln!(out, "  {i}");
    }
    let _ = writeln!(
        out,
        "  WASI: {}",
        if r.imports.wasi.is_empty() {
            "none".to_string()
        } else {
            r.imports.wasi.join(", ")
        }
    );
    for i in &r.imports.other {
        let _ = writeln!(out, "  other: {i}");
    }
    if !r.findings.is_empty() {
        let _ = writeln!(out, "\nfindings:");
        for f in &r.findings {
            let _ = writeln!(out, "  {:<7} {}", level(f.level), f.message);
        }
    }
    if let Some(escalations) = &r.escalations {
        let against = r.against.as_deref().unwrap_or("?");
        if escalations.is_empty() {
            let _ = writeln!(out, "\nno escalation since {against}");
        } else {
            let _ = writeln!(out, "\nESCALATIONS since {against}:");
            for e in escalations {
                let _ = writeln!(out, "  !! [{}] {}", e.kind, e.message);
            }
        }
    }
    out
}

fn markdown(r: &Review) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Plugin review: `{}` {}\n", r.name, r.version);
    let _ = writeln!(out, "> {}\n", r.description);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| Risk | **{}** — {} |",
        r.risk.level,
        r.risk.reasons.join("; ")
    );
    let _ = writeln!(out, "| Signer | {} |", signer_line(r));
    let _ = writeln!(out, "| Digest | `{}` |", r.digest);
    let _ = writeln!(out, "| Classes | {} |", r.classes.join(", "));
    let _ = writeln!(out, "| Limits | {} |", limits_line(r));
    if let Some(escalations) = &r.escalations {
        let against = r.against.as_deref().unwrap_or("?");
        if escalations.is_empty() {
            let _ = writeln!(out, "\n✅ No escalation since {against}.");
        } else {
            let _ = writeln!(out, "\n#### ⚠️ Escalations since {against}\n");
            for e in escalations {
                let _ = writeln!(out, "- **{}**: {}", e.kind, e.message);
            }
        }
    }
    let _ = writeln!(
        out,
        "\n#### Declared capabilities\n\n| Capability | Scope |\n|---|---|"
    );
    for (name, scope) in capability_lines(&r.capabilities) {
        let _ = writeln!(out, "| `{name}` | {scope} |");
    }
    let _ = writeln!(out, "\n#### What the code imports\n");
    for i in r
        .imports
        .capabilities
        .iter()
        .chain(&r.imports.context)
        .chain(&r.imports.other)
    {
        let _ = writeln!(out, "- `{i}`");
    }
    let _ = writeln!(
        out,
        "- WASI: {}",
        if r.imports.wasi.is_empty() {
            "none".to_string()
        } else {
            r.imports
                .wasi
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if !r.findings.is_empty() {
        let _ = writeln!(out, "\n#### Findings\n");
        for f in &r.findings {
            let _ = writeln!(out, "- **{}**: {}", level(f.level), f.message);
        }
    }
    out
}

/// Renders `review` in `format`.
pub fn render(review: &Review, format: Format) -> String {
    match format {
        // A manifest's description, names and findings are the publisher's
        // words: shown with deceptive characters escaped.
        Format::Text => crate::text::visible_lines(&text(review)).into_owned(),
        Format::Markdown => crate::text::visible_lines(&markdown(review)).into_owned(),
        Format::Json => {
            crate::text::to_json_pretty(review).expect("a review always serializes") + "\n"
        }
    }
}
