//! python-socketio's pub/sub manager messages (`RedisManager`, `AsyncRedisManager`),
//! JSON since python-socketio 5.14, all on one channel (`socketio` by default).
//!
//! Messages from 5.13 and older are pickled; they start with the pickle protocol byte
//! `0x80` and are refused with [`WireError::Pickle`] without being looked at further.
//!
//! Arguments: `data` is the list of arguments (a value that is not a list, as 5.14–5.15.0
//! sent for one argument, is one argument). With `"binary": true`, `data` is
//! `[arguments, base64 attachment, ...]` and the arguments hold placeholders.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;

use super::WireError;
use super::value::Object;
use crate::socketio::packet::Args;

/// The first byte of a pickle of protocol 2 or later.
const PICKLE_PROTO: u8 = 0x80;

/// One message of python-socketio's manager protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonMessage {
    /// The publishing manager's id; for [`PythonKind::Callback`], the destination's.
    pub host_id: Option<String>,
    /// What it asks.
    pub kind: PythonKind,
}

/// The methods of python-socketio's manager protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum PythonKind {
    /// `emit`: deliver an event.
    Emit(PythonEmit),
    /// `enter_room`: the socket `sid` joins `room`.
    EnterRoom {
        /// The namespace.
        namespace: String,
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// `leave_room`: the socket `sid` leaves `room`.
    LeaveRoom {
        /// The namespace.
        namespace: String,
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// `close_room`: every socket leaves `room`.
    CloseRoom {
        /// The namespace.
        namespace: String,
        /// The room.
        room: String,
    },
    /// `disconnect`: the socket `sid` is disconnected.
    Disconnect {
        /// The namespace.
        namespace: String,
        /// The socket.
        sid: String,
    },
    /// `callback`: a client's ack returning to the python server `host_id` that asked.
    Callback {
        /// The namespace.
        namespace: String,
        /// The socket that answered.
        sid: String,
        /// The ack id the asking server chose.
        id: Value,
        /// The answer.
        args: Vec<Value>,
    },
}

/// An `emit` message.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonEmit {
    /// The namespace.
    pub namespace: String,
    /// The event name.
    pub event: String,
    /// Its arguments.
    pub args: Args,
    /// Rooms (or sids) addressed; `None` is the whole namespace, an empty list nobody.
    pub rooms: Option<Vec<String>>,
    /// Sids left out.
    pub skip_sids: Vec<String>,
    /// Set when a python server wants the client's ack back: `(sid, namespace, ack id)`.
    pub callback: Option<(String, String, Value)>,
}

impl PythonMessage {
    /// Decodes a message from the python-socketio channel.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.first() == Some(&PICKLE_PROTO) {
            return Err(WireError::Pickle);
        }
        let mut obj = Object::from_json(bytes)?;
        let host_id = obj.take_as::<String>("host_id")?;
        let method = obj.require::<String>("method")?;
        let namespace = obj
            .take_as::<String>("namespace")?
            .unwrap_or_else(|| "/".into());
        let kind = match method.as_str() {
            "emit" => PythonKind::Emit(decode_emit(namespace, &mut obj)?),
            "enter_room" => PythonKind::EnterRoom {
                namespace,
                sid: obj.require("sid")?,
                room: room(&mut obj)?,
            },
            "leave_room" => PythonKind::LeaveRoom {
                namespace,
                sid: obj.require("sid")?,
                room: room(&mut obj)?,
            },
            "close_room" => PythonKind::CloseRoom {
                namespace,
                room: room(&mut obj)?,
            },
            "disconnect" => PythonKind::Disconnect {
                namespace,
                sid: obj.require("sid")?,
            },
            "callback" => PythonKind::Callback {
                namespace,
                sid: obj.require("sid")?,
                id: obj.take("id").map(|p| p.value).unwrap_or(Value::Null),
                args: obj.take_as("args")?.unwrap_or_default(),
            },
            _ => return Err(WireError::UnknownMethod(method)),
        };
        Ok(PythonMessage { host_id, kind })
    }

    /// Encodes it as python-socketio 5.18 does (`json.dumps` with its default separators),
    /// binary arguments as placeholders plus base64.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut fields: Vec<(&str, Value)> = Vec::new();
        let host = || self.host_id.clone().map_or(Value::Null, Value::String);
        match &self.kind {
            PythonKind::Emit(emit) => {
                let binary = !emit.args.attachments.is_empty();
                let data = if binary {
                    let mut data = vec![Value::Array(emit.args.values.clone())];
                    data.extend(
                        emit.args
                            .attachments
                            .iter()
                            .map(|a| Value::String(STANDARD.encode(a))),
                    );
                    data
                } else {
                    emit.args.values.clone()
                };
                let one_or_list = |items: &[String]| match items {
                    [one] => Value::String(one.clone()),
                    _ => Value::from(items.to_vec()),
                };
                fields.push(("method", "emit".into()));
                fields.push(("event", emit.event.clone().into()));
                fields.push(("data", Value::Array(data)));
                fields.push(("binary", binary.into()));
                fields.push(("namespace", emit.namespace.clone().into()));
                fields.push((
                    "room",
                    emit.rooms.as_deref().map_or(Value::Null, one_or_list),
                ));
                fields.push((
                    "skip_sid",
                    match emit.skip_sids.as_slice() {
                        [] => Value::Null,
                        sids => one_or_list(sids),
                    },
                ));
                fields.push((
                    "callback",
                    match &emit.callback {
                        None => Value::Null,
                        Some((sid, ns, id)) => serde_json::json!([sid, ns, id]),
                    },
                ));
                fields.push(("host_id", host()));
            }
            PythonKind::EnterRoom {
                namespace,
                sid,
                room,
            }
            | PythonKind::LeaveRoom {
                namespace,
                sid,
                room,
            } => {
                let method = match self.kind {
                    PythonKind::EnterRoom { .. } => "enter_room",
                    _ => "leave_room",
                };
                fields.push(("method", method.into()));
                fields.push(("sid", sid.clone().into()));
                fields.push(("room", room.clone().into()));
                fields.push(("namespace", namespace.clone().into()));
                fields.push(("host_id", host()));
            }
            PythonKind::CloseRoom { namespace, room } => {
                fields.push(("method", "close_room".into()));
                fields.push(("room", room.clone().into()));
                fields.push(("namespace", namespace.clone().into()));
                fields.push(("host_id", host()));
            }
            PythonKind::Disconnect { namespace, sid } => {
                fields.push(("method", "disconnect".into()));
                fields.push(("sid", sid.clone().into()));
                fields.push(("namespace", namespace.clone().into()));
                fields.push(("host_id", host()));
            }
            PythonKind::Callback {
                namespace,
                sid,
                id,
                args,
            } => {
                fields.push(("method", "callback".into()));
                fields.push(("host_id", host()));
                fields.push(("sid", sid.clone().into()));
                fields.push(("namespace", namespace.clone().into()));
                fields.push(("id", id.clone()));
                fields.push(("args", Value::Array(args.clone())));
            }
        }
        let mut out = Vec::from(*b"{");
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            write_python_json(&mut out, &Value::String((*key).into()));
            out.extend_from_slice(b": ");
            write_python_json(&mut out, value);
        }
        out.push(b'}');
        Ok(out)
    }
}

fn room(obj: &mut Object) -> Result<String, WireError> {
    let value = obj
        .take("room")
        .ok_or_else(|| WireError::shape("missing field `room`"))?
        .value;
    super::room_name(value)
}

/// `null`, one name, or a list of names.
fn names(value: Option<Value>) -> Result<Option<Vec<String>>, WireError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(super::room_name)
            .collect::<Result<_, _>>()
            .map(Some),
        Some(one) => Ok(Some(vec![super::room_name(one)?])),
    }
}

fn decode_emit(namespace: String, obj: &mut Object) -> Result<PythonEmit, WireError> {
    let event = obj.require::<String>("event")?;
    let binary = obj.take_as::<bool>("binary")?.unwrap_or(false);
    let data = obj.take("data").map(|p| p.value).unwrap_or(Value::Null);
    let args = if binary {
        let Value::Array(mut parts) = data else {
            return Err(WireError::shape("binary `data` is not a list"));
        };
        if parts.is_empty() {
            return Err(WireError::shape("binary `data` is empty"));
        }
        let skeleton = parts.remove(0);
        let attachments = parts
            .into_iter()
            .map(|part| match part {
                Value::String(b64) => STANDARD
                    .decode(b64.as_bytes())
                    .map(Bytes::from)
                    .map_err(|err| WireError::shape(format!("attachment is not base64: {err}"))),
                _ => Err(WireError::shape("attachment is not a base64 string")),
            })
            .collect::<Result<_, _>>()?;
        Args {
            values: as_list(skeleton),
            attachments,
        }
    } else {
        Args {
            values: as_list(data),
            attachments: Vec::new(),
        }
    };
    let callback = match obj.take("callback").map(|p| p.value) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.len() == 3 => {
            let mut items = items.into_iter();
            let (sid, ns, id) = (items.next(), items.next(), items.next());
            match (sid, ns, id) {
                (Some(Value::String(sid)), Some(Value::String(ns)), Some(id)) => {
                    Some((sid, ns, id))
                }
                _ => return Err(WireError::shape("`callback` is not [sid, namespace, id]")),
            }
        }
        Some(_) => return Err(WireError::shape("`callback` is not [sid, namespace, id]")),
    };
    Ok(PythonEmit {
        namespace,
        event,
        args,
        rooms: names(obj.take("room").map(|p| p.value))?,
        skip_sids: names(obj.take("skip_sid").map(|p| p.value))?.unwrap_or_default(),
        callback,
    })
}

fn as_list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// Writes JSON as Python's `json.dumps` does by default: `", "` and `": "` separators and
/// non-ASCII characters escaped.
fn write_python_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_python_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_python_json(out, &Value::String(key.clone()));
                out.extend_from_slice(b": ");
                write_python_json(out, item);
            }
            out.push(b'}');
        }
        Value::String(s) => {
            let json = Value::String(s.clone()).to_string();
            for c in json.chars() {
                if c.is_ascii() {
                    out.push(c as u8);
                } else {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                    }
                }
            }
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}
