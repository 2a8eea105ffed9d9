//! Guardrails: whether the host may act on a classified incident, and how.
//!
//! Threat model: a flapping service, a misclassified alert, a hallucinating
//! model or a bad plugin would, left alone, make the host act again and again,
//! on more and more of the fleet. Each guardrail bounds one of those failure
//! modes. They run in one fixed order ([`ORDER`]); the first that refuses
//! decides, and every check up to it is returned so the audit shows exactly
//! why. [`evaluate`] is a pure function of the configuration, the catalog
//! entry's rules and what the store observed, so every guardrail is tested as
//! a table and the decision can be replayed from the audit record.

mod window;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use window::{Millis, Window, WindowError, WindowKind, WindowSpec, now_ms};

use crate::policy::TargetPattern;
use crate::workload::Workload;

/// The guardrails, in the order they are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guardrail {
    /// Operators turned automation off, globally or for matching targets.
    KillSwitch,
    /// A maintenance window (hold) or exclusion window (refuse) is open.
    Window,
    /// The classification is not confident enough for this class.
    ConfidenceFloor,
    /// The catalog entry's mode: `auto`, `approve`, `notify` or `shadow`.
    Mode,
    /// Another remediation is in flight on the same target.
    OneAtATime,
    /// This incident already had its allowed number of runs.
    MaxAttempts,
    /// The same plugin acted on the same target too recently.
    Cooldown,
    /// The target had too many actions in the last hour.
    RateLimit,
    /// Too many actions across every target: auto-execution freezes.
    StormBreaker,
    /// Acting would touch too large a share of the namespace or fleet at once.
    BlastRadius,
}

/// The fixed evaluation order.
///
/// One-at-a-time comes right after the mode: a second alert for a target whose
/// remediation is still running is held quietly, before cooldown or rate
/// limits (which that very run started) would refuse it and page someone.
pub const ORDER: [Guardrail; 10] = [
    Guardrail::KillSwitch,
    Guardrail::Window,
    Guardrail::ConfidenceFloor,
    Guardrail::Mode,
    Guardrail::OneAtATime,
    Guardrail::MaxAttempts,
    Guardrail::Cooldown,
    Guardrail::RateLimit,
    Guardrail::StormBreaker,
    Guardrail::BlastRadius,
];

/// The guardrails a rollback after a failed verification meets, in [`ORDER`]:
/// what an operator (or the storm breaker) may have switched on since the run
/// began. The others judged the run itself (its confidence, mode, attempts,
/// cooldown, rate and blast radius), and the rollback only undoes that run.
pub const ROLLBACK_ORDER: [Guardrail; 3] = [
    Guardrail::KillSwitch,
    Guardrail::Window,
    Guardrail::StormBreaker,
];

impl fmt::Display for Guardrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Guardrail::KillSwitch => "kill-switch",
            Guardrail::Window => "window",
            Guardrail::ConfidenceFloor => "confidence-floor",
            Guardrail::Mode => "mode",
            Guardrail::MaxAttempts => "max-attempts",
            Guardrail::Cooldown => "cooldown",
            Guardrail::RateLimit => "rate-limit",
            Guardrail::StormBreaker => "storm-breaker",
            Guardrail::BlastRadius => "blast-radius",
            Guardrail::OneAtATime => "one-at-a-time",
        };
        f.write_str(name)
    }
}

/// What the host does for a catalog entry once every guardrail passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Run the plugin.
    Auto,
    /// Ask a human; run once approved.
    Approve,
    /// Only tell a human; never run.
    Notify,
    /// Run against a provider that changes nothing, and record what would have
    /// happened. The default: nothing mutates until an operator opts in.
    #[default]
    Shadow,
}

/// Global guardrail settings (`[guardrails]`).
///
/// ```toml
/// [guardrails]
/// storm = { max-actions = 20, window = "10m", freeze = "30m" }
/// blast-radius = { max-fraction = 0.25, min-allowed = 1 }
/// redelivery-window = "1m"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GuardrailConfig {
    /// The global storm breaker.
    #[serde(default)]
    pub storm: StormConfig,
    /// The blast-radius budget.
    #[serde(default)]
    pub blast_radius: BlastRadiusConfig,
    /// Maintenance and exclusion windows that are part of the configuration
    /// (more can be added at run time).
    #[serde(default)]
    pub windows: Vec<WindowSpec>,
    /// A delivery of an incident whose state changed less than this long ago
    /// is a duplicate, not a new decision: Alertmanager HA pairs deliver every
    /// notification twice, and the second must not be refused by the first's
    /// cooldown and page someone. Later deliveries (the alert still firing
    /// after a remediation) are decided again. Default `1m`; `0s` turns it off.
    #[serde(default = "default_redelivery_window", with = "crate::duration")]
    pub redelivery_window: Duration,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        GuardrailConfig {
            storm: StormConfig::default(),
            blast_radius: BlastRadiusConfig::default(),
            windows: Vec::new(),
            redelivery_window: default_redelivery_window(),
        }
    }
}

fn default_redelivery_window() -> Duration {
    Duration::from_secs(60)
}

/// Too many actions across the fleet in `window` freezes auto-execution for `freeze`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StormConfig {
    /// Actions (runs started, any target) allowed in the window, e.g. `20`.
    pub max_actions: u32,
    /// The sliding window, e.g. `10m`.
    #[serde(with = "crate::duration")]
    pub window: Duration,
    /// How long auto-execution stays frozen once tripped, e.g. `30m`.
    #[serde(with = "crate::duration")]
    pub freeze: Duration,
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            max_actions: 20,
            window: Duration::from_secs(600),
            freeze: Duration::from_secs(1800),
        }
    }
}

/// Never act on more than `max-fraction` of a namespace, or of the whole
/// fleet, at once (but always allow `min-allowed` workloads, so a namespace of
/// three can still heal one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BlastRadiusConfig {
    /// Share of workloads with a remediation in flight, e.g. `0.25`.
    pub max_fraction: f64,
    /// Workloads always allowed at once, e.g. `1`.
    pub min_allowed: u32,
}

impl Default for BlastRadiusConfig {
    fn default() -> Self {
        BlastRadiusConfig {
            max_fraction: 0.25,
            min_allowed: 1,
        }
    }
}

impl BlastRadiusConfig {
    /// How many workloads of a group of `size` may have a remediation in flight.
    pub fn allowed(&self, size: u32) -> u32 {
        let share = (f64::from(size) * self.max_fraction).floor() as u32;
        share.max(self.min_allowed)
    }
}

/// The per-class rules a catalog entry contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRules {
    /// Below this confidence the host does not act.
    pub confidence_floor: f32,
    /// What to do when everything passes.
    pub mode: Mode,
    /// Runs allowed per incident.
    pub max_attempts: u32,
    /// Quiet time per (target, plugin) after a run starts.
    pub cooldown: Duration,
    /// Runs allowed per target per hour.
    pub rate_limit_per_hour: u32,
}

/// Who turned automation off, and for what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSwitch {
    /// `None`: every target. Otherwise the targets it covers.
    pub scope: Option<TargetPattern>,
    /// Why, for the audit and the people paged.
    pub reason: String,
    /// Who set it.
    pub set_by: String,
    /// When.
    pub set_at: Millis,
}

/// How many workloads there are, as far as the provider knows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FleetSize {
    /// In the target's namespace.
    pub namespace: Option<u32>,
    /// In the whole fleet.
    pub total: Option<u32>,
    /// Why a count is missing, from the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_because: Option<String>,
}

/// What the store (and the provider) observed, as input to [`evaluate`].
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Kill switches in force.
    pub kill_switches: Vec<KillSwitch>,
    /// Windows (configured and added at run time).
    pub windows: Vec<Window>,
    /// Runs already started for this incident.
    pub attempts: u32,
    /// When this plugin last started on this target.
    pub last_run_at: Option<Millis>,
    /// Runs started on this target in the last hour.
    pub target_runs_last_hour: u32,
    /// Runs started on any target in the storm window.
    pub runs_in_storm_window: u32,
    /// Set while the storm breaker holds auto-execution frozen.
    pub storm_frozen_until: Option<Millis>,
    /// Targets with a remediation in flight.
    pub in_flight: Vec<Workload>,
    /// Workload counts for the blast-radius budget.
    pub fleet: FleetSize,
}

/// One guardrail's verdict, kept for the audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Which guardrail.
    pub guardrail: Guardrail,
    /// Whether it let the incident through.
    pub passed: bool,
    /// Why, with the numbers.
    pub detail: String,
}

/// What the host will do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Run the plugin.
    Execute,
    /// Run it against a provider that changes nothing.
    Shadow,
    /// Wait for a human to approve.
    AwaitApproval,
    /// Tell a human; the catalog never runs this class.
    Notify,
    /// Do nothing now, page nobody (a maintenance window, a run in flight).
    Hold {
        /// The guardrail that held.
        by: Guardrail,
        /// Why.
        reason: String,
    },
    /// Refuse and escalate to a human.
    Refuse {
        /// The guardrail that refused.
        by: Guardrail,
        /// Why.
        reason: String,
    },
}

/// A guardrail decision: the verdict and every check that led to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The outcome.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The checks, in [`ORDER`], up to the one that decided.
    pub checks: Vec<Check>,
    /// Set when this decision trips the storm breaker: freeze until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze_until: Option<Millis>,
}

/// What is being decided on.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The incident's target.
    pub target: &'a Workload,
    /// The plugin that would run.
    pub plugin: &'a str,
    /// The classification's confidence.
    pub confidence: f32,
    /// The catalog entry's rules.
    pub rules: &'a EntryRules,
    /// Whether the plugin holds any workload capability (scale, restart,
    /// rollback). One that only rotates logs cannot spend the workload budget.
    pub touches_workloads: bool,
    /// The time of the decision.
    pub now: Millis,
}

fn ago(now: Millis, then: Millis) -> String {
    let ms = (now - then).max(0) as u64;
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

/// One guardrail's result: pass with a detail, hold or refuse.
enum Step {
    Pass(String),
    Hold(String),
    Refuse(String),
}

/// Evaluates every guardrail in [`ORDER`] and decides.
pub fn evaluate(config: &GuardrailConfig, request: Request<'_>, seen: &Observed) -> Decision {
    evaluate_in(&ORDER, config, request, seen)
}

/// Decides whether the rollback of the run on `request.target` may go ahead,
/// by the [`ROLLBACK_ORDER`] guardrails: `Execute`, or the `Hold` or `Refuse`
/// that stops it. The rollback is not a new action against the storm budget
/// (the run it undoes was counted), so the breaker stops it only while a
/// freeze is in force; it never trips one.
pub fn evaluate_rollback(
    config: &GuardrailConfig,
    target: &Workload,
    now: Millis,
    seen: &Observed,
) -> Decision {
    let rules = EntryRules {
        confidence_floor: 0.0,
        mode: Mode::Auto,
        max_attempts: 1,
        cooldown: Duration::ZERO,
        rate_limit_per_hour: 1,
    };
    let request = Request {
        target,
        plugin: "rollback",
        confidence: 1.0,
        rules: &rules,
        touches_workloads: true,
        now,
    };
    let seen = Observed {
        runs_in_storm_window: 0,
        ..seen.clone()
    };
    evaluate_in(&ROLLBACK_ORDER, config, request, &seen)
}

fn evaluate_in(
    order: &[Guardrail],
    config: &GuardrailConfig,
    request: Request<'_>,
    seen: &Observed,
) -> Decision {
    let shadow = request.rules.mode == Mode::Shadow;
    let mut checks = Vec::new();
    let mut freeze_until = None;
    for &guardrail in order {
        let step = check(config, guardrail, request, seen, &mut freeze_until);
        let (passed, detail) = match &step {
            Step::Pass(d) => (true, d.clone()),
            Step::Hold(d) | Step::Refuse(d) => (false, d.clone()),
        };
        checks.push(Check {
            guardrail,
            passed,
            detail: detail.clone(),
        });
        let verdict = match step {
            Step::Pass(_) if guardrail == Guardrail::Mode && request.rules.mode == Mode::Notify => {
                Some(Verdict::Notify)
            }
            Step::Pass(_) => None,
            // In shadow mode nothing would mutate, so nobody is paged: the
            // refusal is recorded as what would have happened.
            Step::Refuse(reason) if shadow => Some(Verdict::Hold {
                by: guardrail,
                reason: format!("shadow: would have been refused: {reason}"),
            }),
            Step::Refuse(reason) => Some(Verdict::Refuse {
                by: guardrail,
                reason,
            }),
            Step::Hold(reason) => Some(Verdict::Hold {
                by: guardrail,
                reason,
            }),
        };
        if let Some(verdict) = verdict {
            if shadow {
                freeze_until = None;
            }
            return Decision {
                verdict,
                checks,
                freeze_until,
            };
        }
    }
    let verdict = match request.rules.mode {
        Mode::Auto => Verdict::Execute,
        Mode::Approve => Verdict::AwaitApproval,
        Mode::Shadow => Verdict::Shadow,
        Mode::Notify => unreachable!("notify decides at the mode guardrail"),
    };
    Decision {
        verdict,
        checks,
        freeze_until: None,
    }
}

fn check(
    config: &GuardrailConfig,
    guardrail: Guardrail,
    request: Request<'_>,
    seen: &Observed,
    freeze_until: &mut Option<Millis>,
) -> Step {
    let Request {
        target,
        plugin,
        confidence,
        rules,
        now,
        ..
    } = request;
    match guardrail {
        Guardrail::KillSwitch => {
            let hit = seen
                .kill_switches
                .iter()
                .find(|k| k.scope.as_ref().is_none_or(|p| p.matches(target)));
            match hit {
                Some(k) => Step::Refuse(format!(
                    "kill switch for {} set by {} {} ago: {}",
                    k.scope
                        .as_ref()
                        .map_or("every target".to_string(), |p| p.to_string()),
                    k.set_by,
                    ago(now, k.set_at),
                    k.reason
                )),
                None => Step::Pass(format!(
                    "{} kill switch(es) in force, none covers {target}",
                    seen.kill_switches.len()
                )),
            }
        }
        Guardrail::Window => {
            let open = seen
                .windows
                .iter()
                .filter(|w| w.covers(target) && w.is_open(now));
            let mut maintenance = None;
            for w in open {
                match w.kind() {
                    WindowKind::Exclusion => {
                        return Step::Refuse(format!(
                            "exclusion window {:?} is open for {target}",
                            w.name()
                        ));
                    }
                    WindowKind::Maintenance => maintenance = maintenance.or(Some(w.name())),
                }
            }
            match maintenance {
                Some(name) => {
                    Step::Hold(format!("maintenance window {name:?} is open for {target}"))
                }
                None => Step::Pass(format!("no window open for {target}")),
            }
        }
        Guardrail::ConfidenceFloor => {
            let line = format!(
                "confidence {confidence:.2}, floor {:.2}",
                rules.confidence_floor
            );
            if confidence.is_finite() && confidence >= rules.confidence_floor {
                Step::Pass(line)
            } else {
                Step::Refuse(format!("{line}: too uncertain to act"))
            }
        }
        Guardrail::Mode => Step::Pass(
            match rules.mode {
                Mode::Auto => "auto: run when every guardrail passes",
                Mode::Approve => "approve: a human must approve the run",
                Mode::Notify => "notify: tell a human, never run",
                Mode::Shadow => "shadow: run against a provider that changes nothing",
            }
            .to_string(),
        ),
        Guardrail::MaxAttempts => {
            let line = format!("{} of {} attempts used", seen.attempts, rules.max_attempts);
            if seen.attempts < rules.max_attempts {
                Step::Pass(line)
            } else {
                Step::Refuse(line)
            }
        }
        Guardrail::Cooldown => {
            let cooldown = rules.cooldown.as_millis() as i64;
            match seen.last_run_at {
                Some(at) if now - at < cooldown => Step::Refuse(format!(
                    "{plugin} started on {target} {} ago; cooldown {}",
                    ago(now, at),
                    humantime::format_duration(rules.cooldown)
                )),
                Some(at) => Step::Pass(format!(
                    "{plugin} last started on {target} {} ago",
                    ago(now, at)
                )),
                None => Step::Pass(format!("{plugin} has not run on {target}")),
            }
        }
        Guardrail::RateLimit => {
            let line = format!(
                "{} run(s) on {target} in the last hour, limit {}",
                seen.target_runs_last_hour, rules.rate_limit_per_hour
            );
            if seen.target_runs_last_hour < rules.rate_limit_per_hour {
                Step::Pass(line)
            } else {
                Step::Refuse(line)
            }
        }
        Guardrail::StormBreaker => {
            let storm = &config.storm;
            if let Some(until) = seen.storm_frozen_until.filter(|until| *until > now) {
                return Step::Refuse(format!(
                    "storm breaker: auto-execution frozen for another {}",
                    ago(until, now)
                ));
            }
            let line = format!(
                "{} run(s) fleet-wide in the last {}, limit {}",
                seen.runs_in_storm_window,
                humantime::format_duration(storm.window),
                storm.max_actions
            );
            if seen.runs_in_storm_window < storm.max_actions {
                Step::Pass(line)
            } else {
                *freeze_until = Some(now + storm.freeze.as_millis() as i64);
                Step::Refuse(format!(
                    "storm breaker tripped: {line}; auto-execution frozen for {}",
                    humantime::format_duration(storm.freeze)
                ))
            }
        }
        Guardrail::BlastRadius if !request.touches_workloads => {
            Step::Pass("the plugin has no workload capability".into())
        }
        Guardrail::BlastRadius => blast_radius(&config.blast_radius, target, seen),
        Guardrail::OneAtATime => {
            if seen.in_flight.contains(target) {
                Step::Hold(format!("a remediation is already in flight on {target}"))
            } else {
                Step::Pass(format!("nothing in flight on {target}"))
            }
        }
    }
}

fn blast_radius(config: &BlastRadiusConfig, target: &Workload, seen: &Observed) -> Step {
    let others: Vec<&Workload> = seen.in_flight.iter().filter(|w| *w != target).collect();
    let in_namespace = others
        .iter()
        .filter(|w| w.namespace() == target.namespace())
        .count() as u32;
    let groups = [
        (
            format!("namespace {}", target.namespace()),
            seen.fleet.namespace,
            in_namespace,
        ),
        (
            "the fleet".to_string(),
            seen.fleet.total,
            others.len() as u32,
        ),
    ];
    let mut details = Vec::new();
    for (group, size, busy) in groups {
        let Some(size) = size else {
            let because = seen
                .fleet
                .unknown_because
                .as_deref()
                .map(|why| format!(" ({why})"))
                .unwrap_or_default();
            return Step::Refuse(format!(
                "the size of {group} is unknown{because}, so the blast radius cannot be bounded"
            ));
        };
        let allowed = config.allowed(size);
        let line = format!(
            "{} of {size} workload(s) in {group} would be in flight, budget {allowed}",
            busy + 1
        );
        if busy + 1 > allowed {
            return Step::Refuse(line);
        }
        details.push(line);
    }
    Step::Pass(details.join("; "))
}

#[cfg(test)]
mod tests;
