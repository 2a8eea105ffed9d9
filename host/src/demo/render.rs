//! The demo's output: a table for people, JSON for programs, and a progress
//! line on stderr while it runs.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde::Serialize;

use super::{Report, ScenarioResult};

/// Hears of each scenario as it starts.
pub trait Progress {
    /// Scenario `n` of `total` starts.
    fn step(&mut self, n: usize, total: usize, title: &str);
    /// Every scenario has run.
    fn done(&mut self);
}

/// A progress line on stderr: rewritten in place on a terminal, one line per
/// scenario otherwise.
pub struct StderrProgress {
    terminal: bool,
    started: Instant,
    total: usize,
}

impl StderrProgress {
    /// Starts the clock.
    pub fn new() -> Self {
        StderrProgress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            total: 0,
        }
    }
}

impl Default for StderrProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for StderrProgress {
    fn step(&mut self, n: usize, total: usize, title: &str) {
        self.total = total;
        let mut err = std::io::stderr().lock();
        let line = format!("[{n}/{total}] {title} …");
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    fn done(&mut self) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(
            err,
            "ran {} scenarios in {:.1} s",
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }
}

const EXPECTED_WIDTH: usize = 38;
const ACTUAL_WIDTH: usize = 38;

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Splits `text` into lines of at most `max` characters, at spaces where it can.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        while width(&word) > max {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(max).collect();
            word = word.chars().skip(max).collect();
            lines.push(head);
        }
        if !line.is_empty() && width(&line) + 1 + width(&word) > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn pad(text: &str, to: usize) -> String {
    let mut padded = text.to_string();
    padded.extend(std::iter::repeat_n(' ', to.saturating_sub(width(text))));
    padded
}

fn mark(result: &ScenarioResult) -> &'static str {
    if result.matched() { "✓" } else { "✗" }
}

/// The report as a table: one block per scenario, expected and actual side
/// by side, fact by fact, then the verdict and the audit chain.
pub fn table(report: &Report) -> String {
    let title_width = report
        .scenarios
        .iter()
        .map(|s| width(s.title))
        .max()
        .unwrap_or(0)
        .max(width("scenario"));
    let number_width = report.scenarios.len().to_string().len();
    let lead = 2 + number_width + 2;
    let mut out = String::new();
    let header = format!(
        "{}{}  {}  {}",
        " ".repeat(lead),
        pad("scenario", title_width),
        pad("expected", EXPECTED_WIDTH),
        "actual"
    );
    out.push_str(header.trim_end());
    out.push('\n');
    let rule = format!(
        "{}{}  {}  {}\n",
        " ".repeat(lead),
        "─".repeat(title_width),
        "─".repeat(EXPECTED_WIDTH),
        "─".repeat(ACTUAL_WIDTH)
    );
    out.push_str(&rule);
    for (index, result) in report.scenarios.iter().enumerate() {
        let mut first = true;
        let facts = result.expected.len().max(result.actual.len()).max(1);
        for fact in 0..facts {
            let expected = wrap(
                result.expected.get(fact).map_or("", String::as_str),
                EXPECTED_WIDTH,
            );
            let actual = wrap(
                result.actual.get(fact).map_or("(missing)", String::as_str),
                ACTUAL_WIDTH,
            );
            for line in 0..expected.len().max(actual.len()) {
                let left = if first {
                    format!(
                        "{} {:>number_width$}  {}",
                        mark(result),
                        index + 1,
                        pad(result.title, title_width)
                    )
                } else {
                    " ".repeat(lead + title_width)
                };
                first = false;
                let row = format!(
                    "{left}  {}  {}",
                    pad(
                        expected.get(line).map_or("", String::as_str),
                        EXPECTED_WIDTH
                    ),
                    actual.get(line).map_or("", String::as_str)
                );
                out.push_str(row.trim_end());
                out.push('\n');
            }
        }
        for detail in &result.details {
            for (n, line) in wrap(detail, EXPECTED_WIDTH + ACTUAL_WIDTH)
                .iter()
                .enumerate()
            {
                let bullet = if n == 0 { "·" } else { " " };
                let row = format!("{}  {bullet} {line}", " ".repeat(lead + title_width));
                out.push_str(&row);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    let total = report.scenarios.len();
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    out.push_str(&format!(
        "{verdict}: {} of {total} scenarios matched.\n",
        report.matched()
    ));
    match &report.audit.broken {
        None => out.push_str(&format!(
            "Audit chain: {} records verified, head {}.\n",
            report.audit.records,
            short(&report.audit.head)
        )),
        Some(why) => out.push_str(&format!("Audit chain does NOT verify: {why}\n")),
    }
    if let Some(dir) = &report.data {
        let dir = dir.display();
        out.push_str(&format!(
            "\nState and audit kept in {dir}. Each incident's story:\n  blastwall audit show --data {dir} <incident>\n"
        ));
        for result in &report.scenarios {
            for incident in &result.incidents {
                out.push_str(&format!("  {:<26} {incident}\n", result.id));
            }
        }
    }
    out
}

fn short(hash: &str) -> String {
    match hash.get(..16) {
        Some(head) if hash.len() > 16 => format!("{head}…"),
        _ => hash.to_string(),
    }
}

#[derive(Serialize)]
struct JsonScenario<'a> {
    #[serde(flatten)]
    result: &'a ScenarioResult,
    matched: bool,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    passed: bool,
    matched: usize,
    total: usize,
    scenarios: Vec<JsonScenario<'a>>,
    audit: &'a super::ChainCheck,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a std::path::PathBuf>,
}

/// The report as JSON: the same results, with each scenario's `matched` and
/// the overall `passed`.
pub fn json(report: &Report) -> String {
    let out = JsonReport {
        passed: report.passed(),
        matched: report.matched(),
        total: report.scenarios.len(),
        scenarios: report
            .scenarios
            .iter()
            .map(|result| JsonScenario {
                result,
                matched: result.matched(),
            })
            .collect(),
        audit: &report.audit,
        data: report.data.as_ref(),
    };
    blastwall::text::to_json_pretty(&out).expect("a report always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::ChainCheck;

    fn scenario(id: &'static str, expected: &[&str], actual: &[&str]) -> ScenarioResult {
        ScenarioResult {
            id,
            title: "OOM kill → restart",
            expected: expected.iter().map(|s| s.to_string()).collect(),
            actual: actual.iter().map(|s| s.to_string()).collect(),
            details: vec!["signed by the ephemeral development key".into()],
            incidents: vec![format!("inc-{id}")],
        }
    }

    fn report(scenarios: Vec<ScenarioResult>) -> Report {
        Report {
            scenarios,
            audit: ChainCheck {
                records: 42,
                head: "ab".repeat(32),
                broken: None,
            },
            data: None,
        }
    }

    #[test]
    fn wraps_at_spaces_and_splits_only_overlong_words() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), [""]);
        assert_eq!(wrap("execute → completed", 40), ["execute → completed"]);
    }

    #[test]
    fn the_table_shows_expected_and_actual_fact_by_fact_and_the_verdict() {
        let ok = scenario(
            "oom-restart",
            &["execute → completed → remediated"],
            &["execute → completed → remediated"],
        );
        let bad = scenario(
            "kill-switch",
            &["refuse (kill-switch) → escalated", "no plugin ran"],
            &["execute → completed → remediated", "a plugin ran"],
        );
        let text = table(&report(vec![ok, bad]));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].trim_start().starts_with("scenario"), "{text}");
        assert!(lines[0].contains("expected") && lines[0].contains("actual"));
        assert!(lines[2].starts_with("✓ 1  OOM kill → restart"), "{text}");
        let row = lines.iter().find(|l| l.starts_with("✗ 2")).unwrap();
        assert!(row.contains("refuse (kill-switch) → escalated"), "{row}");
        assert!(row.ends_with("execute → completed → remediated"), "{row}");
        let next = lines[lines.iter().position(|l| l == row).unwrap() + 1];
        assert!(
            next.contains("no plugin ran") && next.ends_with("a plugin ran"),
            "{text}"
        );
        assert!(text.contains("· signed by the ephemeral development key"));
        assert!(text.contains("FAIL: 1 of 2 scenarios matched."), "{text}");
        assert!(
            text.contains("Audit chain: 42 records verified, head abababababababab…."),
            "{text}"
        );
        assert!(!text.contains("audit show"), "incidents only when kept");
    }

    #[test]
    fn a_kept_store_lists_each_incident_for_audit_show() {
        let mut kept = report(vec![scenario("oom-restart", &["x"], &["x"])]);
        kept.data = Some("demo-data".into());
        let text = table(&kept);
        assert!(text.starts_with("     scenario  "), "{text}");
        assert!(text.contains("PASS: 1 of 1 scenarios matched."), "{text}");
        assert!(text.contains("blastwall audit show --data demo-data <incident>"));
        assert!(text.contains("oom-restart") && text.contains("inc-oom-restart"));
    }

    #[test]
    fn json_carries_the_same_results_with_each_verdict() {
        let ok = scenario("oom-restart", &["a"], &["a"]);
        let bad = scenario("kill-switch", &["a"], &["b"]);
        let value: serde_json::Value = serde_json::from_str(&json(&report(vec![ok, bad]))).unwrap();
        assert_eq!(value["passed"], false);
        assert_eq!(value["matched"], 1);
        assert_eq!(value["total"], 2);
        assert_eq!(value["scenarios"][0]["id"], "oom-restart");
        assert_eq!(value["scenarios"][0]["matched"], true);
        assert_eq!(value["scenarios"][1]["expected"][0], "a");
        assert_eq!(value["scenarios"][1]["actual"][0], "b");
        assert_eq!(value["scenarios"][1]["matched"], false);
        assert_eq!(value["scenarios"][1]["incidents"][0], "inc-kill-switch");
        assert_eq!(value["audit"]["records"], 42);
        assert!(value.get("data").is_none());
    }

    #[test]
    fn one_mismatch_or_a_broken_chain_fails_the_demo() {
        let ok = || scenario("oom-restart", &["a", "b"], &["a", "b"]);
        assert!(report(vec![ok(), ok()]).passed());
        let short = scenario("oom-restart", &["a", "b"], &["a"]);
        assert!(!report(vec![ok(), short]).passed(), "a missing fact");
        let wrong = scenario("oom-restart", &["a"], &["c"]);
        assert!(!report(vec![ok(), wrong]).passed(), "a different fact");
        assert!(!report(Vec::new()).passed(), "nothing ran");
        let mut broken = report(vec![ok()]);
        broken.audit.broken = Some("record 7: hash mismatch".into());
        assert!(!broken.passed());
        assert!(table(&broken).contains("Audit chain does NOT verify: record 7"));
    }
}
