use super::*;
use crate::policy::Tier;
use crate::signature::{generate_files, read_signing_key, sign};

const V1: &str = r#"
name = "scale-on-saturation"
version = "0.1.0"
description = "Adds replicas."
classes = ["cpu-saturation"]
[capabilities.scale]
targets = ["deployment/prod/*"]
max-replicas = 10
max-step-up = 2
[limits]
max-actions = 1
"#;

fn component() -> Vec<u8> {
    crate::bundled::find("scale-on-saturation")
        .unwrap()
        .wasm
        .to_vec()
}

struct Keys {
    _dir: tempfile::TempDir,
    key: ed25519_dalek::SigningKey,
    trust: TrustStore,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate_files(dir.path(), "platform").unwrap();
    let mut trust = TrustStore::default();
    trust.add(&public, Tier::Publisher, None).unwrap();
    Keys {
        key: read_signing_key(&key).unwrap(),
        _dir: dir,
        trust,
    }
}

#[test]
fn shows_signer_capabilities_imports_and_a_clean_bill() {
    let k = keys();
    let signed = sign(&component(), V1, &k.key).unwrap();
    let r = review(&signed, "v1.wasm", None, Some(&k.trust)).unwrap();
    assert_eq!(r.signer.status, "trusted");
    assert_eq!(r.signer.name.as_deref(), Some("platform"));
    assert_eq!(
        r.imports.capabilities,
        ["blastwall:remediation/scale@0.1.0"]
    );
    assert!(
        r.findings.iter().all(|f| f.level != Level::Error),
        "{:?}",
        r.findings
    );
    assert_eq!(r.risk.level, "medium");
    let text = render(&r, Format::Text);
    assert!(
        text.contains("scale         deployment/prod/* · 1–10 replicas · step up 2"),
        "{text}"
    );
}

#[test]
fn catches_every_escalation_between_versions() {
    let k = keys();
    let v1 = sign(&component(), V1, &k.key).unwrap();
    let v2_manifest = V1
        .replace("0.1.0", "0.2.0")
        .replace("max-replicas = 10", "max-replicas = 40")
        .replace("max-step-up = 2", "")
        .replace(
            "[\"deployment/prod/*\"]",
            "[\"deployment/prod/*\", \"deployment/*/*\"]",
        )
        .replace(
            "[\"cpu-saturation\"]",
            "[\"cpu-saturation\", \"memory-pressure\"]",
        )
        .replace("max-actions = 1", "max-actions = 5")
        + "\n[capabilities.restart]\ntargets = [\"deployment/prod/*\"]\n";
    let v2 = sign(&component(), &v2_manifest, &k.key).unwrap();
    let r = review(&v2, "v2.wasm", Some((&v1, "v1.wasm")), Some(&k.trust)).unwrap();
    let messages: Vec<String> = r
        .escalations
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| format!("[{}] {}", e.kind, e.message))
        .collect();
    assert_eq!(
        messages,
        [
            "[capability] new capability: restart",
            "[scope] scale: new targets deployment/*/*",
            "[scope] scale: max-replicas 10 → 40",
            "[scope] scale: max-step-up 2 → unlimited",
            "[limit] max-actions 1 → 5",
            "[class] new failure class: memory-pressure",
        ]
    );
    assert_eq!(r.risk.level, "high");
    // restart is declared but the scale plugin's code never calls it.
    assert!(
        r.findings.iter().any(|f| f.level == Level::Warning
            && f.message.starts_with("declares the restart capability"))
    );
    let md = render(&r, Format::Markdown);
    assert!(md.contains("#### ⚠️ Escalations since 0.1.0"), "{md}");
}

#[test]
fn an_unchanged_rebuild_has_no_escalation_but_a_version_warning() {
    let k = keys();
    let v1 = sign(&component(), V1, &k.key).unwrap();
    let r = review(&v1, "again.wasm", Some((&v1, "v1.wasm")), Some(&k.trust)).unwrap();
    assert_eq!(r.escalations, Some(vec![]));
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("does not increase"))
    );
}

#[test]
fn imported_but_undeclared_is_an_error_and_untrusted_signers_are_flagged() {
    let k = keys();
    let restart_only = V1
        .replace("[capabilities.scale]", "[capabilities.restart]")
        .replace("max-replicas = 10\nmax-step-up = 2\n", "");
    let signed = sign(&component(), &restart_only, &k.key).unwrap();
    let r = review(&signed, "x.wasm", None, Some(&TrustStore::default())).unwrap();
    assert!(r.findings.iter().any(|f| f.level == Level::Error
        && f.message == "imports the scale capability but does not declare it: the host will refuse to load it"));
    assert!(
        r.findings
            .iter()
            .any(|f| f.level == Level::Error && f.message.starts_with("signature: unknown key"))
    );
    assert_eq!(r.signer.status, "unknown key");
}

#[test]
fn unsigned_or_manifestless_files_are_reported_clearly() {
    let err = review(&component(), "plain.wasm", None, None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "plain.wasm: carries no manifest; sign it with `blastwall plugin sign` first"
    );
    let err = review(b"junk", "junk.wasm", None, None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("junk.wasm: malformed"), "{err}");
}

#[test]
fn a_publishers_bidi_overrides_are_escaped_in_every_format() {
    let k = keys();
    let hostile = V1.replace(
        "Adds replicas.",
        "Adds replicas. \u{202E}sredro eteled\u{202C} \u{2066}ok\u{2069}\u{200B}",
    );
    let signed = sign(&component(), &hostile, &k.key).unwrap();
    let r = review(&signed, "v1.wasm", None, Some(&k.trust)).unwrap();
    for format in [Format::Text, Format::Markdown, Format::Json] {
        let shown = render(&r, format);
        assert!(
            !shown
                .chars()
                .any(|c| c != '\n' && crate::text::is_deceptive(c)),
            "{format:?}: {shown}"
        );
    }
    assert!(render(&r, Format::Text).contains("\\u{202e}sredro eteled\\u{202c}"));
    let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
    assert!(
        json["description"].as_str().unwrap().contains('\u{202E}'),
        "JSON keeps the exact text"
    );
}
