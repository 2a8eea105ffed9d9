//! Plugin manifests (`blastwall.toml`): written by a plugin's author, read
//! by the host from inside a signed file and by reviewers before any
//! signature is checked.
//!
//! Properties: a manifest that parses passes its own checks again after a
//! round trip through TOML, and the limits the host derives from it never
//! exceed the host's ceilings.

#![no_main]

use blastwall::manifest::Manifest;
use blastwall::sandbox::Ceilings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(manifest) = Manifest::from_toml(text, "fuzz.toml") else {
        return;
    };
    let written = toml::to_string(&manifest).expect("a manifest serialises");
    let again = Manifest::from_toml(&written, "the round trip")
        .unwrap_or_else(|e| panic!("a valid manifest's own TOML is refused: {e}\n{written}"));
    assert_eq!(again, manifest);
    let ceilings = Ceilings::default();
    let limits = ceilings.limits_for(&manifest.limits);
    assert!(limits.fuel <= ceilings.max_fuel);
    assert!(limits.max_actions <= ceilings.max_actions);
    assert!(limits.memory_bytes <= ceilings.max_memory_mib as usize * 1024 * 1024);
    assert!(limits.timeout.as_millis() <= u128::from(ceilings.max_timeout_ms));
});
