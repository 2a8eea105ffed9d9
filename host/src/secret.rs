//! Host-local secret keys: 32 random bytes in a 0600 file, created on first use.
//!
//! Used where the host must later recognise data as its own (the precompiled
//! cache, the audit head). The key never leaves the machine; whoever can read
//! it can forge what it protects, so it lives next to the data with owner-only
//! permissions.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads the key at `path`, or creates one. A damaged key file is replaced,
/// which invalidates whatever the old key protected (by design: it cannot be trusted).
pub fn read_or_create(path: &Path) -> std::io::Result<[u8; 32]> {
    match fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => return Ok(bytes.try_into().expect("checked length")),
        Ok(_) => fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&key)?;
    file.sync_all()?;
    Ok(key)
}
