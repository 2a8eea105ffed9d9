//! A real Alertmanager (Debian's `prometheus-alertmanager`; `.ci/run`
//! installs it) that notifies a webhook for every alert, one group per alert.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::serve::DEADLINE;

/// The Alertmanager binary: Debian names it `prometheus-alertmanager`.
fn alertmanager_binary() -> &'static str {
    for name in ["prometheus-alertmanager", "alertmanager"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name;
        }
    }
    panic!(
        "no Alertmanager binary on PATH: install Debian's prometheus-alertmanager (.ci/run does)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Alertmanager.
pub struct Alertmanager {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

impl Alertmanager {
    /// Starts one that notifies `webhook` for every alert, one group per
    /// alert, with `token_file` as its bearer credentials.
    pub fn start(dir: &Path, webhook: &str, token_file: &Path) -> Alertmanager {
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:
  receiver: blastwall
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blastwall
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {}
",
                token_file.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("alertmanager.log");
        let child = Command::new(alertmanager_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("alertmanager starts");
        Alertmanager {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn ready(&self, http: &reqwest::Client) {
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{}/-/ready", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "alertmanager never became ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fires (or, with `ends_at`, resolves) alerts through Alertmanager's API.
    pub async fn post(&self, http: &reqwest::Client, alerts: Value) {
        let response = http
            .post(format!("{}/api/v2/alerts", self.base))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
