//! A real Alertmanager in front of a real `blastwall serve`: alerts posted to
//! Alertmanager's API reach blastwall as Alertmanager's own webhook
//! notifications, with its bearer-token configuration, and its resolved
//! notification closes the incident. Needs Debian's `prometheus-alertmanager`
//! (`.ci/run` installs it); the test fails, never skips, without it.

mod common;

use std::time::{Duration, Instant};

use common::alertmanager::Alertmanager;
use common::serve::{Api, DEADLINE, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
