//! How one client's control packets are written, from its parser and its Socket.IO
//! protocol version: v4 for Engine.IO v3 clients (socket.io-client 2.x), v5 otherwise.
//! Events, encoded once for every recipient, go through
//! [`EventPacket`](super::packet::EventPacket) instead.

use serde_json::{Value, json};

use super::msgpack;
use super::packet::{
    Args, PacketType, Parser, encode_ack, encode_connect, encode_connect_error,
    encode_connect_error_v4, encode_connect_recoverable, encode_connect_refusal, encode_connect_v4,
    encode_disconnect,
};
use crate::engine::Outbound;
use crate::engine::packet::Frame;

/// A client's parser and protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// The parser.
    pub parser: Parser,
    /// Socket.IO protocol v4 (the client speaks Engine.IO v3).
    pub v4: bool,
}

impl Codec {
    /// The answer to a namespace connect: v5 carries the socket id, and its private id
    /// `pid` with connection state recovery on; v4 carries nothing.
    pub fn connect(self, namespace: &str, sid: &str, pid: Option<&str>) -> Outbound {
        match (self.parser, self.v4, pid) {
            (Parser::Json, true, _) => encode_connect_v4(namespace),
            (Parser::Json, false, None) => encode_connect(namespace, sid),
            (Parser::Json, false, Some(pid)) => encode_connect_recoverable(namespace, sid, pid),
            (Parser::Msgpack, _, pid) => {
                let data = match pid {
                    Some(pid) => json!({ "sid": sid, "pid": pid }),
                    None => json!({ "sid": sid }),
                };
                binary(msgpack::encode(
                    PacketType::Connect,
                    namespace,
                    Some(&data),
                    &[],
                    None,
                ))
            }
        }
    }

    /// A refused namespace connect: `{"message"}` in v5, the bare message in v4.
    pub fn connect_error(self, namespace: &str, message: &str) -> Outbound {
        match (self.parser, self.v4) {
            (Parser::Json, true) => encode_connect_error_v4(namespace, message),
            (Parser::Json, false) => encode_connect_error(namespace, message),
            (Parser::Msgpack, _) => binary(msgpack::encode(
                PacketType::ConnectError,
                namespace,
                Some(&json!({ "message": message })),
                &[],
                None,
            )),
        }
    }

    /// A connect that `[auth]` refused, with its whole payload (`{"message", "data"}`). In
    /// Socket.IO v4 an error packet carries any JSON: the same object, which
    /// socket.io-client 2.x hands to its `error` listener as it is.
    pub fn connect_refusal(self, namespace: &str, payload: &Value) -> Outbound {
        match self.parser {
            Parser::Json => encode_connect_refusal(namespace, payload),
            Parser::Msgpack => binary(msgpack::encode(
                PacketType::ConnectError,
                namespace,
                Some(payload),
                &[],
                None,
            )),
        }
    }

    /// The server's answer to a client's event (its ack id `id`).
    pub fn ack(self, namespace: &str, id: u64, args: &Args) -> Outbound {
        match self.parser {
            Parser::Json => encode_ack(namespace, id, args),
            Parser::Msgpack => binary(msgpack::encode(
                PacketType::Ack,
                namespace,
                Some(&Value::Array(args.values.clone())),
                &args.attachments,
                Some(id),
            )),
        }
    }

    /// The server ending a namespace connection.
    pub fn disconnect(self, namespace: &str) -> Outbound {
        match self.parser {
            Parser::Json => encode_disconnect(namespace),
            Parser::Msgpack => binary(msgpack::encode(
                PacketType::Disconnect,
                namespace,
                None,
                &[],
                None,
            )),
        }
    }
}

fn binary(bytes: bytes::Bytes) -> Outbound {
    Outbound::frame(Frame::Binary(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_its_payload_in_every_protocol_and_parser() {
        let payload = json!({"message": "unauthorized", "data": {"code": "token_missing"}});
        let text = r#"44/x,{"message":"unauthorized","data":{"code":"token_missing"}}"#;
        for v4 in [false, true] {
            let refusal = Codec {
                parser: Parser::Json,
                v4,
            }
            .connect_refusal("/x", &payload);
            assert_eq!(refusal.frames(), [Frame::Text(bytes::Bytes::from(text))]);
        }
        let refusal = Codec {
            parser: Parser::Msgpack,
            v4: false,
        }
        .connect_refusal("/x", &payload);
        let [Frame::Binary(bytes)] = refusal.frames() else {
            panic!("one binary message: {refusal:?}");
        };
        let map = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        let field = |name: &str| {
            let entries = map.as_map().unwrap();
            entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(field("type").as_u64(), Some(4));
        assert_eq!(field("nsp").as_str(), Some("/x"));
        let data = field("data");
        assert_eq!(data["message"].as_str(), Some("unauthorized"));
        assert_eq!(data["data"]["code"].as_str(), Some("token_missing"));
    }
}
