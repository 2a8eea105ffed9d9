//! The threads plugins run and compile on, apart from the service's.
//!
//! Threat model: a plugin that never awaits (a tight loop, or a loop on host
//! calls that answer at once, such as `context.log`) keeps the thread that
//! polls it busy until its deadline. Were runs polled by the service's own
//! async runtime, a few of them would hold every worker thread and the HTTP
//! API, the queue and the recovery pass would stop answering for seconds.
//! Compiling a large component is the same: seconds of CPU on whichever
//! thread calls it.
//!
//! So every run and every compilation executes here, on a runtime of its own:
//! - runs are polled by this runtime's worker threads only (`threads` of
//!   them), so however many are in flight, untrusted code uses at most that
//!   many cores, and the service's threads are never the ones held;
//! - a run yields to this runtime's scheduler at every epoch tick (see
//!   `Sandbox::run`), so runs sharing a thread take turns instead of waiting
//!   for one another's deadlines;
//! - on Linux these threads run at a lower scheduling priority (nice
//!   [`NICE`]), so when the machine is saturated the kernel prefers the API,
//!   the store writer and the epoch clock over plugins;
//! - at most `max_concurrent_runs` runs hold a store (and an instance slot)
//!   at once; the others wait for a slot before their clock starts;
//! - at most `max_concurrent_compiles` compilations run at once, on this
//!   runtime's blocking threads.

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// The scheduling priority (nice value) of the pool's threads on Linux.
pub const NICE: i32 = 10;

/// The `[sandbox]` section: the threads plugins execute on, and how many
/// runs and compilations at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PoolConfig {
    /// Threads that execute plugins, e.g. `2`. At most this many cores run
    /// plugin code, however many runs are in flight. Default: the machine's
    /// cores.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Runs holding a store (and an instance slot) at once, e.g. `64` (the
    /// default). A run waits for a slot before its clock starts. Runs spend
    /// most of their life awaiting providers and durable records, so this is
    /// larger than `threads`; `serve` also caps it by `[api] max-in-flight`.
    #[serde(default = "default_max_concurrent_runs")]
    pub max_concurrent_runs: usize,
    /// Components compiled at once, e.g. `1` (the default). Compiling a large
    /// component takes seconds and hundreds of MiB; the rest wait.
    #[serde(default = "default_max_concurrent_compiles")]
    pub max_concurrent_compiles: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            threads: default_threads(),
            max_concurrent_runs: default_max_concurrent_runs(),
            max_concurrent_compiles: default_max_concurrent_compiles(),
        }
    }
}

impl PoolConfig {
    /// Checks the values; each error names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in [
            ("threads", self.threads),
            ("max-concurrent-runs", self.max_concurrent_runs),
            ("max-concurrent-compiles", self.max_concurrent_compiles),
        ] {
            if !(1..=1024).contains(&value) {
                return Err(format!(
                    "[sandbox] {field} = {value}: must be between 1 and 1024"
                ));
            }
        }
        Ok(())
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn default_max_concurrent_runs() -> usize {
    64
}

fn default_max_concurrent_compiles() -> usize {
    1
}

/// The runtime runs and compilations execute on. Dropping it stops its
/// threads without waiting for them (safe inside an async context).
pub struct RunPool {
    runtime: Option<Runtime>,
    runs: Arc<Semaphore>,
    compiles: Arc<Semaphore>,
}

impl RunPool {
    /// Starts the pool's threads.
    pub fn start(size: PoolConfig) -> std::io::Result<RunPool> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(size.threads.max(1))
            .thread_name("blastwall-run")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(RunPool {
            runtime: Some(runtime),
            runs: Arc::new(Semaphore::new(size.max_concurrent_runs.max(1))),
            compiles: Arc::new(Semaphore::new(size.max_concurrent_compiles.max(1))),
        })
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("present until dropped")
    }

    /// Runs `job` on the pool once a run slot is free; the slot is held
    /// until `job` ends. The caller awaits the handle from any runtime.
    pub fn spawn_run<F>(
        &self,
        job: impl FnOnce(OwnedSemaphorePermit) -> F + Send + 'static,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runs = self.runs.clone();
        self.runtime().spawn(async move {
            let slot = runs
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            job(slot).await
        })
    }

    /// Runs the blocking `work` (a compilation) on the pool's blocking
    /// threads once a compile slot is free.
    pub async fn compile<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let compiles = self.compiles.clone();
        let handle = self.runtime().handle().clone();
        self.runtime()
            .spawn(async move {
                let _slot = compiles
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                handle.spawn_blocking(work).await
            })
            .await?
    }
}

/// Surfaces a pool task's panic where it would have surfaced had the task
/// been polled by its caller: a panic is a host bug, never guest behaviour.
/// (A task is cancelled only when the pool shuts down, and the pool lives as
/// long as the sandbox every caller borrows.)
pub fn rethrow(error: tokio::task::JoinError) -> ! {
    match error.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(error) => unreachable!("the pool outlives every borrow of the sandbox: {error}"),
    }
}

impl Drop for RunPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's scheduling priority to [`NICE`]. Raising a
/// nice value needs no privilege; if it fails anyway, runs keep the default
/// priority and still cannot hold the service's threads.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the "process" a PRIO_PROCESS call names may be a thread id,
        // and then only that thread changes.
        let thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(thread), NICE) {
            tracing::debug!(%error, "cannot lower the priority of a run thread");
        }
    }
}
