//! Expectations parse precisely, judging is exact at the threshold, and specs
//! are read from TOML and bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use rstest::rstest;
use serde::Deserialize;

use super::*;

fn expect(text: &str) -> Expectation {
    text.parse().unwrap()
}

fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value,
    }
}

#[rstest]
#[case("< 0.05", Comparison::Lt, 0.05)]
#[case("<= 1", Comparison::Le, 1.0)]
#[case("== 0", Comparison::Eq, 0.0)]
#[case("!= 0", Comparison::Ne, 0.0)]
#[case(">= 1", Comparison::Ge, 1.0)]
#[case("> -2.5", Comparison::Gt, -2.5)]
#[case("<0.05", Comparison::Lt, 0.05)]
#[case("  >=  1e3 ", Comparison::Ge, 1000.0)]
fn parses_an_operator_then_a_number(
    #[case] text: &str,
    #[case] op: Comparison,
    #[case] value: f64,
) {
    assert_eq!(expect(text), Expectation { op, value });
}

const GENERIC: &str = "expected an operator (<, <=, ==, !=, >=, >) then a number";

#[rstest]
#[case("", GENERIC)]
#[case("<< 1", GENERIC)]
#[case("= 1", GENERIC)]
#[case("=< 1", GENERIC)]
#[case("=== 1", GENERIC)]
#[case("0.05", GENERIC)]
#[case("less than 1", GENERIC)]
#[case("<", "expected a number after \"<\"")]
#[case(">=  ", "expected a number after \">=\"")]
#[case("< abc", "\"abc\" is not a number")]
#[case("< 1 2", "\"1 2\" is not a number")]
#[case("< 5%", "\"5%\" is not a number")]
#[case("== NaN", "the threshold NaN is not a finite number")]
#[case("> +Inf", "the threshold +Inf is not a finite number")]
fn refuses_malformed_expectations_naming_the_input(#[case] text: &str, #[case] problem: &str) {
    let error = text.parse::<Expectation>().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("expectation {text:?} is invalid: {problem}")
    );
}

#[rstest]
#[case("<0.05", "< 0.05")]
#[case(">=1", ">= 1")]
#[case("== -0.5", "== -0.5")]
#[case("< 1e-9", "< 1e-9")]
fn displays_expectations_in_canonical_form(#[case] text: &str, #[case] shown: &str) {
    assert_eq!(expect(text).to_string(), shown);
    assert_eq!(expect(shown), expect(text), "the display parses back");
}

#[rstest]
#[case("< 0.05", 0.04, true)]
#[case("< 0.05", 0.05, false)]
#[case("<= 0.05", 0.05, true)]
#[case("<= 0.05", 0.050001, false)]
#[case("== 0", 0.0, true)]
#[case("== 0", -0.0, true)]
#[case("== 0", 0.1, false)]
#[case("!= 0", 0.0, false)]
#[case("!= 0", 1.0, true)]
#[case(">= 1", 1.0, true)]
#[case(">= 1", 0.99, false)]
#[case("> 1", 1.0, false)]
#[case("> 1", 1.01, true)]
#[case("< 0.05", f64::NAN, false)]
#[case("<= 0.05", f64::NAN, false)]
#[case("== 0", f64::NAN, false)]
#[case("!= 0", f64::NAN, false)]
#[case(">= 1", f64::NAN, false)]
#[case("> 1", f64::NAN, false)]
#[case("< 0.05", f64::INFINITY, false)]
#[case("> 1", f64::INFINITY, true)]
#[case("!= 0", f64::INFINITY, true)]
#[case("< 0.05", f64::NEG_INFINITY, true)]
#[case(">= 1", f64::NEG_INFINITY, false)]
fn judges_one_sample_exactly_at_and_around_the_threshold(
    #[case] text: &str,
    #[case] value: f64,
    #[case] passed: bool,
) {
    let judgement = judge(&expect(text), OnEmpty::Fail, &[sample(&[], value)]);
    assert_eq!(
        judgement.passed, passed,
        "{value} {text}: {}",
        judgement.detail
    );
}

#[test]
fn passing_detail_counts_series_and_shows_the_value_nearest_the_threshold() {
    let samples = [
        sample(&[("pod", "a")], 0.01),
        sample(&[("pod", "b")], 0.002),
    ];
    let below = judge(&expect("< 0.05"), OnEmpty::Fail, &samples);
    assert_eq!(
        below,
        Judgement {
            passed: true,
            detail: "2 series, all < 0.05 (max 0.01)".into()
        }
    );
    let above = judge(&expect(">= 0.001"), OnEmpty::Fail, &samples);
    assert_eq!(above.detail, "2 series, all >= 0.001 (min 0.002)");
    let equal = judge(&expect("!= 1"), OnEmpty::Fail, &samples);
    assert_eq!(equal.detail, "2 series, all != 1");
}

#[test]
fn failing_detail_names_the_series_furthest_from_the_threshold() {
    let samples = [
        sample(&[("__name__", "checkout"), ("pod", "a")], 0.3),
        sample(&[("__name__", "checkout"), ("pod", "b")], 0.01),
        sample(&[("__name__", "checkout"), ("pod", "c")], 0.9),
    ];
    let judgement = judge(&expect("< 0.05"), OnEmpty::Fail, &samples);
    assert!(!judgement.passed);
    assert_eq!(
        judgement.detail,
        "checkout{pod=\"c\"} = 0.9, expected < 0.05 (2 of 3 series fail)"
    );
    let one = judge(&expect("< 0.05"), OnEmpty::Fail, &samples[..1]);
    assert_eq!(one.detail, "checkout{pod=\"a\"} = 0.3, expected < 0.05");
}

#[test]
fn a_nan_sample_fails_and_is_named_first() {
    let samples = [
        sample(&[("pod", "a")], 0.9),
        sample(&[("pod", "b\"x")], f64::NAN),
    ];
    let judgement = judge(&expect("!= 0"), OnEmpty::Pass, &samples);
    assert!(!judgement.passed);
    assert_eq!(
        judgement.detail,
        "{pod=\"b\\\"x\"} = NaN, expected != 0 (1 of 2 series fail)"
    );
}

#[test]
fn infinite_samples_are_shown_as_prometheus_writes_them() {
    let judgement = judge(&expect("< 1"), OnEmpty::Fail, &[sample(&[], f64::INFINITY)]);
    assert_eq!(judgement.detail, "{} = +Inf, expected < 1");
}

#[rstest]
#[case(OnEmpty::Pass, true, "no series returned (on-empty = pass)")]
#[case(
    OnEmpty::Fail,
    false,
    "no series returned, expected < 0.05 (on-empty = fail)"
)]
fn an_empty_result_is_judged_by_on_empty(
    #[case] on_empty: OnEmpty,
    #[case] passed: bool,
    #[case] detail: &str,
) {
    let judgement = judge(&expect("< 0.05"), on_empty, &[]);
    assert_eq!(
        (judgement.passed, judgement.detail.as_str()),
        (passed, detail)
    );
}

#[test]
fn series_rendering_is_bounded() {
    let long = "x".repeat(10_000);
    let labels = BTreeMap::from([("pod".to_string(), long)]);
    assert_eq!(judge::series(&labels).chars().count(), 256);
}

#[derive(Debug, Deserialize)]
struct Entry {
    verify: VerificationSpec,
}

fn entry(toml_text: &str) -> Result<VerificationSpec, String> {
    toml::from_str::<Entry>(toml_text)
        .map(|e| e.verify)
        .map_err(|e| e.to_string())
}

#[test]
fn promql_spec_from_toml_takes_defaults() {
    let spec =
        entry(r#"verify = { kind = "promql", query = "checkout_error_ratio", expect = "< 0.05" }"#);
    assert_eq!(
        spec.unwrap(),
        VerificationSpec::Promql {
            query: "checkout_error_ratio".into(),
            expect: expect("< 0.05"),
            window: Duration::from_secs(300),
            interval: Duration::from_secs(15),
            on_empty: OnEmpty::Fail,
        }
    );
}

#[test]
fn spec_fields_are_kebab_case_with_humantime_durations() {
    let promql = entry(
        r#"verify = { kind = "promql", query = "up", expect = "== 1", window = "90s", interval = "500ms", on-empty = "pass" }"#,
    )
    .unwrap();
    assert_eq!(
        promql.timing(),
        (Duration::from_secs(90), Duration::from_millis(500))
    );
    assert!(matches!(
        promql,
        VerificationSpec::Promql {
            on_empty: OnEmpty::Pass,
            ..
        }
    ));
    let alert = entry(r#"verify = { kind = "alert-resolves" }"#).unwrap();
    assert_eq!(
        alert.timing(),
        (Duration::from_secs(300), Duration::from_secs(5))
    );
    let round_trip: Entry =
        toml::from_str(&toml::to_string(&BTreeMap::from([("verify", &promql)])).unwrap()).unwrap();
    assert_eq!(round_trip.verify, promql);
}

#[rstest]
#[case(
    r#"{ kind = "promql", querry = "up", expect = "< 1" }"#,
    "unknown field `querry`"
)]
#[case(r#"{ kind = "promql", query = "up", expect = "<< 1" }"#, GENERIC)]
#[case(r#"{ kind = "promql", query = "up" }"#, "missing field `expect`")]
#[case(
    r#"{ kind = "alert-resolves", window = "5 parsecs" }"#,
    "duration \"5 parsecs\" is invalid"
)]
#[case(
    r#"{ kind = "alert-resolves", on-empty = "pass" }"#,
    "unknown field `on-empty`"
)]
#[case(r#"{ kind = "magic" }"#, "unknown variant `magic`")]
#[case(
    r#"{ kind = "promql", query = "up", expect = "< 1", on-empty = "maybe" }"#,
    "unknown variant `maybe`"
)]
fn refuses_malformed_spec_tables(#[case] table: &str, #[case] message: &str) {
    let error = entry(&format!("verify = {table}")).unwrap_err();
    assert!(error.contains(message), "{error}");
}

pub(super) fn promql(query: &str, window_ms: u64, interval_ms: u64) -> VerificationSpec {
    VerificationSpec::Promql {
        query: query.into(),
        expect: expect("< 0.05"),
        window: Duration::from_millis(window_ms),
        interval: Duration::from_millis(interval_ms),
        on_empty: OnEmpty::Fail,
    }
}

#[rstest]
#[case(
    promql("up", 300_000, 0),
    "verification interval 0s must be greater than zero"
)]
#[case(
    promql("up", 300_000, 600_000),
    "verification interval 10m is longer than its window 5m"
)]
#[case(
    promql("up", 7_200_000, 15_000),
    "verification window 2h exceeds the maximum of 1h"
)]
#[case(promql(" \n", 300_000, 15_000), "promql query is empty")]
#[case(promql(&"x".repeat(5000), 300_000, 15_000), "promql query is 5000 bytes, over the limit of 4096")]
fn validation_refuses_out_of_bounds_specs(#[case] spec: VerificationSpec, #[case] message: &str) {
    assert_eq!(spec.validate().unwrap_err().to_string(), message);
}

#[test]
fn validation_accepts_the_limits_themselves() {
    promql(&"x".repeat(MAX_QUERY_BYTES), 3_600_000, 3_600_000)
        .validate()
        .unwrap();
}
