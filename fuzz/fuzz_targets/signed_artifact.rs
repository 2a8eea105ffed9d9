//! Signed plugin files: the bytes `blastwall run`, `plugin verify` and
//! `review` are handed, from a registry, the network or a disk, none of
//! which is trusted. Checked against a store holding one publisher key and
//! one revoked key.
//!
//! The whole input is first taken as a file (so signed files are useful
//! seeds), then read as a structured input: `Spliced` is the fixture's
//! validly signed file with bytes replaced or inserted somewhere, so the
//! fuzzer starts past the framing; `Signed` is a component and manifest
//! from the input, really signed by one of the fixture's keys.
//!
//! Properties: a file the framing refuses is refused by `claims` and
//! `verify` too, as malformed; a verified artifact's bytes are exactly the
//! file's component, its digest is theirs, its manifest is the file's, and
//! its signer is a trusted, unrevoked key; a change to a signed file never
//! verifies with different content; what `sign` makes, `verify` accepts
//! exactly when the key is trusted and unrevoked.

#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use blastwall::manifest::Manifest;
use blastwall::review::{self, Format};
use blastwall::signature::{self, Digest, PluginArtifact, Provenance, TrustStore, VerifyError};
use blastwall_fuzz as fixture;
use libfuzzer_sys::fuzz_target;

static TRUST: LazyLock<TrustStore> = LazyLock::new(fixture::artifact_trust);
static COMPONENT: LazyLock<Vec<u8>> = LazyLock::new(fixture::component);
static SIGNED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let signed = fixture::signed_component();
    // Otherwise every property below about changed files would hold vacuously.
    signature::verify(&signed, &TRUST).expect("the fixture verifies");
    signed
});

#[derive(Arbitrary, Debug)]
enum Signer {
    Publisher,
    Revoked,
    Stranger,
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Spliced {
        at: u16,
        remove: u8,
        bytes: &'a [u8],
    },
    Signed {
        signer: Signer,
        manifest: &'a str,
        component: &'a [u8],
    },
}

/// Runs every reader over `bytes` and checks what holds for any file.
fn check(bytes: &[u8]) -> Result<PluginArtifact, VerifyError> {
    let parts = signature::split(bytes);
    let claims = signature::claims(bytes);
    let verified = signature::verify(bytes, &TRUST);
    match &parts {
        Ok(parts) => {
            // The component is the file's head and holds none of our sections itself.
            assert!(bytes.starts_with(parts.component));
            let inner = signature::split(parts.component).expect("a component's own framing holds");
            assert_eq!(
                (inner.component, inner.manifest, inner.signature),
                (parts.component, None, None)
            );
        }
        Err(_) => {
            assert!(
                matches!(claims, Err(VerifyError::Malformed(_))),
                "{claims:?}"
            );
            assert!(
                matches!(verified, Err(VerifyError::Malformed(_))),
                "{verified:?}"
            );
        }
    }
    if let Ok(artifact) = &verified {
        let claims = claims.as_ref().expect("a verified file has claims");
        assert_eq!(
            artifact.bytes(),
            claims.component,
            "verified bytes are the file's component"
        );
        assert_eq!(artifact.digest(), Digest::of(claims.component));
        let text = claims
            .manifest_text
            .expect("a verified file has a manifest");
        assert_eq!(
            artifact.manifest(),
            &Manifest::from_toml(text, "the same text").unwrap()
        );
        let Provenance::Signed { key_id, .. } = artifact.provenance() else {
            panic!("verify made an unsigned artifact");
        };
        let entry = TRUST.get(key_id).expect("the signer is in the store");
        assert!(entry.revoked.is_none(), "a revoked key's file verified");
        assert_eq!(claims.record.as_ref().map(|r| &r.key_id), Some(key_id));
    }
    // A reviewer reads the same untrusted file, trusting none of it.
    if let Ok(review) = review::review(bytes, "fuzz.wasm", None, Some(&TRUST)) {
        assert_eq!(
            review.signer.status == "trusted",
            verified.is_ok(),
            "{:?}",
            review.signer
        );
        for format in [Format::Text, Format::Markdown, Format::Json] {
            let _ = review::render(&review, format);
        }
    }
    verified
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Spliced { at, remove, bytes } => {
            let mut file = SIGNED.clone();
            let at = usize::from(at) % (file.len() + 1);
            let end = (at + usize::from(remove)).min(file.len());
            file.splice(at..end, bytes.iter().copied());
            if let Ok(artifact) = check(&file) {
                // Only a change outside what the signature binds can leave the file valid.
                assert_eq!(
                    artifact.bytes(),
                    &COMPONENT[..],
                    "a changed component verified"
                );
                let claims = signature::claims(&file).unwrap();
                assert_eq!(
                    claims.manifest_text,
                    Some(fixture::MANIFEST),
                    "a changed manifest verified"
                );
            }
        }
        Input::Signed {
            signer,
            manifest,
            component,
        } => {
            let seed = match signer {
                Signer::Publisher => fixture::PUBLISHER,
                Signer::Revoked => fixture::REVOKED,
                Signer::Stranger => fixture::STRANGER,
            };
            let Ok(file) = signature::sign(component, manifest, &fixture::key(seed)) else {
                return;
            };
            match (signer, check(&file)) {
                (Signer::Publisher, Ok(artifact)) => assert_eq!(artifact.bytes(), component),
                (Signer::Revoked, Err(VerifyError::RevokedKey { .. })) => {}
                (Signer::Stranger, Err(VerifyError::UnknownKey(_))) => {}
                (signer, result) => panic!("a file signed by {signer:?} gave {result:?}"),
            }
        }
    }
});
