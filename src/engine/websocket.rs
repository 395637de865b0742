//! The WebSocket transport: new sessions over WebSocket, and the upgrade of a polling
//! session (probe, noop to the pending poll, upgrade packet).
//!
//! fastwebsockets does the HTTP upgrade. After it the connection is taken back from hyper
//! as the plain `TcpStream` and split: frames are read by our own
//! [`FrameReader`](super::ws_read::FrameReader), which holds no buffer while the client is
//! idle, and written through [`WsOut`](super::ws_write::WsOut), which lets producers write
//! to the socket directly. One task per session reads and writes what was queued; it stops
//! when the session closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use fastwebsockets::WebSocket;
use fastwebsockets::upgrade::IncomingUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use axum::http::HeaderValue;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::http::{Cors, EioQuery, EngineError, origin_allowed};
use super::packet::{Packet, decode_text};
use super::ws_read::{FrameReader, Message, ReadError};
use super::ws_write::WsOut;
use super::{CloseReason, Engine, EngineHandler, Outbound, Session};
use crate::config::{ServerConfig, Transport};

type Upgraded = WebSocket<TokioIo<hyper::upgrade::Upgraded>>;
type Reader = FrameReader<OwnedReadHalf>;

/// How long a client may take between the probe and the upgrade packet.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn handle<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    settings: Arc<ServerConfig>,
    remote: SocketAddr,
    query: EioQuery,
    sid: Option<String>,
    request: Request<Body>,
    cors: Cors,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let Ok(upgrade) = IncomingUpgrade::from_request_parts(&mut parts, &()).await else {
        return EngineError::BadRequest.response(&cors);
    };
    let existing = match sid {
        Some(sid) => {
            let Some(session) = engine.session(&sid) else {
                return EngineError::UnknownSid.response(&cors);
            };
            if session.transport() != Transport::Polling
                || session.upgrading.swap(true, Ordering::AcqRel)
            {
                return EngineError::BadRequest.response(&cors);
            }
            Some(session)
        }
        None => {
            if query.eio.as_deref() != Some("4") {
                return EngineError::UnsupportedProtocolVersion.response(&cors);
            }
            None
        }
    };
    let Ok((response, upgrade)) = upgrade.upgrade() else {
        if let Some(session) = &existing {
            session.upgrading.store(false, Ordering::Release);
        }
        return EngineError::BadRequest.response(&cors);
    };
    tokio::spawn(async move {
        let ws = match upgrade.await {
            Ok(ws) => ws,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                if let Some(session) = &existing {
                    session.upgrading.store(false, Ordering::Release);
                }
                return;
            }
        };
        let Some((reader, writer)) = split(ws, &settings) else {
            if let Some(session) = &existing {
                session.upgrading.store(false, Ordering::Release);
            }
            return;
        };
        match existing {
            Some(session) => upgrade_session(engine, session, reader, writer).await,
            None => new_session(engine, settings, remote, reader, writer, &[]).await,
        }
    });
    response.into_response()
}

/// The most headers a direct upgrade request may carry; more go to hyper.
const MAX_DIRECT_HEADERS: usize = 32;

/// The most bytes of a first request looked at for a direct upgrade.
const MAX_DIRECT_REQUEST: usize = 4096;

/// Opens a WebSocket session without hyper when the connection's first request asks for
/// one and passes every check hyper's path would make: `GET` on the engine's path with
/// `EIO=4&transport=websocket` and no sid, an upgrade to `websocket` with version 13 and a
/// key, an allowed `Origin`. The 101 answer and the open packet then go out in one write.
/// Returns the connection untouched (nothing read from it) for hyper otherwise; `None`
/// when it was taken, or closed (or `stop` came) before the client sent anything.
pub(super) async fn open_directly<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    mut stream: TcpStream,
    remote: SocketAddr,
    stop: &CancellationToken,
) -> Option<TcpStream> {
    let mut first = vec![0; MAX_DIRECT_REQUEST];
    let peeked = tokio::select! {
        _ = stop.cancelled() => return None,
        peeked = stream.peek(&mut first) => peeked,
    };
    let peeked = match peeked {
        Ok(0) | Err(_) => return None,
        Ok(peeked) => peeked,
    };
    let settings = engine.settings();
    let Some((length, accept)) = direct_upgrade(&first[..peeked], &settings) else {
        return Some(stream);
    };
    // The request is all in the socket's buffer: this read takes it at once.
    if stream.read_exact(&mut first[..length]).await.is_err() {
        return None;
    }
    drop(first);
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-accept: {accept}\r\n\r\n"
    );
    let (read, write) = stream.into_split();
    let reader = FrameReader::new(read, settings.max_payload_bytes);
    new_session(
        engine.clone(),
        settings,
        remote,
        reader,
        write,
        answer.as_bytes(),
    )
    .await;
    None
}

/// The request's length and the `Sec-WebSocket-Accept` value, when `bytes` hold a whole
/// request that opens a WebSocket session and passes the checks of [`open_directly`].
fn direct_upgrade(bytes: &[u8], settings: &ServerConfig) -> Option<(usize, String)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_DIRECT_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(length) = request.parse(bytes).ok()? else {
        return None;
    };
    if request.method != Some("GET") || request.version != Some(1) {
        return None;
    }
    let (path, query) = request.path?.split_once('?')?;
    if path != settings.path && path != settings.path.trim_end_matches('/') {
        return None;
    }
    let query = EioQuery::parse(Some(query));
    if query.eio.as_deref() != Some("4")
        || query.transport.as_deref() != Some("websocket")
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
    Some((length, accept_key(key)))
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 §4.2.2).
fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Takes the TCP connection back from hyper and splits it. `None` if the client sent
/// data before the upgrade's answer (RFC 6455 §4.1 forbids it) or the connection is not
/// a plain TCP stream.
fn split(ws: Upgraded, settings: &ServerConfig) -> Option<(Reader, OwnedWriteHalf)> {
    let upgraded = ws.into_inner().into_inner();
    let parts = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => parts,
        Err(_) => {
            tracing::error!("WebSocket connection is not a TCP stream");
            return None;
        }
    };
    if !parts.read_buf.is_empty() {
        tracing::debug!("client sent data before the WebSocket upgrade completed");
        return None;
    }
    let (read, write) = parts.io.into_inner().into_split();
    Some((FrameReader::new(read, settings.max_payload_bytes), write))
}

/// A session that starts on WebSocket: the open packet goes first, right after
/// `preamble` (the upgrade's answer, when it is not hyper that sends it).
async fn new_session<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    settings: Arc<ServerConfig>,
    remote: SocketAddr,
    reader: Reader,
    writer: OwnedWriteHalf,
    preamble: &[u8],
) {
    let out = WsOut::new(writer, engine.bytes_out.clone());
    let session = engine.open_session(remote, Transport::Websocket, &settings);
    let open = engine.open_packet(&session, &settings);
    if out.write_text_after(preamble, &open).await.is_err() {
        session.close(CloseReason::TransportClose);
        return;
    }
    // A task of its own, so that the long-lived task does not carry this one's state.
    tokio::spawn(serve(engine, session, reader, out));
}

/// Takes a polling session over: answers the probe, ends the pending poll, waits for
/// the upgrade packet, then serves the session.
async fn upgrade_session<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut reader: Reader,
    writer: OwnedWriteHalf,
) {
    let out = WsOut::new(writer, engine.bytes_out.clone());
    let probed = tokio::time::timeout(UPGRADE_TIMEOUT, async {
        let mut probed = false;
        loop {
            let message = tokio::select! {
                biased;
                _ = session.closed() => return false,
                message = reader.next_frame() => message,
            };
            let Ok(Message::Text(text)) = message else {
                return false;
            };
            match decode_text(text) {
                Ok(Packet::Ping(data)) if &data[..] == b"probe" && !probed => {
                    if out.write_text(b"3probe").await.is_err() {
                        return false;
                    }
                    probed = true;
                    session.upgrade_wake.notify_one();
                }
                Ok(Packet::Upgrade) if probed => return true,
                Ok(Packet::Noop) => {}
                _ => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    if !probed {
        session.upgrading.store(false, Ordering::Release);
        return;
    }
    session.set_transport(Transport::Websocket);
    session.upgrading.store(false, Ordering::Release);
    // A poll that arrived after the probe still holds the outbox: end it too.
    session.upgrade_wake.notify_one();
    engine.handler.on_upgrade(&session);
    tokio::spawn(serve(engine, session, reader, out));
}

/// What the session's task must write, apart from frames producers wrote directly.
enum Queued {
    /// The rest of a direct write the socket took only part of (or a stale wake-up).
    Rest,
    /// An item from the outbox.
    Item(Outbound),
}

/// Serves the session on a task of its own: reading and writing what was queued are raced
/// in one `select!`, which `FrameReader::next_frame` allows (it is cancel safe). One task
/// instead of two keeps an idle session smaller; a write in progress holds up reading.
async fn serve<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut reader: Reader,
    out: WsOut,
) {
    // Only the poll that may still hold the outbox delays this; producers write directly
    // from the moment the outbox is ours.
    let mut outbox = session.outbox.drain().await;
    let out = session.attach_ws(out);
    loop {
        let queued = tokio::select! {
            biased;
            _ = session.closed() => break,
            _ = out.released() => Queued::Rest,
            item = outbox.pop() => Queued::Item(item),
            message = reader.next_frame() => match on_message(&engine, &session, message) {
                Ok(()) => continue,
                Err(reason) => {
                    session.close(reason);
                    break;
                }
            },
        };
        // Boxed: the write futures are large, and an idle session should not carry them.
        let write = Box::pin(async {
            match queued {
                Queued::Rest => {
                    if out.finish_rest().await? {
                        out.release(session.queued());
                    }
                    Ok(())
                }
                Queued::Item(item) => write_queued(&session, out, &item).await,
            }
        });
        // A client that stops reading blocks the write once the socket buffers fill: race
        // it against the session's end (queue full, ping timeout), or the task and its
        // connection would outlive the session.
        let written: std::io::Result<()> = tokio::select! {
            biased;
            _ = session.closed() => break,
            written = write => written,
        };
        if written.is_err() {
            session.close(CloseReason::TransportError);
            break;
        }
    }
    drop(outbox);
    // Ends the WebSocket without the Engine.IO close packet: clients see "transport
    // close" and reconnect by themselves.
    out.close();
}

/// Writes an item taken from the outbox, once no direct write is in progress.
async fn write_queued<D>(
    session: &Session<D>,
    out: &WsOut,
    item: &Outbound,
) -> std::io::Result<()> {
    out.acquire().await?;
    let written = out.write_item(item).await;
    session.item_done();
    out.release(session.queued());
    written
}

/// Handles what the client sent; an error is why the session ends.
fn on_message<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    session: &Arc<Session<H::Data>>,
    message: Result<Message, ReadError>,
) -> Result<(), CloseReason> {
    let message = message.map_err(|error| match error {
        ReadError::Eof | ReadError::UnexpectedEof => CloseReason::TransportClose,
        ReadError::TooLarge(_) => CloseReason::PayloadTooLarge,
        _ => CloseReason::TransportError,
    })?;
    engine.bytes_in.inc_by(message.payload().len() as u64);
    let packet = match message {
        Message::Text(text) => decode_text(text).map_err(|error| {
            tracing::debug!(sid = %session.id, %error, "bad WebSocket packet");
            CloseReason::ParseError
        })?,
        Message::Binary(data) => Packet::Binary(data),
        Message::Close(_) => return Err(CloseReason::TransportClose),
        Message::Ping(payload) => {
            let _ = session.send(Outbound::ws_pong(payload));
            return Ok(());
        }
        Message::Pong(_) => return Ok(()),
    };
    engine.on_packet(session, packet)
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
        let (length, accept) = direct_upgrade(REQUEST.as_bytes(), &settings(&["*"])).unwrap();
        assert_eq!(length, REQUEST.len());
        // RFC 6455 §1.3's example.
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let with_frame = format!("{REQUEST}\u{81}\u{2}40");
        assert_eq!(
            direct_upgrade(with_frame.as_bytes(), &settings(&["*"])).map(|(n, _)| n),
            Some(REQUEST.len())
        );
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        let all = settings(&["*"]);
        let variants = [
            REQUEST.replace("EIO=4", "EIO=3"),
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
