//! Every attack on a signed artifact is rejected with its own reason.

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::policy::Tier;

const MANIFEST: &str = r#"
name = "restart-on-oom"
version = "0.1.0"
description = "Restarts."
[capabilities.restart]
targets = ["deployment/*/*"]
"#;

fn component() -> Vec<u8> {
    crate::bundled::find("restart-on-oom")
        .unwrap()
        .wasm
        .to_vec()
}

struct Fixture {
    _dir: tempfile::TempDir,
    key: SigningKey,
    trust: TrustStore,
    signed: Vec<u8>,
}

fn key_in(dir: &Path, name: &str) -> (SigningKey, std::path::PathBuf) {
    let (key, public, _) = generate_files(dir, name).unwrap();
    (read_signing_key(&key).unwrap(), public)
}

fn fixture(tier: Tier) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = key_in(dir.path(), "release");
    let mut trust = TrustStore::default();
    trust.add(&public, tier, None).unwrap();
    let signed = sign(&component(), MANIFEST, &key).unwrap();
    Fixture {
        _dir: dir,
        key,
        trust,
        signed,
    }
}

fn reason(bytes: &[u8], trust: &TrustStore) -> String {
    verify(bytes, trust)
        .expect_err("verification must fail")
        .to_string()
}

#[test]
fn a_signed_artifact_verifies_and_yields_exactly_the_signed_component() {
    let f = fixture(Tier::Publisher);
    let artifact = verify(&f.signed, &f.trust).unwrap();
    assert_eq!(artifact.bytes(), &component()[..]);
    assert_eq!(artifact.manifest().name, "restart-on-oom");
    let Provenance::Signed {
        signer,
        tier,
        key_id,
    } = artifact.provenance()
    else {
        panic!("signed");
    };
    assert_eq!((signer.as_str(), *tier), ("release", Tier::Publisher));
    assert_eq!(key_id, &KeyId::of(&f.key.verifying_key()));
}

#[test]
fn flipping_a_byte_in_the_code_is_a_bad_signature() {
    let f = fixture(Tier::Publisher);
    let mut bytes = f.signed.clone();
    bytes[100] ^= 0x01;
    assert_eq!(
        reason(&bytes, &f.trust),
        "bad signature: the component bytes differ from the bytes that were signed"
    );
}

#[test]
fn changing_the_manifest_is_a_manifest_mismatch() {
    let f = fixture(Tier::Publisher);
    let wider = MANIFEST.replace("deployment/*/*", "*/*/*");
    let parts = split(&f.signed).unwrap();
    let mut bytes = parts.component.to_vec();
    bytes.extend(format::custom_section(MANIFEST_SECTION, wider.as_bytes()));
    bytes.extend(format::custom_section(
        SIGNATURE_SECTION,
        parts.signature.unwrap(),
    ));
    assert_eq!(
        reason(&bytes, &f.trust),
        "manifest mismatch: the manifest differs from the manifest that was signed"
    );
}

#[test]
fn forging_the_recorded_hashes_still_fails_the_signature() {
    let f = fixture(Tier::Publisher);
    let wider = MANIFEST.replace("deployment/*/*", "*/*/*");
    let parts = split(&f.signed).unwrap();
    let mut record: SignatureRecord = serde_json::from_slice(parts.signature.unwrap()).unwrap();
    record.manifest_sha256 = hex::encode(sha256(wider.as_bytes()));
    let mut bytes = parts.component.to_vec();
    bytes.extend(format::custom_section(MANIFEST_SECTION, wider.as_bytes()));
    bytes.extend(format::custom_section(
        SIGNATURE_SECTION,
        &serde_json::to_vec(&record).unwrap(),
    ));
    assert!(
        reason(&bytes, &f.trust)
            .starts_with("bad signature: the signature does not verify with key ed25519:")
    );
}

#[test]
fn flipping_a_bit_of_the_signature_is_a_bad_signature() {
    let f = fixture(Tier::Publisher);
    let parts = split(&f.signed).unwrap();
    let mut record: SignatureRecord = serde_json::from_slice(parts.signature.unwrap()).unwrap();
    let mut raw = hex::decode(&record.signature).unwrap();
    raw[0] ^= 0x80;
    record.signature = hex::encode(raw);
    let mut bytes = parts.component.to_vec();
    bytes.extend(format::custom_section(
        MANIFEST_SECTION,
        parts.manifest.unwrap(),
    ));
    bytes.extend(format::custom_section(
        SIGNATURE_SECTION,
        &serde_json::to_vec(&record).unwrap(),
    ));
    assert!(reason(&bytes, &f.trust).starts_with("bad signature:"));
}

#[test]
fn stripping_the_signature_leaves_an_unsigned_file() {
    let f = fixture(Tier::Publisher);
    let parts = split(&f.signed).unwrap();
    let mut stripped = parts.component.to_vec();
    stripped.extend(format::custom_section(
        MANIFEST_SECTION,
        parts.manifest.unwrap(),
    ));
    assert_eq!(
        reason(&stripped, &f.trust),
        "unsigned: the file carries no blastwall signature"
    );
    assert_eq!(
        reason(&component(), &f.trust),
        "unsigned: the file carries no blastwall signature"
    );
}

#[test]
fn appending_or_inserting_sections_is_malformed() {
    let f = fixture(Tier::Publisher);
    let mut appended = f.signed.clone();
    appended.extend(format::custom_section("producers", b"evil"));
    assert!(reason(&appended, &f.trust).starts_with(
        "malformed: malformed artifact: blastwall sections must be the last sections"
    ));
    let parts = split(&f.signed).unwrap();
    let mut inserted = parts.component.to_vec();
    inserted.extend(format::custom_section(
        MANIFEST_SECTION,
        parts.manifest.unwrap(),
    ));
    inserted.extend(format::custom_section("producers", b"evil"));
    inserted.extend(format::custom_section(
        SIGNATURE_SECTION,
        parts.signature.unwrap(),
    ));
    assert!(reason(&inserted, &f.trust).starts_with("malformed:"));
}

#[test]
fn a_key_outside_the_trust_store_is_unknown() {
    let f = fixture(Tier::Publisher);
    let dir = tempfile::tempdir().unwrap();
    let (stranger, _) = key_in(dir.path(), "stranger");
    let signed = sign(&component(), MANIFEST, &stranger).unwrap();
    assert_eq!(
        reason(&signed, &f.trust),
        format!(
            "unknown key: {} is not in the trust store",
            KeyId::of(&stranger.verifying_key())
        )
    );
}

#[test]
fn a_revoked_key_is_refused_from_the_next_verification_on() {
    let mut f = fixture(Tier::Publisher);
    assert!(verify(&f.signed, &f.trust).is_ok());
    f.trust.revoke(&KeyId::of(&f.key.verifying_key())).unwrap();
    assert!(reason(&f.signed, &f.trust).starts_with("revoked key: ed25519:"));
}

#[test]
fn signing_twice_or_signing_garbage_is_refused() {
    let f = fixture(Tier::Publisher);
    assert_eq!(
        sign(&f.signed, MANIFEST, &f.key).unwrap_err().to_string(),
        "cannot sign: the file already carries a blastwall manifest or signature; sign the plain component"
    );
    assert!(sign(b"not wasm", MANIFEST, &f.key).is_err());
    assert!(
        sign(&component(), "name = 1", &f.key)
            .unwrap_err()
            .to_string()
            .starts_with("cannot sign: manifest")
    );
}

#[test]
fn truncated_files_are_malformed() {
    let f = fixture(Tier::Publisher);
    for cut in [9, 100, f.signed.len() / 2, f.signed.len() - 1] {
        let reason = reason(&f.signed[..cut], &f.trust);
        assert!(
            reason.starts_with("malformed:") || reason.starts_with("unsigned:"),
            "cut at {cut}: {reason}"
        );
    }
}

#[test]
fn the_trust_store_round_trips_and_rejects_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = key_in(dir.path(), "agent");
    let path = dir.path().join("trust.toml");
    let mut store = TrustStore::load_or_empty(&path).unwrap();
    store.add(&public, Tier::AiAgent, None).unwrap();
    store.save(&path).unwrap();
    let mut loaded = TrustStore::load(&path).unwrap();
    assert_eq!(loaded, store);
    assert!(
        loaded
            .add(&public, Tier::Publisher, None)
            .unwrap_err()
            .to_string()
            .contains("is already in the trust store")
    );
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("tier = \"ai-agent\"", "tier = \"root\"");
    std::fs::write(&path, edited).unwrap();
    assert!(
        TrustStore::load(&path)
            .unwrap_err()
            .to_string()
            .contains("trust store")
    );
}

#[test]
fn a_trust_store_read_from_text_checks_each_key_id_and_names_its_origin() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let id = KeyId::of(&key.verifying_key());
    let text = format!(
        "[[key]]\nid = \"{id}\"\nname = \"agent\"\ntier = \"ai-agent\"\npublic-key = \"\"\"\n{}\"\"\"\nadded = \"2026-11-01T00:00:00Z\"\n",
        public_key_pem(&key.verifying_key())
    );
    let store = TrustStore::from_toml(&text, "trust.toml").unwrap();
    assert_eq!(store.get(&id).map(|k| k.tier), Some(Tier::AiAgent));
    let misfiled = text.replace(id.as_str(), "ed25519:0123456789abcdef");
    assert_eq!(
        TrustStore::from_toml(&misfiled, "trust.toml")
            .unwrap_err()
            .to_string(),
        format!(
            "trust store trust.toml is invalid: entry ed25519:0123456789abcdef holds a public key whose id is {id}"
        )
    );
    // The same key twice, the second time revoked: refused, so the
    // revocation can never hide behind the first entry.
    let twice = format!("{text}\n{}revoked = \"2026-11-02T00:00:00Z\"\n", text);
    assert_eq!(
        TrustStore::from_toml(&twice, "trust.toml")
            .unwrap_err()
            .to_string(),
        format!("trust store trust.toml is invalid: key {id} is listed more than once")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No input makes the parser panic; every rejection is a clear error.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let trust = TrustStore::default();
        let _ = verify(&bytes, &trust);
    }

    /// Mutating any byte of a signed artifact never yields a verified artifact.
    #[test]
    fn any_single_byte_change_is_rejected(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let f = fixture(Tier::Publisher);
        let mut bytes = f.signed.clone();
        let i = index.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(verify(&bytes, &f.trust).is_err());
    }

    /// Preambles followed by arbitrary sections never panic either.
    #[test]
    fn arbitrary_sections_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = format::COMPONENT_PREAMBLE.to_vec();
        bytes.extend(body);
        let _ = verify(&bytes, &TrustStore::default());
    }
}
