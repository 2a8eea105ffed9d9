//! Development trust: a key that signs the plugins bundled in this binary, so
//! that a development host loads them through [`signature::verify`] like any
//! other plugin instead of with `--insecure-unsigned`.
//!
//! This is **development trust only**. A signature by a [`DevKey`] says that the
//! bytes are the ones compiled into this binary and nothing more: nobody
//! reviewed or released them under this key. The trust store it makes trusts
//! the key alone, in the `publisher` tier, under the name
//! [`DEV_SIGNER`]; production hosts use their own release keys and trust
//! stores (`blastwall keygen`, `blastwall trust add`).
//!
//! The key is either ephemeral (in memory, gone with the process: `blastwall
//! demo`) or kept in a directory as PKCS#8 PEM at mode 0600, created once and
//! never overwritten, so a long-running development host keeps one identity.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;

use super::Bundled;
use crate::policy::Tier;
use crate::signature::{
    self, KeyError, KeyId, PluginArtifact, SignError, TrustStore, TrustedKey, VerifyError,
};

/// The file a kept development key lives in, inside its directory.
pub const DEV_KEY_FILE: &str = "dev-signing.key";

/// The signer's name in the development trust store.
pub const DEV_SIGNER: &str = "development key (bundled plugins, not for production)";

/// A development signing key for the bundled plugins.
pub struct DevKey {
    key: SigningKey,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("DevKey")
            .field("id", &self.id())
            .field("path", &self.path)
            .finish()
    }
}

/// Why the bundled plugins could not be signed and verified with a development key.
#[derive(Debug, thiserror::Error)]
pub enum DevTrustError {
    /// The key could not be made, read or written.
    #[error("development key: {0}")]
    Key(#[from] KeyError),
    /// A bundled plugin could not be signed.
    #[error("cannot sign bundled plugin {name}: {source}")]
    Sign {
        /// The plugin.
        name: &'static str,
        /// Why.
        source: SignError,
    },
    /// A freshly signed bundled plugin did not verify.
    #[error("bundled plugin {name} does not verify with the development key: {source}")]
    Verify {
        /// The plugin.
        name: &'static str,
        /// Why.
        source: VerifyError,
    },
}

impl DevKey {
    /// A new key that lives in memory only.
    pub fn ephemeral() -> Result<Self, KeyError> {
        Ok(DevKey {
            key: signature::generate()?,
            path: None,
        })
    }

    /// The key kept in `dir` ([`DEV_KEY_FILE`]), created (mode 0600, in a
    /// directory created 0700 if missing) when there is none. An existing file
    /// is never overwritten: if it is not a private key, or others may read it,
    /// this fails and leaves it as it is.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| KeyError::Io {
                action: "cannot create",
                path: dir.display().to_string(),
                source,
            })?;
        let path = dir.join(DEV_KEY_FILE);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => return Self::read(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KeyError::Io {
                    action: "cannot inspect",
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        let key = signature::generate()?;
        match signature::write_signing_key(&path, &key) {
            Ok(()) => Ok(DevKey {
                key,
                path: Some(path),
            }),
            // Another process created it first: use that one.
            Err(KeyError::Exists(_)) => Self::read(path),
            Err(e) => Err(e),
        }
    }

    fn read(path: PathBuf) -> Result<Self, KeyError> {
        let meta = std::fs::symlink_metadata(&path).map_err(|source| KeyError::Io {
            action: "cannot inspect",
            path: path.display().to_string(),
            source,
        })?;
        let open = meta.permissions().mode() & 0o077;
        if !meta.is_file() || open != 0 {
            return Err(KeyError::Io {
                action: "refusing to use",
                path: path.display().to_string(),
                source: io::Error::other(if meta.is_file() {
                    "a private key others may read (expected mode 0600)"
                } else {
                    "not a regular file"
                }),
            });
        }
        let key = signature::read_signing_key(&path)?;
        Ok(DevKey {
            key,
            path: Some(path),
        })
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.key.verifying_key())
    }

    /// Where the key is kept; `None` for an ephemeral key.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Signs one bundled plugin: the signed `.wasm` file's bytes.
    pub fn sign(&self, bundled: &Bundled) -> Result<Vec<u8>, DevTrustError> {
        signature::sign(bundled.wasm, bundled.manifest, &self.key).map_err(|source| {
            DevTrustError::Sign {
                name: bundled.name,
                source,
            }
        })
    }

    /// A trust store that trusts this key, and only it, as a publisher.
    pub fn trust_store(&self) -> TrustStore {
        TrustStore {
            keys: vec![TrustedKey {
                id: self.id(),
                name: DEV_SIGNER.into(),
                tier: Tier::Publisher,
                public_key: signature::public_key_pem(&self.key.verifying_key()),
                added: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                revoked: None,
            }],
        }
    }
}

/// Signs `plugins` with `key` and loads each through [`signature::verify`]
/// against the key's trust store, as a host loads any signed plugin.
pub fn sign_all(
    key: &DevKey,
    plugins: &[Bundled],
) -> Result<(Vec<Arc<PluginArtifact>>, TrustStore), DevTrustError> {
    let trust = key.trust_store();
    let artifacts = plugins
        .iter()
        .map(|bundled| {
            let signed = key.sign(bundled)?;
            signature::verify(&signed, &trust)
                .map(Arc::new)
                .map_err(|source| DevTrustError::Verify {
                    name: bundled.name,
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((artifacts, trust))
}

/// The example plugins ([`super::ALL`]) signed with `key` and verified, with
/// the development trust store that accepts them.
pub fn sign_bundled(key: &DevKey) -> Result<(Vec<Arc<PluginArtifact>>, TrustStore), DevTrustError> {
    sign_all(key, &super::ALL)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::signature::Provenance;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_kept_key_is_created_once_at_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = DevKey::load_or_create(&keys).unwrap();
        let path = keys.join(DEV_KEY_FILE);
        assert_eq!(first.path(), Some(path.as_path()));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&keys), 0o700);
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");

        let again = DevKey::load_or_create(&keys).unwrap();
        assert_eq!(again.id(), first.id(), "the same identity on every start");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    }

    #[test]
    fn a_file_that_is_not_a_usable_key_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEV_KEY_FILE);
        std::fs::write(&path, "not a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = DevKey::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not an Ed25519 private key"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");

        // A real key others may read is refused too, and not rewritten.
        std::fs::remove_file(&path).unwrap();
        let id = DevKey::load_or_create(dir.path()).unwrap().id();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = DevKey::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("others may read"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(DevKey::load_or_create(dir.path()).unwrap().id(), id);
    }

    #[test]
    fn ephemeral_keys_differ_and_sign_the_bundled_plugins_as_a_publisher() {
        let key = DevKey::ephemeral().unwrap();
        assert!(key.path().is_none());
        assert_ne!(DevKey::ephemeral().unwrap().id(), key.id());
        let (plugins, trust) = sign_bundled(&key).unwrap();
        assert_eq!(plugins.len(), super::super::ALL.len());
        assert_eq!(trust.keys.len(), 1);
        assert_eq!(trust.keys[0].name, DEV_SIGNER);
        for plugin in &plugins {
            assert_eq!(
                plugin.provenance(),
                &Provenance::Signed {
                    key_id: key.id(),
                    signer: DEV_SIGNER.into(),
                    tier: Tier::Publisher,
                }
            );
        }
        // Another key's trust store does not accept them.
        let other = DevKey::ephemeral().unwrap().trust_store();
        let signed = key.sign(&super::super::ALL[0]).unwrap();
        assert!(matches!(
            signature::verify(&signed, &other),
            Err(VerifyError::UnknownKey(_))
        ));
    }
}
