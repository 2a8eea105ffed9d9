//! State changes as values, so one commit can carry several of them together
//! with the audit records that describe them (atomically, and sharing one
//! fsync with every other commit waiting at the time).

use crate::alert::Alert;
use crate::guardrails::{KillSwitch, Millis, WindowSpec};
use crate::policy::TargetPattern;
use crate::workload::Workload;

use super::{ActiveRun, Approval, IncidentState};

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
    /// Notes that an incident's alert resolved. Yields 1 if the incident exists.
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
    /// Records a pending approval request.
    RequestApproval(Approval),
}
