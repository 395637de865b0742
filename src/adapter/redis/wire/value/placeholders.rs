//! Binary placeholders: the `{"_placeholder": true, "num": N}` objects socket.io-parser
//! puts where a binary part was, their attachments, and renumbering them when one
//! argument is taken out of a list.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::adapter::redis::wire::WireError;
use crate::socketio::packet::Args;

/// The JSON object socket.io-parser puts where a binary part was.
pub(super) fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".into(), Value::Bool(true));
    map.insert("num".into(), Value::from(num));
    Value::Object(map)
}

/// If `value` is a binary placeholder, its attachment number.
pub(super) fn placeholder_num(value: &Map<String, Value>) -> Option<Option<u64>> {
    if value.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    Some(value.get("num").and_then(Value::as_u64))
}

/// Splits `args` at argument `index`: that one argument with only the attachments it
/// uses, renumbered from 0.
pub(in crate::adapter::redis::wire) fn single_arg(
    args: &Args,
    index: usize,
) -> Result<Args, WireError> {
    let Some(value) = args.values.get(index) else {
        return Ok(Args::default());
    };
    let mut out = Args::default();
    let value = renumber(value, &args.attachments, &mut out.attachments)?;
    out.values.push(value);
    Ok(out)
}

fn renumber(value: &Value, from: &[Bytes], to: &mut Vec<Bytes>) -> Result<Value, WireError> {
    Ok(match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| renumber(item, from, to))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => match placeholder_num(map) {
            Some(num) => {
                let bytes = attachment(num, from)?;
                to.push(bytes.clone());
                placeholder(to.len() - 1)
            }
            None => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), renumber(v, from, to)?)))
                    .collect::<Result<_, WireError>>()?,
            ),
        },
        other => other.clone(),
    })
}

pub(super) fn attachment(num: Option<u64>, attachments: &[Bytes]) -> Result<&Bytes, WireError> {
    let num = num.ok_or(WireError::Placeholder(u64::MAX))?;
    usize::try_from(num)
        .ok()
        .and_then(|i| attachments.get(i))
        .ok_or(WireError::Placeholder(num))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_arg_renumbers_attachments() {
        let args = Args {
            values: vec![
                serde_json::json!({"_placeholder": true, "num": 0}),
                serde_json::json!({"a": {"_placeholder": true, "num": 1}}),
            ],
            attachments: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        };
        let second = single_arg(&args, 1).unwrap();
        assert_eq!(
            second.values,
            vec![serde_json::json!({"a": {"_placeholder": true, "num": 0}})]
        );
        assert_eq!(second.attachments, vec![Bytes::from_static(b"b")]);
        assert_eq!(single_arg(&args, 5).unwrap(), Args::default());
    }
}
