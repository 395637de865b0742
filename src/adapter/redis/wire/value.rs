//! MessagePack ⇄ JSON with binary attachments: the value layer under the Node formats.
//!
//! Decoding reads one complete MessagePack value (as notepack.io does: trailing bytes are
//! an error) and converts it to JSON the way a Node server hands it to socket.io-parser:
//! `bin` becomes an attachment behind a `{"_placeholder": true, "num": N}` object, the
//! timestamp extension becomes an ISO-8601 string, the legacy undefined extension and
//! non-finite floats become `null`. A message's top-level fields are converted one by one
//! ([`Object`], [`top_array`]), each with its own attachment numbering, so that each field
//! that carries arguments maps onto one [`Args`](crate::socketio::packet::Args).
//!
//! Encoding writes JSON with attachments the way notepack.io writes JavaScript values:
//! integers in their smallest form, other numbers as float64.
//!
//! Submodules, by what they own: `decode` MessagePack and JSON payloads to [`Part`]s and
//! [`Object`]s; `encode` the MessagePack [`Writer`]; `placeholders` binary placeholders and
//! their attachments; `time` the timestamp extension and JavaScript date strings.

mod decode;
mod encode;
mod placeholders;
mod time;

pub(super) use decode::{Object, Part, object, top_array};
pub(super) use encode::Writer;
pub(super) use placeholders::single_arg;
pub(super) use time::{iso_string, js_date_string};

#[cfg(test)]
fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
