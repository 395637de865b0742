//! Shared harness of the integration tests.
//!
//! - [`relay`]: the relay in-process ([`start_relay`]) or as the built binary
//!   ([`spawn_relay_process`], [`run_relay_cli`]).
//! - [`clients`]: the official Socket.IO clients (socket.io-client and python-socketio)
//!   driven through the scripts in `tests/clients/`.
//! - [`admin`]: an HTTP client for the admin API.
//! - [`raw`]: hand-written Engine.IO long-polling and WebSocket clients for bad input.
//! - [`push`]: events pushed through the in-process relay's adapter, its metrics, and a
//!   [`Witness`] that checks other clients are unaffected.
//! - [`release`]: the release binary built the way the container image builds it.
//! - [`peers`]: other cluster members (a Node.js Socket.IO server, `@socket.io/redis-emitter`,
//!   python-socketio's `AsyncRedisManager`) and a private `redis-server`.
//!
//! Every wait is bounded; every child process is killed when its handle drops.

// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod browser;
pub mod clients;
#[cfg(feature = "redis")]
pub mod peers;
pub mod push;
pub mod raw;
pub mod relay;
pub mod release;

use std::time::Duration;

pub use admin::{Admin, HttpResponse};
pub use clients::{Client, ClientKind, ClientOptions};
pub use push::Witness;
pub use raw::{RawPolling, RawWs};
pub use relay::{
    CliOutput, RelayProcess, TempFile, TestRelay, run_relay_cli, spawn_relay_process, start_relay,
    test_config,
};

/// The default bound on a single wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A short wait, for "nothing more arrives" checks.
pub const QUIET: Duration = Duration::from_millis(500);

/// Root of the crate (where `Cargo.toml` is).
pub fn crate_dir() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Sends `tracing` output of the in-process relay to the test's captured output; the
/// level comes from `RUST_LOG` (default `warn`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
