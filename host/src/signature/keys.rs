//! Ed25519 signing keys: generation, key ids, and PEM files.
//!
//! Keys are stored in the standard encodings (PKCS#8 for the private key,
//! SubjectPublicKeyInfo for the public key, both PEM) so that `openssl` and
//! other tools can read them. A key is named by its id: `ed25519:` and the
//! first 16 hex digits of the SHA-256 of its 32 public-key bytes.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A key id, e.g. `ed25519:3f2a9c0d1b4e5f60`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The id of `key`.
    pub fn of(key: &VerifyingKey) -> Self {
        let hash = Sha256::digest(key.as_bytes());
        KeyId(format!("ed25519:{}", hex::encode(&hash[..8])))
    }

    /// Parses a key id given by a user; it must look like one.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let hex_part = text.strip_prefix("ed25519:").unwrap_or_default();
        if hex_part.len() == 16
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            Ok(KeyId(text.to_string()))
        } else {
            Err(KeyError::BadId(text.chars().take(64).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system's random source failed.
    #[error("cannot generate a key: the system random source failed: {0}")]
    Random(String),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file exists and would be overwritten.
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(String),
    /// A file is not a key of the expected kind.
    #[error("{path} is not an Ed25519 {kind} key in PEM form")]
    Decode {
        /// The file.
        path: String,
        /// `private` or `public`.
        kind: &'static str,
    },
    /// A key name with characters that do not belong in a file name.
    #[error("key name {0:?} must be 1-64 letters, digits, '-' or '_'")]
    BadName(String),
    /// Text that is not a key id.
    #[error("{0:?} is not a key id (expected ed25519: and 16 lowercase hex digits)")]
    BadId(String),
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

/// A new signing key from the operating system's random source.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.display().to_string()),
            _ => KeyError::Io {
                action: "cannot create",
                path: path.display().to_string(),
                source,
            },
        })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Io {
            action: "cannot write",
            path: path.display().to_string(),
            source,
        })
}

/// The public key in SubjectPublicKeyInfo PEM, as trust stores hold it.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("an Ed25519 key always encodes as SPKI")
}

/// Writes `key` to a new file at `path` as PKCS#8 PEM, mode 0600. Never
/// overwrites: an existing file is [`KeyError::Exists`].
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an Ed25519 key always encodes as PKCS#8");
    write_new(path, &private, 0o600)
}

/// Generates a key pair and writes `DIR/NAME.key` (mode 0600) and `DIR/NAME.pub`.
/// Returns the two paths and the key id. Never overwrites an existing file.
pub fn generate_files(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf, KeyId), KeyError> {
    check_name(name)?;
    let key = generate()?;
    let key_path = dir.join(format!("{name}.key"));
    let pub_path = dir.join(format!("{name}.pub"));
    if pub_path.exists() {
        return Err(KeyError::Exists(pub_path.display().to_string()));
    }
    write_signing_key(&key_path, &key)?;
    write_new(&pub_path, &public_key_pem(&key.verifying_key()), 0o644)?;
    Ok((key_path, pub_path, KeyId::of(&key.verifying_key())))
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        action: "cannot read",
        path: path.display().to_string(),
        source,
    })
}

/// Reads a private key file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(&read(path)?).map_err(|_| KeyError::Decode {
        path: path.display().to_string(),
        kind: "private",
    })
}

/// Parses a public key from PEM text.
pub fn parse_public_key(pem: &str, origin: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|_| KeyError::Decode {
        path: origin.to_string(),
        kind: "public",
    })
}

/// Reads a public key file.
pub fn read_verifying_key(path: &Path) -> Result<(VerifyingKey, String), KeyError> {
    let pem = read(path)?;
    let key = parse_public_key(&pem, &path.display().to_string())?;
    Ok((key, pem))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_a_private_key_only_its_owner_can_read_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (key, public, id) = generate_files(dir.path(), "release").unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let signing = read_signing_key(&key).unwrap();
        let (verifying, _) = read_verifying_key(&public).unwrap();
        assert_eq!(signing.verifying_key(), verifying);
        assert_eq!(KeyId::of(&verifying), id);
        assert!(id.as_str().starts_with("ed25519:") && id.as_str().len() == 24);
        let err = generate_files(dir.path(), "release").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("already exists; refusing to overwrite a key"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_names_ids_and_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            generate_files(dir.path(), "../evil"),
            Err(KeyError::BadName(_))
        ));
        assert!(KeyId::parse("ed25519:0123456789abcdef").is_ok());
        assert!(KeyId::parse("ed25519:0123").is_err());
        let junk = dir.path().join("junk.pub");
        std::fs::write(&junk, "hello").unwrap();
        let err = read_verifying_key(&junk).unwrap_err().to_string();
        assert!(
            err.ends_with("is not an Ed25519 public key in PEM form"),
            "{err}"
        );
    }
}
