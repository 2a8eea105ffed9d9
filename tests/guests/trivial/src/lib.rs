//! The smallest useful plugin: one capability call.

use blastwall_sdk::{Error, Incident, Plugin, Report, restart};

struct Trivial;

impl Plugin for Trivial {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        restart::restart(&incident.target)?;
        Ok(Report::new("restarted", 1))
    }
}

blastwall_sdk::export_plugin!(Trivial);
