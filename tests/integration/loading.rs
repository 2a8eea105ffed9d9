//! Loading: imports ⊆ declared ⊆ granted, malformed bytes, and the cache.

use blastwall::manifest::Manifest;
use blastwall::policy::{self, Policy};
use blastwall::sandbox::LoadError;
use blastwall::signature::PluginArtifact;
use blastwall_tests::{Harness, bundled, guest, guest_files, incident};

pub(crate) fn manifest(extra: &str) -> Manifest {
    Manifest::from_toml(
        &format!(
            "name = \"fixture\"\nversion = \"0.1.0\"\ndescription = \"A test fixture.\"\n{extra}"
        ),
        "fixture",
    )
    .unwrap()
}

/// Loads with every capability the manifest declares granted.
pub(crate) async fn load(bytes: Vec<u8>, manifest: Manifest) -> Result<(), LoadError> {
    let h = Harness::new();
    let target = "deployment/prod/checkout".parse().unwrap();
    let grants = policy::grant(
        &manifest.capabilities,
        None,
        &Policy::as_declared(),
        &target,
    )
    .unwrap();
    h.sandbox
        .load(&PluginArtifact::insecure_unsigned(bytes, manifest), &grants)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_component_importing_an_undeclared_capability_fails_to_load() {
    let (bytes, text) = guest_files("adversary");
    let without_rollback = text.replace("[capabilities.rollback]\ntargets = [\"*/*/*\"]\n", "");
    let manifest = Manifest::from_toml(&without_rollback, "adversary").unwrap();
    let err = load(bytes, manifest).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "adversary: imports blastwall:remediation/rollback@0.1.0, but its manifest does not declare the rollback capability"
    );
}

#[tokio::test]
async fn a_component_importing_a_capability_policy_withholds_fails_to_load() {
    let policy = Policy::from_toml(
        "[grant.scale]\ntargets = [\"*/*/*\"]\nmax-replicas = 5\n[grant.restart]\ntargets = [\"*/*/*\"]\n[grant.log-rotation]\nlog-sets = [\"app\"]\n",
        "operator",
    )
    .unwrap();
    let err = Harness::new()
        .run(
            &guest("adversary"),
            incident("deployment/prod/checkout", &[]),
            &policy,
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "adversary: imports blastwall:remediation/rollback@0.1.0, but policy does not grant the rollback capability"
    );
}

#[tokio::test]
async fn a_component_using_sockets_fails_to_load() {
    let err = load(guest_files("net-guest").0, manifest(""))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("fixture: imports wasi:sockets/"),
        "{message}"
    );
    assert!(
        message.ends_with(
            "which plugins may not use (plugins get no network; act through capabilities)"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn foreign_and_unknown_imports_are_refused_by_name() {
    let foreign =
        wat::parse_str(r#"(component (import "evil:net/raw@1.0.0" (instance)))"#).unwrap();
    assert_eq!(
        load(foreign, manifest("")).await.unwrap_err().to_string(),
        "fixture: imports evil:net/raw@1.0.0, which plugins may not use (only blastwall interfaces and the restricted WASI are available)"
    );
    let invented =
        wat::parse_str(r#"(component (import "blastwall:remediation/teleport@0.1.0" (instance)))"#)
            .unwrap();
    assert_eq!(
        load(invented, manifest("")).await.unwrap_err().to_string(),
        "fixture: imports blastwall:remediation/teleport@0.1.0, which plugins may not use (no such blastwall interface)"
    );
}

#[tokio::test]
async fn malformed_bytes_are_refused_without_panicking() {
    assert_eq!(
        load(b"#!/bin/sh\nrm -rf /".to_vec(), manifest(""))
            .await
            .unwrap_err()
            .to_string(),
        "fixture: not a WebAssembly binary (no \\0asm header)"
    );
    assert_eq!(
        load(b"(component)".to_vec(), manifest(""))
            .await
            .unwrap_err()
            .to_string(),
        "fixture: not a WebAssembly binary (no \\0asm header)",
        "text is never compiled"
    );
    let core_module = wat::parse_str("(module)").unwrap();
    assert!(matches!(
        load(core_module, manifest("")).await,
        Err(LoadError::Compile { .. })
    ));
    let mut truncated = bundled("restart-on-oom").bytes().to_vec();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        load(truncated, manifest("")).await,
        Err(LoadError::Compile { .. })
    ));
    let mut flipped = bundled("restart-on-oom").bytes().to_vec();
    flipped[9] ^= 0xff;
    assert!(load(flipped, manifest("")).await.is_err());
}

#[tokio::test]
async fn a_component_without_the_remediate_export_fails_to_link() {
    let empty = wat::parse_str("(component)").unwrap();
    let err = load(empty, manifest("")).await.unwrap_err();
    assert!(matches!(err, LoadError::Link { .. }), "{err}");
    assert!(err.to_string().contains("remediate"), "{err}");
}

#[tokio::test]
async fn each_load_takes_limits_and_identity_from_its_own_manifest() {
    let h = Harness::new();
    let (bytes, text) = guest_files("trivial");
    let target = "deployment/prod/checkout".parse().unwrap();
    let generous =
        Manifest::from_toml(&format!("{text}\n[limits]\nmax-actions = 5\n"), "a").unwrap();
    let strict = Manifest::from_toml(&format!("{text}\n[limits]\nmax-actions = 1\n"), "b").unwrap();
    for (manifest, actions) in [(generous, 5), (strict, 1)] {
        let grants = policy::grant(
            &manifest.capabilities,
            None,
            &Policy::as_declared(),
            &target,
        )
        .unwrap();
        let plugin = h
            .sandbox
            .load(
                &PluginArtifact::insecure_unsigned(bytes.clone(), manifest),
                &grants,
            )
            .await
            .unwrap();
        assert_eq!(
            plugin.limits().max_actions,
            actions,
            "the cached link must not carry limits"
        );
    }
    let nothing = Policy::from_toml("", "empty").unwrap();
    let artifact = guest("trivial");
    let grants = policy::grant(&artifact.manifest().capabilities, None, &nothing, &target).unwrap();
    assert_eq!(
        h.sandbox
            .load(&artifact, &grants)
            .await
            .err()
            .unwrap()
            .to_string(),
        "trivial: imports blastwall:remediation/restart@0.1.0, but policy does not grant the restart capability"
    );
}
