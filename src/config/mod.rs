//! The configuration tree: every setting the daemon reads, with its built-in default.
//!
//! Layering (lowest first): built-in defaults, the TOML file, `SIO_RELAY_*` environment
//! variables, command-line flags. Unknown keys are refused everywhere.
//!
//! - [`load`] builds a [`Config`] from [`Sources`] and reports every problem at once
//!   ([`ConfigErrors`]), each naming its key and, where known, the file line;
//! - [`env`](mod@env) maps `SIO_RELAY_*` variables to keys;
//! - [`validate`] holds the rules that types alone cannot express;
//! - [`render_masked`] prints the effective config with secrets masked (`--check-config`).
//!
//! `config/sio-relay.toml` in the repository documents every key with its default.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

pub mod cidr;
pub mod env;
mod error;
mod hooks;
mod load;
mod mask;
mod schema;
pub mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use hooks::{HooksConfig, LifecycleEvent};
pub use load::{Overrides, Sources, load, load_text};
pub use mask::{MASK, mask_url, masked, render_masked};

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
    /// The backend told about client events and socket lifecycle.
    pub hooks: HooksConfig,
    /// Limits on clients: connections, and what is queued for each.
    pub limits: LimitsConfig,
    /// TLS on the listeners.
    pub tls: TlsConfig,
    /// Connection state recovery.
    pub recovery: RecoveryConfig,
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
    /// Proxies (IPs or CIDRs) whose `X-Forwarded-For` names the client's address.
    pub trusted_proxies: Vec<String>,
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
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[admin]`: the admin HTTP API.
///
/// `Debug` masks the tokens, so a logged config shows no secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
    /// How long an `Idempotency-Key` of `/v1/emit` is remembered.
    pub idempotency_window_ms: u64,
    /// Scoped keys (`[[admin.keys]]`): each may do only some operations on some targets.
    pub keys: Vec<AdminKey>,
    /// Serve a non-loopback address without tokens or keys (anyone who reaches it may push).
    pub allow_open: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3001)),
            tokens: Vec::new(),
            max_body_bytes: 4_194_304,
            max_ack_timeout_ms: 60_000,
            idempotency_window_ms: 60_000,
            keys: Vec::new(),
            allow_open: false,
        }
    }
}

impl AdminConfig {
    /// The URL a client on this host uses to reach the admin API: `http://` and
    /// `listen`, with an unspecified address (`0.0.0.0`, `::`) replaced by loopback.
    pub fn client_url(&self) -> String {
        let mut addr = self.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}")
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be left out unnoticed.
        let Self {
            listen,
            tokens,
            max_body_bytes,
            max_ack_timeout_ms,
            idempotency_window_ms,
            keys,
            allow_open,
        } = self;
        f.debug_struct("AdminConfig")
            .field("listen", listen)
            .field("tokens", &vec![MASK; tokens.len()])
            .field("max_body_bytes", max_body_bytes)
            .field("max_ack_timeout_ms", max_ack_timeout_ms)
            .field("idempotency_window_ms", idempotency_window_ms)
            .field("keys", keys)
            .field("allow_open", allow_open)
            .finish()
    }
}

/// An operation an admin key may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminOp {
    /// `POST /v1/emit`.
    Emit,
    /// `POST /v1/join`.
    Join,
    /// `POST /v1/leave`.
    Leave,
    /// `POST /v1/disconnect`.
    Disconnect,
    /// `GET /v1/sockets`, `GET /v1/rooms`.
    Read,
}

impl AdminOp {
    /// The name used in the config and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminOp::Emit => "emit",
            AdminOp::Join => "join",
            AdminOp::Leave => "leave",
            AdminOp::Disconnect => "disconnect",
            AdminOp::Read => "read",
        }
    }
}

/// One `[[admin.keys]]` entry: a bearer token limited to some operations on some targets.
///
/// `Debug` masks the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKey {
    /// Shown in logs in place of the token.
    pub name: String,
    /// The bearer token.
    pub token: String,
    /// Globs of the namespaces the key may address (`*` matches any run of characters).
    #[serde(default = "default_key_namespaces")]
    pub namespaces: Vec<String>,
    /// Globs of the rooms (and sids) the key may address; only `"*"` allows a broadcast.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// The operations the key may perform.
    #[serde(default)]
    pub ops: Vec<AdminOp>,
}

fn default_key_namespaces() -> Vec<String> {
    vec!["/".into()]
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            name,
            token: _,
            namespaces,
            rooms,
            ops,
        } = self;
        f.debug_struct("AdminKey")
            .field("name", name)
            .field("token", &MASK)
            .field("namespaces", namespaces)
            .field("rooms", rooms)
            .field("ops", ops)
            .finish()
    }
}

/// `[limits]`: how many clients may connect, and how fast (0 means no limit), and what
/// may be queued for each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Engine.IO sessions open at once on this node.
    pub max_connections: u64,
    /// Engine.IO sessions open at once from one client address.
    pub max_connections_per_ip: u64,
    /// New sessions per second from one client address (a token bucket of that size).
    pub handshakes_per_second_per_ip: u64,
    /// Bytes queued for one client before `slow_client` applies.
    pub max_queued_bytes: u64,
    /// What happens to a client whose queue is full.
    pub slow_client: SlowClientPolicy,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_connections_per_ip: 0,
            handshakes_per_second_per_ip: 0,
            max_queued_bytes: 1_048_576,
            slow_client: SlowClientPolicy::Disconnect,
        }
    }
}

/// A listener TLS may be turned on for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsListener {
    /// The Socket.IO listener (`server.listen`).
    Server,
    /// The admin listener (`admin.listen`).
    Admin,
}

/// `[tls]`: TLS on the listeners, from PEM files re-read on reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first; empty: no TLS.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// The listeners that speak TLS when a certificate is set.
    pub listeners: Vec<TlsListener>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: String::new(),
            key_file: String::new(),
            listeners: vec![TlsListener::Server],
        }
    }
}

impl TlsConfig {
    /// Whether `listener` speaks TLS.
    pub fn enabled_on(&self, listener: TlsListener) -> bool {
        !self.cert_file.is_empty() && self.listeners.contains(&listener)
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
///
/// `Debug` masks any password in `redis_url`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be left out unnoticed.
        let Self {
            adapter,
            redis_url,
            key_prefix,
            request_timeout_ms,
            python_socketio,
            python_socketio_channel,
        } = self;
        f.debug_struct("ClusterConfig")
            .field("adapter", adapter)
            .field("redis_url", &mask_url(redis_url))
            .field("key_prefix", key_prefix)
            .field("request_timeout_ms", request_timeout_ms)
            .field("python_socketio", python_socketio)
            .field("python_socketio_channel", python_socketio_channel)
            .finish()
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

/// `[recovery]`: Socket.IO connection state recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryConfig {
    /// Whether clients that come back may recover their sid, rooms and missed events.
    pub enabled: bool,
    /// How long a disconnected socket stays recoverable; also the age limit of the replay
    /// buffer.
    pub max_disconnection_ms: u64,
    /// Events kept for replay per namespace.
    pub max_buffered_messages: u64,
    /// Bytes of events kept for replay per namespace (this node's memory buffer).
    pub max_buffered_bytes: u64,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_disconnection_ms: 120_000,
            max_buffered_messages: 10_000,
            max_buffered_bytes: 16_777_216,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serialize_to_toml_and_back() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(toml::from_str::<Config>(&text).unwrap(), Config::default());
    }

    #[test]
    fn admin_client_url_reaches_this_host() {
        let mut admin = AdminConfig::default();
        assert_eq!(admin.client_url(), "http://127.0.0.1:3001");
        admin.listen = "0.0.0.0:4001".parse().unwrap();
        assert_eq!(admin.client_url(), "http://127.0.0.1:4001");
        admin.listen = "[::]:4001".parse().unwrap();
        assert_eq!(admin.client_url(), "http://[::1]:4001");
        admin.listen = "10.1.2.3:4001".parse().unwrap();
        assert_eq!(admin.client_url(), "http://10.1.2.3:4001");
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let mut config = Config::default();
        config.admin.tokens = vec!["hunter2".into()];
        config.cluster.redis_url = "redis://user:pa55@redis:6379".into();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("pa55"), "{shown}");
        assert!(shown.contains(MASK));
    }
}
