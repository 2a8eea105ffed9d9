//! blastwall: runs infrastructure remediations as capability-gated WebAssembly components.
//!
//! The flow, one module per stage:
//!
//! ```text
//! Alert ─▶ Incident ─▶ Grants ─▶ PluginArtifact ─▶ Sandbox run ─▶ Effects ─▶ RunReport
//! alert    incident    policy    artifact/manifest   sandbox        provider   sandbox::report
//! ```
//!
//! - [`alert`] parses Alertmanager webhook payloads (untrusted text).
//! - [`incident`] turns an alert into the one thing a plugin is asked to fix.
//! - [`manifest`] is what a plugin declares it needs; [`policy`] intersects it with
//!   the operator's policy and the incident's target into [`policy::Grants`].
//! - [`signature`] verifies a signed artifact against the trust store; only it makes
//!   a signed [`signature::PluginArtifact`] (component bytes + manifest + signer).
//! - [`sandbox`] compiles, import-checks and links a plugin, then runs it in a fresh
//!   store within fuel, memory, time and action limits, checking every call.
//! - [`provider`] applies effects: a simulated fleet (dry run) or real log files.
//! - [`remediation`] strings the stages together for one run.
//! - [`verify`] checks whether a live action worked: a PromQL condition or the alert resolving.
//! - [`escalate`] tells a human (webhook, Slack, PagerDuty) when automation stops.
//! - [`bundled`] carries the example plugins inside the binary.
//! - [`demo`] replays sample incidents through the whole loop (`blastwall demo`).

// One `unsafe` block exists, in `sandbox::cache` (wasmtime's `deserialize`),
// behind an HMAC check and a SAFETY comment; everything else is safe code.
#![deny(unsafe_code)]

pub mod alert;
pub mod api;
pub mod audit;
pub mod bundled;
pub mod catalog;
pub mod classify;
pub mod cli;
pub mod config;
pub mod demo;
pub mod duration;
pub mod escalate;
pub mod guardrails;
pub mod incident;
pub mod manifest;
pub mod policy;
pub mod proposal;
pub mod provider;
pub mod remediation;
pub mod respond;
pub mod review;
pub mod sandbox;
pub mod secret;
pub mod serve;
pub mod signature;
pub mod store;
pub mod text;
pub mod verify;
pub mod wildcard;
pub mod workload;
