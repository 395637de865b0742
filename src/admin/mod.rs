//! The admin HTTP API: how backends push events to clients and inspect who is connected.
//!
//! [`router`] is the whole admin listener: `/v1/` calls (emit, join, leave, disconnect,
//! sockets, rooms, live stats, the OpenAPI document), the operations endpoints
//! `/healthz`, `/readyz` and `/metrics`, and the web page `/ui` (which holds no data and
//! reads everything through `/v1/` calls); only `/v1/` needs a token. The reference is
//! `docs/openapi.yaml`.
//!
//! Every request passes one edge middleware first. It checks the bearer token of every
//! `/v1/` path, routed or not, so routes cannot be probed without a token; it makes sure
//! any error leaves as the JSON envelope; and it counts the request under its route
//! template (or `other`), never its raw path. Handlers read their body through
//! `body::read_json` and validate all of it before calling the [`Adapter`], so a refused
//! request changes nothing. Statuses are chosen in [`error`] only.
//!
//! Settings that may change while serving (tokens, body limit, longest ack wait) sit in a
//! [`LiveConfig`] that [`AdminState::reload`] swaps; each request reads it once.

pub mod audit;
mod auth;
pub mod binary;
mod body;
mod direct;
pub mod emit;
pub mod error;
mod idempotency;
mod openapi;
mod rooms;
pub mod scope;
mod selector;
mod sockets;
mod stats;
#[cfg(test)]
mod tests;
mod ui;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::adapter::{Adapter, Applied};
use crate::config::AdminConfig;
use crate::metrics::Metrics;
use audit::Access;
use auth::Tokens;
pub use direct::AdminListener;
use error::{ApiError, ErrorDetail};

/// Every route the admin listener serves; the metrics label for any other path is `other`.
pub const ROUTES: [&str; 15] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/emit",
    "/v1/join",
    "/v1/leave",
    "/v1/disconnect",
    "/v1/sockets",
    "/v1/rooms",
    "/v1/openapi.json",
    "/v1/stats",
    "/v1/stats/stream",
    "/ui",
    "/ui/app.js",
    "/ui/app.css",
];

/// The admin settings that change without a restart (SIGHUP).
#[derive(Debug)]
pub struct LiveConfig {
    tokens: Tokens,
    /// `admin.max_body_bytes`.
    pub max_body_bytes: u64,
    /// `admin.max_ack_timeout_ms`.
    pub max_ack_timeout_ms: u64,
    /// `admin.idempotency_window_ms`.
    pub idempotency_window_ms: u64,
}

impl LiveConfig {
    fn new(config: &AdminConfig) -> Self {
        Self {
            tokens: Tokens::new(&config.tokens, &config.keys),
            max_body_bytes: config.max_body_bytes,
            max_ack_timeout_ms: config.max_ack_timeout_ms,
            idempotency_window_ms: config.idempotency_window_ms,
        }
    }
}

/// What the admin handlers share: the adapter, the metrics, the live settings and whether
/// the relay's listeners are up. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    adapter: Arc<Adapter>,
    metrics: Metrics,
    /// Swapped whole on reload; requests clone the `Arc` out and drop the guard at once,
    /// so no lock is held across an await and reloads never wait on a request.
    live: RwLock<Arc<LiveConfig>>,
    listening: AtomicBool,
    /// `auth.user_room_prefix`: the selector's `user` field names these rooms.
    user_room_prefix: String,
    /// Cancelled when shutdown begins: ends the stats streams, which would otherwise hold
    /// the listener's graceful shutdown open.
    closing: CancellationToken,
}

impl AdminState {
    /// State for an admin listener in front of `adapter`. `/readyz` answers 503 until
    /// [`set_listening(true)`](Self::set_listening).
    pub fn new(adapter: Arc<Adapter>, metrics: Metrics, config: &AdminConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                adapter,
                metrics,
                live: RwLock::new(Arc::new(LiveConfig::new(config))),
                listening: AtomicBool::new(false),
                user_room_prefix: crate::config::AuthConfig::default().user_room_prefix,
                closing: CancellationToken::new(),
            }),
        }
    }

    /// Sets the prefix of user rooms (`auth.user_room_prefix`). Call before serving.
    pub fn with_user_room_prefix(mut self, prefix: &str) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("set before the state is shared")
            .user_room_prefix = prefix.to_owned();
        self
    }

    /// The prefix of user rooms.
    fn user_rooms(&self) -> &str {
        &self.inner.user_room_prefix
    }

    /// Applies a reloaded `[admin]` section: tokens, `max_body_bytes` and
    /// `max_ack_timeout_ms` take effect for the next request (`listen` needs a restart and
    /// is ignored here). Requests in flight finish under the settings they started with.
    pub fn reload(&self, config: &AdminConfig) {
        let live = Arc::new(LiveConfig::new(config));
        *self
            .inner
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner) = live;
    }

    /// Tells `/readyz` whether every listener accepts connections: set it once they are
    /// bound, clear it when shutdown begins.
    pub fn set_listening(&self, up: bool) {
        self.inner.listening.store(up, Ordering::Release);
    }

    /// Ends every open `/v1/stats/stream` (call it when shutdown begins).
    pub fn close_streams(&self) {
        self.inner.closing.cancel();
    }

    fn closing(&self) -> CancellationToken {
        self.inner.closing.clone()
    }

    /// Whether `/readyz` would answer 200.
    fn is_ready(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire) && self.adapter().readiness().is_ok()
    }

    /// The settings in force now.
    pub fn live(&self) -> Arc<LiveConfig> {
        self.inner
            .live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn adapter(&self) -> &Adapter {
        &self.inner.adapter
    }

    fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// The admin listener's whole app: every route, the token check, error envelopes, metrics.
pub fn router(state: AdminState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/emit", post(emit::emit))
        .route("/v1/join", post(rooms::join))
        .route("/v1/leave", post(rooms::leave))
        .route("/v1/disconnect", post(sockets::disconnect))
        .route("/v1/sockets", get(sockets::list))
        .route("/v1/rooms", get(rooms::list))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/stats", get(stats::snapshot))
        .route("/v1/stats/stream", get(stats::stream))
        .route("/ui", get(ui::page))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::style))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state.clone());
    // The edge wraps the routes whole, so it runs before routing: a layer on the routes
    // would run inside each route, whose `Allow` header would then mark a 401 for a wrong
    // method as a route that exists.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn_with_state(state, edge))
}

/// The answer of join, leave and disconnect.
#[derive(Debug, Serialize)]
pub struct Count {
    sockets: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

impl From<Applied> for Count {
    fn from(applied: Applied) -> Self {
        Self {
            sockets: applied.sockets,
            partial: applied.partial,
        }
    }
}

/// Token check, error envelope and metrics around every request.
async fn edge(State(state): State<AdminState>, mut request: Request, next: Next) -> Response {
    let call = Call::new(request.method(), request.uri().path());
    let live = state.live();
    let caller = live.tokens.caller(request.headers());
    let (response, access) = match caller {
        None if call.needs_token => (ApiError::Unauthorized.into_response(), None),
        _ => {
            let access = caller.map(Access::new);
            if let Some(access) = &access {
                request.extensions_mut().insert(access.clone());
            }
            request.extensions_mut().insert(live);
            (enveloped(next.run(request).await), access)
        }
    };
    let detail = response.extensions().get().map(|ErrorDetail(d)| d.as_str());
    call.record(&state, response.status(), access.as_ref(), detail);
    response
}

/// One admin request from its arrival to its record: what the audit line, the request log
/// and the metrics say of it.
struct Call {
    started: Instant,
    method: Method,
    /// The route template, or `other`.
    route: &'static str,
    /// A `/v1/` path.
    needs_token: bool,
    /// A call that changes something: its audit line is written whatever its outcome.
    mutating: bool,
}

impl Call {
    fn new(method: &Method, path: &str) -> Self {
        let route = ROUTES
            .iter()
            .copied()
            .find(|r| *r == path)
            .unwrap_or("other");
        Call {
            started: Instant::now(),
            method: method.clone(),
            route,
            needs_token: path == "/v1" || path.starts_with("/v1/"),
            mutating: method == Method::POST
                && matches!(
                    route,
                    "/v1/emit" | "/v1/join" | "/v1/leave" | "/v1/disconnect"
                ),
        }
    }

    /// Records the answer: the audit line of a mutating or refused `/v1/` call, the request
    /// log line (with `detail`, the error's internal detail, if any), the metrics.
    fn record(
        &self,
        state: &AdminState,
        status: StatusCode,
        access: Option<&Access>,
        detail: Option<&str>,
    ) {
        let route = self.route;
        let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        if self.needs_token && (self.mutating || refused) {
            let outcome = if status.is_success() {
                "ok"
            } else if refused {
                "refused"
            } else {
                "failed"
            };
            let target = access.map_or_else(|| "-".into(), Access::described);
            let key = access.map(|a| &*a.caller.name);
            audit::log(
                key,
                self.method.as_str(),
                route,
                &target,
                status.as_u16(),
                outcome,
            );
        }
        if let Some(detail) = detail {
            tracing::warn!(route, status = status.as_u16(), %detail, "admin request failed");
        } else {
            tracing::debug!(route, status = status.as_u16(), "admin request");
        }
        let metrics = state.metrics();
        metrics
            .admin_requests
            .with_label_values(&[route, status.as_str()])
            .inc();
        metrics
            .admin_request_duration
            .with_label_values(&[route])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// Replaces an error response that is not already the JSON envelope (one produced by the
/// framework rather than a handler) with the envelope for its status, keeping its other
/// headers (`Allow` on a 405).
fn enveloped(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut replaced = ApiError::from_status(status).into_response();
    *replaced.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}

/// `GET /healthz`: the process serves.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the listeners and every backing service are up.
async fn readyz(State(state): State<AdminState>) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.inner.listening.load(Ordering::Acquire) {
        return Err(ApiError::NotReady("the listeners are not up".into()));
    }
    state.adapter().readiness().map_err(ApiError::NotReady)?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AdminState>) -> Response {
    (
        StatusCode::OK,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics().render(),
    )
        .into_response()
}
