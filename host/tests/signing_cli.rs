//! The signing workflow as a plugin author and an operator run it:
//! keygen → trust add → plugin sign → verify → run → review → revoke.

mod common;

use common::{blastwall, stderr, stdout};

use std::process::Output;

fn ok(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// A key trusted as `publisher`, the plain scale-on-saturation component, and its manifest.
fn setup() -> Workspace {
    let ws = Workspace {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = ok(blastwall(&[
        "keygen",
        "--out",
        &ws.path(""),
        "--name",
        "platform",
    ]));
    assert!(out.starts_with("ed25519:"), "{out}");
    let trusted = ok(blastwall(&[
        "trust",
        "add",
        "--trust",
        &ws.path("trust.toml"),
        "--tier",
        "publisher",
        &ws.path("platform.pub"),
    ]));
    assert!(trusted.contains("(platform) as publisher"), "{trusted}");
    let bundled = blastwall::bundled::find("scale-on-saturation").unwrap();
    std::fs::write(ws.path("plain.wasm"), bundled.wasm).unwrap();
    std::fs::write(ws.path("v1.toml"), bundled.manifest).unwrap();
    ok(blastwall(&[
        "plugin",
        "sign",
        "--key",
        &ws.path("platform.key"),
        "--manifest",
        &ws.path("v1.toml"),
        "--out",
        &ws.path("v1.wasm"),
        &ws.path("plain.wasm"),
    ]));
    ws
}

#[test]
fn sign_verify_run_and_revoke() {
    let ws = setup();
    let verified = ok(blastwall(&[
        "plugin",
        "verify",
        "--trust",
        &ws.path("trust.toml"),
        &ws.path("v1.wasm"),
    ]));
    assert!(
        verified.starts_with("ok: scale-on-saturation 0.1.0 signed by platform (ed25519:"),
        "{verified}"
    );

    let run = ok(blastwall(&[
        "run",
        &ws.path("v1.wasm"),
        "--trust",
        &ws.path("trust.toml"),
        "--alert",
        "examples/alerts/cpu-saturation.json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(report["plugin"]["provenance"]["kind"], "signed");
    assert_eq!(report["plugin"]["provenance"]["tier"], "publisher");
    assert_eq!(report["outcome"]["kind"], "completed");

    let key_id = verified
        .split_whitespace()
        .find(|w| w.starts_with("(ed25519:"))
        .unwrap();
    let key_id = key_id.trim_start_matches('(').trim_end_matches(',');
    ok(blastwall(&[
        "trust",
        "revoke",
        "--trust",
        &ws.path("trust.toml"),
        key_id,
    ]));
    let listed = ok(blastwall(&[
        "trust",
        "list",
        "--trust",
        &ws.path("trust.toml"),
    ]));
    assert!(listed.contains("REVOKED"), "{listed}");

    let refused = blastwall(&[
        "plugin",
        "verify",
        "--trust",
        &ws.path("trust.toml"),
        &ws.path("v1.wasm"),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let line = stdout(&refused);
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(
        line.contains(&format!("revoked key: {key_id} (platform) was revoked at")),
        "{line}"
    );
    let refused = blastwall(&[
        "run",
        &ws.path("v1.wasm"),
        "--trust",
        &ws.path("trust.toml"),
        "--alert",
        "examples/alerts/cpu-saturation.json",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("revoked key"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_tampered_file_fails_verification_with_one_line() {
    let ws = setup();
    let mut bytes = std::fs::read(ws.path("v1.wasm")).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(ws.path("tampered.wasm"), bytes).unwrap();
    let out = blastwall(&[
        "plugin",
        "verify",
        "--trust",
        &ws.path("trust.toml"),
        &ws.path("tampered.wasm"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().count(), 1);
    assert!(
        stdout(&out).contains(": bad signature: the component bytes differ"),
        "{}",
        stdout(&out)
    );
    let unsigned = blastwall(&[
        "plugin",
        "verify",
        "--trust",
        &ws.path("trust.toml"),
        &ws.path("plain.wasm"),
    ]);
    assert!(stdout(&unsigned).ends_with("unsigned: the file carries no blastwall signature\n"));
}

#[test]
fn review_against_an_older_version_gates_an_escalation() {
    let ws = setup();
    let v1 = std::fs::read_to_string(ws.path("v1.toml")).unwrap();
    let v2 = v1
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"")
        .replace("max-replicas = 20", "max-replicas = 200");
    std::fs::write(ws.path("v2.toml"), v2).unwrap();
    ok(blastwall(&[
        "plugin",
        "sign",
        "--key",
        &ws.path("platform.key"),
        "--manifest",
        &ws.path("v2.toml"),
        "--out",
        &ws.path("v2.wasm"),
        &ws.path("plain.wasm"),
    ]));
    let review = ok(blastwall(&[
        "review",
        &ws.path("v2.wasm"),
        "--against",
        &ws.path("v1.wasm"),
        "--trust",
        &ws.path("trust.toml"),
    ]));
    assert!(review.contains("ESCALATIONS since 0.1.0:"), "{review}");
    assert!(
        review.contains("!! [scope] scale: max-replicas 20 → 200"),
        "{review}"
    );
    assert!(
        review.contains("signer:  platform · key ed25519:"),
        "{review}"
    );
    let gate = blastwall(&[
        "review",
        &ws.path("v2.wasm"),
        "--against",
        &ws.path("v1.wasm"),
        "--fail-on-escalation",
        "--format",
        "markdown",
    ]);
    assert_eq!(gate.status.code(), Some(2));
    assert!(
        stdout(&gate).contains("#### ⚠️ Escalations since 0.1.0"),
        "{}",
        stdout(&gate)
    );
    let json = ok(blastwall(&[
        "review",
        &ws.path("v1.wasm"),
        "--format",
        "json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["imports"]["capabilities"][0],
        "blastwall:remediation/scale@0.1.0"
    );
    let same = blastwall(&[
        "review",
        &ws.path("v1.wasm"),
        "--against",
        &ws.path("v1.wasm"),
        "--fail-on-escalation",
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
}

#[test]
fn keys_are_never_overwritten_and_bad_arguments_are_explained() {
    let ws = setup();
    let again = blastwall(&["keygen", "--out", &ws.path(""), "--name", "platform"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists; refusing to overwrite a key"),
        "{}",
        stderr(&again)
    );
    let bad_tier = blastwall(&[
        "trust",
        "add",
        "--trust",
        &ws.path("trust.toml"),
        "--tier",
        "root",
        &ws.path("platform.pub"),
    ]);
    assert_eq!(bad_tier.status.code(), Some(2), "clap rejects it");
    assert!(
        stderr(&bad_tier).contains("unknown tier \"root\""),
        "{}",
        stderr(&bad_tier)
    );
    let bad_id = blastwall(&[
        "trust",
        "revoke",
        "--trust",
        &ws.path("trust.toml"),
        "ed25519:nothex",
    ]);
    assert!(
        stderr(&bad_id).contains("is not a key id"),
        "{}",
        stderr(&bad_id)
    );
    let both = blastwall(&[
        "run",
        &ws.path("v1.wasm"),
        "--trust",
        &ws.path("trust.toml"),
        "--insecure-unsigned",
        "--alert",
        "examples/alerts/cpu-saturation.json",
    ]);
    assert!(
        stderr(&both).contains("contradict each other"),
        "{}",
        stderr(&both)
    );
}
