//! The audit log as operators use it, including a real crash: the writer process
//! is killed with SIGKILL mid-stream and everything it acknowledged must be there.

mod common;

use common::{blastwall, stdout};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_blastwall"))
        .args([
            "audit",
            "bench",
            "--data",
            &data,
            "--records",
            "100000000",
            "--writers",
            "64",
            "--progress",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = 0u64;
    let started = Instant::now();
    while acknowledged < 3_000 && started.elapsed() < Duration::from_secs(60) {
        let line = lines.next().expect("the writer reports progress").unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acknowledged = n.parse().unwrap();
        }
    }
    // SIGKILL: no destructor, no flush, no graceful shutdown.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        acknowledged >= 3_000,
        "the writer made progress before the kill"
    );

    let verify = blastwall(&["audit", "verify", "--data", &data]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    let line = stdout(&verify);
    let records: u64 = line
        .strip_prefix("ok: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected verify output: {line}"));
    assert!(
        records >= acknowledged,
        "{records} records survived but {acknowledged} were acknowledged"
    );

    // The store keeps working after the crash, continuing the same chain.
    let more = blastwall(&[
        "audit",
        "bench",
        "--data",
        &data,
        "--records",
        "10",
        "--writers",
        "2",
    ]);
    assert_eq!(
        more.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&more.stderr)
    );
    let verify = blastwall(&["audit", "verify", "--data", &data]);
    assert!(
        stdout(&verify).starts_with(&format!("ok: {} records intact", records + 10)),
        "{}",
        stdout(&verify)
    );
}

#[test]
fn verify_names_the_first_tampered_record_and_export_and_show_print_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    assert_eq!(
        blastwall(&[
            "audit",
            "bench",
            "--data",
            &data,
            "--records",
            "50",
            "--writers",
            "4"
        ])
        .status
        .code(),
        Some(0)
    );
    let export = stdout(&blastwall(&[
        "audit", "export", "--data", &data, "--after", "45",
    ]));
    let seqs: Vec<u64> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [46, 47, 48, 49, 50]);
    let show = blastwall(&["audit", "show", "--data", &data, "inc-7"]);
    assert_eq!(stdout(&show).lines().count(), 1);
    let missing = blastwall(&["audit", "show", "--data", &data, "inc-nope"]);
    assert_eq!(missing.status.code(), Some(1));

    let db = dir.path().join("blastwall.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE audit SET kind = 'nothing-to-see' WHERE seq = 17",
        [],
    )
    .unwrap();
    drop(conn);
    let verify = blastwall(&["audit", "verify", "--data", &data]);
    assert_eq!(verify.status.code(), Some(1));
    assert_eq!(
        stdout(&verify),
        "tampered: record 17 was edited: its content does not match its hash\n"
    );
}
