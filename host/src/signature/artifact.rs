//! Plugin artifacts: the bytes of a component together with its manifest.
//!
//! The sandbox only loads a [`PluginArtifact`], and there are two ways to get
//! one: [`super::verify`], which checks a signature against the trust store
//! and is the only way to build a signed artifact (the constructor is private
//! to the signature module), and [`PluginArtifact::insecure_unsigned`], whose
//! name says what it is and which only local development uses.

use std::fmt;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::keys::KeyId;
use crate::manifest::Manifest;
use crate::policy::Tier;

/// SHA-256 of a component's bytes; names a plugin version in caches and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How the host came to trust an artifact's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Provenance {
    /// A trusted key signed exactly these bytes and this manifest.
    Signed {
        /// The signing key.
        key_id: KeyId,
        /// The signer's name in the trust store.
        signer: String,
        /// The key's tier.
        tier: Tier,
    },
    /// Nobody vouched for these bytes; allowed only by an explicit development flag.
    InsecureUnsigned,
    /// Compiled into the host's own binary (the plan runner): as trusted as
    /// the host itself, and capped by whatever tier its caller runs it under.
    BuiltIn,
}

impl Provenance {
    /// The signer's tier, if signed.
    pub fn tier(&self) -> Option<Tier> {
        match self {
            Provenance::Signed { tier, .. } => Some(*tier),
            Provenance::InsecureUnsigned | Provenance::BuiltIn => None,
        }
    }
}

/// A component and its manifest, ready to be loaded by the sandbox.
#[derive(Debug, Clone)]
pub struct PluginArtifact {
    bytes: Vec<u8>,
    manifest: Manifest,
    digest: Digest,
    provenance: Provenance,
}

impl PluginArtifact {
    /// A verified artifact. Only [`super::verify`] may call this.
    pub(super) fn signed(bytes: Vec<u8>, manifest: Manifest, provenance: Provenance) -> Self {
        let digest = Digest::of(&bytes);
        PluginArtifact {
            bytes,
            manifest,
            digest,
            provenance,
        }
    }

    /// Wraps bytes nobody signed. Only for local development (`--insecure-unsigned`).
    pub fn insecure_unsigned(bytes: Vec<u8>, manifest: Manifest) -> Self {
        let digest = Digest::of(&bytes);
        PluginArtifact {
            bytes,
            manifest,
            digest,
            provenance: Provenance::InsecureUnsigned,
        }
    }

    /// A plugin compiled into this binary. Only [`crate::bundled`] calls this,
    /// for the plan runner.
    pub(crate) fn built_in(bytes: Vec<u8>, manifest: Manifest) -> Self {
        let digest = Digest::of(&bytes);
        PluginArtifact {
            bytes,
            manifest,
            digest,
            provenance: Provenance::BuiltIn,
        }
    }

    /// The component's bytes, exactly as they will be compiled.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The manifest that travels with these bytes.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Where trust in the bytes came from.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }
}
