//! The whole loop against real servers nobody here wrote: a real
//! Alertmanager delivers an alert to `blastwall serve --live`, whose Docker
//! provider restarts real containers on a real Docker daemon; a real
//! Prometheus, scraping an exporter this test controls, verifies; a bad
//! signal rolls the service back and escalates to a webhook; the resolved
//! notification closes the incident; the audit chain verifies.
//!
//! Needs root and Debian's `docker.io`, `busybox-static`, `prometheus` and
//! `prometheus-alertmanager` (`.ci/run` installs them); fails, never skips,
//! without them.

mod common;

use std::time::{Duration, Instant};

use common::alertmanager::Alertmanager;
use common::serve::{Api, DEADLINE, Server};
use serde_json::{Value, json};
use test_servers::dockerd;
use test_servers::prometheus::Prometheus;

const ERRORS: &str = "shop_error_ratio";

fn alert(service: &str, starts_at: &str, ends_at: Option<&str>) -> Value {
    named("ContainerOOMKilled", service, starts_at, ends_at)
}

fn named(name: &str, service: &str, starts_at: &str, ends_at: Option<&str>) -> Value {
    let mut alert = json!({
        "labels": {
            "alertname": name,
            "blastwall_target": format!("container/shop/{service}"),
            "severity": "critical",
        },
        "annotations": {"summary": format!("{service} was OOM-killed")},
        "startsAt": starts_at,
    });
    if let Some(ends_at) = ends_at {
        alert["endsAt"] = json!(ends_at);
    }
    alert
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Start times of the service's running containers, by name.
async fn started(service: &str) -> Vec<(String, String, String)> {
    dockerd::daemon()
        .containers("shop", service)
        .await
        .iter()
        .map(|c| {
            let state = c.state.clone().unwrap_or_default();
            (
                c.name.clone().unwrap_or_default(),
                state.started_at.unwrap_or_default(),
                c.config
                    .as_ref()
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// Polls the incident of `service` until `done` holds.
async fn incident(
    api: &Api,
    server: &Server,
    service: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let (_, page) = api.get("/v1/incidents?limit=100").await;
        let found = page["incidents"].as_array().and_then(|all| {
            all.iter()
                .find(|i| i["target"] == format!("container/shop/{service}") && done(i))
                .cloned()
        });
        if let Some(found) = found {
            return found;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the incident of {service} never got there: {page:#}\nserve:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn settled(i: &Value) -> bool {
    !matches!(i["state"].as_str(), Some("open" | "running"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_to_real_containers_verified_by_prometheus() {
    let daemon = dockerd::daemon();
    daemon.run_service("shop", "web", 2, true).await;
    daemon.run_service("shop", "api", 1, true).await;
    let prometheus = Prometheus::start().await;
    prometheus
        .set(&format!("{ERRORS}{{service=\"web\"}}"), 0.0)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let (trust, plugins) = common::sign_bundled(
        dir.path(),
        &[
            "restart-on-oom",
            "rollback-bad-deploy",
            "scale-on-saturation",
        ],
    );
    let agent_key = dir.path().join("agent.key").display().to_string();
    common::succeed(&[
        "keygen",
        "--out",
        &dir.path().display().to_string(),
        "--name",
        "agent",
    ]);
    common::succeed(&[
        "trust",
        "add",
        "--trust",
        &trust,
        "--tier",
        "ai-agent",
        &dir.path().join("agent.pub").display().to_string(),
    ]);
    let (hook, inbox) = common::webhook_receiver();
    let config = dir.path().join("blastwall.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[workloads]
provider = "docker"
docker = {{ socket = "{socket}", stop-grace-seconds = 1 }}

[prometheus]
url = "{prometheus}"
timeout = "2s"

[[classify.rules]]
alertname = "ContainerOOMKilled"
class = "oom-killed"
confidence = 0.95

[[classify.rules]]
alertname = "ContainerCPUSaturated"
class = "cpu-saturation"
confidence = 0.95

[catalog.cpu-saturation]
plugin = "scale-on-saturation@0.1.0"
mode = "auto"
params = {{ step = "1", max = "4" }}

[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"
cooldown = "0s"
rate-limit-per-hour = 10
model-may-trigger = true
verify = {{ kind = "promql", query = "{ERRORS}", expect = "< 0.05", window = "4s", interval = "500ms" }}
rollback = "rollback-bad-deploy@0.1.0"

[escalation]
retry = {{ attempts = 2, initial-backoff = "50ms" }}
notifiers = [{{ kind = "webhook", name = "oncall", url = "{hook}" }}]
"#,
            socket = daemon.socket.display(),
            prometheus = prometheus.url,
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut args = vec![
        "--live".to_string(),
        "--config".into(),
        config.display().to_string(),
        "--trust".into(),
        trust,
    ];
    for plugin in &plugins {
        args.extend(["--plugin".to_string(), plugin.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&data, &dir.path().join("serve.log"), &args);
    let api = Api::new(&server);
    let alertmanager = Alertmanager::start(
        dir.path(),
        &server.url("/v1/alerts"),
        &data.join("admin.token"),
    );
    let http = reqwest::Client::new();
    alertmanager.ready(&http).await;

    // 1. The web service is OOM-killed; its signal is good after the restart.
    let before = started("web").await;
    assert_eq!(before.len(), 2, "{before:?}");
    let web_started = now();
    alertmanager
        .post(&http, json!([alert("web", &web_started, None)]))
        .await;
    let web = incident(&api, &server, "web", settled).await;
    assert_eq!(web["state"], "remediated", "{web:#}\n{}", server.log());
    let after = started("web").await;
    assert_eq!(after.len(), 2, "still two replicas: {after:?}");
    for ((name, then, image), (name_after, now_, image_after)) in before.iter().zip(&after) {
        assert_eq!(name, name_after, "the same containers");
        assert_ne!(then, now_, "{name} was restarted");
        assert_eq!(image, image_after, "{name} kept its image");
    }
    // Resolving in Alertmanager closes the incident.
    alertmanager
        .post(&http, json!([alert("web", &web_started, Some(&now()))]))
        .await;
    incident(&api, &server, "web", |i| !i["resolved_at"].is_null()).await;

    // 1b. The web service is saturated: one more container, a clone.
    alertmanager
        .post(
            &http,
            json!([named("ContainerCPUSaturated", "web", &now(), None)]),
        )
        .await;
    let scaled = incident(&api, &server, "web", |i| {
        i["alert"] == "ContainerCPUSaturated" && settled(i)
    })
    .await;
    assert_eq!(
        scaled["state"],
        "remediated",
        "{scaled:#}\n{}",
        server.log()
    );
    let web_scaled = started("web").await;
    assert_eq!(web_scaled.len(), 3, "scaled 2 → 3: {web_scaled:?}");
    assert!(
        web_scaled
            .iter()
            .all(|c| c.2 == dockerd::IMAGE && !c.1.is_empty()),
        "the clone runs the same image: {web_scaled:?}"
    );

    // 2. The api service's signal stays bad after its restart: rolled back
    // to the previous image, and escalated.
    prometheus
        .set(&format!("{ERRORS}{{service=\"api\"}}"), 0.5)
        .await;
    let api_before = started("api").await;
    assert_eq!(api_before[0].2, dockerd::IMAGE);
    alertmanager
        .post(&http, json!([alert("api", &now(), None)]))
        .await;
    let failed = incident(&api, &server, "api", settled).await;
    assert_eq!(failed["state"], "failed", "{failed:#}\n{}", server.log());
    let api_after = started("api").await;
    assert_eq!(api_after.len(), 1, "{api_after:?}");
    assert_eq!(
        api_after[0].2,
        dockerd::PREVIOUS_IMAGE,
        "rolled back to the previous image"
    );
    let id = failed["id"].as_str().unwrap();
    let started_wait = Instant::now();
    loop {
        let escalated =
            inbox.lock().unwrap().iter().any(|b| {
                b.to_string().contains(id) && b.to_string().contains("verification-failed")
            });
        if escalated {
            break;
        }
        assert!(
            started_wait.elapsed() < DEADLINE,
            "no verification-failed escalation for {id}: {:#?}",
            inbox.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, timeline) = api.get(&format!("/v1/incidents/{id}")).await;
    let kinds: Vec<&str> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    for kind in [
        "run.started",
        "effect.intent",
        "verification",
        "rollback.decision",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // 3. A signed AI plan that hallucinates: restart web (what the class
    // allows), then scale api to 500 and restart it (another service). Only
    // the first happens; the real containers say so.
    prometheus
        .set(&format!("{ERRORS}{{service=\"api\"}}"), 0.0)
        .await;
    let api_now = started("api").await;
    let web_now = started("web").await;
    let mut plan_alert = alert("web", &now(), None);
    plan_alert["status"] = json!("firing");
    let plan = json!({
        "alert": plan_alert,
        "class": "oom-killed",
        "confidence": 0.95,
        "rationale": "web keeps dying; and api looks busy, give it 500 replicas",
        "actions": [
            {"capability": "restart", "target": "container/shop/web"},
            {"capability": "scale", "target": "container/shop/api", "arguments": {"replicas": 500}},
            {"capability": "restart", "target": "container/shop/api"},
        ],
    });
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let signed = common::succeed(&[
        "proposal",
        "sign",
        "--key",
        &agent_key,
        plan_file.to_str().unwrap(),
    ]);
    let headers: Value = serde_json::from_slice(&signed.stdout).unwrap();
    let mut request = http
        .post(server.url("/v1/proposals"))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(std::fs::read(&plan_file).unwrap());
    for name in [
        "Blastwall-Key",
        "Blastwall-Timestamp",
        "Blastwall-Nonce",
        "Blastwall-Signature",
    ] {
        request = request.header(name, headers[name].as_str().unwrap());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let handled: Value = response.json().await.unwrap();
    assert!(
        status.is_success(),
        "{status}: {handled:#}\n{}",
        server.log()
    );
    let run = &handled["run"];
    assert_eq!(
        run["effects"].as_array().map(Vec::len),
        Some(1),
        "{handled:#}"
    );
    assert_eq!(
        run["effects"][0]["target"], "container/shop/web",
        "{handled:#}"
    );
    let denied: Vec<&str> = run["denials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["target"].as_str())
        .collect();
    assert_eq!(
        denied,
        ["container/shop/api", "container/shop/api"],
        "{handled:#}"
    );
    assert_eq!(
        started("api").await,
        api_now,
        "nothing outside the grant changed"
    );
    let web_after = started("web").await;
    assert_eq!(web_after.len(), web_now.len(), "web was not scaled");
    assert!(
        web_after.iter().zip(&web_now).all(|(a, b)| a.1 != b.1),
        "web was restarted: {web_now:?} → {web_after:?}"
    );

    let (_, verified) = api.get("/v1/audit/verify").await;
    assert_eq!(verified["valid"], true, "{verified}");
}
