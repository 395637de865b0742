//! `POST /v1/emit`: one event, or a batch of them, to the selected sockets.
//!
//! The whole body is validated before anything is sent: a batch with one bad element is
//! refused whole (the error carries the element's `index`). Batch elements are then sent
//! in order, each one after the previous one's acknowledgements (if it asked for any) are
//! in, so that clients receive them in the order given.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::audit::Access;
use super::binary;
use super::body::{Fields, kind, read_json, wrong_type};
use super::error::ApiError;
use super::{AdminState, LiveConfig};
use super::{idempotency, selector};
use crate::adapter::{EmitOutcome, EmitRequest};
use crate::config::AdminOp;
use crate::socketio::packet::{Args, is_reserved_event};

const FIELDS: [&str; 10] = [
    "namespace",
    "to",
    "room",
    "except",
    "broadcast",
    "user",
    "event",
    "data",
    "args",
    "ack_timeout_ms",
];

/// The answer for one emit.
#[derive(Debug, Serialize)]
pub(super) struct EmitAnswer {
    recipients: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    acks: Option<Vec<AckAnswer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

#[derive(Debug, Serialize)]
struct AckAnswer {
    sid: Option<String>,
    args: Vec<Value>,
}

/// `POST /v1/emit`.
pub async fn emit(
    State(state): State<AdminState>,
    Extension(live): Extension<Arc<LiveConfig>>,
    Extension(access): Extension<Access>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = idempotency::key(request.headers())?;
    let body = read_json(request, live.max_body_bytes).await?;
    let max_ack = live.max_ack_timeout_ms;
    // Everything is validated before anything is sent, or a key is used.
    let emits = match body {
        Value::Array(items) => Emits::Batch(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    parse(item, max_ack, state.user_rooms())
                        .and_then(|request| {
                            access.check(AdminOp::Emit, &request.target, &[])?;
                            Ok(request)
                        })
                        .map_err(|error| ApiError::InBatch {
                            index,
                            error: Box::new(error),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Object(_) => {
            let request = parse(body, max_ack, state.user_rooms())?;
            access.check(AdminOp::Emit, &request.target, &[])?;
            Emits::One(request)
        }
        other => {
            return Err(ApiError::InvalidJson(format!(
                "expected a JSON object or an array of objects, got {}",
                kind(&other)
            )));
        }
    };
    let sending = async {
        let answer = match emits {
            Emits::Batch(requests) => {
                let mut answers = Vec::with_capacity(requests.len());
                for request in requests {
                    answers.push(send(&state, request).await?);
                }
                serde_json::to_vec(&answers)
            }
            Emits::One(request) => serde_json::to_vec(&send(&state, request).await?),
        };
        answer
            .map(Bytes::from)
            .map_err(|err| ApiError::Internal(err.to_string()))
    };
    let window = Duration::from_millis(live.idempotency_window_ms);
    // A repeat waits for a first request as long as that one may wait for acks.
    let wait = Duration::from_millis(live.max_ack_timeout_ms) + REPEAT_WAIT_MARGIN;
    idempotency::once(&state, key, window, wait, sending).await
}

/// What a repeat waits beyond `admin.max_ack_timeout_ms` for the first request's answer.
const REPEAT_WAIT_MARGIN: Duration = Duration::from_secs(10);

/// A validated body.
enum Emits {
    One(EmitRequest),
    Batch(Vec<EmitRequest>),
}

/// Validates one emit object; `user_prefix` turns `user` names into their rooms.
pub fn parse(
    value: Value,
    max_ack_timeout_ms: u64,
    user_prefix: &str,
) -> Result<EmitRequest, ApiError> {
    let mut fields = Fields::new(value, &FIELDS)?;
    let target = selector::from_fields(&mut fields, user_prefix)?;
    let event = match fields.take("event") {
        None => return Err(ApiError::field("`event` is required")),
        Some(Value::String(event)) if event.is_empty() => {
            return Err(ApiError::field("`event` must not be empty"));
        }
        Some(Value::String(event)) => event,
        Some(other) => return Err(wrong_type("event", "a string", &other)),
    };
    if is_reserved_event(&event) {
        return Err(ApiError::ReservedEvent(event));
    }
    let args = match (fields.take("data"), fields.take("args")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "give `data` (one argument) or `args` (the argument list), not both",
            ));
        }
        (Some(data), None) => binary::to_args(vec![data], "data", false)?,
        (None, Some(Value::Array(args))) => binary::to_args(args, "args", true)?,
        (None, Some(other)) => return Err(wrong_type("args", "an array", &other)),
        (None, None) => Args::default(),
    };
    let ack_timeout = fields
        .take("ack_timeout_ms")
        .map(|v| ack_timeout(&v, max_ack_timeout_ms))
        .transpose()?;
    Ok(EmitRequest {
        target,
        event,
        args,
        ack_timeout,
    })
}

fn ack_timeout(value: &Value, max: u64) -> Result<Duration, ApiError> {
    // JSON Schema counts `5.0` as an integer; so do we.
    let ms = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= max as f64)
            .map(|f| f as u64)
    });
    match ms {
        Some(ms) if (1..=max).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(ApiError::field(format!(
            "`ack_timeout_ms` must be an integer from 1 to {max}, got {value}"
        ))),
    }
}

/// Sends one validated emit and counts it.
pub(super) async fn send(state: &AdminState, request: EmitRequest) -> Result<EmitAnswer, ApiError> {
    let waits = request.ack_timeout.is_some();
    let namespace = request.target.namespace.clone();
    let outcome = state.adapter().emit(request).await?;
    state.metrics().pushes.inc();
    let EmitOutcome {
        recipients,
        acks,
        timeouts,
        partial,
    } = outcome;
    tracing::debug!(%namespace, recipients, partial, "admin emit");
    if !waits {
        return Ok(EmitAnswer {
            recipients,
            acks: None,
            timeouts: None,
            partial,
        });
    }
    let acks = acks
        .into_iter()
        .map(|ack| AckAnswer {
            sid: ack.sid,
            args: binary::from_args(ack.args),
        })
        .collect();
    Ok(EmitAnswer {
        recipients,
        acks: Some(acks),
        timeouts: Some(timeouts),
        partial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_emits() {
        let request = parse(json!({"to": "r", "event": "e"}), 10, "user:").unwrap();
        assert_eq!(request.event, "e");
        assert!(request.args.values.is_empty());
        assert_eq!(request.ack_timeout, None);

        let request = parse(json!({"to": "r", "event": "e", "data": null}), 10, "user:").unwrap();
        assert_eq!(request.args.values, vec![json!(null)]);

        let request = parse(
            json!({"to": "r", "event": "e", "data": [1, 2]}),
            10,
            "user:",
        )
        .unwrap();
        assert_eq!(request.args.values, vec![json!([1, 2])]);

        let request = parse(
            json!({"to": "r", "event": "e", "args": [1, 2]}),
            10,
            "user:",
        )
        .unwrap();
        assert_eq!(request.args.values, vec![json!(1), json!(2)]);

        let request = parse(json!({"to": "r", "event": "e", "args": []}), 10, "user:").unwrap();
        assert!(request.args.values.is_empty());

        for (ms, want) in [(json!(1), 1), (json!(10), 10), (json!(7.0), 7)] {
            let request = parse(
                json!({"broadcast": true, "event": "e", "ack_timeout_ms": ms}),
                10,
                "user:",
            )
            .unwrap();
            assert_eq!(request.ack_timeout, Some(Duration::from_millis(want)));
        }
    }

    #[test]
    fn refused_emits() {
        let cases = [
            (json!({"to": "r"}), "invalid_field"),
            (json!({"to": "r", "event": ""}), "invalid_field"),
            (json!({"to": "r", "event": 1}), "invalid_field"),
            (json!({"to": "r", "event": null}), "invalid_field"),
            (json!({"to": "r", "event": "connect"}), "reserved_event"),
            (json!({"to": "r", "event": "newListener"}), "reserved_event"),
            (
                json!({"to": "r", "event": "e", "data": 1, "args": []}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "args": {}}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "args": null}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "data": {"$binary": "*"}}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "args": [{"$binary": "A"}]}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "ack_timeout_ms": 0}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "ack_timeout_ms": 11}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "ack_timeout_ms": -1}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "ack_timeout_ms": 1.5}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "ack_timeout_ms": "5"}),
                "invalid_field",
            ),
            (
                json!({"to": "r", "event": "e", "ack_timeout_ms": null}),
                "invalid_field",
            ),
            (json!({"to": "r", "event": "e", "ack": 5}), "unknown_field"),
            (json!({"event": "e"}), "missing_target"),
            (json!({"event": "connect"}), "missing_target"),
            (
                json!({"to": "r", "broadcast": true, "event": "e"}),
                "conflicting_target",
            ),
        ];
        for (body, code) in cases {
            let got = parse(body.clone(), 10, "user:")
                .map(|_| ())
                .map_err(|e| e.code());
            assert_eq!(got, Err(code), "{body}");
        }
    }
}
