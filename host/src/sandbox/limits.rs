//! Per-run resource limits and the limiter that enforces memory and tables.
//!
//! A manifest *asks* for limits; the host's [`Ceilings`] cap every one of them,
//! so a plugin can never grant itself more than the operator allows. Fuel and
//! the wall-clock deadline are enforced by wasmtime (fuel metering, epoch
//! interruption); memory and table growth by [`RunLimiter`]; the action budget
//! by the capability host functions; the wasm stack by the engine itself (its
//! size is engine-wide in wasmtime, so it is a ceiling, not a per-run value).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::manifest::LimitsSpec;

/// The host's upper bounds on every limit, and the defaults for limits a manifest omits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Ceilings {
    /// Most fuel one run may get, e.g. `1_000_000_000`.
    pub max_fuel: u64,
    /// Most linear memory one run may use, in MiB, e.g. `64`. Also sizes the instance pool.
    pub max_memory_mib: u32,
    /// Longest one run may take, in milliseconds, e.g. `10_000`.
    pub max_timeout_ms: u64,
    /// Most mutating calls one run may make, e.g. `20`.
    pub max_actions: u32,
    /// Most table elements one run may have, e.g. `20_000`.
    pub max_table_elements: u32,
    /// Wasm stack for every run, in KiB, e.g. `512`.
    pub wasm_stack_kib: u32,
    /// Bytes of stdout plus stderr kept per run, e.g. `65_536`; more is dropped and counted.
    pub max_output_bytes: u32,
    /// Bytes of `context.log` lines kept per run, e.g. `65_536`; more is dropped and counted.
    pub max_log_bytes: u32,
    /// Bytes a plugin may pass to the host in one call (strings, lists), e.g.
    /// `1_048_576` (the default). A call passing more traps the run with
    /// `hostcall-limit` before the host copies it. Never more than the run's
    /// memory.
    #[serde(default = "default_max_hostcall_bytes")]
    pub max_hostcall_bytes: u32,
    /// Resource handles (streams, pollables, guest resources) a run may hold
    /// at once, e.g. `1_000` (the default); one more traps with `handle-limit`.
    #[serde(default = "default_max_handles")]
    pub max_handles: u32,
    /// The largest component the host compiles, in bytes, e.g. `16_777_216`
    /// (16 MiB, the default). Larger ones are refused before compilation.
    #[serde(default = "default_max_component_bytes")]
    pub max_component_bytes: u64,
    /// Most bytes of function bodies in one component, summed over its core
    /// modules, e.g. `8_388_608` (8 MiB, the default). Compile time grows
    /// with it.
    #[serde(default = "default_max_code_bytes")]
    pub max_code_bytes: u64,
    /// The largest single function body, in bytes, e.g. `262_144` (256 KiB,
    /// the default). The compiler's time and memory grow faster than a
    /// function's size; functions are compiled one at a time, so its peak
    /// memory follows the largest one (about 100 MiB at this default, see
    /// PERFORMANCE.md).
    #[serde(default = "default_max_function_bytes")]
    pub max_function_bytes: u64,
    /// Defaults for limits a manifest does not set.
    pub defaults: LimitsSpec,
}

fn default_max_hostcall_bytes() -> u32 {
    1024 * 1024
}

fn default_max_handles() -> u32 {
    1_000
}

fn default_max_component_bytes() -> u64 {
    16 * 1024 * 1024
}

fn default_max_code_bytes() -> u64 {
    8 * 1024 * 1024
}

fn default_max_function_bytes() -> u64 {
    256 * 1024
}

/// The host's ceilings on what it compiles, checked before compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentSizes {
    /// `max-component-bytes`.
    pub component_bytes: u64,
    /// `max-code-bytes`.
    pub code_bytes: u64,
    /// `max-function-bytes`.
    pub function_bytes: u64,
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings {
            max_fuel: 1_000_000_000,
            max_memory_mib: 64,
            max_timeout_ms: 10_000,
            max_actions: 20,
            max_table_elements: 20_000,
            wasm_stack_kib: 512,
            max_output_bytes: 64 * 1024,
            max_log_bytes: 64 * 1024,
            max_hostcall_bytes: default_max_hostcall_bytes(),
            max_handles: default_max_handles(),
            max_component_bytes: default_max_component_bytes(),
            max_code_bytes: default_max_code_bytes(),
            max_function_bytes: default_max_function_bytes(),
            defaults: LimitsSpec {
                fuel: Some(100_000_000),
                memory_mib: Some(16),
                timeout_ms: Some(2_000),
                max_actions: Some(3),
            },
        }
    }
}

/// The limits of one run, after the ceilings were applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunLimits {
    /// Fuel for the run.
    pub fuel: u64,
    /// Linear memory, in bytes.
    pub memory_bytes: usize,
    /// Table elements.
    pub table_elements: usize,
    /// Wall-clock deadline (reported in milliseconds).
    #[serde(rename = "timeout_ms", serialize_with = "millis")]
    pub timeout: Duration,
    /// Mutating calls allowed, granted or denied.
    pub max_actions: u32,
    /// Bytes the plugin may pass to the host in one call.
    pub hostcall_bytes: usize,
    /// Resource handles the run may hold at once.
    pub handles: usize,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

impl Ceilings {
    /// The limits for a plugin asking for `spec`: each value is the manifest's,
    /// else the default, capped by the ceiling.
    pub fn limits_for(&self, spec: &LimitsSpec) -> RunLimits {
        let d = &self.defaults;
        let fuel = spec
            .fuel
            .or(d.fuel)
            .unwrap_or(self.max_fuel)
            .min(self.max_fuel);
        let memory_mib = spec
            .memory_mib
            .or(d.memory_mib)
            .unwrap_or(self.max_memory_mib)
            .min(self.max_memory_mib);
        let timeout_ms = spec
            .timeout_ms
            .or(d.timeout_ms)
            .unwrap_or(self.max_timeout_ms)
            .min(self.max_timeout_ms);
        let max_actions = spec
            .max_actions
            .or(d.max_actions)
            .unwrap_or(self.max_actions)
            .min(self.max_actions);
        let memory_bytes = memory_mib as usize * 1024 * 1024;
        RunLimits {
            fuel,
            memory_bytes,
            table_elements: self.max_table_elements as usize,
            timeout: Duration::from_millis(timeout_ms),
            max_actions,
            hostcall_bytes: (self.max_hostcall_bytes as usize).min(memory_bytes),
            handles: self.max_handles as usize,
        }
    }

    /// The ceilings on what this host compiles.
    pub fn component_sizes(&self) -> ComponentSizes {
        ComponentSizes {
            component_bytes: self.max_component_bytes,
            code_bytes: self.max_code_bytes,
            function_bytes: self.max_function_bytes,
        }
    }
}

/// The trap raised when a run asks for more memory than it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "memory limit: the plugin asked for {desired} bytes of linear memory, the limit is {limit}"
)]
pub struct MemoryLimitExceeded {
    /// Bytes the plugin asked for.
    pub desired: usize,
    /// The run's limit.
    pub limit: usize,
}

/// The trap raised when a table grows past its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("table limit: the plugin asked for {desired} table elements, the limit is {limit}")]
pub struct TableLimitExceeded {
    /// Elements the plugin asked for.
    pub desired: usize,
    /// The run's limit.
    pub limit: usize,
}

/// The trap raised when a run makes more mutating calls than its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("action budget: the plugin attempted more than {budget} mutating calls")]
pub struct ActionBudgetExceeded {
    /// The run's budget.
    pub budget: u32,
}

/// Most instances, memories and tables one run may create. A Rust wasm32-wasip2
/// component needs a handful of each (the program plus adapter shims); a
/// component built to exhaust the instance pool is stopped here.
pub const MAX_INSTANCES: usize = 16;
/// See [`MAX_INSTANCES`].
pub const MAX_MEMORIES: usize = 4;
/// See [`MAX_INSTANCES`].
pub const MAX_TABLES: usize = 16;

/// Enforces a run's memory and table limits and remembers the peak memory.
///
/// The memory limit is for the whole run: the sum over every linear memory of
/// every core instance in the component, not per memory. Exceeding a limit
/// traps (rather than failing `memory.grow`) so the run ends with a
/// `memory-limit` outcome instead of a guest-side abort that would look like an
/// ordinary bug.
#[derive(Debug)]
pub struct RunLimiter {
    memory_limit: usize,
    table_limit: usize,
    memory_total: usize,
    table_total: usize,
    peak_memory: usize,
}

impl RunLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: &RunLimits) -> Self {
        RunLimiter {
            memory_limit: limits.memory_bytes,
            table_limit: limits.table_elements,
            memory_total: 0,
            table_total: 0,
            peak_memory: 0,
        }
    }

    /// The largest linear memory the run reached, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.peak_memory
    }
}

impl wasmtime::ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_total
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_limit {
            return Err(MemoryLimitExceeded {
                desired: total,
                limit: self.memory_limit,
            }
            .into());
        }
        self.memory_total = total;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_total
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.table_limit {
            return Err(TableLimitExceeded {
                desired: total,
                limit: self.table_limit,
            }
            .into());
        }
        self.table_total = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_limits_are_capped_by_ceilings_and_defaulted() {
        let ceilings = Ceilings::default();
        let asked = LimitsSpec {
            fuel: Some(u64::MAX),
            memory_mib: Some(4096),
            timeout_ms: None,
            max_actions: Some(1),
        };
        let limits = ceilings.limits_for(&asked);
        assert_eq!(limits.fuel, ceilings.max_fuel);
        assert_eq!(limits.memory_bytes, 64 * 1024 * 1024);
        assert_eq!(
            limits.timeout,
            Duration::from_millis(2_000),
            "default applies"
        );
        assert_eq!(limits.max_actions, 1, "a stricter request is kept");
    }
}
