//! `blastwall handle` as an operator runs it, including a real crash: the
//! process is killed with SIGKILL in the middle of a live remediation, and the
//! next start finds the interrupted run, marks it, escalates it, and never
//! retries it.

mod common;

use common::{blastwall, repo, stderr, stdout};

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

fn lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn handles_the_example_alerts_on_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let mut decisions = Vec::new();
    for file in ["oom-killed", "cpu-saturation", "disk-full", "error-spike"] {
        let out = ok(blastwall(&[
            "handle",
            "--insecure-unsigned",
            "--data",
            &data,
            "--alert",
            &format!("examples/alerts/{file}.json"),
        ]));
        let handled = lines(&out);
        assert_eq!(handled.len(), 1, "{out}");
        decisions.push((
            handled[0]["class"].as_str().unwrap().to_string(),
            handled[0]["decision"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        decisions,
        [
            ("oom-killed".into(), "execute".into()),
            ("cpu-saturation".into(), "execute".into()),
            ("disk-full".into(), "execute".into()),
            ("error-spike-after-deploy".into(), "await-approval".into()),
        ]
    );
    let verified = ok(blastwall(&["audit", "verify", "--data", &data]));
    assert!(verified.contains("records"), "{verified}");
}

#[test]
fn refuses_unusable_input_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "handle",
                "--data",
                &data,
                "--alert",
                "examples/alerts/oom-killed.json",
            ],
            "error: no plugins: pass --plugin FILE (signed) with --trust FILE, or --insecure-unsigned for the bundled examples",
        ),
        (
            &[
                "handle",
                "--live",
                "--insecure-unsigned",
                "--data",
                &data,
                "--alert",
                "examples/alerts/oom-killed.json",
            ],
            "error: --live needs --config FILE",
        ),
        (
            &[
                "handle",
                "--insecure-unsigned",
                "--data",
                &data,
                "--alert",
                "Cargo.toml",
            ],
            "error: alerts in Cargo.toml are invalid",
        ),
    ];
    for (args, message) in cases {
        let o = blastwall(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

/// A signed rotate-full-disk, a trust store, and a live configuration whose
/// verification waits for the alert to resolve (so the run stays in flight).
fn live_setup(dir: &std::path::Path, hook: &str) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    common::sign_bundled(dir, &["rotate-full-disk"]);
    std::fs::create_dir(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/app.log"), "GET /health 200\n".repeat(50_000)).unwrap();
    let config = format!(
        r#"
[log-sets.app]
root = "{logs}"
pattern = "*.log"
keep = 3

[[classify.rules]]
alertname = "NodeFilesystemAlmostFull"
class = "disk-full"
confidence = 0.95

[catalog.disk-full]
plugin = "rotate-full-disk@0.1.0"
mode = "auto"
params = {{ log-set = "app" }}
verify = {{ kind = "alert-resolves", window = "5m", interval = "200ms" }}

[escalation]
retry = {{ attempts = 2, initial-backoff = "50ms" }}
notifiers = [{{ kind = "webhook", name = "oncall", url = "{hook}" }}]
"#,
        logs = dir.join("logs").display()
    );
    std::fs::write(path("blastwall.toml"), config).unwrap();
    path("")
}

/// The arguments of a live `handle` on the workspace from [`live_setup`].
fn live_args(ws: &str, data: &str, alert: &str) -> Vec<String> {
    [
        "handle",
        "--live",
        "--config",
        &format!("{ws}blastwall.toml"),
        "--trust",
        &format!("{ws}trust.toml"),
        "--plugin",
        &format!("{ws}rotate-full-disk.wasm"),
        "--data",
        data,
        "--alert",
        alert,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Waits (at most a minute) until the audit under `data` holds a record of `kind`.
fn wait_for(data: &str, kind: &str) {
    let started = Instant::now();
    while !audit_kinds(data).iter().any(|k| k == kind) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {kind} record within a minute: {:?}",
            audit_kinds(data)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn audit_kinds(data: &str) -> Vec<String> {
    let db = std::path::Path::new(data).join("blastwall.db");
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut statement) = conn.prepare("SELECT kind FROM audit ORDER BY seq") else {
        return Vec::new();
    };
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn a_run_killed_mid_remediation_is_marked_interrupted_escalated_and_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, pages) = common::webhook_receiver();
    let ws = live_setup(dir.path(), &hook);
    let data = format!("{ws}data");
    let args = |alert: &str| live_args(&ws, &data, alert);
    let mut child = Command::new(env!("CARGO_BIN_EXE_blastwall"))
        .args(args("examples/alerts/disk-full.json"))
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the effect is done and verification is waiting: mid-remediation.
    wait_for(&data, "verification.started");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before_restart = audit_kinds(&data);
    assert!(before_restart.contains(&"run.finished".to_string()));
    // The real effect happened before the crash: the log was rotated.
    let archived = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".gz")
        })
        .count();
    assert_eq!(archived, 1);

    // Restart with the same alert delivered again (Alertmanager repeats it).
    let out = ok(Command::new(env!("CARGO_BIN_EXE_blastwall"))
        .args(args("examples/alerts/disk-full.json"))
        .current_dir(repo())
        .output()
        .unwrap());
    let handled = lines(&out);
    assert_eq!(handled.len(), 2, "{out}");
    assert_eq!(handled[0]["decision"], "interrupted");
    assert_eq!(handled[0]["state"], "interrupted");
    assert!(
        handled[0]["reason"]
            .as_str()
            .unwrap()
            .ends_with("its effects are unknown and it will not be retried automatically")
    );
    assert_eq!(
        handled[1]["decision"], "duplicate",
        "never retried silently"
    );
    assert_eq!(handled[1]["incident"], handled[0]["incident"]);
    // The page carries the context a human needs, the class included.
    {
        let pages = pages.lock().unwrap();
        assert_eq!(pages.len(), 1, "{pages:?}");
        assert_eq!(pages[0]["decision"], "interrupted");
        assert_eq!(pages[0]["severity"], "critical");
        assert_eq!(pages[0]["class"], "disk-full");
        assert_eq!(pages[0]["incident"], handled[0]["incident"]);
        assert_eq!(
            pages[0]["alert"]["labels"]["alertname"],
            "NodeFilesystemAlmostFull"
        );
    }

    // Everything acknowledged before the kill is still there, the chain verifies,
    // and the incident's story ends with the interruption and its escalation.
    let after = audit_kinds(&data);
    assert_eq!(&after[..before_restart.len()], &before_restart[..]);
    ok(blastwall(&["audit", "verify", "--data", &data]));
    let incident = handled[0]["incident"].as_str().unwrap();
    let shown = ok(blastwall(&["audit", "show", incident, "--data", &data]));
    for kind in [
        "run.started",
        "run.finished",
        "verification.started",
        "run.interrupted",
        "escalation",
        "alert.duplicate",
    ] {
        assert!(
            shown.contains(&format!("\"kind\":\"{kind}\"")),
            "{kind} missing:\n{shown}"
        );
    }
}

#[test]
fn operators_switch_automation_off_and_on_and_every_change_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let handle = || {
        let out = ok(blastwall(&[
            "handle",
            "--insecure-unsigned",
            "--data",
            &data,
            "--alert",
            "examples/alerts/oom-killed.json",
        ]));
        lines(&out).remove(0)
    };
    ok(blastwall(&[
        "guard",
        "kill-switch",
        "--data",
        &data,
        "--by",
        "alice",
        "--scope",
        "deployment/prod/*",
        "--reason",
        "database failover in progress",
    ]));
    let status: serde_json::Value =
        serde_json::from_str(&ok(blastwall(&["guard", "status", "--data", &data]))).unwrap();
    assert_eq!(status["kill_switches"][0]["set_by"], "alice");
    let refused = handle();
    assert_eq!(refused["decision"], "refuse");
    assert_eq!(refused["guardrail"], "kill-switch");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .ends_with("database failover in progress")
    );

    ok(blastwall(&[
        "guard",
        "clear-kill-switch",
        "--data",
        &data,
        "--by",
        "alice",
        "--scope",
        "deployment/prod/*",
    ]));
    let o = blastwall(&[
        "guard",
        "clear-kill-switch",
        "--data",
        &data,
        "--by",
        "alice",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: no kill switch is set for every target"),
        "{}",
        stderr(&o)
    );

    // A bad window is refused with the reason; a good one holds the next alert.
    let o = blastwall(&[
        "guard",
        "window",
        "--data",
        &data,
        "--by",
        "bob",
        "--name",
        "upgrade",
        "--kind",
        "maintenance",
        "--target",
        "deployment/prod/*",
        "--start",
        "25:00",
        "--duration",
        "1h",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("window \"upgrade\": start \"25:00\" is not a UTC time HH:MM"),
        "{}",
        stderr(&o)
    );
    ok(blastwall(&[
        "guard",
        "window",
        "--data",
        &data,
        "--by",
        "bob",
        "--name",
        "upgrade",
        "--kind",
        "maintenance",
        "--target",
        "deployment/prod/*",
        "--start",
        "00:00",
        "--duration",
        "7days",
    ]));
    // A new alert (the old incident is with a human): held by the window, nobody paged.
    let mut alert: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/alerts/oom-killed.json")).unwrap(),
    )
    .unwrap();
    alert["alerts"][0]["startsAt"] = "2026-11-23T04:00:00Z".into();
    let path = dir.path().join("later.json");
    std::fs::write(&path, alert.to_string()).unwrap();
    let out = ok(blastwall(&[
        "handle",
        "--insecure-unsigned",
        "--data",
        &data,
        "--alert",
        &path.display().to_string(),
    ]));
    let held = lines(&out).remove(0);
    assert_eq!(held["decision"], "hold");
    assert_eq!(held["guardrail"], "window");

    let export = ok(blastwall(&["audit", "export", "--data", &data]));
    for kind in ["killswitch.set", "killswitch.cleared", "window.added"] {
        assert!(
            export.contains(&format!("\"kind\":\"{kind}\"")),
            "{kind} missing"
        );
    }
    assert!(export.contains("\\\"by\\\":\\\"bob\\\"") || export.contains("\"by\":\"bob\""));
    ok(blastwall(&["audit", "verify", "--data", &data]));
}

#[test]
fn a_second_process_delivers_the_resolution_that_a_live_verification_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, pages) = common::webhook_receiver();
    let ws = live_setup(dir.path(), &hook);
    let data = format!("{ws}data");
    let args = |alert: &str| live_args(&ws, &data, alert);
    let verifying = Command::new(env!("CARGO_BIN_EXE_blastwall"))
        .args(args("examples/alerts/disk-full.json"))
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&data, "verification.started");
    // Another process on the same data directory: it must not take the live
    // run for an interrupted one, and its records must extend the same chain.
    let mut resolved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/alerts/disk-full.json")).unwrap(),
    )
    .unwrap();
    resolved["status"] = "resolved".into();
    resolved["alerts"][0]["status"] = "resolved".into();
    let path = dir.path().join("resolved.json");
    std::fs::write(&path, resolved.to_string()).unwrap();
    let out = ok(Command::new(env!("CARGO_BIN_EXE_blastwall"))
        .args(args(&path.display().to_string()))
        .current_dir(repo())
        .output()
        .unwrap());
    let handled = lines(&out);
    assert_eq!(
        handled.len(),
        1,
        "nothing recovered from a live process: {out}"
    );
    assert_eq!(handled[0]["decision"], "resolved");

    let first = ok(verifying.wait_with_output().unwrap());
    let first = lines(&first);
    assert_eq!(first[0]["decision"], "execute");
    assert_eq!(first[0]["state"], "remediated", "{first:?}");
    assert_eq!(first[0]["run"]["verification"]["passed"], true);
    assert!(pages.lock().unwrap().is_empty(), "a success pages nobody");
    let verified = ok(blastwall(&["audit", "verify", "--data", &data]));
    assert!(verified.contains("records"), "{verified}");
}
