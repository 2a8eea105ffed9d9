//! Rolls a workload back when its error rate spiked right after a deploy.
//!
//! A rollback is only useful when there is something to go back to: the plugin
//! declines (and so escalates) when the workload is on its first revision.

use blastwall_sdk::{Error, Incident, Plugin, Report, log, rollback, status};

struct RollbackBadDeploy;

impl Plugin for RollbackBadDeploy {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        let target = &incident.target;
        let before = status(target)?;
        if before.revision <= 1 {
            return Err(Error::Failed(format!(
                "{target} is on its first revision; nothing to roll back to"
            )));
        }
        log::info(&format!(
            "{target}: rolling back from revision {} ({})",
            before.revision, before.image
        ));
        let live = rollback::rollback(target)?;
        Ok(Report::new(
            format!(
                "rolled {target} back from revision {} to {live}",
                before.revision
            ),
            1,
        ))
    }
}

blastwall_sdk::export_plugin!(RollbackBadDeploy);
