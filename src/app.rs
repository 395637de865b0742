//! Wiring: builds the engine, Socket.IO layer, adapter and admin API, binds the listeners.

use std::net::SocketAddr;

use crate::config::Config;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        /// The config key of the address.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running relay.
pub struct Relay {
    /// Where the Socket.IO listener is bound (the real port when configured with port 0).
    pub socketio_addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
}

impl Relay {
    /// Binds both listeners and starts serving; returns once both accept connections.
    pub async fn start(_config: Config) -> Result<Relay, StartError> {
        todo!()
    }

    /// Graceful shutdown (as on SIGTERM): stops accepting, answers in-flight admin
    /// requests, ends every session, all within `server.shutdown_grace_ms`.
    pub async fn shutdown(self) {
        todo!()
    }
}
