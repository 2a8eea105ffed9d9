//! One table per guardrail: allowed, refused with the right reason, and the boundaries.

use std::time::Duration;

use rstest::rstest;

use super::*;

const NOW: Millis = 1_795_000_000_000;
const MINUTE: Millis = 60_000;

fn target() -> Workload {
    "deployment/prod/checkout".parse().unwrap()
}

fn rules(mode: Mode) -> EntryRules {
    EntryRules {
        confidence_floor: 0.8,
        mode,
        max_attempts: 2,
        cooldown: Duration::from_secs(600),
        rate_limit_per_hour: 3,
    }
}

/// A world where every guardrail passes.
fn calm() -> Observed {
    Observed {
        fleet: FleetSize {
            namespace: Some(8),
            total: Some(40),
            unknown_because: None,
        },
        ..Observed::default()
    }
}

fn decide_with(seen: &Observed, rules: &EntryRules, confidence: f32) -> Decision {
    let t = target();
    let request = Request {
        target: &t,
        plugin: "restart-on-oom",
        confidence,
        rules,
        now: NOW,
        touches_workloads: true,
    };
    evaluate(&GuardrailConfig::default(), request, seen)
}

fn decide(seen: &Observed) -> Decision {
    decide_with(seen, &rules(Mode::Auto), 0.9)
}

fn refused_by(decision: &Decision) -> Option<(Guardrail, &str)> {
    match &decision.verdict {
        Verdict::Refuse { by, reason } => Some((*by, reason)),
        _ => None,
    }
}

#[test]
fn a_calm_world_executes_after_every_check_in_order() {
    let decision = decide(&calm());
    assert_eq!(decision.verdict, Verdict::Execute);
    let order: Vec<Guardrail> = decision.checks.iter().map(|c| c.guardrail).collect();
    assert_eq!(order, ORDER);
    assert!(decision.checks.iter().all(|c| c.passed));
}

fn switch(scope: Option<&str>) -> KillSwitch {
    KillSwitch {
        scope: scope.map(|s| s.parse().unwrap()),
        reason: "incident review".into(),
        set_by: "alice".into(),
        set_at: NOW - 5 * MINUTE,
    }
}

#[rstest]
#[case::none(vec![], None)]
#[case::global(vec![switch(None)], Some("kill switch for every target set by alice 5m ago: incident review"))]
#[case::covering(vec![switch(Some("deployment/prod/*"))], Some("kill switch for deployment/prod/* set by alice 5m ago: incident review"))]
#[case::elsewhere(vec![switch(Some("deployment/staging/*"))], None)]
fn kill_switch(#[case] switches: Vec<KillSwitch>, #[case] refusal: Option<&str>) {
    let seen = Observed {
        kill_switches: switches,
        ..calm()
    };
    let decision = decide(&seen);
    match refusal {
        Some(reason) => assert_eq!(refused_by(&decision), Some((Guardrail::KillSwitch, reason))),
        None => assert_eq!(decision.verdict, Verdict::Execute),
    }
}

fn window(kind: &str, targets: &str, from: &str, until: &str) -> Window {
    let spec: WindowSpec = toml::from_str(&format!(
        "name = \"w\"\nkind = \"{kind}\"\ntargets = [\"{targets}\"]\nfrom = \"{from}\"\nuntil = \"{until}\""
    ))
    .unwrap();
    Window::try_from(spec).unwrap()
}

fn iso(ms: Millis) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms as u64))
        .to_string()
}

#[rstest]
#[case::maintenance_open("maintenance", "deployment/prod/*", -MINUTE, MINUTE, "hold")]
#[case::exclusion_open("exclusion", "*/*/*", -MINUTE, MINUTE, "refuse")]
#[case::ends_exactly_now("maintenance", "deployment/prod/*", -MINUTE, 0, "execute")]
#[case::starts_exactly_now("exclusion", "deployment/prod/*", 0, MINUTE, "refuse")]
#[case::other_target("exclusion", "deployment/staging/*", -MINUTE, MINUTE, "execute")]
fn windows(
    #[case] kind: &str,
    #[case] targets: &str,
    #[case] from: Millis,
    #[case] until: Millis,
    #[case] expected: &str,
) {
    // Second precision in the window, so round NOW to the second.
    let seen = Observed {
        windows: vec![window(kind, targets, &iso(NOW + from), &iso(NOW + until))],
        ..calm()
    };
    let decision = decide(&seen);
    let actual = match &decision.verdict {
        Verdict::Hold { by, reason } => {
            assert_eq!(*by, Guardrail::Window);
            assert!(
                reason.starts_with("maintenance window \"w\" is open"),
                "{reason}"
            );
            "hold"
        }
        Verdict::Refuse { by, reason } => {
            assert_eq!(*by, Guardrail::Window);
            assert!(
                reason.starts_with("exclusion window \"w\" is open"),
                "{reason}"
            );
            "refuse"
        }
        Verdict::Execute => "execute",
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(actual, expected);
}

#[rstest]
#[case::above(0.95, true)]
#[case::exactly_the_floor(0.8, true)]
#[case::just_below(0.79, false)]
#[case::zero(0.0, false)]
#[case::not_a_number(f32::NAN, false)]
fn confidence_floor(#[case] confidence: f32, #[case] allowed: bool) {
    let decision = decide_with(&calm(), &rules(Mode::Auto), confidence);
    if allowed {
        assert_eq!(decision.verdict, Verdict::Execute);
    } else {
        let (by, reason) = refused_by(&decision).expect("refused");
        assert_eq!(by, Guardrail::ConfidenceFloor);
        assert!(
            reason.ends_with("floor 0.80: too uncertain to act"),
            "{reason}"
        );
    }
}

#[rstest]
#[case::auto(Mode::Auto, Verdict::Execute)]
#[case::approve(Mode::Approve, Verdict::AwaitApproval)]
#[case::notify(Mode::Notify, Verdict::Notify)]
#[case::shadow(Mode::Shadow, Verdict::Shadow)]
fn modes(#[case] mode: Mode, #[case] verdict: Verdict) {
    let decision = decide_with(&calm(), &rules(mode), 0.9);
    assert_eq!(decision.verdict, verdict);
    if mode == Mode::Notify {
        assert_eq!(
            decision.checks.last().unwrap().guardrail,
            Guardrail::Mode,
            "notify stops at the mode guardrail"
        );
    }
}

#[test]
fn shadow_mode_records_a_refusal_without_paging_or_freezing() {
    let seen = Observed {
        runs_in_storm_window: 20,
        ..calm()
    };
    let decision = decide_with(&seen, &rules(Mode::Shadow), 0.9);
    match &decision.verdict {
        Verdict::Hold { by, reason } => {
            assert_eq!(*by, Guardrail::StormBreaker);
            assert!(reason.starts_with("shadow: would have been refused: storm breaker tripped"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(decision.freeze_until, None);
}

#[rstest]
#[case::first(0, true)]
#[case::last_allowed(1, true)]
#[case::used_up(2, false)]
fn max_attempts(#[case] attempts: u32, #[case] allowed: bool) {
    let seen = Observed { attempts, ..calm() };
    let decision = decide(&seen);
    if allowed {
        assert_eq!(decision.verdict, Verdict::Execute);
    } else {
        assert_eq!(
            refused_by(&decision),
            Some((Guardrail::MaxAttempts, "2 of 2 attempts used"))
        );
    }
}

#[rstest]
#[case::never(None, true)]
#[case::long_ago(Some(NOW - 60 * MINUTE), true)]
#[case::exactly_the_cooldown(Some(NOW - 10 * MINUTE), true)]
#[case::just_inside(Some(NOW - 10 * MINUTE + 1000), false)]
#[case::just_now(Some(NOW - 2 * MINUTE), false)]
fn cooldown(#[case] last: Option<Millis>, #[case] allowed: bool) {
    let seen = Observed {
        last_run_at: last,
        ..calm()
    };
    let decision = decide(&seen);
    if allowed {
        assert_eq!(decision.verdict, Verdict::Execute);
    } else {
        let (by, reason) = refused_by(&decision).expect("refused");
        assert_eq!(by, Guardrail::Cooldown);
        assert!(
            reason.starts_with("restart-on-oom started on deployment/prod/checkout")
                && reason.ends_with("cooldown 10m"),
            "{reason}"
        );
    }
}

#[rstest]
#[case::none(0, true)]
#[case::one_left(2, true)]
#[case::at_the_limit(3, false)]
#[case::beyond(9, false)]
fn rate_limit(#[case] runs: u32, #[case] allowed: bool) {
    let seen = Observed {
        target_runs_last_hour: runs,
        ..calm()
    };
    let decision = decide(&seen);
    if allowed {
        assert_eq!(decision.verdict, Verdict::Execute);
    } else {
        assert_eq!(
            refused_by(&decision),
            Some((
                Guardrail::RateLimit,
                format!("{runs} run(s) on deployment/prod/checkout in the last hour, limit 3")
                    .as_str()
            ))
        );
    }
}

#[rstest]
#[case::quiet(0, None, true, false)]
#[case::one_below(19, None, true, false)]
#[case::trips_at_the_limit(20, None, false, true)]
#[case::frozen(0, Some(NOW + 10 * MINUTE), false, false)]
#[case::freeze_expired(0, Some(NOW), true, false)]
fn storm_breaker(
    #[case] runs: u32,
    #[case] frozen_until: Option<Millis>,
    #[case] allowed: bool,
    #[case] trips: bool,
) {
    let seen = Observed {
        runs_in_storm_window: runs,
        storm_frozen_until: frozen_until,
        ..calm()
    };
    let decision = decide(&seen);
    assert_eq!(
        decision.verdict == Verdict::Execute,
        allowed,
        "{decision:?}"
    );
    if !allowed {
        let (by, reason) = refused_by(&decision).expect("refused");
        assert_eq!(by, Guardrail::StormBreaker);
        assert!(reason.starts_with("storm breaker"), "{reason}");
    }
    assert_eq!(decision.freeze_until, trips.then_some(NOW + 30 * MINUTE));
}

fn busy(targets: &[&str]) -> Vec<Workload> {
    targets.iter().map(|t| t.parse().unwrap()).collect()
}

#[rstest]
// 8 in the namespace: budget 2 (25%). One other in flight: 2 of 2, allowed.
#[case::within(busy(&["deployment/prod/cart"]), Some(8), Some(40), None)]
// Two others in flight: 3 of 2.
#[case::namespace_full(busy(&["deployment/prod/cart", "deployment/prod/web"]), Some(8), Some(40), Some("3 of 8 workload(s) in namespace prod would be in flight, budget 2"))]
// Others in other namespaces count against the fleet: 40 → budget 10.
#[case::fleet_full(busy(&["deployment/a/x", "deployment/b/x", "deployment/c/x", "deployment/d/x", "deployment/e/x", "deployment/f/x", "deployment/g/x", "deployment/h/x", "deployment/i/x", "deployment/j/x"]), Some(8), Some(40), Some("11 of 40 workload(s) in the fleet would be in flight, budget 10"))]
// A namespace of three still heals one at a time (min-allowed).
#[case::small_namespace(busy(&[]), Some(3), Some(3), None)]
#[case::small_namespace_busy(busy(&["deployment/prod/cart"]), Some(3), Some(40), Some("2 of 3 workload(s) in namespace prod would be in flight, budget 1"))]
#[case::unknown_size(busy(&[]), None, Some(40), Some("the size of namespace prod is unknown, so the blast radius cannot be bounded"))]
fn blast_radius(
    #[case] in_flight: Vec<Workload>,
    #[case] namespace: Option<u32>,
    #[case] total: Option<u32>,
    #[case] refusal: Option<&str>,
) {
    let seen = Observed {
        in_flight,
        fleet: FleetSize {
            namespace,
            total,
            unknown_because: None,
        },
        ..calm()
    };
    let decision = decide(&seen);
    match refusal {
        Some(reason) => assert_eq!(
            refused_by(&decision),
            Some((Guardrail::BlastRadius, reason))
        ),
        None => assert_eq!(decision.verdict, Verdict::Execute),
    }
}

#[rstest]
#[case::free(busy(&["deployment/prod/cart"]), true)]
#[case::same_target(busy(&["deployment/prod/checkout"]), false)]
fn one_at_a_time(#[case] in_flight: Vec<Workload>, #[case] allowed: bool) {
    let seen = Observed {
        in_flight,
        ..calm()
    };
    let decision = decide(&seen);
    if allowed {
        assert_eq!(decision.verdict, Verdict::Execute);
    } else {
        assert_eq!(
            decision.verdict,
            Verdict::Hold {
                by: Guardrail::OneAtATime,
                reason: "a remediation is already in flight on deployment/prod/checkout".into()
            }
        );
    }
}

#[test]
fn the_first_refusal_in_order_decides() {
    // Both a kill switch and a used-up attempt budget: the kill switch comes first.
    let seen = Observed {
        kill_switches: vec![switch(None)],
        attempts: 5,
        ..calm()
    };
    let decision = decide(&seen);
    assert_eq!(refused_by(&decision).unwrap().0, Guardrail::KillSwitch);
    assert_eq!(decision.checks.len(), 1);
}

#[test]
fn blast_radius_budget_rounds_down_but_never_below_the_minimum() {
    let config = BlastRadiusConfig::default();
    assert_eq!(config.allowed(0), 1);
    assert_eq!(config.allowed(7), 1);
    assert_eq!(config.allowed(8), 2);
    assert_eq!(config.allowed(100), 25);
}

#[test]
fn a_plugin_without_workload_capabilities_does_not_spend_the_blast_radius() {
    let t = target();
    let rules = rules(Mode::Auto);
    let seen = Observed {
        fleet: FleetSize::default(),
        ..calm()
    };
    let request = Request {
        target: &t,
        plugin: "rotate-full-disk",
        confidence: 0.9,
        rules: &rules,
        now: NOW,
        touches_workloads: false,
    };
    let decision = evaluate(&GuardrailConfig::default(), request, &seen);
    assert_eq!(decision.verdict, Verdict::Execute);
    let check = &decision.checks[9];
    assert_eq!(check.guardrail, Guardrail::BlastRadius);
    assert_eq!(check.detail, "the plugin has no workload capability");
}

/// The rollback after a failed verification meets only what may have been
/// switched on since the run: kill switch, windows, a storm freeze.
#[rstest]
#[case::calm(Observed::default(), "execute")]
#[case::kill_switch(Observed { kill_switches: vec![switch(None)], ..Observed::default() }, "refuse")]
#[case::frozen(Observed { storm_frozen_until: Some(NOW + MINUTE), ..Observed::default() }, "refuse")]
#[case::freeze_over(Observed { storm_frozen_until: Some(NOW - MINUTE), ..Observed::default() }, "execute")]
#[case::storm_budget_spent(Observed { runs_in_storm_window: 1_000, ..Observed::default() }, "execute")]
#[case::run_judgements_do_not_apply(Observed {
    attempts: 99,
    last_run_at: Some(NOW),
    target_runs_last_hour: 99,
    in_flight: vec![target()],
    fleet: FleetSize::default(),
    ..Observed::default()
}, "execute")]
fn rollbacks(#[case] seen: Observed, #[case] expected: &str) {
    let decision = evaluate_rollback(&GuardrailConfig::default(), &target(), NOW, &seen);
    let verdict = match &decision.verdict {
        Verdict::Execute => "execute",
        Verdict::Hold { .. } => "hold",
        Verdict::Refuse { .. } => "refuse",
        other => panic!("{other:?}"),
    };
    assert_eq!(verdict, expected, "{decision:#?}");
    assert!(
        decision.freeze_until.is_none(),
        "a rollback never trips the breaker"
    );
    let checked: Vec<Guardrail> = decision.checks.iter().map(|c| c.guardrail).collect();
    assert!(ROLLBACK_ORDER.starts_with(&checked), "{checked:?}");
    if expected == "execute" {
        assert_eq!(checked, ROLLBACK_ORDER);
    }
}

#[test]
fn a_maintenance_window_holds_a_rollback() {
    let seen = Observed {
        windows: vec![window(
            "maintenance",
            "deployment/prod/*",
            &iso(NOW - MINUTE),
            &iso(NOW + MINUTE),
        )],
        ..Observed::default()
    };
    let decision = evaluate_rollback(&GuardrailConfig::default(), &target(), NOW, &seen);
    assert!(
        matches!(&decision.verdict, Verdict::Hold { by: Guardrail::Window, reason } if reason.contains("maintenance window")),
        "{decision:#?}"
    );
}
