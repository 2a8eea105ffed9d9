//! Reading what happened: from the loop's answer and from the audit record.

use std::fmt;

use serde_json::Value;

use super::ScenarioResult;
use blastwall::respond::Handled;
use blastwall::store::{Store, StoreError};

/// An incident's audit records, in order, with their bodies parsed.
pub(super) struct Story {
    records: Vec<(String, Value)>,
}

impl Story {
    /// Reads the records of `incident` from the chain.
    pub async fn of(store: &dyn Store, incident: &str) -> Result<Story, StoreError> {
        let records = store
            .audit()
            .incident(incident)
            .await?
            .into_iter()
            .map(|r| {
                let body = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                (r.kind, body)
            })
            .collect();
        Ok(Story { records })
    }

    /// The bodies of every record of `kind`, in order.
    pub fn all<'a, 'k>(&'a self, kind: &'k str) -> impl Iterator<Item = &'a Value> + use<'a, 'k> {
        self.records
            .iter()
            .filter(move |(k, _)| k == kind)
            .map(|(_, body)| body)
    }

    /// The last record of `kind`.
    pub fn last(&self, kind: &str) -> Option<&Value> {
        self.all(kind).last()
    }

    /// Whether any record of `kind` exists.
    pub fn has(&self, kind: &str) -> bool {
        self.all(kind).next().is_some()
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

/// An outcome in the words the table prints:
/// `execute → completed → remediated`, `refuse (cooldown) → escalated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    /// The decision.
    pub decision: String,
    /// The guardrail (or earlier stage) that refused or held.
    pub by: Option<String>,
    /// How the run ended, if one ran.
    pub outcome: Option<String>,
    /// The incident's final state.
    pub state: String,
}

impl Facts {
    /// What the scenario expects.
    pub fn expect(decision: &str, by: Option<&str>, outcome: Option<&str>, state: &str) -> Facts {
        Facts {
            decision: decision.into(),
            by: by.map(str::to_string),
            outcome: outcome.map(str::to_string),
            state: state.into(),
        }
    }

    /// What the loop answered.
    pub fn answered(handled: &Handled) -> Facts {
        Facts {
            decision: handled.decision.clone(),
            by: handled.guardrail.clone(),
            outcome: handled
                .run
                .as_ref()
                .and_then(|run| run.outcome.as_ref())
                .map(|o| o.kind().to_string()),
            state: handled.state.as_str().to_string(),
        }
    }

    /// What the audit chain recorded: the decision record, the run's end and
    /// the last state change.
    pub fn recorded(story: &Story) -> Facts {
        let missing = || "(none recorded)".to_string();
        let decision = story.last("decision").map(|d| &d["decision"]);
        Facts {
            decision: decision
                .and_then(|d| text(&d["verdict"]))
                .unwrap_or_else(missing),
            by: decision.and_then(|d| text(&d["by"])),
            outcome: story
                .last("run.finished")
                .and_then(|r| text(&r["outcome"]["kind"])),
            state: story
                .last("incident.state")
                .and_then(|s| text(&s["state"]))
                .unwrap_or_else(missing),
        }
    }
}

impl fmt::Display for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decision)?;
        if let Some(by) = &self.by {
            write!(f, " ({by})")?;
        }
        if let Some(outcome) = &self.outcome {
            write!(f, " → {outcome}")?;
        }
        write!(f, " → {}", self.state)
    }
}

/// A scenario's expectations and observations, line by line.
pub(super) struct Check {
    expected: Vec<String>,
    actual: Vec<String>,
    details: Vec<String>,
    incidents: Vec<String>,
}

impl Check {
    pub fn new() -> Check {
        Check {
            expected: Vec::new(),
            actual: Vec::new(),
            details: Vec::new(),
            incidents: Vec::new(),
        }
    }

    /// The decision, outcome and state: as answered, and cross-checked with
    /// the audit record (a disagreement shows in the actual line).
    pub fn outcome(&mut self, label: &str, expected: Facts, handled: &Handled, story: &Story) {
        let answered = Facts::answered(handled);
        let recorded = Facts::recorded(story);
        let actual = if recorded == answered {
            answered.to_string()
        } else {
            format!("{answered}, but the audit records {recorded}")
        };
        self.fact(format!("{label}{expected}"), format!("{label}{actual}"));
        self.incident(&handled.incident);
    }

    /// One more line: what should be, and what is (the same text when it matches).
    pub fn fact(&mut self, expected: impl Into<String>, actual: impl Into<String>) {
        self.expected.push(expected.into());
        self.actual.push(actual.into());
    }

    /// A property: `expected` when it holds, else `otherwise`.
    pub fn holds(&mut self, expected: &str, ok: bool, otherwise: impl FnOnce() -> String) {
        let actual = if ok {
            expected.to_string()
        } else {
            otherwise()
        };
        self.fact(expected, actual);
    }

    /// A figure for the reader, not compared.
    pub fn detail(&mut self, line: impl Into<String>) {
        self.details.push(line.into());
    }

    /// An incident the scenario opened.
    pub fn incident(&mut self, id: &str) {
        if !self.incidents.iter().any(|i| i == id) {
            self.incidents.push(id.to_string());
        }
    }

    pub fn finish(self, id: &'static str, title: &'static str) -> ScenarioResult {
        ScenarioResult {
            id,
            title,
            expected: self.expected,
            actual: self.actual,
            details: self.details,
            incidents: self.incidents,
        }
    }
}

/// Bytes as `23.9 MiB`.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n} B");
    }
    let text = format!("{value:.1}");
    format!("{} {}", text.trim_end_matches(".0"), UNITS[unit])
}

/// A count with thousands separators: `20,000,000`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_read_as_one_line() {
        let run = Facts::expect("execute", None, Some("completed"), "remediated");
        assert_eq!(run.to_string(), "execute → completed → remediated");
        let refused = Facts::expect("refuse", Some("cooldown"), None, "escalated");
        assert_eq!(refused.to_string(), "refuse (cooldown) → escalated");
    }

    #[test]
    fn facts_are_read_back_from_the_records() {
        let story = Story {
            records: vec![
                ("alert.received".into(), serde_json::json!({})),
                (
                    "decision".into(),
                    serde_json::json!({"decision": {"verdict": "refuse", "by": "rate-limit"}}),
                ),
                (
                    "incident.state".into(),
                    serde_json::json!({"state": "escalated"}),
                ),
            ],
        };
        assert_eq!(
            Facts::recorded(&story),
            Facts::expect("refuse", Some("rate-limit"), None, "escalated")
        );
        let empty = Story {
            records: Vec::new(),
        };
        assert_eq!(
            Facts::recorded(&empty).to_string(),
            "(none recorded) → (none recorded)"
        );
    }

    #[test]
    fn a_property_reads_the_same_only_when_it_holds() {
        let mut check = Check::new();
        check.holds("within the cap", true, || unreachable!());
        check.holds("no plugin ran", false, || "a plugin ran".into());
        let result = check.finish("x", "x");
        assert_eq!(result.expected, ["within the cap", "no plugin ran"]);
        assert_eq!(result.actual, ["within the cap", "a plugin ran"]);
        assert!(!result.matched());
    }

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(24 << 20), "24 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(thousands(20_000_000), "20,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
