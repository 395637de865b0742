//! The keyed fields requests and responses are made of: read from a decoded object
//! (ids, room lists, single values), and written in order as JSON or MessagePack.

use bytes::Bytes;
use serde_json::Value;

use super::RemoteSocket;
use super::packet::{write_opts, write_packet, write_selector};
use crate::adapter::redis::wire::value::{Object, Part, Writer};
use crate::adapter::redis::wire::{BroadcastOpts, EventPacket, Selector, WireError, room_name};
use crate::socketio::packet::Args;

/// A request id or uid: a string, or a number taken as its decimal text.
pub(super) fn take_id(obj: &mut Object, key: &str) -> Result<Option<String>, WireError> {
    match obj.take(key).map(|p| p.value) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(WireError::shape(format!("`{key}` is not a string"))),
    }
}

pub(super) fn take_rooms(obj: &mut Object, key: &str) -> Result<Vec<String>, WireError> {
    Ok(take_rooms_opt(obj, key)?.unwrap_or_default())
}

pub(super) fn take_rooms_opt(
    obj: &mut Object,
    key: &str,
) -> Result<Option<Vec<String>>, WireError> {
    match obj.take(key).map(|p| p.value) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(room_name)
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(WireError::shape(format!("`{key}` is not an array"))),
    }
}

/// A part holding one value, as arguments.
pub(super) fn single(part: Part) -> Args {
    Args {
        values: vec![part.value],
        attachments: part.attachments,
    }
}

/// One field of a request or response, written as JSON or MessagePack in order.
pub(super) enum Field<'a> {
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
pub(super) struct Fields<'a> {
    items: Vec<(&'static str, Field<'a>)>,
}

impl<'a> Fields<'a> {
    pub(super) fn push(&mut self, key: &'static str, field: Field<'a>) {
        self.items.push((key, field));
    }

    /// JSON, unless some field holds binary, which only MessagePack carries.
    pub(super) fn auto(&self) -> Result<Vec<u8>, WireError> {
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

    pub(super) fn msgpack(&self) -> Result<Vec<u8>, WireError> {
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
