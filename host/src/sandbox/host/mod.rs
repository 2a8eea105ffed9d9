//! Host implementations of the WIT interfaces, one file per interface.
//!
//! Every function follows the same order: spend the action budget (mutating
//! calls only; running out traps), validate the guest's arguments, check the
//! grant, call the provider, record the call. A denial is an `Ok(Err(denied))`
//! value for the plugin, never a trap.
//!
//! A provider's error reaches the plugin through [`RunState::finish`], the
//! one place that maps it (see [`ProviderError`] for the table): the platform
//! refusing a call is a denial, like the grant refusing it; a platform that is
//! down or too slow ends the run, since nothing the plugin does next can help
//! and a human must look.

mod context;
mod log_rotation;
mod restart;
mod rollback;
mod scale;

use super::bindings::blastwall::remediation::types;
use super::bindings::{WitError, workload_from_guest};
use super::journal::CallResult;
use super::state::RunState;
use crate::provider::ProviderError;
use crate::workload::Workload;

impl types::Host for RunState {}

/// The guest's workload as text for the journal, whether or not it is valid.
fn describe(target: &types::Workload) -> String {
    let kind = match target.kind {
        types::WorkloadKind::Deployment => "deployment",
        types::WorkloadKind::StatefulSet => "statefulset",
        types::WorkloadKind::DaemonSet => "daemonset",
        types::WorkloadKind::Container => "container",
    };
    format!("{kind}/{}/{}", target.namespace, target.name)
}

/// Validates a guest workload; the error is what the plugin receives.
fn validated(target: &types::Workload) -> Result<Workload, WitError> {
    workload_from_guest(target)
}

/// How a host call failed, before it becomes what the plugin sees.
pub(super) enum CallError {
    /// Refused by the host (invalid arguments, the grant, a budget).
    Host(WitError),
    /// Refused or failed by the provider.
    Provider(ProviderError),
}

impl From<WitError> for CallError {
    fn from(e: WitError) -> Self {
        CallError::Host(e)
    }
}

impl From<ProviderError> for CallError {
    fn from(e: ProviderError) -> Self {
        CallError::Provider(e)
    }
}

/// The platform a run acts on is down or too slow: the run ends here.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProviderUnavailable {
    /// `unavailable` or `timeout`.
    pub error: &'static str,
    /// What the provider said.
    pub message: String,
}

/// The plugin's view of a provider error, or the end of the run.
fn to_plugin(error: ProviderError) -> Result<WitError, ProviderUnavailable> {
    Ok(match error {
        ProviderError::NotFound(m) => WitError::NotFound(m),
        ProviderError::Forbidden(m) => WitError::Denied(format!("the platform refused: {m}")),
        ProviderError::Invalid(m) => WitError::Invalid(m),
        ProviderError::Conflict(m) | ProviderError::Failed(m) => WitError::Failed(m),
        e @ (ProviderError::Unavailable(_) | ProviderError::Timeout(_)) => {
            return Err(ProviderUnavailable {
                error: e.kind(),
                message: e.to_string(),
            });
        }
    })
}

impl RunState {
    /// Records how the call begun as `call` ended, and answers the plugin (or
    /// ends the run, for an unavailable provider).
    fn finish<T>(
        &mut self,
        call: Option<usize>,
        result: Result<T, CallError>,
        describe: impl FnOnce(&T) -> String,
    ) -> wasmtime::Result<Result<T, WitError>> {
        let error = match result {
            Ok(value) => {
                self.journal
                    .complete(call, CallResult::Ok(describe(&value)));
                return Ok(Ok(value));
            }
            Err(CallError::Host(e)) => e,
            Err(CallError::Provider(e)) => match to_plugin(e) {
                Ok(e) => e,
                Err(unavailable) => {
                    let recorded = if unavailable.error == "timeout" {
                        CallResult::Unknown(unavailable.message.clone())
                    } else {
                        CallResult::Failed(unavailable.message.clone())
                    };
                    self.journal.complete(call, recorded);
                    return Err(unavailable.into());
                }
            },
        };
        self.journal.complete(call, CallResult::from_error(&error));
        Ok(Err(error))
    }
}
