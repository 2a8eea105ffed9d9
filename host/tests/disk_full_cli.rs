//! `blastwall serve` when the disk under its data directory fills up: the
//! real binary on a small tmpfs of its own (this test mounts one, so it runs
//! as root, as CI does; it fails, never skips, without).
//!
//! What must hold: alerts are answered 503 with `Retry-After` while nothing
//! can be committed, the host keeps running, nothing answered 202 is ever
//! lost (checked after a SIGKILL and a restart), and once space returns new
//! alerts are admitted and decided again, on one chain that verifies.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::serve::{Api, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A tmpfs of `size` mounted on `path` until dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs as the data directory and needs root \
             (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn alert(n: usize) -> Value {
    json!({
        "status": "firing",
        "labels": {
            "alertname": "KubePodOOMKilled",
            "namespace": "prod",
            "deployment": format!("svc-{n}"),
        },
        // Bulky, so the store needs new pages quickly.
        "annotations": { "description": format!("{n:08} {}", "x".repeat(8_000)) },
        "startsAt": "2026-12-01T04:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph",
        "fingerprint": format!("{n:016x}"),
    })
}

fn payload(n: usize) -> String {
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "blastwall",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [alert(n)],
    })
    .to_string()
}

/// Fills the filesystem holding `path` to the last byte.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0u8; chunk];
        while file.write_all(&block).is_ok() {}
    }
    let _ = file.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_acknowledged_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _tmpfs = Tmpfs::mount(&data, "24m");
    let log = dir.path().join("serve.log");
    let mut server = Server::start(&data, &log, &[]);
    let api = Api::new(&server);

    // Healthy: admitted and decided.
    let first = api.accepted(payload(0)).await;
    api.decided(&first[0].0).await;

    fill(&data.join("filler"));
    let mut acknowledged = vec![first[0].0.clone()];
    let mut refused = 0;
    let mut n = 1;
    while refused < 5 {
        assert!(n < 2_000, "the store never ran out of space");
        let (status, body, retry) = api.post_alerts(payload(n)).await;
        match status {
            StatusCode::ACCEPTED => acknowledged.push(
                body["incidents"][0]["incident"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert!(retry.is_some(), "503 without Retry-After: {body}");
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .contains("nothing of this request was accepted"),
                    "{body}"
                );
            }
            other => panic!("a full disk answered {other}: {body}\n{}", server.log()),
        }
        n += 1;
    }
    // The host keeps running while the disk is full.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Space returns: new alerts are admitted and decided again.
    std::fs::remove_file(data.join("filler")).unwrap();
    let started = std::time::Instant::now();
    let recovered = loop {
        let (status, body, _) = api.post_alerts(payload(n)).await;
        if status == StatusCode::ACCEPTED {
            break body["incidents"][0]["incident"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(
            started.elapsed() < common::serve::DEADLINE,
            "still refused after space returned: {status} {body}\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    api.decided(&recovered).await;
    acknowledged.push(recovered);

    // Nothing acknowledged was lost: kill the process, start again, read back.
    server.kill();
    let server = Server::start(&data, &dir.path().join("again.log"), &[]);
    let api = Api::new(&server);
    for id in &acknowledged {
        let (status, incident) = api.get(&format!("/v1/incidents/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{id} was acknowledged and is gone: {incident}"
        );
        api.decided(id).await;
    }
    let (status, verified) = api.get("/v1/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["valid"], true, "{verified}");
}
