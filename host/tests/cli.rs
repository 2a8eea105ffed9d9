//! `blastwall run` as a user runs it: the real binary, real files, exit codes.

mod common;

use common::{blastwall, stderr};

use std::process::Output;

fn report(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn runs_a_bundled_plugin_on_a_sample_alert_in_dry_run() {
    let out = blastwall(&[
        "run",
        "restart-on-oom",
        "--alert",
        "examples/alerts/oom-killed.json",
        "--insecure-unsigned",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = report(&out);
    assert_eq!(report["mode"], "dry-run");
    assert_eq!(report["outcome"]["kind"], "completed");
    assert_eq!(report["effects"][0]["function"], "restart.restart");
    assert_eq!(report["effects"][0]["target"], "deployment/prod/checkout");
    assert!(report["fuel_consumed"].as_u64().unwrap() > 0);
    assert!(report["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert!(
        stderr(&out).contains("WARNING: --insecure-unsigned"),
        "the warning is loud"
    );
}

#[test]
fn refuses_unsigned_plugins_without_the_flag() {
    let out = blastwall(&[
        "run",
        "restart-on-oom",
        "--alert",
        "examples/alerts/oom-killed.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing ran");
    assert!(
        stderr(&out).contains("error: refusing to run restart-on-oom: plugins must be signed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_operator_policy_denies_a_step_too_large_and_exits_3() {
    let out = blastwall(&[
        "run",
        "scale-on-saturation",
        "--alert",
        "examples/alerts/cpu-saturation.json",
        "--grants",
        "examples/local-dry-run/grants.toml",
        "--param",
        "step=3",
        "--insecure-unsigned",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = report(&out);
    assert_eq!(report["outcome"]["kind"], "plugin-error");
    assert_eq!(
        report["denials"][0]["reason"],
        "scaling deployment/prod/checkout from 3 to 6 is a step of 3; at most 2 up is granted"
    );
    assert_eq!(report["effects"].as_array().unwrap().len(), 0);
}

#[test]
fn live_rotation_frees_real_disk_space() {
    let logs = tempfile::tempdir().unwrap();
    let body = "2026-11-23T03:00:00Z GET /checkout 200\n".repeat(20_000);
    std::fs::write(logs.path().join("app.log"), &body).unwrap();
    let log_set = format!("app={}", logs.path().display());
    let mut args = vec![
        "run",
        "rotate-full-disk",
        "--alert",
        "examples/alerts/disk-full.json",
        "--live",
        "--log-set",
        &log_set,
        "--insecure-unsigned",
    ];
    let refused = blastwall(&args);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("--live needs --grants FILE"),
        "{}",
        stderr(&refused)
    );
    args.extend(["--grants", "examples/local-dry-run/grants.toml"]);
    let out = blastwall(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = report(&out);
    assert_eq!(report["mode"], "live");
    assert_eq!(report["effects"][0]["applied"], true);
    assert_eq!(
        std::fs::metadata(logs.path().join("app.log"))
            .unwrap()
            .len(),
        0
    );
    assert!(logs.path().join("app.log.1.gz").exists());
}

#[test]
fn bad_input_gets_a_specific_error() {
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "run",
                "no-such-plugin",
                "--alert",
                "examples/alerts/oom-killed.json",
                "--insecure-unsigned",
            ],
            "error: no plugin file \"no-such-plugin\" and no bundled plugin of that name (bundled: restart-on-oom, scale-on-saturation, rollback-bad-deploy, rotate-full-disk, plan-runner)",
        ),
        (
            &[
                "run",
                "restart-on-oom",
                "--alert",
                "missing.json",
                "--insecure-unsigned",
            ],
            "error: cannot read alert missing.json",
        ),
        (
            &[
                "run",
                "restart-on-oom",
                "--alert",
                "Cargo.toml",
                "--insecure-unsigned",
            ],
            "error: alert is not valid Alertmanager JSON",
        ),
        (
            &[
                "run",
                "restart-on-oom",
                "--alert",
                "examples/alerts/oom-killed.json",
                "--grants",
                "Cargo.toml",
                "--insecure-unsigned",
            ],
            "error: grants file Cargo.toml is invalid",
        ),
        (
            &[
                "run",
                "restart-on-oom",
                "--alert",
                "examples/alerts/oom-killed.json",
                "--param",
                "oops",
                "--insecure-unsigned",
            ],
            "error: --param \"oops\" is not of the form KEY=VALUE",
        ),
    ];
    for (args, expected) in cases {
        let out = blastwall(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_wasm_file_needs_its_manifest() {
    let wasm = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wasm.path(), blastwall::bundled::ALL[0].wasm).unwrap();
    let path = wasm.path().display().to_string();
    let out = blastwall(&[
        "run",
        &path,
        "--alert",
        "examples/alerts/oom-killed.json",
        "--insecure-unsigned",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("needs its manifest: pass --manifest FILE"),
        "{}",
        stderr(&out)
    );
    let out = blastwall(&[
        "run",
        &path,
        "--manifest",
        "plugins/restart-on-oom/blastwall.toml",
        "--alert",
        "examples/alerts/oom-killed.json",
        "--insecure-unsigned",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
