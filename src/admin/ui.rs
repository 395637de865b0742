//! The admin web page: `GET /ui`, with its script and style sheet.
//!
//! One page, compiled into the binary from `ui/` (HTML, vanilla JavaScript, CSS: no build
//! step, nothing fetched from elsewhere). The page holds no data, so it needs no token: it
//! reads everything through the token-checked `/v1/` calls (`/v1/stats/stream`,
//! `/v1/rooms`, `/v1/sockets`, `/v1/emit`), asking for a token when one is refused. It
//! keeps the token in the tab's `sessionStorage` and never displays it.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles from this
//! listener only, no inline script, connections to this listener only, no framing. The
//! page builds its tables with `textContent`, never HTML, so a room or event name cannot
//! inject markup.

use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_TYPE, content_type),
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "no-referrer"),
        // Small and compiled in: always fetched again, so an upgraded relay serves its
        // own page, never a cached one.
        (CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /ui`.
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /ui/app.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /ui/app.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
