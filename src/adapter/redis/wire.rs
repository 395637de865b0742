//! The messages cluster members and emitters exchange over Redis, as typed values, with
//! their encoders and decoders. Pure: no I/O, no runtime.
//!
//! Three formats are spoken:
//!
//! - [`node`]: Node's `@socket.io/redis-adapter` 8.x classic protocol (broadcasts in
//!   MessagePack on the namespace and room channels; requests and responses in JSON or
//!   MessagePack), which `@socket.io/redis-emitter` speaks too (uid `"emitter"`).
//! - [`python`]: python-socketio's JSON `RedisManager` messages (5.14 and later). Pickled
//!   messages from older versions are recognised and never decoded.
//! - [`channel`]: the channel names both Node formats use under a key prefix.
//!
//! Event arguments are [`Args`]: JSON values in which binary parts are placeholders into
//! a list of attachments. MessagePack `bin` values become attachments on the way in and
//! go back to `bin` on the way out; MessagePack timestamps (JS `Date`) become ISO-8601
//! strings, as a Node server would send them to its clients.
//!
//! Decoders are lenient where Node is (key order, missing optional fields) and return a
//! [`WireError`] for anything else; they never panic, whatever the bytes.

pub mod channel;
pub mod node;
pub mod python;
mod value;

use serde::{Deserialize, Deserializer, Serialize};

use crate::socketio::packet::Args;

pub use channel::{BroadcastChannel, Channels};

/// Why a message could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not one complete MessagePack value.
    #[error("invalid MessagePack: {0}")]
    Msgpack(String),
    /// The bytes are not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A python-socketio message serialised with pickle (python-socketio 5.13 or older);
    /// such messages are never decoded, because unpickling runs arbitrary code.
    #[error(
        "pickled message (python-socketio 5.13 or older); upgrade the publisher to 5.14 or later, which sends JSON"
    )]
    Pickle,
    /// The value decoded but does not have the expected structure.
    #[error("unexpected message structure: {0}")]
    Shape(String),
    /// A request or response type this protocol does not define.
    #[error("unknown message type {0}")]
    UnknownType(i64),
    /// A python-socketio `method` this relay does not know.
    #[error("unknown python-socketio method {0:?}")]
    UnknownMethod(String),
    /// A MessagePack extension type other than the timestamp (-1) and legacy undefined (0).
    #[error("unsupported MessagePack extension type {0}")]
    Extension(i8),
    /// A binary placeholder that points at no attachment.
    #[error("binary placeholder {0} has no attachment")]
    Placeholder(u64),
}

impl WireError {
    fn shape(what: impl Into<String>) -> Self {
        WireError::Shape(what.into())
    }
}

impl From<serde_json::Error> for WireError {
    fn from(err: serde_json::Error) -> Self {
        if err.is_data() {
            WireError::Shape(err.to_string())
        } else {
            WireError::Json(err.to_string())
        }
    }
}

/// Which sockets of a namespace an operation selects: the union of `rooms` (every socket
/// when empty), minus the members of `except`. A socket id is a room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// Rooms whose members are selected; empty selects the whole namespace.
    #[serde(default, deserialize_with = "room_names")]
    pub rooms: Vec<String>,
    /// Rooms whose members are left out.
    #[serde(default, deserialize_with = "room_names")]
    pub except: Vec<String>,
}

/// Broadcast flags; only the ones that were set travel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flags {
    /// The packet may be dropped for clients that are not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatile: Option<bool>,
    /// Whether to compress the packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    /// Deliver on the sending node only (never published by Node; accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    /// Set by `socket.broadcast`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
    /// Whether the packet holds binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<bool>,
    /// How long the sender waits for acknowledgements, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Set when one socket is addressed through `fetchSockets()` with an ack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_single_response: Option<bool>,
}

/// Options of a broadcast: who receives it, and flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOpts {
    /// Who receives it.
    pub selector: Selector,
    /// Flags that were set.
    pub flags: Flags,
}

/// An event packet as cluster messages carry it (Socket.IO packet type EVENT).
#[derive(Debug, Clone, PartialEq)]
pub struct EventPacket {
    /// The namespace, e.g. `/`.
    pub nsp: String,
    /// The event name.
    pub event: String,
    /// The arguments after the event name.
    pub args: Args,
}

/// Deserializes a list of room names; JSON numbers are accepted as names, as Node turns
/// numeric rooms into channel names.
fn room_names<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let values = Option::<Vec<serde_json::Value>>::deserialize(de)?.unwrap_or_default();
    values
        .into_iter()
        .map(|value| room_name(value).map_err(serde::de::Error::custom))
        .collect()
}

/// One room name from a JSON value: a string, or a number written as JavaScript would.
fn room_name(value: serde_json::Value) -> Result<String, WireError> {
    match value {
        serde_json::Value::String(name) => Ok(name),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(WireError::shape(format!(
            "a room name must be a string, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests;
