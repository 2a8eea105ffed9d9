//! A real Alertmanager in front of a real `blastwall serve`: alerts posted to
//! Alertmanager's API reach blastwall as Alertmanager's own webhook
//! notifications, with its bearer-token configuration, and its resolved
//! notification closes the incident. Needs Debian's `prometheus-alertmanager`
//! (`.ci/run` installs it); the test fails, never skips, without it.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{Api, DEADLINE, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
struct Alertmanager {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Alertmanager {
    /// Starts one that notifies `webhook` for every alert, one group per
    /// alert, with `token_file` as its bearer credentials.
    fn start(dir: &Path, webhook: &str, token_file: &Path) -> Alertmanager {
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn ready(&self, http: &reqwest::Client) {
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
    async fn post(&self, http: &reqwest::Client, alerts: Value) {
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

fn alert(name: &str, deployment: &str, starts_at: &str, ends_at: Option<&str>) -> Value {
    let mut alert = json!({
        "labels": {"alertname": name, "namespace": "prod", "deployment": deployment, "severity": "critical"},
        "annotations": {"summary": format!("{name} on {deployment}")},
        "startsAt": starts_at,
        "generatorURL": "http://prometheus.example:9090/graph",
    });
    if let Some(ends_at) = ends_at {
        alert["endsAt"] = json!(ends_at);
    }
    alert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_notifications_open_and_close_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &dir.path().join("serve.log"), &[]);
    let api = Api::new(&server);
    let alertmanager = Alertmanager::start(
        dir.path(),
        &server.url("/v1/alerts"),
        &data.join("admin.token"),
    );
    let http = reqwest::Client::new();
    alertmanager.ready(&http).await;

    let now = now();
    alertmanager
        .post(
            &http,
            json!([
                alert("KubePodOOMKilled", "checkout", &now, None),
                alert("CPUThrottlingHigh", "cart", &now, None),
            ]),
        )
        .await;

    // Alertmanager notifies after its group wait; blastwall decides.
    let decided = wait_for(&api, &alertmanager, |incidents| {
        incidents.len() == 2
            && incidents
                .iter()
                .all(|i| !matches!(i["state"].as_str(), Some("open" | "running")))
    })
    .await;
    for incident in &decided {
        assert_eq!(incident["state"], "shadowed", "{incident}");
    }
    let oom = decided
        .iter()
        .find(|i| i["alert"] == "KubePodOOMKilled")
        .unwrap();
    let id = oom["id"].as_str().unwrap();
    let (status, timeline) = api.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let received = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "alert.received")
        .unwrap()
        .clone();
    // Alertmanager's own notification: its fingerprint and generator URL.
    let alert_body = &received["body"]["alert"];
    assert_eq!(alert_body["labels"]["deployment"], "checkout");
    assert!(
        alert_body["fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() == 16),
        "{alert_body}"
    );

    // Resolving in Alertmanager sends the resolved notification.
    alertmanager
        .post(
            &http,
            json!([alert(
                "KubePodOOMKilled",
                "checkout",
                &now,
                Some(&self::now())
            )]),
        )
        .await;
    wait_for(&api, &alertmanager, |incidents| {
        incidents
            .iter()
            .any(|i| i["id"] == id && !i["resolved_at"].is_null())
    })
    .await;
    let (status, verified) = api.get("/v1/audit/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["valid"], true, "{verified}");
}

/// Polls the incident list until `done` holds.
async fn wait_for(
    api: &Api,
    alertmanager: &Alertmanager,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let (status, page) = api.get("/v1/incidents?limit=100").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let incidents = page["incidents"].as_array().unwrap().clone();
        if done(&incidents) {
            return incidents;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "blastwall never got there: {incidents:#?}\nalertmanager:\n{}",
            alertmanager.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Now, RFC 3339 UTC.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
