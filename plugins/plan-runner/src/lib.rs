//! Executes an AI agent's plan: one capability call per action, in order.
//!
//! The plan arrives in the `plan` parameter as a JSON array of
//! `{capability, target, arguments}` (the host validated and re-serialised
//! it from a signed proposal). This plugin deliberately does not judge the
//! plan: it calls exactly what the plan says, and the host's grant check on
//! every call is the boundary. An action outside the grant (a target beyond
//! the incident, too many replicas, a capability the tier forbids) comes back
//! as `denied`, is on the record, and the plan goes on with its next action.
//! Any other error (the workload is missing, the arguments are invalid, the
//! provider failed) stops the plan: the world is not what the plan assumed.
//! A run with any denial or stop ends with an error, so a human is told.

use blastwall_sdk::{
    Error, Incident, Plugin, Report, Workload, WorkloadKind, log, log_rotation, restart, rollback,
    scale,
};
use serde::Deserialize;

/// The host never sends more; a longer plan is malformed.
const MAX_ACTIONS: usize = 16;

/// One step of the plan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Action {
    capability: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    arguments: Arguments,
}

/// The arguments an action may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Arguments {
    #[serde(default)]
    replicas: Option<u32>,
    #[serde(default)]
    log_set: Option<String>,
}

fn invalid(message: String) -> Error {
    Error::Invalid(format!("plan: {message}"))
}

/// Reads the plan from the incident's parameters.
fn plan(incident: &Incident) -> Result<Vec<Action>, Error> {
    let raw = incident
        .param("plan")
        .ok_or_else(|| invalid("no plan parameter".into()))?;
    let actions: Vec<Action> =
        serde_json::from_str(raw).map_err(|e| invalid(format!("not a list of actions: {e}")))?;
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        return Err(invalid(format!(
            "{} actions; a plan holds 1 to {MAX_ACTIONS}",
            actions.len()
        )));
    }
    Ok(actions)
}

/// `kind/namespace/name` as the WIT workload. Names are checked by the host.
fn workload(index: usize, action: &Action) -> Result<Workload, Error> {
    let raw = action.target.as_deref().ok_or_else(|| {
        invalid(format!(
            "action {index} ({}) has no target",
            action.capability
        ))
    })?;
    let mut parts = raw.splitn(3, '/');
    let (Some(kind), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!(
            "action {index}: target {raw:?} is not kind/namespace/name"
        )));
    };
    let kind = match kind {
        "deployment" => WorkloadKind::Deployment,
        "statefulset" => WorkloadKind::StatefulSet,
        "daemonset" => WorkloadKind::DaemonSet,
        "container" => WorkloadKind::Container,
        other => {
            return Err(invalid(format!(
                "action {index}: unknown workload kind {other:?}"
            )));
        }
    };
    Ok(Workload {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// A well-formed step, ready to call.
enum Step {
    Scale(Workload, u32),
    Restart(Workload),
    Rollback(Workload),
    Rotate(String),
}

/// Checks an action's shape (not whether it is allowed: that is the host's call).
fn step(index: usize, action: &Action) -> Result<Step, Error> {
    let args = &action.arguments;
    let step = match action.capability.as_str() {
        "scale" => {
            let replicas = args
                .replicas
                .ok_or_else(|| invalid(format!("action {index} (scale) has no replicas")))?;
            Step::Scale(workload(index, action)?, replicas)
        }
        "restart" => Step::Restart(workload(index, action)?),
        "rollback" => Step::Rollback(workload(index, action)?),
        "log-rotation" => Step::Rotate(
            args.log_set
                .clone()
                .ok_or_else(|| invalid(format!("action {index} (log-rotation) has no log-set")))?,
        ),
        other => {
            return Err(invalid(format!(
                "action {index}: unknown capability {other:?}"
            )));
        }
    };
    Ok(step)
}

/// Calls the capability a step names; the host decides whether it may.
fn perform(step: &Step) -> Result<String, Error> {
    match step {
        Step::Scale(target, replicas) => {
            let now = scale::set_replicas(target, *replicas)?;
            Ok(format!("scaled {target} to {now} replicas"))
        }
        Step::Restart(target) => {
            restart::restart(target)?;
            Ok(format!("restarted {target}"))
        }
        Step::Rollback(target) => {
            let revision = rollback::rollback(target)?;
            Ok(format!("rolled {target} back to revision {revision}"))
        }
        Step::Rotate(set) => {
            let rotation = log_rotation::rotate(set)?;
            Ok(format!(
                "rotated log set {set}: {} files, {} bytes freed",
                rotation.files_rotated, rotation.bytes_freed
            ))
        }
    }
}

struct PlanRunner;

impl Plugin for PlanRunner {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        // A malformed action anywhere stops the plan before its first call.
        let steps = plan(&incident)?
            .iter()
            .enumerate()
            .map(|(index, action)| step(index, action))
            .collect::<Result<Vec<_>, _>>()?;
        let total = steps.len();
        let mut done = 0u32;
        let mut denied = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            match perform(step) {
                Ok(what) => {
                    log::info(&format!("action {index}: {what}"));
                    done += 1;
                }
                Err(Error::Denied(reason)) => {
                    log::warn(&format!("action {index} denied: {reason}"));
                    denied.push(format!("action {index}: {reason}"));
                }
                Err(error) => {
                    log::error(&format!("action {index} failed, plan stopped: {error}"));
                    return Err(error);
                }
            }
        }
        if let Some(first) = denied.first() {
            return Err(Error::Denied(format!(
                "{} of {total} actions denied ({done} done); first: {first}",
                denied.len()
            )));
        }
        Ok(Report::new(
            format!("ran the plan: {done} of {total} actions"),
            done,
        ))
    }
}

blastwall_sdk::export_plugin!(PlanRunner);
