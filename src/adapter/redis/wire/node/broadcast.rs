//! The broadcast message: MessagePack `[uid, packet, opts]` (plus a request id from
//! sio-relay nodes) on the broadcast channels, and the peek that reads a sio-relay
//! broadcast's uid and request id without decoding it.

use serde_json::Value;

use super::packet::{decode_opts, decode_packet, write_opts, write_packet};
use crate::adapter::redis::wire::value::{self, Writer};
use crate::adapter::redis::wire::{BroadcastOpts, EventPacket, WireError};

/// Length of the request ids sio-relay nodes issue (`[A-Za-z0-9]`). Fixed, so that a
/// broadcast's request id sits at a known place at its end ([`peek_relay_broadcast`]).
pub const REQUEST_ID_LEN: usize = 12;

/// The sender's uid and the request id of a broadcast from a sio-relay node, read at their
/// fixed places without decoding anything else: a MessagePack array of four (`0x94`) that
/// starts with the uid as a short string and ends with a [`REQUEST_ID_LEN`]-character
/// short string. `None` for anything else (every Node and emitter broadcast has three
/// elements). This is how a node with no socket in a broadcast's room answers its count
/// of zero without decoding the message.
pub fn peek_relay_broadcast(bytes: &[u8]) -> Option<(&str, &str)> {
    let (&first, rest) = bytes.split_first()?;
    let (&uid_head, rest) = rest.split_first()?;
    if first != 0x94 || uid_head & 0xe0 != 0xa0 {
        return None;
    }
    let uid = rest.get(..usize::from(uid_head & 0x1f))?;
    let tail = bytes.len().checked_sub(REQUEST_ID_LEN + 1)?;
    if tail < 2 + uid.len() || bytes[tail] != 0xa0 | REQUEST_ID_LEN as u8 {
        return None;
    }
    let id = &bytes[tail + 1..];
    Some((
        std::str::from_utf8(uid).ok()?,
        std::str::from_utf8(id).ok()?,
    ))
}

/// A broadcast: deliver `packet` to the sockets `opts` selects.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The sending adapter's uid; receivers drop their own.
    pub uid: String,
    /// What to deliver.
    pub packet: EventPacket,
    /// Who receives it.
    pub opts: BroadcastOpts,
    /// Set by sio-relay nodes (as a fourth element, which Node ignores): sio-relay nodes
    /// answer with [`Response::Count`](super::Response::Count).
    pub request_id: Option<String>,
}

impl Broadcast {
    /// Decodes a message from a broadcast channel.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut parts = value::top_array(bytes)?.into_iter();
        let uid = match parts.next().map(|p| p.value) {
            Some(Value::String(uid)) => uid,
            _ => return Err(WireError::shape("a broadcast starts with the sender's uid")),
        };
        let packet = parts
            .next()
            .ok_or_else(|| WireError::shape("a broadcast has no packet"))?;
        let packet = decode_packet(value::object(packet)?)?;
        let opts = match parts.next() {
            Some(part) if !part.value.is_null() => decode_opts(part)?,
            _ => BroadcastOpts::default(),
        };
        let request_id = match parts.next().map(|p| p.value) {
            Some(Value::String(id)) => Some(id),
            _ => None,
        };
        Ok(Broadcast {
            uid,
            packet,
            opts,
            request_id,
        })
    }

    /// Encodes it as the Node adapter does.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::default();
        w.array(if self.request_id.is_some() { 4 } else { 3 });
        w.str(&self.uid);
        write_packet(&mut w, &self.packet)?;
        write_opts(&mut w, &self.opts);
        if let Some(id) = &self.request_id {
            w.str(id);
        }
        Ok(w.buf)
    }
}
