//! Engine.IO v4 packets and the long-polling payload format. Pure: no I/O.
//!
//! Text packets are `<type digit><data>`; a polling payload joins packets with the record
//! separator `\x1e`, binary ones written as `b<base64>`. On WebSocket a binary message is
//! a binary frame with no prefix. What Engine.IO v3 frames differently is in
//! [`super::v3`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

/// Separates packets in a long-polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// A packet received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0`: only servers send it.
    Open,
    /// `1`: the client closes the session.
    Close,
    /// `2`: a ping, with `probe` during an upgrade.
    Ping(Bytes),
    /// `3`: the answer to a server ping.
    Pong(Bytes),
    /// `4`: a text message for the layer above.
    Message(Bytes),
    /// A binary message for the layer above.
    Binary(Bytes),
    /// `5`: completes a transport upgrade.
    Upgrade,
    /// `6`: does nothing.
    Noop,
}

/// Why bytes are not an Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// An empty packet.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type.
    #[error("unknown packet type {0:?}")]
    UnknownType(u8),
    /// Text that is not UTF-8.
    #[error("text packet is not UTF-8")]
    NotUtf8,
    /// A `b` packet with invalid base64.
    #[error("invalid base64 in binary packet")]
    InvalidBase64,
    /// An Engine.IO v3 payload whose length prefix is malformed or does not match.
    #[error("wrong length prefix in payload")]
    BadLength,
}

/// The Engine.IO protocol version a session speaks, from the handshake's `EIO` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Engine.IO v3: socket.io-client 2.x, python-socketio 4.x (Socket.IO protocol v4).
    V3,
    /// Engine.IO v4: socket.io-client 3.x and 4.x, python-socketio 5.x (Socket.IO v5).
    V4,
}

impl Version {
    /// The version an `EIO` query value asks for, if the relay speaks it.
    pub fn from_query(eio: Option<&str>) -> Option<Self> {
        match eio {
            Some("4") => Some(Version::V4),
            Some("3") => Some(Version::V3),
            _ => None,
        }
    }

    /// The version's number, as in `EIO=`.
    pub fn number(self) -> u8 {
        match self {
            Version::V3 => 3,
            Version::V4 => 4,
        }
    }
}

/// Decodes one text packet (a WebSocket text frame or one record of a polling payload).
pub fn decode_text(raw: Bytes) -> Result<Packet, PacketError> {
    let Some(&kind) = raw.first() else {
        return Err(PacketError::Empty);
    };
    if std::str::from_utf8(&raw).is_err() {
        return Err(PacketError::NotUtf8);
    }
    let data = raw.slice(1..);
    Ok(match kind {
        b'0' => Packet::Open,
        b'1' => Packet::Close,
        b'2' => Packet::Ping(data),
        b'3' => Packet::Pong(data),
        b'4' => Packet::Message(data),
        b'5' => Packet::Upgrade,
        b'6' => Packet::Noop,
        other => return Err(PacketError::UnknownType(other)),
    })
}

/// Decodes a long-polling POST body into its packets.
pub fn decode_payload(body: Bytes) -> Result<Vec<Packet>, PacketError> {
    let mut packets = Vec::new();
    let mut start = 0;
    while start <= body.len() {
        let end = body[start..]
            .iter()
            .position(|b| *b == RECORD_SEPARATOR)
            .map_or(body.len(), |i| start + i);
        let record = body.slice(start..end);
        packets.push(if record.first() == Some(&b'b') {
            let bytes = STANDARD
                .decode(&record[1..])
                .map_err(|_| PacketError::InvalidBase64)?;
            Packet::Binary(Bytes::from(bytes))
        } else {
            decode_text(record)?
        });
        start = end + 1;
    }
    Ok(packets)
}

/// One frame on its way to a client: a complete text packet (type digit included) or a
/// binary message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text packet, e.g. `2` (ping) or `42["event"]`.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Frame {
    /// Bytes this frame puts on the wire (before transport framing).
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b.len(),
        }
    }

    /// Whether the frame carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends this frame to a polling payload, after a separator unless it is the first.
    pub fn write_to_payload(&self, payload: &mut BytesMut) {
        if !payload.is_empty() {
            payload.put_u8(RECORD_SEPARATOR);
        }
        match self {
            Frame::Text(text) => payload.extend_from_slice(text),
            Frame::Binary(bytes) => {
                payload.put_u8(b'b');
                let start = payload.len();
                let encoded_len = base64::encoded_len(bytes.len(), true).expect("length fits");
                payload.resize(start + encoded_len, 0);
                STANDARD
                    .encode_slice(bytes, &mut payload[start..])
                    .expect("buffer sized for the encoding");
            }
        }
    }
}

/// The ping packet.
pub const PING: Frame = Frame::Text(Bytes::from_static(b"2"));
/// The noop packet, used to end a pending poll during an upgrade.
pub const NOOP: Frame = Frame::Text(Bytes::from_static(b"6"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_text_packets() {
        assert_eq!(
            decode_text(Bytes::from("3")),
            Ok(Packet::Pong(Bytes::new()))
        );
        assert_eq!(
            decode_text(Bytes::from("2probe")),
            Ok(Packet::Ping(Bytes::from("probe")))
        );
        assert_eq!(
            decode_text(Bytes::from("42[\"a\"]")),
            Ok(Packet::Message(Bytes::from("2[\"a\"]")))
        );
        assert_eq!(decode_text(Bytes::new()), Err(PacketError::Empty));
        assert_eq!(
            decode_text(Bytes::from("9")),
            Err(PacketError::UnknownType(b'9'))
        );
        assert_eq!(
            decode_text(Bytes::from_static(b"4\xff")),
            Err(PacketError::NotUtf8)
        );
    }

    #[test]
    fn decodes_payloads_with_binary() {
        let body = Bytes::from("4hello\x1ebAQID\x1e3");
        assert_eq!(
            decode_payload(body),
            Ok(vec![
                Packet::Message(Bytes::from("hello")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3])),
                Packet::Pong(Bytes::new()),
            ])
        );
        assert_eq!(
            decode_payload(Bytes::from("b!!")),
            Err(PacketError::InvalidBase64)
        );
        assert_eq!(
            decode_payload(Bytes::from("4a\x1e")),
            Err(PacketError::Empty)
        );
    }

    #[test]
    fn encodes_payloads() {
        let mut payload = BytesMut::new();
        Frame::Text(Bytes::from("4hi")).write_to_payload(&mut payload);
        Frame::Binary(Bytes::from_static(&[1, 2, 3])).write_to_payload(&mut payload);
        PING.write_to_payload(&mut payload);
        assert_eq!(&payload[..], b"4hi\x1ebAQID\x1e2");
    }
}
