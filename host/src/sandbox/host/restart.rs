//! `restart`: rolling restart of a workload inside the grant.

use super::super::bindings::WitError;
use super::super::bindings::blastwall::remediation::restart::Host;
use super::super::bindings::blastwall::remediation::types::Workload;
use super::{CallError, RunState, describe, validated};
use crate::policy::Capability;

impl Host for RunState {
    async fn restart(&mut self, target: Workload) -> wasmtime::Result<Result<(), WitError>> {
        self.journal.spend_action()?;
        let call = self
            .journal
            .begin("restart.restart", &describe(&target), String::new(), true);
        let result = async {
            let workload = validated(&target)?;
            self.grants
                .check_target(Capability::Restart, &workload)
                .map_err(|d| WitError::Denied(d.0))?;
            Ok::<_, CallError>(self.effects.restart(&self.call, &workload).await?)
        }
        .await;
        self.finish(call, result, |()| "restarted".into())
    }
}
