//! The embedded audit store: one SQLite file, written with group commit.
//!
//! Commits (audit records, with the state changes they describe) from any
//! number of tasks go through one writer thread (see `writer.rs`). It takes
//! everything waiting (up to a batch limit), applies each commit in its own
//! savepoint of one transaction with the new signed head, commits with
//! `synchronous=FULL` in WAL mode (one fsync for the whole batch), and only
//! then acknowledges each commit. Nothing is acknowledged before it is
//! durable; under load, many commits share one fsync.
//!
//! The head (last sequence number and hash) is stored with an HMAC under a
//! host-local key, so records cannot be appended, removed from the end or
//! rewritten wholesale without `audit verify` noticing.
//!
//! Queries use sqlx (the driver that will also serve PostgreSQL); the writer
//! and full-chain verification use rusqlite on the same bundled SQLite,
//! because sqlx hands every statement and row through a worker thread.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::chain::{ChainError, Record, RecordRef, Verifier};
use super::writer::{self, Job};

/// Most records written in one transaction.
pub(super) const MAX_BATCH: usize = 4096;
/// Appends that may wait for the writer before `append` itself waits.
const QUEUE: usize = 16_384;
const KEY_FILE: &str = "audit.key";

/// What to append: the writer assigns sequence number, time and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The incident it belongs to, if any.
    pub incident: Option<String>,
    /// What it records, e.g. `decision`.
    pub kind: String,
    /// The content.
    pub body: serde_json::Value,
}

/// Proof that a record is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash, hex.
    pub hash: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// The head's hash, hex (empty for an empty store).
    pub head_hash: String,
}

/// Why the audit store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The database or its key could not be used.
    #[error("audit store {path}: {message}")]
    Store {
        /// The database file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The writer has stopped (the store was closed or failed).
    #[error("the audit writer has stopped; nothing more can be recorded")]
    Closed,
    /// A batch could not be committed; none of its records were acknowledged.
    #[error("audit commit failed (nothing acknowledged): {0}")]
    Commit(String),
    /// The chain fails verification.
    #[error("audit chain is not intact: {0}")]
    Tampered(#[from] ChainError),
    /// A state change of the commit was refused; nothing of it was applied.
    #[error("{0}")]
    Refused(String),
}

/// One state change applied inside a commit's transaction, on the writer's
/// connection; it returns a number for the caller (a count, a row value) and
/// may add audit records of its own (appended after the commit's records).
pub type Op =
    Box<dyn FnOnce(&rusqlite::Connection, &mut Vec<Entry>) -> Result<i64, OpError> + Send>;

/// Why an [`Op`] failed. A refusal is a state the caller must handle (a
/// target already claimed); nothing of its commit is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// The state forbids the change.
    Refused(String),
    /// The database failed.
    Database(String),
}

/// What a durable commit produced: each op's result and each record's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// One per op, in order.
    pub results: Vec<i64>,
    /// One per record, in order.
    pub receipts: Vec<Receipt>,
}

/// The audit log. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct AuditLog {
    path: PathBuf,
    pool: SqlitePool,
    key: [u8; 32],
    appends: mpsc::Sender<Job>,
}

fn store_error(path: &Path) -> impl Fn(sqlx::Error) -> AuditError + '_ {
    move |e| AuditError::Store {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

pub(super) fn head_mac(key: &[u8; 32], seq: u64, hash: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"blastwall audit head v1\0");
    mac.update(&seq.to_be_bytes());
    mac.update(hash.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub(super) fn now() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        incident TEXT,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_incident ON audit (incident, seq)",
    "CREATE TABLE IF NOT EXISTS audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        mac TEXT NOT NULL)",
];

fn row_to_record(row: &sqlx::sqlite::SqliteRow) -> Record {
    Record {
        seq: row.get::<i64, _>(0) as u64,
        at: row.get(1),
        incident: row.get(2),
        kind: row.get(3),
        body: row.get(4),
        prev_hash: row.get(5),
        hash: row.get(6),
    }
}

const COLUMNS: &str = "seq, at, incident, kind, body, prev_hash, hash";

impl AuditLog {
    /// Opens (creating if needed) the audit tables in `blastwall.db` in `dir`, with its key.
    /// The same file holds the rest of the host's state (see `crate::store`).
    pub async fn open(dir: &Path) -> Result<Self, AuditError> {
        let path = dir.join(crate::store::DATABASE_FILE);
        let io = |e: std::io::Error| AuditError::Store {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let key = crate::secret::read_or_create(&dir.join(KEY_FILE)).map_err(io)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(store_error(&path))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(store_error(&path))?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(store_error(&path))?;
        }
        pool.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(store_error(&path))?;
        let connection = writer::open_writer(&path).map_err(|message| AuditError::Store {
            path: path.display().to_string(),
            message,
        })?;
        let (appends, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("blastwall-writer".into())
            .spawn(move || writer::write_loop(connection, queue, key))
            .map_err(io)?;
        Ok(AuditLog {
            path,
            pool,
            key,
            appends,
        })
    }

    /// Applies `ops` and appends `entries` in one transaction, after the
    /// commits queued before it; returns once it is durable. If an op fails,
    /// nothing of this commit is applied (other commits in the same group are
    /// unaffected).
    pub async fn commit(&self, ops: Vec<Op>, entries: Vec<Entry>) -> Result<Committed, AuditError> {
        let (reply, done) = oneshot::channel();
        self.appends
            .send(Job {
                ops,
                entries,
                reply,
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// Appends one record; returns once it is durable.
    pub async fn append(&self, entry: Entry) -> Result<Receipt, AuditError> {
        let mut committed = self.commit(Vec::new(), vec![entry]).await?;
        Ok(committed.receipts.remove(0))
    }

    /// Appends several records in order, atomically; returns once all are durable.
    pub async fn append_many(&self, entries: Vec<Entry>) -> Result<Vec<Receipt>, AuditError> {
        Ok(self.commit(Vec::new(), entries).await?.receipts)
    }

    /// Records with `seq > after`, at most `limit`, in order.
    pub async fn records(&self, after: u64, limit: u32) -> Result<Vec<Record>, AuditError> {
        let query = format!("SELECT {COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");
        let rows = sqlx::query(&query)
            .bind(after as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error(&self.path))?;
        Ok(rows.iter().map(row_to_record).collect())
    }

    /// Every record of one incident, in order.
    pub async fn incident(&self, id: &str) -> Result<Vec<Record>, AuditError> {
        let query = format!("SELECT {COLUMNS} FROM audit WHERE incident = ? ORDER BY seq");
        let rows = sqlx::query(&query)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error(&self.path))?;
        Ok(rows.iter().map(row_to_record).collect())
    }

    /// Verifies the whole chain and the signed head; names the first bad record.
    ///
    /// Reads with rusqlite rather than sqlx: sqlx's SQLite driver hands each row
    /// through a worker thread (about 5 µs a row here), while a direct read with
    /// borrowed column values costs well under 1 µs, which is what lets a
    /// million records verify in about a second. Both use the same SQLite
    /// library. One read transaction covers the head and the rows, so appends
    /// during verification are not mistaken for forgeries.
    pub async fn verify(&self) -> Result<Verified, AuditError> {
        let path = self.path.clone();
        let key = self.key;
        tokio::task::spawn_blocking(move || verify_file(&path, &key))
            .await
            .map_err(|e| AuditError::Store {
                path: self.path.display().to_string(),
                message: format!("verification task failed: {e}"),
            })?
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn verify_file(path: &Path, key: &[u8; 32]) -> Result<Verified, AuditError> {
    use rusqlite::{OpenFlags, OptionalExtension};
    let fail = |e: rusqlite::Error| AuditError::Store {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut conn = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(fail)?;
    let tx = conn.transaction().map_err(fail)?;
    let head: Option<(i64, String, String)> = tx
        .query_row(
            "SELECT seq, hash, mac FROM audit_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(fail)?;
    let (head_seq, head_hash, head_mac_text) = head
        .map_or((0, String::new(), String::new()), |(s, h, m)| {
            (s as u64, h, m)
        });
    let mut verifier = Verifier::default();
    {
        let mut statement = tx
            .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"))
            .map_err(fail)?;
        let mut rows = statement.query([]).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let text = |i: usize| -> Result<&str, AuditError> {
                row.get_ref(i)
                    .and_then(|v| v.as_str().map_err(Into::into))
                    .map_err(fail)
            };
            let seq = row.get::<_, i64>(0).map_err(fail)? as u64;
            if seq > head_seq && verifier.last().0 == head_seq {
                return Err(ChainError::BeyondHead {
                    seq,
                    head: head_seq,
                }
                .into());
            }
            let incident = match row.get_ref(2).map_err(fail)? {
                rusqlite::types::ValueRef::Null => None,
                value => Some(value.as_str().map_err(|e| fail(e.into()))?),
            };
            verifier.push_ref(RecordRef {
                seq,
                at: text(1)?,
                incident,
                kind: text(3)?,
                body: text(4)?,
                prev_hash: text(5)?,
                hash: text(6)?,
            })?;
        }
    }
    let (last, last_hash) = verifier.last();
    if last < head_seq {
        return Err(ChainError::Truncated {
            last,
            head: head_seq,
        }
        .into());
    }
    let chain_hash = if last == 0 {
        String::new()
    } else {
        hex::encode(last_hash)
    };
    if head_seq > 0
        && (head_hash != chain_hash || head_mac_text != head_mac(key, head_seq, &head_hash))
    {
        return Err(ChainError::Head("its hash or signature was altered").into());
    }
    Ok(Verified {
        records: last,
        head_hash: chain_hash,
    })
}
