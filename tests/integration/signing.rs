//! Signed plugins through the whole load path: verify, tier caps, revocation.

use blastwall::policy::{Policy, Tier};
use blastwall::sandbox::Outcome;
use blastwall::signature::{self, KeyId, TrustStore, generate_files, read_signing_key};
use blastwall_tests::{Harness, incident};

struct Signer {
    _dir: tempfile::TempDir,
    key: ed25519_dalek::SigningKey,
    trust: TrustStore,
}

fn signer(tier: Tier) -> Signer {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate_files(dir.path(), "test-key").unwrap();
    let mut trust = TrustStore::default();
    trust.add(&public, tier, None).unwrap();
    Signer {
        key: read_signing_key(&key).unwrap(),
        _dir: dir,
        trust,
    }
}

fn signed_bundle(name: &str, s: &Signer) -> Vec<u8> {
    let b = blastwall::bundled::find(name).unwrap();
    signature::sign(b.wasm, b.manifest, &s.key).unwrap()
}

#[tokio::test]
async fn every_example_plugin_signs_verifies_and_runs() {
    let s = signer(Tier::Publisher);
    let h = Harness::new();
    for (name, target) in [
        ("restart-on-oom", "deployment/prod/checkout"),
        ("scale-on-saturation", "deployment/prod/checkout"),
        ("rollback-bad-deploy", "deployment/prod/payments"),
        ("rotate-full-disk", "container/default/app"),
    ] {
        let artifact = signature::verify(&signed_bundle(name, &s), &s.trust).unwrap();
        let report = h
            .run(&artifact, incident(target, &[]), &Policy::as_declared())
            .await
            .unwrap();
        assert!(
            matches!(report.outcome, Outcome::Completed { .. }),
            "{name}: {:?}",
            report.outcome
        );
        assert_eq!(report.plugin.provenance.tier(), Some(Tier::Publisher));
    }
}

#[tokio::test]
async fn the_ai_agent_tier_cannot_load_a_rollback_plugin() {
    let s = signer(Tier::AiAgent);
    let artifact = signature::verify(&signed_bundle("rollback-bad-deploy", &s), &s.trust).unwrap();
    let err = Harness::new()
        .run(
            &artifact,
            incident("deployment/prod/checkout", &[]),
            &Policy::as_declared(),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "rollback-bad-deploy: imports blastwall:remediation/rollback@0.1.0, but the ai-agent tier does not grant the rollback capability"
    );
}

#[tokio::test]
async fn the_ai_agent_tier_caps_the_scale_step_at_run_time() {
    let s = signer(Tier::AiAgent);
    let artifact = signature::verify(&signed_bundle("scale-on-saturation", &s), &s.trust).unwrap();
    let report = Harness::new()
        .run(
            &artifact,
            incident("deployment/prod/checkout", &[("step", "3")]),
            &Policy::as_declared(),
        )
        .await
        .unwrap();
    assert_eq!(
        report.denials[0].reason,
        "scaling deployment/prod/checkout from 3 to 6 is a step of 3; at most 2 up is granted"
    );
}

#[tokio::test]
async fn revocation_applies_to_the_next_load_even_when_compiled_code_is_cached() {
    let mut s = signer(Tier::Publisher);
    let bytes = signed_bundle("restart-on-oom", &s);
    let h = Harness::new();
    let artifact = signature::verify(&bytes, &s.trust).unwrap();
    h.run(
        &artifact,
        incident("deployment/prod/checkout", &[]),
        &Policy::as_declared(),
    )
    .await
    .unwrap();
    s.trust.revoke(&KeyId::of(&s.key.verifying_key())).unwrap();
    let err = signature::verify(&bytes, &s.trust).unwrap_err();
    assert!(err.to_string().starts_with("revoked key:"), "{err}");
}
