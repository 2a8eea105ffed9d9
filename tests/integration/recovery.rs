//! Recovery of what a stopped process left behind, beyond interrupted runs
//! with claims (see `respond.rs`): shadow runs, which hold no claim.

use blastwall::guardrails::now_ms;
use blastwall::store::{Change, IncidentState, Store};

use crate::respond::{kinds, setup};

const CPU_SHADOW: &str = r#"
[catalog.cpu-saturation]
plugin = "scale-on-saturation@0.1.0"
mode = "shadow"
params = { step = "2", max = "8" }
"#;

#[tokio::test]
async fn a_shadow_run_a_dead_process_left_running_is_settled_and_decided_again() {
    let l = setup(CPU_SHADOW, true).await;
    let stale = l.fire("CPUThrottlingHigh", "cart", "03:00:00").await;
    let fresh = l.fire("CPUThrottlingHigh", "checkout", "03:00:00").await;
    assert_eq!(stale.decision, "shadow");
    // What a process stopped mid-run leaves: `running`, no claim. One was
    // left twenty minutes ago, the other is (as far as anyone can tell)
    // still running in another process.
    for (incident, at) in [
        (&stale.incident, now_ms() - 20 * 60_000),
        (&fresh.incident, now_ms()),
    ] {
        let change = Change::SetState {
            id: incident.clone(),
            state: IncidentState::Running,
            class: None,
            at,
        };
        l.store.commit(vec![change], Vec::new()).await.unwrap();
    }
    let recovered = l.responder.recover().await.unwrap();
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    assert_eq!(recovered[0].incident, stale.incident);
    assert_eq!(recovered[0].state, IncidentState::Failed);
    assert!(!recovered[0].escalated, "a shadow run changed nothing");
    let row = l.store.incident(&stale.incident).await.unwrap().unwrap();
    assert_eq!(row.state, IncidentState::Failed);
    let still = l.store.incident(&fresh.incident).await.unwrap().unwrap();
    assert_eq!(
        still.state,
        IncidentState::Running,
        "a live run is left alone"
    );
    let recorded = kinds(&l, &stale.incident).await;
    assert_eq!(
        &recorded[recorded.len() - 2..],
        ["run.interrupted", "incident.state"]
    );
    assert!(l.inbox.decisions().is_empty(), "nobody was paged");
    // Recovery is idempotent: a second pass finds nothing.
    assert!(l.responder.recover().await.unwrap().is_empty());
}
