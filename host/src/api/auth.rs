//! Bearer tokens and roles.
//!
//! Threat model: a network client without a token can read or change nothing
//! but the health endpoints. Tokens are kept as SHA-256 digests, and a
//! presented token's digest is compared with every configured one in
//! constant time (no early exit, no length leak), so response timing tells
//! nothing about how close a guess was. Roles are fixed sets of permissions,
//! checked by each handler with [`Caller::require`]; an `ai-agent` can never
//! approve or deny anything, its own proposals included.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::config::TokenConfig;
use super::error::ApiError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Alertmanager (or anything speaking its webhook): posts alerts.
    AlertSource,
    /// An AI agent: posts signed proposals, reads incidents.
    AiAgent,
    /// An on-call human: reads everything, approves and denies, switches
    /// automation off and on, manages windows.
    Operator,
    /// Everything an operator may do, and post alerts.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::AlertSource => "alert-source",
            Role::AiAgent => "ai-agent",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// Roles that may post alerts.
pub const ALERT_SOURCES: &[Role] = &[Role::AlertSource, Role::Admin];
/// Roles that may submit proposals.
pub const AGENTS: &[Role] = &[Role::AiAgent, Role::Admin];
/// Roles that may read incidents (agents need them to propose).
pub const INCIDENT_READERS: &[Role] = &[Role::Operator, Role::Admin, Role::AiAgent];
/// Roles that may read and change everything operators steer.
pub const OPERATORS: &[Role] = &[Role::Operator, Role::Admin];
/// Every role (e.g. for the API description).
pub const ANY: &[Role] = &[
    Role::AlertSource,
    Role::AiAgent,
    Role::Operator,
    Role::Admin,
];

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name from configuration.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// Refuses (403) unless the caller's role is one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let allowed: Vec<String> = roles.iter().map(ToString::to_string).collect();
        Err(ApiError::forbidden(format!(
            "the {} role may not do this (needs {})",
            self.role,
            allowed.join(" or ")
        )))
    }

    /// The caller as the audit names it, e.g. `operator:alice`.
    pub fn audit_name(&self) -> String {
        format!("{}:{}", self.role, self.name)
    }
}

/// The configured tokens, as digests.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Caller)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish()
    }
}

/// The SHA-256 of a token, as configuration holds it.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Tokens shorter than this are refused: a bearer token must not be guessable.
pub const MIN_TOKEN_LEN: usize = 24;

impl Tokens {
    /// Reads the configured tokens; `env` lookups happen here, once.
    /// Errors name the token at fault and never contain a token.
    pub fn from_config(tokens: &[TokenConfig]) -> Result<Tokens, String> {
        let mut entries = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let which = format!("api.tokens[{i}] ({})", token.name);
            if token.name.trim().is_empty() || token.name.len() > 128 {
                return Err(format!("{which}: name must be 1 to 128 characters"));
            }
            let digest = match (&token.sha256, &token.env) {
                (Some(hex_digest), None) => {
                    let bytes = hex::decode(hex_digest)
                        .ok()
                        .filter(|b| {
                            b.len() == 32 && hex_digest.bytes().all(|c| !c.is_ascii_uppercase())
                        })
                        .ok_or_else(|| {
                            format!("{which}: sha256 must be 64 lowercase hex digits")
                        })?;
                    <[u8; 32]>::try_from(bytes.as_slice()).expect("32 bytes")
                }
                (None, Some(var)) => {
                    let value = std::env::var(var)
                        .map_err(|_| format!("{which}: environment variable {var} is not set"))?;
                    if value.len() < MIN_TOKEN_LEN {
                        return Err(format!(
                            "{which}: the token in {var} is shorter than {MIN_TOKEN_LEN} characters"
                        ));
                    }
                    digest(&value)
                }
                _ => return Err(format!("{which}: give exactly one of sha256 or env")),
            };
            if entries.iter().any(|(d, _)| d == &digest) {
                return Err(format!("{which}: the same token is configured twice"));
            }
            entries.push((
                digest,
                Caller {
                    name: token.name.clone(),
                    role: token.role,
                },
            ));
        }
        Ok(Tokens { entries })
    }

    /// Whether any token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller a presented token belongs to. Every configured digest is
    /// compared, in constant time, whatever matches.
    pub fn identify(&self, presented: &str) -> Option<Caller> {
        let presented = digest(presented);
        let mut found = None;
        for (digest, caller) in &self.entries {
            if bool::from(digest.ct_eq(&presented)) {
                found = Some(caller);
            }
        }
        found.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, sha256: Option<String>, env: Option<&str>) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            role: Role::Operator,
            sha256,
            env: env.map(String::from),
        }
    }

    #[test]
    fn tokens_are_identified_by_digest_and_nothing_else() {
        let token = "a-long-enough-token-for-alice";
        let tokens = Tokens::from_config(&[
            entry("alice", Some(hex::encode(digest(token))), None),
            entry(
                "bob",
                Some(hex::encode(digest("bob-has-another-token-0000"))),
                None,
            ),
        ])
        .unwrap();
        assert_eq!(tokens.identify(token).unwrap().name, "alice");
        assert_eq!(
            tokens.identify("bob-has-another-token-0000").unwrap().name,
            "bob"
        );
        assert!(tokens.identify("a-long-enough-token-for-alicE").is_none());
        assert!(tokens.identify("").is_none());
        assert!(!format!("{tokens:?}").contains(&hex::encode(digest(token))));
    }

    #[test]
    fn bad_token_configuration_is_refused_without_echoing_secrets() {
        let upper = hex::encode(digest("x")).to_uppercase();
        let cases = [
            (
                entry("a", None, None),
                "api.tokens[0] (a): give exactly one of sha256 or env",
            ),
            (
                entry("a", Some("abc".into()), None),
                "api.tokens[0] (a): sha256 must be 64 lowercase hex digits",
            ),
            (
                entry("a", Some(upper), None),
                "api.tokens[0] (a): sha256 must be 64 lowercase hex digits",
            ),
            (
                entry("a", Some(hex::encode(digest("x"))), Some("HOME")),
                "api.tokens[0] (a): give exactly one of sha256 or env",
            ),
            (
                entry("a", None, Some("BLASTWALL_TEST_TOKEN_THAT_IS_NOT_SET")),
                "api.tokens[0] (a): environment variable BLASTWALL_TEST_TOKEN_THAT_IS_NOT_SET is not set",
            ),
            (
                entry("", Some(hex::encode(digest("x"))), None),
                "api.tokens[0] (): name must be 1 to 128 characters",
            ),
        ];
        for (config, message) in cases {
            assert_eq!(Tokens::from_config(&[config]).unwrap_err(), message);
        }
        let twice = entry("a", Some(hex::encode(digest("same"))), None);
        let err = Tokens::from_config(&[twice.clone(), twice]).unwrap_err();
        assert_eq!(err, "api.tokens[1] (a): the same token is configured twice");
    }

    #[test]
    fn roles_are_checked_and_named_in_the_refusal() {
        let agent = Caller {
            name: "agent".into(),
            role: Role::AiAgent,
        };
        assert!(agent.require(AGENTS).is_ok());
        let refusal = agent.require(OPERATORS).unwrap_err();
        assert_eq!(refusal.status, axum::http::StatusCode::FORBIDDEN);
        assert_eq!(
            refusal.message,
            "the ai-agent role may not do this (needs operator or admin)"
        );
        assert_eq!(agent.audit_name(), "ai-agent:agent");
    }
}
