//! A hook's answer: `{"ack": [args], "emit": [emit objects]}`, both optional, nothing else.
//!
//! Each emit object is a `/v1/emit` body, validated by the admin API's own parser (its
//! `user` selector names user rooms, as there), whose selector defaults to the socket the
//! hook is about: without `to`, `room`, `user` and `broadcast` it goes to that socket, and
//! without `namespace` to its namespace. Reaching a whole
//! namespace still needs an explicit `broadcast: true`. The whole answer is validated
//! before anything is sent: one bad part refuses all of it.

use serde_json::Value;

use crate::adapter::EmitRequest;
use crate::admin::{binary, emit};
use crate::socketio::packet::Args;

/// A valid answer.
#[derive(Debug, Default)]
pub(super) struct Answer {
    /// Arguments of the acknowledgement for the client, when the hook gave one.
    pub(super) ack: Option<Args>,
    /// Events to emit, in order, before the acknowledgement.
    pub(super) emits: Vec<EmitRequest>,
}

/// The socket an answer is about, and how its emits name user rooms.
pub(super) struct About<'a> {
    pub(super) namespace: &'a str,
    pub(super) sid: &'a str,
    /// `auth.user_room_prefix`.
    pub(super) user_room_prefix: &'a str,
}

/// Parses an answer `about` a socket. `ack_allowed`: whether `ack` may appear (answers to
/// client events; not to lifecycle events). An empty body is an empty answer. The error
/// says what is wrong, for the log.
pub(super) fn parse(body: &[u8], ack_allowed: bool, about: &About<'_>) -> Result<Answer, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Answer::default());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("the answer is not a JSON object".into());
    };
    let allowed: &[&str] = if ack_allowed {
        &["ack", "emit"]
    } else {
        &["emit"]
    };
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{unknown}` in the answer (allowed: {})",
            allowed.join(", ")
        ));
    }
    let ack = match fields.remove("ack") {
        None => None,
        Some(Value::Array(values)) => {
            Some(binary::to_args(values, "ack", true).map_err(|e| format!("`ack`: {e}"))?)
        }
        Some(_) => return Err("`ack` must be an array of arguments".into()),
    };
    let emits = match fields.remove("emit") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| one_emit(item, about).map_err(|e| format!("`emit[{i}]`: {e}")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`emit` must be an array of emit objects".into()),
    };
    Ok(Answer { ack, emits })
}

fn one_emit(item: Value, about: &About<'_>) -> Result<EmitRequest, String> {
    let Value::Object(mut fields) = item else {
        return Err("must be an object, as a /v1/emit body".into());
    };
    if fields.contains_key("ack_timeout_ms") {
        return Err(
            "`ack_timeout_ms` is not allowed here: nobody would receive the acknowledgements"
                .into(),
        );
    }
    if !["to", "room", "user", "broadcast"]
        .iter()
        .any(|k| fields.contains_key(*k))
    {
        fields.insert("to".into(), Value::String(about.sid.to_owned()));
    }
    if !fields.contains_key("namespace") {
        fields.insert(
            "namespace".into(),
            Value::String(about.namespace.to_owned()),
        );
    }
    emit::parse(Value::Object(fields), u64::MAX, about.user_room_prefix)
        .map_err(|e| format!("{} ({})", e, e.code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn about(namespace: &'static str, sid: &'static str) -> About<'static> {
        About {
            namespace,
            sid,
            user_room_prefix: "user:",
        }
    }

    fn parse_json(value: Value, ack: bool) -> Result<Answer, String> {
        parse(value.to_string().as_bytes(), ack, &about("/chat", "SID"))
    }

    #[test]
    fn empty_answers() {
        for body in [&b""[..], b"  \n", b"{}"] {
            let answer = parse(body, true, &about("/", "s")).unwrap();
            assert!(answer.ack.is_none() && answer.emits.is_empty());
        }
    }

    #[test]
    fn ack_and_emits_with_defaults() {
        let answer = parse_json(
            json!({
                "ack": [1, {"$binary": "AAE="}],
                "emit": [
                    {"event": "a"},
                    {"event": "b", "to": "room1", "data": 2},
                    {"event": "c", "broadcast": true, "namespace": "/"},
                    {"event": "d", "except": "x"},
                    {"event": "e", "user": ["u1", "u2"]},
                    {"event": "f", "user": "u1", "to": "room1"}
                ]
            }),
            true,
        )
        .unwrap();
        let ack = answer.ack.unwrap();
        assert_eq!(ack.attachments.len(), 1);
        let targets: Vec<_> = answer
            .emits
            .iter()
            .map(|e| (e.target.namespace.as_str(), e.target.to.clone()))
            .collect();
        assert_eq!(
            targets,
            [
                ("/chat", vec!["SID".to_owned()]),
                ("/chat", vec!["room1".to_owned()]),
                ("/", vec![]),
                ("/chat", vec!["SID".to_owned()]),
                ("/chat", vec!["user:u1".to_owned(), "user:u2".to_owned()]),
                ("/chat", vec!["room1".to_owned(), "user:u1".to_owned()]),
            ]
        );
    }

    #[test]
    fn refusals() {
        for (body, ack, needle) in [
            (
                json!({"ack": [], "extra": 1}),
                true,
                "unknown field `extra`",
            ),
            (json!({"ack": []}), false, "unknown field `ack`"),
            (json!({"ack": 1}), true, "`ack` must be an array"),
            (
                json!({"emit": {"event": "a"}}),
                true,
                "`emit` must be an array",
            ),
            (json!({"emit": [1]}), true, "`emit[0]`"),
            (
                json!({"emit": [{"event": "a"}, {"event": "connect"}]}),
                true,
                "`emit[1]`",
            ),
            (
                json!({"emit": [{"event": "a", "broadcast": false}]}),
                true,
                "missing_target",
            ),
            (
                json!({"emit": [{"event": "a", "to": "x", "broadcast": true}]}),
                true,
                "conflicting_target",
            ),
            (
                json!({"emit": [{"event": "a", "ack_timeout_ms": 5}]}),
                true,
                "ack_timeout_ms",
            ),
            (
                json!({"emit": [{"event": "a", "bogus": 5}]}),
                true,
                "unknown_field",
            ),
            (
                json!({"emit": [{"event": "a", "user": "u", "broadcast": true}]}),
                true,
                "conflicting_target",
            ),
            (
                json!({"emit": [{"event": "a", "user": ""}]}),
                true,
                "invalid_field",
            ),
            (json!([1]), true, "not a JSON object"),
        ] {
            let err = parse_json(body.clone(), ack).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
        assert!(
            parse(b"{", true, &about("/", "s"))
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
