//! Which process holds a run, and whether it still lives.
//!
//! A run claims its target in the store for as long as it runs and verifies.
//! After a crash the claim outlives its process; the next process to start
//! must tell such a claim from one held by another live process on the same
//! data directory (an operator's CLI next to a running host). An owner is
//! `boot-id:pid:start-time` from `/proc`: a claim is live only if the machine
//! has not rebooted and the same process (not a reused pid) still runs.
//! Where `/proc` is missing (not Linux), every other owner counts as gone, so
//! a crashed run is still recovered; run one host per data directory there.

use std::sync::OnceLock;

/// The marker for a claim whose own process gave up on it.
pub const ABANDONED: &str = "abandoned";

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// A process's start time in clock ticks since boot (field 22 of its stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process's owner id.
pub fn this_process() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!(
            "{}:{pid}:{}",
            boot_id().unwrap_or_else(|| "unknown".into()),
            start_time(pid).unwrap_or(0)
        )
    })
}

/// Whether `owner` is a process that still runs (this one included).
pub fn is_alive(owner: &str) -> bool {
    if owner == this_process() {
        return true;
    }
    let mut parts = owner.split(':');
    let (Some(boot), Some(pid), Some(started)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return false;
    };
    boot_id().as_deref() == Some(boot) && boot != "unknown" && start_time(pid) == Some(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_a_dead_or_foreign_one_does_not() {
        assert!(is_alive(this_process()));
        assert!(!is_alive(ABANDONED));
        assert!(!is_alive(""));
        let boot = boot_id().unwrap();
        // A pid that no longer runs.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(&format!("{boot}:{pid}:1")));
        // Our pid with another start time: a reused pid, not us.
        let me = std::process::id();
        assert!(!is_alive(&format!("{boot}:{me}:1")));
        // Another boot.
        let started = start_time(me).unwrap();
        assert!(!is_alive(&format!(
            "00000000-0000-0000-0000-000000000000:{me}:{started}"
        )));
    }
}
