//! Signatures: nothing runs unless a trusted key signed exactly these bytes and this manifest.
//!
//! Threat model: the registry, the network and the disk that plugins travel
//! through are untrusted. Anyone may hand the host any file. A file is only
//! turned into a runnable [`PluginArtifact`] here, after:
//! 1. the framing is strict (see [`format`]): our manifest and signature are the
//!    last two sections, once each, so nothing can be stripped, added or reordered;
//! 2. the signature record names a key that is in the trust store and not revoked;
//! 3. the Ed25519 signature (strict verification) covers a domain-separated
//!    message binding the component's SHA-256, the manifest's SHA-256 and the key id;
//! 4. the manifest parses and validates.
//!
//! The component bytes handed on are exactly the bytes that were hashed and
//! signed. Verification is cheap (two hashes and one signature check) and runs
//! on every load, so a revocation applies to the very next load.

mod artifact;
mod format;
mod keys;
mod trust;

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use artifact::{Digest, PluginArtifact, Provenance};
pub use format::{FormatError, MANIFEST_SECTION, SIGNATURE_SECTION, split};
pub use keys::{
    KeyError, KeyId, generate, generate_files, public_key_pem, read_signing_key,
    read_verifying_key, write_signing_key,
};
pub use trust::{TrustError, TrustStore, TrustedKey};

use crate::manifest::{Manifest, ManifestError};

/// Domain separation: a blastwall plugin signature can never be mistaken for
/// (or replayed as) a signature over anything else.
const CONTEXT: &[u8] = b"blastwall plugin signature v1\0";

/// The signature section's payload (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignatureRecord {
    /// Format version, `1`.
    pub version: u32,
    /// The signing key.
    pub key_id: KeyId,
    /// SHA-256 of the component bytes, hex (also inside the signed message).
    pub component_sha256: String,
    /// SHA-256 of the manifest bytes, hex (also inside the signed message).
    pub manifest_sha256: String,
    /// The Ed25519 signature, hex.
    pub signature: String,
}

/// Why a file could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The input is not a component.
    #[error("cannot sign: {0}")]
    Format(#[from] FormatError),
    /// The input already carries blastwall sections.
    #[error(
        "cannot sign: the file already carries a blastwall manifest or signature; sign the plain component"
    )]
    AlreadySigned,
    /// The manifest is invalid.
    #[error("cannot sign: {0}")]
    Manifest(#[from] ManifestError),
}

/// Why a file is not a trusted plugin. Each variant renders as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The file is not a well-formed artifact.
    #[error("malformed: {0}")]
    Malformed(String),
    /// There is no signature (with or without a manifest).
    #[error("unsigned: the file carries no blastwall signature")]
    Unsigned,
    /// The signing key is not in the trust store.
    #[error("unknown key: {0} is not in the trust store")]
    UnknownKey(KeyId),
    /// The signing key was revoked.
    #[error("revoked key: {id} ({name}) was revoked at {at}")]
    RevokedKey {
        /// The key id.
        id: KeyId,
        /// The signer's name.
        name: String,
        /// When it was revoked.
        at: String,
    },
    /// The component was changed after signing, or the signature is forged.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The manifest was changed after signing, or is invalid.
    #[error("manifest mismatch: {0}")]
    ManifestMismatch(String),
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The exact message an Ed25519 signature covers.
fn signed_message(
    component_sha256: &[u8; 32],
    manifest_sha256: &[u8; 32],
    key_id: &KeyId,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(CONTEXT.len() + 64 + 32);
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(component_sha256);
    message.extend_from_slice(manifest_sha256);
    message.extend_from_slice(key_id.as_str().as_bytes());
    message
}

/// Signs `component` together with `manifest_text`, returning the signed `.wasm` file.
pub fn sign(component: &[u8], manifest_text: &str, key: &SigningKey) -> Result<Vec<u8>, SignError> {
    let parts = split(component)?;
    if parts.manifest.is_some() || parts.signature.is_some() {
        return Err(SignError::AlreadySigned);
    }
    Manifest::from_toml(manifest_text, "to sign")?;
    let key_id = KeyId::of(&key.verifying_key());
    let component_hash = sha256(component);
    let manifest_hash = sha256(manifest_text.as_bytes());
    let signature = key.sign(&signed_message(&component_hash, &manifest_hash, &key_id));
    let record = SignatureRecord {
        version: 1,
        key_id,
        component_sha256: hex::encode(component_hash),
        manifest_sha256: hex::encode(manifest_hash),
        signature: hex::encode(signature.to_bytes()),
    };
    let mut out = component.to_vec();
    out.extend(format::custom_section(
        MANIFEST_SECTION,
        manifest_text.as_bytes(),
    ));
    out.extend(format::custom_section(
        SIGNATURE_SECTION,
        &serde_json::to_vec(&record).expect("a signature record always serializes"),
    ));
    Ok(out)
}

/// What a file claims, before any trust decision: for review and diagnostics.
#[derive(Debug, Clone)]
pub struct Claims<'a> {
    /// The component bytes.
    pub component: &'a [u8],
    /// The manifest text, if present and UTF-8.
    pub manifest_text: Option<&'a str>,
    /// The signature record, if present and well formed.
    pub record: Option<SignatureRecord>,
}

/// Reads what a file claims without trusting any of it.
pub fn claims(bytes: &[u8]) -> Result<Claims<'_>, VerifyError> {
    let parts = split(bytes).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let manifest_text = match parts.manifest {
        Some(raw) => Some(
            std::str::from_utf8(raw)
                .map_err(|_| VerifyError::Malformed("the manifest section is not UTF-8".into()))?,
        ),
        None => None,
    };
    let record = match parts.signature {
        Some(raw) => Some(serde_json::from_slice::<SignatureRecord>(raw).map_err(|e| {
            VerifyError::Malformed(format!("the signature record is invalid: {e}"))
        })?),
        None => None,
    };
    Ok(Claims {
        component: parts.component,
        manifest_text,
        record,
    })
}

/// An Ed25519 signature from exactly 128 lowercase hex digits. Only the
/// canonical spelling is accepted, so no two inputs differing in any byte
/// both verify.
pub(crate) fn signature_from_hex(text: &str) -> Option<Signature> {
    let canonical = text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    canonical
        .then(|| hex::decode(text).ok())
        .flatten()
        .and_then(|raw| <[u8; 64]>::try_from(raw).ok())
        .map(|raw| Signature::from_bytes(&raw))
}

/// Verifies `bytes` against `trust` and returns the artifact to load.
pub fn verify(bytes: &[u8], trust: &TrustStore) -> Result<PluginArtifact, VerifyError> {
    let claims = claims(bytes)?;
    let (Some(record), Some(manifest_text)) = (claims.record, claims.manifest_text) else {
        return Err(VerifyError::Unsigned);
    };
    if record.version != 1 {
        return Err(VerifyError::Malformed(format!(
            "signature record version {} is not supported",
            record.version
        )));
    }
    let entry = trust
        .get(&record.key_id)
        .ok_or_else(|| VerifyError::UnknownKey(record.key_id.clone()))?;
    if let Some(at) = &entry.revoked {
        return Err(VerifyError::RevokedKey {
            id: entry.id.clone(),
            name: entry.name.clone(),
            at: at.clone(),
        });
    }
    let component_hash = sha256(claims.component);
    let manifest_hash = sha256(manifest_text.as_bytes());
    if hex::encode(component_hash) != record.component_sha256 {
        return Err(VerifyError::BadSignature(
            "the component bytes differ from the bytes that were signed".into(),
        ));
    }
    if hex::encode(manifest_hash) != record.manifest_sha256 {
        return Err(VerifyError::ManifestMismatch(
            "the manifest differs from the manifest that was signed".into(),
        ));
    }
    let signature = signature_from_hex(&record.signature).ok_or_else(|| {
        VerifyError::Malformed("the signature is not 64 hex-encoded bytes".into())
    })?;
    TrustStore::verifying_key(entry)
        .verify_strict(
            &signed_message(&component_hash, &manifest_hash, &record.key_id),
            &signature,
        )
        .map_err(|_| {
            VerifyError::BadSignature(format!(
                "the signature does not verify with key {}",
                record.key_id
            ))
        })?;
    let manifest = Manifest::from_toml(manifest_text, "the signed manifest")
        .map_err(|e| VerifyError::ManifestMismatch(e.to_string()))?;
    Ok(PluginArtifact::signed(
        claims.component.to_vec(),
        manifest,
        Provenance::Signed {
            key_id: entry.id.clone(),
            signer: entry.name.clone(),
            tier: entry.tier,
        },
    ))
}

#[cfg(test)]
mod tests;
