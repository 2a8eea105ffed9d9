//! The trust store: which public keys may sign plugins, in which tier, and
//! which were revoked.
//!
//! A TOML file an operator manages with `blastwall trust add|revoke|list`.
//! Revocation keeps the key's entry (so reviews can still name the signer) and
//! takes effect for every later verification, including plugins already loaded
//! once: verification runs on every load, and only then is the compiled
//! component looked up in the cache.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::keys::{self, KeyError, KeyId};
use crate::policy::Tier;

/// One trusted (or formerly trusted) key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrustedKey {
    /// The key id, e.g. `ed25519:3f2a9c0d1b4e5f60`.
    pub id: KeyId,
    /// A human name for the signer, e.g. `platform-release`.
    pub name: String,
    /// The tier that caps what this key's plugins may be granted.
    pub tier: Tier,
    /// The public key, PEM.
    pub public_key: String,
    /// When the key was added (RFC 3339).
    pub added: String,
    /// When the key was revoked (RFC 3339), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// The trust store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustStore {
    /// Every key ever added, in the order added.
    #[serde(default, rename = "key")]
    pub keys: Vec<TrustedKey>,
}

/// Why a trust-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file could not be read or written.
    #[error("{action} trust store {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid trust store.
    #[error("trust store {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A key problem (unreadable file, not a public key).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The key is already in the store.
    #[error("key {id} is already in the trust store (as {name:?}, tier {tier})")]
    Duplicate {
        /// The key id.
        id: KeyId,
        /// Its name there.
        name: String,
        /// Its tier there.
        tier: Tier,
    },
    /// No such key to revoke.
    #[error("key {0} is not in the trust store")]
    Unknown(KeyId),
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl TrustStore {
    /// Reads a trust store; a missing file is an error (see [`TrustStore::load_or_empty`]).
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrustError::Io {
            action: "cannot read",
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses a trust store's text and checks that every entry's public key
    /// has the id it is filed under, and that no key is listed twice;
    /// `origin` names the text in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, TrustError> {
        let store: TrustStore = toml::from_str(text).map_err(|e| TrustError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut seen = std::collections::HashSet::new();
        for key in &store.keys {
            // One entry per key: with two, lookups would read the first and a
            // revocation or tier written on the second would be ignored.
            if !seen.insert(&key.id) {
                return Err(TrustError::Parse {
                    path: origin.to_string(),
                    message: format!("key {} is listed more than once", key.id),
                });
            }
            let parsed =
                keys::parse_public_key(&key.public_key, &format!("trust store entry {}", key.id))?;
            if KeyId::of(&parsed) != key.id {
                return Err(TrustError::Parse {
                    path: origin.to_string(),
                    message: format!(
                        "entry {} holds a public key whose id is {}",
                        key.id,
                        KeyId::of(&parsed)
                    ),
                });
            }
        }
        Ok(store)
    }

    /// Reads a trust store, or starts an empty one if the file does not exist.
    pub fn load_or_empty(path: &Path) -> Result<Self, TrustError> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    /// Writes the store atomically (temporary file, fsync, rename): a crash
    /// leaves either the old store or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), TrustError> {
        let io = |action, source| TrustError::Io {
            action,
            path: path.display().to_string(),
            source,
        };
        let mut text = String::from(
            "# blastwall trust store: managed with `blastwall trust add|revoke|list`.\n\n",
        );
        text.push_str(&toml::to_string_pretty(self).expect("a trust store always serializes"));
        let temporary = path.with_extension("toml.tmp");
        std::fs::write(&temporary, text).map_err(|e| io("cannot write", e))?;
        std::fs::File::open(&temporary)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("cannot sync", e))?;
        std::fs::rename(&temporary, path).map_err(|e| io("cannot replace", e))
    }

    /// Adds a public key file under `tier`; the name defaults to the file's stem.
    pub fn add(
        &mut self,
        public_key_file: &Path,
        tier: Tier,
        name: Option<&str>,
    ) -> Result<&TrustedKey, TrustError> {
        let (key, pem) = keys::read_verifying_key(public_key_file)?;
        let id = KeyId::of(&key);
        if let Some(existing) = self.keys.iter().find(|k| k.id == id) {
            return Err(TrustError::Duplicate {
                id,
                name: existing.name.clone(),
                tier: existing.tier,
            });
        }
        let name = name
            .map(str::to_string)
            .or_else(|| {
                public_key_file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| id.to_string());
        self.keys.push(TrustedKey {
            id,
            name,
            tier,
            public_key: pem,
            added: now(),
            revoked: None,
        });
        Ok(self.keys.last().expect("just pushed"))
    }

    /// Marks a key revoked. Revoking twice keeps the first time.
    pub fn revoke(&mut self, id: &KeyId) -> Result<&TrustedKey, TrustError> {
        let key = self
            .keys
            .iter_mut()
            .find(|k| &k.id == id)
            .ok_or_else(|| TrustError::Unknown(id.clone()))?;
        key.revoked.get_or_insert_with(now);
        Ok(key)
    }

    /// The entry for `id`, revoked or not.
    pub fn get(&self, id: &KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| &k.id == id)
    }

    /// The verifying key of an entry (validated when the store was loaded or added to).
    pub fn verifying_key(entry: &TrustedKey) -> VerifyingKey {
        keys::parse_public_key(&entry.public_key, entry.id.as_str()).expect("validated on load")
    }
}
