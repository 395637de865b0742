//! Node's `@socket.io/redis-adapter` 8.x classic protocol, which `@socket.io/redis-emitter`
//! speaks too.
//!
//! - [`Broadcast`]: MessagePack `[uid, packet, opts]` on the broadcast channels.
//! - [`Request`]: on the request channel; JSON, except a broadcast with acks (type 7),
//!   which is MessagePack. Either encoding is accepted for every type, as Node does.
//! - [`Response`]: on the response channels; JSON, except acks (type 9), MessagePack.
//!
//! Encoders write keys in the order Node writes them, so what sio-relay publishes is
//! byte for byte what a Node server would publish for the same call. Two extensions ride
//! along where Node ignores unknown keys: an ack response carries the answering socket
//! and every argument ([`RelayAck`]), a client count carries the recipients' sids, and a
//! fetched socket carries its transport, full address and connection time
//! ([`RelaySocket`]).
//!
//! Submodules, by what they own: `broadcast` the broadcast message, `request` the request
//! kinds, `response` the response kinds, `socket` the fetched-socket description; `packet`
//! the event packet and broadcast options both broadcasts and requests carry; `fields` the
//! keyed fields requests and responses are made of.

mod broadcast;
mod fields;
mod packet;
mod request;
mod response;
mod socket;

pub use broadcast::{Broadcast, REQUEST_ID_LEN, peek_relay_broadcast};
pub use request::{Request, RequestKind};
pub use response::{RelayAck, Response};
pub use socket::{RelaySocket, RemoteSocket};

/// The uid `@socket.io/redis-emitter` publishes broadcasts with.
pub const EMITTER_UID: &str = "emitter";
