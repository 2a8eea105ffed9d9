//! The single writer: every write to the database (state changes and audit
//! records) goes through this thread, in group-committed transactions.

use std::path::Path;

use tokio::sync::{mpsc, oneshot};

use super::chain::{GENESIS, record_hash};
use super::store::{AuditError, Committed, Entry, MAX_BATCH, Op, OpError, Receipt, head_mac, now};

/// One caller's commit, waiting for the writer.
pub(super) struct Job {
    pub(super) ops: Vec<Op>,
    pub(super) entries: Vec<Entry>,
    pub(super) reply: oneshot::Sender<Result<Committed, AuditError>>,
}

/// The writer's own connection: direct SQLite (rusqlite, the same bundled
/// library sqlx uses), because the writer runs about ten statements per commit
/// and sqlx's SQLite driver hands each statement to a worker thread, which
/// costs more than the statement. Reads and queries stay on sqlx.
pub(super) fn open_writer(path: &Path) -> Result<rusqlite::Connection, String> {
    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(|e| e.to_string())?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The chain head as the last commit left it, read inside each writing
/// transaction: another process on the same file (an operator's CLI next to a
/// running host) may have appended since, so the head is never cached.
fn head_in(conn: &rusqlite::Connection, key: &[u8; 32]) -> Result<(u64, [u8; 32]), String> {
    use rusqlite::OptionalExtension;
    let row: Option<(i64, String, String)> = conn
        .prepare_cached("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
        .and_then(|mut s| {
            s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(|e| e.to_string())?;
    let last: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(|e| e.to_string())?;
    // The head must name the chain's last record: rows beyond it, or a head
    // removed under existing rows, mean the store was edited.
    let matches = match (&row, &last) {
        (None, None) => true,
        (Some((seq, hash, _)), Some((last_seq, last_hash))) => seq == last_seq && hash == last_hash,
        _ => false,
    };
    if !matches {
        return Err(
            "the audit head does not name the chain's last record; refusing to write (run `blastwall audit verify`)"
                .into(),
        );
    }
    let Some((seq, hash, mac)) = row else {
        return Ok((0, GENESIS));
    };
    let seq = seq as u64;
    // Never extend a head this host did not sign: appending to a forged chain
    // would bless it.
    if head_mac(key, seq, &hash) != mac {
        return Err(format!(
            "the audit head (record {seq}) is not signed by this host's key; refusing to append (run `blastwall audit verify`)"
        ));
    }
    let prev = hex::decode(&hash)
        .ok()
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
        .ok_or_else(|| format!("the audit head hash {hash:?} is malformed; refusing to append"))?;
    Ok((seq, prev))
}

/// The single writer thread: takes every commit waiting (up to a limit) and
/// applies them in one transaction (group commit), each inside its own
/// savepoint.
pub(super) fn write_loop(
    mut conn: rusqlite::Connection,
    mut queue: mpsc::Receiver<Job>,
    key: [u8; 32],
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let jobs = std::mem::take(&mut batch);
        let mut replies = Vec::with_capacity(jobs.len());
        match write_batch(&mut conn, jobs, &key, &mut replies) {
            Ok(()) => {
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(message) => {
                tracing::error!("audit commit failed: {message}");
                for (reply, _) in replies {
                    let _ = reply.send(Err(AuditError::Commit(message.clone())));
                }
            }
        }
    }
}

type Replies = Vec<(
    oneshot::Sender<Result<Committed, AuditError>>,
    Result<Committed, AuditError>,
)>;

/// Applies one commit's ops and records; on any failure the caller rolls the
/// savepoint back.
fn apply_job(
    conn: &rusqlite::Connection,
    ops: Vec<Op>,
    entries: &[Entry],
    seq: &mut u64,
    prev: &mut [u8; 32],
) -> Result<Committed, AuditError> {
    let mut results = Vec::with_capacity(ops.len());
    let mut added = Vec::new();
    for op in ops {
        match op(conn, &mut added) {
            Ok(value) => results.push(value),
            Err(OpError::Refused(why)) => return Err(AuditError::Refused(why)),
            Err(OpError::Database(why)) => return Err(AuditError::Commit(why)),
        }
    }
    let mut insert = conn
        .prepare_cached("INSERT INTO audit (seq, at, incident, kind, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .map_err(|e| AuditError::Commit(e.to_string()))?;
    let mut receipts = Vec::with_capacity(entries.len() + added.len());
    for entry in entries.iter().chain(&added) {
        let next = *seq + 1;
        let at = now();
        let body = entry.body.to_string();
        let hash = record_hash(
            next,
            &at,
            entry.incident.as_deref(),
            &entry.kind,
            &body,
            prev,
        );
        let hash_hex = hex::encode(hash);
        insert
            .execute(rusqlite::params![
                next as i64,
                at,
                entry.incident,
                entry.kind,
                body,
                hex::encode(*prev),
                hash_hex,
            ])
            .map_err(|e| AuditError::Commit(e.to_string()))?;
        receipts.push(Receipt {
            seq: next,
            hash: hash_hex,
        });
        *seq = next;
        *prev = hash;
    }
    Ok(Committed { results, receipts })
}

fn write_batch(
    conn: &mut rusqlite::Connection,
    jobs: Vec<Job>,
    key: &[u8; 32],
    replies: &mut Replies,
) -> Result<(), String> {
    // A transaction a failed rollback left open would refuse every later one.
    if !conn.is_autocommit() {
        tracing::error!("the writer's connection was left inside a transaction; rolling it back");
        let _ = conn.execute_batch("ROLLBACK");
    }
    // IMMEDIATE: take the write lock before reading the head, so no other
    // writer (another process on the same file) can slip a record in between.
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let message = e.to_string();
            for job in jobs {
                replies.push((job.reply, Err(AuditError::Commit(message.clone()))));
            }
            return Err(message);
        }
    };
    let (mut seq, mut prev) = match head_in(&tx, key) {
        Ok(head) => head,
        Err(message) => {
            for job in jobs {
                replies.push((job.reply, Err(AuditError::Commit(message.clone()))));
            }
            return Ok(());
        }
    };
    let sql = |tx: &rusqlite::Transaction<'_>, statement: &str| {
        tx.execute_batch(statement).map_err(|e| e.to_string())
    };
    let mut jobs = jobs.into_iter();
    while let Some(Job {
        ops,
        entries,
        reply,
    }) = jobs.next()
    {
        // A caller that gave up (its task was cancelled) never learns the
        // outcome, so its commit is not made: nothing it claimed is left behind.
        if reply.is_closed() {
            continue;
        }
        // Every job ends in `replies`, even when the batch fails part-way, so
        // each caller learns the real error rather than a closed channel.
        let step = || -> Result<Result<Committed, AuditError>, String> {
            sql(&tx, "SAVEPOINT job")?;
            let (before_seq, before_prev) = (seq, prev);
            // A panic in a state change must not end the writer (and with it
            // every later write): it fails this commit only.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                apply_job(&tx, ops, &entries, &mut seq, &mut prev)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(AuditError::Commit(format!(
                    "a state change panicked: {what}"
                )))
            });
            if let Err(failed) = &result {
                sql(&tx, "ROLLBACK TO job").map_err(|e| format!("{failed}; then {e}"))?;
                (seq, prev) = (before_seq, before_prev);
            }
            sql(&tx, "RELEASE job")?;
            Ok(result)
        };
        match step() {
            Ok(result) => replies.push((reply, result)),
            Err(message) => {
                replies.push((reply, Err(AuditError::Commit(message.clone()))));
                for rest in jobs {
                    replies.push((rest.reply, Err(AuditError::Commit(message.clone()))));
                }
                return Err(message);
            }
        }
    }
    if seq > 0 {
        let head_hash = hex::encode(prev);
        tx.prepare_cached("INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac")
            .and_then(|mut s| s.execute(rusqlite::params![seq as i64, head_hash, head_mac(key, seq, &head_hash)]))
            .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}
