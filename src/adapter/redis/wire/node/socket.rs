//! One socket as a fetch-sockets response describes it, with what a sio-relay node adds
//! (transport, full address, connection time, user, parser, Engine.IO version).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapter::redis::wire::room_names;
use crate::adapter::redis::wire::value;

/// One socket as a fetch-sockets response describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSocket {
    /// Its id.
    pub id: String,
    /// Node's handshake object, passed through (`address`, `issued`, `time`, `query`...).
    #[serde(default)]
    pub handshake: Value,
    /// Its rooms, its own id included.
    #[serde(default, deserialize_with = "room_names")]
    pub rooms: Vec<String>,
    /// Application data attached to the socket.
    #[serde(default)]
    pub data: Value,
    /// What a sio-relay node adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelaySocket>,
}

/// What a sio-relay node adds to a fetched socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelaySocket {
    /// `websocket` or `polling`.
    pub transport: String,
    /// The peer's `ip:port`.
    pub address: String,
    /// When it connected, RFC 3339.
    pub connected_at: String,
    /// The authenticated user (`[auth]`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `json` or `msgpack` (absent from nodes older than the msgpack parser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parser: Option<String>,
    /// The Engine.IO version, 3 or 4 (absent from nodes older than Engine.IO v3 support).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eio: Option<u8>,
}

impl RemoteSocket {
    /// Describes a sio-relay socket; the handshake holds what Node applications read
    /// (`address` as the IP alone, `issued`, `time`), never headers or auth.
    pub fn relay(id: String, rooms: Vec<String>, relay: RelaySocket, connected_at_ms: i64) -> Self {
        let ip = match relay.address.parse::<std::net::SocketAddr>() {
            Ok(addr) => addr.ip().to_string(),
            Err(_) => relay.address.clone(),
        };
        let handshake = serde_json::json!({
            "headers": {},
            "time": value::js_date_string(connected_at_ms),
            "address": ip,
            "xdomain": false,
            "secure": false,
            "issued": connected_at_ms,
            "url": "",
            "query": {},
            "auth": {},
        });
        RemoteSocket {
            id,
            handshake,
            rooms,
            data: Value::Object(Default::default()),
            relay: Some(relay),
        }
    }

    /// The peer address: `ip:port` from a sio-relay node, the IP from a Node server.
    pub fn address(&self) -> Option<String> {
        match &self.relay {
            Some(relay) => Some(relay.address.clone()),
            None => self.handshake.get("address")?.as_str().map(str::to_owned),
        }
    }

    /// When it connected, RFC 3339 (from the handshake's `issued` for Node servers).
    pub fn connected_at(&self) -> Option<String> {
        match &self.relay {
            Some(relay) => Some(relay.connected_at.clone()),
            None => value::iso_string(self.handshake.get("issued")?.as_f64()? as i64),
        }
    }

    /// Its transport, when the node tells (sio-relay nodes).
    pub fn transport(&self) -> Option<&str> {
        self.relay.as_ref().map(|r| r.transport.as_str())
    }
}
