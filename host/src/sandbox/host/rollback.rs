//! `rollback`: return a workload to its previous revision, if granted.

use super::super::bindings::WitError;
use super::super::bindings::blastwall::remediation::rollback::Host;
use super::super::bindings::blastwall::remediation::types::Workload;
use super::{CallError, RunState, describe, validated};
use crate::policy::Capability;

impl Host for RunState {
    async fn rollback(&mut self, target: Workload) -> wasmtime::Result<Result<u64, WitError>> {
        self.journal.spend_action()?;
        let call = self
            .journal
            .begin("rollback.rollback", &describe(&target), String::new(), true);
        let result = async {
            let workload = validated(&target)?;
            self.grants
                .check_target(Capability::Rollback, &workload)
                .map_err(|d| WitError::Denied(d.0))?;
            Ok::<_, CallError>(self.effects.rollback(&self.call, &workload).await?)
        }
        .await;
        self.finish(call, result, |rev| format!("revision {rev} now live"))
    }
}
