//! Real servers for blastwall's tests, shared by the test binaries of every
//! crate: each is started at most once per test binary, and stops with it.
//! A server that cannot start fails the test that needs it, saying what is
//! missing; nothing skips.

pub mod dockerd;
pub mod prometheus;
