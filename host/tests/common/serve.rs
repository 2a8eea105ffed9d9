//! A real `blastwall serve` process and an HTTP client for it, shared by the
//! tests that drive the service.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::repo;

/// How long any one wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A running `blastwall serve`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The local admin token.
    pub token: String,
    /// Its standard error, for failure messages.
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary on `data` with `extra` arguments and waits for its
    /// ready line. Its stderr goes to `log`.
    pub fn start(data: &Path, log: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_blastwall"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("the binary starts");
        let out = child.stdout.take().unwrap();
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            // The ready line, then drain whatever else comes.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let line = ready.recv_timeout(DEADLINE).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!(
                "no ready line ({e}); stderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        let rest = line
            .strip_prefix("blastwall serving on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        let (url, tail) = rest.split_once(' ').unwrap();
        assert_eq!(tail, format!("(data: {})", data.display()));
        let token = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_string();
        Server {
            child,
            base: url.to_string(),
            token,
            log: log.to_path_buf(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.wait()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the server did not exit; stderr:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client that talks to one server with its admin token.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub log: PathBuf,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Api {
            http,
            base: server.base.clone(),
            token: server.token.clone(),
            log: server.log.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Posts an Alertmanager payload; returns the status, the body and
    /// `Retry-After`.
    pub async fn post_alerts(&self, body: String) -> (StatusCode, Value, Option<u64>) {
        let response = self
            .http
            .post(self.url("/v1/alerts"))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        (status, response.json().await.unwrap(), retry)
    }

    /// Posts a payload that must be accepted; returns its incident ids and
    /// their queue status (`queued`, `in-progress` or `resolved`).
    pub async fn accepted(&self, body: String) -> Vec<(String, String)> {
        let (status, answer, _) = self.post_alerts(body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["incident"].as_str().unwrap().to_string(),
                    i["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The incident and its timeline, once `done` holds for it.
    pub async fn incident_when(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(&format!("/v1/incidents/{id}")).await;
            if status == StatusCode::OK && done(&body) {
                return body;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "incident {id} never got there: {status} {body}\nstderr:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The incident once decided: neither `open` (waiting) nor `running`.
    pub async fn decided(&self, id: &str) -> Value {
        self.incident_when(id, |b| !matches!(state(b), "open" | "running"))
            .await
    }

    /// Every audit record, through `GET /v1/audit` paging.
    pub async fn audit(&self) -> Vec<Value> {
        let mut records = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = self
                .get(&format!("/v1/audit?after={after}&limit=1000"))
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            records.extend(page["records"].as_array().unwrap().iter().cloned());
            match page["next"].as_u64() {
                Some(next) => after = next,
                None => return records,
            }
        }
    }
}

pub fn state(incident: &Value) -> &str {
    incident["incident"]["state"].as_str().unwrap_or("")
}
