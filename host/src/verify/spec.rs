//! What a catalog entry asks to be checked: the `verify = { ... }` table.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::VerifyError;

/// The longest verification window: a remediation that needs more than an hour
/// to show an effect is better judged by a human than by a poll loop.
pub const MAX_WINDOW: Duration = Duration::from_secs(60 * 60);
/// The longest PromQL query accepted, in bytes. Queries travel in the URL, and
/// proxies in front of Prometheus commonly refuse URLs much beyond this.
pub const MAX_QUERY_BYTES: usize = 4 * 1024;

/// How to tell whether a remediation worked, as a catalog entry declares it.
///
/// ```toml
/// verify = { kind = "promql", query = "checkout_error_ratio", expect = "< 0.05", window = "5m" }
/// verify = { kind = "alert-resolves", window = "10m" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum VerificationSpec {
    /// An instant PromQL query whose every series must satisfy `expect`; the
    /// condition is re-evaluated every `interval` until it holds or `window` ends.
    Promql {
        /// The PromQL expression, evaluated at the time of each check.
        query: String,
        /// The condition every returned sample must satisfy, e.g. `"< 0.05"`.
        expect: Expectation,
        /// How long after the action the condition may take to hold.
        #[serde(default = "default_window", with = "crate::duration")]
        window: Duration,
        /// How often the query is evaluated within the window.
        #[serde(default = "default_promql_interval", with = "crate::duration")]
        interval: Duration,
        /// How to judge a query that returns no series at all.
        #[serde(default)]
        on_empty: OnEmpty,
    },
    /// The alert that started the incident must resolve within `window`.
    AlertResolves {
        /// How long after the action the alert may take to resolve.
        #[serde(default = "default_window", with = "crate::duration")]
        window: Duration,
        /// How often the alert's state is looked up within the window.
        #[serde(default = "default_alert_interval", with = "crate::duration")]
        interval: Duration,
    },
}

fn default_window() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_promql_interval() -> Duration {
    Duration::from_secs(15)
}

fn default_alert_interval() -> Duration {
    Duration::from_secs(5)
}

impl VerificationSpec {
    /// Checks the bounds that deserialization cannot express, so that a bad
    /// catalog entry is refused when loaded rather than after a live action.
    pub fn validate(&self) -> Result<(), VerifyError> {
        let (window, interval) = self.timing();
        if interval.is_zero() {
            return Err(VerifyError::ZeroInterval);
        }
        if window > MAX_WINDOW {
            return Err(VerifyError::WindowTooLong { window });
        }
        if interval > window {
            return Err(VerifyError::IntervalExceedsWindow { interval, window });
        }
        if let VerificationSpec::Promql { query, .. } = self {
            if query.trim().is_empty() {
                return Err(VerifyError::EmptyQuery);
            }
            if query.len() > MAX_QUERY_BYTES {
                return Err(VerifyError::QueryTooLong { bytes: query.len() });
            }
        }
        Ok(())
    }

    /// The window and the interval between checks.
    pub fn timing(&self) -> (Duration, Duration) {
        match self {
            VerificationSpec::Promql {
                window, interval, ..
            }
            | VerificationSpec::AlertResolves { window, interval } => (*window, *interval),
        }
    }
}

/// How to judge a PromQL query that returns no series.
///
/// An empty result usually means the metric is missing (a typo, a scrape
/// failure, a workload that no longer exists), so it fails unless the entry
/// says that absence is the goal, as for `ALERTS{alertname="X"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnEmpty {
    /// No series counts as success.
    Pass,
    /// No series counts as failure.
    #[default]
    Fail,
}

impl fmt::Display for OnEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnEmpty::Pass => "pass",
            OnEmpty::Fail => "fail",
        })
    }
}

/// A comparison operator of an [`Expectation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

impl Comparison {
    /// Two-character operators first, so that `<=` is not read as `<` then `=`.
    const BY_LENGTH: [Comparison; 6] = [
        Comparison::Le,
        Comparison::Ge,
        Comparison::Eq,
        Comparison::Ne,
        Comparison::Lt,
        Comparison::Gt,
    ];

    /// The operator as written in an expectation.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Eq => "==",
            Comparison::Ne => "!=",
            Comparison::Ge => ">=",
            Comparison::Gt => ">",
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A condition on one sample's value, written as an operator and a number
/// (`"< 0.05"`, `">= 1"`, `"== 0"`), so catalog entries read like PromQL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expectation {
    /// How the sample compares to `value`.
    pub op: Comparison,
    /// The threshold; always finite.
    pub value: f64,
}

const OPERATOR_THEN_NUMBER: &str = "expected an operator (<, <=, ==, !=, >=, >) then a number";

impl Expectation {
    /// Whether `sample` satisfies the condition. NaN never does, whatever the
    /// operator: a NaN ratio means the metric is broken, not that it is fine.
    pub fn holds(&self, sample: f64) -> bool {
        if sample.is_nan() {
            return false;
        }
        match self.op {
            Comparison::Lt => sample < self.value,
            Comparison::Le => sample <= self.value,
            Comparison::Eq => sample == self.value,
            Comparison::Ne => sample != self.value,
            Comparison::Ge => sample >= self.value,
            Comparison::Gt => sample > self.value,
        }
    }
}

impl FromStr for Expectation {
    type Err = VerifyError;

    fn from_str(input: &str) -> Result<Self, VerifyError> {
        let invalid = |problem: String| VerifyError::InvalidExpectation {
            input: input.to_string(),
            problem,
        };
        let text = input.trim();
        let (op, rest) = Comparison::BY_LENGTH
            .iter()
            .find_map(|op| {
                text.strip_prefix(op.symbol())
                    .map(|rest| (*op, rest.trim()))
            })
            .ok_or_else(|| invalid(OPERATOR_THEN_NUMBER.to_string()))?;
        if rest.starts_with(['<', '>', '=', '!']) {
            return Err(invalid(OPERATOR_THEN_NUMBER.to_string()));
        }
        if rest.is_empty() {
            return Err(invalid(format!("expected a number after \"{op}\"")));
        }
        let value: f64 = rest
            .parse()
            .map_err(|_| invalid(format!("{rest:?} is not a number")))?;
        if !value.is_finite() {
            return Err(invalid(format!(
                "the threshold {rest} is not a finite number"
            )));
        }
        Ok(Expectation { op, value })
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, format_value(self.value))
    }
}

impl Serialize for Expectation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expectation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Formats a sample value as Prometheus does (`NaN`, `+Inf`, `-Inf`), and
/// switches to scientific notation where plain digits would be unreadable.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if value != 0.0 && !(1e-6..1e15).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}
