//! Verification: did the remediation work?
//!
//! A plugin that completed has only done what it said; whether the service
//! recovered is a separate question, asked after every live action. A catalog
//! entry names the evidence ([`VerificationSpec`]): an instant PromQL query
//! whose every series must satisfy an [`Expectation`], or the triggering alert
//! resolving. [`verify`] polls that evidence through a window and stops as soon
//! as it holds; [`judge_once`] evaluates it once, without waiting, so shadow
//! and dry runs can record how a live run *would* have been judged.
//!
//! A check that errors (Prometheus down, a timeout) is recorded and retried,
//! because monitoring hiccups during an incident are common; a verification
//! fails only when the window ends without the condition holding, or when
//! Prometheus rejects the query itself, which no retry can fix.

mod error;
mod judge;
mod prometheus;
mod spec;

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::time::Instant;

pub use error::VerifyError;
pub use judge::{Judgement, Sample, judge};
pub use prometheus::{MAX_RESPONSE_BYTES, MAX_TIMEOUT, Prometheus, PrometheusConfig};
pub use spec::{
    Comparison, Expectation, MAX_QUERY_BYTES, MAX_WINDOW, OnEmpty, VerificationSpec, format_value,
};

/// How many observations a [`Verification`] keeps: the most recent ones, which
/// show how the condition approached (or did not approach) its threshold.
pub const MAX_OBSERVATIONS: usize = 20;
/// How long one look-up of an alert's state may take before it counts as an error.
pub const RESOLUTION_TIMEOUT: Duration = Duration::from_secs(5);

/// `judged` of a verification that waited for the condition after a live action.
pub const LIVE: &str = "live";
/// `judged` of a one-off evaluation for a shadow or dry run.
pub const WOULD_HAVE: &str = "would-have";

/// Where the state of an incident's alert comes from; the state store
/// implements it, and tests fake it.
#[async_trait]
pub trait ResolutionSource: Send + Sync {
    /// Whether the alert behind `incident` has resolved.
    async fn resolved(&self, incident: &str) -> bool;
}

/// The outcome of verifying one remediation, as recorded in the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Whether the condition held.
    pub passed: bool,
    /// Whether any check could judge the condition. A failed, inconclusive
    /// verification (Prometheus unreachable, every query errored) is escalated
    /// without rolling back: nothing says the remediation did harm.
    pub conclusive: bool,
    /// [`LIVE`] after a live action, [`WOULD_HAVE`] for shadow and dry runs.
    pub judged: &'static str,
    /// How many checks ran.
    pub checks: u32,
    /// How long verification took, from start to verdict.
    pub elapsed_ms: u64,
    /// Why it passed or failed, in one line.
    pub reason: String,
    /// The last [`MAX_OBSERVATIONS`] checks, oldest first.
    pub observations: Vec<Observation>,
}

/// One check within a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// When the check finished, from the start of verification.
    pub after_ms: u64,
    /// Whether the condition held.
    pub passed: bool,
    /// What was seen, or the error that prevented seeing it.
    pub detail: String,
}

/// Polls the condition every `interval` until it holds (passed) or the window
/// ends (failed). An erroring check is recorded and retried; the reason says
/// when every check errored. A PromQL spec without a Prometheus, or an invalid
/// spec, fails at once with no check.
pub async fn verify(
    spec: &VerificationSpec,
    prometheus: Option<&Prometheus>,
    resolution: &dyn ResolutionSource,
    incident: &str,
) -> Verification {
    let mut run = Recorder::new(LIVE);
    if let Err(e) = precheck(spec, prometheus) {
        return run.finish(false, e.to_string());
    }
    let (window, interval) = spec.timing();
    let deadline = run.start + window;
    let mut due = run.start;
    loop {
        let outcome = check(spec, prometheus, resolution, incident).await;
        let permanent = outcome.as_ref().is_err_and(VerifyError::is_permanent);
        run.record(&outcome);
        match outcome {
            Ok(judgement) if judgement.passed => {
                let reason = format!(
                    "passed on check {} after {}: {}",
                    run.checks,
                    humantime::format_duration(millis(run.start.elapsed())),
                    judgement.detail
                );
                return run.finish(true, reason);
            }
            Err(e) if permanent => {
                let reason = format!(
                    "every check errored ({}); an invalid query is not retried: {e}",
                    plural(run.checks, "check")
                );
                return run.finish(false, reason);
            }
            _ => {}
        }
        due = (due + interval).max(Instant::now());
        if due > deadline {
            break;
        }
        tokio::time::sleep_until(due).await;
    }
    let window = humantime::format_duration(window);
    let checks = plural(run.checks, "check");
    let reason = match (&run.last_detail, &run.last_error) {
        (None, Some(e)) => format!("every check errored ({checks} in {window}); last error: {e}"),
        (Some(detail), _) if run.errors > 0 => format!(
            "not met within {window} ({checks}, {} errored); last: {detail}",
            run.errors
        ),
        (Some(detail), _) => format!("not met within {window} ({checks}); last: {detail}"),
        (None, None) => format!("not met within {window} ({checks})"),
    };
    run.finish(false, reason)
}

/// Evaluates the condition once, now, without waiting: how a live run would
/// have been judged, for shadow and dry runs. The alert of a shadow run has
/// usually not resolved yet, and the verdict says so rather than guessing.
pub async fn judge_once(
    spec: &VerificationSpec,
    prometheus: Option<&Prometheus>,
    resolution: &dyn ResolutionSource,
    incident: &str,
) -> Verification {
    let mut run = Recorder::new(WOULD_HAVE);
    if let Err(e) = precheck(spec, prometheus) {
        return run.finish(false, e.to_string());
    }
    let outcome = check(spec, prometheus, resolution, incident).await;
    run.record(&outcome);
    match outcome {
        Ok(j) if j.passed => run.finish(true, format!("would have passed: {}", j.detail)),
        Ok(j) => run.finish(false, format!("would have failed: {}", j.detail)),
        Err(e) => run.finish(false, format!("could not be judged: {e}")),
    }
}

fn precheck(spec: &VerificationSpec, prometheus: Option<&Prometheus>) -> Result<(), VerifyError> {
    spec.validate()?;
    if matches!(spec, VerificationSpec::Promql { .. }) && prometheus.is_none() {
        return Err(VerifyError::NoPrometheus);
    }
    Ok(())
}

async fn check(
    spec: &VerificationSpec,
    prometheus: Option<&Prometheus>,
    resolution: &dyn ResolutionSource,
    incident: &str,
) -> Result<Judgement, VerifyError> {
    match spec {
        VerificationSpec::Promql {
            query,
            expect,
            on_empty,
            ..
        } => {
            let prometheus = prometheus.ok_or(VerifyError::NoPrometheus)?;
            let samples = prometheus.query(query).await?;
            Ok(judge(expect, *on_empty, &samples))
        }
        VerificationSpec::AlertResolves { .. } => {
            let resolved = tokio::time::timeout(RESOLUTION_TIMEOUT, resolution.resolved(incident))
                .await
                .map_err(|_| VerifyError::ResolutionTimeout(RESOLUTION_TIMEOUT))?;
            Ok(Judgement {
                passed: resolved,
                detail: if resolved {
                    "the alert has resolved"
                } else {
                    "the alert is still firing"
                }
                .to_string(),
            })
        }
    }
}

/// Accumulates checks into a [`Verification`].
struct Recorder {
    judged: &'static str,
    start: Instant,
    checks: u32,
    errors: u32,
    last_detail: Option<String>,
    last_error: Option<String>,
    observations: VecDeque<Observation>,
}

impl Recorder {
    fn new(judged: &'static str) -> Self {
        Recorder {
            judged,
            start: Instant::now(),
            checks: 0,
            errors: 0,
            last_detail: None,
            last_error: None,
            observations: VecDeque::with_capacity(MAX_OBSERVATIONS),
        }
    }

    fn record(&mut self, outcome: &Result<Judgement, VerifyError>) {
        self.checks += 1;
        let (passed, detail) = match outcome {
            Ok(judgement) => {
                self.last_detail = Some(judgement.detail.clone());
                (judgement.passed, judgement.detail.clone())
            }
            Err(e) => {
                self.errors += 1;
                self.last_error = Some(e.to_string());
                (false, format!("error: {e}"))
            }
        };
        if self.observations.len() == MAX_OBSERVATIONS {
            self.observations.pop_front();
        }
        self.observations.push_back(Observation {
            after_ms: elapsed_ms(self.start),
            passed,
            detail,
        });
    }

    fn finish(self, passed: bool, reason: String) -> Verification {
        Verification {
            passed,
            // Conclusive once any check saw the world: a failure with no judgement
            // at all (every check errored, or none could run) says nothing about
            // whether the remediation worked.
            conclusive: passed || self.last_detail.is_some(),
            judged: self.judged,
            checks: self.checks,
            elapsed_ms: elapsed_ms(self.start),
            reason,
            observations: self.observations.into(),
        }
    }
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// `duration` truncated to whole milliseconds, for readable reasons.
fn millis(duration: Duration) -> Duration {
    Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

fn plural(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod poll_tests;
#[cfg(test)]
mod query_tests;
#[cfg(test)]
mod tests;
