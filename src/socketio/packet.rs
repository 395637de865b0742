//! Socket.IO v5 packets: types, text encoding, binary placeholders. Pure: no I/O.

use bytes::Bytes;

/// Arguments of an event or an acknowledgement: JSON values in which binary parts are
/// `{"_placeholder": true, "num": N}` objects pointing into `attachments`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// The JSON arguments, with placeholders for binary parts.
    pub values: Vec<serde_json::Value>,
    /// Binary parts, in placeholder order.
    pub attachments: Vec<Bytes>,
}
