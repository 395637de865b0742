//! `Idempotency-Key` on `POST /v1/emit`: a repeat of a key within
//! `admin.idempotency_window_ms` sends nothing and gets the first answer, byte for byte.
//!
//! The body is validated before the key is claimed, so a refused request uses no key. A
//! repeat that arrives while the first is still sending waits for its answer (bounded);
//! an emit that fails releases the key, so the backend can retry with it.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::AdminState;
use super::error::ApiError;
use crate::adapter::idempotency::Claim;

/// The header.
pub const HEADER: &str = "idempotency-key";
/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;
/// How often a repeat looks whether the first request has answered.
const POLL: Duration = Duration::from_millis(20);

/// The request's key, if it has one; `invalid_field` for an unusable one.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::field(
            "give one `Idempotency-Key` header, not several",
        ));
    }
    match value.to_str() {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_KEY_LEN
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::field(format!(
            "`Idempotency-Key` must be 1 to {MAX_KEY_LEN} printable ASCII characters without spaces"
        ))),
    }
}

/// A JSON answer from its bytes, as `Json` makes it.
pub fn json(body: Bytes) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// Runs `emit` (which answers with the JSON bytes of a 200) unless `key` was used within
/// `window`, in which case the first answer is given again. A repeat waits at most `wait`
/// for a first request still in flight (`idempotency_pending` after that).
pub async fn once(
    state: &AdminState,
    key: Option<String>,
    window: Duration,
    wait: Duration,
    emit: impl Future<Output = Result<Bytes, ApiError>>,
) -> Result<Response, ApiError> {
    let Some(key) = key else {
        return emit.await.map(json);
    };
    let adapter = state.adapter();
    let started = Instant::now();
    loop {
        match adapter.claim_idempotency(&key, window).await? {
            Claim::First => break,
            Claim::Repeat(answer) => {
                state.metrics().idempotent_repeats.inc();
                return Ok(json(answer));
            }
            Claim::Pending if started.elapsed() < wait => tokio::time::sleep(POLL).await,
            Claim::Pending => return Err(ApiError::IdempotencyPending),
        }
    }
    let result = emit.await;
    let answer = result.as_ref().ok().cloned();
    adapter.finish_idempotency(&key, answer, window).await;
    result.map(json)
}
