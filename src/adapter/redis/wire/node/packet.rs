//! The event packet and the broadcast options, as both broadcasts and broadcast-with-acks
//! requests carry them: decoded from a MessagePack or JSON object, written as MessagePack.

use serde::Deserialize;
use serde_json::Value;

use crate::adapter::redis::wire::value::{Object, Part, Writer};
use crate::adapter::redis::wire::{BroadcastOpts, EventPacket, Flags, Selector, WireError};
use crate::socketio::packet::Args;

/// Socket.IO packet type EVENT, the only one cluster broadcasts carry.
const EVENT: u64 = 2;
/// Socket.IO packet type BINARY_EVENT, accepted from older senders.
const BINARY_EVENT: i64 = 5;

pub(super) fn decode_packet(mut obj: Object) -> Result<EventPacket, WireError> {
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

pub(super) fn decode_opts(part: Part) -> Result<BroadcastOpts, WireError> {
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

pub(super) fn write_packet(w: &mut Writer, packet: &EventPacket) -> Result<(), WireError> {
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

pub(super) fn write_selector(w: &mut Writer, selector: &Selector) {
    w.str("rooms");
    w.strs(&selector.rooms);
    w.str("except");
    w.strs(&selector.except);
}

pub(super) fn write_opts(w: &mut Writer, opts: &BroadcastOpts) {
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
