//! Adds replicas to a workload whose CPU or connection pool is saturated.
//!
//! Parameters: `step` (replicas to add, default 1) and `max` (never ask for more
//! than this many, default 10). The host's grant is the hard limit; these are the
//! plugin's own, gentler ones, and the grant wins when they disagree.

use blastwall_sdk::{Error, Incident, Plugin, Report, log, scale, status};

struct ScaleOnSaturation;

impl Plugin for ScaleOnSaturation {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        let target = &incident.target;
        let step = incident.param_u32("step", 1)?;
        let max = incident.param_u32("max", 10)?;
        let current = status(target)?.replicas;
        let desired = current.saturating_add(step).min(max);
        if desired <= current {
            log::warn(&format!(
                "{target} already runs {current} replicas, at or above max {max}"
            ));
            return Ok(Report::new(
                format!("{target} left at {current} replicas (max {max})"),
                0,
            ));
        }
        let now = scale::set_replicas(target, desired)?;
        log::info(&format!(
            "{target}: scaled from {current} to {now} replicas"
        ));
        Ok(Report::new(
            format!("scaled {target} from {current} to {now} replicas"),
            1,
        ))
    }
}

blastwall_sdk::export_plugin!(ScaleOnSaturation);
