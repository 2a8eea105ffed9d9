use rstest::rstest;

use super::*;

fn declared() -> CapabilityScopes {
    toml::from_str(
        r#"
        [scale]
        targets = ["deployment/prod/*"]
        min-replicas = 2
        max-replicas = 10
        max-step-up = 3
        [restart]
        targets = ["deployment/*/*"]
        [log-rotation]
        log-sets = ["app", "nginx"]
        "#,
    )
    .unwrap()
}

fn w(s: &str) -> Workload {
    s.parse().unwrap()
}

fn loose_policy() -> Policy {
    Policy::from_toml(
        r#"
        confine-to-incident-target = false
        [grant.scale]
        targets = ["*/prod/*"]
        max-replicas = 6
        max-step-down = 1
        [grant.restart]
        targets = ["deployment/prod/*"]
        [grant.rollback]
        targets = ["*/*/*"]
        [grant.log-rotation]
        log-sets = ["app"]
        "#,
        "test",
    )
    .unwrap()
}

#[test]
fn grants_only_what_is_declared_and_granted() {
    let grants = grant(
        &declared(),
        None,
        &loose_policy(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    // rollback is granted by policy but not declared; nothing undeclared is ever granted.
    assert_eq!(
        grants.capabilities().into_iter().collect::<Vec<_>>(),
        vec![
            Capability::Scale,
            Capability::Restart,
            Capability::LogRotation
        ]
    );
}

#[rstest]
#[case("deployment/prod/checkout", 3, 5, Ok(()))]
#[case("deployment/prod/checkout", 3, 6, Ok(()))]
#[case(
    "deployment/prod/checkout",
    3,
    7,
    Err("7 replicas for deployment/prod/checkout is above the granted maximum of 6")
)]
#[case(
    "deployment/prod/checkout",
    3,
    1,
    Err("1 replicas for deployment/prod/checkout is below the granted minimum of 2")
)]
#[case(
    "deployment/prod/checkout",
    4,
    2,
    Err("scaling deployment/prod/checkout from 4 to 2 is a step of 2; at most 1 down is granted")
)]
#[case(
    "deployment/prod/checkout",
    2,
    6,
    Err("scaling deployment/prod/checkout from 2 to 6 is a step of 4; at most 3 up is granted")
)]
#[case(
    "statefulset/prod/db",
    3,
    4,
    Err(
        "statefulset/prod/db is outside the scale grant (allowed: deployment/prod/*, and */prod/*)"
    )
)]
fn scale_checks_scope_bounds_and_steps(
    #[case] target: &str,
    #[case] current: u32,
    #[case] desired: u32,
    #[case] expected: Result<(), &str>,
) {
    let grants = grant(
        &declared(),
        None,
        &loose_policy(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    let got = grants
        .check_scale(&w(target), current, desired)
        .map_err(|d| d.0);
    assert_eq!(got, expected.map_err(str::to_string));
}

#[test]
fn confines_workload_capabilities_to_the_incident_target_by_default() {
    let grants = grant(
        &declared(),
        None,
        &Policy::as_declared(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    assert!(
        grants
            .check_target(Capability::Restart, &w("deployment/prod/checkout"))
            .is_ok()
    );
    let denial = grants
        .check_target(Capability::Restart, &w("deployment/prod/payments"))
        .unwrap_err();
    assert_eq!(
        denial.0,
        "deployment/prod/payments is outside the restart grant (allowed: deployment/*/*, and deployment/prod/checkout)"
    );
    assert!(grants.may_observe(&w("deployment/prod/payments")).is_err());
    assert!(grants.may_observe(&w("deployment/prod/checkout")).is_ok());
}

#[test]
fn log_sets_are_intersected_and_unknown_sets_denied() {
    let grants = grant(
        &declared(),
        None,
        &loose_policy(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    assert!(grants.check_log_set("app").is_ok());
    assert_eq!(
        grants.check_log_set("nginx").unwrap_err().0,
        "log set \"nginx\" is not granted (allowed: app or nginx, and app)"
    );
}

#[test]
fn ungranted_capability_is_denied_even_if_called() {
    let grants = grant(
        &declared(),
        None,
        &loose_policy(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    assert_eq!(
        grants
            .check_target(Capability::Rollback, &w("deployment/prod/checkout"))
            .unwrap_err()
            .0,
        "capability rollback is not granted"
    );
}

#[test]
fn disjoint_replica_ranges_are_an_error_not_a_silent_grant() {
    let policy = Policy::from_toml(
        "[grant.scale]\ntargets = [\"*/*/*\"]\nmin-replicas = 20\nmax-replicas = 30\n",
        "test",
    )
    .unwrap();
    let err = grant(&declared(), None, &policy, &w("deployment/prod/checkout")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "scale: the manifest and the policy leave no replica count allowed (min 20 is above max 10)"
    );
}

#[rstest]
#[case(
    "[grant.scale]\ntargets = []\nmax-replicas = 3\n",
    "capability scale lists no targets"
)]
#[case(
    "[grant.scale]\ntargets = [\"*/*/*\"]\nmin-replicas = 4\nmax-replicas = 3\n",
    "min-replicas 4 is above max-replicas 3"
)]
#[case("[grant.restart]\ntargets = [\"pods/x/y\"]\n", "names an unknown kind")]
#[case(
    "[grant.teleport]\ntargets = [\"*/*/*\"]\n",
    "unknown field `teleport`"
)]
#[case("confine = false\n", "unknown field `confine`")]
fn policy_files_are_validated_with_precise_errors(#[case] text: &str, #[case] message: &str) {
    let err = Policy::from_toml(text, "grants.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains(message), "{err}");
    assert!(err.starts_with("grants file grants.toml"), "{err}");
}

#[test]
fn a_policy_file_without_grants_grants_nothing() {
    let policy = Policy::from_toml("confine-to-incident-target = true\n", "empty.toml").unwrap();
    let grants = grant(&declared(), None, &policy, &w("deployment/prod/checkout")).unwrap();
    assert!(grants.capabilities().is_empty());
    assert_eq!(grants.withheld_by(Capability::Scale), Some("policy"));
}

#[test]
fn the_ai_agent_tier_caps_steps_and_forbids_rollback_whatever_the_policy() {
    let tiers = TierPolicy::embedded_default();
    let mut declared = declared();
    declared.rollback = Some(TargetScope {
        targets: vec!["*/*/*".parse().unwrap()],
    });
    let tier = Some((Tier::AiAgent, tiers.caps(Tier::AiAgent)));
    let grants = grant(
        &declared,
        tier,
        &loose_policy(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    assert!(!grants.capabilities().contains(&Capability::Rollback));
    assert_eq!(
        grants.withheld_by(Capability::Rollback),
        Some("the ai-agent tier")
    );
    assert_eq!(
        grants
            .check_scale(&w("deployment/prod/checkout"), 3, 6)
            .unwrap_err()
            .0,
        "scaling deployment/prod/checkout from 3 to 6 is a step of 3; at most 2 up is granted"
    );
    // The loose policy opts out of confinement; the ai-agent tier does not let it.
    assert!(
        grants
            .check_target(Capability::Restart, &w("deployment/prod/payments"))
            .is_err()
    );
    // log sets: the tier allows any name ("*"), the policy only "app".
    assert!(grants.check_log_set("app").is_ok());
}

#[test]
fn the_publisher_tier_adds_no_cap_by_default() {
    let tiers = TierPolicy::embedded_default();
    let tier = Some((Tier::Publisher, tiers.caps(Tier::Publisher)));
    let with = grant(
        &declared(),
        tier,
        &loose_policy(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    let without = grant(
        &declared(),
        None,
        &loose_policy(),
        &w("deployment/prod/checkout"),
    )
    .unwrap();
    assert_eq!(with, without);
}
