//! Builds a workspace of wasm32-wasip2 guests from a build script, so that
//! `cargo build` and `cargo test` need no manual step before plugins exist.
//!
//! The guests get their own target directory (`target/guests`) so the nested
//! cargo never waits on the lock the outer cargo holds, and stays warm across
//! debug, release and clippy builds of the host.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target guests are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Environment variables the outer cargo sets for build scripts that must not
/// leak into the nested build (they name the host target, flags or wrappers).
const SCRUB: [&str; 8] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MAKEFLAGS",
];

/// Where guests are built: `$CARGO_TARGET_DIR/guests`, else `<repo>/target/guests`.
pub fn target_dir(repo_root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root.join("target"))
        .join("guests")
}

/// Builds `packages` of the workspace at `workspace` in release mode and
/// returns each one's component path, in the order given. Panics with a clear
/// message on failure: a build script has no better way to report.
pub fn build(repo_root: &Path, workspace: &Path, packages: &[&str]) -> Vec<PathBuf> {
    for dir in ["wit", "sdk"] {
        println!("cargo:rerun-if-changed={}", repo_root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", workspace.display());
    let target_dir = target_dir(repo_root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--quiet")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.arg("--package").arg(package);
    }
    for var in SCRUB {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the {TARGET} guests: {e}"));
    if !status.success() {
        panic!(
            "building the {TARGET} guests in {} failed (is the target installed? `rustup target add {TARGET}`)",
            workspace.display()
        );
    }
    packages
        .iter()
        .map(|p| {
            target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{}.wasm", p.replace('-', "_")))
        })
        .collect()
}
