//! The configuration tree: every setting the daemon reads, with its built-in default.
//!
//! Layering (lowest first): built-in defaults, the TOML file, `SIO_RELAY_*` environment
//! variables, command-line flags. Unknown keys are refused everywhere.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The Socket.IO listener.
    pub server: ServerConfig,
    /// The admin HTTP API listener.
    pub admin: AdminConfig,
    /// Several nodes acting as one.
    pub cluster: ClusterConfig,
    /// Logging.
    pub log: LogConfig,
}

/// A transport clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

impl Transport {
    /// The name used on the wire and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::Websocket => "websocket",
        }
    }
}

/// What to do with a client whose outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SlowClientPolicy {
    /// Close the client's session (it reconnects and starts fresh).
    #[default]
    Disconnect,
    /// Drop the message for that client and keep the session.
    Drop,
}

/// `[server]`: the Socket.IO listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the Socket.IO listener binds.
    pub listen: SocketAddr,
    /// HTTP path of the Engine.IO endpoint.
    pub path: String,
    /// Namespaces clients may join; `"*"` allows any.
    pub namespaces: Vec<String>,
    /// Browser origins allowed; `"*"` allows any.
    pub allowed_origins: Vec<String>,
    /// Transports offered to clients.
    pub transports: Vec<Transport>,
    /// Interval between server pings.
    pub ping_interval_ms: u64,
    /// How long to wait for a pong before closing.
    pub ping_timeout_ms: u64,
    /// An Engine.IO session that joins no namespace within this is closed.
    pub connect_timeout_ms: u64,
    /// Largest message or polling payload a client may send.
    pub max_payload_bytes: u64,
    /// How long shutdown may take.
    pub shutdown_grace_ms: u64,
    /// Packets queued per session before the slow-client policy applies.
    pub outbound_queue: usize,
    /// What happens to a client whose queue is full.
    pub slow_client_policy: SlowClientPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            path: "/socket.io/".into(),
            namespaces: vec!["/".into()],
            allowed_origins: vec!["*".into()],
            transports: vec![Transport::Polling, Transport::Websocket],
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            connect_timeout_ms: 45_000,
            max_payload_bytes: 1_000_000,
            shutdown_grace_ms: 10_000,
            outbound_queue: 1024,
            slow_client_policy: SlowClientPolicy::Disconnect,
        }
    }
}

/// `[admin]`: the admin HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address the admin listener binds.
    pub listen: SocketAddr,
    /// Bearer tokens accepted on `/v1/`; empty means no auth (loopback only).
    pub tokens: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Largest `ack_timeout_ms` a request may ask for.
    pub max_ack_timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3001)),
            tokens: Vec::new(),
            max_body_bytes: 4_194_304,
            max_ack_timeout_ms: 60_000,
        }
    }
}

/// Which adapter connects this node to others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// One node, state in memory.
    #[default]
    Memory,
    /// A cluster over Redis.
    Redis,
}

/// `[cluster]`: several nodes acting as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `memory` (one node) or `redis`.
    pub adapter: AdapterKind,
    /// Redis URL: `redis://`, `rediss://` or `unix://`.
    pub redis_url: String,
    /// Prefix of every channel, shared with the Node.js adapter.
    pub key_prefix: String,
    /// Bound on requests to other nodes.
    pub request_timeout_ms: u64,
    /// Also apply messages of python-socketio's `RedisManager`.
    pub python_socketio: bool,
    /// Channel python-socketio publishes on.
    pub python_socketio_channel: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            adapter: AdapterKind::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            key_prefix: "socket.io".into(),
            request_timeout_ms: 5_000,
            python_socketio: false,
            python_socketio_channel: "socketio".into(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`: logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `sio_relay=debug,info`...
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}
