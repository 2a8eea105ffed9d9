//! The `[api]` section: where `serve` listens, its queue, its tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::auth::Role;

/// How `blastwall serve` listens and whom it lets in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApiConfig {
    /// The address to listen on, e.g. `127.0.0.1:8080` (the default).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Alerts admitted but not yet being processed, at most. When full,
    /// `POST /v1/alerts` answers 503 with `Retry-After`, so Alertmanager
    /// retries and nothing is lost. Default 10000.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Alerts processed at once (each may run a plugin and wait for its
    /// verification). Default 256.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The largest request body accepted, in bytes. Default 4 MiB (the
    /// largest Alertmanager payload blastwall reads).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How often runs left by dead processes and alerts admitted but never
    /// decided are taken up again, e.g. `30s` (the default).
    #[serde(default = "default_recovery_interval", with = "crate::duration")]
    pub recovery_interval: Duration,
    /// How long shutdown waits for runs in flight, e.g. `60s` (the default).
    #[serde(default = "default_drain_timeout", with = "crate::duration")]
    pub drain_timeout: Duration,
    /// Bearer tokens and their roles. With none, `serve` creates one local
    /// `admin` token in the data directory (development only).
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Serve HTTPS instead of HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_listen(),
            queue_capacity: default_queue_capacity(),
            max_in_flight: default_max_in_flight(),
            max_body_bytes: default_max_body_bytes(),
            recovery_interval: default_recovery_interval(),
            drain_timeout: default_drain_timeout(),
            tokens: Vec::new(),
            tls: None,
        }
    }
}

/// One bearer token. The token itself never appears in configuration: give
/// its SHA-256 (`blastwall token` prints both), or the environment variable
/// that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenConfig {
    /// Who holds it, for the audit (`alertmanager`, `alice`, `remediation-agent`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The token's SHA-256, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The environment variable holding the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// A certificate and key for HTTPS (PEM files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsConfig {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_queue_capacity() -> usize {
    10_000
}

fn default_max_in_flight() -> usize {
    256
}

fn default_max_body_bytes() -> usize {
    crate::alert::MAX_PAYLOAD_BYTES
}

fn default_recovery_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(60)
}
