//! Approvals: a human's yes runs what waited for it exactly once, through the
//! same guardrails; a no runs nothing and leaves the incident with a human.

use std::sync::Arc;

use blastwall::guardrails::KillSwitch;
use blastwall::guardrails::now_ms;
use blastwall::respond::RespondError;
use blastwall::store::{IncidentState, Store};

use crate::respond::{kinds, setup};

const APPROVE_ROLLBACK: &str = r#"
[catalog.error-spike-after-deploy]
plugin = "rollback-bad-deploy@0.1.0"
mode = "approve"
"#;

async fn awaiting(l: &crate::respond::Loop) -> (String, String) {
    let h = l
        .fire("HighErrorRateAfterDeploy", "checkout", "03:00:00")
        .await;
    assert_eq!(h.decision, "await-approval", "{h:#?}");
    let approvals = l.store.approvals().await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].incident, h.incident);
    assert_eq!(approvals[0].subject["kind"], "catalog");
    (h.incident, approvals[0].id.clone())
}

#[tokio::test]
async fn concurrent_approvals_run_the_plugin_exactly_once() {
    let l = setup(APPROVE_ROLLBACK, true).await;
    let (incident, id) = awaiting(&l).await;
    let target = "deployment/prod/checkout".parse().unwrap();
    let before = l.fleet.snapshot(&target).unwrap();
    let responder = Arc::new(l.responder);
    let mut tasks = Vec::new();
    for who in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        let (responder, id) = (responder.clone(), id.clone());
        tasks.push(tokio::spawn(
            async move { responder.approve(&id, who).await },
        ));
    }
    let mut ran = Vec::new();
    let mut refused = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(handled) => ran.push(handled),
            Err(RespondError::NotApprovable(reason)) => refused.push(reason),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(ran.len(), 1, "{ran:#?}");
    assert_eq!(refused.len(), 5, "{refused:?}");
    for reason in &refused {
        assert!(
            reason == &format!("approval {id} is already approved"),
            "{reason}"
        );
    }
    let handled = &ran[0];
    assert_eq!(handled.decision, "execute", "{handled:#?}");
    assert_eq!(handled.state, IncidentState::Remediated);
    let run = handled.run.as_ref().unwrap();
    assert_eq!(run.effects.len(), 1);
    assert_eq!(run.effects[0].function, "rollback.rollback");
    let after = l.fleet.snapshot(&target).unwrap();
    // A rollback rolls out the previous template as a new revision, as
    // Kubernetes does: one rollback is one revision more, not six.
    assert_eq!(after.revision, before.revision + 1, "one rollback, not six");

    let approval = l.store.approval(&id).await.unwrap().unwrap();
    assert_eq!(approval.state, "approved");
    assert!(approval.decided_by.is_some());
    let recorded: Vec<String> = l
        .store
        .audit()
        .incident(&incident)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    let approved = recorded
        .iter()
        .position(|k| k == "approval.approved")
        .expect("the approval is on the record");
    assert_eq!(
        &recorded[approved + 1..approved + 3],
        ["decision", "run.started"],
        "approving, deciding and claiming are one commit: {recorded:?}"
    );
    assert_eq!(
        recorded.iter().filter(|k| *k == "run.started").count(),
        1,
        "{recorded:?}"
    );
    l.store.audit().verify().await.unwrap();
}

#[tokio::test]
async fn a_denied_approval_runs_nothing_and_cannot_be_approved_later() {
    let l = setup(APPROVE_ROLLBACK, true).await;
    let (incident, id) = awaiting(&l).await;
    let denied = l
        .responder
        .deny(&id, "alice", "the deploy is being fixed forward")
        .await
        .unwrap();
    assert_eq!(denied.state, "denied");
    assert_eq!(denied.decided_by.as_deref(), Some("alice"));
    assert_eq!(
        denied.reason.as_deref(),
        Some("the deploy is being fixed forward")
    );
    let row = l.store.incident(&incident).await.unwrap().unwrap();
    assert_eq!(row.state, IncidentState::Escalated);

    let err = l.responder.approve(&id, "bob").await.unwrap_err();
    assert_eq!(err.to_string(), format!("approval {id} is already denied"));
    let err = l.responder.deny(&id, "bob", "again").await.unwrap_err();
    assert_eq!(err.to_string(), format!("approval {id} is already denied"));
    let again = l
        .fire("HighErrorRateAfterDeploy", "checkout", "03:00:00")
        .await;
    assert_eq!(again.decision, "duplicate", "a human has it: {again:#?}");
    let recorded = kinds(&l, &incident).await;
    assert!(recorded.contains(&"approval.denied".to_string()));
    assert!(!recorded.contains(&"run.started".to_string()));
}

#[tokio::test]
async fn an_approval_still_meets_the_kill_switch() {
    let l = setup(APPROVE_ROLLBACK, true).await;
    let (_, id) = awaiting(&l).await;
    l.store
        .set_kill_switch(&KillSwitch {
            scope: None,
            reason: "incident review".into(),
            set_by: "carol".into(),
            set_at: now_ms(),
        })
        .await
        .unwrap();
    let handled = l.responder.approve(&id, "alice").await.unwrap();
    assert_eq!(handled.decision, "refuse", "{handled:#?}");
    assert_eq!(handled.guardrail.as_deref(), Some("kill-switch"));
    assert!(handled.run.is_none());
    // The yes was spent: approving again does not get around the switch later.
    let err = l.responder.approve(&id, "alice").await.unwrap_err();
    assert!(err.to_string().contains("already approved"), "{err}");
}

#[tokio::test]
async fn approvals_that_do_not_exist_or_whose_alert_resolved_are_refused() {
    let l = setup(APPROVE_ROLLBACK, true).await;
    let err = l.responder.approve("nope", "alice").await.unwrap_err();
    assert_eq!(err.to_string(), "approval nope does not exist");
    let (incident, id) = awaiting(&l).await;
    let mut resolved = crate::respond::alert("HighErrorRateAfterDeploy", "checkout", "03:00:00");
    resolved.status = "resolved".into();
    l.responder.handle(resolved).await.unwrap();
    let err = l.responder.approve(&id, "alice").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("incident {incident} has resolved: nothing left to approve")
    );
    let approval = l.store.approval(&id).await.unwrap().unwrap();
    assert_eq!(approval.state, "pending", "nothing was approved");
}
