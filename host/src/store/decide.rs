//! Deciding inside the writer's transaction (SQLite backend).
//!
//! Everything the guardrails read (the incident, the run history, runs in
//! flight, kill switches, windows, the storm freeze) is read on the writer's
//! own connection inside the transaction that then records the decision and
//! claims the target. Decisions are therefore serialised with every write, and
//! each sees every decision before it, while many of them still share one
//! fsync.

use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::change::{Approver, DecideRequest, Decided};
use super::ops::{begin_run, db};
use super::sqlite::read_controls;
use super::{ActiveRun, Approval, IncidentState};
use crate::audit::{Entry, OpError};
use crate::guardrails::{self, Decision, Guardrail, Observed, Request, Verdict, Window};
use crate::workload::Workload;

fn corrupt(what: &str, value: &str) -> OpError {
    OpError::Database(format!("the store holds an unreadable {what}: {value:?}"))
}

/// Decides on `request`, applies the decision and records it.
pub(super) fn run(
    conn: &rusqlite::Connection,
    request: DecideRequest,
    records: &mut Vec<Entry>,
) -> Result<(), OpError> {
    let outcome = request.outcome.clone();
    let decided = decide(conn, request, records)?;
    *outcome
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(decided);
    Ok(())
}

fn decide(
    conn: &rusqlite::Connection,
    r: DecideRequest,
    records: &mut Vec<Entry>,
) -> Result<Decided, OpError> {
    let row: Option<(String, Option<i64>, i64)> = conn
        .prepare_cached("SELECT state, resolved_at, attempts FROM incidents WHERE id = ?")
        .and_then(|mut s| {
            s.query_row([&r.incident], |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)))
                .optional()
        })
        .map_err(db)?;
    let mut attempts = 0;
    let mut approved = None;
    if let Some((state, resolved_at, used)) = row {
        let state =
            IncidentState::parse(&state).ok_or_else(|| corrupt("incident state", &state))?;
        if let Some(approver) = &r.approval {
            if let Err(reason) = approve(conn, &r, approver, state, resolved_at.is_some())? {
                return Ok(Decided::NotApprovable(reason));
            }
            approved = Some(Entry {
                incident: Some(r.incident.clone()),
                kind: "approval.approved".into(),
                body: json!({"approval": &approver.id, "by": &approver.by}),
            });
        } else {
            let decidable = state.may_decide_again() && resolved_at.is_none();
            // A resolved alert is never acted on, whatever state its incident is in.
            if resolved_at.is_some() || (state != IncidentState::Open && !decidable) {
                return Ok(Decided::Duplicate(state));
            }
        }
        attempts = used as u32;
    } else if r.approval.is_some() {
        return Ok(Decided::NotApprovable(format!(
            "incident {} does not exist",
            r.incident
        )));
    }
    let target = r.target.to_string();
    let scalar = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Option<i64>, OpError> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.query_row(p, |x| x.get(0)))
            .map_err(db)
    };
    let last_run_at = scalar(
        "SELECT MAX(at) FROM run_history WHERE target = ? AND plugin = ?",
        params![target, r.plugin],
    )?;
    let target_runs = scalar(
        "SELECT COUNT(*) FROM run_history WHERE target = ? AND at > ?",
        params![target, r.now - 3_600_000],
    )?
    .unwrap_or(0);
    let storm_window = r.config.storm.window.as_millis() as i64;
    // From the per-second totals: at most one row per second of the window,
    // however busy it was. The second the window starts in counts whole, so
    // the breaker errs by up to a second's runs towards tripping.
    let storm_runs = scalar(
        "SELECT SUM(runs) FROM run_seconds WHERE second >= ?",
        params![(r.now - storm_window).div_euclid(1000)],
    )?
    .unwrap_or(0);
    let mut in_flight = conn
        .prepare_cached("SELECT target FROM active_runs")
        .map_err(db)?;
    let in_flight = in_flight
        .query_map([], |x| x.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db)?
        .into_iter()
        .map(|t| t.parse::<Workload>().map_err(|_| corrupt("target", &t)))
        .collect::<Result<Vec<_>, _>>()?;
    let controls = read_controls(conn).map_err(|e| OpError::Database(e.to_string()))?;
    let mut windows = r.windows.clone();
    let mut unusable = None;
    for spec in controls.windows {
        // Fail closed: a stored window that no longer validates must not
        // silently stop protecting its targets.
        match Window::try_from(spec) {
            Ok(window) => windows.push(window),
            Err(e) => unusable = unusable.or(Some(format!("a stored window is unusable: {e}"))),
        }
    }
    let decision = match unusable {
        Some(reason) => Decision {
            verdict: Verdict::Refuse {
                by: Guardrail::Window,
                reason,
            },
            checks: Vec::new(),
            freeze_until: None,
        },
        None => {
            let observed = Observed {
                kill_switches: controls.kill_switches,
                windows,
                attempts,
                last_run_at,
                target_runs_last_hour: target_runs as u32,
                runs_in_storm_window: storm_runs as u32,
                storm_frozen_until: controls.storm_frozen_until,
                in_flight,
                fleet: r.fleet.clone(),
            };
            let request = Request {
                target: &r.target,
                plugin: &r.plugin,
                confidence: r.confidence,
                rules: &r.rules,
                now: r.now,
                touches_workloads: r.touches_workloads,
            };
            guardrails::evaluate(&r.config, request, &observed)
        }
    };
    if let Some(until) = decision.freeze_until {
        conn.prepare_cached(
            "INSERT INTO storm (id, frozen_until) VALUES (1, ?)
             ON CONFLICT (id) DO UPDATE SET frozen_until = MAX(frozen_until, excluded.frozen_until)",
        )
        .and_then(|mut s| s.execute([until]))
        .map_err(db)?;
    }
    let mut run = None;
    let mut approval_record = None;
    let state = match &decision.verdict {
        Verdict::Execute => {
            let id = format!("{}-run-{}", r.incident, attempts + 1);
            begin_run(
                conn,
                &ActiveRun {
                    run: id.clone(),
                    incident: r.incident.clone(),
                    target: r.target.clone(),
                    plugin: r.plugin.clone(),
                    started_at: r.now,
                    owner: r.owner.clone(),
                },
            )?;
            run = Some(id);
            None
        }
        Verdict::Shadow => Some(IncidentState::Running),
        Verdict::Hold { .. } => Some(IncidentState::Held),
        Verdict::AwaitApproval => Some(IncidentState::AwaitingApproval),
        Verdict::Refuse { .. } | Verdict::Notify => Some(IncidentState::Escalated),
    };
    if decision.verdict == Verdict::AwaitApproval {
        // The request for a human is part of the decision, so an incident is
        // never awaiting an approval nobody can find.
        let earlier = scalar(
            "SELECT COUNT(*) FROM approvals WHERE incident = ?",
            params![r.incident],
        )?
        .unwrap_or(0);
        let approval = Approval {
            id: format!("{}-approval-{}", r.incident, earlier + 1),
            incident: r.incident.clone(),
            plugin: r
                .note
                .get("plugin")
                .and_then(|p| p.as_str())
                .unwrap_or(&r.plugin)
                .to_string(),
            state: "pending".into(),
            created_at: r.now,
            subject: r.subject.clone(),
            decided_by: None,
            decided_at: None,
            reason: None,
        };
        conn.prepare_cached(
            "INSERT INTO approvals (id, incident, plugin, state, created_at, subject)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .and_then(|mut s| {
            s.execute(params![
                approval.id,
                approval.incident,
                approval.plugin,
                approval.state,
                approval.created_at,
                approval.subject.to_string()
            ])
        })
        .map_err(db)?;
        approval_record = Some(Entry {
            incident: Some(r.incident.clone()),
            kind: "approval.requested".into(),
            body: json!(&approval),
        });
    }
    if let Some(state) = state {
        conn.prepare_cached("UPDATE incidents SET state = ?, updated_at = ? WHERE id = ?")
            .and_then(|mut s| s.execute(params![state.as_str(), r.now, r.incident]))
            .map_err(db)?;
    }
    records.extend(approved);
    let mut body = r.note;
    body.insert("decision".into(), json!(&decision));
    body.insert("fleet".into(), json!(&r.fleet));
    records.push(Entry {
        incident: Some(r.incident.clone()),
        kind: "decision".into(),
        body: body.into(),
    });
    records.extend(approval_record);
    if let Some(id) = &run {
        let mut started = r.started;
        started.insert("run".into(), json!(id));
        records.push(Entry {
            incident: Some(r.incident.clone()),
            kind: "run.started".into(),
            body: started.into(),
        });
    }
    Ok(Decided::Decision { decision, run })
}

/// Turns the decision's pending approval into `approved`, or says why it
/// cannot be: it is not pending (approved or denied before, perhaps by a
/// concurrent request), or its incident no longer waits for it.
fn approve(
    conn: &rusqlite::Connection,
    r: &DecideRequest,
    approver: &Approver,
    state: IncidentState,
    resolved: bool,
) -> Result<Result<(), String>, OpError> {
    let current: Option<(String, String)> = conn
        .prepare_cached("SELECT state, incident FROM approvals WHERE id = ?")
        .and_then(|mut s| {
            s.query_row([&approver.id], |x| Ok((x.get(0)?, x.get(1)?)))
                .optional()
        })
        .map_err(db)?;
    match current {
        None => return Ok(Err(format!("approval {} does not exist", approver.id))),
        Some((_, incident)) if incident != r.incident => {
            return Ok(Err(format!(
                "approval {} belongs to incident {incident}, not {}",
                approver.id, r.incident
            )));
        }
        Some((current, _)) if current != "pending" => {
            return Ok(Err(format!(
                "approval {} is already {current}",
                approver.id
            )));
        }
        Some(_) => {}
    }
    if resolved {
        return Ok(Err(format!(
            "incident {} has resolved: nothing left to approve",
            r.incident
        )));
    }
    if state != IncidentState::AwaitingApproval {
        return Ok(Err(format!(
            "incident {} is {}, not awaiting approval",
            r.incident,
            state.as_str()
        )));
    }
    conn.prepare_cached(
        "UPDATE approvals SET state = 'approved', decided_by = ?, decided_at = ?
         WHERE id = ? AND state = 'pending'",
    )
    .and_then(|mut s| s.execute(params![approver.by, r.now, approver.id]))
    .map_err(db)?;
    Ok(Ok(()))
}
