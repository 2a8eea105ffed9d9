//! The sandbox: runs a plugin's `remediate` in a fresh wasmtime store, linked
//! only with the capabilities it was granted, inside hard limits.
//!
//! Threat model: the component is untrusted code (buggy, or written by an
//! agent that hallucinates). It may loop, allocate, recurse, trap, print
//! without end, or call capabilities outside its grant again and again. The
//! sandbox guarantees that it can do none of this beyond its limits: fuel,
//! memory, tables, stack and wall-clock time end the run with a typed
//! [`Outcome`]; every capability call is checked against the run's
//! [`Grants`]; output is capped; and each run has its own `Store`, so nothing
//! leaks between runs and a failed run leaves the host and later runs intact.

mod bindings;
mod engine;
mod host;
mod journal;
pub mod limits;
mod load;
mod report;
mod state;
mod wasi;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Store};

pub use journal::{CallRecord, CallResult, LogLine};
pub use limits::{Ceilings, RunLimits};
pub use load::{LoadError, LoadedPlugin, PluginSummary};
pub use report::{DenialRecord, Effect, Outcome, RunReport};
pub use wasi::Output;

use crate::artifact::{Digest, PluginArtifact};
use crate::incident::Incident;
use crate::policy::{Capability, Grants};
use crate::provider::Provider;
use engine::EpochTicker;
use journal::Journal;
use limits::RunLimiter;
use state::RunState;
use wasi::CapturedOutput;

/// How a sandbox is sized.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Upper bounds and defaults for every per-run limit.
    pub ceilings: Ceilings,
    /// Runs that may be live at once; sizes the instance pool.
    pub concurrent_runs: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            ceilings: Ceilings::default(),
            concurrent_runs: 32,
        }
    }
}

/// Why the sandbox itself could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm sandbox: {0}")]
pub struct SandboxError(String);

/// One run's inputs.
pub struct RunRequest {
    /// What to remediate.
    pub incident: Incident,
    /// What the run may do; only the policy module can make these.
    pub grants: Grants,
    /// Where effects go (dry-run fleet, real providers).
    pub provider: Arc<dyn Provider>,
}

type LoadKey = (Digest, BTreeSet<Capability>);

/// The wasm sandbox. One per host process; cheap to share behind an `Arc`.
pub struct Sandbox {
    engine: Engine,
    ceilings: Ceilings,
    components: Mutex<HashMap<Digest, Component>>,
    loaded: Mutex<HashMap<LoadKey, Arc<LoadedPlugin>>>,
    _ticker: EpochTicker,
}

impl Sandbox {
    /// Starts a sandbox: builds the engine and the epoch clock.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let engine = engine::build(&config.ceilings, config.concurrent_runs)
            .map_err(|e| SandboxError(format!("{e:#}")))?;
        let ticker = EpochTicker::start(&engine).map_err(|e| SandboxError(e.to_string()))?;
        Ok(Sandbox {
            engine,
            ceilings: config.ceilings,
            components: Mutex::default(),
            loaded: Mutex::default(),
            _ticker: ticker,
        })
    }

    /// The host's limit ceilings.
    pub fn ceilings(&self) -> &Ceilings {
        &self.ceilings
    }

    /// Loads `artifact` linked with exactly `granted`: compiles once per digest,
    /// checks imports ⊆ declared ⊆ granted, and caches the result.
    pub fn load(
        &self,
        artifact: &PluginArtifact,
        granted: &BTreeSet<Capability>,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let key = (artifact.digest(), granted.clone());
        if let Some(plugin) = self.loaded.lock().expect("cache lock").get(&key) {
            return Ok(plugin.clone());
        }
        let cached = self
            .components
            .lock()
            .expect("cache lock")
            .get(&artifact.digest())
            .cloned();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = load::compile(&self.engine, artifact)?;
                self.components
                    .lock()
                    .expect("cache lock")
                    .insert(artifact.digest(), component.clone());
                component
            }
        };
        let limits = self.ceilings.limits_for(&artifact.manifest().limits);
        let plugin = Arc::new(load::link(
            &self.engine,
            artifact,
            &component,
            granted,
            limits,
        )?);
        self.loaded
            .lock()
            .expect("cache lock")
            .insert(key, plugin.clone());
        Ok(plugin)
    }

    /// Runs `plugin` once for `request`, in a fresh store, and reports what happened.
    /// Never fails: every way a run can end is an [`Outcome`].
    pub async fn run(&self, plugin: &LoadedPlugin, request: RunRequest) -> RunReport {
        let started = Instant::now();
        let limits = plugin.limits;
        let output = CapturedOutput::new(self.ceilings.max_output_bytes as usize);
        let dry_run = request.incident.dry_run;
        let state = RunState {
            wasi: wasi::context(&output),
            table: ResourceTable::new(),
            limiter: RunLimiter::new(&limits),
            grants: request.grants,
            provider: request.provider,
            journal: Journal::new(limits.max_actions, self.ceilings.max_log_bytes as usize),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.fuel)
            .expect("fuel is enabled in the engine");
        store.set_epoch_deadline(engine::deadline_ticks(limits.timeout));
        store.epoch_deadline_trap();

        let guest_incident = bindings::incident_to_guest(&request.incident);
        // Epoch interruption stops guest code at the deadline; this timeout also
        // bounds time spent awaiting host calls (a slow provider).
        let result = tokio::time::timeout(limits.timeout, async {
            let instance = plugin
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Failure::Instantiate)?;
            instance
                .call_remediate(&mut store, &guest_incident)
                .await
                .map_err(Failure::Run)
        })
        .await;

        let outcome = match result {
            Err(_elapsed) => Outcome::Timeout,
            Ok(Ok(Ok(report))) => Outcome::Completed {
                summary: report.summary.chars().take(1000).collect(),
                actions: report.actions,
            },
            Ok(Ok(Err(error))) => plugin_error(error),
            Ok(Err(Failure::Run(error))) => Outcome::from_error(&error),
            Ok(Err(Failure::Instantiate(error))) => match Outcome::from_error(&error) {
                Outcome::Trap { message } => Outcome::InstantiateFailed { message },
                other => other,
            },
        };
        let fuel_consumed = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let journal = state.journal.finish();
        let (effects, denials) = report::effects_and_denials(&journal.calls, !dry_run);
        RunReport {
            plugin: plugin.summary().clone(),
            incident: request.incident.id.clone(),
            target: request.incident.target.to_string(),
            mode: if dry_run { "dry-run" } else { "live" },
            outcome,
            effects,
            denials,
            calls: journal.calls,
            calls_dropped: journal.calls_dropped,
            actions_attempted: journal.actions,
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak_memory(),
            duration_us: started.elapsed().as_micros() as u64,
            limits,
            log: journal.log,
            log_dropped_bytes: journal.log_dropped_bytes,
            output: output.snapshot(),
        }
    }
}

enum Failure {
    Instantiate(wasmtime::Error),
    Run(wasmtime::Error),
}

fn plugin_error(error: bindings::WitError) -> Outcome {
    let (kind, message) = match error {
        bindings::WitError::Denied(m) => ("denied", m),
        bindings::WitError::NotFound(m) => ("not-found", m),
        bindings::WitError::Invalid(m) => ("invalid", m),
        bindings::WitError::Failed(m) => ("failed", m),
    };
    Outcome::PluginError {
        error: kind.to_string(),
        message: message.chars().take(1000).collect(),
    }
}
