//! `log-rotation`: rotate a log set the host configuration names and the grant lists.

use super::super::bindings::WitError;
use super::super::bindings::blastwall::remediation::log_rotation::Host;
use super::super::bindings::blastwall::remediation::types::Rotation;
use super::{CallError, RunState};

impl Host for RunState {
    async fn rotate(&mut self, log_set: String) -> wasmtime::Result<Result<Rotation, WitError>> {
        self.journal.spend_action()?;
        let call = self
            .journal
            .begin("log-rotation.rotate", &log_set, String::new(), true);
        let result = async {
            self.grants
                .check_log_set(&log_set)
                .map_err(|d| WitError::Denied(d.0))?;
            Ok::<_, CallError>(self.effects.rotate(&self.call, &log_set).await?)
        }
        .await;
        let answer = self.finish(call, result, |r| {
            format!(
                "{} files rotated, {} bytes freed",
                r.files_rotated, r.bytes_freed
            )
        })?;
        Ok(answer.map(Into::into))
    }
}
