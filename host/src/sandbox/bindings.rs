//! Host-side bindings for the `blastwall:remediation` WIT package, and the
//! conversions between WIT values and the host's own types.
//!
//! Every value that crosses from the guest is converted here, and conversion
//! is validation: a malformed workload becomes `invalid(...)` for the plugin,
//! never a panic or a trap in the host.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

use self::blastwall::remediation::types as wit;

// The world's own `use` puts `Incident`, `Report` and `Error` at this module's
// root, so the host's types are imported under distinct names.
use crate::incident::Incident as HostIncident;
use crate::provider::{Rotation as HostRotation, WorkloadStatus as HostStatus};
use crate::workload::{Workload as HostWorkload, WorkloadKind as HostKind};

pub use wit::Error as WitError;

/// A guest-supplied workload, validated.
pub fn workload_from_guest(w: &wit::Workload) -> Result<HostWorkload, WitError> {
    let kind = match w.kind {
        wit::WorkloadKind::Deployment => HostKind::Deployment,
        wit::WorkloadKind::StatefulSet => HostKind::StatefulSet,
        wit::WorkloadKind::DaemonSet => HostKind::DaemonSet,
        wit::WorkloadKind::Container => HostKind::Container,
    };
    HostWorkload::new(kind, &w.namespace, &w.name).map_err(|e| WitError::Invalid(e.to_string()))
}

fn workload_to_guest(w: &HostWorkload) -> wit::Workload {
    wit::Workload {
        kind: match w.kind() {
            HostKind::Deployment => wit::WorkloadKind::Deployment,
            HostKind::StatefulSet => wit::WorkloadKind::StatefulSet,
            HostKind::DaemonSet => wit::WorkloadKind::DaemonSet,
            HostKind::Container => wit::WorkloadKind::Container,
        },
        namespace: w.namespace().to_string(),
        name: w.name().to_string(),
    }
}

fn labels<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Vec<wit::Label> {
    pairs
        .into_iter()
        .map(|(k, v)| wit::Label {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// The incident as the guest sees it.
pub fn incident_to_guest(incident: &HostIncident) -> wit::Incident {
    let alert = &incident.alert;
    wit::Incident {
        id: incident.id.clone(),
        class: incident.class.clone(),
        confidence: incident.confidence,
        alert: wit::Alert {
            name: alert.name().to_string(),
            status: alert.status.clone(),
            labels: labels(&alert.labels),
            annotations: labels(&alert.annotations),
            starts_at: alert.starts_at.clone(),
            fingerprint: alert.fingerprint.clone(),
        },
        target: workload_to_guest(&incident.target),
        params: labels(&incident.params),
        dry_run: incident.dry_run,
    }
}

impl From<HostStatus> for wit::WorkloadStatus {
    fn from(s: HostStatus) -> Self {
        wit::WorkloadStatus {
            replicas: s.replicas,
            ready_replicas: s.ready_replicas,
            revision: s.revision,
            image: s.image,
        }
    }
}

impl From<HostRotation> for wit::Rotation {
    fn from(r: HostRotation) -> Self {
        wit::Rotation {
            files_rotated: r.files_rotated,
            bytes_freed: r.bytes_freed,
        }
    }
}
