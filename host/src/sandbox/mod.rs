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
mod cache;
mod engine;
mod host;
mod journal;
pub mod limits;
mod load;
mod pool;
mod report;
mod state;
mod wasi;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use engine::EPOCH_TICK;
pub use journal::{CallRecord, CallResult, LogLine};
pub use limits::{Ceilings, ComponentSizes, RunLimits};
pub use load::{LoadError, LoadedPlugin, PluginSummary, Withheld};
pub use pool::PoolConfig;
pub use report::{DenialRecord, Effect, Outcome, RunReport};
pub use wasi::{ALLOWED_WASI, Output};

use crate::incident::Incident;
use crate::policy::{Capability, Grants};
use crate::provider::{CallContext, Effects};
use crate::signature::{Digest, PluginArtifact};
use engine::EpochTicker;
use journal::Journal;
use limits::RunLimiter;
use pool::RunPool;
use state::RunState;
use wasi::CapturedOutput;

/// How a sandbox is sized.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// Upper bounds and defaults for every per-run limit, and the largest
    /// component the host compiles.
    pub ceilings: Ceilings,
    /// The threads runs and compilations execute on, and how many of each
    /// at once (`[sandbox]` in the host configuration).
    pub pool: PoolConfig,
    /// Where to keep authenticated precompiled components; none: compile in memory only.
    pub cache_dir: Option<PathBuf>,
}

impl SandboxConfig {
    /// A sandbox sized by `config` (`[ceilings]`, `[sandbox]`), caching
    /// compiled plugins in `cache_dir`.
    pub fn for_host(config: &crate::config::HostConfig, cache_dir: Option<PathBuf>) -> Self {
        SandboxConfig {
            ceilings: config.ceilings.clone().unwrap_or_default(),
            pool: config.sandbox,
            cache_dir,
        }
    }
}

/// Why the sandbox itself could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm sandbox: {0}")]
pub struct SandboxError(String);

pub use cache::CacheStats;

/// One run's inputs.
pub struct RunRequest {
    /// What to remediate.
    pub incident: Incident,
    /// What the run may do; only the policy module can make these.
    pub grants: Grants,
    /// Where effects go (dry-run fleet, real providers).
    pub effects: Effects,
    /// The run's id, which providers may use to label what they change.
    pub run: String,
}

/// A compiled component and its import names, cached per digest.
#[derive(Clone)]
struct Compiled {
    component: Component,
    imports: Arc<Vec<String>>,
}

type CompiledCache = Arc<Mutex<HashMap<Digest, Compiled>>>;
type LinkKey = (Digest, BTreeSet<Capability>);

/// The wasm sandbox. One per host process; cheap to share behind an `Arc`.
pub struct Sandbox {
    engine: Engine,
    ceilings: Ceilings,
    compiled: CompiledCache,
    linked: Mutex<HashMap<LinkKey, Arc<bindings::PluginPre<RunState>>>>,
    precompiled: Option<Arc<cache::PrecompiledCache>>,
    pool: RunPool,
    _ticker: EpochTicker,
}

impl Sandbox {
    /// Starts a sandbox: builds the engine, the epoch clock and the threads
    /// runs execute on.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let engine = engine::build(&config.ceilings, config.pool.max_concurrent_runs)
            .map_err(|e| SandboxError(format!("{e:#}")))?;
        let ticker = EpochTicker::start(&engine).map_err(|e| SandboxError(e.to_string()))?;
        let precompiled = config
            .cache_dir
            .as_deref()
            .map(|dir| cache::PrecompiledCache::open(dir, &engine).map(Arc::new))
            .transpose()
            .map_err(|e| SandboxError(e.to_string()))?;
        let pool = RunPool::start(config.pool)
            .map_err(|e| SandboxError(format!("cannot start the run threads: {e}")))?;
        Ok(Sandbox {
            engine,
            ceilings: config.ceilings,
            compiled: Arc::default(),
            linked: Mutex::default(),
            precompiled,
            pool,
            _ticker: ticker,
        })
    }

    /// The host's limit ceilings.
    pub fn ceilings(&self) -> &Ceilings {
        &self.ceilings
    }

    /// The precompiled cache's counters, if a cache directory is configured.
    pub fn cache_stats(&self) -> Option<&CacheStats> {
        self.precompiled.as_ref().map(|c| c.stats())
    }

    /// The compiled component for `artifact`: from memory, else (on the
    /// pool's compile threads, at most `max-concurrent-compiles` at once)
    /// from the authenticated disk cache, else compiled after the size
    /// checks.
    async fn compile(&self, artifact: &PluginArtifact) -> Result<Compiled, LoadError> {
        let digest = artifact.digest();
        if let Some(compiled) = self.compiled.lock().expect("cache lock").get(&digest) {
            return Ok(compiled.clone());
        }
        let job = CompileJob {
            engine: self.engine.clone(),
            sizes: self.ceilings.component_sizes(),
            compiled: self.compiled.clone(),
            precompiled: self.precompiled.clone(),
            artifact: artifact.clone(),
        };
        match self.pool.compile(move || job.run()).await {
            Ok(result) => result,
            Err(error) => pool::rethrow(error),
        }
    }

    /// Loads `artifact` for runs under `grants`: compiles once per digest, checks
    /// imports ⊆ declared ⊆ granted on every load, and links once per digest and
    /// capability set. Limits and identity come from this artifact's manifest.
    pub async fn load(
        &self,
        artifact: &PluginArtifact,
        grants: &Grants,
    ) -> Result<LoadedPlugin, LoadError> {
        self.load_with(artifact, grants, Withheld::Refuse).await
    }

    /// [`Sandbox::load`], choosing what happens to a declared capability a
    /// layer withheld (see [`Withheld`]). The grant checked on every call is
    /// `grants` either way.
    pub async fn load_with(
        &self,
        artifact: &PluginArtifact,
        grants: &Grants,
        withheld: Withheld,
    ) -> Result<LoadedPlugin, LoadError> {
        let compiled = self.compile(artifact).await?;
        let granted =
            load::check_imports(artifact.manifest(), &compiled.imports, grants, withheld)?;
        let key = (artifact.digest(), granted.clone());
        let cached = self.linked.lock().expect("cache lock").get(&key).cloned();
        let pre = match cached {
            Some(pre) => pre,
            None => {
                let pre = Arc::new(load::link(
                    &self.engine,
                    &artifact.manifest().name,
                    &compiled.component,
                    &granted,
                )?);
                self.linked
                    .lock()
                    .expect("cache lock")
                    .insert(key, pre.clone());
                pre
            }
        };
        let limits = self.ceilings.limits_for(&artifact.manifest().limits);
        Ok(load::loaded(
            artifact,
            pre,
            granted,
            compiled.imports.to_vec(),
            limits,
        ))
    }

    /// Runs `plugin` once for `request`, in a fresh store, and reports what happened.
    /// Never fails: every way a run can end is an [`Outcome`].
    ///
    /// The run executes on the sandbox's own threads (see [`pool`]), never on
    /// the caller's runtime, so a plugin that never awaits cannot hold the
    /// threads serving the API; the caller only awaits its report.
    pub async fn run(&self, plugin: &LoadedPlugin, request: RunRequest) -> RunReport {
        let execution = Execution {
            engine: self.engine.clone(),
            max_output_bytes: self.ceilings.max_output_bytes as usize,
            max_log_bytes: self.ceilings.max_log_bytes as usize,
            plugin: plugin.clone(),
            request,
        };
        let handle = self.pool.spawn_run(move |slot| async move {
            let report = execution.run().await;
            drop(slot);
            report
        });
        match handle.await {
            Ok(report) => report,
            Err(error) => pool::rethrow(error),
        }
    }
}

/// Provider calls must answer a little before the run's own deadline, so a
/// slow platform ends the run as `provider-unavailable`, with the call on the
/// record, rather than racing the deadline that cuts the run off.
fn call_deadline(started: Instant, timeout: std::time::Duration) -> Instant {
    let margin = (timeout / 10).min(std::time::Duration::from_millis(200));
    started + (timeout - margin)
}

/// One run, owned, so it can move to the pool's threads.
struct Execution {
    engine: Engine,
    max_output_bytes: usize,
    max_log_bytes: usize,
    plugin: LoadedPlugin,
    request: RunRequest,
}

impl Execution {
    async fn run(self) -> RunReport {
        let Execution {
            engine,
            max_output_bytes,
            max_log_bytes,
            plugin,
            request,
        } = self;
        let started = Instant::now();
        let deadline = started + plugin.limits.timeout;
        let limits = plugin.limits;
        let output = CapturedOutput::new(max_output_bytes);
        let dry_run = request.incident.dry_run;
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.handles);
        let state = RunState {
            wasi: wasi::context(&output),
            table,
            limiter: RunLimiter::new(&limits),
            grants: request.grants,
            call: CallContext::run(
                &request.incident.id,
                &request.run,
                call_deadline(started, limits.timeout),
            ),
            effects: request.effects,
            journal: Journal::new(limits.max_actions, max_log_bytes),
        };
        let mut store = Store::new(&engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.fuel)
            .expect("fuel is enabled in the engine");
        store.set_hostcall_fuel(limits.hostcall_bytes);
        store.set_max_component_handles(limits.handles);
        // At every epoch tick: past the deadline, interrupt (a `timeout`);
        // before it, yield to the pool's scheduler, so runs sharing a thread
        // take turns. The deadline is read from the clock, not counted in
        // ticks, so a slow tick never stretches it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                // tokio's own yield puts the run at the back of its thread's
                // queue; a bare self-wake may be polled again first.
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });

        let guest_incident = bindings::incident_to_guest(&request.incident);
        // Epoch interruption stops guest code at the deadline; this timeout also
        // bounds time spent awaiting host calls (a slow provider).
        let result = tokio::time::timeout_at(deadline.into(), async {
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
            Ok(Err(Failure::Run(error))) => Outcome::from_error(&error, &limits),
            Ok(Err(Failure::Instantiate(error))) => match Outcome::from_error(&error, &limits) {
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
            log_lines_dropped: journal.log_lines_dropped,
            output: output.snapshot(),
        }
    }
}

/// A compilation, owned, so it can move to the pool's compile threads.
struct CompileJob {
    engine: Engine,
    sizes: ComponentSizes,
    compiled: CompiledCache,
    precompiled: Option<Arc<cache::PrecompiledCache>>,
    artifact: PluginArtifact,
}

impl CompileJob {
    fn run(self) -> Result<Compiled, LoadError> {
        let digest = self.artifact.digest();
        // Another load may have compiled it while this one waited for a slot.
        if let Some(compiled) = self.compiled.lock().expect("cache lock").get(&digest) {
            return Ok(compiled.clone());
        }
        // The host's size ceilings hold for every load, also of a component
        // compiled before they were lowered.
        load::check_sizes(&self.artifact, &self.sizes)?;
        // Bytes were verified (or explicitly accepted unsigned) before they got
        // here; the disk cache is keyed by their digest and authenticated.
        let cached = self
            .precompiled
            .as_ref()
            .and_then(|cache| cache.load(&self.engine, &digest));
        let component = match cached {
            Some(component) => component,
            None => {
                let component = load::compile(&self.engine, &self.artifact)?;
                if let Some(cache) = &self.precompiled {
                    cache.store(&digest, &component);
                }
                component
            }
        };
        let imports = Arc::new(load::imports_of(&self.engine, &component));
        let compiled = Compiled { component, imports };
        self.compiled
            .lock()
            .expect("cache lock")
            .insert(digest, compiled.clone());
        Ok(compiled)
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
