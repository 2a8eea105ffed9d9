//! The API through `oneshot`: every route, role and error shape, over a real
//! loop (bundled plugins in the real sandbox, the SQLite store, the queue).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::config::TokenConfig;
use super::*;
use crate::config::HostConfig;
use crate::policy::{Tier, TierPolicy};
use crate::provider::{DryRunFleet, Effects, FleetSpec};
use crate::respond::{Parts, Responder};
use crate::sandbox::{PoolConfig, Sandbox, SandboxConfig};
use crate::signature::{TrustStore, generate_files, read_signing_key};
use crate::store::{IncidentState, SqliteStore, Store};

const ALERTS: &str = "alert-source-token-0123456789abcdef";
const AGENT: &str = "ai-agent-token-0123456789abcdef";
const OPERATOR: &str = "operator-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef0123";

fn token_of(role: Role) -> &'static str {
    match role {
        Role::AlertSource => ALERTS,
        Role::AiAgent => AGENT,
        Role::Operator => OPERATOR,
        Role::Admin => ADMIN,
    }
}

const CONFIG: &str = r#"
[[classify.rules]]
alertname = "KubePodOOMKilled"
class = "oom-killed"
confidence = 0.95

[[classify.rules]]
alertname = "HighErrorRateAfterDeploy"
class = "error-spike-after-deploy"
confidence = 0.9

[[classify.rules]]
alertname = "CPUThrottlingHigh"
class = "cpu-saturation"
confidence = 0.9

[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"

[catalog.error-spike-after-deploy]
plugin = "rollback-bad-deploy@0.1.0"
mode = "approve"

[catalog.cpu-saturation]
plugin = "scale-on-saturation@0.1.0"
mode = "auto"
model-may-trigger = true
params = { step = "2", max = "8" }
"#;

struct Fixture {
    router: Router,
    app: AppState,
    store: Arc<SqliteStore>,
    agent: SigningKey,
    _dir: tempfile::TempDir,
}

async fn fixture_with(api: ApiConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::from_toml(CONFIG, "test").unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("data")).await.unwrap());
    let (key, public, _) = generate_files(dir.path(), "agent").unwrap();
    let mut trust = TrustStore::default();
    trust.add(&public, Tier::AiAgent, None).unwrap();
    let responder = Responder::from_config(
        &config,
        Parts {
            plugins: crate::bundled::insecure_unsigned_all(),
            sandbox: Arc::new(
                Sandbox::new(SandboxConfig {
                    pool: PoolConfig {
                        max_concurrent_runs: 4,
                        ..PoolConfig::default()
                    },
                    ..Default::default()
                })
                .unwrap(),
            ),
            tiers: TierPolicy::embedded_default(),
            effects: Effects::simulated(Arc::new(DryRunFleet::new(FleetSpec::embedded_default()))),
            simulated: true,
            store: store.clone(),
        },
    )
    .unwrap()
    .with_trust(Arc::new(trust));
    let tokens = [
        ("alertmanager", Role::AlertSource),
        ("agent", Role::AiAgent),
        ("alice", Role::Operator),
        ("root", Role::Admin),
    ]
    .map(|(name, role)| TokenConfig {
        name: name.into(),
        role,
        sha256: Some(hex::encode(auth::digest(token_of(role)))),
        env: None,
    });
    let tokens = Tokens::from_config(&tokens).unwrap();
    let plugins = vec![PluginInfo {
        name: "restart-on-oom".into(),
        version: "0.1.0".into(),
        digest: "sha256:00".into(),
        signer: "unsigned".into(),
        tier: "none".into(),
        capabilities: vec!["restart".into()],
        status: "loaded".into(),
        trust: "development".into(),
    }];
    let app = crate::serve::start(Arc::new(responder), &api, tokens, plugins);
    Fixture {
        router: router(app.clone()),
        app,
        store,
        agent: read_signing_key(&key).unwrap(),
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_with(ApiConfig::default()).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    /// The body as sent.
    raw: Vec<u8>,
}

impl Fixture {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: impl Into<Body>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            body,
            raw: bytes.to_vec(),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), Body::empty(), &[])
            .await
    }

    async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call("DELETE", path, Some(token), Body::empty(), &[])
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("POST", path, Some(token), body.to_string(), &[])
            .await
    }

    /// Waits until the incident has left `open` (and any run has ended).
    async fn decided(&self, id: &str) -> IncidentState {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(row) = self.store.incident(id).await.unwrap()
                && !matches!(row.state, IncidentState::Open | IncidentState::Running)
                && self.app.queue.in_flight() == 0
            {
                return row.state;
            }
            assert!(Instant::now() < deadline, "incident {id} was never decided");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Fixture {
    /// Waits until the incident has a record of `kind`.
    async fn recorded(&self, id: &str, kind: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .store
            .audit()
            .incident(id)
            .await
            .unwrap()
            .iter()
            .any(|r| r.kind == kind)
        {
            assert!(Instant::now() < deadline, "{id} never got a {kind} record");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn payload(alerts: &[Value]) -> Value {
    json!({"version": "4", "status": "firing", "receiver": "blastwall", "alerts": alerts})
}

fn alert(name: &str, deployment: &str, fingerprint: &str) -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": name, "namespace": "prod", "deployment": deployment},
        "annotations": {"summary": "test"},
        "startsAt": "2026-11-24T03:00:00Z",
        "fingerprint": fingerprint,
    })
}

/// The error shape every failure has.
fn error_shape(reply: &Reply) {
    assert_eq!(
        reply.body["status"].as_u64(),
        Some(u64::from(reply.status.as_u16())),
        "{:?}",
        reply.body
    );
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{:?}",
        reply.body
    );
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "x").replace("{name}", "x")
}

#[tokio::test]
async fn every_route_but_health_needs_a_valid_token() {
    let f = fixture().await;
    for (method, path, roles) in ROUTES {
        let path = concrete(path);
        let anonymous = f.call(method, &path, None, Body::empty(), &[]).await;
        match roles {
            None => assert_eq!(anonymous.status, StatusCode::OK, "{method} {path}"),
            Some(_) => {
                assert_eq!(
                    anonymous.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}"
                );
                error_shape(&anonymous);
                assert!(anonymous.headers.contains_key(header::WWW_AUTHENTICATE));
                let forged = f
                    .call(method, &path, Some("not-a-token"), Body::empty(), &[])
                    .await;
                assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                assert_eq!(forged.body["message"], "invalid bearer token");
            }
        }
    }
    let basic = f
        .call(
            "GET",
            "/v1/incidents",
            None,
            Body::empty(),
            &[("authorization", "Basic YWxpY2U6cHc=")],
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn each_route_admits_exactly_its_roles() {
    let f = fixture().await;
    for (method, path, roles) in ROUTES {
        let Some(roles) = roles else { continue };
        let path = concrete(path);
        for role in auth::ANY {
            let reply = f
                .call(method, &path, Some(token_of(*role)), Body::empty(), &[])
                .await;
            let message = reply.body["message"].as_str().unwrap_or_default();
            if roles.contains(role) {
                // It may still fail on what it sent (nothing), never on who it is.
                assert!(
                    !message.contains("role may not") && !message.contains("bearer token"),
                    "{role} should pass the role check on {method} {path}: {:?}",
                    reply.body
                );
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{role} must not {method} {path}"
                );
                error_shape(&reply);
                assert!(
                    reply.body["message"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("the {role} role may not do this")),
                    "{:?}",
                    reply.body
                );
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_and_their_roles() {
    let f = fixture().await;
    let reply = f.get("/openapi.json", ALERTS).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.body;
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            documented.push((method.to_uppercase(), path.clone(), op["x-roles"].clone()));
        }
    }
    documented.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut routes: Vec<(String, String, Value)> = ROUTES
        .iter()
        .map(|(method, path, roles)| {
            let roles = match roles {
                Some(roles) => json!(roles.iter().map(ToString::to_string).collect::<Vec<_>>()),
                None => Value::Null,
            };
            (method.to_string(), path.to_string(), roles)
        })
        .collect();
    routes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(documented, routes);
}

#[tokio::test]
async fn alerts_are_admitted_queued_decided_and_idempotent() {
    let f = fixture().await;
    let body = payload(&[alert("KubePodOOMKilled", "checkout", "fp-oom")]);
    let first = f.post("/v1/alerts", ALERTS, body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    let id = first.body["incidents"][0]["incident"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first.body["incidents"][0]["status"], "queued");
    assert_eq!(f.decided(&id).await, IncidentState::Remediated);
    // Alertmanager HA: the same alert again is the same incident.
    let again = f.post("/v1/alerts", ADMIN, body).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.body["incidents"][0]["incident"], id.as_str());
    f.recorded(&id, "alert.duplicate").await;
    let row = f.store.incident(&id).await.unwrap().unwrap();
    assert_eq!((row.deliveries, row.attempts), (2, 1));

    let timeline = f.get(&format!("/v1/incidents/{id}"), OPERATOR).await;
    assert_eq!(timeline.status, StatusCode::OK);
    let kinds: Vec<&str> = timeline.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "alert.received",
        "classification",
        "decision",
        "run.started",
        "call",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(timeline.body["incident"]["state"], "remediated");
    assert!(timeline.body["timeline"][0]["body"].is_object());

    let resolved = json!({"version": "4", "alerts": [{
        "status": "resolved",
        "labels": {"alertname": "KubePodOOMKilled", "namespace": "prod", "deployment": "checkout"},
        "startsAt": "2026-11-24T03:00:00Z",
        "fingerprint": "fp-oom",
    }]});
    let closed = f.post("/v1/alerts", ALERTS, resolved).await;
    assert_eq!(closed.body["incidents"][0]["status"], "resolved");
    let row = f.store.incident(&id).await.unwrap().unwrap();
    assert!(row.resolved_at.is_some());
}

#[tokio::test]
async fn deceptive_text_in_an_alert_is_escaped_in_every_answer_and_read_back_exactly() {
    let f = fixture().await;
    let hostile = "restart \u{202E}dorp/tnemyolped\u{202C} \u{2066}x\u{2069}\u{200B}\u{9B}2J";
    let mut sent = alert("KubePodOOMKilled", "checkout", "fp-bidi");
    sent["annotations"]["summary"] = json!(hostile);
    let posted = f.post("/v1/alerts", ALERTS, payload(&[sent])).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{:?}", posted.body);
    let id = posted.body["incidents"][0]["incident"]
        .as_str()
        .unwrap()
        .to_string();
    f.decided(&id).await;
    for path in [
        format!("/v1/incidents/{id}"),
        "/v1/audit?after=0".to_string(),
    ] {
        let reply = f.get(&path, OPERATOR).await;
        assert_eq!(reply.status, StatusCode::OK);
        let text = String::from_utf8(reply.raw.clone()).unwrap();
        assert!(
            !text.chars().any(crate::text::is_deceptive),
            "{path} carries a raw deceptive character: {text}"
        );
        assert!(text.contains("\\u202e"), "{path}: {text}");
        // A JSON client reads the exact text the alert carried.
        assert!(reply.body.to_string().contains(hostile), "{path}");
    }
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_admits_nothing() {
    let f = fixture_with(ApiConfig {
        queue_capacity: 1,
        ..ApiConfig::default()
    })
    .await;
    let body = payload(&[
        alert("KubePodOOMKilled", "checkout", "a"),
        alert("KubePodOOMKilled", "cart", "b"),
    ]);
    let reply = f.post("/v1/alerts", ALERTS, body).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    error_shape(&reply);
    assert_eq!(reply.headers[header::RETRY_AFTER], "5");
    let everything = f.store.incidents(&Default::default()).await.unwrap();
    assert!(
        everything.is_empty(),
        "nothing was admitted: {everything:?}"
    );
    assert!(
        f.store.audit().records(0, 10).await.unwrap().is_empty(),
        "nothing was recorded"
    );
}

#[tokio::test]
async fn bad_requests_get_specific_errors() {
    let f = fixture_with(ApiConfig {
        max_body_bytes: 2048,
        ..ApiConfig::default()
    })
    .await;
    let garbage = f
        .call("POST", "/v1/alerts", Some(ALERTS), "{not json", &[])
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    error_shape(&garbage);
    let mut wrong = alert("KubePodOOMKilled", "checkout", "x");
    wrong["status"] = json!("exploded");
    let wrong = f.post("/v1/alerts", ALERTS, payload(&[wrong])).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body["message"].as_str().unwrap().contains("exploded"),
        "{:?}",
        wrong.body
    );
    let huge = "x".repeat(4096);
    let too_big = f.call("POST", "/v1/alerts", Some(ALERTS), huge, &[]).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    error_shape(&too_big);

    for (path, message) in [
        ("/v1/incidents?state=sleeping", "unknown incident state"),
        ("/v1/incidents?limit=0", "limit 0 is out of range"),
        ("/v1/incidents?limit=5000", "limit 5000 is out of range"),
        ("/v1/incidents?colour=red", "unknown field"),
        ("/v1/approvals?state=maybe", "unknown approval state"),
        ("/v1/audit?after=minus", "invalid digit"),
    ] {
        let reply = f.get(path, OPERATOR).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        error_shape(&reply);
        assert!(
            reply.body["message"].as_str().unwrap().contains(message),
            "{path}: {:?}",
            reply.body
        );
    }
    let missing = f.get("/v1/incidents/inc-nope", OPERATOR).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["message"], "no incident inc-nope");
    let nowhere = f.get("/v2/everything", OPERATOR).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    error_shape(&nowhere);
    let wrong_method = f
        .call("PATCH", "/v1/alerts", Some(ALERTS), Body::empty(), &[])
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    error_shape(&wrong_method);
}

#[tokio::test]
async fn incidents_list_filters_and_pages() {
    let f = fixture().await;
    // One at a time: three runs at once in one namespace would exceed its
    // blast-radius budget.
    for (name, deployment) in [
        ("KubePodOOMKilled", "checkout"),
        ("HighErrorRateAfterDeploy", "payments"),
        ("KubePodOOMKilled", "cart"),
    ] {
        let body = payload(&[alert(name, deployment, deployment)]);
        let reply = f.post("/v1/alerts", ALERTS, body).await;
        f.decided(reply.body["incidents"][0]["incident"].as_str().unwrap())
            .await;
    }
    let waiting = f.get("/v1/incidents?state=awaiting-approval", AGENT).await;
    let waiting = waiting.body["incidents"].as_array().unwrap().clone();
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    assert_eq!(waiting[0]["alert"], "HighErrorRateAfterDeploy");
    // Page one at a time: every incident exactly once, even when all of
    // them changed in the same millisecond.
    rusqlite::Connection::open(f.store.audit().path())
        .unwrap()
        .execute("UPDATE incidents SET updated_at = 1000", [])
        .unwrap();
    let mut seen = Vec::new();
    let mut path = "/v1/incidents?limit=1".to_string();
    loop {
        let page = f.get(&path, OPERATOR).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for row in page.body["incidents"].as_array().unwrap() {
            seen.push(row["id"].as_str().unwrap().to_string());
        }
        match page.body["next"].as_str() {
            Some(next) => path = format!("/v1/incidents?limit=1&before={next}"),
            None => break,
        }
    }
    let pages = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((pages, seen.len()), (3, 3), "each incident exactly once");
    let bad = f.get("/v1/incidents?before=yesterday", OPERATOR).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body["message"],
        "before \"yesterday\" is not a cursor: pass the previous page's next"
    );
}

#[tokio::test]
async fn approvals_run_once_need_a_reason_to_deny_and_never_come_from_an_agent() {
    let f = fixture().await;
    let body = payload(&[
        alert("HighErrorRateAfterDeploy", "checkout", "deploy-1"),
        alert("HighErrorRateAfterDeploy", "payments", "deploy-2"),
    ]);
    let reply = f.post("/v1/alerts", ALERTS, body).await;
    for incident in reply.body["incidents"].as_array().unwrap() {
        let id = incident["incident"].as_str().unwrap();
        assert_eq!(f.decided(id).await, IncidentState::AwaitingApproval);
    }
    let pending = f.get("/v1/approvals?state=pending", OPERATOR).await;
    let pending = pending.body["approvals"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 2);
    let (one, two) = (
        pending[0]["id"].as_str().unwrap().to_string(),
        pending[1]["id"].as_str().unwrap().to_string(),
    );

    let by_agent = f
        .post(&format!("/v1/approvals/{one}/approve"), AGENT, json!({}))
        .await;
    assert_eq!(by_agent.status, StatusCode::FORBIDDEN);
    let approved = f
        .call(
            "POST",
            &format!("/v1/approvals/{one}/approve"),
            Some(OPERATOR),
            Body::empty(),
            &[],
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.body["decision"], "execute");
    let twice = f
        .post(&format!("/v1/approvals/{one}/approve"), ADMIN, json!({}))
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(
        twice.body["message"],
        format!("approval {one} is already approved")
    );

    let no_reason = f
        .post(&format!("/v1/approvals/{two}/deny"), OPERATOR, json!({}))
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let denied = f
        .post(
            &format!("/v1/approvals/{two}/deny"),
            OPERATOR,
            json!({"reason": "fixing forward"}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::OK, "{:?}", denied.body);
    assert_eq!(denied.body["state"], "denied");
    assert_eq!(denied.body["decided_by"], "operator:alice");
    let unknown = f
        .post("/v1/approvals/nope/approve", OPERATOR, json!({}))
        .await;
    assert_eq!(unknown.status, StatusCode::CONFLICT);
    assert_eq!(unknown.body["message"], "approval nope does not exist");
}

#[tokio::test]
async fn kill_switches_and_windows_are_changed_in_the_callers_name() {
    let f = fixture().await;
    let set = f
        .call(
            "PUT",
            "/v1/killswitch",
            Some(OPERATOR),
            json!({"scope": "deployment/prod/*", "reason": "database failover"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["set_by"], "operator:alice");
    let listed = f.get("/v1/killswitch", OPERATOR).await;
    assert_eq!(
        listed.body["kill_switches"][0]["reason"],
        "database failover"
    );
    let reply = f
        .post(
            "/v1/alerts",
            ALERTS,
            payload(&[alert("KubePodOOMKilled", "checkout", "during-failover")]),
        )
        .await;
    let id = reply.body["incidents"][0]["incident"].as_str().unwrap();
    assert_eq!(f.decided(id).await, IncidentState::Escalated);

    let bad_scope = f
        .call(
            "PUT",
            "/v1/killswitch",
            Some(OPERATOR),
            json!({"scope": "prod", "reason": "x"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(bad_scope.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_scope.body["message"]
            .as_str()
            .unwrap()
            .starts_with("scope \"prod\"")
    );
    let cleared = f
        .delete("/v1/killswitch?scope=deployment/prod/*", ADMIN)
        .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let again = f.delete("/v1/killswitch", ADMIN).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.body["message"], "there is no global kill switch");

    let window = json!({
        "name": "friday-freeze", "kind": "exclusion", "targets": ["deployment/prod/*"],
        "days": ["fri"], "start": "16:00", "duration": "8h",
    });
    let added = f.post("/v1/windows", OPERATOR, window).await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let invalid = f
        .post(
            "/v1/windows",
            OPERATOR,
            json!({"name": "w", "kind": "exclusion", "targets": ["deployment/prod/*"], "start": "25:00", "duration": "1h"}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    error_shape(&invalid);
    let windows = f.get("/v1/windows", OPERATOR).await;
    assert_eq!(windows.body["windows"][0]["name"], "friday-freeze");
    let deleted = f.delete("/v1/windows/friday-freeze", OPERATOR).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = f.delete("/v1/windows/friday-freeze", OPERATOR).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let records = f.get("/v1/audit?limit=1000", OPERATOR).await;
    let changes: Vec<(&str, &str)> = records.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["incident"].is_null())
        .map(|r| {
            let body = &r["body"];
            let by = body["by"].as_str().or(body["set_by"].as_str());
            (r["kind"].as_str().unwrap(), by.unwrap_or_default())
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("killswitch.set", "operator:alice"),
            ("killswitch.cleared", "admin:root"),
            ("window.added", "operator:alice"),
            ("window.deleted", "operator:alice"),
        ],
        "every change is on the record, in the caller's name"
    );
}

#[tokio::test]
async fn plugins_audit_metrics_and_health_answer() {
    let f = fixture().await;
    let plugins = f.get("/v1/plugins", OPERATOR).await;
    assert_eq!(plugins.body["plugins"][0]["name"], "restart-on-oom");
    let reply = f
        .post(
            "/v1/alerts",
            ALERTS,
            payload(&[alert("KubePodOOMKilled", "checkout", "metrics")]),
        )
        .await;
    f.decided(reply.body["incidents"][0]["incident"].as_str().unwrap())
        .await;

    let page = f.get("/v1/audit?limit=2", OPERATOR).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["records"][0]["seq"], 1);
    let next = page.body["next"].as_u64().unwrap();
    let rest = f
        .get(&format!("/v1/audit?after={next}&limit=1"), OPERATOR)
        .await;
    assert_eq!(rest.body["records"][0]["seq"], next + 1);
    let verified = f.get("/v1/audit/verify", OPERATOR).await;
    assert_eq!(verified.body["valid"], true, "{:?}", verified.body);

    let metrics = f.get("/metrics", OPERATOR).await;
    let text = metrics.body.as_str().unwrap().to_string();
    for name in [
        "blastwall_alerts_received_total{status=\"firing\"} 1",
        "blastwall_decisions_total{kind=\"execute\"} 1",
        "blastwall_runs_total{outcome=\"completed\"} 1",
        "blastwall_capability_denials_total 0",
        "blastwall_alert_decision_seconds_count 1",
        "blastwall_alert_queue_depth 0",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }

    assert_eq!(f.get("/readyz", "").await.status, StatusCode::OK);
    f.app.ready.store(false, Ordering::Relaxed);
    let not_ready = f.get("/readyz", "").await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(not_ready.body["message"], "shutting down");
    let refused = f
        .post(
            "/v1/alerts",
            ALERTS,
            payload(&[alert("KubePodOOMKilled", "cart", "late")]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn audit_verify_reports_a_tampered_record() {
    let f = fixture().await;
    let reply = f
        .post(
            "/v1/alerts",
            ALERTS,
            payload(&[alert("KubePodOOMKilled", "checkout", "tamper")]),
        )
        .await;
    f.decided(reply.body["incidents"][0]["incident"].as_str().unwrap())
        .await;
    let db = rusqlite::Connection::open(f.store.audit().path()).unwrap();
    db.execute("UPDATE audit SET body = '{}' WHERE seq = 2", [])
        .unwrap();
    let verified = f.get("/v1/audit/verify", OPERATOR).await;
    assert_eq!(verified.status, StatusCode::OK);
    assert_eq!(verified.body["valid"], false);
    assert!(
        verified.body["problem"].as_str().unwrap().contains('2'),
        "{:?}",
        verified.body
    );
}

#[tokio::test]
async fn signed_plans_are_accepted_once_and_everything_else_is_refused() {
    let f = fixture().await;
    let reply = f
        .post(
            "/v1/alerts",
            ALERTS,
            payload(&[alert("CPUThrottlingHigh", "checkout", "cpu")]),
        )
        .await;
    let id = reply.body["incidents"][0]["incident"]
        .as_str()
        .unwrap()
        .to_string();
    f.decided(&id).await;
    let plan = json!({
        "incident": id, "class": "cpu-saturation", "confidence": 0.95,
        "rationale": "throttled; and while we are at it",
        "actions": [
            {"capability": "scale", "target": "deployment/prod/checkout", "arguments": {"replicas": 500}},
            {"capability": "restart", "target": "deployment/prod/payments"},
        ],
    })
    .to_string();
    let signed = crate::proposal::sign(
        plan.as_bytes(),
        &f.agent,
        SystemTime::now(),
        "nonce-0123456789abcdef",
    );
    let headers = signed.as_headers();
    let envelope = [
        (crate::proposal::HEADER_KEY, headers.key.unwrap()),
        (
            crate::proposal::HEADER_TIMESTAMP,
            headers.timestamp.unwrap(),
        ),
        (crate::proposal::HEADER_NONCE, headers.nonce.unwrap()),
        (
            crate::proposal::HEADER_SIGNATURE,
            headers.signature.unwrap(),
        ),
    ];
    let wrong_role = f
        .call(
            "POST",
            "/v1/proposals",
            Some(OPERATOR),
            plan.clone(),
            &envelope,
        )
        .await;
    assert_eq!(wrong_role.status, StatusCode::FORBIDDEN);
    let unsigned = f
        .call("POST", "/v1/proposals", Some(AGENT), plan.clone(), &[])
        .await;
    assert_eq!(
        unsigned.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        unsigned.body
    );
    error_shape(&unsigned);
    let accepted = f
        .call(
            "POST",
            "/v1/proposals",
            Some(AGENT),
            plan.clone(),
            &envelope,
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    let run = &accepted.body["run"];
    let denied: Vec<&str> = run["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["function"].as_str().unwrap())
        .collect();
    assert_eq!(
        denied,
        ["scale.set-replicas", "restart.restart"],
        "both hallucinated actions are denied at the boundary: {run:?}"
    );
    assert!(run["effects"].as_array().unwrap().is_empty(), "{run:?}");
    let replayed = f
        .call("POST", "/v1/proposals", Some(AGENT), plan, &envelope)
        .await;
    assert_eq!(replayed.status, StatusCode::CONFLICT, "{:?}", replayed.body);
    error_shape(&replayed);
}

#[tokio::test]
async fn recovery_takes_up_admitted_alerts_and_shutdown_drains_the_queue() {
    let f = fixture().await;
    // Admitted but never queued: what a process that stopped after its 202
    // leaves behind. The pass the recovery interval runs takes it up.
    let responder = f.app.responder.clone();
    let admitted = responder
        .admit(vec![
            serde_json::from_value(alert("KubePodOOMKilled", "checkout", "left")).unwrap(),
        ])
        .await
        .unwrap();
    let crate::respond::Admitted::Firing(admission) = &admitted[0] else {
        panic!("a firing alert");
    };
    let id = admission.id.clone();
    crate::serve::recover(&f.app, Duration::ZERO).await;
    assert_eq!(f.decided(&id).await, IncidentState::Remediated);

    // Shutdown processes what was queued and waits for it.
    let body = payload(&[
        alert("KubePodOOMKilled", "cart", "drain-1"),
        alert("CPUThrottlingHigh", "payments", "drain-2"),
    ]);
    let reply = f.post("/v1/alerts", ALERTS, body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(f.app.queue.shutdown(Duration::from_secs(60)).await);
    for incident in reply.body["incidents"].as_array().unwrap() {
        let id = incident["incident"].as_str().unwrap();
        let row = f.store.incident(id).await.unwrap().unwrap();
        // Decided and finished (one of the two may be refused by the
        // namespace's blast-radius budget: they run at once).
        assert!(
            !matches!(row.state, IncidentState::Open | IncidentState::Running),
            "{id} was drained: {:?}",
            row.state
        );
    }
    let late = f
        .post(
            "/v1/alerts",
            ALERTS,
            payload(&[alert("KubePodOOMKilled", "cart", "late")]),
        )
        .await;
    assert_eq!(late.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(late.body["message"], "the host is shutting down");
}
