//! The SQL of each [`Change`], run on the writer's connection inside its
//! transaction (SQLite backend).

use super::{ActiveRun, Change};
use crate::audit::{Entry, Op, OpError};

/// Run history older than this is pruned: no guardrail looks further back.
const HISTORY_KEPT: crate::guardrails::Millis = 7 * 86_400_000;

/// The empty scope is the global kill switch.
fn scope_key(scope: Option<&crate::policy::TargetPattern>) -> String {
    scope.map(ToString::to_string).unwrap_or_default()
}

pub(super) fn db(e: rusqlite::Error) -> OpError {
    OpError::Database(e.to_string())
}

/// Runs one statement with its parameters on the writer's connection; yields rows changed.
fn statement<P>(sql: &'static str, params: P) -> Op
where
    P: rusqlite::Params + Send + 'static,
{
    Box::new(move |conn: &rusqlite::Connection, _: &mut Vec<Entry>| {
        let mut statement = conn.prepare_cached(sql).map_err(db)?;
        Ok(statement.execute(params).map_err(db)? as i64)
    })
}

/// Claims a run's target, counts the attempt and the run; refused when held.
pub(super) fn begin_run(conn: &rusqlite::Connection, run: &ActiveRun) -> Result<(), OpError> {
    use rusqlite::params;
    let target = run.target.to_string();
    let claimed = conn
        .prepare_cached(
            "INSERT INTO active_runs (target, run, incident, plugin, started_at, owner)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (target) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                target,
                run.run,
                run.incident,
                run.plugin,
                run.started_at,
                run.owner
            ])
        })
        .map_err(db)?;
    if claimed == 0 {
        return Err(OpError::Refused(format!(
            "{target} already has a remediation in flight"
        )));
    }
    let run_statement = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(p))
            .map_err(db)
    };
    run_statement(
        "UPDATE incidents SET attempts = attempts + 1, state = 'running', updated_at = ? WHERE id = ?",
        params![run.started_at, run.incident],
    )?;
    count_run(conn, &target, &run.plugin, run.started_at)
}

/// Counts a run in the history (per target, for cooldowns and rate limits)
/// and in the per-second totals (fleet-wide, for the storm breaker, which
/// then sums at most one row per second of its window instead of scanning
/// every run in it); prunes both past what any guardrail looks back at.
fn count_run(
    conn: &rusqlite::Connection,
    target: &str,
    plugin: &str,
    at: crate::guardrails::Millis,
) -> Result<(), OpError> {
    use rusqlite::params;
    let run_statement = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(p))
            .map_err(db)
    };
    run_statement(
        "INSERT INTO run_history (target, plugin, at) VALUES (?, ?, ?)",
        params![target, plugin, at],
    )?;
    run_statement(
        "INSERT INTO run_seconds (second, runs) VALUES (?, 1)
         ON CONFLICT (second) DO UPDATE SET runs = runs + 1",
        params![at.div_euclid(1000)],
    )?;
    run_statement(
        "DELETE FROM run_history WHERE at < ?",
        params![at - HISTORY_KEPT],
    )?;
    run_statement(
        "DELETE FROM run_seconds WHERE second < ?",
        params![(at - HISTORY_KEPT).div_euclid(1000)],
    )?;
    Ok(())
}

/// The SQL for one change, run inside the writer's transaction.
pub(super) fn op(change: Change) -> Op {
    use rusqlite::params;
    match change {
        Change::OpenIncident {
            id,
            alert,
            target,
            at,
        } => {
            let alert_json = serde_json::to_string(&alert).expect("an alert serialises");
            let name = alert.name().to_string();
            Box::new(move |conn: &rusqlite::Connection, _: &mut Vec<Entry>| {
                // One statement: the count it returns is this delivery's, even
                // when the same alert arrives twice at once.
                conn.prepare_cached(
                    "INSERT INTO incidents (id, alert, target, state, opened_at, updated_at, alert_json)
                     VALUES (?, ?, ?, 'open', ?, ?, ?)
                     ON CONFLICT (id) DO UPDATE SET deliveries = deliveries + 1
                     RETURNING deliveries",
                )
                .and_then(|mut s| {
                    s.query_row(params![id, name, target, at, at, alert_json], |r| r.get(0))
                })
                .map_err(db)
            })
        }
        Change::SetState {
            id,
            state,
            class,
            at,
        } => statement(
            "UPDATE incidents SET state = ?, class = COALESCE(?, class), updated_at = ? WHERE id = ?",
            (state.as_str(), class, at, id),
        ),
        Change::SetClass { id, class } => {
            statement("UPDATE incidents SET class = ? WHERE id = ?", (class, id))
        }
        // Closes the incident too, unless a run is in flight (its verification
        // reads the resolution), a human holds it, or it was interrupted.
        Change::MarkResolved { id, at } => statement(
            "UPDATE incidents SET resolved_at = COALESCE(resolved_at, ?),
                 state = CASE WHEN state IN ('open', 'held', 'failed', 'shadowed', 'remediated', 'awaiting-approval')
                              THEN 'resolved' ELSE state END,
                 updated_at = ?
             WHERE id = ?",
            (at, at, id),
        ),
        Change::BeginRun(run) => Box::new(move |conn: &rusqlite::Connection, _: &mut Vec<Entry>| {
            begin_run(conn, &run)?;
            Ok(1)
        }),
        Change::Decide(request) => Box::new(move |conn: &rusqlite::Connection, records: &mut Vec<Entry>| {
            super::decide::run(conn, *request, records)?;
            Ok(1)
        }),
        Change::EndRun { run } => statement("DELETE FROM active_runs WHERE run = ?", (run,)),
        Change::AbandonRun { run } => statement(
            "UPDATE active_runs SET owner = ? WHERE run = ?",
            (super::owner::ABANDONED, run),
        ),
        Change::CountRun { target, plugin, at } => {
            Box::new(move |conn: &rusqlite::Connection, _: &mut Vec<Entry>| {
                count_run(conn, &target.to_string(), &plugin, at)?;
                Ok(1)
            })
        }
        Change::Freeze { until } => statement(
            "INSERT INTO storm (id, frozen_until) VALUES (1, ?)
             ON CONFLICT (id) DO UPDATE SET frozen_until = MAX(frozen_until, excluded.frozen_until)",
            (until,),
        ),
        Change::SetKillSwitch(switch) => statement(
            "INSERT INTO kill_switches (scope, reason, set_by, set_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (scope) DO UPDATE SET reason = excluded.reason,
                 set_by = excluded.set_by, set_at = excluded.set_at",
            (
                scope_key(switch.scope.as_ref()),
                switch.reason,
                switch.set_by,
                switch.set_at,
            ),
        ),
        Change::ClearKillSwitch { scope } => statement(
            "DELETE FROM kill_switches WHERE scope = ?",
            (scope_key(scope.as_ref()),),
        ),
        Change::AddWindow(window) => statement(
            "INSERT INTO windows (name, spec) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
            (
                window.name.clone(),
                serde_json::to_string(&window).expect("a window serialises"),
            ),
        ),
        Change::DeleteWindow { name } => statement("DELETE FROM windows WHERE name = ?", (name,)),
        Change::SpendNonce {
            key,
            nonce,
            at,
            expires,
        } => Box::new(move |conn: &rusqlite::Connection, _: &mut Vec<Entry>| {
            spend_nonce(conn, &key, &nonce, at, expires)
        }),
        Change::DenyApproval { id, by, reason, at } => {
            Box::new(move |conn: &rusqlite::Connection, _: &mut Vec<Entry>| {
                deny_approval(conn, &id, &by, &reason, at)
            })
        }
    }
}

/// Denies a pending approval and escalates its incident, or refuses.
fn deny_approval(
    conn: &rusqlite::Connection,
    id: &str,
    by: &str,
    reason: &str,
    at: crate::guardrails::Millis,
) -> Result<i64, OpError> {
    use rusqlite::{OptionalExtension, params};
    let incident: Option<String> = conn
        .prepare_cached(
            "UPDATE approvals SET state = 'denied', decided_by = ?, decided_at = ?, reason = ?
             WHERE id = ? AND state = 'pending' RETURNING incident",
        )
        .and_then(|mut s| {
            s.query_row(params![by, at, reason, id], |r| r.get(0))
                .optional()
        })
        .map_err(db)?;
    let Some(incident) = incident else {
        return Err(OpError::Refused(format!("approval {id} is not pending")));
    };
    conn.prepare_cached(
        "UPDATE incidents SET state = 'escalated', updated_at = ?
         WHERE id = ? AND state = 'awaiting-approval'",
    )
    .and_then(|mut s| s.execute(params![at, incident]))
    .map_err(db)?;
    Ok(1)
}

/// Spends `(key, nonce)` once, or refuses; prunes nonces that have expired.
fn spend_nonce(
    conn: &rusqlite::Connection,
    key: &str,
    nonce: &str,
    at: crate::guardrails::Millis,
    expires: Option<crate::guardrails::Millis>,
) -> Result<i64, OpError> {
    use rusqlite::params;
    conn.prepare_cached("DELETE FROM spent_nonces WHERE expires < ?")
        .and_then(|mut s| s.execute(params![at]))
        .map_err(db)?;
    let spent = conn
        .prepare_cached(
            "INSERT INTO spent_nonces (key, nonce, at, expires) VALUES (?, ?, ?, ?)
             ON CONFLICT (key, nonce) DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![key, nonce, at, expires.unwrap_or(i64::MAX)]))
        .map_err(db)?;
    if spent == 0 {
        return Err(OpError::Refused(format!(
            "nonce {nonce:?} of key {key} was already used"
        )));
    }
    Ok(1)
}
