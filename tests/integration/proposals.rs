//! AI proposals end to end: signed plans and components through the real
//! loop, sandbox, store and audit chain. Hallucinated actions are denied at
//! the boundary and recorded; replays, stale or foreign signatures never
//! reach a decision; a human's approval runs a plan once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use blastwall::policy::Tier;
use blastwall::proposal::{ProposalError, SignedHeaders, sign};
use blastwall::respond::{ProposeError, RespondError};
use blastwall::signature::{self, TrustStore, generate_files, read_signing_key};
use blastwall::store::{IncidentState, Store};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::respond::{Loop, alert, kinds, setup};

/// Classes an agent may propose for: automatic where the entry lets a
/// model's (or an agent's) word trigger a run.
const CATALOG: &str = r#"
[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"
model-may-trigger = true
cooldown = "1ms"
rate-limit-per-hour = 50

[catalog.cpu-saturation]
plugin = "scale-on-saturation@0.1.0"
mode = "auto"
model-may-trigger = true
"#;

struct Keys {
    agent: SigningKey,
    publisher: SigningKey,
    stranger: SigningKey,
    trust: TrustStore,
    _dir: tempfile::TempDir,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let mut trust = TrustStore::default();
    let mut read = |name: &str, tier: Option<Tier>| {
        let (key, public, _) = generate_files(dir.path(), name).unwrap();
        if let Some(tier) = tier {
            trust.add(&public, tier, None).unwrap();
        }
        read_signing_key(&key).unwrap()
    };
    let agent = read("agent", Some(Tier::AiAgent));
    let publisher = read("publisher", Some(Tier::Publisher));
    let stranger = read("stranger", None);
    Keys {
        agent,
        publisher,
        stranger,
        trust,
        _dir: dir,
    }
}

async fn proposing() -> (Loop, Keys) {
    let mut l = setup(CATALOG, true).await;
    let k = keys();
    l.responder = l.responder.with_trust(Arc::new(k.trust.clone()));
    (l, k)
}

static NONCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn signed(body: &Value, key: &SigningKey) -> (Vec<u8>, SignedHeaders) {
    let n = NONCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let raw = serde_json::to_vec(body).unwrap();
    let headers = sign(&raw, key, SystemTime::now(), &format!("test-nonce-{n:08}"));
    (raw, headers)
}

fn plan(class: &str, confidence: f64, actions: Value) -> Value {
    json!({
        "alert": alert("KubePodOOMKilled", "checkout", "04:00:00"),
        "class": class,
        "confidence": confidence,
        "rationale": "the pod was OOM-killed three times in ten minutes",
        "actions": actions,
    })
}

async fn propose(
    l: &Loop,
    body: &Value,
    key: &SigningKey,
) -> Result<blastwall::respond::Handled, ProposeError> {
    let (raw, headers) = signed(body, key);
    l.responder
        .propose_signed(&raw, &headers.as_headers())
        .await
}

#[tokio::test]
async fn a_valid_plan_runs_under_the_agent_tier_and_its_effect_happens() {
    let (l, k) = proposing().await;
    let target = "deployment/prod/checkout".parse().unwrap();
    let before = l.fleet.snapshot(&target).unwrap();
    let mut body = plan(
        "cpu-saturation",
        0.95,
        json!([{"capability": "scale", "target": "deployment/prod/checkout", "arguments": {"replicas": 5}}]),
    );
    body["alert"] = json!(alert("CPUThrottlingHigh", "checkout", "04:00:00"));
    let h = propose(&l, &body, &k.agent).await.unwrap();
    assert_eq!(h.decision, "execute", "{h:#?}");
    assert_eq!(h.state, IncidentState::Remediated);
    let run = h.run.as_ref().unwrap();
    assert_eq!(run.plugin, "plan-runner@0.1.0");
    assert_eq!(run.effects.len(), 1, "{run:#?}");
    assert_eq!(run.effects[0].function, "scale.set-replicas");
    assert!(run.denials.is_empty());
    let after = l.fleet.snapshot(&target).unwrap();
    assert_eq!(
        (before.replicas, after.replicas),
        (3, 5),
        "the scale happened"
    );
    let recorded = kinds(&l, &h.incident).await;
    assert_eq!(
        &recorded[..4],
        [
            "proposal.received",
            "alert.received",
            "classification",
            "decision"
        ],
        "{recorded:?}"
    );
    let records = l.store.audit().incident(&h.incident).await.unwrap();
    let received: Value = serde_json::from_str(&records[0].body).unwrap();
    assert_eq!(received["rationale"], body["rationale"]);
    assert_eq!(received["actions"], body["actions"]);
    assert_eq!(received["nonce"].as_str().unwrap().len(), 19);
    let started = records.iter().find(|r| r.kind == "run.started").unwrap();
    let started: Value = serde_json::from_str(&started.body).unwrap();
    assert_eq!(started["provenance"]["kind"], "built-in");
    l.store.audit().verify().await.unwrap();
}

#[tokio::test]
async fn hallucinated_actions_are_denied_at_the_boundary_and_audited() {
    let (l, k) = proposing().await;
    let body = plan(
        "oom-killed",
        0.95,
        json!([
            {"capability": "scale", "target": "deployment/prod/checkout", "arguments": {"replicas": 500}},
            {"capability": "restart", "target": "deployment/prod/payments"},
            {"capability": "rollback", "target": "deployment/prod/checkout"},
        ]),
    );
    let h = propose(&l, &body, &k.agent).await.unwrap();
    assert_eq!(h.decision, "execute", "the plan ran: {h:#?}");
    assert_eq!(h.state, IncidentState::Failed, "a human is told");
    assert!(h.escalated);
    let run = h.run.as_ref().unwrap();
    assert!(run.effects.is_empty(), "{run:#?}");
    let reasons: Vec<&str> = run.denials.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].contains("capability scale is not granted: catalog class oom-killed"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("deployment/prod/payments is outside the restart grant"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[2],
        "capability rollback is not granted: the ai-agent tier withholds it"
    );
    let recorded = kinds(&l, &h.incident).await;
    assert_eq!(
        recorded.iter().filter(|k| *k == "call").count(),
        3,
        "{recorded:?}"
    );
    assert!(!recorded.contains(&"effect.intent".to_string()));

    // Scaling past the tier's bounds, under a class that may scale.
    let mut body = plan(
        "cpu-saturation",
        0.95,
        json!([{"capability": "scale", "target": "deployment/prod/cart", "arguments": {"replicas": 500}}]),
    );
    body["alert"] = json!(alert("CPUThrottlingHigh", "cart", "04:00:00"));
    let h = propose(&l, &body, &k.agent).await.unwrap();
    let run = h.run.as_ref().unwrap();
    assert_eq!(
        run.denials[0].reason,
        "500 replicas for deployment/prod/cart is above the granted maximum of 20"
    );
    // The host keeps working: a sound plan right after runs.
    let mut body = plan(
        "cpu-saturation",
        0.95,
        json!([{"capability": "scale", "target": "deployment/prod/payments", "arguments": {"replicas": 6}}]),
    );
    body["alert"] = json!(alert("CPUThrottlingHigh", "payments", "05:00:00"));
    let h = propose(&l, &body, &k.agent).await.unwrap();
    assert_eq!(h.state, IncidentState::Remediated, "{h:#?}");
    assert_eq!(h.run.unwrap().effects[0].function, "scale.set-replicas");
}

#[tokio::test]
async fn a_replayed_nonce_is_refused_even_concurrently() {
    let (l, k) = proposing().await;
    let body = plan(
        "oom-killed",
        0.95,
        json!([{"capability": "restart", "target": "deployment/prod/checkout"}]),
    );
    let (raw, headers) = signed(&body, &k.agent);
    let responder = Arc::new(l.responder);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (responder, raw, headers) = (responder.clone(), raw.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            responder.propose_signed(&raw, &headers.as_headers()).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert!(
                    matches!(e, ProposeError::Rejected(ProposalError::Replayed(_))),
                    "{e}"
                );
                assert_eq!(e.status(), 409);
            }
        }
    }
    assert_eq!(accepted, 1, "one proposal, one acceptance");
    let again = responder.propose_signed(&raw, &headers.as_headers()).await;
    assert_eq!(again.unwrap_err().status(), 409);
}

#[tokio::test]
async fn stale_foreign_and_unsigned_proposals_never_reach_a_decision() {
    let (l, k) = proposing().await;
    let body = plan(
        "oom-killed",
        0.95,
        json!([{"capability": "restart", "target": "deployment/prod/checkout"}]),
    );
    let raw = serde_json::to_vec(&body).unwrap();
    let now = SystemTime::now();
    let cases: Vec<(SignedHeaders, u16)> = vec![
        (
            sign(
                &raw,
                &k.agent,
                now - Duration::from_secs(600),
                "stale-nonce-0000001",
            ),
            401,
        ),
        (
            sign(
                &raw,
                &k.agent,
                now + Duration::from_secs(600),
                "future-nonce-000001",
            ),
            401,
        ),
        (sign(&raw, &k.publisher, now, "publisher-nonce-001"), 403),
        (sign(&raw, &k.stranger, now, "stranger-nonce-0001"), 401),
    ];
    for (headers, status) in cases {
        let e = l
            .responder
            .propose_signed(&raw, &headers.as_headers())
            .await
            .unwrap_err();
        assert_eq!(e.status(), status, "{e}");
    }
    let mut forged = sign(&raw, &k.agent, now, "forged-nonce-000001");
    forged.signature = sign(b"{}", &k.agent, now, "forged-nonce-000001").signature;
    let e = l
        .responder
        .propose_signed(&raw, &forged.as_headers())
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("bad signature"), "{e}");
    let e = l
        .responder
        .propose_signed(&raw, &Default::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401);
    let mut malformed = body.clone();
    malformed["actions"][0]["sudo"] = json!(true);
    let e = propose(&l, &malformed, &k.agent).await.unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    let too_many: Vec<Value> = (0..17)
        .map(|_| json!({"capability": "restart", "target": "deployment/prod/checkout"}))
        .collect();
    let e = propose(&l, &plan("oom-killed", 0.9, json!(too_many)), &k.agent)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("17 actions"), "{e}");
    // Nothing of it reached the store.
    assert!(l.store.audit().records(0, 10).await.unwrap().is_empty());
    // Without a trust store, proposals are off.
    let off = setup(CATALOG, true).await;
    let (raw, headers) = signed(&body, &k.agent);
    let e = off
        .responder
        .propose_signed(&raw, &headers.as_headers())
        .await
        .unwrap_err();
    assert!(matches!(e, ProposeError::Disabled), "{e}");
}

#[tokio::test]
async fn a_low_confidence_plan_waits_for_a_human_and_runs_once_when_approved() {
    let (l, k) = proposing().await;
    let body = plan(
        "oom-killed",
        0.85,
        json!([{"capability": "restart", "target": "deployment/prod/checkout"}]),
    );
    let h = propose(&l, &body, &k.agent).await.unwrap();
    assert_eq!(h.decision, "await-approval", "{h:#?}");
    assert!(h.run.is_none());
    let approvals = l.store.approvals().await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].plugin, "plan-runner@0.1.0");
    assert_eq!(approvals[0].subject["kind"], "plan");
    assert_eq!(approvals[0].subject["actions"], body["actions"]);
    let id = approvals[0].id.clone();
    let responder = Arc::new(l.responder);
    let mut tasks = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let (responder, id) = (responder.clone(), id.clone());
        tasks.push(tokio::spawn(
            async move { responder.approve(&id, who).await },
        ));
    }
    let mut ran = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(h) => ran.push(h),
            Err(RespondError::NotApprovable(reason)) => {
                assert_eq!(reason, format!("approval {id} is already approved"))
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].state, IncidentState::Remediated, "{:#?}", ran[0]);
    assert_eq!(ran[0].run.as_ref().unwrap().effects.len(), 1);
    let recorded = kinds_of(&l.store, &h.incident).await;
    assert_eq!(recorded.iter().filter(|k| *k == "run.started").count(), 1);
}

async fn kinds_of(store: &blastwall::store::SqliteStore, incident: &str) -> Vec<String> {
    store
        .audit()
        .incident(incident)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

#[tokio::test]
async fn a_proposal_for_an_unknown_or_busy_incident_or_foreign_class_is_refused_and_recorded() {
    let (l, k) = proposing().await;
    let mut body = plan(
        "oom-killed",
        0.95,
        json!([{"capability": "restart", "target": "deployment/prod/checkout"}]),
    );
    body.as_object_mut().unwrap().remove("alert");
    body["incident"] = json!("inc-nope");
    let e = propose(&l, &body, &k.agent).await.unwrap_err();
    assert_eq!(e.status(), 404, "{e}");
    assert_eq!(
        kinds(&l, "inc-nope").await,
        ["proposal.received", "proposal.refused"]
    );
    // Rules classified it oom-killed; an agent cannot reclassify it.
    let h = l.fire("KubePodOOMKilled", "payments", "06:00:00").await;
    body["incident"] = json!(h.incident);
    body["class"] = json!("cpu-saturation");
    let e = propose(&l, &body, &k.agent).await.unwrap_err();
    assert_eq!(e.status(), 422, "{e}");
    assert!(e.to_string().contains("cannot reclassify"), "{e}");
    body["class"] = json!("disk-full");
    let e = propose(&l, &body, &k.agent).await.unwrap_err();
    assert!(e.to_string().contains("cannot reclassify"), "{e}");
}

#[tokio::test]
async fn component_proposals_verify_before_compiling_and_run_under_the_tier() {
    let (l, k) = proposing().await;
    let h = l.fire("KubePodOOMKilled", "checkout", "07:00:00").await;
    assert_eq!(h.state, IncidentState::Remediated);
    let b = blastwall::bundled::find("restart-on-oom").unwrap();
    // A publisher's signature is the wrong tier on this path.
    let by_publisher = signature::sign(b.wasm, b.manifest, &k.publisher).unwrap();
    let e = l
        .responder
        .propose_component(&h.incident, &by_publisher)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403, "{e}");
    // Tampered bytes are refused before anything is compiled.
    let mut tampered = signature::sign(b.wasm, b.manifest, &k.agent).unwrap();
    tampered[100] ^= 0xff;
    let e = l
        .responder
        .propose_component(&h.incident, &tampered)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 401, "{e}");
    assert!(e.to_string().contains("bad signature"), "{e}");
    // An agent's component runs under the ai-agent tier, once.
    let by_agent = signature::sign(b.wasm, b.manifest, &k.agent).unwrap();
    let ran = l
        .responder
        .propose_component(&h.incident, &by_agent)
        .await
        .unwrap();
    assert_eq!(ran.decision, "execute", "{ran:#?}");
    assert_eq!(ran.run.as_ref().unwrap().effects.len(), 1);
    let records = l.store.audit().incident(&h.incident).await.unwrap();
    let started = records
        .iter()
        .rev()
        .find(|r| r.kind == "run.started")
        .unwrap();
    let started: Value = serde_json::from_str(&started.body).unwrap();
    assert_eq!(started["provenance"]["tier"], "ai-agent");
    let again = l
        .responder
        .propose_component(&h.incident, &by_agent)
        .await
        .unwrap_err();
    assert_eq!(again.status(), 409, "{again}");
    // A rollback component from an agent is refused by the tier at load.
    let rb = blastwall::bundled::find("rollback-bad-deploy").unwrap();
    let rollback = signature::sign(rb.wasm, rb.manifest, &k.agent).unwrap();
    let refused = l
        .responder
        .propose_component(&h.incident, &rollback)
        .await
        .unwrap();
    assert_eq!(refused.decision, "refuse", "{refused:#?}");
    assert!(
        refused.reason.contains("the ai-agent tier"),
        "{}",
        refused.reason
    );
}
