//! A plugin that misbehaves on purpose. The `behaviour` parameter picks how.

use std::hint::black_box;

use blastwall_sdk::{
    Error, Incident, Plugin, Report, Workload, WorkloadKind, log, log_rotation, restart, rollback,
    scale,
};

struct Adversary;

// Unbounded on purpose: the host's stack limit must stop it.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // black_box keeps the optimiser from turning this into a loop.
    black_box(recurse(black_box(depth + 1))) + 1
}

fn outside(incident: &Incident) -> Workload {
    Workload {
        kind: WorkloadKind::Deployment,
        namespace: incident.target.namespace.clone(),
        name: "cart".into(),
    }
}

impl Plugin for Adversary {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        let target = incident.target.clone();
        match incident.param("behaviour").unwrap_or("") {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![0xAA; 1 << 20]));
                }
            }
            "recurse" => Ok(Report::new(format!("{}", recurse(0)), 0)),
            "flood-stdout" => {
                for i in 0..5_000 {
                    println!(
                        "{i:>8} the quick brown fox jumps over the lazy dog, again and again and again"
                    );
                    eprintln!("{i:>8} stderr too");
                }
                Ok(Report::new("flooded stdout", 0))
            }
            "flood-log" => {
                for i in 0..2_000 {
                    log::info(&format!("{i:>8} {}", "log spam ".repeat(50)));
                }
                Ok(Report::new("flooded the log", 0))
            }
            "flood-empty-log" => loop {
                log::info("");
            },
            "status-spam" => {
                let mut denied = 0u32;
                for _ in 0..1_000 {
                    if let Err(Error::Denied(_)) = blastwall_sdk::status(&target) {
                        denied += 1;
                    }
                }
                Ok(Report::new(format!("{denied} status reads denied"), 0))
            }
            "random-bomb" => {
                // 64 MiB of randomness in one request: the host caps one request.
                let bytes = wasi::random::random::get_random_bytes(64 << 20);
                Ok(Report::new(format!("got {} random bytes", bytes.len()), 0))
            }
            "huge-argument" => {
                // 4 MiB in one host call: the host's per-call data limit must
                // stop it before the host copies it.
                log::info(&"A".repeat(4 << 20));
                Ok(Report::new("logged 4 MiB in one line", 0))
            }
            "many-handles" => {
                // Every call makes a new stream resource on the host; none is
                // ever dropped. The per-run handle limit must stop it.
                let mut held = 0u64;
                loop {
                    std::mem::forget(black_box(wasi::cli::stdout::get_stdout()));
                    held += 1;
                    black_box(held);
                }
            }
            "panic" => panic!("adversary panicked on purpose"),
            "exit" => std::process::exit(3),
            "spam-denied" => {
                // Ignores every denial and keeps asking.
                let victim = outside(&incident);
                loop {
                    let _ = restart::restart(&victim);
                }
            }
            "escape-target" => {
                restart::restart(&outside(&incident))?;
                Ok(Report::new("restarted a workload outside the incident", 1))
            }
            "scale-huge" => {
                scale::set_replicas(&target, 500)?;
                Ok(Report::new("scaled to 500", 1))
            }
            "rollback" => {
                let revision = rollback::rollback(&target)?;
                Ok(Report::new(format!("rolled back to {revision}"), 1))
            }
            "rotate-unlisted" => {
                log_rotation::rotate("../../etc")?;
                Ok(Report::new("rotated something", 1))
            }
            "filesystem" => {
                let read = std::fs::read_to_string("/etc/passwd").map(|s| s.len());
                let write = std::fs::write("/tmp/blastwall-adversary-was-here", b"pwned");
                let list = std::fs::read_dir("/").map(|d| d.count());
                Ok(Report::new(
                    format!(
                        "read={} write={} list={}",
                        read.is_ok(),
                        write.is_ok(),
                        list.is_ok()
                    ),
                    0,
                ))
            }
            other => Err(Error::Invalid(format!("unknown behaviour {other:?}"))),
        }
    }
}

blastwall_sdk::export_plugin!(Adversary);
