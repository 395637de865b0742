//! The API reference, served as `GET /v1/openapi.json`.
//!
//! `docs/openapi.yaml` (OpenAPI 3.1) is the one source: it is compiled into the binary and
//! converted to JSON once, on first use. The served copy describes the relay as it runs:
//! its version, the live `admin.max_ack_timeout_ms` as the maximum of `ack_timeout_ms`,
//! and no security requirement when `admin.tokens` is empty, so clients and fuzzers that
//! read it see the rules in force.

use std::sync::{Arc, LazyLock};

use axum::{Extension, Json};
use serde_json::Value;

use super::LiveConfig;

/// The reference as written in `docs/openapi.yaml`.
const SOURCE: &str = include_str!("../../docs/openapi.yaml");

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    serde_norway::from_str(SOURCE).expect("docs/openapi.yaml is valid YAML (checked by tests)")
});

/// Where the maximum of `ack_timeout_ms` sits in the document.
const ACK_TIMEOUT_MAXIMUM: &str = "/components/schemas/AckTimeout/maximum";

/// The document as JSON, as it applies now: the relay's version, the `ack_timeout_ms`
/// limit of `live`, and no security requirement when no token is configured.
pub fn document(live: &LiveConfig) -> Value {
    let mut document = DOCUMENT.clone();
    if let Some(version) = document.pointer_mut("/info/version") {
        *version = Value::from(env!("CARGO_PKG_VERSION"));
    }
    if let Some(maximum) = document.pointer_mut(ACK_TIMEOUT_MAXIMUM) {
        *maximum = Value::from(live.max_ack_timeout_ms);
    }
    if !live.tokens.required() {
        document["security"] = Value::Array(Vec::new());
    }
    document
}

/// `GET /v1/openapi.json`.
pub async fn serve(Extension(live): Extension<Arc<LiveConfig>>) -> Json<Value> {
    Json(document(&live))
}
