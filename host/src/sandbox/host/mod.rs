//! Host implementations of the WIT interfaces, one file per interface.
//!
//! Every function follows the same order: spend the action budget (mutating
//! calls only; running out traps), validate the guest's arguments, check the
//! grant, call the provider, record the call. A denial is an `Ok(Err(denied))`
//! value for the plugin, never a trap.

mod context;
mod log_rotation;
mod restart;
mod rollback;
mod scale;

use super::bindings::blastwall::remediation::types;
use super::bindings::{WitError, workload_from_guest};
use super::state::RunState;
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
