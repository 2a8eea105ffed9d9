//! Run reports and the typed outcome of a run.

use serde::Serialize;
use wasmtime::Trap;

use super::host::ProviderUnavailable;
use super::journal::{CallRecord, CallResult, LogLine};
use super::limits::{ActionBudgetExceeded, MemoryLimitExceeded, RunLimits, TableLimitExceeded};
use super::load::PluginSummary;
use super::wasi::Output;

/// How a run ended. Every limit has its own variant, so callers (and the
/// audit) can tell a runaway plugin from a broken one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// `remediate` returned a report.
    Completed {
        /// The plugin's one-sentence summary.
        summary: String,
        /// Changes the plugin says it made.
        actions: u32,
    },
    /// `remediate` returned an error value (the plugin decided it could not help).
    PluginError {
        /// `denied`, `not-found`, `invalid` or `failed`.
        error: String,
        /// The plugin's message.
        message: String,
    },
    /// The run used all its fuel.
    FuelExhausted,
    /// The run asked for more linear memory or table space than its limit.
    MemoryLimit {
        /// What was asked for and the limit.
        detail: String,
    },
    /// The run passed its wall-clock deadline.
    Timeout,
    /// The plugin passed more data to the host in one call than its limit.
    HostcallLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// The plugin held more resource handles at once than its limit.
    HandleLimit {
        /// The limit.
        limit: usize,
    },
    /// The run attempted more mutating calls than its budget.
    ActionBudget {
        /// The budget.
        budget: u32,
    },
    /// The plugin trapped: a panic, an `unreachable`, a stack overflow, an `exit`.
    Trap {
        /// The trap, e.g. `wasm trap: call stack exhausted`.
        message: String,
    },
    /// The plugin could not be instantiated (e.g. every instance slot is busy).
    InstantiateFailed {
        /// Why.
        message: String,
    },
    /// The platform the run acts on was down or did not answer in time; the
    /// run ended at that call, whatever the plugin would have done next.
    ProviderUnavailable {
        /// `unavailable` or `timeout`.
        error: String,
        /// What the provider said.
        message: String,
    },
}

impl Outcome {
    /// The outcome's kebab-case name, e.g. `fuel-exhausted`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::PluginError { .. } => "plugin-error",
            Outcome::FuelExhausted => "fuel-exhausted",
            Outcome::MemoryLimit { .. } => "memory-limit",
            Outcome::Timeout => "timeout",
            Outcome::HostcallLimit { .. } => "hostcall-limit",
            Outcome::HandleLimit { .. } => "handle-limit",
            Outcome::ActionBudget { .. } => "action-budget",
            Outcome::Trap { .. } => "trap",
            Outcome::InstantiateFailed { .. } => "instantiate-failed",
            Outcome::ProviderUnavailable { .. } => "provider-unavailable",
        }
    }

    /// Classifies an error that ended a run under `limits`.
    ///
    /// Wasmtime reports the hostcall-data and handle limits with errors of
    /// private types, so those two are recognised by their text (a test
    /// per limit keeps that honest across wasmtime updates).
    pub fn from_error(error: &wasmtime::Error, limits: &RunLimits) -> Outcome {
        if let Some(trap) = error.downcast_ref::<Trap>() {
            match trap {
                Trap::OutOfFuel => return Outcome::FuelExhausted,
                Trap::Interrupt => return Outcome::Timeout,
                _ => {}
            }
        }
        if let Some(e) = error.downcast_ref::<MemoryLimitExceeded>() {
            return Outcome::MemoryLimit {
                detail: e.to_string(),
            };
        }
        if let Some(e) = error.downcast_ref::<TableLimitExceeded>() {
            return Outcome::MemoryLimit {
                detail: e.to_string(),
            };
        }
        if let Some(e) = error.downcast_ref::<ProviderUnavailable>() {
            return Outcome::ProviderUnavailable {
                error: e.error.to_string(),
                message: e.message.clone(),
            };
        }
        if let Some(e) = error.downcast_ref::<ActionBudgetExceeded>() {
            return Outcome::ActionBudget { budget: e.budget };
        }
        if let Some(wasmtime::component::ResourceTableError::Full) =
            error.downcast_ref::<wasmtime::component::ResourceTableError>()
        {
            return Outcome::HandleLimit {
                limit: limits.handles,
            };
        }
        let text = format!("{error:#}");
        if text.contains("fuel allocated for hostcalls has been exhausted") {
            return Outcome::HostcallLimit {
                limit: limits.hostcall_bytes,
            };
        }
        if text.contains("handle limit exceeded")
            || text.contains("resource table has no free keys")
        {
            return Outcome::HandleLimit {
                limit: limits.handles,
            };
        }
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return Outcome::Trap {
                message: format!("plugin called exit({})", exit.0),
            };
        }
        // A trap's own text already reads `wasm trap: ...`.
        let message = match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => error.root_cause().to_string(),
        };
        Outcome::Trap {
            message: message.chars().take(1000).collect(),
        }
    }
}

/// An effect the run had (or, in a dry run, would have had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    /// The WIT function, e.g. `restart.restart`.
    pub function: &'static str,
    /// The workload or log set.
    pub target: String,
    /// Arguments, e.g. `replicas=5`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arguments: String,
    /// What the provider reported.
    pub result: String,
    /// False in a dry run: the effect was simulated.
    pub applied: bool,
}

/// A call refused by the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialRecord {
    /// The WIT function.
    pub function: &'static str,
    /// The workload or log set the plugin asked for.
    pub target: String,
    /// Why it was refused.
    pub reason: String,
}

/// Everything about one run: the JSON printed by `blastwall run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The plugin.
    pub plugin: PluginSummary,
    /// The incident id.
    pub incident: String,
    /// The incident's target.
    pub target: String,
    /// `dry-run` or `live`.
    pub mode: &'static str,
    /// How the run ended.
    pub outcome: Outcome,
    /// Changes made (or simulated), in order.
    pub effects: Vec<Effect>,
    /// Calls refused by the grant, in order.
    pub denials: Vec<DenialRecord>,
    /// Every host call, in order.
    pub calls: Vec<CallRecord>,
    /// Calls beyond the record cap, counted only.
    pub calls_dropped: u64,
    /// Mutating calls attempted.
    pub actions_attempted: u32,
    /// Fuel used.
    pub fuel_consumed: u64,
    /// Largest linear memory reached, in bytes.
    pub peak_memory_bytes: usize,
    /// Wall-clock time of the run, in microseconds.
    pub duration_us: u64,
    /// The limits the run had.
    pub limits: RunLimits,
    /// Lines the plugin logged.
    pub log: Vec<LogLine>,
    /// Log bytes dropped past the cap.
    pub log_dropped_bytes: u64,
    /// Log lines dropped past the cap.
    pub log_lines_dropped: u64,
    /// Captured stdout and stderr.
    pub output: Output,
}

/// Splits recorded calls into effects and denials.
pub fn effects_and_denials(
    calls: &[CallRecord],
    applied: bool,
) -> (Vec<Effect>, Vec<DenialRecord>) {
    let mut effects = Vec::new();
    let mut denials = Vec::new();
    for call in calls {
        match &call.result {
            CallResult::Ok(result) if call.mutating => effects.push(Effect {
                function: call.function,
                target: call.target.clone(),
                arguments: call.arguments.clone(),
                result: result.clone(),
                applied,
            }),
            // A call cut off mid-flight is reported as a possible effect: an operator
            // must assume it happened.
            CallResult::Unknown(why) if call.mutating => effects.push(Effect {
                function: call.function,
                target: call.target.clone(),
                arguments: call.arguments.clone(),
                result: format!("unknown: {why}"),
                applied,
            }),
            CallResult::Denied(reason) => denials.push(DenialRecord {
                function: call.function,
                target: call.target.clone(),
                reason: reason.clone(),
            }),
            _ => {}
        }
    }
    (effects, denials)
}
