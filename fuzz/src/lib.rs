//! Fixtures shared by the fuzz targets.
//!
//! Keys come from fixed seeds, so every signature the fixtures make (and so
//! every signed seed in `corpus/`) is the same on every machine and every
//! run; a crash found once reproduces anywhere. The seeds are public, so
//! none of these keys may ever sign anything real. Trust stores are read
//! with the library's own trust-store parser, so the targets meet them
//! exactly as the host does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blastwall::policy::Tier;
use blastwall::signature::{KeyId, TrustStore, public_key_pem};
use ed25519_dalek::SigningKey;

/// Seed of the key the signed-artifact store trusts as a publisher.
pub const PUBLISHER: u8 = 1;
/// Seed of the key the proposal store trusts as an AI agent.
pub const AGENT: u8 = 2;
/// Seed of a key the signed-artifact store holds, revoked.
pub const REVOKED: u8 = 3;
/// Seed of a key no store holds.
pub const STRANGER: u8 = 4;

/// "Now" for every freshness check: a fixed instant, so that whether a
/// timestamp is fresh depends on the input alone.
pub const NOW: u64 = 1_800_000_000;
/// The freshness window proposals are judged with (the host's default).
pub const WINDOW: Duration = Duration::from_secs(300);

/// The fixed instant [`NOW`], moved by `offset` seconds.
pub fn at(offset: i64) -> SystemTime {
    let secs = NOW.checked_add_signed(offset).expect("offsets are small");
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The signing key with the given seed.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The id of the key with the given seed.
pub fn key_id(seed: u8) -> KeyId {
    KeyId::of(&key(seed).verifying_key())
}

/// A trust store holding each `(seed, tier, revoked)` key, written as an
/// operator's trust-store file and read back with [`TrustStore::from_toml`].
pub fn trust_store(entries: &[(u8, Tier, bool)]) -> TrustStore {
    TrustStore::from_toml(&trust_store_text(entries), "the fuzz trust store")
        .expect("the fuzz trust store is valid")
}

/// The text of a trust-store file holding each `(seed, tier, revoked)` key.
pub fn trust_store_text(entries: &[(u8, Tier, bool)]) -> String {
    let mut text = String::new();
    for &(seed, tier, revoked) in entries {
        let public = key(seed).verifying_key();
        text.push_str(&format!(
            "[[key]]\nid = \"{}\"\nname = \"key-{seed}\"\ntier = \"{tier}\"\n\
             public-key = \"\"\"\n{}\"\"\"\nadded = \"2026-11-01T00:00:00Z\"\n",
            KeyId::of(&public),
            public_key_pem(&public),
        ));
        if revoked {
            text.push_str("revoked = \"2026-11-02T00:00:00Z\"\n");
        }
    }
    text
}

/// The store signed artifacts are checked against: one publisher key and
/// one revoked key.
pub fn artifact_trust() -> TrustStore {
    trust_store(&[
        (PUBLISHER, Tier::Publisher, false),
        (REVOKED, Tier::Publisher, true),
    ])
}

/// The store proposals are checked against: one AI-agent key, and one
/// publisher key so that a signature by the wrong tier can be reached.
pub fn proposal_trust() -> TrustStore {
    trust_store(&[
        (AGENT, Tier::AiAgent, false),
        (PUBLISHER, Tier::Publisher, false),
    ])
}

/// The manifest the fixture component is signed with.
pub const MANIFEST: &str = r#"name = "fuzz-restart"
version = "0.1.0"
description = "Restarts the deployment an incident names."
classes = ["oom-killed"]

[capabilities.restart]
targets = ["deployment/*/*"]
"#;

/// A small component that imports one capability interface: enough for
/// the framing, the signature and the review's import reader to get past
/// their first checks, and far smaller than any real plugin.
pub fn component() -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
    };
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    let mut imports = ComponentImportSection::new();
    imports.import(
        "blastwall:remediation/restart@0.1.0",
        ComponentTypeRef::Instance(0),
    );
    let mut component = Component::new();
    component.section(&types).section(&imports);
    component.finish()
}

/// [`component`] with [`MANIFEST`], signed by the trusted publisher key.
pub fn signed_component() -> Vec<u8> {
    blastwall::signature::sign(&component(), MANIFEST, &key(PUBLISHER))
        .expect("the fixture component signs")
}

/// The first record of a chain as `audit export` writes it: genuine, so
/// the verifier accepts it.
pub fn exported_first_record() -> String {
    use blastwall::audit::{GENESIS, Record, record_hash};
    let (at, kind, body) = (
        "2026-11-23T03:04:05.000000Z",
        "decision",
        r#"{"class":"oom-killed","decision":"run","plugin":"restart-on-oom@0.1.0"}"#,
    );
    let incident = Some("inc-0123456789abcdef");
    let hash = record_hash(1, at, incident, kind, body, &GENESIS);
    let record = Record {
        seq: 1,
        at: at.into(),
        incident: incident.map(str::to_string),
        kind: kind.into(),
        body: body.into(),
        prev_hash: hex(&GENESIS),
        hash: hex(&hash),
    };
    serde_json::to_string(&record).expect("a record serialises") + "\n"
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The seeds made from the fixtures rather than copied from the
/// repository, so that they stay in step with the fixtures: `cargo test`
/// here fails when one is stale, and rewrites them all with
/// `BLASTWALL_FUZZ_WRITE_SEEDS=1`.
#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_generated_seeds_are_current() {
        let seeds: [(&str, Vec<u8>); 3] = [
            ("signed_artifact/signed-component.wasm", signed_component()),
            (
                "audit_reader/first-record.jsonl",
                exported_first_record().into_bytes(),
            ),
            (
                "config/trust-store.toml",
                trust_store_text(&[
                    (AGENT, Tier::AiAgent, false),
                    (REVOKED, Tier::Publisher, true),
                ])
                .into_bytes(),
            ),
        ];
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let write = std::env::var_os("BLASTWALL_FUZZ_WRITE_SEEDS").is_some();
        for (name, bytes) in seeds {
            let path = corpus.join(name);
            if write {
                std::fs::write(&path, &bytes).unwrap();
            } else {
                let committed = std::fs::read(&path).unwrap_or_default();
                assert!(
                    committed == bytes,
                    "{name} is stale: rerun with BLASTWALL_FUZZ_WRITE_SEEDS=1"
                );
            }
        }
    }
}
