//! blastwall: runs infrastructure remediations as capability-gated WebAssembly components.
//!
//! The flow, one module per stage, declared below in this order:
//!
//! ```text
//!  Alertmanager ─▶ alert ─▶ incident ─▶ classify ─▶ catalog ─▶ guardrails ─┐
//!  AI agent ────▶ proposal (a signed plan, or a signed component) ─────────┤
//!                                                                          ▼
//!   signature ─▶ manifest + policy ─▶ sandbox ─▶ provider ─▶ verify ─▶ escalate
//!   (verified    (grants: the least   (fuel,     (effects:   (did it   (a human,
//!    plugin)      the run may do)      memory,    dry-run,    work?)    when
//!                                      time)      live)                 automation stops)
//!
//!   every step ─▶ audit (hash-chained, HMAC-sealed) in store
//! ```
//!
//! - [`alert`] parses Alertmanager webhook payloads (untrusted text).
//! - [`proposal`] verifies an AI agent's signed plan or component, the other way in.
//! - [`incident`] turns an alert into the one thing a plugin is asked to fix.
//! - [`classify`] names the failure class (rules, then an optional model).
//! - [`catalog`] maps a class to a plugin, its mode and its per-class guardrails.
//! - [`guardrails`] decides whether the host may act now, in one fixed order.
//! - [`signature`] verifies a signed artifact against the trust store; only it makes
//!   a signed [`signature::PluginArtifact`] (component bytes + manifest + signer);
//!   [`review`] shows an operator what a plugin asks for before they trust it.
//! - [`manifest`] is what a plugin declares it needs; [`policy`] intersects it with
//!   the operator's policy, its signer's tier and the incident's target into
//!   [`policy::Grants`].
//! - [`sandbox`] compiles, import-checks and links a plugin, then runs it in a fresh
//!   store within fuel, memory, time and action limits, checking every call.
//! - [`provider`] applies effects: the simulated fleet, or the configured
//!   platform and log files; [`remediation`] strings grant, load and run together
//!   for one run.
//! - [`verify`] checks whether a live action worked: a PromQL condition or the alert resolving.
//! - [`escalate`] tells a human (webhook, Slack, PagerDuty) when automation stops.
//! - [`audit`] is the tamper-evident record of every step; [`store`] keeps it
//!   with the incidents, runs, approvals and controls.
//! - [`respond`] drives the loop through those stages; [`api`] and [`serve`] put
//!   it behind HTTP.
//! - [`bundled`] carries the example plugins inside the binary.
//!
//! The command line (and `blastwall demo`) is the binary's, not the library's.

// One `unsafe` block exists, in `sandbox::cache` (wasmtime's `deserialize`),
// behind an HMAC check and a SAFETY comment; everything else is safe code.
#![deny(unsafe_code)]

// Intake.
pub mod alert;
pub mod proposal;
pub mod incident;
pub mod classify;
pub mod catalog;
pub mod guardrails;
// The plugin and its run.
pub mod signature;
pub mod review;
pub mod manifest;
pub mod policy;
pub mod sandbox;
pub mod provider;
pub mod remediation;
// After the run.
pub mod verify;
pub mod escalate;
pub mod audit;
pub mod store;
// The loop, and the service around it.
pub mod respond;
pub mod api;
pub mod serve;
// Shared vocabulary and helpers.
pub mod bundled;
pub mod config;
pub mod duration;
pub mod secret;
pub mod text;
pub mod wildcard;
pub mod workload;
