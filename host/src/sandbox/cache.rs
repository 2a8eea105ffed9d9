//! The precompiled-component cache: compile a plugin version once per host
//! (tens of milliseconds), reload it from disk in well under a millisecond.
//!
//! Threat model: wasmtime's `Component::deserialize` trusts its input
//! completely (it is `unsafe`): a cache file written by anyone but this host
//! could make the host run arbitrary native code. So every entry is
//! authenticated with HMAC-SHA256 under a random key that this host created
//! (mode 0600, next to the entries) and that never leaves it. An entry whose
//! tag does not verify (edited, truncated, swapped, written by another host or
//! for another engine configuration) is deleted and recompiled from the
//! verified bytes, never deserialized.
//!
//! Entries are keyed by the component's digest *and* the engine's
//! compatibility hash, and the tag covers both, so an entry can neither be
//! replayed for another plugin nor for an engine it was not compiled for.

use std::fs::{self, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::signature::Digest;

type Tag = Hmac<Sha256>;
const TAG_LEN: usize = 32;
const KEY_FILE: &str = "cache.key";

/// Counters for observing the cache (tests, metrics).
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Components loaded from an authenticated entry.
    pub hits: AtomicU64,
    /// Components compiled because no entry existed.
    pub misses: AtomicU64,
    /// Entries refused (bad tag, unreadable) and replaced.
    pub rejected: AtomicU64,
}

/// Why the cache directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the precompiled cache at {path}: {source}")]
pub struct CacheError {
    path: String,
    source: std::io::Error,
}

/// An authenticated on-disk cache of compiled components.
pub struct PrecompiledCache {
    dir: PathBuf,
    key: [u8; 32],
    engine_tag: String,
    stats: CacheStats,
}

impl PrecompiledCache {
    /// Opens (creating if needed, mode 0700) the cache directory for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheError> {
        let error = |source| CacheError {
            path: dir.display().to_string(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(error)?;
        let key = crate::secret::read_or_create(&dir.join(KEY_FILE)).map_err(error)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(PrecompiledCache {
            dir: dir.to_path_buf(),
            key,
            engine_tag: format!("{:016x}", hasher.finish()),
            stats: CacheStats::default(),
        })
    }

    /// The cache's counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_string().trim_start_matches("sha256:").to_string();
        self.dir.join(format!("{hex}-{}.cwasm", self.engine_tag))
    }

    fn tag(&self, digest: &Digest, payload: &[u8]) -> Tag {
        let mut mac = Tag::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(digest.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(self.engine_tag.as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    /// The cached component for `digest`, if an authentic entry exists.
    pub fn load(&self, engine: &Engine, digest: &Digest) -> Option<Component> {
        let path = self.path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "unreadable precompiled entry, recompiling: {e}");
                self.reject(&path);
                return None;
            }
        };
        if bytes.len() < TAG_LEN
            || self
                .tag(digest, &bytes[TAG_LEN..])
                .verify_slice(&bytes[..TAG_LEN])
                .is_err()
        {
            tracing::warn!(path = %path.display(), "precompiled entry failed authentication; deleting and recompiling");
            self.reject(&path);
            return None;
        }
        // SAFETY: `Component::deserialize` must only see bytes produced by
        // `Component::serialize` of a compatible engine. These bytes carry an
        // HMAC tag under this host's secret key over (digest, engine hash,
        // payload), which only `store` below creates, from `serialize` output of
        // this engine configuration; wasmtime additionally checks the engine
        // compatibility header itself.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes[TAG_LEN..]) };
        match component {
            Ok(component) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(component)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "precompiled entry unusable, recompiling: {e}");
                self.reject(&path);
                None
            }
        }
    }

    fn reject(&self, path: &Path) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = fs::remove_file(path);
    }

    /// Stores `component` for `digest`. Failures only cost a recompile later, so they are logged, not returned.
    pub fn store(&self, digest: &Digest, component: &Component) {
        let payload = match component.serialize() {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!("cannot serialize a compiled component: {e}");
                return;
            }
        };
        let tag = self.tag(digest, &payload).finalize().into_bytes();
        let path = self.path(digest);
        let temporary = path.with_extension("tmp");
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(&tag)?;
            file.write_all(&payload)?;
            file.sync_all()?;
            fs::rename(&temporary, &path)
        })();
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), "cannot write precompiled entry: {e}");
            let _ = fs::remove_file(&temporary);
        }
    }
}
