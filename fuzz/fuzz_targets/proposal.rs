//! AI proposals: a plan body and the four `Blastwall-*` headers, as any
//! client of the proposal endpoint may send them, checked against a trust
//! store holding one AI-agent key (and one publisher key, so that a
//! signature of the wrong tier can be reached).
//!
//! The whole input is first taken as a body sent without headers (so plain
//! JSON plans are useful seeds), then read as a structured input: `Raw`
//! gives header values and a body straight from the network; `Signed`
//! gives a body the agent key really signed, at a time and with a
//! nonce the input chooses, with at most one part replaced in transit: the
//! fuzzer gets past the signature and into the plan parser, and every
//! tampering must be refused.
//!
//! Properties: whatever verifies carries exactly the plan `Plan::parse`
//! reads from its body; a body `Plan::parse` refuses never verifies; a
//! genuine, fresh envelope from the agent verifies exactly when its plan
//! parses; any replaced part makes it fail; verification never decides a
//! replay (that is the store's job).

#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use blastwall::proposal::{self, Headers, Plan, ProposalError};
use blastwall::signature::TrustStore;
use blastwall_fuzz as fixture;
use libfuzzer_sys::fuzz_target;

static TRUST: LazyLock<TrustStore> = LazyLock::new(fixture::proposal_trust);

#[derive(Arbitrary, Debug)]
enum Signer {
    Agent,
    Publisher,
    Stranger,
}

#[derive(Arbitrary, Debug)]
enum Tamper<'a> {
    Key(&'a str),
    Timestamp(&'a str),
    Nonce(&'a str),
    Signature(&'a str),
    Body(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Raw {
        key: Option<&'a str>,
        timestamp: Option<&'a str>,
        nonce: Option<&'a str>,
        signature: Option<&'a str>,
        body: &'a [u8],
    },
    Signed {
        signer: Signer,
        age: i16,
        nonce: &'a str,
        tamper: Option<Tamper<'a>>,
        body: &'a [u8],
    },
}

/// The nonce rule, restated from the envelope's documentation.
fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Verifies and checks what holds for any input.
fn check(body: &[u8], headers: &Headers<'_>) -> Result<proposal::Verified, ProposalError> {
    let result = proposal::verify(body, headers, &TRUST, fixture::WINDOW, fixture::at(0));
    let parsed = Plan::parse(body);
    match &result {
        Ok(verified) => {
            assert_eq!(
                Some(verified.plan()),
                parsed.as_ref().ok(),
                "a verified plan is its body's plan"
            );
            assert_eq!(verified.key(), &fixture::key_id(fixture::AGENT));
            assert_eq!(Some(verified.nonce()), headers.nonce);
            assert!(valid_nonce(verified.nonce()));
        }
        Err(error) => {
            assert!(
                !matches!(error, ProposalError::Replayed(_)),
                "verify decided a replay: {error}"
            );
            assert!([400, 401, 403].contains(&error.status()), "{error}");
            let _ = error.to_string();
        }
    }
    if parsed.is_err() {
        assert!(result.is_err(), "a body Plan::parse refuses verified");
    }
    if let Ok(plan) = &parsed {
        proposal::check_actions(&plan.actions).expect("a parsed plan's actions check");
        // Defaults written out can make the re-serialised body longer than the limit.
        let again = serde_json::to_vec(plan).expect("a plan serialises");
        if again.len() <= proposal::MAX_BODY_BYTES {
            assert_eq!(
                Plan::parse(&again).as_ref(),
                Ok(plan),
                "a plan survives its own JSON"
            );
        }
    }
    result
}

fuzz_target!(|data: &[u8]| {
    assert!(
        check(data, &Headers::default()).is_err(),
        "an unsigned body verified"
    );
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Raw {
            key,
            timestamp,
            nonce,
            signature,
            body,
        } => {
            let _ = check(
                body,
                &Headers {
                    key,
                    timestamp,
                    nonce,
                    signature,
                },
            );
        }
        Input::Signed {
            signer,
            age,
            nonce,
            tamper,
            body,
        } => {
            let seed = match signer {
                Signer::Agent => fixture::AGENT,
                Signer::Publisher => fixture::PUBLISHER,
                Signer::Stranger => fixture::STRANGER,
            };
            let signed = proposal::sign(body, &fixture::key(seed), fixture::at(age.into()), nonce);
            let mut headers = signed.as_headers();
            let mut sent = body;
            let mut tampered = false;
            match tamper {
                None => {}
                Some(Tamper::Key(v)) => (headers.key, tampered) = (Some(v), v != signed.key),
                Some(Tamper::Timestamp(v)) => {
                    (headers.timestamp, tampered) = (Some(v), v != signed.timestamp)
                }
                Some(Tamper::Nonce(v)) => (headers.nonce, tampered) = (Some(v), v != signed.nonce),
                Some(Tamper::Signature(v)) => {
                    (headers.signature, tampered) = (Some(v), v != signed.signature)
                }
                Some(Tamper::Body(v)) => (sent, tampered) = (v, v != body),
            }
            let result = check(sent, &headers);
            if tampered {
                assert!(result.is_err(), "a tampered proposal verified: {result:?}");
                return;
            }
            let fresh = i64::from(age).unsigned_abs() <= fixture::WINDOW.as_secs();
            let small = body.len() <= proposal::MAX_BODY_BYTES;
            match signer {
                Signer::Agent if fresh && valid_nonce(nonce) => {
                    assert_eq!(result.is_ok(), Plan::parse(body).is_ok(), "{result:?}");
                }
                Signer::Publisher if valid_nonce(nonce) && small => {
                    assert!(
                        matches!(result, Err(ProposalError::WrongTier { .. })),
                        "{result:?}"
                    );
                }
                Signer::Stranger if valid_nonce(nonce) && small => {
                    assert!(
                        matches!(result, Err(ProposalError::UnknownKey(_))),
                        "{result:?}"
                    );
                }
                _ => assert!(result.is_err(), "{result:?}"),
            }
        }
    }
});
