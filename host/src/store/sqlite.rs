//! The embedded store: the host's state in the same SQLite file as the audit chain.
//!
//! State changes commit with `synchronous=FULL` like audit records, so a
//! claimed target or a counted attempt survives a crash; that is what lets a
//! restarted host find the runs it was in the middle of. Transactions that
//! read and then write start with `BEGIN IMMEDIATE`, so two writers never
//! deadlock on a lock upgrade.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::ops::op;
use super::{
    ActiveRun, Approval, Change, Controls, IncidentQuery, IncidentRow, IncidentState, Store,
    StoreError,
};
use crate::alert::Alert;
use crate::audit::{AuditLog, Committed, Entry};
use crate::guardrails::KillSwitch;
use crate::workload::Workload;

const SCHEMA: [&str; 13] = [
    "CREATE TABLE IF NOT EXISTS incidents (
        id TEXT PRIMARY KEY,
        alert TEXT NOT NULL,
        target TEXT NOT NULL,
        class TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        deliveries INTEGER NOT NULL DEFAULT 1,
        opened_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        resolved_at INTEGER,
        alert_json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS active_runs (
        target TEXT PRIMARY KEY,
        run TEXT NOT NULL UNIQUE,
        incident TEXT NOT NULL,
        plugin TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        owner TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS run_history (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        plugin TEXT NOT NULL,
        at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS run_history_target ON run_history (target, at)",
    "CREATE INDEX IF NOT EXISTS run_history_at ON run_history (at)",
    // Runs per second, fleet-wide, for the storm breaker (see `ops::count_run`).
    "CREATE TABLE IF NOT EXISTS run_seconds (
        second INTEGER PRIMARY KEY,
        runs INTEGER NOT NULL)",
    // The empty scope is the global kill switch.
    "CREATE TABLE IF NOT EXISTS kill_switches (
        scope TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        set_by TEXT NOT NULL,
        set_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS windows (name TEXT PRIMARY KEY, spec TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS storm (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        frozen_until INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        incident TEXT NOT NULL,
        plugin TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        subject TEXT NOT NULL DEFAULT '{}',
        decided_by TEXT,
        decided_at INTEGER,
        reason TEXT)",
    "CREATE INDEX IF NOT EXISTS approvals_incident ON approvals (incident)",
    // Nonces of accepted proposals (and component proposals' incident and
    // digest, kept for good): each is spent once.
    "CREATE TABLE IF NOT EXISTS spent_nonces (
        key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        at INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (key, nonce))",
    "CREATE INDEX IF NOT EXISTS spent_nonces_expires ON spent_nonces (expires)",
];

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    pool: SqlitePool,
    audit: AuditLog,
}

impl SqliteStore {
    /// Opens (creating if needed) `blastwall.db` in `dir`: the audit chain and the state tables.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        let audit = AuditLog::open(dir).await?;
        let path = audit.path().to_path_buf();
        let fail = database_error(&path);
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(&fail)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(&fail)?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await.map_err(&fail)?;
        }
        // Stores made before the per-second run totals: count their history once.
        sqlx::query(
            "INSERT INTO run_seconds (second, runs)
             SELECT at / 1000, COUNT(*) FROM run_history
             WHERE NOT EXISTS (SELECT 1 FROM run_seconds) GROUP BY at / 1000",
        )
        .execute(&pool)
        .await
        .map_err(&fail)?;
        // Stores made before approvals carried their subject and decider.
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('approvals')")
                .fetch_all(&pool)
                .await
                .map_err(&fail)?;
        for (column, ty) in APPROVAL_ADDED_COLUMNS {
            if !columns.iter().any(|c| c == column) {
                sqlx::query(&format!("ALTER TABLE approvals ADD COLUMN {column} {ty}"))
                    .execute(&pool)
                    .await
                    .map_err(&fail)?;
            }
        }
        drop(fail);
        Ok(SqliteStore { path, pool, audit })
    }

    fn fail(&self) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        database_error(&self.path)
    }
}

fn database_error(path: &Path) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError::Database {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn workload(raw: String) -> Result<Workload, StoreError> {
    raw.parse().map_err(|_| StoreError::Corrupt {
        what: "target",
        value: raw,
    })
}

fn incident_row(row: &sqlx::sqlite::SqliteRow) -> Result<IncidentRow, StoreError> {
    let state: String = row.get("state");
    Ok(IncidentRow {
        id: row.get("id"),
        alert: row.get("alert"),
        target: row.get("target"),
        class: row.get("class"),
        state: IncidentState::parse(&state).ok_or(StoreError::Corrupt {
            what: "incident state",
            value: state,
        })?,
        attempts: row.get::<i64, _>("attempts") as u32,
        deliveries: row.get::<i64, _>("deliveries") as u32,
        opened_at: row.get("opened_at"),
        updated_at: row.get("updated_at"),
        resolved_at: row.get("resolved_at"),
    })
}

/// Kill switches, windows and the storm freeze, read on `conn` (inside the
/// writer's transaction when deciding).
pub(super) fn read_controls(conn: &rusqlite::Connection) -> Result<Controls, StoreError> {
    use rusqlite::OptionalExtension;
    let fail = |e: rusqlite::Error| StoreError::Database {
        path: "blastwall.db".into(),
        message: e.to_string(),
    };
    let frozen: Option<i64> = conn
        .prepare_cached("SELECT frozen_until FROM storm WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(fail)?;
    let mut switches = conn
        .prepare_cached("SELECT scope, reason, set_by, set_at FROM kill_switches ORDER BY scope")
        .map_err(fail)?;
    let switches = switches
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(fail)?;
    let kill_switches = switches
        .into_iter()
        .map(|(scope, reason, set_by, set_at)| {
            let pattern = if scope.is_empty() {
                None
            } else {
                Some(scope.parse().map_err(|_| StoreError::Corrupt {
                    what: "kill switch scope",
                    value: scope.clone(),
                })?)
            };
            Ok(KillSwitch {
                scope: pattern,
                reason,
                set_by,
                set_at,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let mut windows = conn
        .prepare_cached("SELECT spec FROM windows ORDER BY name")
        .map_err(fail)?;
    let windows = windows
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(fail)?
        .into_iter()
        .map(|spec| {
            serde_json::from_str(&spec).map_err(|_| StoreError::Corrupt {
                what: "window",
                value: spec,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Controls {
        kill_switches,
        windows,
        storm_frozen_until: frozen,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn audit(&self) -> &AuditLog {
        &self.audit
    }

    async fn commit(
        &self,
        changes: Vec<Change>,
        records: Vec<Entry>,
    ) -> Result<Committed, StoreError> {
        let ops = changes.into_iter().map(op).collect();
        match self.audit.commit(ops, records).await {
            Err(crate::audit::AuditError::Refused(why)) => Err(StoreError::Refused(why)),
            other => Ok(other?),
        }
    }

    async fn alert_of(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT alert_json FROM incidents WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.fail())?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|_| StoreError::Corrupt {
                what: "alert",
                value: id.to_string(),
            })
        })
        .transpose()
    }

    async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM incidents WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail())?;
        row.as_ref().map(incident_row).transpose()
    }

    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM incidents
             WHERE (?1 IS NULL OR state = ?1)
               AND (?2 IS NULL OR updated_at < ?2 OR (updated_at = ?2 AND id > ?5))
               AND (?3 = 0 OR resolved_at IS NULL)
             ORDER BY updated_at DESC, id LIMIT ?4",
        )
        .bind(query.state.map(IncidentState::as_str))
        .bind(query.updated_before)
        .bind(query.unresolved)
        .bind(query.limit)
        .bind(query.after_id.as_deref())
        .fetch_all(&self.pool)
        .await
        .map_err(self.fail())?;
        rows.iter().map(incident_row).collect()
    }

    async fn controls(&self) -> Result<Controls, StoreError> {
        let path = self.path.clone();
        let failed = |message: String| StoreError::Database {
            path: self.path.display().to_string(),
            message,
        };
        tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(|e| StoreError::Database {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            // One read transaction: switches, windows and freeze from one moment.
            let tx = conn
                .unchecked_transaction()
                .map_err(|e| StoreError::Database {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
            read_controls(&tx)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
    }

    async fn active_runs(&self) -> Result<Vec<ActiveRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, run, incident, plugin, started_at, owner FROM active_runs ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.fail())?;
        rows.iter()
            .map(|row| {
                Ok(ActiveRun {
                    run: row.get("run"),
                    incident: row.get("incident"),
                    target: workload(row.get("target"))?,
                    plugin: row.get("plugin"),
                    started_at: row.get("started_at"),
                    owner: row.get("owner"),
                })
            })
            .collect()
    }

    async fn approvals(&self) -> Result<Vec<Approval>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.fail())?;
        rows.iter().map(approval_of).collect()
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.fail())?;
        row.as_ref().map(approval_of).transpose()
    }
}

/// Columns added to `approvals` after its first version, with their types.
const APPROVAL_ADDED_COLUMNS: [(&str, &str); 4] = [
    ("subject", "TEXT NOT NULL DEFAULT '{}'"),
    ("decided_by", "TEXT"),
    ("decided_at", "INTEGER"),
    ("reason", "TEXT"),
];

const APPROVAL_COLUMNS: &str =
    "id, incident, plugin, state, created_at, subject, decided_by, decided_at, reason";

fn approval_of(row: &sqlx::sqlite::SqliteRow) -> Result<Approval, StoreError> {
    let subject: String = row.get("subject");
    Ok(Approval {
        id: row.get("id"),
        incident: row.get("incident"),
        plugin: row.get("plugin"),
        state: row.get("state"),
        created_at: row.get("created_at"),
        subject: serde_json::from_str(&subject).map_err(|_| StoreError::Corrupt {
            what: "approval subject",
            value: subject.clone(),
        })?,
        decided_by: row.get("decided_by"),
        decided_at: row.get("decided_at"),
        reason: row.get("reason"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Entry;
    use crate::guardrails::Millis;

    fn run(id: &str, target: &str, at: Millis) -> ActiveRun {
        ActiveRun {
            run: id.into(),
            incident: "inc-1".into(),
            target: target.parse().unwrap(),
            plugin: "restart-on-oom".into(),
            started_at: at,
            owner: "test".into(),
        }
    }

    #[tokio::test]
    async fn claims_a_target_once_and_counts_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let target: Workload = "deployment/prod/checkout".parse().unwrap();
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "status": "firing", "labels": {"alertname": "OOM"}
        }))
        .unwrap();
        let (row, new) = store
            .open_incident("inc-1", &alert, &target.to_string(), 1000)
            .await
            .unwrap();
        assert!(new && row.state == IncidentState::Open && row.deliveries == 1);
        assert_eq!(store.alert_of("inc-1").await.unwrap(), Some(alert.clone()));
        assert!(store.mark_resolved("inc-1", 1500).await.unwrap());
        let (row, new) = store
            .open_incident("inc-1", &alert, &target.to_string(), 1001)
            .await
            .unwrap();
        assert_eq!(row.resolved_at, Some(1500));
        assert!(
            !new && row.deliveries == 2,
            "a repeated delivery is counted"
        );

        store
            .begin_run(&run("r1", "deployment/prod/checkout", 2000))
            .await
            .unwrap();
        let busy = store
            .begin_run(&run("r2", "deployment/prod/checkout", 2001))
            .await;
        assert!(matches!(busy, Err(StoreError::TargetBusy(_))), "{busy:?}");
        let row = store.incident("inc-1").await.unwrap().unwrap();
        assert_eq!(row.attempts, 1);
        let active = store.active_runs().await.unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].target, target);
        assert_eq!(
            store.incident("inc-1").await.unwrap().unwrap().state,
            IncidentState::Running
        );

        store.end_run("r1").await.unwrap();
        assert!(store.active_runs().await.unwrap().is_empty());
        // The target is free again.
        store
            .begin_run(&run("r3", "deployment/prod/checkout", 3000))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refused_change_undoes_only_its_own_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store
            .begin_run(&run("r1", "deployment/prod/checkout", 1))
            .await
            .unwrap();
        let entry = |kind: &str| Entry {
            incident: None,
            kind: kind.into(),
            body: serde_json::json!({}),
        };
        // Queued together (usually one transaction): the refused claim rolls
        // back with everything else in its commit; the other commit lands.
        let refused = store.commit(
            vec![
                Change::Freeze { until: 7 },
                Change::BeginRun(run("r2", "deployment/prod/checkout", 2)),
            ],
            vec![entry("never-written")],
        );
        let kept = store.commit(vec![Change::Freeze { until: 5 }], vec![entry("kept")]);
        let (refused, kept) = tokio::join!(refused, kept);
        assert!(
            matches!(refused, Err(StoreError::Refused(_))),
            "{refused:?}"
        );
        kept.unwrap();
        let kinds: Vec<String> = store
            .audit()
            .records(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.kind)
            .collect();
        assert_eq!(kinds, ["kept"]);
        assert_eq!(
            store.controls().await.unwrap().storm_frozen_until,
            Some(5),
            "the refused commit's freeze was undone with it"
        );
        store.audit().verify().await.unwrap();
    }

    #[tokio::test]
    async fn a_row_beyond_the_signed_head_stops_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let entry = Entry {
            incident: None,
            kind: "first".into(),
            body: serde_json::json!({}),
        };
        store.record(entry.clone()).await.unwrap();
        let rogue =
            rusqlite::Connection::open(dir.path().join(crate::store::DATABASE_FILE)).unwrap();
        rogue
            .execute(
                "INSERT INTO audit (seq, at, incident, kind, body, prev_hash, hash)
                 VALUES (2, 'now', NULL, 'forged', '{}', 'x', 'y')",
                [],
            )
            .unwrap();
        let refused = store.freeze(9).await.unwrap_err().to_string();
        assert!(
            refused.contains("the audit head does not name the chain's last record"),
            "{refused}"
        );
        assert_eq!(
            store.controls().await.unwrap().storm_frozen_until,
            None,
            "no state change without its record"
        );
    }

    /// The SQL that closes an incident on resolution must agree with
    /// `may_decide_again`: every decidable state (and a pending approval)
    /// closes; a run in flight, an escalation or an interruption does not.
    #[tokio::test]
    async fn a_resolution_closes_exactly_the_states_nobody_is_acting_on() {
        use IncidentState::*;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "status": "firing", "labels": {"alertname": "A"}
        }))
        .unwrap();
        for state in [
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
        ] {
            let id = format!("inc-{}", state.as_str());
            store.open_incident(&id, &alert, "t", 1).await.unwrap();
            store.set_state(&id, state, None, 2).await.unwrap();
            store.mark_resolved(&id, 3).await.unwrap();
            let after = store.incident(&id).await.unwrap().unwrap().state;
            let closes = state.may_decide_again() || state == AwaitingApproval;
            let expected = if closes { Resolved } else { state };
            assert_eq!(after, expected, "{state:?}");
        }
    }

    #[tokio::test]
    async fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).await.unwrap();
            store
                .begin_run(&run("r1", "deployment/prod/cart", 5))
                .await
                .unwrap();
            store
                .set_kill_switch(&KillSwitch {
                    scope: Some("deployment/prod/*".parse().unwrap()),
                    reason: "review".into(),
                    set_by: "alice".into(),
                    set_at: 7,
                })
                .await
                .unwrap();
            store.freeze(99).await.unwrap();
            store.freeze(50).await.unwrap();
        }
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let active = store.active_runs().await.unwrap();
        assert_eq!(active, vec![run("r1", "deployment/prod/cart", 5)]);
        let h = store.controls().await.unwrap();
        assert_eq!(h.kill_switches.len(), 1);
        assert_eq!(
            h.storm_frozen_until,
            Some(99),
            "a freeze is never shortened"
        );
        assert!(
            store
                .clear_kill_switch(Some(&"deployment/prod/*".parse().unwrap()))
                .await
                .unwrap()
        );
        assert!(!store.clear_kill_switch(None).await.unwrap());
    }
}
