//! Socket.IO v5 packets: types, text encoding, binary placeholders. Pure: no I/O.
//!
//! Text form: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, the namespace
//! written only when it is not `/`. Binary arguments travel as separate Engine.IO binary
//! messages after the text, referenced by `{"_placeholder": true, "num": N}`.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;

use crate::engine::Outbound;
use crate::engine::packet::Frame;

/// Most binary attachments one packet may announce.
pub const MAX_ATTACHMENTS: usize = 256;

/// Event names Socket.IO reserves for itself: a client would misread them as its own
/// lifecycle events, so they are never emitted to clients.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Whether `event` is one of [`RESERVED_EVENTS`].
pub fn is_reserved_event(event: &str) -> bool {
    RESERVED_EVENTS.contains(&event)
}

/// Arguments of an event or an acknowledgement: JSON values in which binary parts are
/// `{"_placeholder": true, "num": N}` objects pointing into `attachments`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// The JSON arguments, with placeholders for binary parts.
    pub values: Vec<Value>,
    /// Binary parts, in placeholder order.
    pub attachments: Vec<Bytes>,
}

/// The Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// `0`
    Connect,
    /// `1`
    Disconnect,
    /// `2`
    Event,
    /// `3`
    Ack,
    /// `4`
    ConnectError,
    /// `5`
    BinaryEvent,
    /// `6`
    BinaryAck,
}

impl PacketType {
    /// The `type` label of `sio_relay_packets_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            PacketType::Connect => "connect",
            PacketType::Disconnect => "disconnect",
            PacketType::Event => "event",
            PacketType::Ack => "ack",
            PacketType::ConnectError => "connect_error",
            PacketType::BinaryEvent => "binary_event",
            PacketType::BinaryAck => "binary_ack",
        }
    }

    fn digit(self) -> u8 {
        b'0' + self as u8
    }

    fn from_digit(digit: u8) -> Option<Self> {
        Some(match digit {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// Every type, for metrics.
    pub const ALL: [PacketType; 7] = [
        PacketType::Connect,
        PacketType::Disconnect,
        PacketType::Event,
        PacketType::Ack,
        PacketType::ConnectError,
        PacketType::BinaryEvent,
        PacketType::BinaryAck,
    ];
}

/// A decoded packet from a client (binary attachments, if any, follow separately).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The type.
    pub kind: PacketType,
    /// The namespace, `/` when absent.
    pub namespace: String,
    /// The ack id, for events that want an answer and for acks.
    pub id: Option<u64>,
    /// The JSON payload.
    pub data: Option<Value>,
    /// How many binary attachments follow.
    pub attachments: usize,
}

/// Why text is not a valid Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Empty text.
    #[error("empty packet")]
    Empty,
    /// Unknown type digit.
    #[error("unknown packet type")]
    UnknownType,
    /// The attachment count is missing, malformed or too large.
    #[error("invalid attachment count")]
    InvalidAttachments,
    /// The ack id is not a number that fits.
    #[error("invalid ack id")]
    InvalidId,
    /// The payload is not JSON.
    #[error("invalid JSON payload")]
    InvalidJson,
    /// The payload does not fit the packet type.
    #[error("invalid payload for a {0} packet")]
    InvalidPayload(&'static str),
}

/// Decodes one packet's text.
pub fn decode(text: &str) -> Result<Packet, PacketError> {
    let bytes = text.as_bytes();
    let kind = PacketType::from_digit(*bytes.first().ok_or(PacketError::Empty)?)
        .ok_or(PacketError::UnknownType)?;
    let mut rest = &text[1..];

    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let dash = rest.find('-').ok_or(PacketError::InvalidAttachments)?;
        let count = &rest[..dash];
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PacketError::InvalidAttachments);
        }
        attachments = count
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_ATTACHMENTS)
            .ok_or(PacketError::InvalidAttachments)?;
        rest = &rest[dash + 1..];
    }

    let mut namespace = "/";
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => {
                namespace = &rest[..comma];
                rest = &rest[comma + 1..];
            }
            None => {
                namespace = rest;
                rest = "";
            }
        }
    }

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| PacketError::InvalidId)?,
        )
    } else {
        None
    };
    rest = &rest[digits..];

    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Value>(rest).map_err(|_| PacketError::InvalidJson)?)
    };

    if !validate(kind, id, &data) {
        return Err(PacketError::InvalidPayload(kind.as_str()));
    }
    Ok(Packet {
        kind,
        namespace: namespace.to_owned(),
        id,
        data,
        attachments,
    })
}

/// Whether a client's packet of `kind` may carry this ack id and payload (whatever the
/// parser).
pub(crate) fn validate(kind: PacketType, id: Option<u64>, data: &Option<Value>) -> bool {
    match kind {
        PacketType::Connect => id.is_none() && matches!(data, None | Some(Value::Object(_))),
        PacketType::Disconnect => id.is_none() && data.is_none(),
        PacketType::Event | PacketType::BinaryEvent => matches!(
            data,
            Some(Value::Array(items)) if matches!(items.first(), Some(Value::String(_)))
        ),
        PacketType::Ack | PacketType::BinaryAck => {
            id.is_some() && matches!(data, Some(Value::Array(_)))
        }
        PacketType::ConnectError => false,
    }
}

/// The attachment number of a `{"_placeholder": true, "num": N}` object.
pub(crate) fn is_placeholder(map: &serde_json::Map<String, Value>) -> Option<usize> {
    if map.len() != 2 || map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    map.get("num")?.as_u64().map(|n| n as usize)
}

/// Writes the header shared by every outgoing packet: the Engine.IO message prefix, the
/// type, the attachment count and the namespace.
fn header(kind: PacketType, namespace: &str, attachments: usize, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity + namespace.len() + 8);
    out.push(b'4');
    out.push(kind.digit());
    if attachments > 0 {
        out.extend_from_slice(attachments.to_string().as_bytes());
        out.push(b'-');
    }
    if namespace != "/" {
        out.extend_from_slice(namespace.as_bytes());
        out.push(b',');
    }
    out
}

fn with_attachments(text: Vec<u8>, attachments: &[Bytes]) -> Outbound {
    let text = Frame::Text(Bytes::from(text));
    if attachments.is_empty() {
        return Outbound::frame(text);
    }
    let frames = std::iter::once(text)
        .chain(attachments.iter().cloned().map(Frame::Binary))
        .collect();
    Outbound::frames_in_order(frames)
}

/// Encodes an event, ready for any number of recipients: `42["event",...args]`, or a
/// binary event with its attachments.
pub fn encode_event(namespace: &str, event: &str, args: &Args, ack_id: Option<u64>) -> Outbound {
    let kind = if args.attachments.is_empty() {
        PacketType::Event
    } else {
        PacketType::BinaryEvent
    };
    let mut out = header(kind, namespace, args.attachments.len(), 64);
    if let Some(id) = ack_id {
        out.extend_from_slice(id.to_string().as_bytes());
    }
    out.push(b'[');
    serde_json::to_writer(&mut out, event).expect("JSON into a Vec cannot fail");
    for value in &args.values {
        out.push(b',');
        serde_json::to_writer(&mut out, value).expect("JSON into a Vec cannot fail");
    }
    out.push(b']');
    with_attachments(out, &args.attachments)
}

/// The parser a client speaks, detected from its first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parser {
    /// The default parser: text packets, binary as attachments.
    Json,
    /// socket.io-msgpack-parser / python-socketio's `msgpack` serializer.
    Msgpack,
}

impl Parser {
    /// The name `/v1/sockets` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Parser::Json => "json",
            Parser::Msgpack => "msgpack",
        }
    }
}

/// An event on its way to any number of sockets, encoded at most once per parser, on
/// first use: a broadcast to JSON and msgpack clients costs two encodings, however many
/// recipients. (Engine.IO versions frame the same encoding differently, at the transport.)
#[derive(Debug)]
pub struct EventPacket {
    namespace: String,
    event: String,
    args: Args,
    ack_id: Option<u64>,
    json: OnceLock<Outbound>,
    msgpack: OnceLock<Outbound>,
}

impl EventPacket {
    /// An event, not encoded yet.
    pub fn new(namespace: String, event: String, args: Args, ack_id: Option<u64>) -> Self {
        EventPacket {
            namespace,
            event,
            args,
            ack_id,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }

    /// The event's arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// The event encoded for `parser`.
    pub fn encoded(&self, parser: Parser) -> &Outbound {
        match parser {
            Parser::Json => self.json.get_or_init(|| {
                encode_event(&self.namespace, &self.event, &self.args, self.ack_id)
            }),
            Parser::Msgpack => self.msgpack.get_or_init(|| {
                let bytes = super::msgpack::encode_event(
                    &self.namespace,
                    &self.event,
                    &self.args,
                    self.ack_id,
                );
                Outbound::frame(Frame::Binary(bytes))
            }),
        }
    }
}

/// An event that [`encode_event`] wrote for `namespace` without an ack id, written again
/// for `parser`: a replay log keeps events in the JSON form only (see
/// `adapter::replay`), and serves the other parsers so. `None` when `json` is not such an
/// event.
pub fn reencode_event(namespace: &str, json: &Outbound, parser: Parser) -> Option<Outbound> {
    if parser == Parser::Json {
        return Some(json.clone());
    }
    let (Frame::Text(text), rest) = json.frames().split_first()? else {
        return None;
    };
    let attachments = rest
        .iter()
        .map(|frame| match frame {
            Frame::Binary(bytes) => Some(bytes.clone()),
            Frame::Text(_) => None,
        })
        .collect::<Option<Vec<Bytes>>>()?;
    let kind = if attachments.is_empty() {
        PacketType::Event
    } else {
        PacketType::BinaryEvent
    };
    let head = header(kind, namespace, attachments.len(), 0);
    let mut values: Vec<Value> =
        serde_json::from_slice(text.strip_prefix(head.as_slice())?).ok()?;
    if values.is_empty() {
        return None;
    }
    let Value::String(event) = values.remove(0) else {
        return None;
    };
    let args = Args {
        values,
        attachments,
    };
    let event = EventPacket::new(namespace.to_owned(), event, args, None);
    Some(event.encoded(parser).clone())
}

/// The server's answer to a client's event: `43<id>[...args]`, or a binary ack with its
/// attachments.
pub fn encode_ack(namespace: &str, id: u64, args: &Args) -> Outbound {
    let kind = if args.attachments.is_empty() {
        PacketType::Ack
    } else {
        PacketType::BinaryAck
    };
    let mut out = header(kind, namespace, args.attachments.len(), 64);
    out.extend_from_slice(id.to_string().as_bytes());
    serde_json::to_writer(&mut out, &args.values).expect("JSON into a Vec cannot fail");
    with_attachments(out, &args.attachments)
}

/// The answer to a namespace connect: `40/ns,{"sid":"..."}`.
pub fn encode_connect(namespace: &str, sid: &str) -> Outbound {
    let mut out = header(PacketType::Connect, namespace, 0, 32);
    serde_json::to_writer(&mut out, &serde_json::json!({ "sid": sid }))
        .expect("JSON into a Vec cannot fail");
    with_attachments(out, &[])
}

/// A namespace connect answer with recovery on: `40/ns,{"sid":"...","pid":"..."}`.
pub fn encode_connect_recoverable(namespace: &str, sid: &str, pid: &str) -> Outbound {
    let mut out = header(PacketType::Connect, namespace, 0, 64);
    serde_json::to_writer(&mut out, &serde_json::json!({ "sid": sid, "pid": pid }))
        .expect("JSON into a Vec cannot fail");
    with_attachments(out, &[])
}

/// A refused namespace connect: `44/ns,{"message":"..."}`.
pub fn encode_connect_error(namespace: &str, message: &str) -> Outbound {
    encode_connect_refusal(namespace, &serde_json::json!({ "message": message }))
}

/// A refused connect with a full payload (`{"message", "data"}`): `44/ns,{...}`.
pub fn encode_connect_refusal(namespace: &str, payload: &serde_json::Value) -> Outbound {
    let mut out = header(PacketType::ConnectError, namespace, 0, 64);
    serde_json::to_writer(&mut out, payload).expect("JSON into a Vec cannot fail");
    with_attachments(out, &[])
}

/// The answer to a namespace connect in Socket.IO v4 (Engine.IO v3 clients): no payload,
/// `40` or `40/ns,`.
pub fn encode_connect_v4(namespace: &str) -> Outbound {
    with_attachments(header(PacketType::Connect, namespace, 0, 0), &[])
}

/// A refused namespace connect in Socket.IO v4: an error packet whose payload is the
/// message as a JSON string, `44/ns,"..."`.
pub fn encode_connect_error_v4(namespace: &str, message: &str) -> Outbound {
    let mut out = header(PacketType::ConnectError, namespace, 0, message.len() + 2);
    serde_json::to_writer(&mut out, message).expect("JSON into a Vec cannot fail");
    with_attachments(out, &[])
}

/// The server ending a namespace connection: `41/ns,`.
pub fn encode_disconnect(namespace: &str) -> Outbound {
    with_attachments(header(PacketType::Disconnect, namespace, 0, 0), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn acks_encode() {
        let args = Args {
            values: vec![json!(1), json!("a")],
            attachments: Vec::new(),
        };
        assert_eq!(text(&encode_ack("/", 7, &args)), r#"437[1,"a"]"#);
        assert_eq!(text(&encode_ack("/x", 0, &Args::default())), "43/x,0[]");
        let binary = Args {
            values: vec![json!({"_placeholder": true, "num": 0})],
            attachments: vec![Bytes::from_static(b"\x01")],
        };
        let out = encode_ack("/", 2, &binary);
        assert_eq!(text(&out), r#"461-2[{"_placeholder":true,"num":0}]"#);
        assert_eq!(out.frames().len(), 2);
    }

    fn text(out: &Outbound) -> String {
        match &out.frames()[0] {
            Frame::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
            Frame::Binary(_) => panic!("text expected"),
        }
    }

    #[test]
    fn decodes_the_protocol_examples() {
        let p = decode("0").unwrap();
        assert_eq!(
            (p.kind, p.namespace.as_str(), p.data),
            (PacketType::Connect, "/", None)
        );
        let p = decode("0/admin,{\"token\":\"123\"}").unwrap();
        assert_eq!(p.namespace, "/admin");
        assert_eq!(p.data, Some(json!({"token": "123"})));
        let p = decode("1/admin,").unwrap();
        assert_eq!(
            (p.kind, p.namespace.as_str()),
            (PacketType::Disconnect, "/admin")
        );
        let p = decode("2[\"foo\"]").unwrap();
        assert_eq!((p.kind, p.id), (PacketType::Event, None));
        let p = decode("2/admin,456[\"project:delete\",123]").unwrap();
        assert_eq!((p.namespace.as_str(), p.id), ("/admin", Some(456)));
        let p = decode("3/admin,456[]").unwrap();
        assert_eq!((p.kind, p.id), (PacketType::Ack, Some(456)));
        let p = decode("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!((p.kind, p.attachments), (PacketType::BinaryEvent, 1));
        let p = decode("61-/admin,456[{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(
            (p.kind, p.namespace.as_str(), p.id, p.attachments),
            (PacketType::BinaryAck, "/admin", Some(456), 1)
        );
        let p = decode("0/admin").unwrap();
        assert_eq!(p.namespace, "/admin");
    }

    #[test]
    fn refuses_malformed_packets() {
        for bad in [
            "",
            "9",
            "2",
            "2{}",
            "2[1]",
            "2[\"a\"",
            "0[1]",
            "1{}",
            "3[]",
            "3x",
            "4{}",
            "5[\"a\"]",
            "5-[\"a\"]",
            "5x-[\"a\"]",
            "5999-[\"a\"]",
            "2/admin,99999999999999999999999[\"a\"]",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn encodes_events_once_with_attachments() {
        let args = Args {
            values: vec![json!({"a": 1})],
            attachments: vec![],
        };
        assert_eq!(
            text(&encode_event("/", "hello", &args, None)),
            "42[\"hello\",{\"a\":1}]"
        );
        assert_eq!(
            text(&encode_event("/chat", "hi", &Args::default(), Some(7))),
            "42/chat,7[\"hi\"]"
        );
        let args = Args {
            values: vec![json!({"_placeholder": true, "num": 0})],
            attachments: vec![Bytes::from_static(b"\x01\x02")],
        };
        let out = encode_event("/", "bin", &args, None);
        assert_eq!(
            text(&out),
            "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]"
        );
        assert_eq!(
            out.frames()[1],
            Frame::Binary(Bytes::from_static(b"\x01\x02"))
        );
    }

    #[test]
    fn logged_events_are_written_again_for_msgpack() {
        for namespace in ["/", "/a,b"] {
            let args = Args {
                values: vec![
                    json!({"n": [1, "x"]}),
                    json!({"_placeholder": true, "num": 0}),
                ],
                attachments: vec![Bytes::from_static(b"\x01\x02")],
            };
            let direct = EventPacket::new(namespace.into(), "e".into(), args.clone(), None);
            let json = encode_event(namespace, "e", &args, None);
            let again = reencode_event(namespace, &json, Parser::Msgpack).unwrap();
            assert_eq!(
                again.frames(),
                direct.encoded(Parser::Msgpack).frames(),
                "{namespace}"
            );
            let same = reencode_event(namespace, &json, Parser::Json).unwrap();
            assert_eq!(same.frames(), json.frames());
        }
        let plain = encode_event("/", "e", &Args::default(), None);
        assert!(reencode_event("/", &plain, Parser::Msgpack).is_some());
        // Not an event of that namespace, or not an event at all.
        assert!(reencode_event("/x", &plain, Parser::Msgpack).is_none());
        let ack = encode_ack("/", 1, &Args::default());
        assert!(reencode_event("/", &ack, Parser::Msgpack).is_none());
    }

    #[test]
    fn encodes_control_packets() {
        assert_eq!(text(&encode_connect("/", "abc")), "40{\"sid\":\"abc\"}");
        assert_eq!(
            text(&encode_connect_error("/x", "Invalid namespace")),
            "44/x,{\"message\":\"Invalid namespace\"}"
        );
        assert_eq!(text(&encode_disconnect("/x")), "41/x,");
        assert_eq!(text(&encode_connect_v4("/")), "40");
        assert_eq!(text(&encode_connect_v4("/x")), "40/x,");
        assert_eq!(
            text(&encode_connect_error_v4("/x", "Invalid namespace")),
            "44/x,\"Invalid namespace\""
        );
        assert_eq!(text(&encode_disconnect("/")), "41");
    }
}
