//! The hash chain: how records are hashed and how a sequence of them is checked.
//!
//! Each record's hash covers a domain tag, its sequence number, the previous
//! record's hash and every field, length-prefixed so no two different records
//! hash the same bytes. The body is hashed exactly as stored (JSON text), so
//! verification never depends on re-serialising it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"blastwall audit record v1\0";

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it was appended (RFC 3339, UTC, microseconds).
    pub at: String,
    /// The incident it belongs to, if any.
    pub incident: Option<String>,
    /// What it records, e.g. `decision`, `run`, `call`, `verification`.
    pub kind: String,
    /// The record's content, JSON text.
    pub body: String,
    /// The previous record's hash, hex.
    pub prev_hash: String,
    /// This record's hash, hex.
    pub hash: String,
}

/// A record's fields, borrowed (as read straight from a database row).
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// See [`Record::seq`].
    pub seq: u64,
    /// See [`Record::at`].
    pub at: &'a str,
    /// See [`Record::incident`].
    pub incident: Option<&'a str>,
    /// See [`Record::kind`].
    pub kind: &'a str,
    /// See [`Record::body`].
    pub body: &'a str,
    /// See [`Record::prev_hash`].
    pub prev_hash: &'a str,
    /// See [`Record::hash`].
    pub hash: &'a str,
}

fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_be_bytes());
    hash.update(bytes);
}

/// The hash of a record with these fields.
pub fn record_hash(
    seq: u64,
    at: &str,
    incident: Option<&str>,
    kind: &str,
    body: &str,
    prev: &[u8; 32],
) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    hash.update(seq.to_be_bytes());
    hash.update(prev);
    field(&mut hash, at.as_bytes());
    match incident {
        Some(id) => {
            hash.update([1]);
            field(&mut hash, id.as_bytes());
        }
        None => hash.update([0]),
    }
    field(&mut hash, kind.as_bytes());
    field(&mut hash, body.as_bytes());
    hash.finalize().into()
}

/// The first thing wrong with a chain. Every variant names the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A sequence number is missing: a record was deleted (or the chain reordered).
    #[error(
        "record {expected} is missing (found {found} next): a record was deleted or the chain reordered"
    )]
    Missing {
        /// The sequence number expected next.
        expected: u64,
        /// The one found instead.
        found: u64,
    },
    /// A record does not point at its predecessor: something was inserted or replaced.
    #[error("record {seq} does not follow record {}: a record was inserted, replaced or reordered", seq - 1)]
    BrokenLink {
        /// The record.
        seq: u64,
    },
    /// A record's content does not match its hash: it was edited.
    #[error("record {seq} was edited: its content does not match its hash")]
    Edited {
        /// The record.
        seq: u64,
    },
    /// A stored hash is not 32 hex-encoded bytes.
    #[error("record {seq} is malformed: {why}")]
    Malformed {
        /// The record.
        seq: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// The chain ends before the signed head: records were removed from the end.
    #[error(
        "the chain ends at record {last} but the signed head is record {head}: records were removed from the end"
    )]
    Truncated {
        /// The last record present.
        last: u64,
        /// The head's sequence number.
        head: u64,
    },
    /// Records exist beyond the signed head: they were appended by something other than this host.
    #[error(
        "record {seq} lies beyond the signed head (record {head}): it was appended outside blastwall"
    )]
    BeyondHead {
        /// The first record beyond the head.
        seq: u64,
        /// The head's sequence number.
        head: u64,
    },
    /// The head does not match the last record, or its signature is wrong.
    #[error("the signed head does not match the chain: {0}")]
    Head(&'static str),
}

fn decode(hex_text: &str, seq: u64) -> Result<[u8; 32], ChainError> {
    hex::decode(hex_text)
        .ok()
        .and_then(|raw| <[u8; 32]>::try_from(raw).ok())
        .ok_or(ChainError::Malformed {
            seq,
            why: "a hash is not 32 hex-encoded bytes",
        })
}

/// Checks records in order, one at a time, with constant memory.
#[derive(Debug)]
pub struct Verifier {
    next_seq: u64,
    prev: [u8; 32],
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            next_seq: 1,
            prev: GENESIS,
        }
    }
}

impl Verifier {
    /// Checks the next record.
    pub fn push(&mut self, r: &Record) -> Result<(), ChainError> {
        self.push_ref(RecordRef {
            seq: r.seq,
            at: &r.at,
            incident: r.incident.as_deref(),
            kind: &r.kind,
            body: &r.body,
            prev_hash: &r.prev_hash,
            hash: &r.hash,
        })
    }

    /// Checks the next record, given as borrowed fields (no allocation per record).
    pub fn push_ref(&mut self, r: RecordRef<'_>) -> Result<(), ChainError> {
        if r.seq != self.next_seq {
            return Err(ChainError::Missing {
                expected: self.next_seq,
                found: r.seq,
            });
        }
        // Compare as hex text: no allocation per record on the verify path.
        let mut expected_prev = [0u8; 64];
        hex::encode_to_slice(self.prev, &mut expected_prev).expect("64 bytes hold 32 in hex");
        if r.prev_hash.as_bytes() != expected_prev {
            return Err(match decode(r.prev_hash, r.seq) {
                Err(malformed) => malformed,
                Ok(_) => ChainError::BrokenLink { seq: r.seq },
            });
        }
        let computed = record_hash(r.seq, r.at, r.incident, r.kind, r.body, &self.prev);
        let mut computed_hex = [0u8; 64];
        hex::encode_to_slice(computed, &mut computed_hex).expect("64 bytes hold 32 in hex");
        if r.hash.as_bytes() != computed_hex {
            return Err(match decode(r.hash, r.seq) {
                Err(malformed) => malformed,
                Ok(_) => ChainError::Edited { seq: r.seq },
            });
        }
        self.prev = computed;
        self.next_seq += 1;
        Ok(())
    }

    /// The last verified record's sequence number and hash (0 and GENESIS if none).
    pub fn last(&self) -> (u64, [u8; 32]) {
        (self.next_seq - 1, self.prev)
    }
}
