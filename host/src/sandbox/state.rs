//! The data of one run's `Store`: fresh for every run, dropped with it.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::journal::Journal;
use super::limits::RunLimiter;
use crate::policy::Grants;
use crate::provider::{CallContext, Effects};

/// Everything host functions may use during one run.
pub struct RunState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: RunLimiter,
    pub(super) grants: Grants,
    pub(super) effects: Effects,
    /// Who every provider call is for, and the run's deadline.
    pub(super) call: CallContext,
    pub(super) journal: Journal,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_io::IoView for RunState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}
