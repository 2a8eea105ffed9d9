//! The journal of one run: every capability call with its result, the action
//! budget, and the plugin's log lines. It becomes the run report.

use serde::Serialize;

use super::bindings::WitError;
use super::limits::ActionBudgetExceeded;

/// The result of one host call, as the plugin saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "kebab-case")]
pub enum CallResult {
    /// The call succeeded; the detail describes the result.
    Ok(String),
    /// The call was outside the grant.
    Denied(String),
    /// The target does not exist.
    NotFound(String),
    /// The arguments were malformed.
    Invalid(String),
    /// The provider failed.
    Failed(String),
    /// The run ended (deadline) while the call was in flight: the effect may or
    /// may not have happened, and operators must treat it as possibly applied.
    Unknown(String),
}

impl CallResult {
    /// The record of an error the plugin was answered with.
    pub fn from_error(error: &WitError) -> Self {
        match error {
            WitError::Denied(m) => CallResult::Denied(m.clone()),
            WitError::NotFound(m) => CallResult::NotFound(m.clone()),
            WitError::Invalid(m) => CallResult::Invalid(m.clone()),
            WitError::Failed(m) => CallResult::Failed(m.clone()),
        }
    }
}

/// One host call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The WIT function, e.g. `scale.set-replicas`.
    pub function: &'static str,
    /// The workload or log set named by the plugin (as given, truncated).
    pub target: String,
    /// Other arguments, e.g. `replicas=5`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arguments: String,
    /// Whether the call may change the world (counts against the action budget).
    pub mutating: bool,
    /// What the plugin got back.
    pub result: CallResult,
}

/// One line the plugin logged through `context.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The message, truncated to [`MAX_LINE`] bytes.
    pub message: String,
}

/// Longest log line kept, in bytes.
pub const MAX_LINE: usize = 1024;
/// What one log line costs against the log cap beyond its text, so that a
/// flood of empty lines is bounded like a flood of long ones.
const LINE_OVERHEAD: usize = 64;
/// Longest target or argument text kept in a call record, in bytes.
const MAX_FIELD: usize = 300;
/// Most call records kept; later calls are counted, not stored.
const MAX_CALLS: usize = 1000;
/// Most `context.status` reads per run.
pub const MAX_READS: u32 = 100;

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Everything a run did, in order.
#[derive(Debug)]
pub struct Journal {
    calls: Vec<CallRecord>,
    calls_dropped: u64,
    log: Vec<LogLine>,
    log_bytes: usize,
    log_dropped: u64,
    log_lines_dropped: u64,
    reads: u32,
    actions: u32,
    max_actions: u32,
    max_log_bytes: usize,
}

impl Journal {
    /// An empty journal with an action budget and a log cap.
    pub fn new(max_actions: u32, max_log_bytes: usize) -> Self {
        Journal {
            calls: Vec::new(),
            calls_dropped: 0,
            log: Vec::new(),
            log_bytes: 0,
            log_dropped: 0,
            log_lines_dropped: 0,
            reads: 0,
            actions: 0,
            max_actions,
            max_log_bytes,
        }
    }

    /// Counts one mutating call against the budget. Every attempt counts,
    /// granted or denied, so a plugin that ignores denials runs out of budget.
    pub fn spend_action(&mut self) -> Result<(), ActionBudgetExceeded> {
        if self.actions >= self.max_actions {
            return Err(ActionBudgetExceeded {
                budget: self.max_actions,
            });
        }
        self.actions += 1;
        Ok(())
    }

    /// Counts one read (`context.status`). Reads reach the provider (a live API)
    /// and cost the guest almost no fuel, so they have a budget of their own;
    /// past it, reads are denied (a value, not a trap).
    pub fn spend_read(&mut self) -> Result<(), String> {
        if self.reads >= MAX_READS {
            return Err(format!(
                "read budget exhausted: at most {MAX_READS} status reads per run"
            ));
        }
        self.reads += 1;
        Ok(())
    }

    /// Records the start of a call, before anything reaches a provider, so a
    /// call cut off by the deadline is still in the report (as `unknown`).
    /// Returns the record's index, or `None` past the record cap.
    pub fn begin(
        &mut self,
        function: &'static str,
        target: &str,
        arguments: String,
        mutating: bool,
    ) -> Option<usize> {
        if self.calls.len() >= MAX_CALLS {
            self.calls_dropped += 1;
            return None;
        }
        self.calls.push(CallRecord {
            function,
            target: truncate(target, MAX_FIELD),
            arguments: truncate(&arguments, MAX_FIELD),
            mutating,
            result: CallResult::Unknown(
                "the run ended while this call was in flight; its effect may have happened".into(),
            ),
        });
        Some(self.calls.len() - 1)
    }

    /// Records how a call begun with [`Journal::begin`] ended.
    pub fn complete(&mut self, call: Option<usize>, result: CallResult) {
        if let Some(record) = call.and_then(|index| self.calls.get_mut(index)) {
            record.result = result;
        }
    }

    /// Appends a log line, unless the log is full. Every line costs its length
    /// plus a fixed overhead, so the number of lines is bounded too.
    pub fn log(&mut self, level: &'static str, message: &str) {
        let cost = message.len().min(MAX_LINE) + LINE_OVERHEAD;
        if self.log_bytes + cost > self.max_log_bytes {
            self.log_dropped += message.len() as u64;
            self.log_lines_dropped += 1;
            return;
        }
        self.log_bytes += cost;
        self.log.push(LogLine {
            level,
            message: truncate(message, MAX_LINE),
        });
    }

    /// The calls, log lines and counters, for the report.
    pub fn finish(self) -> JournalSummary {
        JournalSummary {
            calls: self.calls,
            calls_dropped: self.calls_dropped,
            log: self.log,
            log_dropped_bytes: self.log_dropped,
            log_lines_dropped: self.log_lines_dropped,
            actions: self.actions,
        }
    }
}

/// A finished journal.
#[derive(Debug, Clone, Default)]
pub struct JournalSummary {
    /// Every recorded call, in order.
    pub calls: Vec<CallRecord>,
    /// Calls past the record cap.
    pub calls_dropped: u64,
    /// Log lines kept.
    pub log: Vec<LogLine>,
    /// Log bytes dropped past the cap.
    pub log_dropped_bytes: u64,
    /// Log lines dropped past the cap.
    pub log_lines_dropped: u64,
    /// Mutating calls attempted.
    pub actions: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_every_attempt() {
        let mut j = Journal::new(2, 100);
        assert!(j.spend_action().is_ok());
        assert!(j.spend_action().is_ok());
        assert_eq!(j.spend_action(), Err(ActionBudgetExceeded { budget: 2 }));
    }

    #[test]
    fn log_is_capped_and_lines_truncated() {
        let mut j = Journal::new(0, 1100);
        j.log("info", &"é".repeat(1000));
        j.log("info", "this no longer fits in the log");
        let s = j.finish();
        assert_eq!(s.log.len(), 1);
        assert!(s.log[0].message.len() <= MAX_LINE + '…'.len_utf8());
        assert_eq!(s.log_dropped_bytes, 30);
    }

    #[test]
    fn a_flood_of_empty_lines_is_bounded() {
        let mut j = Journal::new(0, 64 * 1024);
        for _ in 0..1_000_000 {
            j.log("info", "");
        }
        let s = j.finish();
        assert_eq!(s.log.len(), 1024);
        assert_eq!(s.log_lines_dropped, 1_000_000 - 1024);
    }
}
