//! The envelope and the plan: every way a proposal is refused, with its status.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use serde_json::json;

use super::*;
use crate::signature::{TrustStore, generate_files, read_signing_key};

struct Agent {
    key: SigningKey,
    trust: TrustStore,
    _dir: tempfile::TempDir,
}

fn agent(tier: Tier) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate_files(dir.path(), "agent").unwrap();
    let mut trust = TrustStore::default();
    trust.add(&public, tier, None).unwrap();
    Agent {
        key: read_signing_key(&key).unwrap(),
        trust,
        _dir: dir,
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const NOW: u64 = 1_800_000_000;
const WINDOW: Duration = Duration::from_secs(300);

fn body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "incident": "inc-1",
        "class": "cpu-saturation",
        "confidence": 0.95,
        "rationale": "cpu throttled at 98% for 10 minutes",
        "actions": [
            {"capability": "scale", "target": "deployment/prod/checkout", "arguments": {"replicas": 4}},
            {"capability": "restart", "target": "deployment/prod/checkout"},
            {"capability": "log-rotation", "arguments": {"log-set": "app"}}
        ]
    }))
    .unwrap()
}

fn check(a: &Agent, body: &[u8], headers: &SignedHeaders) -> Result<Verified, ProposalError> {
    verify(body, &headers.as_headers(), &a.trust, WINDOW, at(NOW))
}

#[test]
fn a_signed_fresh_plan_from_an_agent_key_verifies() {
    let a = agent(Tier::AiAgent);
    let headers = sign(&body(), &a.key, at(NOW - 10), "0123456789abcdef");
    let verified = check(&a, &body(), &headers).unwrap();
    assert_eq!(verified.plan().actions.len(), 3);
    assert_eq!(verified.nonce(), "0123456789abcdef");
    assert_eq!(verified.expires, ((NOW - 10 + 300) * 1000) as i64);
    assert_eq!(
        verified.plan().actions_json(),
        r#"[{"capability":"scale","target":"deployment/prod/checkout","arguments":{"replicas":4}},{"capability":"restart","target":"deployment/prod/checkout"},{"capability":"log-rotation","arguments":{"log-set":"app"}}]"#
    );
}

#[test]
fn the_message_is_domain_separated_and_binds_every_part() {
    let m = signed_message("ed25519:0123456789abcdef", "1", "n", b"{}");
    assert!(m.starts_with(b"blastwall-proposal-v1\0ed25519:0123456789abcdef\x001\0n\0"));
    assert_eq!(m.len(), 22 + 24 + 1 + 2 + 2 + 32);
    // Moving a byte between fields changes the message.
    assert_ne!(
        signed_message("k", "12", "3nonce", b""),
        signed_message("k", "1", "23nonce", b"")
    );
}

#[test]
fn tampering_with_any_part_is_a_bad_signature() {
    let a = agent(Tier::AiAgent);
    let good = sign(&body(), &a.key, at(NOW), "0123456789abcdef");
    let mut tampered = body();
    tampered[20] ^= 1;
    let e = check(&a, &tampered, &good).unwrap_err();
    assert!(matches!(e, ProposalError::BadSignature(_)), "{e}");
    let other_nonce = SignedHeaders {
        nonce: "fedcba9876543210".into(),
        ..good.clone()
    };
    assert_eq!(check(&a, &body(), &other_nonce).unwrap_err().status(), 401);
    let other_time = SignedHeaders {
        timestamp: (NOW - 1).to_string(),
        ..good.clone()
    };
    assert!(matches!(
        check(&a, &body(), &other_time).unwrap_err(),
        ProposalError::BadSignature(_)
    ));
    // Uppercase hex is the same bytes, but not the canonical spelling.
    let upper = SignedHeaders {
        signature: good.signature.to_uppercase(),
        ..good.clone()
    };
    let e = check(&a, &body(), &upper).unwrap_err();
    assert!(
        matches!(
            e,
            ProposalError::BadHeader {
                name: HEADER_SIGNATURE,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn missing_and_malformed_headers_are_unsigned() {
    let a = agent(Tier::AiAgent);
    let good = sign(&body(), &a.key, at(NOW), "0123456789abcdef");
    let none = Headers::default();
    let e = verify(&body(), &none, &a.trust, WINDOW, at(NOW)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsigned proposal: the Blastwall-Key header is missing"
    );
    assert_eq!(e.status(), 401);
    let mut partial = good.as_headers();
    partial.signature = None;
    assert_eq!(
        verify(&body(), &partial, &a.trust, WINDOW, at(NOW)).unwrap_err(),
        ProposalError::Unsigned(HEADER_SIGNATURE)
    );
    for (timestamp, nonce) in [
        ("+1800000000", "0123456789abcdef"),
        ("01800000000", "0123456789abcdef"),
        ("1800000000", "short"),
        ("1800000000", "0123456789abcdef\n"),
        ("1800000000", &"a".repeat(65)),
    ] {
        let h = SignedHeaders {
            timestamp: timestamp.into(),
            nonce: nonce.into(),
            ..good.clone()
        };
        let e = check(&a, &body(), &h).unwrap_err();
        assert!(matches!(e, ProposalError::BadHeader { .. }), "{e}");
        assert_eq!(e.status(), 401);
    }
}

#[test]
fn stale_and_future_proposals_are_refused() {
    let a = agent(Tier::AiAgent);
    for signed_at in [NOW - 301, NOW + 301, 0] {
        let h = sign(&body(), &a.key, at(signed_at), "0123456789abcdef");
        let e = check(&a, &body(), &h).unwrap_err();
        assert!(matches!(e, ProposalError::Stale { .. }), "{e}");
        assert_eq!(e.status(), 401);
    }
    let h = sign(&body(), &a.key, at(NOW + 300), "0123456789abcdef");
    check(&a, &body(), &h).expect("the edge of the window is fresh");
}

#[test]
fn keys_must_be_trusted_unrevoked_and_of_the_agent_tier() {
    let a = agent(Tier::AiAgent);
    let stranger = agent(Tier::AiAgent);
    let h = sign(&body(), &stranger.key, at(NOW), "0123456789abcdef");
    let e = check(&a, &body(), &h).unwrap_err();
    assert!(matches!(e, ProposalError::UnknownKey(_)), "{e}");
    assert_eq!(e.status(), 401);

    let publisher = agent(Tier::Publisher);
    let h = sign(&body(), &publisher.key, at(NOW), "0123456789abcdef");
    let e = check(&publisher, &body(), &h).unwrap_err();
    assert_eq!(e.status(), 403);
    assert!(e.to_string().starts_with("wrong tier: key ed25519:"), "{e}");
    assert!(
        e.to_string()
            .ends_with("is of tier publisher; proposals need an ai-agent key"),
        "{e}"
    );

    let mut revoked = agent(Tier::AiAgent);
    let id = revoked.trust.keys[0].id.clone();
    revoked.trust.revoke(&id).unwrap();
    let h = sign(&body(), &revoked.key, at(NOW), "0123456789abcdef");
    let e = check(&revoked, &body(), &h).unwrap_err();
    assert!(matches!(e, ProposalError::RevokedKey { .. }), "{e}");
}

fn malformed(value: serde_json::Value) -> String {
    let a = agent(Tier::AiAgent);
    let raw = serde_json::to_vec(&value).unwrap();
    let h = sign(&raw, &a.key, at(NOW), "0123456789abcdef");
    let e = check(&a, &raw, &h).unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    e.to_string()
}

fn plan_with(actions: serde_json::Value) -> serde_json::Value {
    json!({"incident": "inc-1", "class": "oom-killed", "confidence": 0.9,
           "rationale": "r", "actions": actions})
}

#[test]
fn malformed_plans_are_refused_with_the_offending_value() {
    let restart = json!({"capability": "restart", "target": "deployment/prod/a"});
    let mut extra = plan_with(json!([restart]));
    extra["approve"] = json!(true);
    assert!(malformed(extra).contains("unknown field `approve`"));
    let e = malformed(plan_with(
        json!([{"capability": "delete-namespace", "target": "deployment/prod/a"}]),
    ));
    assert!(e.contains("delete-namespace"), "{e}");
    let e = malformed(plan_with(
        json!([{"capability": "restart", "target": "deployment/prod/a", "force": true}]),
    ));
    assert!(e.contains("unknown field `force`"), "{e}");
    let e = malformed(plan_with(
        json!([{"capability": "restart", "target": "pod/prod/a"}]),
    ));
    assert!(e.contains("\"pod\""), "{e}");
    let e = malformed(plan_with(
        json!([{"capability": "scale", "target": "deployment/prod/a"}]),
    ));
    assert!(
        e.contains("action 0 (scale): arguments.replicas is required"),
        "{e}"
    );
    let e = malformed(plan_with(
        json!([{"capability": "scale", "target": "deployment/prod/a",
        "arguments": {"replicas": -1}}]),
    ));
    assert!(e.contains("-1"), "{e}");
    let e = malformed(plan_with(json!([])));
    assert!(e.contains("0 actions; a plan holds 1 to 16"), "{e}");
    let many: Vec<_> = (0..17).map(|_| restart.clone()).collect();
    assert!(malformed(plan_with(json!(many))).contains("17 actions"));
    let mut p = plan_with(json!([restart]));
    p["class"] = json!("OOM Killed");
    assert!(malformed(p).contains("class \"OOM Killed\" is not a class name"));
    let mut p = plan_with(json!([restart]));
    p["confidence"] = json!(1.5);
    assert!(malformed(p).contains("confidence 1.5 is not between 0 and 1"));
    let mut p = plan_with(json!([restart]));
    p.as_object_mut().unwrap().remove("incident");
    assert!(malformed(p).contains("give an incident or an alert"));
    let mut p = plan_with(json!([restart]));
    p["rationale"] = json!("x".repeat(MAX_RATIONALE_BYTES + 1));
    assert!(malformed(p).contains("the rationale is 4097 bytes"));
}

#[test]
fn adversarial_bodies_are_refused_cheaply() {
    // Ten thousand actions: over the byte cap before it is even parsed.
    let restart = json!({"capability": "restart", "target": "deployment/prod/a"});
    let many: Vec<_> = (0..10_000).map(|_| restart.clone()).collect();
    let e = malformed(plan_with(json!(many)));
    assert!(e.contains("at most 65536 are accepted"), "{e}");
    // A giant target string is refused by the workload's own bounds.
    let long = format!("deployment/prod/{}", "a".repeat(1000));
    let e = malformed(plan_with(
        json!([{"capability": "restart", "target": long}]),
    ));
    assert!(e.contains("longer than 253"), "{e}");
    // Deep nesting is refused by the parser, not by the stack.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let a = agent(Tier::AiAgent);
    let h = sign(deep.as_bytes(), &a.key, at(NOW), "0123456789abcdef");
    assert_eq!(check(&a, deep.as_bytes(), &h).unwrap_err().status(), 400);
    // An oversized body is refused as malformed whatever its signature.
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    let h = sign(&huge, &a.key, at(NOW), "0123456789abcdef");
    assert_eq!(check(&a, &huge, &h).unwrap_err().status(), 400);
}
