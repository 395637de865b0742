//! Binary in JSON: `{"$binary": "<base64>"}` objects ↔ Socket.IO attachments.
//!
//! On the way in, every object of exactly that form inside `data` or `args` becomes a
//! `{"_placeholder": true, "num": N}` placeholder and its bytes attachment `N`, so the
//! event goes out as a Socket.IO binary event. On the way back, the placeholders of an
//! acknowledgement become `{"$binary": …}` objects again.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::socketio::packet::Args;

/// The key that marks a binary value.
const BINARY_KEY: &str = "$binary";

/// Builds event arguments from JSON values, turning `{"$binary": …}` objects into
/// attachments. `root` names the field the values came from (`data` or `args`), for
/// messages: the first argument of `args` is `args[0]`, `data` is `data`.
pub fn to_args(mut values: Vec<Value>, root: &str, indexed: bool) -> Result<Args, ApiError> {
    let mut attachments = Vec::new();
    for (i, value) in values.iter_mut().enumerate() {
        let mut path = if indexed {
            format!("{root}[{i}]")
        } else {
            root.to_owned()
        };
        extract(value, &mut path, &mut attachments)?;
    }
    Ok(Args {
        values,
        attachments,
    })
}

fn extract(value: &mut Value, path: &mut String, out: &mut Vec<Bytes>) -> Result<(), ApiError> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key(BINARY_KEY) => {
            let Some(Value::String(encoded)) = map.get(BINARY_KEY) else {
                return Err(ApiError::field(format!(
                    "`{path}.{BINARY_KEY}` must be a base64 string"
                )));
            };
            let bytes = STANDARD.decode(encoded).map_err(|e| {
                ApiError::field(format!(
                    "`{path}.{BINARY_KEY}` is not standard padded base64: {e}"
                ))
            })?;
            *value = json!({"_placeholder": true, "num": out.len()});
            out.push(Bytes::from(bytes));
        }
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                extract(child, path, out)?;
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                extract(child, path, out)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Turns acknowledgement arguments back into JSON, with `{"$binary": …}` for attachments.
///
/// Placeholders that point at no attachment are left as they are.
pub fn from_args(args: Args) -> Vec<Value> {
    let Args {
        mut values,
        attachments,
    } = args;
    if !attachments.is_empty() {
        for value in &mut values {
            restore(value, &attachments);
        }
    }
    values
}

fn restore(value: &mut Value, attachments: &[Bytes]) {
    match value {
        Value::Object(map) => {
            if let Some(bytes) = placeholder(map).and_then(|n| attachments.get(n)) {
                *value = json!({ BINARY_KEY: STANDARD.encode(bytes) });
                return;
            }
            for child in map.values_mut() {
                restore(child, attachments);
            }
        }
        Value::Array(items) => {
            for child in items {
                restore(child, attachments);
            }
        }
        _ => {}
    }
}

fn placeholder(map: &Map<String, Value>) -> Option<usize> {
    if map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    map.get("num")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip() {
        let values = vec![
            json!({"a": {"$binary": "AAEC"}, "b": [1, {"$binary": ""}], "c": {"$binary": "aGk=", "x": 1}}),
            json!({"$binary": "/w=="}),
        ];
        let args = to_args(values.clone(), "args", true).unwrap();
        assert_eq!(
            args.values,
            vec![
                json!({"a": {"_placeholder": true, "num": 0}, "b": [1, {"_placeholder": true, "num": 1}], "c": {"$binary": "aGk=", "x": 1}}),
                json!({"_placeholder": true, "num": 2}),
            ]
        );
        assert_eq!(
            args.attachments,
            vec![
                Bytes::from_static(&[0, 1, 2]),
                Bytes::new(),
                Bytes::from_static(&[255])
            ]
        );
        assert_eq!(from_args(args), values);
    }

    #[test]
    fn invalid_base64_names_the_path() {
        for (value, path) in [
            (json!({"x": [0, {"$binary": "A"}]}), "`data.x[1].$binary`"),
            (json!({"$binary": "AAE"}), "`data.$binary`"),
            (json!({"$binary": "AA=="}), ""),
            (json!({"$binary": "AB=="}), "`data.$binary`"),
            (json!({"$binary": "A A="}), "`data.$binary`"),
            (json!({"$binary": 5}), "`data.$binary`"),
        ] {
            let got = to_args(vec![value.clone()], "data", false);
            if path.is_empty() {
                assert!(got.is_ok(), "{value}");
                continue;
            }
            let err = got.unwrap_err();
            assert_eq!(err.code(), "invalid_field", "{value}");
            assert!(err.to_string().contains(path), "{value}: {err}");
        }
    }

    #[test]
    fn plain_values_pass_through() {
        let values = vec![
            json!(null),
            json!({"_placeholder": true, "num": 0}),
            json!("x"),
        ];
        let args = to_args(values.clone(), "args", true).unwrap();
        assert!(args.attachments.is_empty());
        assert_eq!(from_args(args), values);
    }
}
