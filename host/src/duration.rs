//! Durations in configuration, as humantime strings (`"200ms"`, `"15s"`,
//! `"10m"`, `"1h 30m"`), for `#[serde(with = "crate::duration")]`.
//!
//! Hand-written rather than a serde adapter crate so every configuration error
//! names the offending text the same way.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `duration` as a humantime string.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
}

/// Reads a humantime string, naming the offending text on failure.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("duration {text:?} is invalid: {e}")))
}
