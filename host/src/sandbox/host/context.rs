//! `context`: logging and read-only status, always linked.

use super::super::bindings::WitError;
use super::super::bindings::blastwall::remediation::context::{Host, Level};
use super::super::bindings::blastwall::remediation::types::{Workload, WorkloadStatus};
use super::{CallError, RunState, describe, validated};

impl Host for RunState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        if tracing::enabled!(target: "blastwall::plugin", tracing::Level::DEBUG) {
            let line: String = message.chars().take(200).collect();
            // The host's log is read on a terminal: no raw control or bidi characters.
            tracing::debug!(target: "blastwall::plugin", level, "{}", crate::text::visible(&line));
        }
        self.journal.log(level, &message);
        Ok(())
    }

    async fn status(
        &mut self,
        target: Workload,
    ) -> wasmtime::Result<Result<WorkloadStatus, WitError>> {
        let call = self
            .journal
            .begin("context.status", &describe(&target), String::new(), false);
        let result = async {
            self.journal.spend_read().map_err(WitError::Denied)?;
            let workload = validated(&target)?;
            self.grants
                .may_observe(&workload)
                .map_err(|d| WitError::Denied(d.0))?;
            Ok::<_, CallError>(self.effects.status(&self.call, &workload).await?)
        }
        .await;
        let answer = self.finish(call, result, |s| {
            format!(
                "replicas={} ready={} revision={}",
                s.replicas, s.ready_replicas, s.revision
            )
        })?;
        Ok(answer.map(Into::into))
    }
}
