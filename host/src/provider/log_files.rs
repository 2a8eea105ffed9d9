//! The log-files provider: real rotation of named log sets on local disk.
//!
//! Threat model: the plugin chooses only a log-set *name*; the directory comes
//! from host configuration. All file work goes through a `cap_std::fs::Dir`
//! opened on the set's root, so no path, `..` or symlink can reach outside it,
//! even if something swaps files while a rotation runs. Symlinks and
//! directories inside the root are never rotated, and an archive name that is
//! not a regular file stops the rotation rather than being overwritten.
//!
//! Each live file is opened once, without following a symlink, and must be a
//! regular file with a single link (a hard link would let a file outside the
//! root be truncated through it); the copy and the truncation use that same
//! handle, so swapping names mid-rotation cannot redirect either.
//!
//! Rotation is copy-then-truncate (like logrotate's `copytruncate`), so
//! writers holding the file open keep working without a signal. The archive is
//! written to a fresh temporary file (created exclusively, never through a
//! symlink), synced, renamed into place and the directory synced before the
//! original is truncated: a crash at any point loses no log line already
//! written (at worst a line appears in both the archive and the live file).
//! Lines appended between the copy and the truncate are lost, the same window
//! logrotate's `copytruncate` has. Rotations of one log set never overlap.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, MetadataExt, OpenOptions};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::{CallContext, LogSetProvider, ProviderError, Rotation};

/// One log set in the host configuration.
///
/// ```toml
/// [log-sets.app]
/// root = "/var/log/app"
/// pattern = "*.log"
/// keep = 5
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogSetConfig {
    /// The directory holding the logs, e.g. `/var/log/app`. Nothing outside it is touched.
    pub root: PathBuf,
    /// File names to rotate, `*` wildcards only, e.g. `*.log`. Default `*.log`.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Compressed archives to keep per file, e.g. `5`; older ones are deleted. `0` truncates only.
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// Files smaller than this many bytes are left alone, e.g. `1048576`. Default 1 (skip empty files).
    #[serde(default = "default_min_bytes")]
    pub min_bytes: u64,
}

fn default_pattern() -> String {
    "*.log".into()
}

fn default_keep() -> u32 {
    5
}

fn default_min_bytes() -> u64 {
    1
}

/// A configured log set and the lock that keeps its rotations from overlapping.
struct LogSet {
    config: LogSetConfig,
    rotating: Mutex<()>,
}

/// Rotates configured log sets on local disk.
pub struct LogFiles {
    sets: BTreeMap<String, Arc<LogSet>>,
}

impl LogFiles {
    /// A provider for the given named log sets.
    pub fn new(sets: BTreeMap<String, LogSetConfig>) -> Self {
        LogFiles {
            sets: sets
                .into_iter()
                .map(|(name, config)| {
                    let set = LogSet {
                        config,
                        rotating: Mutex::new(()),
                    };
                    (name, Arc::new(set))
                })
                .collect(),
        }
    }
}

fn archive_name(file: &str, n: u32) -> String {
    format!("{file}.{n}.gz")
}

fn failed(what: impl std::fmt::Display, e: io::Error) -> ProviderError {
    ProviderError::Failed(format!("{what}: {e}"))
}

/// Whether `name` exists in `dir` as a regular file (not following symlinks).
/// Anything else under an archive name is an error: we never overwrite or follow it.
fn regular_file_size(dir: &Dir, name: &str) -> Result<Option<u64>, ProviderError> {
    match dir.symlink_metadata(name) {
        Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
        Ok(_) => Err(ProviderError::Failed(format!(
            "refusing to rotate over {name}: it exists and is not a regular file"
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed(format!("cannot inspect {name}"), e)),
    }
}

/// Opens a live log file for reading and writing without following a symlink,
/// and checks the handle: a regular file with one link. `None` if it vanished
/// or is not something we rotate.
fn open_live(dir: &Dir, name: &str) -> Result<Option<(File, u64)>, ProviderError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).follow(FollowSymlinks::No);
    let file = match dir.open_with(name, &options) {
        Ok(file) => file,
        // Gone since listing, or swapped for a symlink (ELOOP): not ours to rotate.
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ELOOP) => {
            return Ok(None);
        }
        Err(e) => return Err(failed(format!("cannot open {name}"), e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| failed(format!("cannot inspect {name}"), e))?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Ok(None);
    }
    Ok(Some((file, meta.len())))
}

/// Rotates one open file; returns the bytes freed: the truncated file plus any
/// deleted archive, less the new archive's size.
fn rotate_file(
    dir: &Dir,
    name: &str,
    live: &mut File,
    size: u64,
    keep: u32,
) -> Result<u64, ProviderError> {
    let mut deleted = 0u64;
    let mut archived = 0u64;
    if keep > 0 {
        // Shift archives up by one, deleting the oldest: name.4.gz -> name.5.gz, ...
        for n in (1..=keep).rev() {
            let from = archive_name(name, n);
            let Some(archive_size) = regular_file_size(dir, &from)? else {
                continue;
            };
            if n == keep {
                dir.remove_file(&from)
                    .map_err(|e| failed(format!("cannot delete {from}"), e))?;
                deleted += archive_size;
            } else {
                let to = archive_name(name, n + 1);
                regular_file_size(dir, &to)?;
                dir.rename(&from, dir, &to)
                    .map_err(|e| failed(format!("cannot rename {from} to {to}"), e))?;
            }
        }
        archived = write_archive(dir, name, live)?;
    }
    live.set_len(0)
        .map_err(|e| failed(format!("cannot truncate {name}"), e))?;
    Ok((deleted + size).saturating_sub(archived))
}

/// Compresses `live` into `name.1.gz` through a fresh, synced temporary file;
/// returns the archive's size. The temporary file is removed on any failure
/// (a disk-full rotation must not leave a half-written archive behind).
fn write_archive(dir: &Dir, name: &str, live: &mut File) -> Result<u64, ProviderError> {
    let first = archive_name(name, 1);
    let temporary = format!("{first}.tmp");
    // A leftover from a crash, or something planted: remove the name itself (a
    // symlink is removed, not followed), then create exclusively.
    match dir.remove_file(&temporary) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(format!("cannot remove stale {temporary}"), e)),
    }
    let archive = dir
        .open_with(&temporary, OpenOptions::new().write(true).create_new(true))
        .map_err(|e| failed(format!("cannot create {temporary}"), e))?;
    let result = (|| {
        let mut encoder = GzEncoder::new(archive, Compression::default());
        io::copy(live, &mut encoder).map_err(|e| failed(format!("cannot compress {name}"), e))?;
        let mut archive = encoder
            .finish()
            .map_err(|e| failed(format!("cannot compress {name}"), e))?;
        archive
            .flush()
            .map_err(|e| failed(format!("cannot write {temporary}"), e))?;
        archive
            .sync_all()
            .map_err(|e| failed(format!("cannot sync {temporary}"), e))?;
        let size = archive
            .metadata()
            .map_err(|e| failed(format!("cannot inspect {temporary}"), e))?
            .len();
        dir.rename(&temporary, dir, &first)
            .map_err(|e| failed(format!("cannot rename {temporary} to {first}"), e))?;
        // Make the rename durable before the live file is truncated.
        dir.open(".")
            .and_then(|d| d.sync_all())
            .map_err(|e| failed("cannot sync the log directory", e))?;
        Ok(size)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&temporary);
    }
    result
}

fn rotate_set(set: &LogSetConfig) -> Result<Rotation, ProviderError> {
    let root = set.root.display();
    let dir = Dir::open_ambient_dir(&set.root, ambient_authority())
        .map_err(|e| failed(format!("cannot open log set root {root}"), e))?;
    let mut candidates = Vec::new();
    for entry in dir
        .entries()
        .map_err(|e| failed(format!("cannot list {root}"), e))?
    {
        let entry = entry.map_err(|e| failed(format!("cannot list {root}"), e))?;
        // `file_type` describes the entry itself: symlinks and directories are skipped.
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_file
            && !name.ends_with(".gz")
            && !name.ends_with(".tmp")
            && crate::wildcard::matches(&set.pattern, &name)
        {
            candidates.push(name);
        }
    }
    candidates.sort();
    let mut rotation = Rotation::default();
    for name in candidates {
        let Some((mut live, size)) = open_live(&dir, &name)? else {
            continue; // removed, replaced or hard-linked since listing
        };
        if size < set.min_bytes.max(1) {
            continue;
        }
        let freed = rotate_file(&dir, &name, &mut live, size, set.keep).map_err(|e| {
            ProviderError::Failed(format!(
                "{e} (after rotating {} files, {} bytes freed)",
                rotation.files_rotated, rotation.bytes_freed
            ))
        })?;
        rotation.files_rotated += 1;
        rotation.bytes_freed += freed;
    }
    Ok(rotation)
}

/// Linux's "too many levels of symbolic links", returned when a no-follow open
/// meets a symlink (`io::ErrorKind::FilesystemLoop` is not yet stable).
const ELOOP: i32 = 40;

#[async_trait]
impl LogSetProvider for LogFiles {
    fn name(&self) -> &'static str {
        "log-files"
    }

    async fn rotate(&self, _: &CallContext, log_set: &str) -> Result<Rotation, ProviderError> {
        let set = self.sets.get(log_set).cloned().ok_or_else(|| {
            ProviderError::NotFound(format!(
                "log set {log_set:?} is not configured on this host"
            ))
        })?;
        // Once started, a rotation runs to completion even if the run that asked
        // for it is cut off: stopping halfway helps nobody. The lock keeps a
        // retry from overlapping it.
        tokio::task::spawn_blocking(move || {
            let _rotating = set
                .rotating
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            rotate_set(&set.config)
        })
        .await
        .map_err(|e| ProviderError::Failed(format!("log rotation task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests;
