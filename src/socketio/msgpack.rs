//! The msgpack parser (socket.io-msgpack-parser, python-socketio's `msgpack` serializer).
//! Pure: no I/O.
//!
//! Each Socket.IO packet is one msgpack map `{"type", "nsp", "data", "id"?}`, sent as one
//! Engine.IO binary message. Binary values are msgpack `bin` inside `data`, never
//! attachments, and only the five base types go out (socket.io-msgpack-parser refuses 5
//! and 6). Inside the relay the packet takes the JSON parser's shape: `bin` values become
//! `{"_placeholder": true, "num": N}` with the bytes as attachment `N`, so acks and events
//! from msgpack clients flow through the same code; on the way out placeholders become
//! `bin` again.

use bytes::Bytes;
use rmpv::Value as Mp;
use serde_json::{Map, Number, Value};

use super::packet::{Args, Packet, PacketType, is_placeholder, validate};

/// How deep a client's packet may nest, as deep as the JSON parser allows.
const MAX_DEPTH: usize = 128;

/// Why bytes are not a msgpack Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgpackError {
    /// Not msgpack, truncated, or nested too deep.
    #[error("not a msgpack value: {0}")]
    Invalid(String),
    /// Bytes left after the packet.
    #[error("trailing bytes after the packet")]
    Trailing,
    /// Not a map, or `type` / `nsp` missing or of the wrong kind.
    #[error("not a Socket.IO packet map")]
    NotAPacket,
    /// `type` is not a Socket.IO packet type.
    #[error("unknown packet type")]
    UnknownType,
    /// `id` is not an unsigned integer.
    #[error("invalid ack id")]
    InvalidId,
    /// A string that is not UTF-8, a map key that is not a string, or a payload that
    /// does not fit the packet type.
    #[error("invalid payload: {0}")]
    InvalidPayload(&'static str),
}

/// Whether a binary message opens with a msgpack map header: what tells a msgpack
/// client's first packet from a JSON client's binary attachment.
pub fn looks_like_packet(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// Decodes one packet; its binary values come back as attachments.
pub fn decode(bytes: &[u8]) -> Result<(Packet, Vec<Bytes>), MsgpackError> {
    let mut reader = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH)
        .map_err(|e| MsgpackError::Invalid(e.to_string()))?;
    if !reader.is_empty() {
        return Err(MsgpackError::Trailing);
    }
    let Mp::Map(entries) = value else {
        return Err(MsgpackError::NotAPacket);
    };
    let (mut kind, mut namespace, mut data, mut id) = (None, None, None, None);
    let mut attachments = Vec::new();
    for (key, value) in entries {
        match key.as_str() {
            Some("type") => kind = Some(value.as_u64().ok_or(MsgpackError::UnknownType)?),
            Some("nsp") => {
                let nsp = value.as_str().ok_or(MsgpackError::NotAPacket)?;
                namespace = Some(nsp.to_owned());
            }
            Some("data") if !is_absent(&value) => data = Some(to_json(value, &mut attachments)?),
            Some("id") if !is_absent(&value) => {
                id = Some(value.as_u64().ok_or(MsgpackError::InvalidId)?)
            }
            // Unknown keys (and absent `data`/`id`) carry nothing the relay reads.
            _ => {}
        }
    }
    let kind = match kind.ok_or(MsgpackError::NotAPacket)? {
        0 => PacketType::Connect,
        1 => PacketType::Disconnect,
        2 | 5 => PacketType::Event,
        3 | 6 => PacketType::Ack,
        4 => PacketType::ConnectError,
        _ => return Err(MsgpackError::UnknownType),
    };
    let namespace = namespace.ok_or(MsgpackError::NotAPacket)?;
    if !validate(kind, id, &data) {
        return Err(MsgpackError::InvalidPayload(kind.as_str()));
    }
    let packet = Packet {
        kind,
        namespace,
        id,
        data,
        attachments: 0,
    };
    Ok((packet, attachments))
}

/// Nil, or JavaScript's `undefined` as notepack.io writes it (a `fixext 1` of type 0):
/// socket.io-client sends a CONNECT without auth as `{"data": undefined}`.
fn is_absent(value: &Mp) -> bool {
    match value {
        Mp::Nil => true,
        Mp::Ext(0, data) => data.as_slice() == [0],
        _ => false,
    }
}

fn to_json(value: Mp, attachments: &mut Vec<Bytes>) -> Result<Value, MsgpackError> {
    Ok(match value {
        Mp::Nil => Value::Null,
        Mp::Boolean(b) => Value::Bool(b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            (None, None) => Value::Null,
        },
        Mp::F32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        Mp::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Mp::String(s) => match s.into_str() {
            Some(s) => Value::String(s),
            None => return Err(MsgpackError::InvalidPayload("string is not UTF-8")),
        },
        Mp::Binary(bytes) => {
            let placeholder = serde_json::json!({"_placeholder": true, "num": attachments.len()});
            attachments.push(Bytes::from(bytes));
            placeholder
        }
        Mp::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| to_json(item, attachments))
                .collect::<Result<_, _>>()?,
        ),
        Mp::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let Mp::String(key) = key else {
                    return Err(MsgpackError::InvalidPayload("map key is not a string"));
                };
                let key = key
                    .into_str()
                    .ok_or(MsgpackError::InvalidPayload("string is not UTF-8"))?;
                map.insert(key, to_json(value, attachments)?);
            }
            Value::Object(map)
        }
        // Extension types (notepack's dates, for one) have no JSON form.
        Mp::Ext(..) => Value::Null,
    })
}

/// Encodes one packet. `data` may hold placeholders into `attachments`, written as `bin`.
pub fn encode(
    kind: PacketType,
    namespace: &str,
    data: Option<&Value>,
    attachments: &[Bytes],
    id: Option<u64>,
) -> Bytes {
    let mut out = Vec::with_capacity(64);
    write_header(&mut out, kind, namespace, data.is_some(), id);
    if let Some(data) = data {
        write_json(&mut out, data, attachments);
    }
    Bytes::from(out)
}

/// Encodes an event: `data` is `[event, ...args]`.
pub fn encode_event(namespace: &str, event: &str, args: &Args, id: Option<u64>) -> Bytes {
    let mut out = Vec::with_capacity(64);
    write_header(&mut out, PacketType::Event, namespace, true, id);
    let len = u32::try_from(args.values.len() + 1).unwrap_or(u32::MAX);
    rmp::encode::write_array_len(&mut out, len).expect("writes to a Vec cannot fail");
    rmp::encode::write_str(&mut out, event).expect("writes to a Vec cannot fail");
    for value in &args.values {
        write_json(&mut out, value, &args.attachments);
    }
    Bytes::from(out)
}

/// The map header and every field but `data`'s value, which the caller writes next
/// (`id` goes before `data` so that the value can be written last).
fn write_header(out: &mut Vec<u8>, kind: PacketType, namespace: &str, data: bool, id: Option<u64>) {
    let fields = 2 + u32::from(data) + u32::from(id.is_some());
    rmp::encode::write_map_len(out, fields).expect("writes to a Vec cannot fail");
    rmp::encode::write_str(out, "type").expect("writes to a Vec cannot fail");
    rmp::encode::write_uint(out, kind as u64).expect("writes to a Vec cannot fail");
    rmp::encode::write_str(out, "nsp").expect("writes to a Vec cannot fail");
    rmp::encode::write_str(out, namespace).expect("writes to a Vec cannot fail");
    if let Some(id) = id {
        rmp::encode::write_str(out, "id").expect("writes to a Vec cannot fail");
        rmp::encode::write_uint(out, id).expect("writes to a Vec cannot fail");
    }
    if data {
        rmp::encode::write_str(out, "data").expect("writes to a Vec cannot fail");
    }
}

fn write_json(out: &mut Vec<u8>, value: &Value, attachments: &[Bytes]) {
    const OK: &str = "writes to a Vec cannot fail";
    match value {
        Value::Null => rmp::encode::write_nil(out).expect(OK),
        Value::Bool(b) => rmp::encode::write_bool(out, *b).expect(OK),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                rmp::encode::write_uint(out, u).expect(OK);
            } else if let Some(i) = n.as_i64() {
                rmp::encode::write_sint(out, i).expect(OK);
            } else {
                rmp::encode::write_f64(out, n.as_f64().unwrap_or(0.0)).expect(OK);
            }
        }
        Value::String(s) => rmp::encode::write_str(out, s).expect(OK),
        Value::Array(items) => {
            rmp::encode::write_array_len(out, items.len() as u32).expect(OK);
            for item in items {
                write_json(out, item, attachments);
            }
        }
        Value::Object(map) => {
            if let Some(bytes) = is_placeholder(map).and_then(|n| attachments.get(n)) {
                rmp::encode::write_bin(out, bytes).expect(OK);
                return;
            }
            rmp::encode::write_map_len(out, map.len() as u32).expect(OK);
            for (key, item) in map {
                rmp::encode::write_str(out, key).expect(OK);
                write_json(out, item, attachments);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What socket.io-msgpack-parser (notepack.io) sends for
    /// `socket.emit("ev", 1, Buffer.from([1, 2]), ack)` on `/chat`.
    const CLIENT_EVENT: &[u8] =
        b"\x84\xa4type\x02\xa4data\x93\xa2ev\x01\xc4\x02\x01\x02\xa3nsp\xa5/chat\xa2id\x07";

    #[test]
    fn decodes_a_client_event_with_binary() {
        assert!(looks_like_packet(CLIENT_EVENT));
        let (packet, attachments) = decode(CLIENT_EVENT).unwrap();
        assert_eq!(packet.kind, PacketType::Event);
        assert_eq!(packet.namespace, "/chat");
        assert_eq!(packet.id, Some(7));
        assert_eq!(
            packet.data,
            Some(json!(["ev", 1, {"_placeholder": true, "num": 0}]))
        );
        assert_eq!(attachments, vec![Bytes::from_static(&[1, 2])]);
    }

    #[test]
    fn events_round_trip_with_bin_values() {
        let args = Args {
            values: vec![
                json!({"a": [1, -2, 1.5, null, true]}),
                json!({"_placeholder": true, "num": 0}),
            ],
            attachments: vec![Bytes::from_static(b"\x00\xff")],
        };
        let encoded = encode_event("/", "hello", &args, Some(3));
        let value = rmpv::decode::read_value(&mut &encoded[..]).unwrap();
        let data = value
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_str() == Some("data"))
            .map(|(_, v)| v.clone())
            .unwrap();
        assert_eq!(data.as_array().unwrap()[2], Mp::Binary(vec![0, 0xff]));
        let (packet, attachments) = decode(&encoded).unwrap();
        assert_eq!((packet.kind, packet.id), (PacketType::Event, Some(3)));
        assert_eq!(
            packet.data,
            Some(
                json!(["hello", {"a": [1, -2, 1.5, null, true]}, {"_placeholder": true, "num": 0}])
            )
        );
        assert_eq!(attachments, args.attachments);
    }

    #[test]
    fn undefined_data_is_absent() {
        // socket.io-client's CONNECT without auth, through notepack.io.
        let connect = b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data\xd4\x00\x00";
        let (packet, _) = decode(connect).unwrap();
        assert_eq!((packet.kind, packet.data), (PacketType::Connect, None));
    }

    #[test]
    fn control_packets() {
        let connect = encode(
            PacketType::Connect,
            "/",
            Some(&json!({"sid": "x"})),
            &[],
            None,
        );
        let (packet, _) = decode(&connect).unwrap();
        assert_eq!(packet.data, Some(json!({"sid": "x"})));
        let disconnect = encode(PacketType::Disconnect, "/a", None, &[], None);
        assert_eq!(decode(&disconnect).unwrap().0.kind, PacketType::Disconnect);
    }

    #[test]
    fn refuses_bad_packets() {
        let huge_map = b"\xdf\xff\xff\xff\xff";
        let cases: [&[u8]; 9] = [
            b"",
            b"\xc1",
            huge_map,
            &CLIENT_EVENT[..CLIENT_EVENT.len() - 3],
            b"\x82\xa4type\x09\xa3nsp\xa1/",
            b"\x82\xa4type\x02\xa3nsp\xa1/",
            b"\x82\xa4type\xa1x\xa3nsp\xa1/",
            b"\x81\xa4type\x00",
            b"\x92\x00\x01",
        ];
        for bad in cases {
            assert!(decode(bad).is_err(), "{bad:?} should be refused");
        }
        let mut trailing = CLIENT_EVENT.to_vec();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(MsgpackError::Trailing));
    }
}
