//! Write blastwall remediation plugins in Rust.
//!
//! A plugin is a WebAssembly component that exports one function, `remediate`,
//! and reaches the world only through the capability interfaces the host links
//! into it. This crate wraps the generated bindings of the
//! `blastwall:remediation` WIT package in plain Rust: implement [`Plugin`],
//! call the capability functions you need, and register the type with
//! [`export_plugin!`].
//!
//! Only the capabilities a plugin *calls* end up in its component's imports, so
//! the host can compare what the code uses with what its manifest declares.
//! Calling [`rollback::rollback`] in a plugin whose manifest only declares
//! `restart` makes the host refuse to load it.
//!
//! ```no_run
//! use blastwall_sdk::{Error, Incident, Plugin, Report, log, restart};
//!
//! struct RestartOnOom;
//!
//! impl Plugin for RestartOnOom {
//!     fn remediate(incident: Incident) -> Result<Report, Error> {
//!         log::info(&format!("restarting {} after an OOM kill", incident.target));
//!         restart::restart(&incident.target)?;
//!         Ok(Report::new(format!("restarted {}", incident.target), 1))
//!     }
//! }
//!
//! blastwall_sdk::export_plugin!(RestartOnOom);
//! # fn main() {}
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` file in
//! `target/wasm32-wasip2/release/` is the component.

mod helpers;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "blastwall_sdk::bindings",
    });
}

pub use bindings::Guest as Plugin;
pub use bindings::blastwall::remediation::types::{
    Alert, Error, Incident, Label, Report, Rotation, Workload, WorkloadKind, WorkloadStatus,
};

/// Registers a type implementing [`Plugin`] as the component's `remediate` export.
///
/// Use it exactly once per plugin crate: `blastwall_sdk::export_plugin!(MyPlugin);`.
pub use bindings::export_plugin;

/// Reading the world and writing to the run log. Always available.
pub mod log {
    use crate::bindings::blastwall::remediation::context::{self, Level};

    /// Writes a debug line to the run log.
    pub fn debug(message: &str) {
        context::log(Level::Debug, message);
    }

    /// Writes an informational line to the run log.
    pub fn info(message: &str) {
        context::log(Level::Info, message);
    }

    /// Writes a warning to the run log.
    pub fn warn(message: &str) {
        context::log(Level::Warn, message);
    }

    /// Writes an error line to the run log.
    pub fn error(message: &str) {
        context::log(Level::Error, message);
    }
}

/// The observed status of a workload. Always available; read-only.
pub fn status(target: &Workload) -> Result<WorkloadStatus, Error> {
    bindings::blastwall::remediation::context::status(target)
}

/// The `scale` capability: change a workload's replica count.
pub mod scale {
    pub use crate::bindings::blastwall::remediation::scale::set_replicas;
}

/// The `restart` capability: rolling restart of a workload.
pub mod restart {
    pub use crate::bindings::blastwall::remediation::restart::restart;
}

/// The `rollback` capability: return a workload to its previous revision.
pub mod rollback {
    pub use crate::bindings::blastwall::remediation::rollback::rollback;
}

/// The `log-rotation` capability: rotate a log set named in the host's configuration.
pub mod log_rotation {
    pub use crate::bindings::blastwall::remediation::log_rotation::rotate;
}
