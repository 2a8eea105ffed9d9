//! The operator's configuration files: host configuration, grant policy,
//! tier policy, trust store and simulated fleet. Less hostile than the
//! other inputs, but a typo, a hand edit or a half-written file must be
//! refused with a reason, never crash the host at start. Each input is
//! offered to every parser, so one corpus serves all five.
//!
//! Properties: a trust store that parses holds only keys whose public key
//! decodes (verification relies on it and would panic otherwise) and
//! matches its id; whatever parses passes the checks the host makes when
//! it starts without panicking; a valid weekly window starts at a time
//! written in digits.

#![no_main]

use blastwall::classify::Classifier;
use blastwall::config::HostConfig;
use blastwall::escalate::Escalator;
use blastwall::guardrails::Window;
use blastwall::manifest::LimitsSpec;
use blastwall::policy::{Policy, TierPolicy};
use blastwall::provider::FleetSpec;
use blastwall::signature::{KeyId, TrustStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(store) = TrustStore::from_toml(text, "fuzz.toml") {
        for entry in &store.keys {
            assert_eq!(KeyId::of(&TrustStore::verifying_key(entry)), entry.id);
            assert!(KeyId::parse(entry.id.as_str()).is_ok(), "{}", entry.id);
        }
    }
    if let Ok(config) = HostConfig::from_toml(text, "fuzz.toml") {
        let _ = Classifier::new(&config.classify);
        let _ = Escalator::new(&config.escalation);
        for spec in &config.guardrails.windows {
            if let Ok(window) = Window::try_from(spec.clone())
                && let Some(start) = &window.spec().start
            {
                assert!(
                    start.bytes().all(|b| b.is_ascii_digit() || b == b':'),
                    "window start {start:?} accepted"
                );
            }
        }
        for entry in config.catalog.values() {
            if let Some(spec) = &entry.verify {
                let _ = spec.validate();
            }
        }
        if let Some(prometheus) = &config.prometheus {
            let _ = prometheus.validate();
        }
        if let Some(ceilings) = &config.ceilings {
            let _ = ceilings.limits_for(&LimitsSpec::default());
        }
    }
    let _ = Policy::from_toml(text, "fuzz.toml");
    let _ = TierPolicy::from_toml(text, "fuzz.toml");
    let _ = FleetSpec::from_toml(text, "fuzz.toml");
});
