//! Judging query results against an expectation, with a detail a human can act on.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::spec::{Comparison, Expectation, OnEmpty, format_value};

/// Upper bound on one series' rendering in a detail. Label values come from
/// whatever is scraped, so they are bounded before they reach the audit log.
const MAX_SERIES_CHARS: usize = 256;

/// One sample of an instant query: a series' labels and its value now.
/// A scalar result is one sample without labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// The series' labels, including `__name__` when the query kept it.
    pub labels: BTreeMap<String, String>,
    /// The value; may be NaN or infinite.
    pub value: f64,
}

/// The verdict on one evaluation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    /// Whether the condition held.
    pub passed: bool,
    /// What was seen, e.g. `2 series, all < 0.05 (max 0.01)`.
    pub detail: String,
}

/// Judges `samples` against `expect`: every sample must satisfy it (NaN never
/// does), and an empty result is judged by `on_empty`. A failure names the
/// series furthest from the threshold, because that is the one to look at.
pub fn judge(expect: &Expectation, on_empty: OnEmpty, samples: &[Sample]) -> Judgement {
    if samples.is_empty() {
        let passed = on_empty == OnEmpty::Pass;
        let detail = if passed {
            "no series returned (on-empty = pass)".to_string()
        } else {
            format!("no series returned, expected {expect} (on-empty = fail)")
        };
        return Judgement { passed, detail };
    }
    let failing: Vec<&Sample> = samples.iter().filter(|s| !expect.holds(s.value)).collect();
    if let Some(worst) = furthest(expect, &failing) {
        let mut detail = format!(
            "{} = {}, expected {expect}",
            series(&worst.labels),
            format_value(worst.value)
        );
        if samples.len() > 1 {
            let _ = write!(
                detail,
                " ({} of {} series fail)",
                failing.len(),
                samples.len()
            );
        }
        return Judgement {
            passed: false,
            detail,
        };
    }
    let values = samples.iter().map(|s| s.value);
    let extreme = match expect.op {
        Comparison::Lt | Comparison::Le => Some(("max", values.fold(f64::MIN, f64::max))),
        Comparison::Gt | Comparison::Ge => Some(("min", values.fold(f64::MAX, f64::min))),
        Comparison::Eq | Comparison::Ne => None,
    };
    let mut detail = format!("{} series, all {expect}", samples.len());
    if let Some((name, value)) = extreme {
        let _ = write!(detail, " ({name} {})", format_value(value));
    }
    Judgement {
        passed: true,
        detail,
    }
}

/// The failing sample furthest from the threshold; NaN counts as furthest.
fn furthest<'a>(expect: &Expectation, failing: &[&'a Sample]) -> Option<&'a Sample> {
    let distance = |s: &Sample| {
        if s.value.is_nan() {
            f64::INFINITY
        } else {
            (s.value - expect.value).abs()
        }
    };
    failing.iter().copied().reduce(|worst, s| {
        if distance(s) > distance(worst) {
            s
        } else {
            worst
        }
    })
}

/// Renders a series as Prometheus does: `name{label="value", ...}`, bounded.
pub fn series(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let mut out = name.to_string();
    let rest: Vec<_> = labels.iter().filter(|(k, _)| *k != "__name__").collect();
    if !rest.is_empty() || name.is_empty() {
        out.push('{');
        for (i, (key, value)) in rest.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    if out.chars().count() > MAX_SERIES_CHARS {
        out = out.chars().take(MAX_SERIES_CHARS - 1).collect();
        out.push('…');
    }
    out
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
