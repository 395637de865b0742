//! Client authentication (`[auth]`): decides, on every namespace CONNECT, whether a client
//! may join and who it is (user, rooms, data).
//!
//! The Socket.IO layer keeps, per Engine.IO session, the little of the opening request
//! that a check may need ([`Handshake`]), and asks [`Auth::check`] on each CONNECT. A check
//! is either answered at once ([`Check::Ready`]: a JWT against a secret, a PEM key or a
//! cached JWKS key) or needs I/O ([`Check::Pending`]: a webhook call, a key-set fetch),
//! which the caller runs without blocking anyone else. Every outcome is counted in
//! `sio_relay_auth_total{outcome}`. Any error while checking refuses the client.
//!
//! This module knows nothing of sockets or sessions; it maps a request to a [`Grant`] or
//! a [`Refusal`].

mod handshake;
mod jwks;
mod jwt;
mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use prometheus::IntCounter;
use serde_json::Value;

pub use self::handshake::Handshake;
use crate::config::{AuthConfig, AuthMode};
use crate::metrics::Metrics;

/// The most bytes of a token looked at; a longer one is refused (`token_invalid`) before
/// any parsing. Real tokens, `data` claim included, stay far below.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The largest `data` a client may be given, serialized.
pub const MAX_DATA_BYTES: usize = 4096;

/// The most rooms a token or webhook may make a socket join on connect.
pub const MAX_ROOMS: usize = 100;

/// Why a client was refused: the `code` of its CONNECT_ERROR, and the `outcome` label of
/// `sio_relay_auth_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No token anywhere the relay looks.
    TokenMissing,
    /// The token is malformed, badly signed, too large, or its claims are wrong.
    TokenInvalid,
    /// The token's `exp` has passed (beyond the leeway).
    TokenExpired,
    /// The token's `namespaces` claim does not allow this namespace.
    NamespaceForbidden,
    /// The webhook refused the client (401/403).
    Rejected,
    /// The check could not be made: the webhook or key set failed or did not answer.
    AuthUnavailable,
}

impl Code {
    /// Every code, in label order.
    pub const ALL: [Code; 6] = [
        Code::TokenMissing,
        Code::TokenInvalid,
        Code::TokenExpired,
        Code::NamespaceForbidden,
        Code::Rejected,
        Code::AuthUnavailable,
    ];

    /// The wire code and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::TokenMissing => "token_missing",
            Code::TokenInvalid => "token_invalid",
            Code::TokenExpired => "token_expired",
            Code::NamespaceForbidden => "namespace_forbidden",
            Code::Rejected => "rejected",
            Code::AuthUnavailable => "auth_unavailable",
        }
    }
}

/// A refused connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub code: Code,
    /// The message the client sees instead of `"unauthorized"` (a webhook's own).
    pub message: Option<String>,
    /// Detail for the relay's debug log; never sent to the client.
    pub detail: String,
}

impl Refusal {
    pub(crate) fn new(code: Code, detail: impl Into<String>) -> Self {
        Refusal {
            code,
            message: None,
            detail: detail.into(),
        }
    }

    /// The CONNECT_ERROR payload: `{"message", "data": {"code"}}`.
    pub fn payload(&self) -> Value {
        serde_json::json!({
            "message": self.message.as_deref().unwrap_or("unauthorized"),
            "data": {"code": self.code.as_str()},
        })
    }
}

/// An accepted connect: who the client is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grant {
    /// The user (a token's `sub`, the webhook's `user`).
    pub user: Option<String>,
    /// Rooms the socket joins on connect.
    pub rooms: Vec<String>,
    /// Data shown in listings (a JSON object).
    pub data: Option<Value>,
}

/// A check's result.
pub type Outcome = Result<Grant, Refusal>;

/// A check that needs I/O.
pub type PendingCheck = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What [`Auth::check`] answers.
pub enum Check {
    /// Decided at once.
    Ready(Outcome),
    /// Decided once this completes (bounded by `auth.timeout_ms`).
    Pending(PendingCheck),
}

/// One CONNECT to check.
pub struct Request<'a> {
    /// The namespace asked for.
    pub namespace: &'a str,
    /// The CONNECT packet's `auth` payload (`Null` when absent).
    pub auth: &'a Value,
    /// What was kept of the session's opening request.
    pub handshake: &'a Handshake,
    /// The client's address.
    pub address: SocketAddr,
}

/// The configured check.
enum Mode {
    Jwt(jwt::JwtCheck),
    Webhook(webhook::Webhook),
}

/// The authenticator: `None` mode is no authenticator at all (see [`Auth::new`]).
pub struct Auth {
    mode: Mode,
    user_room_prefix: String,
    forward_headers: Vec<String>,
    /// Bound on a pending check, waiting for a fetch another connect started included.
    timeout: std::time::Duration,
    counters: Arc<Counters>,
}

/// `sio_relay_auth_total{outcome}` handles.
struct Counters {
    accepted: IntCounter,
    refused: [IntCounter; 6],
}

impl Counters {
    fn record(&self, outcome: &Outcome) {
        match outcome {
            Ok(_) => self.accepted.inc(),
            Err(refusal) => self.refused[refusal.code as usize].inc(),
        }
    }
}

/// Why authentication could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SetupError {
    /// The config key at fault.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl Auth {
    /// The authenticator `config` asks for; `None` for mode `none`. Reads the PEM key file
    /// now, so a bad one stops the start.
    pub fn new(config: &AuthConfig, metrics: &Metrics) -> Result<Option<Arc<Auth>>, SetupError> {
        let client = || {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_millis(config.timeout_ms))
                .build()
                .map_err(|e| SetupError {
                    key: "auth.timeout_ms",
                    reason: format!("cannot build the HTTP client: {e}"),
                })
        };
        let mode = match config.mode {
            AuthMode::None => return Ok(None),
            AuthMode::Jwt => Mode::Jwt(jwt::JwtCheck::new(config, client)?),
            AuthMode::Webhook => Mode::Webhook(webhook::Webhook::new(config, client()?)),
        };
        let outcome = |label: &str| metrics.auth.with_label_values(&[label]);
        let counters = Counters {
            accepted: outcome("accepted"),
            refused: Code::ALL.map(|code| outcome(code.as_str())),
        };
        Ok(Some(Arc::new(Auth {
            mode,
            user_room_prefix: config.user_room_prefix.clone(),
            forward_headers: config
                .forward_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            timeout: std::time::Duration::from_millis(config.timeout_ms),
            counters: Arc::new(counters),
        })))
    }

    /// Keeps what checks need of a session's opening request: the bearer token and the
    /// `token` query parameter for JWTs; for the webhook also the query and the forwarded
    /// headers.
    pub fn keep(&self, opening: &crate::engine::Handshake<'_>) -> Handshake {
        match self.mode {
            Mode::Jwt(_) => Handshake::for_token(opening),
            Mode::Webhook(_) => Handshake::for_webhook(opening, &self.forward_headers),
        }
    }

    /// Checks one CONNECT; the outcome is counted when it is known.
    pub fn check(&self, request: &Request<'_>) -> Check {
        let check = match &self.mode {
            Mode::Jwt(jwt) => match request.handshake.token(request.auth) {
                Err(refusal) => Check::Ready(Err(refusal)),
                Ok(token) => jwt.check(token, request.namespace),
            },
            Mode::Webhook(webhook) => Check::Pending(webhook.check(request)),
        };
        match check {
            Check::Ready(outcome) => {
                self.counters.record(&outcome);
                Check::Ready(outcome)
            }
            Check::Pending(pending) => {
                let counters = self.counters.clone();
                let timeout = self.timeout;
                Check::Pending(Box::pin(async move {
                    let outcome =
                        tokio::time::timeout(timeout, pending)
                            .await
                            .unwrap_or_else(|_| {
                                Err(Refusal::new(Code::AuthUnavailable, "no answer in time"))
                            });
                    counters.record(&outcome);
                    outcome
                }))
            }
        }
    }

    /// The room of `user`'s sockets.
    pub fn user_room(&self, user: &str) -> String {
        format!("{}{user}", self.user_room_prefix)
    }
}

/// Checks the rooms and data a token or webhook grants; the reason when they are wrong.
pub(crate) fn grant(
    user: Option<String>,
    rooms: Option<Vec<String>>,
    data: Option<Value>,
) -> Result<Grant, String> {
    if user.as_deref() == Some("") {
        return Err("the user is an empty string".into());
    }
    let rooms = rooms.unwrap_or_default();
    if rooms.len() > MAX_ROOMS {
        return Err(format!("more than {MAX_ROOMS} rooms"));
    }
    if rooms.iter().any(String::is_empty) {
        return Err("an empty room name".into());
    }
    let data = match data {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            let size = serde_json::to_vec(&map)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > MAX_DATA_BYTES {
                return Err(format!("data of {size} bytes, over {MAX_DATA_BYTES}"));
            }
            Some(Value::Object(map))
        }
        Some(_) => return Err("data is not a JSON object".into()),
    };
    Ok(Grant { user, rooms, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusal_payload_has_message_and_code() {
        let mut refusal = Refusal::new(Code::TokenExpired, "exp passed");
        assert_eq!(
            refusal.payload(),
            json!({"message": "unauthorized", "data": {"code": "token_expired"}})
        );
        refusal.message = Some("banned".into());
        assert_eq!(refusal.payload()["message"], "banned");
    }

    #[test]
    fn grants_are_bounded() {
        assert!(
            grant(
                Some("u".into()),
                Some(vec!["a".into()]),
                Some(json!({"k": 1}))
            )
            .is_ok()
        );
        assert!(grant(Some(String::new()), None, None).is_err());
        assert!(grant(None, Some(vec![String::new()]), None).is_err());
        assert!(grant(None, Some(vec!["r".into(); MAX_ROOMS + 1]), None).is_err());
        assert!(grant(None, None, Some(json!([1]))).is_err());
        let big = "x".repeat(MAX_DATA_BYTES);
        assert!(grant(None, None, Some(json!({ "k": big }))).is_err());
        assert_eq!(grant(None, None, Some(Value::Null)).unwrap().data, None);
    }
}
