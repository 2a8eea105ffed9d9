//! A `blastwall serve` kept busy by plugins that never yield: the bundled
//! `demo-faults` plugin, signed with a manifest asking for ample fuel and a
//! long deadline, mapped in `auto` mode to two classes, one looping in
//! plain code (`RunawayLoop`) and one looping on `context.log`
//! (`RunawayLog`). Shared by the containment test and the hostile-load bench.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::serve::{Api, Server, state};
use super::succeed;

/// How long each runaway run lasts: its deadline.
pub const RUNAWAY_TIMEOUT_MS: u64 = 6_000;

/// Workloads in the simulated fleet's `busy` namespace: enough that the
/// blast-radius budget (a quarter of a namespace) never refuses a runaway.
pub const WORKLOADS: usize = 256;

/// The files a hostile `serve` needs, in `dir`.
pub struct HostileSetup {
    /// `--config`.
    pub config: PathBuf,
    /// `--fleet`.
    pub fleet: PathBuf,
    /// `--plugin`.
    pub plugin: PathBuf,
    /// `--trust`.
    pub trust: PathBuf,
}

impl HostileSetup {
    /// Keys, trust, the signed runaway plugin, a fleet and a configuration
    /// admitting `max_in_flight` alerts at once.
    pub fn new(dir: &Path, max_in_flight: usize) -> HostileSetup {
        let path = |name: &str| dir.join(name).display().to_string();
        succeed(&["keygen", "--out", &path(""), "--name", "platform"]);
        succeed(&[
            "trust",
            "add",
            "--trust",
            &path("trust.toml"),
            "--tier",
            "publisher",
            &path("platform.pub"),
        ]);
        let faults = blastwall::bundled::DEMO_FAULTS;
        std::fs::write(path("runaway.component.wasm"), faults.wasm).unwrap();
        std::fs::write(
            path("runaway.toml"),
            format!(
                "name = \"runaway\"\nversion = \"0.1.0\"\n\
                 description = \"Never yields: loops in plain code or on context.log until its deadline.\"\n\
                 classes = [\"runaway-loop\", \"runaway-log\"]\n\n\
                 [limits]\nfuel = 1_000_000_000_000\nmemory-mib = 16\ntimeout-ms = {RUNAWAY_TIMEOUT_MS}\n"
            ),
        )
        .unwrap();
        succeed(&[
            "plugin",
            "sign",
            "--key",
            &path("platform.key"),
            "--manifest",
            &path("runaway.toml"),
            "--out",
            &path("runaway.wasm"),
            &path("runaway.component.wasm"),
        ]);
        let mut fleet = String::new();
        for n in 0..WORKLOADS {
            fleet.push_str(&format!(
                "[[workloads]]\ntarget = \"deployment/busy/svc-{n}\"\nreplicas = 2\nrevision = 1\nimage = \"registry.example/svc:1\"\n\n"
            ));
        }
        std::fs::write(path("fleet.toml"), fleet).unwrap();
        std::fs::write(
            path("blastwall.toml"),
            format!(
                r#"[api]
max-in-flight = {max_in_flight}

[ceilings]
max-fuel = 1_000_000_000_000
max-memory-mib = 64
max-timeout-ms = 10_000
max-actions = 20
max-table-elements = 20_000
wasm-stack-kib = 512
max-output-bytes = 65_536
max-log-bytes = 65_536
defaults = {{ fuel = 100_000_000, memory-mib = 16, timeout-ms = 2_000, max-actions = 3 }}

[[classify.rules]]
alertname = "RunawayLoop"
class = "runaway-loop"
confidence = 1.0

[[classify.rules]]
alertname = "RunawayLog"
class = "runaway-log"
confidence = 1.0

[catalog.runaway-loop]
plugin = "runaway@0.1.0"
mode = "auto"
params = {{ fault = "loop" }}
cooldown = "0s"
rate-limit-per-hour = 100000
max-attempts = 100

[catalog.runaway-log]
plugin = "runaway@0.1.0"
mode = "auto"
params = {{ fault = "log-loop" }}
cooldown = "0s"
rate-limit-per-hour = 100000
max-attempts = 100

[guardrails]
storm = {{ max-actions = 1000000, window = "1m", freeze = "1m" }}
"#
            ),
        )
        .unwrap();
        HostileSetup {
            config: dir.join("blastwall.toml"),
            fleet: dir.join("fleet.toml"),
            plugin: dir.join("runaway.wasm"),
            trust: dir.join("trust.toml"),
        }
    }

    /// The arguments for `serve` (after `--data`).
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, path) in [
            ("--config", &self.config),
            ("--fleet", &self.fleet),
            ("--plugin", &self.plugin),
            ("--trust", &self.trust),
        ] {
            args.push(flag.to_string());
            args.push(path.display().to_string());
        }
        args
    }
}

/// One firing alert named `name` (`RunawayLoop`, `RunawayLog`, or anything
/// else for an alert no rule classifies) on `deployment/busy/svc-{n}`, with
/// a fingerprint unique to `(name, n, generation)`.
pub fn alert(name: &str, n: usize, generation: usize) -> Value {
    json!({
        "status": "firing",
        "labels": {
            "alertname": name,
            "namespace": "busy",
            "deployment": format!("svc-{}", n % WORKLOADS),
        },
        "annotations": { "summary": format!("{name} {n}") },
        "startsAt": "2026-12-01T03:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph",
        "fingerprint": format!("{:08x}{:04x}{:04x}", n, generation, name.len()),
    })
}

/// An Alertmanager webhook payload holding `alerts`.
pub fn payload(alerts: &[Value]) -> String {
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "blastwall",
        "groupKey": "{}:{namespace=\"busy\"}",
        "truncatedAlerts": 0,
        "groupLabels": {"namespace": "busy"},
        "commonLabels": {"namespace": "busy"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    })
    .to_string()
}

/// A hostile `serve` in `dir` with `runaways` runaway plugins running (half
/// looping in plain code, half on `context.log`): the server, a client, and
/// the runaways' incident ids. Returns once every runaway is running.
pub async fn serve_with_runaways(
    dir: &Path,
    max_in_flight: usize,
    runaways: usize,
) -> (Server, Arc<Api>, Vec<String>) {
    let setup = HostileSetup::new(dir, max_in_flight);
    let args = setup.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&dir.join("data"), &dir.join("serve.log"), &args);
    let api = Arc::new(Api::new(&server));
    let mut ids = Vec::new();
    for n in 0..runaways {
        let name = if n % 2 == 0 {
            "RunawayLoop"
        } else {
            "RunawayLog"
        };
        ids.push(
            api.accepted(payload(&[alert(name, n, 0)])).await[0]
                .0
                .clone(),
        );
    }
    for id in &ids {
        api.incident_when(id, |b| state(b) == "running").await;
    }
    (server, api, ids)
}

/// How many of `ids` are still running.
pub async fn still_running(api: &Api, ids: &[String]) -> usize {
    let mut running = 0;
    for id in ids {
        let (_, incident) = api.get(&format!("/v1/incidents/{id}")).await;
        running += usize::from(state(&incident) == "running");
    }
    running
}
