//! Tamper-evident audit: every step of every remediation, durably, in a hash chain.
//!
//! Threat model: an insider with write access to the audit database edits,
//! deletes, inserts, reorders or truncates records to hide what happened.
//! Records form a SHA-256 chain (each hash covers the previous one), and the
//! chain's head is signed with a host-local key after every commit, so
//! `blastwall audit verify` detects each of those changes and names the first
//! bad record. An insider who also holds the host's key can rewrite history;
//! shipping the head elsewhere (a log service, a transparency log) closes that,
//! and is the next step.

mod chain;
mod store;
mod writer;

pub use chain::{ChainError, GENESIS, Record, RecordRef, Verifier, record_hash};
pub use store::{AuditError, AuditLog, Committed, Entry, Op, OpError, Receipt, Verified};

#[cfg(test)]
mod tests;
