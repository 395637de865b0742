//! The WebSocket transport: new sessions over WebSocket, and the upgrade of a polling
//! session (probe, noop to the pending poll, upgrade packet).
//!
//! fastwebsockets does the upgrade and writes frames; frames are read by our own
//! [`FrameReader`](super::ws_read::FrameReader), which holds no buffer while the client is
//! idle. Once the session is served, one task (the upgrade task) both reads and drains
//! the session's outbox; it stops when the session closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use fastwebsockets::upgrade::IncomingUpgrade;
use fastwebsockets::{Frame as WsFrame, Payload, Role, WebSocket, WebSocketError, WebSocketWrite};
use hyper_util::rt::TokioIo;
use tokio::io::{ReadHalf, WriteHalf};

use super::http::{Cors, EioQuery, EngineError};
use super::packet::{Frame, Packet, decode_text};
use super::ws_read::{FrameReader, Message, ReadError};
use super::{CloseReason, Engine, EngineHandler, Outbound, Session};
use crate::config::{ServerConfig, Transport};

type Stream = TokioIo<hyper::upgrade::Upgraded>;
type Reader = FrameReader<ReadHalf<Stream>>;
type Writer = WebSocketWrite<WriteHalf<Stream>>;

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
        match existing {
            Some(session) => upgrade_session(engine, settings, session, ws).await,
            None => new_session(engine, settings, remote, ws).await,
        }
    });
    response.into_response()
}

/// Our reader on the read half, fastwebsockets' writer on the write half. Nothing has been
/// read from `ws` yet, so no bytes are left behind in it.
fn split(ws: WebSocket<Stream>, settings: &ServerConfig) -> (Reader, Writer) {
    let (read, write) = tokio::io::split(ws.into_inner());
    // The read half that comes with the writer is dropped at once, freeing its buffer.
    let (_, writer) =
        fastwebsockets::after_handshake_split(tokio::io::empty(), write, Role::Server);
    (FrameReader::new(read, settings.max_payload_bytes), writer)
}

/// A session that starts on WebSocket: the open packet goes first.
async fn new_session<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    settings: Arc<ServerConfig>,
    remote: SocketAddr,
    ws: WebSocket<Stream>,
) {
    let (reader, mut writer) = split(ws, &settings);
    let session = engine.open_session(remote, Transport::Websocket, &settings);
    let open = engine.open_packet(&session, &settings);
    engine.bytes_out.inc_by(open.len() as u64);
    if writer
        .write_frame(WsFrame::text(Payload::Borrowed(&open)))
        .await
        .is_err()
    {
        session.close(CloseReason::TransportClose);
        return;
    }
    serve(&engine, &session, reader, writer).await;
}

/// Takes a polling session over: answers the probe, ends the pending poll, waits for
/// the upgrade packet, then serves the session.
async fn upgrade_session<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    settings: Arc<ServerConfig>,
    session: Arc<Session<H::Data>>,
    ws: WebSocket<Stream>,
) {
    let (mut reader, mut writer) = split(ws, &settings);
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
                    if writer
                        .write_frame(WsFrame::text(Payload::Borrowed(b"3probe")))
                        .await
                        .is_err()
                    {
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
    serve(&engine, &session, reader, writer).await;
}

/// Serves the session on the upgrade task: reading and draining the outbox are raced in
/// one `select!`, which `FrameReader::next_frame` allows (it is cancel safe). One task
/// instead of two keeps an idle session smaller; a write in progress holds up reading.
async fn serve<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    session: &Arc<Session<H::Data>>,
    mut reader: Reader,
    mut writer: Writer,
) {
    let mut outbox = session.outbox_rx.lock().await;
    loop {
        let result = tokio::select! {
            biased;
            _ = session.closed() => break,
            item = outbox.recv() => {
                let Some(item) = item else { break };
                // A client that stops reading blocks the write once the socket buffers
                // fill: race it against the session's end (queue full, ping timeout), or
                // the task and its connection would outlive the session.
                tokio::select! {
                    biased;
                    _ = session.closed() => break,
                    written = write_item(engine, &mut writer, &item) => {
                        written.map_err(|_| CloseReason::TransportError)
                    }
                }
            }
            message = reader.next_frame() => on_message(engine, session, message),
        };
        if let Err(reason) = result {
            session.close(reason);
            break;
        }
    }
    drop(outbox);
    // Ends the WebSocket without the Engine.IO close packet: clients see "transport
    // close" and reconnect by themselves.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        writer.write_frame(WsFrame::close(1000, b"")),
    )
    .await;
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

async fn write_item<H: EngineHandler>(
    engine: &Engine<H>,
    writer: &mut Writer,
    item: &Outbound,
) -> Result<(), WebSocketError> {
    if let Some(data) = item.as_ws_pong() {
        return writer
            .write_frame(WsFrame::pong(Payload::Borrowed(data)))
            .await;
    }
    for frame in item.frames() {
        engine.bytes_out.inc_by(frame.len() as u64);
        let ws_frame = match frame {
            Frame::Text(text) => WsFrame::text(Payload::Borrowed(text)),
            Frame::Binary(bytes) => WsFrame::binary(Payload::Borrowed(bytes)),
        };
        writer.write_frame(ws_frame).await?;
    }
    Ok(())
}
