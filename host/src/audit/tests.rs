//! The audit chain catches every kind of tampering and names the first bad record.

use std::str::FromStr;

use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use super::*;

async fn filled(records: u64) -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).await.unwrap();
    for i in 1..=records {
        let receipt = log
            .append(Entry {
                incident: Some(format!("inc-{}", i % 3)),
                kind: "call".into(),
                body: json!({"function": "scale.set-replicas", "replicas": i}),
            })
            .await
            .unwrap();
        assert_eq!(receipt.seq, i);
    }
    (dir, log)
}

/// Runs raw SQL against the store, as an insider with file access would.
async fn tamper(log: &AuditLog, statements: &[&str]) {
    let options =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", log.path().display())).unwrap();
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
}

async fn verdict(log: &AuditLog) -> String {
    log.verify().await.unwrap_err().to_string()
}

#[tokio::test]
async fn an_untouched_chain_verifies_and_survives_reopening() {
    let (dir, log) = filled(10).await;
    let verified = log.verify().await.unwrap();
    assert_eq!(verified.records, 10);
    drop(log);
    let reopened = AuditLog::open(dir.path()).await.unwrap();
    let receipt = reopened
        .append(Entry {
            incident: None,
            kind: "note".into(),
            body: json!("after reopening"),
        })
        .await
        .unwrap();
    assert_eq!(receipt.seq, 11);
    assert_eq!(reopened.verify().await.unwrap().records, 11);
    assert_eq!(reopened.incident("inc-1").await.unwrap().len(), 4);
    assert_eq!(reopened.records(8, 100).await.unwrap().len(), 3);
}

#[tokio::test]
async fn an_edited_record_is_named() {
    let (_dir, log) = filled(10).await;
    tamper(
        &log,
        &["UPDATE audit SET body = '{\"function\":\"restart.restart\"}' WHERE seq = 4"],
    )
    .await;
    assert_eq!(
        verdict(&log).await,
        "audit chain is not intact: record 4 was edited: its content does not match its hash"
    );
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let (_dir, log) = filled(10).await;
    tamper(&log, &["DELETE FROM audit WHERE seq = 6"]).await;
    assert_eq!(
        verdict(&log).await,
        "audit chain is not intact: record 6 is missing (found 7 next): a record was deleted or the chain reordered"
    );
}

#[tokio::test]
async fn an_inserted_record_is_named() {
    let (_dir, log) = filled(10).await;
    // Make room at 5 by shifting 5..10 up, then insert a forged record 5.
    tamper(
        &log,
        &[
            "UPDATE audit SET seq = seq + 100 WHERE seq >= 5",
            "UPDATE audit SET seq = seq - 99 WHERE seq >= 105",
            "INSERT INTO audit (seq, at, incident, kind, body, prev_hash, hash)
             SELECT 5, at, incident, kind, '{\"forged\":true}', hash, hash FROM audit WHERE seq = 4",
        ],
    )
    .await;
    assert!(
        verdict(&log)
            .await
            .starts_with("audit chain is not intact: record 5 was edited"),
        "{}",
        verdict(&log).await
    );
}

#[tokio::test]
async fn reordered_records_are_named() {
    let (_dir, log) = filled(10).await;
    tamper(
        &log,
        &[
            "UPDATE audit SET seq = 1000 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = 7",
            "UPDATE audit SET seq = 7 WHERE seq = 1000",
        ],
    )
    .await;
    assert_eq!(
        verdict(&log).await,
        "audit chain is not intact: record 3 does not follow record 2: a record was inserted, replaced or reordered"
    );
}

#[tokio::test]
async fn truncation_is_caught_by_the_signed_head() {
    let (_dir, log) = filled(10).await;
    tamper(&log, &["DELETE FROM audit WHERE seq > 7"]).await;
    assert_eq!(
        verdict(&log).await,
        "audit chain is not intact: the chain ends at record 7 but the signed head is record 10: records were removed from the end"
    );
}

#[tokio::test]
async fn an_appended_forgery_is_caught_even_with_a_valid_hash() {
    let (_dir, log) = filled(3).await;
    let last = log.records(2, 1).await.unwrap().pop().unwrap();
    let prev: [u8; 32] = hex::decode(&last.hash).unwrap().try_into().unwrap();
    let hash = hex::encode(record_hash(
        4,
        "2026-11-23T03:00:00Z",
        None,
        "note",
        "\"all good\"",
        &prev,
    ));
    let insert = format!(
        "INSERT INTO audit VALUES (4, '2026-11-23T03:00:00Z', NULL, 'note', '\"all good\"', '{}', '{hash}')",
        last.hash
    );
    tamper(&log, &[insert.as_str()]).await;
    assert_eq!(
        verdict(&log).await,
        "audit chain is not intact: record 4 lies beyond the signed head (record 3): it was appended outside blastwall"
    );
}

#[tokio::test]
async fn a_rewritten_head_is_caught() {
    let (_dir, log) = filled(5).await;
    tamper(
        &log,
        &[
            "DELETE FROM audit WHERE seq = 5",
            "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit WHERE seq = 4)",
        ],
    )
    .await;
    assert_eq!(
        verdict(&log).await,
        "audit chain is not intact: the signed head does not match the chain: its hash or signature was altered"
    );
}

#[tokio::test]
async fn concurrent_appends_get_distinct_consecutive_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                let entry = Entry {
                    incident: None,
                    kind: "load".into(),
                    body: json!({"task": t, "i": i}),
                };
                seqs.push(log.append(entry).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=400).collect::<Vec<u64>>());
    assert_eq!(log.verify().await.unwrap().records, 400);
}

#[tokio::test]
async fn a_panicking_state_change_fails_its_commit_and_the_writer_carries_on() {
    let (_dir, log) = filled(2).await;
    let boom: Op = Box::new(|_, _| panic!("boom"));
    let entry = Entry {
        incident: None,
        kind: "never-written".into(),
        body: json!({}),
    };
    let err = log.commit(vec![boom], vec![entry]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "audit commit failed (nothing acknowledged): a state change panicked: boom"
    );
    let receipt = log
        .append(Entry {
            incident: None,
            kind: "after".into(),
            body: json!({}),
        })
        .await
        .unwrap();
    assert_eq!(receipt.seq, 3, "the panicked commit left no record behind");
    log.verify().await.unwrap();
}
