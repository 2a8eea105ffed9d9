//! AI proposals: what an agent holding an `ai-agent` key may ask the host to do.
//!
//! Two forms. A *plan* is a signed JSON body naming an incident (or carrying
//! its alert), a class from the catalog, a confidence, a rationale and a list
//! of capability calls; the built-in plan runner (`plugins/plan-runner`)
//! executes it in the sandbox, so every action meets the same grant check,
//! fuel, memory and time limits as any plugin. A *component* is a signed
//! plugin whose signer is an `ai-agent` key. Both run under the `ai-agent`
//! tier and through the same guardrails and audit as the catalog's plugins
//! (`Responder::propose`, `Responder::propose_component`).
//!
//! Threat model: the agent is trusted to *ask*, never to decide. It may
//! hallucinate targets, replica counts or capabilities, replay or delay a
//! signed request, or hand in a publisher-looking key. This module rejects
//! what is not authentic, fresh, of the right tier and well formed; the grant
//! check at the sandbox boundary denies what is not allowed; the store spends
//! each nonce once, atomically with the proposal's record.

mod envelope;
mod plan;

use std::time::Duration;

pub use envelope::{
    HEADER_KEY, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, Headers, SignedHeaders, Verified,
    new_nonce, sign, signed_message, verify,
};
pub use plan::{
    Action, Arguments, MAX_ACTIONS, MAX_BODY_BYTES, MAX_RATIONALE_BYTES, Plan, check_actions,
};

use crate::policy::Tier;
use crate::signature::KeyId;

/// How proposals are judged; the defaults suit most hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalSettings {
    /// How far a proposal's timestamp may be from now, either way. Default 5
    /// minutes. Hosts sharing a store should use the same window.
    pub freshness: Duration,
    /// Below this (capped) confidence a proposal waits for a human even when
    /// its class runs automatically. Default `0.9`.
    pub auto_confidence: f32,
}

impl Default for ProposalSettings {
    fn default() -> Self {
        ProposalSettings {
            freshness: Duration::from_secs(300),
            auto_confidence: 0.9,
        }
    }
}

/// Why a proposal was refused before anything was decided. [`Self::status`]
/// is the HTTP status an API answers with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProposalError {
    /// The body is not a well-formed plan (400).
    #[error("malformed proposal: {0}")]
    Malformed(String),
    /// A header is missing (401).
    #[error("unsigned proposal: the {0} header is missing")]
    Unsigned(&'static str),
    /// A header is not in its format (401).
    #[error("unsigned proposal: the {name} header {value:?} is malformed")]
    BadHeader {
        /// The header.
        name: &'static str,
        /// Its value (truncated).
        value: String,
    },
    /// The key is not in the trust store (401).
    #[error("unknown key: {0} is not in the trust store")]
    UnknownKey(KeyId),
    /// The key was revoked (401).
    #[error("revoked key: {key} was revoked at {at}")]
    RevokedKey {
        /// The key.
        key: KeyId,
        /// When.
        at: String,
    },
    /// The signature does not verify over the message (401).
    #[error("bad signature: the signature does not verify with key {0}")]
    BadSignature(KeyId),
    /// The timestamp is outside the freshness window (401).
    #[error(
        "stale proposal: timestamp {timestamp} is {} s from now ({now}); at most {window} s either way",
        (now - timestamp).abs()
    )]
    Stale {
        /// The proposal's timestamp, Unix seconds.
        timestamp: i64,
        /// Now, Unix seconds.
        now: i64,
        /// The window, seconds.
        window: i64,
    },
    /// The key is trusted, but not of the `ai-agent` tier (403).
    #[error("wrong tier: key {key} is of tier {tier}; proposals need an ai-agent key")]
    WrongTier {
        /// The key.
        key: KeyId,
        /// Its tier.
        tier: Tier,
    },
    /// The nonce (or component proposal) was accepted before (409).
    #[error("replayed proposal: {0}")]
    Replayed(String),
    /// A component proposal's signed file did not verify (400 when
    /// malformed, 401 otherwise).
    #[error("component proposal: {0}")]
    Component(crate::signature::VerifyError),
}

impl ProposalError {
    /// The HTTP status for this refusal: 400, 401, 403 or 409.
    pub fn status(&self) -> u16 {
        match self {
            ProposalError::Malformed(_) => 400,
            ProposalError::Unsigned(_)
            | ProposalError::BadHeader { .. }
            | ProposalError::UnknownKey(_)
            | ProposalError::RevokedKey { .. }
            | ProposalError::BadSignature(_)
            | ProposalError::Stale { .. } => 401,
            ProposalError::WrongTier { .. } => 403,
            ProposalError::Replayed(_) => 409,
            ProposalError::Component(crate::signature::VerifyError::Malformed(_)) => 400,
            ProposalError::Component(_) => 401,
        }
    }
}

#[cfg(test)]
mod tests;
