//! blastwall's integration tests: one binary, one module per stage.
//!
//! Every test runs real components (the bundled example plugins and the
//! guests in `tests/guests/`) in a real wasmtime sandbox.

mod adversarial;
mod approvals;
mod compile_limits;
mod containment;
mod faults;
mod loading;
mod plugins;
mod precompiled;
mod proposals;
mod providers;
mod recovery;
mod respond;
mod signing;
mod verification;

use blastwall::sandbox::{Outcome, RunReport};
use blastwall_tests::{Harness, bundled, incident};

/// Proves the host is still healthy: a well-behaved plugin run in the same
/// sandbox completes normally.
pub async fn assert_next_run_succeeds(harness: &Harness) {
    let report = harness
        .run(
            &bundled("restart-on-oom"),
            incident("deployment/prod/checkout", &[]),
            &blastwall::policy::Policy::as_declared(),
        )
        .await
        .expect("loads");
    assert!(
        matches!(report.outcome, Outcome::Completed { .. }),
        "the next run should complete, got {:?}",
        report.outcome
    );
}

/// Shorthand for an outcome's kind.
pub fn kind(report: &RunReport) -> &'static str {
    report.outcome.kind()
}
