//! One signed POST to the hook and its answer, read within a size limit.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::signing::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, now_seconds, signature};

/// How a request ended.
#[derive(Debug)]
pub(super) enum Posted {
    /// A 2xx answer and its body.
    Answered(Bytes),
    /// A non-2xx status.
    Status(reqwest::StatusCode),
    /// No complete answer within the timeout.
    Timeout,
    /// The hook could not be reached, or the connection failed.
    Unreachable(String),
    /// A 2xx answer whose body is over the limit.
    TooLarge(u64),
}

impl std::fmt::Display for Posted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Posted::Answered(body) => write!(f, "answered ({} bytes)", body.len()),
            Posted::Status(status) => write!(f, "answered {status}"),
            Posted::Timeout => f.write_str("no answer within hooks.timeout_ms"),
            Posted::Unreachable(error) => write!(f, "unreachable: {error}"),
            Posted::TooLarge(limit) => write!(
                f,
                "the answer is larger than {limit} bytes (admin.max_body_bytes)"
            ),
        }
    }
}

impl Posted {
    /// The `outcome` label of `sio_relay_hook_requests_total`, for the non-2xx endings.
    pub(super) fn failure_label(&self) -> &'static str {
        match self {
            Posted::Answered(_) => "ok",
            Posted::Status(_) => "http_error",
            Posted::Timeout => "timeout",
            Posted::Unreachable(_) => "unreachable",
            Posted::TooLarge(_) => "bad_answer",
        }
    }

    /// Whether sending the same request again may succeed: no answer, a server error,
    /// `408 Request Timeout` or `429 Too Many Requests`. Other 4xx are the backend's final
    /// word.
    pub(super) fn retryable(&self) -> bool {
        match self {
            Posted::Timeout | Posted::Unreachable(_) => true,
            Posted::Status(status) => {
                status.is_server_error()
                    || *status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            Posted::Answered(_) | Posted::TooLarge(_) => false,
        }
    }
}

/// What one request needs.
pub(super) struct Post<'a> {
    pub(super) url: &'a str,
    pub(super) secret: &'a [u8],
    pub(super) timeout: Duration,
    pub(super) max_answer_bytes: u64,
    pub(super) delivery: &'a str,
    pub(super) body: Bytes,
}

/// Sends the request; the timeout covers the whole exchange, answer body included.
pub(super) async fn post(http: &reqwest::Client, post: Post<'_>) -> Posted {
    match tokio::time::timeout(post.timeout, exchange(http, &post)).await {
        Ok(posted) => posted,
        Err(_) => Posted::Timeout,
    }
}

async fn exchange(http: &reqwest::Client, post: &Post<'_>) -> Posted {
    let timestamp = now_seconds();
    let request = http
        .post(post.url)
        .header(CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, timestamp)
        .header(DELIVERY_HEADER, post.delivery)
        .header(
            SIGNATURE_HEADER,
            signature(post.secret, timestamp, &post.body),
        )
        .body(post.body.clone());
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) if error.is_timeout() => return Posted::Timeout,
        Err(error) => return Posted::Unreachable(without_url(error).to_string()),
    };
    let status = response.status();
    if !status.is_success() {
        return Posted::Status(status);
    }
    let limit = post.max_answer_bytes;
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Posted::TooLarge(limit);
    }
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Posted::TooLarge(limit);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Posted::Answered(body.freeze()),
            Err(error) if error.is_timeout() => return Posted::Timeout,
            Err(error) => return Posted::Unreachable(without_url(error).to_string()),
        }
    }
}

/// The error without the URL, which may carry a token in its query.
fn without_url(error: reqwest::Error) -> reqwest::Error {
    error.without_url()
}
