//! Decoding: one complete MessagePack value (or a JSON object) converted to JSON field by
//! field, `bin` values becoming attachments behind placeholders.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use super::placeholders::placeholder;
use super::time::{iso_string, timestamp_ms};
use crate::adapter::redis::wire::WireError;
use crate::socketio::packet::Args;

/// Nesting deeper than this is refused (rmpv counts two levels per container).
const MAX_DEPTH: usize = 256;

/// One top-level field of a message, converted to JSON with its own attachments.
#[derive(Debug, Clone, Default, PartialEq)]
pub(in crate::adapter::redis::wire) struct Part {
    pub value: Value,
    pub attachments: Vec<Bytes>,
}

impl Part {
    fn json(value: Value) -> Self {
        Part {
            value,
            attachments: Vec::new(),
        }
    }

    /// The part as arguments: an array's elements, or any other value as one argument.
    pub fn into_args(self) -> Args {
        let values = match self.value {
            Value::Array(values) => values,
            other => vec![other],
        };
        Args {
            values,
            attachments: self.attachments,
        }
    }
}

/// A message that is a map (JSON object or MessagePack map), field by field.
#[derive(Debug, Default)]
pub(in crate::adapter::redis::wire) struct Object {
    fields: Vec<(String, Part)>,
}

impl Object {
    /// Reads a payload the way Node's adapter reads requests and responses: JSON when the
    /// first byte is `{`, MessagePack otherwise.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.first() == Some(&b'{') {
            Self::from_json(bytes)
        } else {
            Self::from_msgpack(bytes)
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, WireError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Object {
                fields: map.into_iter().map(|(k, v)| (k, Part::json(v))).collect(),
            }),
            Ok(_) => Err(WireError::shape("expected a JSON object")),
            Err(err) => Err(WireError::Json(err.to_string())),
        }
    }

    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, WireError> {
        match read(bytes)? {
            rmpv::Value::Map(entries) => Self::from_entries(entries),
            _ => Err(WireError::shape("expected a MessagePack map")),
        }
    }

    fn from_entries(entries: Vec<(rmpv::Value, rmpv::Value)>) -> Result<Self, WireError> {
        let fields = entries
            .into_iter()
            .map(|(key, value)| Ok((map_key(key)?, part(value)?)))
            .collect::<Result<_, WireError>>()?;
        Ok(Object { fields })
    }

    fn from_part(part: Part) -> Result<Self, WireError> {
        // A nested map converted as a whole: its fields share one numbering, which is
        // right for every nested map that carries binary in one field only (packets).
        match part.value {
            Value::Object(map) => Ok(Object {
                fields: map
                    .into_iter()
                    .map(|(k, value)| {
                        let attachments = part.attachments.clone();
                        (k, Part { value, attachments })
                    })
                    .collect(),
            }),
            _ => Err(WireError::shape("expected a map")),
        }
    }

    /// Removes a field (the last one of that name, as `JSON.parse` keeps the last).
    pub fn take(&mut self, key: &str) -> Option<Part> {
        let index = self.fields.iter().rposition(|(k, _)| k == key)?;
        Some(self.fields.remove(index).1)
    }

    /// Removes a field and deserializes it; absent or `null` is `None`.
    pub fn take_as<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, WireError> {
        match self.take(key) {
            None => Ok(None),
            Some(Part {
                value: Value::Null, ..
            }) => Ok(None),
            Some(part) => serde_json::from_value(part.value)
                .map(Some)
                .map_err(|err| WireError::shape(format!("field `{key}`: {err}"))),
        }
    }

    /// Like [`Object::take_as`], for a field that must be there.
    pub fn require<T: DeserializeOwned>(&mut self, key: &str) -> Result<T, WireError> {
        self.take_as(key)?
            .ok_or_else(|| WireError::shape(format!("missing field `{key}`")))
    }

    /// Removes a field that is itself a map.
    pub fn take_object(&mut self, key: &str) -> Result<Option<Object>, WireError> {
        match self.take(key) {
            None => Ok(None),
            Some(part) if part.value.is_null() => Ok(None),
            Some(part) => Object::from_part(part).map(Some),
        }
    }
}

/// A message that is a MessagePack array, element by element.
pub(in crate::adapter::redis::wire) fn top_array(bytes: &[u8]) -> Result<Vec<Part>, WireError> {
    match read(bytes)? {
        rmpv::Value::Array(items) => items.into_iter().map(part).collect(),
        _ => Err(WireError::shape("expected a MessagePack array")),
    }
}

/// Turns a nested map part into an [`Object`].
pub(in crate::adapter::redis::wire) fn object(part: Part) -> Result<Object, WireError> {
    Object::from_part(part)
}

/// Reads exactly one MessagePack value.
fn read(bytes: &[u8]) -> Result<rmpv::Value, WireError> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH)
        .map_err(|err| WireError::Msgpack(err.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Msgpack(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

fn part(value: rmpv::Value) -> Result<Part, WireError> {
    let mut attachments = Vec::new();
    let value = to_json(value, &mut attachments)?;
    Ok(Part { value, attachments })
}

fn map_key(key: rmpv::Value) -> Result<String, WireError> {
    match key {
        rmpv::Value::String(s) => s
            .into_str()
            .ok_or_else(|| WireError::shape("map key is not valid UTF-8")),
        rmpv::Value::Integer(i) => Ok(i.to_string()),
        _ => Err(WireError::shape("map key is not a string")),
    }
}

/// Converts a MessagePack value to JSON; `bin` values are appended to `attachments`.
fn to_json(value: rmpv::Value, attachments: &mut Vec<Bytes>) -> Result<Value, WireError> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(s)) => Value::from(s),
            (None, None) => Value::Null,
        },
        rmpv::Value::F32(f) => float(f64::from(f)),
        rmpv::Value::F64(f) => float(f),
        rmpv::Value::String(s) => Value::String(
            s.into_str()
                .ok_or_else(|| WireError::shape("string is not valid UTF-8"))?,
        ),
        rmpv::Value::Binary(bytes) => {
            let num = attachments.len();
            attachments.push(Bytes::from(bytes));
            placeholder(num)
        }
        rmpv::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| to_json(item, attachments))
                .collect::<Result<_, _>>()?,
        ),
        rmpv::Value::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                map.insert(map_key(key)?, to_json(value, attachments)?);
            }
            Value::Object(map)
        }
        rmpv::Value::Ext(-1, data) => match timestamp_ms(&data)? {
            Some(ms) => iso_string(ms).map_or(Value::Null, Value::String),
            None => Value::Null,
        },
        // notepack.io 2 wrote `undefined` as fixext1 type 0; JSON has only null.
        rmpv::Value::Ext(0, _) => Value::Null,
        rmpv::Value::Ext(kind, _) => return Err(WireError::Extension(kind)),
    })
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::super::{Writer, hex};
    use super::*;

    #[test]
    fn binary_round_trips_through_placeholders() {
        let bytes = hex("92a362696ec403010203");
        let parts = match read(&bytes).unwrap() {
            rmpv::Value::Array(items) => items,
            _ => unreachable!(),
        };
        let mut attachments = Vec::new();
        let value = to_json(rmpv::Value::Array(parts), &mut attachments).unwrap();
        assert_eq!(
            value,
            serde_json::json!(["bin", {"_placeholder": true, "num": 0}])
        );
        assert_eq!(attachments, vec![Bytes::from_static(&[1, 2, 3])]);
        let mut w = Writer::default();
        w.json(&value, &attachments).unwrap();
        assert_eq!(w.buf, bytes);
        // A placeholder with no attachment is refused, not written as a map.
        assert_eq!(w.json(&value, &[]), Err(WireError::Placeholder(0)));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let samples: &[&[u8]] = &[
            b"",
            b"\xc1",
            b"\x93",
            b"\xdd\xff\xff\xff\xff",
            b"\xc7\x03\xff\x00\x00\x00",
            b"\xd4\x05\x00",
            b"\x81\xc4\x01a\x01",
            b"\xa3ab",
            b"\x90\x90",
            &[0x91; 10_000],
        ];
        for sample in samples {
            assert!(Object::from_payload(sample).is_err(), "{sample:?}");
            assert!(top_array(sample).is_err(), "{sample:?}");
        }
    }
}
