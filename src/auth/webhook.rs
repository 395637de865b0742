//! `mode = "webhook"`: the relay asks a backend whether a client may join.
//!
//! It POSTs `{"type": "authorize", "namespace", "auth", "headers", "query", "address"}`,
//! signed like every request the relay makes to backends (see [`crate::signing`]).
//! `200 {"user"?, "rooms"?, "data"?}` accepts; `401`/`403 {"message"?}` refuses with that
//! message (`rejected`); any other answer, a malformed one, or none within
//! `auth.timeout_ms` refuses with `auth_unavailable`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Code, PendingCheck, Refusal, Request, grant};
use crate::config::AuthConfig;

/// The largest answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The longest refusal message passed on to the client.
const MAX_MESSAGE_CHARS: usize = 256;

pub(super) struct Webhook {
    url: Arc<str>,
    secret: Option<Arc<[u8]>>,
    client: reqwest::Client,
}

impl Webhook {
    pub(super) fn new(config: &AuthConfig, client: reqwest::Client) -> Self {
        Webhook {
            url: Arc::from(config.webhook_url.as_str()),
            secret: (!config.webhook_secret.is_empty())
                .then(|| Arc::from(config.webhook_secret.as_bytes())),
            client,
        }
    }

    pub(super) fn check(&self, request: &Request<'_>) -> PendingCheck {
        let body = json!({
            "type": "authorize",
            "namespace": request.namespace,
            "auth": request.auth,
            "headers": request.handshake.headers_object(),
            "query": request.handshake.query_object(),
            "address": request.address.to_string(),
        });
        let body = serde_json::to_vec(&body).expect("a JSON value serializes");
        let mut post = self
            .client
            .post(&*self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in crate::signing::headers(self.secret.as_deref(), &body) {
            post = post.header(name, value);
        }
        let post = post.body(body);
        let url = self.url.clone();
        Box::pin(async move {
            let unavailable = |detail: String| {
                tracing::warn!(%url, %detail, "auth webhook failed");
                Refusal::new(Code::AuthUnavailable, detail)
            };
            let mut response = post
                .send()
                .await
                .map_err(|e| unavailable(format!("request failed: {e}")))?;
            let status = response.status().as_u16();
            let mut answer = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| unavailable(format!("reading the answer failed: {e}")))?
            {
                if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(unavailable(format!("answer over {MAX_ANSWER_BYTES} bytes")));
                }
                answer.extend_from_slice(&chunk);
            }
            match status {
                200 => accepted(&answer).map_err(unavailable),
                401 | 403 => Err(Refusal {
                    code: Code::Rejected,
                    message: refusal_message(&answer),
                    detail: format!("the webhook answered {status}"),
                }),
                other => Err(unavailable(format!("answered {other}"))),
            }
        })
    }
}

/// Reads a 200 answer: an empty body or a JSON object with optional `user`, `rooms`,
/// `data`.
fn accepted(answer: &[u8]) -> Result<super::Grant, String> {
    if answer.iter().all(u8::is_ascii_whitespace) {
        return Ok(super::Grant::default());
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(answer) else {
        return Err("a 200 answer that is not a JSON object".into());
    };
    let user = match fields.remove("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user),
        Some(_) => return Err("`user` is not a string".into()),
    };
    let rooms = match fields.remove("rooms") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            serde_json::from_value::<Vec<String>>(value)
                .map_err(|_| "`rooms` is not an array of strings".to_string())?,
        ),
    };
    grant(user, rooms, fields.remove("data"))
}

/// The `message` of a 401/403 answer, when it has one.
fn refusal_message(answer: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(answer).ok()?;
    let message = value.get("message")?.as_str()?;
    (!message.is_empty()).then(|| message.chars().take(MAX_MESSAGE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let grant =
            accepted(br#"{"user": "u1", "rooms": ["a"], "data": {"plan": "pro"}}"#).unwrap();
        assert_eq!(grant.user.as_deref(), Some("u1"));
        assert_eq!(grant.rooms, ["a"]);
        assert_eq!(grant.data, Some(json!({"plan": "pro"})));
        assert_eq!(accepted(b"").unwrap(), super::super::Grant::default());
        assert!(accepted(b"[1]").is_err());
        assert!(accepted(br#"{"user": 1}"#).is_err());
        assert!(accepted(br#"{"rooms": "a"}"#).is_err());
        assert!(accepted(br#"{"data": [1]}"#).is_err());
        assert_eq!(
            refusal_message(br#"{"message": "banned"}"#).as_deref(),
            Some("banned")
        );
        assert_eq!(refusal_message(b"nope"), None);
        assert_eq!(refusal_message(br#"{"message": ""}"#), None);
    }
}
