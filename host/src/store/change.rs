//! State changes as values, so one commit can carry several of them together
//! with the audit records that describe them (atomically, and sharing one
//! fsync with every other commit waiting at the time).

use std::sync::{Arc, Mutex};

use crate::alert::Alert;
use crate::guardrails::{
    Decision, EntryRules, FleetSize, GuardrailConfig, KillSwitch, Millis, Window, WindowSpec,
};
use crate::policy::TargetPattern;
use crate::workload::Workload;

use super::{ActiveRun, IncidentState};

/// One change to the host's state. Each yields a number in
/// [`crate::audit::Committed::results`], noted per variant.
#[derive(Debug, Clone)]
pub enum Change {
    /// Opens an incident or counts a repeated delivery. Yields the delivery count.
    OpenIncident {
        /// Its id.
        id: String,
        /// The alert.
        alert: Box<Alert>,
        /// Its target, or a note when there is none.
        target: String,
        /// Now.
        at: Millis,
    },
    /// Moves an incident to a state (and records its class when given). Yields rows changed.
    SetState {
        /// The incident.
        id: String,
        /// The new state.
        state: IncidentState,
        /// Its class, if known now.
        class: Option<String>,
        /// Now.
        at: Millis,
    },
    /// Records an incident's class (its state unchanged).
    SetClass {
        /// The incident.
        id: String,
        /// Its class.
        class: String,
    },
    /// Notes that an incident's alert resolved, and closes the incident unless
    /// a run is in flight, it was escalated or interrupted. Yields 1 if the
    /// incident exists.
    MarkResolved {
        /// The incident.
        id: String,
        /// Now.
        at: Millis,
    },
    /// Claims a target, counts an attempt and the run. Refused when the target is held.
    BeginRun(ActiveRun),
    /// Releases a run's target.
    EndRun {
        /// The run.
        run: String,
    },
    /// Marks a run's claim as given up by its own process.
    AbandonRun {
        /// The run.
        run: String,
    },
    /// Counts a run that holds no claim of its own (a rollback).
    CountRun {
        /// Its target.
        target: Workload,
        /// The plugin.
        plugin: String,
        /// When.
        at: Millis,
    },
    /// Freezes auto-execution until then (never shortens a freeze).
    Freeze {
        /// Until when.
        until: Millis,
    },
    /// Sets or replaces a kill switch.
    SetKillSwitch(KillSwitch),
    /// Clears a kill switch. Yields 1 if there was one.
    ClearKillSwitch {
        /// Its scope (`None`: the global one).
        scope: Option<TargetPattern>,
    },
    /// Adds or replaces a window.
    AddWindow(WindowSpec),
    /// Deletes a window. Yields 1 if there was one.
    DeleteWindow {
        /// Its name.
        name: String,
    },
    /// Denies a pending approval and hands its incident to a human
    /// (`escalated`). Refused, with nothing applied, unless it is pending.
    DenyApproval {
        /// The approval.
        id: String,
        /// Who denied it.
        by: String,
        /// Why.
        reason: String,
        /// Now.
        at: Millis,
    },
    /// Spends a proposal's nonce: refused, with nothing of its commit
    /// applied, if `(key, nonce)` was spent before, so a signed proposal is
    /// accepted once even across processes sharing the store. Spent nonces
    /// past their `expires` are pruned (a proposal that old is refused as
    /// stale anyway); `None` keeps one for good.
    SpendNonce {
        /// The signing key's id.
        key: String,
        /// The nonce.
        nonce: String,
        /// Now.
        at: Millis,
        /// When a replay would be refused as stale anyway.
        expires: Option<Millis>,
    },
    /// Decides on an incident (see [`DecideRequest`]).
    Decide(Box<DecideRequest>),
}

/// A guardrail decision taken inside the writer's transaction, so that
/// reading the history, deciding, recording the decision and claiming the
/// target are one atomic step, serialised with every other write and sharing
/// its fsync: no lock outside the store, and no two decisions can pass the
/// same budget. The store evaluates [`crate::guardrails::evaluate`] on what it
/// reads; the caller gets the outcome from `outcome` once the commit is durable.
#[derive(Debug, Clone)]
pub struct DecideRequest {
    /// The incident.
    pub incident: String,
    /// Its target.
    pub target: Workload,
    /// The plugin that would run (its name).
    pub plugin: String,
    /// The classification's confidence.
    pub confidence: f32,
    /// The catalog entry's rules (mode already adjusted).
    pub rules: EntryRules,
    /// Global guardrail settings.
    pub config: GuardrailConfig,
    /// Windows from the configuration (the store adds its own).
    pub windows: Vec<Window>,
    /// Workload counts from the provider.
    pub fleet: FleetSize,
    /// The time of the decision.
    pub now: Millis,
    /// Whether the plugin holds a workload capability.
    pub touches_workloads: bool,
    /// This process, for the claim.
    pub owner: String,
    /// Extra fields for the decision record (plugin reference, modes).
    pub note: serde_json::Map<String, serde_json::Value>,
    /// The `run.started` record's body (plugin, digest, grants), written with
    /// the claim when the decision is `execute`; the run's id is added.
    pub started: serde_json::Map<String, serde_json::Value>,
    /// What a human would approve, stored with the approval request when
    /// the decision is `await-approval` (see [`super::Approval::subject`]).
    pub subject: serde_json::Value,
    /// Set when a human approved this run: the decision then first turns
    /// that pending approval into `approved`, in the same transaction, so an
    /// approval runs at most once however many times it is sent.
    pub approval: Option<Approver>,
    /// Where the outcome is left for the caller.
    pub outcome: Arc<Mutex<Option<Decided>>>,
}

/// A human's approval, carried by the decision it unlocks.
#[derive(Debug, Clone)]
pub struct Approver {
    /// The approval request.
    pub id: String,
    /// Who approved it.
    pub by: String,
}

/// What a decision came to.
#[derive(Debug, Clone)]
pub enum Decided {
    /// Another delivery of the incident got there first, or a human has it.
    Duplicate(IncidentState),
    /// The approval the decision carried is no longer pending, or its
    /// incident no longer awaits it: nothing was decided.
    NotApprovable(String),
    /// The guardrails decided; `run` is the claimed run for `execute`.
    Decision {
        /// The decision.
        decision: Decision,
        /// The run holding the target, for `execute`.
        run: Option<String>,
    },
}
