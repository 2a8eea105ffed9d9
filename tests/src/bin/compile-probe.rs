//! Compiles one generated component in a process of its own, so its peak
//! memory is the compilation's:
//! `compile-probe FUNCTIONS BODY_BYTES [MAX_COMPONENT MAX_CODE MAX_FUNCTION]`
//! generates [`big_component`]`(FUNCTIONS, BODY_BYTES)` and loads it under
//! the given ceilings (bytes; the host's defaults when absent). Prints one
//! JSON object: `result` (`compiled`, `refused` or `invalid`), `message`,
//! `component_bytes`, `seconds`, and `rss_before` (after generating) and
//! `peak_rss` in bytes (VmHWM, Linux).

use std::time::Instant;

use blastwall::manifest::Manifest;
use blastwall::policy::{self, Policy};
use blastwall::sandbox::{Ceilings, LoadError, Sandbox, SandboxConfig};
use blastwall::signature::PluginArtifact;
use blastwall_tests::big_component;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: compile-probe FUNCTIONS BODY_BYTES [MAX_COMPONENT MAX_CODE MAX_FUNCTION]";
    let number = |i: usize| -> u64 { args.get(i).expect(usage).parse().expect(usage) };
    let bytes = big_component(number(0) as u32, number(1) as usize);
    let component_bytes = bytes.len();
    let mut ceilings = Ceilings::default();
    if let [_, _, component, code, function] = &args[..] {
        ceilings.max_component_bytes = component.parse().expect("a byte count");
        ceilings.max_code_bytes = code.parse().expect("a byte count");
        ceilings.max_function_bytes = function.parse().expect("a byte count");
    }
    let manifest = Manifest::from_toml(
        "name = \"big\"\nversion = \"0.1.0\"\ndescription = \"large on purpose\"\nclasses = [\"test\"]\n",
        "probe",
    )
    .expect("the probe's manifest is valid");
    let grants = policy::grant(
        &manifest.capabilities,
        None,
        &Policy::as_declared(),
        &"deployment/prod/probe".parse().expect("a target"),
    )
    .expect("nothing declared, nothing to refuse");
    let artifact = PluginArtifact::insecure_unsigned(bytes, manifest);
    let sandbox = Sandbox::new(SandboxConfig {
        ceilings,
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let rss_before = high_water_mark();
    let started = Instant::now();
    let loaded = runtime.block_on(sandbox.load(&artifact, &grants));
    let seconds = started.elapsed().as_secs_f64();
    let (result, message) = match loaded {
        Ok(_) => ("compiled", String::new()),
        Err(e @ LoadError::TooLarge { .. }) => ("refused", e.to_string()),
        // It compiled; it simply is not a plugin (it exports nothing).
        Err(e @ LoadError::Link { .. }) => ("compiled", e.to_string()),
        Err(e) => ("invalid", e.to_string()),
    };
    println!(
        "{}",
        serde_json::json!({
            "result": result,
            "message": message,
            "component_bytes": component_bytes,
            "seconds": seconds,
            "rss_before": rss_before,
            "peak_rss": high_water_mark(),
        })
    );
}

/// The process's peak resident set so far, in bytes (`VmHWM`).
fn high_water_mark() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}
