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

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::value::{self, Object, Part, Writer};
use super::{BroadcastOpts, EventPacket, Flags, Selector, WireError, room_names};
use crate::socketio::packet::Args;

/// The uid `@socket.io/redis-emitter` publishes broadcasts with.
pub const EMITTER_UID: &str = "emitter";

/// Socket.IO packet type EVENT, the only one cluster broadcasts carry.
const EVENT: u64 = 2;
/// Socket.IO packet type BINARY_EVENT, accepted from older senders.
const BINARY_EVENT: i64 = 5;

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
    /// answer with [`Response::Count`].
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

/// A request published on the request channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The requesting adapter's uid; the emitter's join/leave/disconnect have none.
    pub uid: Option<String>,
    /// What is asked.
    pub kind: RequestKind,
}

/// The request types of the classic protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestKind {
    /// Type 0: socket ids in `rooms` (no longer sent since 8.0, still answered).
    Sockets {
        /// Matches the responses.
        request_id: String,
        /// Rooms to list; empty means all.
        rooms: Vec<String>,
    },
    /// Type 1: every room of every node.
    AllRooms {
        /// Matches the responses.
        request_id: String,
    },
    /// Type 2: the selected sockets join `rooms`. Node nodes do not answer; sio-relay
    /// nodes answer a request id with [`Response::Count`].
    Join {
        /// Set by sio-relay nodes.
        request_id: Option<String>,
        /// Which sockets.
        selector: Selector,
        /// Rooms to join.
        rooms: Vec<String>,
    },
    /// Type 3: the selected sockets leave `rooms` (answered like [`RequestKind::Join`]).
    Leave {
        /// Set by sio-relay nodes.
        request_id: Option<String>,
        /// Which sockets.
        selector: Selector,
        /// Rooms to leave.
        rooms: Vec<String>,
    },
    /// Type 4: the selected sockets are disconnected (answered like [`RequestKind::Join`]).
    Disconnect {
        /// Set by sio-relay nodes.
        request_id: Option<String>,
        /// Which sockets.
        selector: Selector,
        /// Also close the underlying connection.
        close: bool,
    },
    /// Type 2 without `opts` (before 8.0): one socket joins one room; answered by the
    /// node that has it.
    LegacyJoin {
        /// Matches the response.
        request_id: Option<String>,
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// Type 3 without `opts` (before 8.0).
    LegacyLeave {
        /// Matches the response.
        request_id: Option<String>,
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// Type 4 without `opts` (before 8.0).
    LegacyDisconnect {
        /// Matches the response.
        request_id: Option<String>,
        /// The socket.
        sid: String,
        /// Also close the underlying connection.
        close: bool,
    },
    /// Type 5: details of the selected sockets.
    FetchSockets {
        /// Matches the responses.
        request_id: String,
        /// Which sockets.
        selector: Selector,
    },
    /// Type 6: an event for the servers themselves, `[event, ...args]`.
    ServerSideEmit {
        /// Present when the sender wants one answer per server.
        request_id: Option<String>,
        /// The event name followed by its arguments.
        data: Args,
    },
    /// Type 7: a broadcast whose recipients' acknowledgements are collected.
    Broadcast {
        /// Matches the responses.
        request_id: String,
        /// What to deliver.
        packet: EventPacket,
        /// Who receives it; `flags.timeout` bounds the wait.
        opts: BroadcastOpts,
    },
}

impl RequestKind {
    /// The number Node gives this request type.
    pub fn type_number(&self) -> u64 {
        match self {
            RequestKind::Sockets { .. } => 0,
            RequestKind::AllRooms { .. } => 1,
            RequestKind::Join { .. } | RequestKind::LegacyJoin { .. } => 2,
            RequestKind::Leave { .. } | RequestKind::LegacyLeave { .. } => 3,
            RequestKind::Disconnect { .. } | RequestKind::LegacyDisconnect { .. } => 4,
            RequestKind::FetchSockets { .. } => 5,
            RequestKind::ServerSideEmit { .. } => 6,
            RequestKind::Broadcast { .. } => 7,
        }
    }

    /// The request id, for the types that have one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            RequestKind::Sockets { request_id, .. }
            | RequestKind::AllRooms { request_id }
            | RequestKind::FetchSockets { request_id, .. }
            | RequestKind::Broadcast { request_id, .. } => Some(request_id),
            RequestKind::LegacyJoin { request_id, .. }
            | RequestKind::LegacyLeave { request_id, .. }
            | RequestKind::LegacyDisconnect { request_id, .. }
            | RequestKind::ServerSideEmit { request_id, .. }
            | RequestKind::Join { request_id, .. }
            | RequestKind::Leave { request_id, .. }
            | RequestKind::Disconnect { request_id, .. } => request_id.as_deref(),
        }
    }
}

impl Request {
    /// Decodes a message from a request channel (JSON when it starts with `{`,
    /// MessagePack otherwise).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut obj = Object::from_payload(bytes)?;
        let uid = take_id(&mut obj, "uid")?;
        let kind = obj.require::<i64>("type")?;
        let request_id = take_id(&mut obj, "requestId")?;
        let required_id =
            |id: Option<String>| id.ok_or_else(|| WireError::shape("missing field `requestId`"));
        let kind = match kind {
            0 => RequestKind::Sockets {
                request_id: required_id(request_id)?,
                rooms: take_rooms(&mut obj, "rooms")?,
            },
            1 => RequestKind::AllRooms {
                request_id: required_id(request_id)?,
            },
            2..=4 => match obj.take("opts") {
                None
                | Some(Part {
                    value: Value::Null, ..
                }) => decode_legacy(kind, request_id, obj)?,
                Some(opts) => {
                    let selector: Selector = serde_json::from_value(opts.value)?;
                    match kind {
                        2 => RequestKind::Join {
                            request_id,
                            selector,
                            rooms: take_rooms(&mut obj, "rooms")?,
                        },
                        3 => RequestKind::Leave {
                            request_id,
                            selector,
                            rooms: take_rooms(&mut obj, "rooms")?,
                        },
                        _ => RequestKind::Disconnect {
                            request_id,
                            selector,
                            close: obj.take_as("close")?.unwrap_or(false),
                        },
                    }
                }
            },
            5 => RequestKind::FetchSockets {
                request_id: required_id(request_id)?,
                selector: obj.take_as("opts")?.unwrap_or_default(),
            },
            6 => {
                let data = obj
                    .take("data")
                    .ok_or_else(|| WireError::shape("missing field `data`"))?;
                if !data.value.is_array() {
                    return Err(WireError::shape("`data` of a server-side emit is an array"));
                }
                RequestKind::ServerSideEmit {
                    request_id,
                    data: data.into_args(),
                }
            }
            7 => {
                let packet = obj
                    .take_object("packet")?
                    .ok_or_else(|| WireError::shape("missing field `packet`"))?;
                RequestKind::Broadcast {
                    request_id: required_id(request_id)?,
                    packet: decode_packet(packet)?,
                    opts: match obj.take("opts") {
                        Some(part) if !part.value.is_null() => decode_opts(part)?,
                        _ => BroadcastOpts::default(),
                    },
                }
            }
            other => return Err(WireError::UnknownType(other)),
        };
        Ok(Request { uid, kind })
    }

    /// Encodes it as Node does: MessagePack for a broadcast with acks, JSON otherwise
    /// (MessagePack too when server-side emit arguments hold binary).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut fields = Fields::default();
        if let Some(uid) = &self.uid {
            fields.push("uid", Field::Str(uid));
        }
        if let Some(id) = self.kind.request_id() {
            fields.push("requestId", Field::Str(id));
        }
        fields.push("type", Field::UInt(self.kind.type_number()));
        match &self.kind {
            RequestKind::Sockets { rooms, .. } => fields.push("rooms", Field::Strs(rooms)),
            RequestKind::AllRooms { .. } => {}
            RequestKind::Join {
                selector, rooms, ..
            }
            | RequestKind::Leave {
                selector, rooms, ..
            } => {
                fields.push("opts", Field::Selector(selector));
                fields.push("rooms", Field::Strs(rooms));
            }
            RequestKind::Disconnect {
                selector, close, ..
            } => {
                fields.push("opts", Field::Selector(selector));
                fields.push("close", Field::Bool(*close));
            }
            RequestKind::LegacyJoin { sid, room, .. }
            | RequestKind::LegacyLeave { sid, room, .. } => {
                fields.push("sid", Field::Str(sid));
                fields.push("room", Field::Str(room));
            }
            RequestKind::LegacyDisconnect { sid, close, .. } => {
                fields.push("sid", Field::Str(sid));
                fields.push("close", Field::Bool(*close));
            }
            RequestKind::FetchSockets { selector, .. } => {
                fields.push("opts", Field::Selector(selector))
            }
            RequestKind::ServerSideEmit { data, .. } => fields.push("data", Field::Args(data)),
            RequestKind::Broadcast { packet, opts, .. } => {
                fields.push("packet", Field::Packet(packet));
                fields.push("opts", Field::Opts(opts));
                return fields.msgpack();
            }
        }
        fields.auto()
    }
}

fn decode_legacy(
    kind: i64,
    request_id: Option<String>,
    mut obj: Object,
) -> Result<RequestKind, WireError> {
    let sid = obj.require::<String>("sid")?;
    Ok(match kind {
        2 | 3 => {
            let room = super::room_name(
                obj.take("room")
                    .ok_or_else(|| WireError::shape("missing field `room`"))?
                    .value,
            )?;
            if kind == 2 {
                RequestKind::LegacyJoin {
                    request_id,
                    sid,
                    room,
                }
            } else {
                RequestKind::LegacyLeave {
                    request_id,
                    sid,
                    room,
                }
            }
        }
        _ => RequestKind::LegacyDisconnect {
            request_id,
            sid,
            close: obj.take_as("close")?.unwrap_or(false),
        },
    })
}

/// A response published on a response channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// To [`RequestKind::Sockets`]: `{requestId, sockets: [sid, ...]}`.
    SocketIds {
        /// The request answered.
        request_id: String,
        /// Socket ids.
        sockets: Vec<String>,
    },
    /// To [`RequestKind::FetchSockets`]: `{requestId, sockets: [{id, handshake, rooms, data}]}`.
    Sockets {
        /// The request answered.
        request_id: String,
        /// The node's matching sockets.
        sockets: Vec<RemoteSocket>,
    },
    /// To [`RequestKind::AllRooms`]: `{requestId, rooms}` (socket-id rooms included).
    Rooms {
        /// The request answered.
        request_id: String,
        /// Every room of the node.
        rooms: Vec<String>,
    },
    /// To a legacy join, leave or disconnect: `{requestId}`.
    Done {
        /// The request answered.
        request_id: String,
    },
    /// A sio-relay node's answer to a broadcast, join, leave or disconnect that carried a
    /// request id: how many of its sockets it applied to. `{requestId, count}`.
    Count {
        /// The request answered.
        request_id: String,
        /// How many sockets.
        count: u64,
    },
    /// Type 6: one server's answer to a server-side emit (its first argument).
    ServerSideEmitAck {
        /// The request answered.
        request_id: String,
        /// The answer; no value when the server answered with none.
        data: Args,
    },
    /// Type 8: how many sockets of one node a broadcast with acks reached.
    ClientCount {
        /// The request answered.
        request_id: String,
        /// How many sockets.
        client_count: u64,
        /// Their sids (sio-relay nodes only).
        sids: Option<Vec<String>>,
    },
    /// Type 9: one socket's acknowledgement of a broadcast with acks.
    Ack {
        /// The request answered.
        request_id: String,
        /// The ack's first argument, all Node carries; `None` when it had none.
        packet: Option<Args>,
        /// The socket and every argument (sio-relay nodes only).
        relay: Option<RelayAck>,
    },
}

/// What a sio-relay node adds to an ack response.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayAck {
    /// The socket that answered.
    pub sid: String,
    /// Every argument it answered with.
    pub args: Args,
}

impl Response {
    /// An ack response for `sid`'s answer `args`, readable by Node (first argument) and by
    /// sio-relay (socket and every argument).
    pub fn ack(request_id: String, sid: String, args: Args) -> Result<Self, WireError> {
        let packet = match args.values.is_empty() {
            true => None,
            false => Some(value::single_arg(&args, 0)?),
        };
        Ok(Response::Ack {
            request_id,
            packet,
            relay: Some(RelayAck { sid, args }),
        })
    }

    /// The request this answers.
    pub fn request_id(&self) -> &str {
        match self {
            Response::SocketIds { request_id, .. }
            | Response::Sockets { request_id, .. }
            | Response::Rooms { request_id, .. }
            | Response::Done { request_id }
            | Response::Count { request_id, .. }
            | Response::ServerSideEmitAck { request_id, .. }
            | Response::ClientCount { request_id, .. }
            | Response::Ack { request_id, .. } => request_id,
        }
    }

    /// Decodes a message from a response channel.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut obj = Object::from_payload(bytes)?;
        let request_id = take_id(&mut obj, "requestId")?
            .ok_or_else(|| WireError::shape("missing field `requestId`"))?;
        match obj.take_as::<i64>("type")? {
            Some(6) => Ok(Response::ServerSideEmitAck {
                request_id,
                data: obj.take("data").map(single).unwrap_or_default(),
            }),
            Some(8) => Ok(Response::ClientCount {
                request_id,
                client_count: obj.require("clientCount")?,
                sids: take_rooms_opt(&mut obj, "sids")?,
            }),
            Some(9) => {
                let packet = obj.take("packet").map(single);
                let sid = obj.take_as::<String>("sid")?;
                let args = obj.take("args");
                let relay = match (sid, args) {
                    (Some(sid), Some(args)) if args.value.is_array() => Some(RelayAck {
                        sid,
                        args: args.into_args(),
                    }),
                    _ => None,
                };
                Ok(Response::Ack {
                    request_id,
                    packet,
                    relay,
                })
            }
            _ => {
                if let Some(sockets) = obj.take("sockets") {
                    let Value::Array(items) = sockets.value else {
                        return Err(WireError::shape("`sockets` is an array"));
                    };
                    if !items.is_empty() && items.iter().all(Value::is_string) {
                        let sockets = items
                            .into_iter()
                            .map(super::room_name)
                            .collect::<Result<_, _>>()?;
                        return Ok(Response::SocketIds {
                            request_id,
                            sockets,
                        });
                    }
                    let sockets = serde_json::from_value(Value::Array(items))?;
                    Ok(Response::Sockets {
                        request_id,
                        sockets,
                    })
                } else if let Some(count) = obj.take_as::<u64>("count")? {
                    Ok(Response::Count { request_id, count })
                } else if let Some(rooms) = take_rooms_opt(&mut obj, "rooms")? {
                    Ok(Response::Rooms { request_id, rooms })
                } else {
                    Ok(Response::Done { request_id })
                }
            }
        }
    }

    /// Encodes it as Node does: MessagePack for acks, JSON otherwise (MessagePack too when
    /// a server-side emit answer holds binary).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut fields = Fields::default();
        match self {
            Response::SocketIds {
                request_id,
                sockets,
            } => {
                fields.push("requestId", Field::Str(request_id));
                fields.push("sockets", Field::Strs(sockets));
            }
            Response::Sockets {
                request_id,
                sockets,
            } => {
                fields.push("requestId", Field::Str(request_id));
                fields.push("sockets", Field::Sockets(sockets));
            }
            Response::Rooms { request_id, rooms } => {
                fields.push("requestId", Field::Str(request_id));
                fields.push("rooms", Field::Strs(rooms));
            }
            Response::Done { request_id } => fields.push("requestId", Field::Str(request_id)),
            Response::Count { request_id, count } => {
                fields.push("requestId", Field::Str(request_id));
                fields.push("count", Field::UInt(*count));
            }
            Response::ServerSideEmitAck { request_id, data } => {
                fields.push("type", Field::UInt(6));
                fields.push("requestId", Field::Str(request_id));
                if let Some(value) = data.values.first() {
                    fields.push("data", Field::Value(value, &data.attachments));
                }
            }
            Response::ClientCount {
                request_id,
                client_count,
                sids,
            } => {
                fields.push("type", Field::UInt(8));
                fields.push("requestId", Field::Str(request_id));
                fields.push("clientCount", Field::UInt(*client_count));
                if let Some(sids) = sids {
                    fields.push("sids", Field::Strs(sids));
                }
            }
            Response::Ack {
                request_id,
                packet,
                relay,
            } => {
                fields.push("type", Field::UInt(9));
                fields.push("requestId", Field::Str(request_id));
                if let Some(value) = packet
                    .as_ref()
                    .and_then(|p| p.values.first().map(|v| (v, p)))
                {
                    fields.push("packet", Field::Value(value.0, &value.1.attachments));
                }
                if let Some(relay) = relay {
                    fields.push("sid", Field::Str(&relay.sid));
                    fields.push("args", Field::Args(&relay.args));
                }
                return fields.msgpack();
            }
        }
        fields.auto()
    }
}

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

/// A request id or uid: a string, or a number taken as its decimal text.
fn take_id(obj: &mut Object, key: &str) -> Result<Option<String>, WireError> {
    match obj.take(key).map(|p| p.value) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(WireError::shape(format!("`{key}` is not a string"))),
    }
}

fn take_rooms(obj: &mut Object, key: &str) -> Result<Vec<String>, WireError> {
    Ok(take_rooms_opt(obj, key)?.unwrap_or_default())
}

fn take_rooms_opt(obj: &mut Object, key: &str) -> Result<Option<Vec<String>>, WireError> {
    match obj.take(key).map(|p| p.value) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(super::room_name)
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(WireError::shape(format!("`{key}` is not an array"))),
    }
}

/// A part holding one value, as arguments.
fn single(part: Part) -> Args {
    Args {
        values: vec![part.value],
        attachments: part.attachments,
    }
}

fn decode_packet(mut obj: Object) -> Result<EventPacket, WireError> {
    match obj.require::<i64>("type")? {
        2 | BINARY_EVENT => {}
        other => {
            return Err(WireError::shape(format!(
                "packet type {other} is not an event"
            )));
        }
    }
    let nsp = obj.take_as::<String>("nsp")?.unwrap_or_else(|| "/".into());
    let data = obj
        .take("data")
        .ok_or_else(|| WireError::shape("the packet has no data"))?;
    let Value::Array(mut values) = data.value else {
        return Err(WireError::shape("packet data is not an array"));
    };
    if values.is_empty() {
        return Err(WireError::shape("packet data has no event name"));
    }
    let Value::String(event) = values.remove(0) else {
        return Err(WireError::shape("the event name is not a string"));
    };
    Ok(EventPacket {
        nsp,
        event,
        args: Args {
            values,
            attachments: data.attachments,
        },
    })
}

fn decode_opts(part: Part) -> Result<BroadcastOpts, WireError> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(flatten)]
        selector: Selector,
        #[serde(default)]
        flags: Option<Flags>,
    }
    let raw: Raw = serde_json::from_value(part.value)?;
    Ok(BroadcastOpts {
        selector: raw.selector,
        flags: raw.flags.unwrap_or_default(),
    })
}

fn write_packet(w: &mut Writer, packet: &EventPacket) -> Result<(), WireError> {
    w.map(3);
    w.str("type");
    w.uint(EVENT);
    w.str("data");
    w.array(packet.args.values.len() + 1);
    w.str(&packet.event);
    for value in &packet.args.values {
        w.json(value, &packet.args.attachments)?;
    }
    w.str("nsp");
    w.str(&packet.nsp);
    Ok(())
}

fn write_selector(w: &mut Writer, selector: &Selector) {
    w.str("rooms");
    w.strs(&selector.rooms);
    w.str("except");
    w.strs(&selector.except);
}

fn write_opts(w: &mut Writer, opts: &BroadcastOpts) {
    w.map(3);
    write_selector(w, &opts.selector);
    w.str("flags");
    let flags = &opts.flags;
    let bools = [
        ("volatile", flags.volatile),
        ("compress", flags.compress),
        ("local", flags.local),
        ("broadcast", flags.broadcast),
        ("binary", flags.binary),
    ];
    let count = bools.iter().filter(|(_, v)| v.is_some()).count()
        + usize::from(flags.timeout.is_some())
        + usize::from(flags.expect_single_response.is_some());
    w.map(count);
    for (name, value) in bools {
        if let Some(value) = value {
            w.str(name);
            w.bool(value);
        }
    }
    if let Some(timeout) = flags.timeout {
        w.str("timeout");
        w.uint(timeout);
    }
    if let Some(single) = flags.expect_single_response {
        w.str("expectSingleResponse");
        w.bool(single);
    }
}

/// One field of a request or response, written as JSON or MessagePack in order.
enum Field<'a> {
    Str(&'a str),
    UInt(u64),
    Bool(bool),
    Strs(&'a [String]),
    Selector(&'a Selector),
    Opts(&'a BroadcastOpts),
    Packet(&'a EventPacket),
    Args(&'a Args),
    Value(&'a Value, &'a [Bytes]),
    Sockets(&'a [RemoteSocket]),
}

#[derive(Default)]
struct Fields<'a> {
    items: Vec<(&'static str, Field<'a>)>,
}

impl<'a> Fields<'a> {
    fn push(&mut self, key: &'static str, field: Field<'a>) {
        self.items.push((key, field));
    }

    /// JSON, unless some field holds binary, which only MessagePack carries.
    fn auto(&self) -> Result<Vec<u8>, WireError> {
        let binary = self.items.iter().any(|(_, field)| match field {
            Field::Args(args) => !args.attachments.is_empty(),
            Field::Value(_, attachments) => !attachments.is_empty(),
            _ => false,
        });
        if binary { self.msgpack() } else { self.json() }
    }

    fn json(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::from(*b"{");
        for (i, (key, field)) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key)?;
            out.push(b':');
            match field {
                Field::Str(s) => serde_json::to_writer(&mut out, s)?,
                Field::UInt(n) => serde_json::to_writer(&mut out, n)?,
                Field::Bool(b) => serde_json::to_writer(&mut out, b)?,
                Field::Strs(items) => serde_json::to_writer(&mut out, items)?,
                Field::Selector(selector) => serde_json::to_writer(&mut out, selector)?,
                Field::Args(args) => serde_json::to_writer(&mut out, &args.values)?,
                Field::Value(value, _) => serde_json::to_writer(&mut out, value)?,
                Field::Sockets(sockets) => serde_json::to_writer(&mut out, sockets)?,
                Field::Opts(_) | Field::Packet(_) => {
                    return Err(WireError::shape("broadcast packets travel as MessagePack"));
                }
            }
        }
        out.push(b'}');
        Ok(out)
    }

    fn msgpack(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::default();
        w.map(self.items.len());
        for (key, field) in &self.items {
            w.str(key);
            match field {
                Field::Str(s) => w.str(s),
                Field::UInt(n) => w.uint(*n),
                Field::Bool(b) => w.bool(*b),
                Field::Strs(items) => w.strs(items),
                Field::Selector(selector) => {
                    w.map(2);
                    write_selector(&mut w, selector);
                }
                Field::Opts(opts) => write_opts(&mut w, opts),
                Field::Packet(packet) => write_packet(&mut w, packet)?,
                Field::Args(args) => {
                    w.array(args.values.len());
                    for value in &args.values {
                        w.json(value, &args.attachments)?;
                    }
                }
                Field::Value(value, attachments) => w.json(value, attachments)?,
                Field::Sockets(sockets) => w.json(&serde_json::to_value(sockets)?, &[])?,
            }
        }
        Ok(w.buf)
    }
}
