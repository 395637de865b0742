//! Pushing events through the in-process relay's adapter (the library call the admin API
//! makes), reading its metrics, and a [`Witness`] that checks the relay still delivers.
//!
//! Arguments are written as in the admin API and the client drivers: JSON, with
//! `{"$binary": "<base64>"}` for binary parts.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sio_relay::adapter::{EmitOutcome, EmitRequest, Target};
use sio_relay::socketio::packet::Args;

use super::admin::metric_value;
use super::clients::binary;
use super::raw::{RawPolling, RawWs};
use super::{TIMEOUT, TestRelay};

/// Socket.IO arguments from a JSON array: `{"$binary": …}` parts become attachments.
pub fn to_args(values: &Value) -> Args {
    let values = values.as_array().expect("arguments are a JSON array");
    let mut attachments = Vec::new();
    let values = values
        .iter()
        .map(|v| with_placeholders(v, &mut attachments))
        .collect();
    Args {
        values,
        attachments,
    }
}

fn with_placeholders(value: &Value, attachments: &mut Vec<Bytes>) -> Value {
    match value {
        Value::Object(map)
            if map.len() == 1 && map.get("$binary").is_some_and(Value::is_string) =>
        {
            let bytes = STANDARD
                .decode(map["$binary"].as_str().unwrap())
                .expect("invalid base64 in a test argument");
            attachments.push(Bytes::from(bytes));
            json!({"_placeholder": true, "num": attachments.len() - 1})
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_placeholders(v, attachments)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| with_placeholders(v, attachments))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The reverse of [`to_args`]: a JSON array with attachments written `{"$binary": …}`.
pub fn from_args(args: &Args) -> Value {
    Value::Array(
        args.values
            .iter()
            .map(|v| without_placeholders(v, &args.attachments))
            .collect(),
    )
}

fn without_placeholders(value: &Value, attachments: &[Bytes]) -> Value {
    match value {
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            let num = map["num"].as_u64().expect("placeholder without num") as usize;
            binary(
                attachments
                    .get(num)
                    .expect("placeholder without attachment"),
            )
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_placeholders(v, attachments)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| without_placeholders(v, attachments))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl TestRelay {
    /// Emits `event` with `args` (a JSON array) to the rooms or sids `to` of `ns`.
    pub async fn push(&self, ns: &str, to: &[&str], event: &str, args: Value) -> EmitOutcome {
        self.emit_request(ns, to, event, args, None).await
    }

    /// Like [`push`](Self::push), then waits up to `timeout` for every recipient's ack.
    pub async fn push_with_ack(
        &self,
        ns: &str,
        to: &[&str],
        event: &str,
        args: Value,
        timeout: Duration,
    ) -> EmitOutcome {
        self.emit_request(ns, to, event, args, Some(timeout)).await
    }

    async fn emit_request(
        &self,
        ns: &str,
        to: &[&str],
        event: &str,
        args: Value,
        ack_timeout: Option<Duration>,
    ) -> EmitOutcome {
        let request = EmitRequest {
            target: Target {
                namespace: ns.to_string(),
                to: to.iter().map(|s| s.to_string()).collect(),
                except: Vec::new(),
            },
            event: event.to_string(),
            args: to_args(&args),
            ack_timeout,
        };
        let bound = ack_timeout.unwrap_or_default() + TIMEOUT;
        tokio::time::timeout(bound, self.inner().adapter.emit(request))
            .await
            .expect("emit did not return in time")
            .expect("emit failed")
    }

    /// One sample of the relay's metrics, as exposed (`name{labels}`); 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.inner().metrics.render(), series).unwrap_or(0.0)
    }
}

/// Two bystanders on the relay, one per transport, each joined to `/`: after a test
/// feeds bad input to some other session, [`check`](Self::check) proves that both still
/// receive what is pushed to them.
pub struct Witness {
    ws: RawWs,
    ws_sid: String,
    polling: RawPolling,
    polling_sid: String,
    checks: u64,
}

impl Witness {
    /// Opens both sessions on `relay` (default path).
    pub async fn join(relay: &TestRelay) -> Witness {
        let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
        let ws_sid = sid_of(&ws.connect_ns("/").await);
        let polling = RawPolling::handshake(relay.socketio_addr).await;
        let polling_sid = sid_of(&polling.connect_ns("/").await);
        Witness {
            ws,
            ws_sid,
            polling,
            polling_sid,
            checks: 0,
        }
    }

    /// Pushes one event to each bystander and waits until both have it; `context` names
    /// what came before, for the failure message.
    pub async fn check(&mut self, relay: &TestRelay, context: &str) {
        self.checks += 1;
        let expected = format!("42[\"witness\",{}]", self.checks);
        for sid in [&self.ws_sid, &self.polling_sid] {
            let outcome = relay
                .push("/", &[sid], "witness", json!([self.checks]))
                .await;
            assert_eq!(outcome.recipients, 1, "witness {sid} gone after {context}");
        }
        let got = self.ws.recv_until(|p| p == expected, TIMEOUT).await;
        assert!(
            got.is_some(),
            "WebSocket witness did not get {expected} after {context}"
        );
        let got = self.polling.recv_until(|p| p == expected, TIMEOUT).await;
        assert!(
            got.is_some(),
            "polling witness did not get {expected} after {context}"
        );
    }
}

/// The `sid` of a CONNECT answer.
pub fn sid_of(connect: &Value) -> String {
    connect["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("CONNECT answer without sid: {connect}"))
        .to_string()
}
