//! The signed envelope: four headers around the exact body bytes.
//!
//! The signature covers a domain-separated message, so it can never be
//! mistaken for a plugin signature or anything else a key signs:
//!
//! ```text
//! "blastwall-proposal-v1\0" ‖ key id ‖ "\0" ‖ timestamp ‖ "\0" ‖ nonce ‖ "\0" ‖ sha256(body)
//! ```
//!
//! The key must be in the trust store, unrevoked, and of the `ai-agent` tier;
//! the timestamp (Unix seconds) within the freshness window either way; the
//! nonce 16 to 64 of `[A-Za-z0-9_-]`. Verification here is pure: spending the
//! nonce (replay protection) happens in the store, in the same commit as the
//! proposal's `proposal.received` record (see `Responder::propose`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer as _, SigningKey};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::ProposalError;
use super::plan::{MAX_BODY_BYTES, Plan};
use crate::policy::Tier;
use crate::signature::{KeyId, TrustStore};

/// The header naming the signing key's id.
pub const HEADER_KEY: &str = "Blastwall-Key";
/// The header holding the signing time, Unix seconds.
pub const HEADER_TIMESTAMP: &str = "Blastwall-Timestamp";
/// The header holding the single-use nonce.
pub const HEADER_NONCE: &str = "Blastwall-Nonce";
/// The header holding the Ed25519 signature, 128 lowercase hex digits.
pub const HEADER_SIGNATURE: &str = "Blastwall-Signature";

const CONTEXT: &[u8] = b"blastwall-proposal-v1\0";

/// The four header values as received (absent headers are `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    /// [`HEADER_KEY`].
    pub key: Option<&'a str>,
    /// [`HEADER_TIMESTAMP`].
    pub timestamp: Option<&'a str>,
    /// [`HEADER_NONCE`].
    pub nonce: Option<&'a str>,
    /// [`HEADER_SIGNATURE`].
    pub signature: Option<&'a str>,
}

/// The four header values of a signed proposal, as [`sign`] makes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedHeaders {
    /// [`HEADER_KEY`].
    #[serde(rename = "Blastwall-Key")]
    pub key: String,
    /// [`HEADER_TIMESTAMP`].
    #[serde(rename = "Blastwall-Timestamp")]
    pub timestamp: String,
    /// [`HEADER_NONCE`].
    #[serde(rename = "Blastwall-Nonce")]
    pub nonce: String,
    /// [`HEADER_SIGNATURE`].
    #[serde(rename = "Blastwall-Signature")]
    pub signature: String,
}

impl SignedHeaders {
    /// Borrowed, as a receiver sees them.
    pub fn as_headers(&self) -> Headers<'_> {
        Headers {
            key: Some(&self.key),
            timestamp: Some(&self.timestamp),
            nonce: Some(&self.nonce),
            signature: Some(&self.signature),
        }
    }
}

/// A proposal whose envelope verified: authentic, fresh, from an `ai-agent`
/// key, and well formed. Only [`verify`] makes one; its nonce is not yet spent.
#[derive(Debug, Clone)]
pub struct Verified {
    pub(crate) key: KeyId,
    pub(crate) signer: String,
    pub(crate) timestamp: i64,
    pub(crate) nonce: String,
    pub(crate) body_sha256: String,
    pub(crate) plan: Plan,
    /// When a replay would be refused as stale anyway (Unix milliseconds).
    pub(crate) expires: i64,
}

impl Verified {
    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The signing key.
    pub fn key(&self) -> &KeyId {
        &self.key
    }

    /// The nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
}

/// The exact bytes the signature covers.
pub fn signed_message(key: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(CONTEXT.len() + key.len() + 64 + nonce.len() + 32);
    message.extend_from_slice(CONTEXT);
    for part in [key, timestamp, nonce] {
        message.extend_from_slice(part.as_bytes());
        message.push(0);
    }
    message.extend_from_slice(&Sha256::digest(body));
    message
}

/// A fresh random nonce: 32 lowercase hex digits.
pub fn new_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Signs `body` with `key` at `at`, with `nonce`: the four header values.
pub fn sign(body: &[u8], key: &SigningKey, at: SystemTime, nonce: &str) -> SignedHeaders {
    let id = KeyId::of(&key.verifying_key()).to_string();
    let timestamp = unix_seconds(at).to_string();
    let signature = key.sign(&signed_message(&id, &timestamp, nonce, body));
    SignedHeaders {
        key: id,
        timestamp,
        nonce: nonce.to_string(),
        signature: hex::encode(signature.to_bytes()),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Canonical Unix seconds: digits only, no leading zero, at most 12 digits.
fn parse_timestamp(raw: &str) -> Option<i64> {
    let canonical = !raw.is_empty()
        && raw.len() <= 12
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    canonical.then(|| raw.parse().ok()).flatten()
}

fn valid_nonce(raw: &str) -> bool {
    (16..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Verifies a proposal's envelope and parses its body, in an order that
/// tells an unauthenticated sender nothing about the body: headers, body
/// size, key, signature, tier, freshness, then the plan.
pub fn verify(
    body: &[u8],
    headers: &Headers<'_>,
    trust: &TrustStore,
    freshness: Duration,
    now: SystemTime,
) -> Result<Verified, ProposalError> {
    let key = headers.key.ok_or(ProposalError::Unsigned(HEADER_KEY))?;
    let timestamp = headers
        .timestamp
        .ok_or(ProposalError::Unsigned(HEADER_TIMESTAMP))?;
    let nonce = headers.nonce.ok_or(ProposalError::Unsigned(HEADER_NONCE))?;
    let signature = headers
        .signature
        .ok_or(ProposalError::Unsigned(HEADER_SIGNATURE))?;
    let bad_header = |name: &'static str, value: &str| ProposalError::BadHeader {
        name,
        value: clip(value),
    };
    let key_id = KeyId::parse(key).map_err(|_| bad_header(HEADER_KEY, key))?;
    let at = parse_timestamp(timestamp).ok_or_else(|| bad_header(HEADER_TIMESTAMP, timestamp))?;
    if !valid_nonce(nonce) {
        return Err(bad_header(HEADER_NONCE, nonce));
    }
    let signature = crate::signature::signature_from_hex(signature)
        .ok_or_else(|| bad_header(HEADER_SIGNATURE, signature))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ProposalError::Malformed(format!(
            "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
            body.len()
        )));
    }
    let entry = trust
        .get(&key_id)
        .ok_or_else(|| ProposalError::UnknownKey(key_id.clone()))?;
    if let Some(revoked) = &entry.revoked {
        return Err(ProposalError::RevokedKey {
            key: key_id,
            at: revoked.clone(),
        });
    }
    TrustStore::verifying_key(entry)
        .verify_strict(&signed_message(key, timestamp, nonce, body), &signature)
        .map_err(|_| ProposalError::BadSignature(key_id.clone()))?;
    if entry.tier != Tier::AiAgent {
        return Err(ProposalError::WrongTier {
            key: key_id,
            tier: entry.tier,
        });
    }
    let now_s = unix_seconds(now);
    let window = freshness.as_secs() as i64;
    if (now_s - at).abs() > window {
        return Err(ProposalError::Stale {
            timestamp: at,
            now: now_s,
            window,
        });
    }
    let plan = Plan::parse(body).map_err(ProposalError::Malformed)?;
    Ok(Verified {
        signer: entry.name.clone(),
        key: key_id,
        timestamp: at,
        nonce: nonce.to_string(),
        body_sha256: hex::encode(Sha256::digest(body)),
        plan,
        expires: (at + window).saturating_mul(1000),
    })
}
