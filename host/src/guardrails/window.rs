//! Maintenance and exclusion windows: when automation must not act on a target.
//!
//! A *maintenance* window is planned work: alerts are expected, so the host holds
//! (records the incident, pages nobody). An *exclusion* window is a freeze (a
//! sales event, a migration): the host never acts, and a human is told.
//! Windows recur weekly at a UTC time of day, or cover one fixed span.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::policy::TargetPattern;
use crate::workload::Workload;

/// Milliseconds since the Unix epoch, the store's unit of time.
pub type Millis = i64;

const DAY_MS: i64 = 86_400_000;
/// A window longer than a week would overlap its own next occurrence.
const MAX_RECURRING: Duration = Duration::from_secs(7 * 86_400);

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a window does to automation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowKind {
    /// Planned work: hold, record, page nobody.
    Maintenance,
    /// A freeze: never act, tell a human.
    Exclusion,
}

/// A window as written in configuration or sent to the API.
///
/// ```toml
/// [[guardrails.windows]]
/// name = "weekend-maintenance"
/// kind = "maintenance"
/// targets = ["deployment/prod/*"]
/// days = ["sat", "sun"]   # weekly; omit for every day
/// start = "02:00"         # UTC
/// duration = "4h"
///
/// [[guardrails.windows]]
/// name = "black-friday"
/// kind = "exclusion"
/// targets = ["*/*/*"]
/// from = "2026-11-27T00:00:00Z"
/// until = "2026-11-30T00:00:00Z"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WindowSpec {
    /// A name for records and the API, e.g. `weekend-maintenance`.
    pub name: String,
    /// `maintenance` (hold quietly) or `exclusion` (refuse and escalate).
    pub kind: WindowKind,
    /// The workloads it covers, as `kind/namespace/name` patterns.
    pub targets: Vec<TargetPattern>,
    /// Weekdays a recurring window starts on (`mon` … `sun`); every day when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Start of a recurring window, `HH:MM` in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Length of a recurring window, e.g. `4h` (at most 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Start of a one-off window, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// End of a one-off window, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Schedule {
    /// Weekly on `days` (bit 0 = Monday), from `start_ms` after midnight UTC for `length_ms`.
    Weekly {
        days: u8,
        start_ms: i64,
        length_ms: i64,
    },
    /// One span.
    Once { from: Millis, until: Millis },
}

/// A validated window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    spec: WindowSpec,
    schedule: Schedule,
}

/// Why a window specification is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("window {name:?}: {message}")]
pub struct WindowError {
    /// The window's name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn time_of_day(raw: &str) -> Option<i64> {
    let (h, m) = raw.split_once(':')?;
    // Digits only: `parse` alone would also take "-1" or "+1" as an hour.
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h * 60 + m) * 60_000)
}

fn timestamp(raw: &str) -> Option<Millis> {
    let at = humantime::parse_rfc3339(raw).ok()?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64)
}

impl TryFrom<WindowSpec> for Window {
    type Error = WindowError;

    fn try_from(spec: WindowSpec) -> Result<Self, WindowError> {
        let fail = |message: String| WindowError {
            name: spec.name.clone(),
            message,
        };
        if spec.name.trim().is_empty() || spec.name.len() > 128 {
            return Err(fail("a window needs a name of 1 to 128 characters".into()));
        }
        if spec.targets.is_empty() {
            return Err(fail(
                "targets is empty: name the workloads it covers, e.g. \"deployment/prod/*\"".into(),
            ));
        }
        let schedule = match (&spec.start, &spec.duration, &spec.from, &spec.until) {
            (Some(start), Some(duration), None, None) => {
                let start_ms = time_of_day(start)
                    .ok_or_else(|| fail(format!("start {start:?} is not a UTC time HH:MM")))?;
                let length = humantime::parse_duration(duration)
                    .map_err(|e| fail(format!("duration {duration:?} is invalid: {e}")))?;
                if length.is_zero() || length > MAX_RECURRING {
                    return Err(fail(format!(
                        "duration {duration:?} must be more than zero and at most 7 days"
                    )));
                }
                let mut days = 0u8;
                for day in &spec.days {
                    let index = WEEKDAYS
                        .iter()
                        .position(|d| d.eq_ignore_ascii_case(day))
                        .ok_or_else(|| {
                            fail(format!("day {day:?} is not one of {}", WEEKDAYS.join(", ")))
                        })?;
                    days |= 1 << index;
                }
                Schedule::Weekly {
                    days: if days == 0 { 0x7f } else { days },
                    start_ms,
                    length_ms: length.as_millis() as i64,
                }
            }
            (None, None, Some(from), Some(until)) if spec.days.is_empty() => {
                let parse = |raw: &String| {
                    timestamp(raw).ok_or_else(|| {
                        fail(format!(
                            "{raw:?} is not an RFC 3339 UTC time like 2026-11-27T00:00:00Z"
                        ))
                    })
                };
                let (from, until) = (parse(from)?, parse(until)?);
                if until <= from {
                    return Err(fail("until must be after from".into()));
                }
                Schedule::Once { from, until }
            }
            _ => {
                return Err(fail(
                    "give either start and duration (with optional days) for a weekly window, or from and until for a one-off window".into(),
                ));
            }
        };
        Ok(Window { spec, schedule })
    }
}

/// Monday = 0. The Unix epoch was a Thursday.
fn weekday(day_index: i64) -> u8 {
    ((day_index + 3).rem_euclid(7)) as u8
}

impl Window {
    /// The window as written.
    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Maintenance or exclusion.
    pub fn kind(&self) -> WindowKind {
        self.spec.kind
    }

    /// Whether it covers `target`.
    pub fn covers(&self, target: &Workload) -> bool {
        self.spec.targets.iter().any(|p| p.matches(target))
    }

    /// Whether it is open at `now`.
    pub fn is_open(&self, now: Millis) -> bool {
        match self.schedule {
            Schedule::Once { from, until } => from <= now && now < until,
            Schedule::Weekly {
                days,
                start_ms,
                length_ms,
            } => {
                let today = now.div_euclid(DAY_MS);
                // A window that started on an earlier day may still be open.
                let lookback = (start_ms + length_ms).div_euclid(DAY_MS) + 1;
                (0..=lookback).any(|back| {
                    let day = today - back;
                    let opens = day * DAY_MS + start_ms;
                    days & (1 << weekday(day)) != 0 && opens <= now && now < opens + length_ms
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> Result<Window, WindowError> {
        let spec: WindowSpec = toml::from_str(toml_text).unwrap();
        Window::try_from(spec)
    }

    fn at(raw: &str) -> Millis {
        timestamp(raw).unwrap()
    }

    #[test]
    fn weekly_windows_open_on_their_days_and_span_midnight() {
        // 2026-11-28 is a Saturday.
        let w = spec(
            r#"name = "w"
kind = "maintenance"
targets = ["deployment/prod/*"]
days = ["sat"]
start = "23:00"
duration = "4h""#,
        )
        .unwrap();
        assert!(!w.is_open(at("2026-11-28T22:59:59Z")));
        assert!(w.is_open(at("2026-11-28T23:00:00Z")));
        assert!(w.is_open(at("2026-11-29T02:59:59Z")), "spans midnight");
        assert!(!w.is_open(at("2026-11-29T03:00:00Z")), "end is exclusive");
        assert!(
            !w.is_open(at("2026-11-27T23:30:00Z")),
            "friday is not listed"
        );
        assert_eq!(weekday(at("2026-11-23T12:00:00Z").div_euclid(DAY_MS)), 0);
    }

    #[test]
    fn every_day_when_no_days_are_given() {
        let w = spec(
            r#"name = "nightly"
kind = "exclusion"
targets = ["*/*/*"]
start = "01:00"
duration = "30m""#,
        )
        .unwrap();
        for day in ["2026-11-23", "2026-11-26", "2026-11-29"] {
            assert!(w.is_open(at(&format!("{day}T01:15:00Z"))), "{day}");
            assert!(!w.is_open(at(&format!("{day}T01:30:00Z"))), "{day}");
        }
    }

    #[test]
    fn one_off_windows_cover_their_span() {
        let w = spec(
            r#"name = "freeze"
kind = "exclusion"
targets = ["deployment/prod/checkout"]
from = "2026-11-27T00:00:00Z"
until = "2026-11-30T00:00:00Z""#,
        )
        .unwrap();
        assert!(w.is_open(at("2026-11-27T00:00:00Z")));
        assert!(!w.is_open(at("2026-11-30T00:00:00Z")));
        let checkout: Workload = "deployment/prod/checkout".parse().unwrap();
        let cart: Workload = "deployment/prod/cart".parse().unwrap();
        assert!(w.covers(&checkout) && !w.covers(&cart));
    }

    #[test]
    fn refuses_a_start_time_with_a_sign() {
        for start in ["-1:00", "+1:00", "01:-1", "-0:30"] {
            let text = format!(
                "name = \"w\"\nkind = \"maintenance\"\ntargets = [\"*/*/*\"]\nstart = \"{start}\"\nduration = \"1h\""
            );
            assert_eq!(
                spec(&text).unwrap_err().to_string(),
                format!("window \"w\": start \"{start}\" is not a UTC time HH:MM")
            );
        }
    }

    #[test]
    fn explains_invalid_windows() {
        let cases = [
            (
                r#"name = "a"
kind = "maintenance"
targets = ["*/*/*"]
start = "25:00"
duration = "1h""#,
                "window \"a\": start \"25:00\" is not a UTC time HH:MM",
            ),
            (
                r#"name = "b"
kind = "maintenance"
targets = ["*/*/*"]
days = ["funday"]
start = "01:00"
duration = "1h""#,
                "window \"b\": day \"funday\" is not one of mon, tue, wed, thu, fri, sat, sun",
            ),
            (
                r#"name = "c"
kind = "maintenance"
targets = ["*/*/*"]
start = "01:00"
duration = "8days""#,
                "window \"c\": duration \"8days\" must be more than zero and at most 7 days",
            ),
            (
                r#"name = "d"
kind = "exclusion"
targets = ["*/*/*"]
from = "2026-11-30T00:00:00Z"
until = "2026-11-27T00:00:00Z""#,
                "window \"d\": until must be after from",
            ),
            (
                r#"name = "e"
kind = "exclusion"
targets = ["*/*/*"]
start = "01:00"
from = "2026-11-30T00:00:00Z""#,
                "window \"e\": give either start and duration (with optional days) for a weekly window, or from and until for a one-off window",
            ),
            (
                r#"name = "f"
kind = "exclusion"
targets = []
start = "01:00"
duration = "1h""#,
                "window \"f\": targets is empty: name the workloads it covers, e.g. \"deployment/prod/*\"",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(spec(text).unwrap_err().to_string(), message);
        }
    }
}
