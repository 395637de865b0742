//! The Engine.IO HTTP endpoint: request routing by query (`EIO`, `transport`, `sid`),
//! the standard error answers, CORS and the Origin check.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::admission::Refusal;
use super::packet::Version;
use super::{Admitted, Engine, EngineHandler, Protocol, polling, websocket};
use crate::config::{ServerConfig, Transport};

/// The Engine.IO endpoint at `settings.path` (with and without its trailing slash).
pub fn router<H: EngineHandler>(engine: Arc<Engine<H>>) -> Router {
    let path = engine.settings().path.clone();
    let trimmed = path.trim_end_matches('/').to_string();
    let mut router = Router::new().route(&path, any(handle::<H>));
    if !trimmed.is_empty() && trimmed != path {
        router = router.route(&trimmed, any(handle::<H>));
    }
    router.with_state(engine)
}

/// The errors of the Engine.IO protocol, with the reference server's codes and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EngineError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
}

impl EngineError {
    fn code_and_message(self) -> (u8, &'static str) {
        match self {
            EngineError::UnknownTransport => (0, "Transport unknown"),
            EngineError::UnknownSid => (1, "Session ID unknown"),
            EngineError::BadHandshakeMethod => (2, "Bad handshake method"),
            EngineError::BadRequest => (3, "Bad request"),
            EngineError::Forbidden => (4, "Forbidden"),
            EngineError::UnsupportedProtocolVersion => (5, "Unsupported protocol version"),
        }
    }

    pub(super) fn response(self, cors: &Cors) -> Response {
        let (code, message) = self.code_and_message();
        let status = if self == EngineError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        cors.apply(response.headers_mut());
        response
    }
}

/// The CORS answer for one request: the request's `Origin` when it is allowed.
pub(super) struct Cors {
    origin: Option<HeaderValue>,
}

impl Cors {
    /// The request's `Origin`, when it is allowed.
    pub(super) fn origin(&self) -> Option<&HeaderValue> {
        self.origin.as_ref()
    }

    pub(super) fn apply(&self, headers: &mut HeaderMap) {
        if let Some(origin) = &self.origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// Whether a browser `Origin` may connect: no header (not a browser) always may.
pub(super) fn origin_allowed(settings: &ServerConfig, origin: Option<&HeaderValue>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    settings
        .allowed_origins
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
}

/// The query parameters Engine.IO uses; others (cache busters) are ignored.
#[derive(Default)]
pub(super) struct EioQuery {
    pub eio: Option<String>,
    pub transport: Option<String>,
    pub sid: Option<String>,
    /// Engine.IO v3: the client cannot read binary polling payloads.
    pub b64: bool,
}

impl EioQuery {
    pub(super) fn parse(query: Option<&str>) -> Self {
        let mut parsed = EioQuery::default();
        for (key, value) in form_urlencoded(query.unwrap_or("")) {
            match key.as_str() {
                "EIO" => parsed.eio = Some(value),
                "transport" => parsed.transport = Some(value),
                "sid" => parsed.sid = Some(value),
                "b64" => parsed.b64 = !value.is_empty() && value != "0",
                _ => {}
            }
        }
        parsed
    }
}

/// Splits a query string into decoded pairs.
fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}

/// The answer to a handshake that `[limits]` refuse: 503, and the connection closed.
pub(super) fn refused(refusal: Refusal, cors: &Cors) -> Response {
    let body = serde_json::json!({ "code": 3, "message": "Service unavailable", "reason": refusal.as_str() })
        .to_string();
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::RETRY_AFTER, HeaderValue::from_static("1")),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ],
        body,
    )
        .into_response();
    cors.apply(response.headers_mut());
    response
}

/// The client's address: the peer's, or the one a trusted proxy forwarded.
pub(super) fn client_addr<H: EngineHandler>(
    engine: &Engine<H>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> SocketAddr {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(HeaderValue::as_bytes);
    engine.admission.client_addr(peer, forwarded)
}

async fn handle<H: EngineHandler>(
    State(engine): State<Arc<Engine<H>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let remote = client_addr(&engine, peer, request.headers());
    let settings = engine.settings();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let query = EioQuery::parse(request.uri().query());
    // The allowed origins (reloadable) decide who may open a session; a session keeps
    // being served from the origin it was opened from.
    if !origin_allowed(&settings, origin.as_ref())
        && !query
            .sid
            .as_deref()
            .and_then(|sid| engine.session(sid))
            .is_some_and(|session| session.opened_from(origin.as_ref()))
    {
        return EngineError::Forbidden.response(&Cors { origin: None });
    }
    let cors = Cors { origin };
    if request.method() == Method::OPTIONS {
        return preflight(&cors, request.headers());
    }
    let transport = match query.transport.as_deref() {
        Some("polling") => Transport::Polling,
        Some("websocket") => Transport::Websocket,
        _ => return EngineError::UnknownTransport.response(&cors),
    };
    if !settings.transports.contains(&transport) {
        return EngineError::UnknownTransport.response(&cors);
    }
    match (transport, query.sid.as_deref()) {
        (Transport::Websocket, sid) => {
            let sid = sid.map(str::to_owned);
            websocket::handle(engine, settings, remote, query, sid, request, cors).await
        }
        (Transport::Polling, None) => {
            if request.method() != Method::GET {
                return EngineError::BadHandshakeMethod.response(&cors);
            }
            let Some(version) = Version::from_query(query.eio.as_deref()) else {
                return EngineError::UnsupportedProtocolVersion.response(&cors);
            };
            match engine.admission.admit(remote.ip()) {
                Ok(permit) => {
                    let protocol = Protocol {
                        version,
                        polling_binary: !query.b64,
                    };
                    let opening =
                        super::Handshake::from_map(request.uri().query(), request.headers());
                    let admitted = Admitted {
                        remote,
                        permit,
                        protocol,
                        handshake: opening,
                    };
                    polling::handshake(&engine, &settings, admitted, &cors)
                }
                Err(refusal) => refused(refusal, &cors),
            }
        }
        (Transport::Polling, Some(sid)) => {
            let Some(session) = engine.session(sid) else {
                if request.method() == Method::GET && engine.owed_close.take(sid) {
                    // The session is gone; the client's EIO says how to frame the packet.
                    let version = Version::from_query(query.eio.as_deref()).unwrap_or(Version::V4);
                    return polling::close_packet(version, &cors);
                }
                return EngineError::UnknownSid.response(&cors);
            };
            match *request.method() {
                Method::GET => polling::get(&engine, session, &cors).await,
                Method::POST => polling::post(&engine, &settings, session, request, &cors).await,
                _ => EngineError::BadRequest.response(&cors),
            }
        }
    }
}

/// Answers a CORS preflight.
fn preflight(cors: &Cors, request_headers: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    cors.apply(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Some(requested) = request_headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}
