//! Helpers shared by the tests that run the real `blastwall` binary.

#![allow(dead_code)] // each test binary uses a different subset

pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root: example files are referenced relative to it.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs the binary with `args` in the repository root.
pub fn blastwall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blastwall"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the binary runs")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
