//! The response kinds of the classic protocol, published on the response channels:
//! JSON, except acks (type 9), which are MessagePack.

use serde_json::Value;

use super::RemoteSocket;
use super::fields::{Field, Fields, single, take_id, take_rooms_opt};
use crate::adapter::redis::wire::value::{self, Object};
use crate::adapter::redis::wire::{WireError, room_name};
use crate::socketio::packet::Args;

/// A response published on a response channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// To [`RequestKind::Sockets`](super::RequestKind::Sockets):
    /// `{requestId, sockets: [sid, ...]}`.
    SocketIds {
        /// The request answered.
        request_id: String,
        /// Socket ids.
        sockets: Vec<String>,
    },
    /// To [`RequestKind::FetchSockets`](super::RequestKind::FetchSockets):
    /// `{requestId, sockets: [{id, handshake, rooms, data}]}`.
    Sockets {
        /// The request answered.
        request_id: String,
        /// The node's matching sockets.
        sockets: Vec<RemoteSocket>,
    },
    /// To [`RequestKind::AllRooms`](super::RequestKind::AllRooms): `{requestId, rooms}`
    /// (socket-id rooms included).
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
                        let sockets = items.into_iter().map(room_name).collect::<Result<_, _>>()?;
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
