//! The audit chain as `audit verify` reads it back: rows of a database an
//! insider may have edited, and records in the JSON-lines form `audit
//! export` writes and other tools read back.
//!
//! The whole input is first read as one exported line (so exported records
//! are useful seeds), then as a sequence of rows. Each row either carries the value the honest writer would have stored
//! (sequence number, previous hash, hash) or one the input forges; the
//! target keeps its own model of the writer and compares.
//!
//! Properties: the verifier accepts a record exactly when its sequence
//! number is the next one and both hashes are the ones the chain computes,
//! so it never accepts a chain whose hashes it did not compute; a refusal
//! leaves it where it was; `push` and `push_ref` agree; an exported line
//! reads back to the record it was written from, and a stored body is read
//! as JSON (as the incident timeline does) without harm.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use blastwall::audit::{ChainError, GENESIS, Record, RecordRef, Verifier, record_hash};
use libfuzzer_sys::fuzz_target;

/// A stored hash: the honest writer's, forged text, or the hex of other bytes.
#[derive(Arbitrary, Debug)]
enum Stored<'a> {
    Honest,
    Forged(&'a str),
    Other([u8; 32]),
}

#[derive(Arbitrary, Debug)]
struct Row<'a> {
    /// `None`: the next sequence number, as the writer assigns it.
    seq: Option<u64>,
    at: &'a str,
    incident: Option<&'a str>,
    kind: &'a str,
    body: &'a str,
    prev_hash: Stored<'a>,
    hash: Stored<'a>,
}

fn stored_hash(stored: &Stored<'_>, honest: &[u8; 32]) -> String {
    match stored {
        Stored::Honest => hex_of(honest),
        Stored::Forged(text) => text.to_string(),
        Stored::Other(bytes) => hex_of(bytes),
    }
}

fn hex_of(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one line as `audit export` writes it and another tool reads it back.
fn exported(line: &str) {
    let Ok(record) = serde_json::from_str::<Record>(line) else {
        return;
    };
    let written = serde_json::to_string(&record).expect("a record serialises");
    assert_eq!(
        serde_json::from_str::<Record>(&written).ok().as_ref(),
        Some(&record)
    );
    let _ = serde_json::from_str::<serde_json::Value>(&record.body);
    // A lone exported record starts a chain only if it is the genuine first record.
    let computed = record_hash(
        1,
        &record.at,
        record.incident.as_deref(),
        &record.kind,
        &record.body,
        &GENESIS,
    );
    let genuine =
        record.seq == 1 && record.prev_hash == hex_of(&GENESIS) && record.hash == hex_of(&computed);
    assert_eq!(Verifier::default().push(&record).is_ok(), genuine);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        exported(line);
    }
    let Ok(rows) = Vec::<Row<'_>>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut by_value = Verifier::default();
    let mut by_ref = Verifier::default();
    // The writer's state: the next sequence number and the last hash.
    let (mut next, mut prev) = (1u64, GENESIS);
    for row in &rows {
        let seq = row.seq.unwrap_or(next);
        let computed = record_hash(seq, row.at, row.incident, row.kind, row.body, &prev);
        let record = Record {
            seq,
            at: row.at.to_string(),
            incident: row.incident.map(str::to_string),
            kind: row.kind.to_string(),
            body: row.body.to_string(),
            prev_hash: stored_hash(&row.prev_hash, &prev),
            hash: stored_hash(&row.hash, &computed),
        };
        let result = by_value.push(&record);
        let same = by_ref.push_ref(RecordRef {
            seq: record.seq,
            at: &record.at,
            incident: record.incident.as_deref(),
            kind: &record.kind,
            body: &record.body,
            prev_hash: &record.prev_hash,
            hash: &record.hash,
        });
        assert_eq!(result, same, "push and push_ref disagree");
        let genuine =
            seq == next && record.prev_hash == hex_of(&prev) && record.hash == hex_of(&computed);
        assert_eq!(result.is_ok(), genuine, "{result:?} for {record:?}");
        match &result {
            Ok(()) => (next, prev) = (next + 1, computed),
            Err(ChainError::Missing { expected, found }) => {
                assert_eq!((*expected, *found), (next, seq))
            }
            Err(
                ChainError::BrokenLink { seq: at }
                | ChainError::Edited { seq: at }
                | ChainError::Malformed { seq: at, .. },
            ) => assert_eq!(*at, seq),
            Err(other) => panic!("a single record cannot be {other}"),
        }
        if let Err(error) = &result {
            let _ = error.to_string();
        }
        assert_eq!(
            by_value.last(),
            (next - 1, prev),
            "the verifier's position is the writer's"
        );
        let _ = serde_json::from_str::<serde_json::Value>(&record.body);
        let line = serde_json::to_string(&record).expect("a record serialises");
        assert_eq!(
            serde_json::from_str::<Record>(&line).ok().as_ref(),
            Some(&record)
        );
    }
});
