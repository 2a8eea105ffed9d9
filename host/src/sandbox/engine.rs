//! The one wasmtime `Engine` a host uses, and the clock that enforces deadlines.
//!
//! Configuration choices and why:
//! - component model and async: plugins are components, host calls await providers;
//! - fuel metering: a hard, deterministic bound on guest computation;
//! - epoch interruption: at every tick a run checks its wall-clock deadline
//!   (which also stops loops that burn little fuel per iteration) and yields
//!   to the other runs on its thread; a background thread ticks the epoch;
//! - pooling allocator: instantiation without mmap/munmap per run, and a hard
//!   cap on concurrently live instances, memories, tables and stacks;
//! - a fixed wasm stack size: wasmtime's stack limit is engine-wide, so it is a
//!   host ceiling rather than a per-plugin value;
//! - no parallel compilation: a compilation's memory is one function's at a
//!   time, the same on 2 cores or 64 (compilations are few, off the service's
//!   threads, and cached on disk).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::{Ceilings, MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES};

/// How often the epoch advances: how often a run checks its deadline and
/// yields to the other runs on its thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Builds the engine for `ceilings`, with room for `concurrent_runs` live runs.
pub fn build(ceilings: &Ceilings, concurrent_runs: usize) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let runs = u32::try_from(concurrent_runs.max(1)).unwrap_or(u32::MAX);
    // Per-component maxima, and totals of `runs` times those maxima: however a
    // component is built, `runs` of them always fit, and none can take the
    // slots of another run.
    let (instances, memories, tables) =
        (MAX_INSTANCES as u32, MAX_MEMORIES as u32, MAX_TABLES as u32);
    pool.total_component_instances(runs)
        .total_core_instances(runs * instances)
        .total_memories(runs * memories)
        .total_tables(runs * tables)
        .max_core_instances_per_component(instances)
        .max_memories_per_component(memories)
        .max_tables_per_component(tables)
        .total_stacks(runs)
        .max_memory_size(ceilings.max_memory_mib as usize * 1024 * 1024)
        .table_elements(ceilings.max_table_elements as usize);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(ceilings.wasm_stack_kib as usize * 1024)
        // One function compiled at a time per compilation: the compiler's
        // peak memory is then one function's (bounded by max-function-bytes)
        // whatever the number of cores, not one per core.
        .parallel_compilation(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.weak();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("blastwall-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
