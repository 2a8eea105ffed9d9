//! A plugin that is broken on purpose, for `blastwall demo`: it shows what the
//! sandbox does to a remediation that never ends or never stops allocating.
//!
//! The `fault` parameter picks how it fails: `loop` spins until its fuel runs
//! out; `log-loop` logs without end, a loop on a host call that answers at
//! once and costs little fuel, so its deadline stops it; `memory-bomb`
//! allocates a mebibyte at a time until the memory limit stops it. It declares no capability, so even while misbehaving it can only
//! read and log.

use std::hint::black_box;

use blastwall_sdk::{Error, Incident, Plugin, Report, log};

struct DemoFaults;

impl Plugin for DemoFaults {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        match incident.param("fault").unwrap_or("") {
            "loop" => {
                log::info("looping forever");
                let mut n = 0u64;
                loop {
                    // black_box keeps the optimiser from removing the loop.
                    n = black_box(n.wrapping_add(1));
                }
            }
            "log-loop" => loop {
                log::info("still looping");
            },
            "memory-bomb" => {
                log::info("allocating without end");
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![0xAA; 1 << 20]));
                }
            }
            other => Err(Error::Invalid(format!(
                "unknown fault {other:?}: expected loop, log-loop or memory-bomb"
            ))),
        }
    }
}

blastwall_sdk::export_plugin!(DemoFaults);
