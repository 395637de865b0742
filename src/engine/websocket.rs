//! The WebSocket transport: new sessions over WebSocket, and the upgrade of a polling
//! session (probe, noop to the pending poll, upgrade packet).
//!
//! fastwebsockets does the HTTP upgrade that comes through the router (the listener
//! answers the usual one itself, see [`listener`](super::listener)). After it the connection is taken back from hyper
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

use super::admission::Permit;
use super::heartbeat::Heartbeat;
use super::http::{Cors, EioQuery, EngineError, refused};
use super::packet::{Packet, Version, decode_text};
use super::stream::{ReadHalf, TlsStream, WriteHalf, split_tcp, split_tls};
use super::ws_read::{FrameReader, Message, ReadError};
use super::ws_write::WsOut;
use super::{
    Admitted, CloseReason, Engine, EngineHandler, Handshake, Outbound, Protocol, Session, v3,
};
use crate::config::{ServerConfig, Transport};

type Upgraded = WebSocket<TokioIo<hyper::upgrade::Upgraded>>;
pub(super) type Reader = FrameReader<ReadHalf>;

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
    let query_string = parts.uri.query().unwrap_or("").to_owned();
    let Ok(upgrade) = IncomingUpgrade::from_request_parts(&mut parts, &()).await else {
        return EngineError::BadRequest.response(&cors);
    };
    let opening = match sid {
        Some(sid) => {
            let Some(session) = engine.session(&sid) else {
                return EngineError::UnknownSid.response(&cors);
            };
            if session.transport() != Transport::Polling
                || session.upgrading.swap(true, Ordering::AcqRel)
            {
                // A second WebSocket for a session that has (or is getting) one: the
                // reference server accepts the handshake and closes it at once.
                Opening::Refused
            } else {
                Opening::Upgrade(session)
            }
        }
        None => {
            if Version::from_query(query.eio.as_deref()).is_none() {
                return EngineError::UnsupportedProtocolVersion.response(&cors);
            }
            // A new session passes the limits before the upgrade; taking over a polling
            // session opens none.
            match engine.admission.admit(remote.ip()) {
                Ok(permit) => Opening::New(permit),
                Err(refusal) => return refused(refusal, &cors),
            }
        }
    };
    let version = Version::from_query(query.eio.as_deref()).unwrap_or(Version::V4);
    let Ok((response, upgrade)) = upgrade.upgrade() else {
        opening.abandon();
        return EngineError::BadRequest.response(&cors);
    };
    let headers = std::mem::take(&mut parts.headers);
    tokio::spawn(async move {
        let ws = match upgrade.await {
            Ok(ws) => ws,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                opening.abandon();
                return;
            }
        };
        let Some((reader, writer)) = split(ws, &settings) else {
            opening.abandon();
            return;
        };
        match opening {
            Opening::Refused => drop((reader, writer)),
            Opening::Upgrade(session) => upgrade_session(engine, session, reader, writer).await,
            Opening::New(permit) => {
                let admitted = Admitted {
                    remote,
                    permit,
                    protocol: Protocol {
                        version,
                        polling_binary: true,
                    },
                    handshake: Handshake::from_map(Some(&query_string), &headers),
                };
                new_session(engine, settings, admitted, reader, writer, &[]).await
            }
        }
    });
    response.into_response()
}

/// What a WebSocket request opens.
enum Opening<D> {
    /// Takes over this polling session.
    Upgrade(Arc<Session<D>>),
    /// A new session, admitted.
    New(Permit),
    /// Nothing: the connection is closed once open.
    Refused,
}

impl<D> Opening<D> {
    /// The upgrade did not happen: the polling session may try again (a permit just drops).
    fn abandon(&self) {
        if let Opening::Upgrade(session) = self {
            session.upgrading.store(false, Ordering::Release);
        }
    }
}

/// Takes the TCP connection back from hyper and splits it. `None` if the client sent
/// data before the upgrade's answer (RFC 6455 §4.1 forbids it) or the connection is not
/// a plain TCP stream.
fn split(ws: Upgraded, settings: &ServerConfig) -> Option<(Reader, WriteHalf)> {
    let upgraded = ws.into_inner().into_inner();
    let (read, write) = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) if parts.read_buf.is_empty() => split_tcp(parts.io.into_inner()),
        Ok(_) => {
            tracing::debug!("client sent data before the WebSocket upgrade completed");
            return None;
        }
        Err(upgraded) => match upgraded.downcast::<TokioIo<TlsStream>>() {
            Ok(parts) if parts.read_buf.is_empty() => match split_tls(parts.io.into_inner()) {
                Ok(halves) => halves,
                Err(error) => {
                    tracing::warn!(%error, "cannot take over a TLS WebSocket connection");
                    return None;
                }
            },
            Ok(_) => {
                tracing::debug!("client sent data before the WebSocket upgrade completed");
                return None;
            }
            Err(_) => {
                tracing::error!("WebSocket connection is neither TCP nor TLS");
                return None;
            }
        },
    };
    Some((FrameReader::new(read, settings.max_payload_bytes), write))
}

/// A session that starts on WebSocket: the open packet goes first, right after
/// `preamble` (the upgrade's answer, when it is not hyper that sends it).
pub(super) async fn new_session<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    settings: Arc<ServerConfig>,
    admitted: Admitted<'_>,
    reader: Reader,
    writer: WriteHalf,
    preamble: &[u8],
) {
    let out = WsOut::new(writer, engine.bytes_out.clone(), admitted.protocol.version);
    let (session, permit) = engine.open_admitted(admitted, Transport::Websocket);
    let supervision = Supervision {
        heartbeat: Heartbeat::new(&settings, session.version),
        permit,
    };
    let open = engine.open_packet(&session, &settings);
    if out.write_text(preamble, &open).await.is_err() {
        session.close(CloseReason::TransportClose);
        supervision.retire(engine, session).await;
        return;
    }
    // What the layer above sends now is queued (the socket is not attached yet) and
    // follows the open packet.
    engine.handler.on_open(&session);
    // A task of its own, so that the long-lived task does not carry this one's state.
    tokio::spawn(serve(
        engine,
        session,
        reader,
        Box::new(out),
        Some(supervision),
    ));
}

/// What the transport task of a session born on WebSocket also does: supervise it (an
/// upgraded polling session keeps the supervisor task it had).
struct Supervision {
    heartbeat: Heartbeat,
    permit: Permit,
}

impl Supervision {
    async fn retire<H: EngineHandler>(
        self,
        engine: Arc<Engine<H>>,
        session: Arc<Session<H::Data>>,
    ) {
        let patience = self.heartbeat.patience();
        engine.retire(session, self.permit, patience).await;
    }
}

/// Takes a polling session over: answers the probe, ends the pending poll, waits for
/// the upgrade packet, then serves the session.
async fn upgrade_session<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut reader: Reader,
    writer: WriteHalf,
) {
    let out = WsOut::new(writer, engine.bytes_out.clone(), session.version);
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
                    if out.write_text(&[], b"3probe").await.is_err() {
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
    tokio::spawn(serve(engine, session, reader, Box::new(out), None));
}

/// What the session's task must write, apart from frames producers wrote directly.
enum Queued {
    /// The rest of a direct write the socket took only part of (or a stale wake-up).
    Rest,
    /// An item from the outbox.
    Item(Outbound),
}

/// Serves the session on a task of its own: reading and writing what was queued are raced
/// in one `select!`, which `FrameReader::next_frame` allows (it is cancel safe), and so is
/// the heartbeat when the task supervises the session. One task instead of two or three
/// keeps an idle session smaller; a write in progress holds up reading.
///
/// A plain function returning an `async move` block rather than an `async fn`: an
/// `async fn` keeps room for its arguments beside the locals they move into, and this
/// future lives as long as the session.
#[allow(clippy::manual_async_fn)]
fn serve<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut reader: Reader,
    // Boxed: it moves into the session once the outbox is ours, and would leave its room
    // in the future behind.
    out: Box<WsOut>,
    mut supervision: Option<Supervision>,
) -> impl Future<Output = ()> + Send {
    async move {
        let timer = match &supervision {
            Some(supervision) => supervision.heartbeat.timer(),
            // Never polled: the heartbeat's arms are off without a supervision.
            None => tokio::time::sleep(Duration::ZERO),
        };
        tokio::pin!(timer);
        // Only the poll that may still hold the outbox delays this; producers write directly
        // from the moment the outbox is ours.
        let mut outbox = session.outbox.drain().await;
        let out = session.attach_ws(*out);
        loop {
            let queued = tokio::select! {
                biased;
                _ = session.closed() => break,
                _ = &mut timer, if supervision.is_some() => {
                    if let Some(supervision) = &mut supervision {
                        supervision.heartbeat.on_timer(&session, timer.as_mut());
                    }
                    continue;
                }
                _ = session.pong.notified(), if supervision.as_ref().is_some_and(|s| s.heartbeat.awaits_client()) => {
                    if let Some(supervision) = &mut supervision {
                        supervision.heartbeat.on_client(timer.as_mut());
                    }
                    continue;
                }
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
            let mut write = Box::pin(async {
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
            let written: std::io::Result<()> = loop {
                tokio::select! {
                    biased;
                    _ = session.closed() => break Ok(()),
                    // A pong cannot arrive meanwhile: reading waits for the write.
                    _ = &mut timer, if supervision.is_some() => {
                        if let Some(supervision) = &mut supervision {
                            supervision.heartbeat.on_timer(&session, timer.as_mut());
                        }
                    }
                    written = &mut write => break written,
                }
            };
            if written.is_err() {
                session.close(CloseReason::TransportError);
            }
            if session.is_closed() {
                break;
            }
        }
        drop(outbox);
        // Ends the WebSocket without the Engine.IO close packet: clients see "transport
        // close" and reconnect by themselves.
        out.close();
        if let Some(supervision) = supervision {
            // Boxed: only the end of the session needs room for it.
            Box::pin(supervision.retire(engine, session)).await;
        }
    }
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
    let v3 = session.version == Version::V3;
    let packet = match message {
        Message::Text(text) if v3 => v3::decode_record(text),
        Message::Text(text) => decode_text(text),
        Message::Binary(data) if v3 => v3::decode_binary_message(data),
        Message::Binary(data) => Ok(Packet::Binary(data)),
        Message::Close(_) => return Err(CloseReason::TransportClose),
        Message::Ping(payload) => {
            let _ = session.send(Outbound::ws_pong(payload));
            return Ok(());
        }
        Message::Pong(_) => return Ok(()),
    };
    let packet = packet.map_err(|error| {
        tracing::debug!(sid = %session.id, %error, "bad WebSocket packet");
        CloseReason::ParseError
    })?;
    engine.on_packet(session, packet)
}
