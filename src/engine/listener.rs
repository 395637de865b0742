//! The Socket.IO listener: accepts connections, answers the upgrade of a new WebSocket
//! session itself, and hands every other connection to hyper and the engine's router.
//!
//! Opening a session over WebSocket (`GET {path}?EIO=4&transport=websocket`, no sid; or
//! `EIO=3`, whose session differs only once open) is the usual connection, and answered
//! here it takes one write: the `101 Switching Protocols` answer and the Engine.IO open
//! packet together; the request's query and headers are kept for the session's
//! [`Handshake`] (read by `[auth]`). Through hyper they are two
//! writes (hyper sends the 101, then the session its first frame), and on loopback a write
//! costs several microseconds of kernel time. The first request is only peeked at, so
//! whatever this fast path does not take (polling, an upgrade with a sid, anything wrong
//! or incomplete) reaches hyper untouched and gets the answers it always got.
//!
//! hyper serves the rest over HTTP/1.1, what Socket.IO clients speak, rather than through
//! `axum::serve`, which wraps each connection in a private type: an upgrade through the
//! router must hand back the plain `TcpStream` (see `websocket::split`).
//!
//! With TLS (`[tls]`), the handshake comes first and every request goes through hyper
//! (no peeking into encrypted bytes): WebSocket sessions then open through the router,
//! which applies the same checks and limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use axum::http::HeaderValue;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http::{self, EioQuery, origin_allowed};
use super::packet::Version;
use super::stream::{TlsStream, split_tcp};
use super::websocket::{self, Reader};
use super::{Admitted, Engine, EngineHandler, Handshake, Protocol};
use crate::config::{ServerConfig, Transport};
use tokio_rustls::TlsAcceptor;

/// Serves Socket.IO on `listener` until `stop`; then stops accepting, lets each
/// connection finish the request in progress, and ends once they are done.
pub fn serve<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    listener: TcpListener,
    stop: CancellationToken,
    tls: Option<TlsAcceptor>,
) -> JoinHandle<()> {
    let router = http::router(engine.clone());
    tokio::spawn(async move {
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, mostly: wait rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Without TCP_NODELAY small frames wait for delayed ACKs (up to 40 ms stalls).
            let _ = stream.set_nodelay(true);
            let engine = engine.clone();
            let router = router.clone();
            let stop = stop.clone();
            let tls = tls.clone();
            connections.spawn(async move {
                match tls {
                    None => {
                        if let Some(stream) = open_directly(&engine, stream, remote, &stop).await {
                            serve_http(stream, remote, router, stop).await;
                        }
                    }
                    Some(tls) => {
                        if let Some(stream) = handshake(&engine, &tls, stream, remote, &stop).await
                        {
                            serve_http(stream, remote, router, stop).await;
                        }
                    }
                }
            });
        }
        connections.close();
        connections.wait().await;
    })
}

/// The TLS handshake of a new connection, bounded by `server.connect_timeout_ms`; `None`
/// when it failed, timed out or `stop` came first.
async fn handshake<H: EngineHandler>(
    engine: &Engine<H>,
    tls: &TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
    stop: &CancellationToken,
) -> Option<TlsStream> {
    let limit = Duration::from_millis(engine.settings().connect_timeout_ms);
    let accepted = tokio::select! {
        _ = stop.cancelled() => return None,
        accepted = tokio::time::timeout(limit, tls.accept(stream)) => accepted,
    };
    match accepted {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake not done in time; closed");
            None
        }
    }
}

/// One HTTP/1.1 connection through the router, with upgrades.
async fn serve_http<S>(stream: S, remote: SocketAddr, router: Router, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The most headers a direct upgrade request may carry; more go to hyper.
const MAX_DIRECT_HEADERS: usize = 32;

/// The most bytes of a first request looked at for a direct upgrade.
const MAX_DIRECT_REQUEST: usize = 4096;

/// Opens a WebSocket session without hyper when the connection's first request asks for
/// one and passes every check hyper's path would make: `GET` on the engine's path with
/// `EIO=4` (or `3`) and `transport=websocket` and no sid, an upgrade to `websocket` with
/// version 13 and a key, an allowed `Origin`. The 101 answer and the open packet then go
/// out in one write.
/// Returns the connection untouched (nothing read from it) for hyper otherwise; `None`
/// when it was taken, or closed (or `stop` came) before the client sent anything. A
/// connection that sends nothing within `server.connect_timeout_ms` is closed.
async fn open_directly<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    mut stream: TcpStream,
    remote: SocketAddr,
    stop: &CancellationToken,
) -> Option<TcpStream> {
    let settings = engine.settings();
    // A connection that sends nothing would hold a task and a descriptor for ever.
    let quiet_limit = Duration::from_millis(settings.connect_timeout_ms);
    let mut first = vec![0; MAX_DIRECT_REQUEST];
    let peeked = tokio::select! {
        _ = stop.cancelled() => return None,
        peeked = tokio::time::timeout(quiet_limit, stream.peek(&mut first)) => peeked,
    };
    let peeked = match peeked {
        Ok(Ok(0) | Err(_)) => return None,
        Ok(Ok(peeked)) => peeked,
        Err(_) => {
            tracing::debug!(%remote, "connection sent no request in time; closed");
            return None;
        }
    };
    let Some(direct) = direct_upgrade(&first[..peeked], &settings) else {
        return Some(stream);
    };
    // The request is all in the socket's buffer: this read takes it at once.
    if stream
        .read_exact(&mut first[..direct.length])
        .await
        .is_err()
    {
        return None;
    }
    first.truncate(direct.length);
    let remote = engine
        .admission
        .client_addr(remote, direct.forwarded.as_deref());
    let permit = match engine.admission.admit(remote.ip()) {
        Ok(permit) => permit,
        Err(refusal) => {
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
                 content-length: 0\r\nx-sio-relay-refused: {}\r\n\r\n",
                refusal.as_str()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            return None;
        }
    };
    let accept = direct.accept;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-accept: {accept}\r\n\r\n"
    );
    let (read, write) = split_tcp(stream);
    let reader = Reader::new(read, settings.max_payload_bytes);
    // httparse gave the target as `&str`: these bytes are UTF-8.
    let query = std::str::from_utf8(&first[direct.query]).unwrap_or_default();
    let admitted = Admitted {
        remote,
        permit,
        protocol: Protocol {
            version: direct.version,
            polling_binary: true,
        },
        handshake: Handshake::from_raw(query, &first),
    };
    websocket::new_session(
        engine.clone(),
        settings.clone(),
        admitted,
        reader,
        write,
        answer.as_bytes(),
    )
    .await;
    None
}

/// A request [`open_directly`] takes.
#[derive(Debug)]
struct DirectUpgrade {
    /// The request's length in bytes.
    length: usize,
    /// The `Sec-WebSocket-Accept` value.
    accept: String,
    /// `X-Forwarded-For`, its values joined with `,`, if present.
    forwarded: Option<Vec<u8>>,
    /// Where the query string lies in the request's bytes.
    query: std::ops::Range<usize>,
    /// The Engine.IO version asked for.
    version: Version,
}

/// The request, when `bytes` hold a whole request that opens a WebSocket session and
/// passes the checks of [`open_directly`].
fn direct_upgrade(bytes: &[u8], settings: &ServerConfig) -> Option<DirectUpgrade> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_DIRECT_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(length) = request.parse(bytes).ok()? else {
        return None;
    };
    if request.method != Some("GET") || request.version != Some(1) {
        return None;
    }
    let target = request.path?;
    let (path, query) = target.split_once('?')?;
    // The target is a slice of `bytes`: its query's place there, for the session.
    let query_start = target.as_ptr() as usize - bytes.as_ptr() as usize + path.len() + 1;
    let query_range = query_start..query_start + query.len();
    if path != settings.path && path != settings.path.trim_end_matches('/') {
        return None;
    }
    let query = EioQuery::parse(Some(query));
    let version = Version::from_query(query.eio.as_deref())?;
    if query.transport.as_deref() != Some("websocket")
        || query.sid.is_some()
        || !settings.transports.contains(&Transport::Websocket)
    {
        return None;
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let has_token = |name: &str, token: &str| {
        header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("connection", "upgrade")
        || !has_token("upgrade", "websocket")
        || header("sec-websocket-version") != Some(b"13")
    {
        return None;
    }
    let key = header("sec-websocket-key")?;
    let origin = match header("origin") {
        Some(value) => Some(HeaderValue::from_bytes(value).ok()?),
        None => None,
    };
    if !origin_allowed(settings, origin.as_ref()) {
        return None;
    }
    let mut forwarded: Option<Vec<u8>> = None;
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("x-forwarded-for") {
            let joined = forwarded.get_or_insert_with(Vec::new);
            if !joined.is_empty() {
                joined.push(b',');
            }
            joined.extend_from_slice(h.value);
        }
    }
    Some(DirectUpgrade {
        length,
        accept: accept_key(key),
        forwarded,
        query: query_range,
        version,
    })
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 §4.2.2).
fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\
        Host: localhost:3000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    fn settings(origins: &[&str]) -> ServerConfig {
        ServerConfig {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..ServerConfig::default()
        }
    }

    #[test]
    fn a_plain_websocket_open_is_taken_with_the_rfc_accept_key() {
        let direct = direct_upgrade(REQUEST.as_bytes(), &settings(&["*"])).unwrap();
        assert_eq!(direct.length, REQUEST.len());
        assert_eq!(direct.version, Version::V4);
        let v3 = REQUEST.replace("EIO=4", "EIO=3");
        assert_eq!(
            direct_upgrade(v3.as_bytes(), &settings(&["*"])).map(|d| d.version),
            Some(Version::V3)
        );
        // RFC 6455 §1.3's example.
        assert_eq!(direct.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(direct.forwarded, None);
        let with_frame = format!("{REQUEST}\u{81}\u{2}40");
        assert_eq!(
            direct_upgrade(with_frame.as_bytes(), &settings(&["*"])).map(|d| d.length),
            Some(REQUEST.len())
        );
        let proxied = REQUEST.replace(
            "Host:",
            "X-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\nHost:",
        );
        let direct = direct_upgrade(proxied.as_bytes(), &settings(&["*"])).unwrap();
        assert_eq!(direct.forwarded.as_deref(), Some(&b"1.2.3.4,5.6.7.8"[..]));
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        let all = settings(&["*"]);
        let variants = [
            REQUEST.replace("EIO=4", "EIO=2"),
            REQUEST.replace("transport=websocket", "transport=polling"),
            REQUEST.replace("transport=websocket", "transport=websocket&sid=abc"),
            REQUEST.replace("/socket.io/", "/other/"),
            REQUEST.replace("GET", "POST"),
            REQUEST.replace("Version: 13", "Version: 8"),
            REQUEST.replace("Upgrade: websocket", "Upgrade: h2c"),
            REQUEST.replace("Connection: Upgrade", "Connection: keep-alive"),
            REQUEST.replace("Sec-WebSocket-Key", "X-Key"),
            REQUEST[..REQUEST.len() - 2].to_string(),
        ];
        for request in &variants {
            assert!(
                direct_upgrade(request.as_bytes(), &all).is_none(),
                "{request}"
            );
        }
        let from_browser = REQUEST.replace("Host:", "Origin: https://evil.example\r\nHost:");
        let only_ours = settings(&["https://app.example"]);
        assert!(direct_upgrade(from_browser.as_bytes(), &only_ours).is_none());
        assert!(direct_upgrade(from_browser.as_bytes(), &all).is_some());
    }
}
