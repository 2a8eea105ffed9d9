//! Restarts a workload whose containers were killed for running out of memory.
//!
//! A restart clears a leak's accumulated state and buys time; it is the first
//! step of most OOM runbooks. The plugin refuses to restart a workload that has
//! no ready replica left to serve while the others roll, unless the operator
//! sets `allow-full-outage = "true"`.

use blastwall_sdk::{Error, Incident, Plugin, Report, log, restart, status};

struct RestartOnOom;

impl Plugin for RestartOnOom {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        let target = &incident.target;
        let now = status(target)?;
        log::info(&format!(
            "{target}: {}/{} replicas ready before restart",
            now.ready_replicas, now.replicas
        ));
        let allow_outage = incident.param("allow-full-outage") == Some("true");
        if now.ready_replicas == 0 && now.replicas > 1 && !allow_outage {
            return Err(Error::Failed(format!(
                "{target} has no ready replica; restarting now would not help, escalating"
            )));
        }
        restart::restart(target)?;
        Ok(Report::new(
            format!("restarted {target} after an OOM kill"),
            1,
        ))
    }
}

blastwall_sdk::export_plugin!(RestartOnOom);
