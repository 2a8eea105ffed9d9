//! The restricted WASI a plugin gets: enough for Rust's `std` to start, nothing
//! that reaches the world.
//!
//! Linked: `wasi:io`, `wasi:clocks`, `wasi:random`, `wasi:cli` (no arguments, no
//! environment, empty stdin, stdout/stderr captured) and `wasi:filesystem` with
//! no preopened directory, so every open fails. Not linked: `wasi:sockets`,
//! `wasi:http` or anything else; a component importing them fails to load.
//! The capability interfaces are the only way out of the sandbox.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::io::AsyncWrite;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiView};

/// WASI package prefixes a plugin may import. Everything else is refused at load time.
pub const ALLOWED_WASI: [&str; 5] = [
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
];

/// Adds the restricted WASI interfaces to `linker`.
pub fn add_to_linker<T: WasiView + wasmtime_wasi_io::IoView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    wasmtime_wasi_io::add_to_linker_async(linker)?;
    let l = linker;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    Ok(())
}

/// A fresh WASI context for one run: no arguments, environment, preopens or
/// network; stdout and stderr go to `output`.
pub fn context(output: &CapturedOutput) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .stdout(output.stream(Channel::Stdout))
        .stderr(output.stream(Channel::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        // One `get-random-bytes` call allocates this much on the host at most.
        .max_random_size(64 * 1024);
    builder.build()
}

/// Which stream a byte was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a run wrote to stdout and stderr, capped in total size.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    /// Captured standard output (lossy UTF-8).
    pub stdout: String,
    /// Captured standard error (lossy UTF-8).
    pub stderr: String,
    /// Bytes written beyond the cap and dropped.
    pub dropped_bytes: u64,
}

#[derive(Debug, Default)]
struct Buffers {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    dropped: u64,
}

/// Shared, capped buffers for a run's stdout and stderr.
///
/// Writes past the cap succeed from the guest's point of view (so `println!`
/// never panics) but are dropped and counted; the host's memory stays bounded
/// whatever the guest prints.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    buffers: Arc<Mutex<Buffers>>,
    cap: usize,
}

impl CapturedOutput {
    /// Buffers holding at most `cap` bytes of stdout and stderr together.
    pub fn new(cap: usize) -> Self {
        CapturedOutput {
            buffers: Arc::default(),
            cap,
        }
    }

    fn stream(&self, channel: Channel) -> CapturedStream {
        CapturedStream {
            output: self.clone(),
            channel,
        }
    }

    fn write(&self, channel: Channel, bytes: &[u8]) {
        let mut b = self.buffers.lock().expect("output lock");
        let room = self.cap.saturating_sub(b.stdout.len() + b.stderr.len());
        let kept = bytes.len().min(room);
        let target = match channel {
            Channel::Stdout => &mut b.stdout,
            Channel::Stderr => &mut b.stderr,
        };
        target.extend_from_slice(&bytes[..kept]);
        b.dropped += (bytes.len() - kept) as u64;
    }

    /// What was captured so far.
    pub fn snapshot(&self) -> Output {
        let b = self.buffers.lock().expect("output lock");
        Output {
            stdout: String::from_utf8_lossy(&b.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&b.stderr).into_owned(),
            dropped_bytes: b.dropped,
        }
    }
}

struct CapturedStream {
    output: CapturedOutput,
    channel: Channel,
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(CapturedStream {
            output: self.output.clone(),
            channel: self.channel,
        })
    }
}

impl AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.write(self.channel, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_and_overflow_counted() {
        let out = CapturedOutput::new(10);
        out.write(Channel::Stdout, b"hello ");
        out.write(Channel::Stderr, b"world!!");
        out.write(Channel::Stdout, b"more");
        let snap = out.snapshot();
        assert_eq!(snap.stdout, "hello ");
        assert_eq!(snap.stderr, "worl");
        assert_eq!(snap.dropped_bytes, 7);
    }
}
