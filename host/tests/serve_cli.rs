//! `blastwall serve` as Alertmanager and an operator meet it: the real binary
//! on a real socket, stopped with SIGTERM and killed with SIGKILL.
//!
//! Each test starts `blastwall serve --listen 127.0.0.1:0 --data DIR`, learns
//! the port from its ready line on stdout and the local admin token from
//! `DIR/admin.token`, and talks HTTP to it. Nothing is asserted on timing:
//! every wait polls with a deadline.

mod common;

use common::serve::{Api, DEADLINE, Server, state};
use common::{blastwall, repo, stderr, stdout};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::net::TcpListener;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

fn kinds(incident: &Value) -> Vec<&str> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect()
}

fn records_of<'a>(incident: &'a Value, kind: &str) -> Vec<&'a Value> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn example(name: &str) -> String {
    std::fs::read_to_string(repo().join("examples/alerts").join(name)).unwrap()
}

fn ok(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Every incident through the list endpoint (one page holds them all here).
async fn incidents(api: &Api) -> Vec<Value> {
    let (status, page) = api.get("/v1/incidents?limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["incidents"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_example_alerts_and_keeps_them_across_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &dir.path().join("first.log"), &[]);
    let api = Api::new(&server);
    let anonymous = reqwest::Client::new();

    // Health needs no token; everything else does, and says so as JSON.
    let health = anonymous.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = anonymous.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    for token in [None, Some("bw_not-the-token-at-all-nope-nope")] {
        let mut request = anonymous.get(server.url("/v1/incidents"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["status"], 401, "{body}");
        assert!(body["message"].as_str().unwrap().contains("bearer token"));
    }

    // The examples, as they are: two Alertmanager webhook payloads (v4) and
    // two bare alerts. Embedded defaults: every entry runs in shadow mode.
    let expected = [
        (
            "oom-killed.json",
            "oom-killed",
            "deployment/prod/checkout",
            "restart.restart",
        ),
        (
            "cpu-saturation.json",
            "cpu-saturation",
            "deployment/prod/checkout",
            "scale.set-replicas",
        ),
        (
            "disk-full.json",
            "disk-full",
            "container/default/app",
            "log-rotation.rotate",
        ),
        (
            "error-spike.json",
            "error-spike-after-deploy",
            "deployment/prod/checkout",
            "rollback.rollback",
        ),
    ];
    let mut ids = Vec::new();
    for (file, ..) in &expected {
        let accepted = api.accepted(example(file)).await;
        assert_eq!(accepted.len(), 1, "{file}");
        assert_eq!(accepted[0].1, "queued", "{file}");
        ids.push(accepted[0].0.clone());
    }
    for ((file, class, target, effect), id) in expected.iter().zip(&ids) {
        let incident = api.decided(id).await;
        let row = &incident["incident"];
        assert_eq!(row["state"], "shadowed", "{file}: {incident}");
        assert_eq!(row["class"], *class, "{file}");
        assert_eq!(row["target"], *target, "{file}");
        assert_eq!(row["deliveries"], 1, "{file}");
        assert_eq!(row["attempts"], 0, "{file}: shadow runs spend no attempts");
        let timeline = kinds(&incident);
        assert_eq!(
            timeline[..5],
            [
                "alert.received",
                "classification",
                "decision",
                "run.started",
                "run.finished"
            ],
            "{file}: {timeline:?}"
        );
        assert!(timeline[5..timeline.len() - 1].iter().all(|k| *k == "call"));
        assert_eq!(timeline.last(), Some(&"incident.state"), "{file}");
        let decision = &records_of(&incident, "decision")[0]["body"];
        assert_eq!(decision["decision"]["verdict"], "shadow", "{file}");
        assert_eq!(decision["mode"], "shadow", "{file}");
        assert_eq!(decision["decision"]["checks"].as_array().unwrap().len(), 10);
        let classification = &records_of(&incident, "classification")[0]["body"];
        assert_eq!(classification["by"], "rule", "{file}");
        let finished = &records_of(&incident, "run.finished")[0]["body"];
        assert_eq!(finished["outcome"]["kind"], "completed", "{file}");
        assert_eq!(finished["effects"][0]["function"], *effect, "{file}");
        assert_eq!(finished["effects"][0]["applied"], false, "{file}: shadow");
        assert_eq!(
            records_of(&incident, "incident.state")[0]["body"]["state"],
            "shadowed"
        );
    }

    // Alertmanager HA: two instances deliver the same new alert at once.
    // One incident, both deliveries on the record; each delivery that was
    // queued (rather than found in progress) is decided once.
    let mut alert: Value = serde_json::from_str(&example("oom-killed.json")).unwrap();
    alert["alerts"][0]["startsAt"] = "2026-11-23T05:00:00Z".into();
    alert["alerts"][0]["labels"]["deployment"] = "payments".into();
    let (first, second) = tokio::join!(
        api.accepted(alert.to_string()),
        api.accepted(alert.to_string())
    );
    assert_eq!(first[0].0, second[0].0, "one incident");
    let id = &first[0].0;
    let queued = [&first[0].1, &second[0].1]
        .iter()
        .filter(|s| s.as_str() == "queued")
        .count();
    assert!(queued >= 1, "{first:?} {second:?}");
    let incident = api
        .incident_when(id, |b| {
            !matches!(state(b), "open" | "running")
                && records_of(b, "decision").len() + records_of(b, "alert.duplicate").len()
                    >= queued
        })
        .await;
    assert_eq!(incident["incident"]["deliveries"], 2, "{incident}");
    assert_eq!(incident["incident"]["target"], "deployment/prod/payments");
    assert_eq!(records_of(&incident, "alert.received").len(), 2);
    assert_eq!(
        records_of(&incident, "decision").len() + records_of(&incident, "alert.duplicate").len(),
        queued,
        "{incident}"
    );
    assert_eq!(state(&incident), "shadowed");

    // The alert resolves: its incident closes, at once and on the record.
    let mut resolved = alert.clone();
    resolved["status"] = "resolved".into();
    resolved["alerts"][0]["status"] = "resolved".into();
    resolved["alerts"][0]["endsAt"] = "2026-11-23T05:20:00Z".into();
    let answer = api.accepted(resolved.to_string()).await;
    assert_eq!(answer, [(id.clone(), "resolved".to_string())]);
    let closed = api.incident_when(id, |b| state(b) == "resolved").await;
    assert!(closed["incident"]["resolved_at"].is_i64(), "{closed}");
    assert_eq!(kinds(&closed).last(), Some(&"alert.resolved"));
    ids.push(id.clone());

    let before: BTreeMap<String, Value> = incidents(&api)
        .await
        .into_iter()
        .map(|i| (i["id"].as_str().unwrap().to_string(), i))
        .collect();
    assert_eq!(before.len(), 5);
    let records_before = api.audit().await.len();

    // SIGTERM: a graceful stop, exit 0.
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.log());
    drop(api);
    ok(blastwall(&[
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
    ]));

    // Started again on the same data: the same token, the same incidents.
    let server = Server::start(&data, &dir.path().join("second.log"), &[]);
    let api = Api::new(&server);
    let after: BTreeMap<String, Value> = incidents(&api)
        .await
        .into_iter()
        .map(|i| (i["id"].as_str().unwrap().to_string(), i))
        .collect();
    assert_eq!(after, before, "nothing changed across the restart");
    for id in &ids {
        let (status, incident) = api.get(&format!("/v1/incidents/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(incident["incident"], before[id]);
    }
    assert_eq!(api.audit().await.len(), records_before);
    let (status, verified) = api.get("/v1/audit/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["records"], records_before as u64);
    ok(blastwall(&[
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
    ]));
}

/// A stand-in for the model classifier's endpoint. While `stall` is set it
/// reads each request and never answers, so the host's one processing slot
/// stays busy; afterwards it answers every request with a 503.
struct FakeModel {
    url: String,
    requests: Arc<AtomicUsize>,
    stall: Arc<AtomicBool>,
}

fn fake_model() -> FakeModel {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let stall = Arc::new(AtomicBool::new(true));
    let (seen, stalling) = (requests.clone(), stall.clone());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = common::read_request(&stream);
            seen.fetch_add(1, Ordering::SeqCst);
            if stalling.load(Ordering::SeqCst) {
                held.push(stream);
            } else {
                let _ = stream.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        }
    });
    FakeModel {
        url,
        requests,
        stall,
    }
}

/// The embedded example catalog, every entry in shadow mode (as `serve`
/// runs it without `--config`), with `api` and `extra` sections added.
fn shadow_config(api: &str, extra: &str) -> String {
    let mut config = String::from(
        r#"
[[classify.rules]]
alertname = "KubePodOOMKilled"
class = "oom-killed"
confidence = 0.95

[[classify.rules]]
alertname = "CPUThrottlingHigh"
class = "cpu-saturation"
confidence = 0.9

[[classify.rules]]
alertname = "NodeFilesystemAlmostFull"
class = "disk-full"
confidence = 0.95

[[classify.rules]]
alertname = "HighErrorRateAfterDeploy"
class = "error-spike-after-deploy"
confidence = 0.9

[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "shadow"

[catalog.cpu-saturation]
plugin = "scale-on-saturation@0.1.0"
mode = "shadow"
params = { step = "2", max = "8" }

[catalog.disk-full]
plugin = "rotate-full-disk@0.1.0"
mode = "shadow"
params = { log-set = "app" }

[catalog.error-spike-after-deploy]
plugin = "rollback-bad-deploy@0.1.0"
mode = "shadow"
"#,
    );
    config.push_str(extra);
    config.push_str("\n[api]\n");
    config.push_str(api);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_acknowledged_with_202_survives_sigkill_and_is_decided_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model = fake_model();
    // One alert processed at a time, and an unclassifiable alert that holds
    // that slot (its model call never returns), so the next alert is
    // acknowledged and stays admitted but undecided.
    let config = dir.path().join("blastwall.toml");
    std::fs::write(
        &config,
        shadow_config(
            "max-in-flight = 1\n",
            &format!(
                "\n[classify.model]\nurl = \"{}\"\nmodel = \"stand-in\"\ntimeout = \"10m\"\n",
                model.url
            ),
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut server = Server::start(&data, &dir.path().join("first.log"), &args);
    let api = Api::new(&server);

    let mystery = json!({
        "status": "firing",
        "labels": {"alertname": "MysteryLatency", "namespace": "prod", "deployment": "cart"},
        "annotations": {"summary": "p99 latency doubled, cause unknown"},
        "startsAt": "2026-11-23T06:00:00Z",
        "fingerprint": "5151515151515151"
    });
    let stuck = api.accepted(mystery.to_string()).await.remove(0).0;
    let started = Instant::now();
    while model.requests.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < DEADLINE, "the model was never asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let accepted = api.accepted(example("oom-killed.json")).await;
    assert_eq!(accepted[0].1, "queued");
    let id = accepted[0].0.clone();
    let (status, waiting) = api.get(&format!("/v1/incidents/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state(&waiting), "open", "{waiting}");
    assert_eq!(kinds(&waiting), ["alert.received"]);
    // The 202 meant durable: kill the process outright.
    server.kill();
    drop(api);

    model.stall.store(false, Ordering::SeqCst);
    let mut server = Server::start(&data, &dir.path().join("second.log"), &args);
    let api = Api::new(&server);
    // Recovery at start takes up both alerts admitted but never decided.
    let incident = api.decided(&id).await;
    assert_eq!(state(&incident), "shadowed", "{incident}");
    assert_eq!(incident["incident"]["deliveries"], 1);
    assert_eq!(incident["incident"]["class"], "oom-killed");
    let timeline = kinds(&incident);
    assert_eq!(
        timeline[..3],
        ["alert.received", "classification", "decision"],
        "{timeline:?}"
    );
    assert_eq!(timeline.last(), Some(&"incident.state"));
    assert_eq!(
        incident["timeline"][0], waiting["timeline"][0],
        "the record acknowledged before the kill, unchanged"
    );
    // The unclassifiable one: the model failed, so unknown, refused, escalated.
    let refused = api.decided(&stuck).await;
    assert_eq!(state(&refused), "escalated", "{refused}");
    let decision = &records_of(&refused, "decision")[0]["body"]["decision"];
    assert_eq!(decision["verdict"], "refuse", "{refused}");
    assert_eq!(decision["by"], "catalog", "{refused}");

    assert_eq!(server.terminate().code(), Some(0), "{}", server.log());
    ok(blastwall(&[
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
    ]));
}

/// A tiny deterministic generator (xorshift), for shuffling and sizes.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Distinct alert `n` of the burst: one of the four classes, on one of 50
/// workloads, with an annotation whose size varies from alert to alert.
fn burst_alert(n: usize) -> Value {
    let (name, class) = [
        ("KubePodOOMKilled", "oom-killed"),
        ("CPUThrottlingHigh", "cpu-saturation"),
        ("HighErrorRateAfterDeploy", "error-spike-after-deploy"),
        ("NodeFilesystemAlmostFull", "disk-full"),
    ][n % 4];
    json!({
        "status": "firing",
        "labels": {
            "alertname": name,
            "namespace": "burst",
            "deployment": format!("svc-{}", n % 50),
            "pod": format!("svc-{}-7d9f8b6c5-{n:05}", n % 50),
            "severity": if n.is_multiple_of(3) { "critical" } else { "warning" },
            "blastwall_class": class,
        },
        "annotations": {
            "summary": format!("burst alert {n}"),
            "description": "x".repeat((n * 37) % 3000),
        },
        "startsAt": "2026-11-23T07:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph",
        "fingerprint": format!("{n:016x}"),
    })
}

fn payload(alerts: &[Value]) -> String {
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "blastwall",
        "groupKey": "{}:{namespace=\"burst\"}",
        "truncatedAlerts": 0,
        "groupLabels": {"namespace": "burst"},
        "commonLabels": {"namespace": "burst"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_2000_deliveries_with_duplicates_loses_none() {
    const DISTINCT: usize = 1000;
    const CLIENTS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The smallest queue allowed (one full payload) and few alerts processed
    // at once, so the burst fills the queue and some deliveries get 503.
    let config = dir.path().join("blastwall.toml");
    std::fs::write(
        &config,
        shadow_config("queue-capacity = 1000\nmax-in-flight = 4\n", ""),
    )
    .unwrap();
    let mut server = Server::start(
        &data,
        &dir.path().join("serve.log"),
        &["--config", config.to_str().unwrap()],
    );

    // Every alert twice, in two shuffled passes, cut into payloads of 1 to
    // 60 alerts (never the same alert twice in one payload).
    let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut deliveries = Vec::with_capacity(2 * DISTINCT);
    for _ in 0..2 {
        let mut pass: Vec<usize> = (0..DISTINCT).collect();
        random.shuffle(&mut pass);
        deliveries.extend(pass);
    }
    let mut payloads = VecDeque::new();
    let mut rest = deliveries.as_slice();
    while !rest.is_empty() {
        let want = 1 + random.below(60);
        let mut size = 0;
        while size < want.min(rest.len()) && !rest[..size].contains(&rest[size]) {
            size += 1;
        }
        let alerts: Vec<Value> = rest[..size].iter().map(|&n| burst_alert(n)).collect();
        payloads.push_back((size, payload(&alerts)));
        rest = &rest[size..];
    }
    let total_payloads = payloads.len();
    let payloads = Arc::new(Mutex::new(payloads));
    let refused = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (payloads, refused, sent, http) = (
            payloads.clone(),
            refused.clone(),
            sent.clone(),
            http.clone(),
        );
        let (url, token) = (server.url("/v1/alerts"), server.token.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let Some((size, body)) = payloads.lock().unwrap().pop_front() else {
                    return;
                };
                loop {
                    assert!(started.elapsed() < DEADLINE * 2, "the burst never got in");
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    match response.status() {
                        StatusCode::ACCEPTED => {
                            let answer: Value = response.json().await.unwrap();
                            assert_eq!(answer["accepted"], size, "{answer}");
                            sent.fetch_add(size, Ordering::SeqCst);
                            break;
                        }
                        StatusCode::SERVICE_UNAVAILABLE => {
                            refused.fetch_add(1, Ordering::SeqCst);
                            let seconds: u64 = response
                                .headers()
                                .get("retry-after")
                                .expect("a 503 says when to retry")
                                .to_str()
                                .unwrap()
                                .parse()
                                .unwrap();
                            let answer: Value = response.json().await.unwrap();
                            assert_eq!(answer["status"], 503, "{answer}");
                            tokio::time::sleep(Duration::from_secs(seconds)).await;
                        }
                        other => panic!("{other}: {}", response.text().await.unwrap()),
                    }
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let posting = started.elapsed();
    assert_eq!(sent.load(Ordering::SeqCst), 2 * DISTINCT);
    let refused = refused.load(Ordering::SeqCst);
    assert!(
        refused > 0,
        "the queue of 1000 never filled: the test no longer exercises 503"
    );

    // Wait until nothing is left waiting or running.
    let api = Api::new(&server);
    let mut pending;
    loop {
        let (_, open) = api.get("/v1/incidents?state=open&limit=1").await;
        let (_, running) = api.get("/v1/incidents?state=running&limit=1").await;
        pending = open["incidents"].as_array().unwrap().len()
            + running["incidents"].as_array().unwrap().len();
        if pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE * 3,
            "alerts still undecided\nstderr:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = incidents(&api).await;
    eprintln!(
        "{total_payloads} payloads, {refused} answered 503, all accepted in {posting:?}, all decided in {:?}",
        started.elapsed()
    );
    assert_eq!(all.len(), DISTINCT, "every distinct alert is one incident");
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for incident in &all {
        assert_eq!(incident["deliveries"], 2, "{incident}");
        *states
            .entry(incident["state"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    eprintln!("states: {states:?}");
    assert!(!states.contains_key("open") && !states.contains_key("running"));

    // The audit: exactly 2000 deliveries on the record, two per incident,
    // and every incident decided at least once.
    let records = api.audit().await;
    let mut received: HashMap<&str, usize> = HashMap::new();
    let mut decisions: HashMap<&str, usize> = HashMap::new();
    for record in &records {
        let incident = record["incident"].as_str().unwrap_or("");
        match record["kind"].as_str().unwrap() {
            "alert.received" => *received.entry(incident).or_default() += 1,
            "decision" => *decisions.entry(incident).or_default() += 1,
            _ => {}
        }
    }
    assert_eq!(received.values().sum::<usize>(), 2 * DISTINCT);
    assert_eq!(received.len(), DISTINCT);
    assert!(received.values().all(|&n| n == 2));
    for incident in &all {
        let id = incident["id"].as_str().unwrap();
        assert!(decisions.get(id).is_some_and(|&n| n >= 1), "{incident}");
    }

    assert_eq!(server.terminate().code(), Some(0), "{}", server.log());
    let verified = ok(blastwall(&[
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
    ]));
    assert!(verified.contains(&records.len().to_string()), "{verified}");
}
