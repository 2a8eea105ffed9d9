//! `blastwall demo` as a newcomer runs it: the real binary, every scenario
//! through the real loop, the results as JSON, and the kept store readable
//! with `blastwall audit`.

mod common;

use common::{blastwall, stderr, stdout};

#[test]
fn every_scenario_matches_and_the_kept_store_tells_each_story() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo-data");
    let data = data.to_str().unwrap();
    let out = blastwall(&["demo", "--json", "--data", data]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {text}\nstderr: {}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["passed"], true, "{text}");
    let scenarios = report["scenarios"].as_array().unwrap();
    let ids: Vec<&str> = scenarios
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "oom-restart",
            "disk-full-rotate",
            "cpu-saturation-scale",
            "error-spike-rollback-approved",
            "dependency-timeout-notify",
            "low-confidence-escalate",
            "ai-proposal-denied",
            "runaway-loop-fuel",
            "memory-bomb-limit",
            "same-alert-five-times",
            "kill-switch",
        ]
    );
    for scenario in scenarios {
        let expected = scenario["expected"].as_array().unwrap();
        assert!(!expected.is_empty(), "{scenario}");
        assert_eq!(
            expected,
            scenario["actual"].as_array().unwrap(),
            "{scenario}"
        );
        assert_eq!(scenario["matched"], true, "{scenario}");
        assert!(!scenario["incidents"].as_array().unwrap().is_empty());
    }
    assert_eq!(report["matched"], scenarios.len());
    assert!(report["audit"]["records"].as_u64().unwrap() > 50, "{text}");
    assert!(report["audit"].get("broken").is_none(), "{text}");

    // The progress line went to stderr, one line per scenario off a terminal.
    let progress = stderr(&out);
    assert!(progress.contains("[1/11] OOM kill → restart"), "{progress}");
    assert!(progress.contains("ran 11 scenarios in"), "{progress}");

    // The kept store verifies and tells the story of each incident.
    let verify = blastwall(&["audit", "verify", "--data", data]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
    let incident = scenarios[0]["incidents"][0].as_str().unwrap();
    let show = blastwall(&["audit", "show", "--data", data, incident]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let kinds: Vec<String> = stdout(&show)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
        .collect();
    for kind in ["decision", "run.started", "effect.intent", "run.finished"] {
        assert!(kinds.contains(&format!("\"{kind}\"")), "{kinds:?}");
    }

    // A store that already exists is refused: its history would change the outcomes.
    let again = blastwall(&["demo", "--data", data]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds a store; the demo needs a fresh one"),
        "{}",
        stderr(&again)
    );
}
