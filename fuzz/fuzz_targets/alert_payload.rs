//! Alertmanager webhook payloads (version 4) and bare alerts: the text
//! anyone who can reach the alert receiver, or write an alert rule, sends.
//!
//! Properties: every alert handed on re-validates, survives a round trip
//! through its own JSON (the form the store keeps), and either names a
//! workload that prints and parses back to itself or is refused with a
//! reason; `parse_one` agrees with `parse_all`.

#![no_main]

use blastwall::alert::{self, AlertError};
use blastwall::incident;
use blastwall::workload::Workload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let alerts = match alert::parse_all(text) {
        Ok(alerts) => alerts,
        Err(error) => {
            // One bad alert refuses the whole document, whichever alert is asked for.
            assert!(
                alert::parse_one(text, 0).is_err(),
                "parse_one accepted what parse_all refused: {error}"
            );
            return;
        }
    };
    assert!(alerts.len() <= alert::MAX_ALERTS);
    match alert::parse_one(text, alerts.len()) {
        Err(AlertError::Index { count, index }) => {
            assert_eq!((count, index), (alerts.len(), alerts.len()))
        }
        other => panic!("an index past the end gave {other:?}"),
    }
    if let Some(first) = alerts.first() {
        assert_eq!(
            &alert::parse_one(text, 0).expect("parse_all accepted it"),
            first
        );
    }
    for alert in &alerts {
        alert.validate().expect("a parsed alert re-validates");
        let json = serde_json::to_string(alert).expect("an alert serialises");
        assert_eq!(
            &alert::parse_one(&json, 0).expect("an alert's own JSON parses"),
            alert
        );
        let id = incident::incident_id(alert);
        assert!(id.len() == 20 && id.starts_with("inc-"), "{id}");
        if let Ok(target) = incident::target_of(alert) {
            let printed = target.to_string();
            assert_eq!(
                printed.parse::<Workload>().ok().as_ref(),
                Some(&target),
                "{printed}"
            );
        }
    }
});
