//! Engine.IO v3 (socket.io-client 2.x, python-socketio 4.x): what its wire format does
//! differently from v4. Pure: no I/O.
//!
//! Packets themselves are the same (`<type digit><data>`); what differs is how they are
//! framed, as engine.io-parser 2.x does it:
//!
//! - **Text polling payloads** are `<length>:<packet>` one after the other, the length in
//!   UTF-16 code units (JavaScript's `String.length`), a binary packet written as
//!   `b4<base64>` (its length counting all of it).
//! - **Binary polling payloads**, which XHR2 clients send and accept when a payload carries
//!   binary: per packet a `0` (text) or `1` (binary) byte, the length as one byte per
//!   decimal digit, a `255` byte, then the packet: text as UTF-8 (the length counts bytes),
//!   binary as the type byte `4` and the data. Served as `application/octet-stream`;
//!   a client that asked for `b64=1` at the handshake only ever gets text.
//! - **WebSocket** binary messages start with the type byte `4`.
//!
//! Heartbeats also go the other way round in v3: the client pings, the server answers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::packet::{Frame, Packet, PacketError, decode_text};

/// The packet type byte in front of binary data: `4`, a message.
pub const BINARY_MESSAGE: u8 = 4;

/// The longest length prefix accepted, in decimal digits: far more than any payload the
/// relay accepts, and short enough that it never overflows.
const MAX_LENGTH_DIGITS: usize = 10;

/// Decodes a long-polling POST body, text or binary framing (told apart by the first
/// byte: a text payload starts with a digit, a binary one with `0x00` or `0x01`).
pub fn decode_payload(body: Bytes) -> Result<Vec<Packet>, PacketError> {
    match body.first() {
        None => Err(PacketError::Empty),
        Some(0 | 1) => decode_binary_payload(body),
        Some(_) => decode_text_payload(body),
    }
}

fn decode_text_payload(body: Bytes) -> Result<Vec<Packet>, PacketError> {
    let text = std::str::from_utf8(&body).map_err(|_| PacketError::NotUtf8)?;
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let colon = text[pos..].find(':').ok_or(PacketError::BadLength)?;
        let units = parse_length(text[pos..pos + colon].bytes().map(|b| b.wrapping_sub(b'0')))?;
        let start = pos + colon + 1;
        // Walk `units` UTF-16 code units; a length that ends past the body or inside a
        // surrogate pair is wrong.
        let mut counted = 0;
        let mut end = start;
        let mut chars = text[start..].chars();
        while counted < units {
            let c = chars.next().ok_or(PacketError::BadLength)?;
            counted += c.len_utf16();
            end += c.len_utf8();
        }
        if counted != units {
            return Err(PacketError::BadLength);
        }
        packets.push(decode_record(body.slice(start..end))?);
        pos = end;
    }
    Ok(packets)
}

fn decode_binary_payload(body: Bytes) -> Result<Vec<Packet>, PacketError> {
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let binary = body[pos] == 1;
        if body[pos] > 1 {
            return Err(PacketError::BadLength);
        }
        let digits_start = pos + 1;
        let end_marker = body[digits_start..]
            .iter()
            .take(MAX_LENGTH_DIGITS + 1)
            .position(|b| *b == 255)
            .ok_or(PacketError::BadLength)?;
        let length = parse_length(
            body[digits_start..digits_start + end_marker]
                .iter()
                .copied(),
        )?;
        let start = digits_start + end_marker + 1;
        let end = start
            .checked_add(length)
            .filter(|end| *end <= body.len())
            .ok_or(PacketError::BadLength)?;
        let record = body.slice(start..end);
        packets.push(if binary {
            match record.first() {
                Some(&BINARY_MESSAGE) => Packet::Binary(record.slice(1..)),
                Some(&other) => return Err(PacketError::UnknownType(other)),
                None => return Err(PacketError::Empty),
            }
        } else {
            decode_text(record)?
        });
        pos = end;
    }
    Ok(packets)
}

/// A length from its decimal digits (as values 0 to 9).
fn parse_length(digits: impl Iterator<Item = u8>) -> Result<usize, PacketError> {
    let mut length = 0usize;
    let mut count = 0;
    for digit in digits {
        if digit > 9 || count == MAX_LENGTH_DIGITS {
            return Err(PacketError::BadLength);
        }
        length = length * 10 + usize::from(digit);
        count += 1;
    }
    if count == 0 {
        return Err(PacketError::BadLength);
    }
    Ok(length)
}

/// One text record: a packet, or `b4<base64>` binary data.
pub fn decode_record(record: Bytes) -> Result<Packet, PacketError> {
    if record.first() != Some(&b'b') {
        return decode_text(record);
    }
    match record.get(1) {
        Some(&b'4') => {}
        Some(&other) => return Err(PacketError::UnknownType(other)),
        None => return Err(PacketError::Empty),
    }
    let bytes = STANDARD
        .decode(&record[2..])
        .map_err(|_| PacketError::InvalidBase64)?;
    Ok(Packet::Binary(Bytes::from(bytes)))
}

/// Decodes a binary WebSocket message: the type byte `4`, then the data.
pub fn decode_binary_message(message: Bytes) -> Result<Packet, PacketError> {
    match message.first() {
        Some(&BINARY_MESSAGE) => Ok(Packet::Binary(message.slice(1..))),
        Some(&other) => Err(PacketError::UnknownType(other)),
        None => Err(PacketError::Empty),
    }
}

/// How a GET answer is framed and what content type it is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `<length>:<packet>`, `text/plain; charset=UTF-8`.
    Text,
    /// The binary framing, `application/octet-stream`.
    Binary,
}

impl Framing {
    /// Binary framing when the client takes it and some frame is binary, as the
    /// reference server chooses.
    pub fn choose<'a>(supports_binary: bool, mut frames: impl Iterator<Item = &'a Frame>) -> Self {
        if supports_binary && frames.any(|f| matches!(f, Frame::Binary(_))) {
            Framing::Binary
        } else {
            Framing::Text
        }
    }

    /// Appends one frame to a payload in this framing.
    pub fn write(self, frame: &Frame, payload: &mut BytesMut) {
        match (self, frame) {
            (Framing::Text, Frame::Text(text)) => {
                payload.extend_from_slice(utf16_len(text).to_string().as_bytes());
                payload.put_u8(b':');
                payload.extend_from_slice(text);
            }
            (Framing::Text, Frame::Binary(bytes)) => {
                let encoded = base64::encoded_len(bytes.len(), true).expect("length fits");
                payload.extend_from_slice((encoded + 2).to_string().as_bytes());
                payload.extend_from_slice(b":b4");
                let start = payload.len();
                payload.resize(start + encoded, 0);
                STANDARD
                    .encode_slice(bytes, &mut payload[start..])
                    .expect("buffer sized for the encoding");
            }
            (Framing::Binary, Frame::Text(text)) => {
                write_binary_header(payload, 0, text.len());
                payload.extend_from_slice(text);
            }
            (Framing::Binary, Frame::Binary(bytes)) => {
                write_binary_header(payload, 1, bytes.len() + 1);
                payload.put_u8(BINARY_MESSAGE);
                payload.extend_from_slice(bytes);
            }
        }
    }

    /// The `Content-Type` of a payload in this framing.
    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Text => "text/plain; charset=UTF-8",
            Framing::Binary => "application/octet-stream",
        }
    }
}

fn write_binary_header(payload: &mut BytesMut, kind: u8, length: usize) {
    payload.put_u8(kind);
    for digit in length.to_string().bytes() {
        payload.put_u8(digit - b'0');
    }
    payload.put_u8(255);
}

/// The length of UTF-8 text in UTF-16 code units: one per character, two for those
/// outside the Basic Multilingual Plane (4-byte sequences).
fn utf16_len(text: &[u8]) -> usize {
    text.iter()
        .map(|b| match b {
            0x80..=0xBF => 0,
            0xF0..=0xFF => 2,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_payload(frames: &[Frame]) -> Vec<u8> {
        let mut payload = BytesMut::new();
        for frame in frames {
            Framing::Text.write(frame, &mut payload);
        }
        payload.to_vec()
    }

    #[test]
    fn text_payloads_count_utf16_units() {
        let frames = [
            Frame::Text(Bytes::from("40")),
            Frame::Text(Bytes::from("42[\"é😀\"]")),
            Frame::Binary(Bytes::from_static(&[1, 2, 3])),
        ];
        let payload = text_payload(&frames);
        // "é" is one unit, "😀" two: 2 + 2 + 1 + 2 + 2 = 9.
        assert_eq!(payload, "2:409:42[\"é😀\"]6:b4AQID".as_bytes());
        assert_eq!(
            decode_payload(Bytes::from(payload)),
            Ok(vec![
                Packet::Message(Bytes::from("0")),
                Packet::Message(Bytes::from("2[\"é😀\"]")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3])),
            ])
        );
    }

    #[test]
    fn binary_payloads_round_trip() {
        let mut payload = BytesMut::new();
        Framing::Binary.write(&Frame::Text(Bytes::from("451-[\"a\"]")), &mut payload);
        Framing::Binary.write(&Frame::Binary(Bytes::from_static(&[9; 12])), &mut payload);
        assert_eq!(&payload[..4], &[0, 9, 255, b'4']);
        assert_eq!(&payload[12..17], &[1, 1, 3, 255, 4]);
        assert_eq!(
            decode_payload(payload.freeze()),
            Ok(vec![
                Packet::Message(Bytes::from("51-[\"a\"]")),
                Packet::Binary(Bytes::from_static(&[9; 12])),
            ])
        );
        assert_eq!(
            Framing::choose(true, [Frame::Text(Bytes::new())].iter()),
            Framing::Text
        );
        assert_eq!(
            Framing::choose(false, [Frame::Binary(Bytes::new())].iter()),
            Framing::Text
        );
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for bad in [
            &b"3:40"[..],
            b"1:40",
            b"x:40",
            b":40",
            b"2:40\x00",
            b"99999999999:4",
            b"2:b5AQ",
            b"\x00\x02\xff4",
            b"\x00\xff",
            b"\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\xff4",
            b"\x01\x02\xff\x054",
            b"\x02\x01\xff4",
            b"\x00\x0a\xff4",
        ] {
            assert!(
                decode_payload(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?} should be refused"
            );
        }
        // A length that ends inside a surrogate pair.
        assert!(decode_payload(Bytes::from("2:4😀")).is_err());
        assert!(decode_payload(Bytes::from("4:4😀")).is_err());
        assert_eq!(
            decode_payload(Bytes::from("3:4😀")),
            Ok(vec![Packet::Message(Bytes::from("😀"))])
        );
    }

    #[test]
    fn websocket_binary_starts_with_the_type_byte() {
        assert_eq!(
            decode_binary_message(Bytes::from_static(&[4, 1])),
            Ok(Packet::Binary(Bytes::from_static(&[1])))
        );
        assert!(decode_binary_message(Bytes::from_static(&[1, 1])).is_err());
        assert!(decode_binary_message(Bytes::new()).is_err());
    }
}
