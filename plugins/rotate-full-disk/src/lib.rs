//! Frees disk space by rotating a named log set when a volume is nearly full.
//!
//! Which log set comes from the operator's `log-set` parameter, falling back to
//! the alert's `log_set` label. The plugin never sees a path: the host resolves
//! the name from its own configuration and confines the work to that directory.

use blastwall_sdk::{Error, Incident, Plugin, Report, log, log_rotation};

struct RotateFullDisk;

impl Plugin for RotateFullDisk {
    fn remediate(incident: Incident) -> Result<Report, Error> {
        let log_set = incident
            .param("log-set")
            .or_else(|| incident.alert.label("log_set"))
            .ok_or_else(|| {
                Error::Invalid("no log set: set the log-set parameter or the log_set label".into())
            })?
            .to_string();
        let rotation = log_rotation::rotate(&log_set)?;
        log::info(&format!(
            "log set {log_set}: rotated {} files, freed {} bytes",
            rotation.files_rotated, rotation.bytes_freed
        ));
        Ok(Report::new(
            format!(
                "rotated log set {log_set}: {} files, {} bytes freed",
                rotation.files_rotated, rotation.bytes_freed
            ),
            u32::from(rotation.files_rotated > 0),
        ))
    }
}

blastwall_sdk::export_plugin!(RotateFullDisk);
