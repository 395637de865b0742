//! The request kinds of the classic protocol, published on the request channel: JSON,
//! except a broadcast with acks (type 7), which is MessagePack.

use serde_json::Value;

use super::fields::{Field, Fields, take_id, take_rooms};
use super::packet::{decode_opts, decode_packet};
use crate::adapter::redis::wire::value::{Object, Part};
use crate::adapter::redis::wire::{BroadcastOpts, EventPacket, Selector, WireError, room_name};
use crate::socketio::packet::Args;

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
    /// nodes answer a request id with [`Response::Count`](super::Response::Count).
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
        /// sio-relay's `relaySkip: true` (Node ignores it): sio-relay nodes do not answer,
        /// so that only Node.js peers do. Sent to count an emit's recipients on them.
        relay_skip: bool,
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
                relay_skip: obj.take_as("relaySkip")?.unwrap_or(false),
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
            RequestKind::FetchSockets {
                selector,
                relay_skip,
                ..
            } => {
                fields.push("opts", Field::Selector(selector));
                if *relay_skip {
                    fields.push("relaySkip", Field::Bool(true));
                }
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
            let room = room_name(
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
