//! All of the host's state behind one interface: incidents, runs in flight,
//! the run history behind cooldowns and rate limits, kill switches, windows,
//! approvals and the audit chain.
//!
//! The embedded default is one SQLite file ([`SqliteStore`]); the trait is what
//! a PostgreSQL backend for several host replicas implements next, which is why
//! the SQLite implementation goes through sqlx, the driver that serves both.

mod change;
mod decide;
mod ops;
pub mod owner;
mod sqlite;

pub use change::{Approver, Change, DecideRequest, Decided};

use async_trait::async_trait;
use serde::Serialize;

pub use sqlite::SqliteStore;

use crate::alert::Alert;
use crate::audit::{AuditError, AuditLog, Committed, Entry, Receipt};
use crate::guardrails::{KillSwitch, Millis, WindowSpec};
use crate::policy::TargetPattern;
use crate::workload::Workload;

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "blastwall.db";

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentState {
    /// Received, not yet decided.
    Open,
    /// A plugin is running (or its effects are being verified).
    Running,
    /// The run completed and verification passed (or none was configured).
    Remediated,
    /// The run or its verification failed; a human was told.
    Failed,
    /// A guardrail or the classifier handed it to a human.
    Escalated,
    /// Held quietly (maintenance window, another run in flight, shadow refusal).
    Held,
    /// Waiting for a human to approve the run.
    AwaitingApproval,
    /// A shadow run recorded what would have happened.
    Shadowed,
    /// The host stopped during a run; a human was told; never retried automatically.
    Interrupted,
    /// The alert resolved.
    Resolved,
}

impl IncidentState {
    /// Its name in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Running => "running",
            IncidentState::Remediated => "remediated",
            IncidentState::Failed => "failed",
            IncidentState::Escalated => "escalated",
            IncidentState::Held => "held",
            IncidentState::AwaitingApproval => "awaiting-approval",
            IncidentState::Shadowed => "shadowed",
            IncidentState::Interrupted => "interrupted",
            IncidentState::Resolved => "resolved",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        use IncidentState::*;
        [
            Open,
            Running,
            Remediated,
            Failed,
            Escalated,
            Held,
            AwaitingApproval,
            Shadowed,
            Interrupted,
            Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Whether a repeated delivery of the alert may be decided on again.
    /// Everything else is a duplicate: a run in flight, a human already
    /// involved, or an interrupted run that must never be retried silently.
    pub fn may_decide_again(self) -> bool {
        matches!(
            self,
            IncidentState::Open
                | IncidentState::Held
                | IncidentState::Failed
                | IncidentState::Shadowed
                | IncidentState::Remediated
        )
    }
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRow {
    /// Its id.
    pub id: String,
    /// The alert's name.
    pub alert: String,
    /// Its target.
    pub target: String,
    /// Its class, once classified.
    pub class: Option<String>,
    /// Where it stands.
    pub state: IncidentState,
    /// Runs started for it.
    pub attempts: u32,
    /// Deliveries of its alert.
    pub deliveries: u32,
    /// When it was opened.
    pub opened_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
    /// When its alert was reported resolved.
    pub resolved_at: Option<Millis>,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    /// Only incidents in this state.
    pub state: Option<IncidentState>,
    /// Only incidents that last changed before this time ("left alone for a
    /// while", for recovery), or, with `after_id`, that come after this
    /// position in the listing order (a page's cursor).
    pub updated_before: Option<Millis>,
    /// With `updated_before`: also incidents changed at exactly that time
    /// whose id sorts after this one, so a page never skips incidents that
    /// changed in the same millisecond as the previous page's last.
    pub after_id: Option<String>,
    /// Only incidents whose alert has not resolved.
    pub unresolved: bool,
    /// At most this many (the caller bounds it).
    pub limit: u32,
}

/// A run that holds its target until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveRun {
    /// The run's id.
    pub run: String,
    /// Its incident.
    pub incident: String,
    /// The target it holds.
    pub target: Workload,
    /// The plugin.
    pub plugin: String,
    /// When it started.
    pub started_at: Millis,
    /// The process holding it (see [`owner`]).
    pub owner: String,
}

/// What operators have switched: kill switches, windows, the storm freeze.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Controls {
    /// Kill switches in force.
    pub kill_switches: Vec<KillSwitch>,
    /// Windows added at run time.
    pub windows: Vec<WindowSpec>,
    /// The storm breaker's freeze, if one was ever set.
    pub storm_frozen_until: Option<Millis>,
}

/// An approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Its id.
    pub id: String,
    /// The incident.
    pub incident: String,
    /// The plugin that would run.
    pub plugin: String,
    /// `pending`, `approved` or `denied`. Only `pending` can change, once.
    pub state: String,
    /// When it was requested.
    pub created_at: Millis,
    /// What would run: `{"kind": "catalog", …}` for the catalog's plugin, or
    /// the proposal a human must approve.
    pub subject: serde_json::Value,
    /// Who approved or denied it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Millis>,
    /// Why it was denied, when it was.
    pub reason: Option<String>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("state store {path}: {message}")]
    Database {
        /// The database.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The audit chain refused or failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Another run holds the target.
    #[error("{0} already has a remediation in flight")]
    TargetBusy(Workload),
    /// A change was refused by the state (nothing of its commit was applied).
    #[error("{0}")]
    Refused(String),
    /// A stored value no longer parses (the store was edited by hand).
    #[error("state store holds an unreadable {what}: {value:?}")]
    Corrupt {
        /// What kind of value.
        what: &'static str,
        /// The value.
        value: String,
    },
}

/// The host's state. Every method is one transaction; implementations must be
/// safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync {
    /// The audit chain, for appends, queries and verification.
    fn audit(&self) -> &AuditLog;

    /// Applies `changes` and appends `records` atomically, after every commit
    /// queued before it; returns once durable. Commits waiting together share
    /// one transaction (group commit). If a change is refused, nothing of this
    /// commit is applied and the error is [`StoreError::Refused`].
    async fn commit(
        &self,
        changes: Vec<Change>,
        records: Vec<Entry>,
    ) -> Result<Committed, StoreError>;

    /// Appends one audit record; returns once it is durable.
    async fn record(&self, entry: Entry) -> Result<Receipt, StoreError> {
        let mut committed = self.commit(Vec::new(), vec![entry]).await?;
        Ok(committed.receipts.remove(0))
    }

    /// Appends several audit records in order, atomically; returns once all are durable.
    async fn record_all(&self, entries: Vec<Entry>) -> Result<Vec<Receipt>, StoreError> {
        Ok(self.commit(Vec::new(), entries).await?.receipts)
    }

    /// Opens the incident or, for a repeated delivery, counts the delivery and
    /// returns the existing row. `true` when it is new. `target` is the
    /// workload, or a note when the alert names none.
    async fn open_incident(
        &self,
        id: &str,
        alert: &Alert,
        target: &str,
        now: Millis,
    ) -> Result<(IncidentRow, bool), StoreError> {
        let change = Change::OpenIncident {
            id: id.to_string(),
            alert: Box::new(alert.clone()),
            target: target.to_string(),
            at: now,
        };
        let deliveries = self.commit(vec![change], Vec::new()).await?.results[0];
        let row = self.incident(id).await?.ok_or(StoreError::Corrupt {
            what: "incident that was just written",
            value: id.to_string(),
        })?;
        Ok((row, deliveries == 1))
    }

    /// The alert that opened an incident.
    async fn alert_of(&self, id: &str) -> Result<Option<Alert>, StoreError>;

    /// Notes that the incident's alert resolved; `false` if there is no such incident.
    async fn mark_resolved(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let change = Change::MarkResolved {
            id: id.to_string(),
            at: now,
        };
        Ok(self.commit(vec![change], Vec::new()).await?.results[0] > 0)
    }

    /// One incident.
    async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError>;

    /// Kill switches, windows and the storm freeze.
    async fn controls(&self) -> Result<Controls, StoreError>;

    /// Runs still holding targets (held by live processes or left by dead ones).
    async fn active_runs(&self) -> Result<Vec<ActiveRun>, StoreError>;

    /// Approval requests, newest first.
    async fn approvals(&self) -> Result<Vec<Approval>, StoreError>;

    /// Incidents, newest first, filtered by `query`.
    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<IncidentRow>, StoreError>;

    /// One approval request.
    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError>;

    /// Moves an incident to `state` (and records its class when given).
    async fn set_state(
        &self,
        id: &str,
        state: IncidentState,
        class: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        let change = Change::SetState {
            id: id.to_string(),
            state,
            class: class.map(str::to_string),
            at: now,
        };
        self.commit(vec![change], Vec::new()).await.map(|_| ())
    }

    /// Records the incident's class once it is known.
    async fn set_class(&self, id: &str, class: &str) -> Result<(), StoreError> {
        let change = Change::SetClass {
            id: id.to_string(),
            class: class.to_string(),
        };
        self.commit(vec![change], Vec::new()).await.map(|_| ())
    }

    /// Counts a run that did not go through [`Store::begin_run`] (a rollback
    /// under its run's claim) in the history behind rate limits and the storm breaker.
    async fn count_run(
        &self,
        target: &Workload,
        plugin: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        let change = Change::CountRun {
            target: target.clone(),
            plugin: plugin.to_string(),
            at,
        };
        self.commit(vec![change], Vec::new()).await.map(|_| ())
    }

    /// Claims `run.target`, counts an attempt for the incident and the run in
    /// the history, in one transaction. Fails with [`StoreError::TargetBusy`]
    /// when another run holds the target.
    async fn begin_run(&self, run: &ActiveRun) -> Result<(), StoreError> {
        match self
            .commit(vec![Change::BeginRun(run.clone())], Vec::new())
            .await
        {
            Err(StoreError::Refused(_)) => Err(StoreError::TargetBusy(run.target.clone())),
            other => other.map(|_| ()),
        }
    }

    /// Releases the run's target.
    async fn end_run(&self, run: &str) -> Result<(), StoreError> {
        let change = Change::EndRun {
            run: run.to_string(),
        };
        self.commit(vec![change], Vec::new()).await.map(|_| ())
    }

    /// Marks a run's claim as given up by its own process, so the next
    /// recovery treats it as interrupted.
    async fn abandon_run(&self, run: &str) -> Result<(), StoreError> {
        let change = Change::AbandonRun {
            run: run.to_string(),
        };
        self.commit(vec![change], Vec::new()).await.map(|_| ())
    }

    /// Freezes auto-execution until `until`.
    async fn freeze(&self, until: Millis) -> Result<(), StoreError> {
        self.commit(vec![Change::Freeze { until }], Vec::new())
            .await
            .map(|_| ())
    }

    /// Sets (or replaces) the kill switch for `switch.scope`.
    async fn set_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError> {
        self.commit(vec![Change::SetKillSwitch(switch.clone())], Vec::new())
            .await
            .map(|_| ())
    }

    /// Clears the kill switch for `scope`; `true` if there was one.
    async fn clear_kill_switch(&self, scope: Option<&TargetPattern>) -> Result<bool, StoreError> {
        let change = Change::ClearKillSwitch {
            scope: scope.cloned(),
        };
        Ok(self.commit(vec![change], Vec::new()).await?.results[0] > 0)
    }

    /// Adds a window (replacing one of the same name).
    async fn add_window(&self, window: &WindowSpec) -> Result<(), StoreError> {
        self.commit(vec![Change::AddWindow(window.clone())], Vec::new())
            .await
            .map(|_| ())
    }

    /// Deletes a window by name; `true` if there was one.
    async fn delete_window(&self, name: &str) -> Result<bool, StoreError> {
        let change = Change::DeleteWindow {
            name: name.to_string(),
        };
        Ok(self.commit(vec![change], Vec::new()).await?.results[0] > 0)
    }
}
