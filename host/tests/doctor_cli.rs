//! `blastwall doctor` against the real binary: every check runs, problems are
//! named, and the exit code says whether anything failed.

mod common;

use common::{blastwall, stdout};
use serde_json::Value;

fn checks(json: &str) -> Vec<(String, String, String)> {
    let parsed: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn find<'a>(checks: &'a [(String, String, String)], name: &str) -> &'a (String, String, String) {
    checks
        .iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
}

#[test]
fn on_embedded_defaults_everything_passes_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = blastwall(&["doctor", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let table = stdout(&o);
    for line in [
        "configuration   ok  ",
        "trust store     warn",
        "plugins         warn",
        "catalog         ok  ",
        "workloads       ok    dry-run: answers",
        "notifiers       warn",
        "data directory  ok  ",
    ] {
        assert!(table.contains(line), "{line:?} in\n{table}");
    }
}

#[test]
fn a_broken_live_setup_names_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let prometheus = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = dir.path().join("blastwall.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[workloads]
provider = "docker"
docker = {{ socket = "{socket}" }}

[log-sets.app]
root = "{missing}"

[prometheus]
url = "{prometheus}"
timeout = "1s"

[catalog.oom-killed]
plugin = "restart-on-oom@0.1.0"
mode = "auto"
verify = {{ kind = "promql", query = "checkout_error_ratio", expect = "< 0.05", window = "1m" }}
"#,
            socket = dir.path().join("no-docker.sock").display(),
            missing = dir.path().join("no-logs").display(),
        ),
    )
    .unwrap();
    let o = blastwall(&[
        "doctor",
        "--json",
        "--live",
        "--config",
        config.to_str().unwrap(),
        "--data",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let checks = checks(&stdout(&o));
    assert_eq!(find(&checks, "configuration").1, "ok");
    let trust = find(&checks, "trust store");
    assert_eq!(
        (trust.1.as_str(), trust.2.contains("--live needs --trust")),
        ("fail", true),
        "{trust:?}"
    );
    assert_eq!(find(&checks, "plugins").1, "fail");
    assert_eq!(find(&checks, "catalog").1, "fail");
    let workloads = find(&checks, "workloads");
    assert_eq!(workloads.1, "fail", "{workloads:?}");
    assert!(workloads.2.contains("no-docker.sock"), "{workloads:?}");
    let prometheus_check = find(&checks, "prometheus");
    assert_eq!(prometheus_check.1, "fail", "{prometheus_check:?}");
    assert!(
        prometheus_check.2.contains(&prometheus),
        "{prometheus_check:?}"
    );
    assert_eq!(find(&checks, "notifiers").1, "warn");
    assert_eq!(find(&checks, "data directory").1, "ok");
}

#[test]
fn a_configuration_that_does_not_parse_still_gets_the_other_checks() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[workloads]\nprovider = \"kubernetes-ish\"\n").unwrap();
    let o = blastwall(&[
        "doctor",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--data",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let checks = checks(&stdout(&o));
    let configuration = find(&checks, "configuration");
    assert_eq!(configuration.1, "fail");
    assert!(
        configuration.2.contains("kubernetes-ish"),
        "{configuration:?}"
    );
    assert_eq!(find(&checks, "data directory").1, "ok");
}
