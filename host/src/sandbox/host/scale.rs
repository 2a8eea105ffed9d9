//! `scale`: set a workload's replica count within the grant's bounds and steps.

use super::super::bindings::WitError;
use super::super::bindings::blastwall::remediation::scale::Host;
use super::super::bindings::blastwall::remediation::types::Workload;
use super::{CallError, RunState, describe, validated};

impl Host for RunState {
    async fn set_replicas(
        &mut self,
        target: Workload,
        replicas: u32,
    ) -> wasmtime::Result<Result<u32, WitError>> {
        self.journal.spend_action()?;
        let call = self.journal.begin(
            "scale.set-replicas",
            &describe(&target),
            format!("replicas={replicas}"),
            true,
        );
        let result = async {
            let workload = validated(&target)?;
            self.grants
                .check_target(crate::policy::Capability::Scale, &workload)
                .map_err(|d| WitError::Denied(d.0))?;
            // Steps are relative to the live count, so read it first.
            let current = self.effects.status(&self.call, &workload).await?.replicas;
            self.grants
                .check_scale(&workload, current, replicas)
                .map_err(|d| WitError::Denied(d.0))?;
            Ok::<_, CallError>(
                self.effects
                    .set_replicas(&self.call, &workload, replicas)
                    .await?,
            )
        }
        .await;
        self.finish(call, result, |now| format!("replicas now {now}"))
    }
}
