//! The WebSocket transport: new sessions over WebSocket, and the upgrade of a polling
//! session (probe, noop to the pending poll, upgrade packet).
//!
//! Reads stay on the upgrade task; a spawned writer owns the write half and drains the
//! session's outbox. Both stop when the session closes. `Reader::read` is not cancel
//! safe, so it is raced only against the session's end, after which nothing is read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fastwebsockets::upgrade::IncomingUpgrade;
use fastwebsockets::{
    Frame as WsFrame, OpCode, Payload, WebSocket, WebSocketError, WebSocketRead, WebSocketWrite,
};
use hyper_util::rt::TokioIo;
use tokio::io::{ReadHalf, WriteHalf};

use super::http::{Cors, EioQuery, EngineError};
use super::packet::{Frame, Packet, decode_text};
use super::{CloseReason, Engine, EngineHandler, Outbound, Session};
use crate::config::{ServerConfig, Transport};

type Stream = TokioIo<hyper::upgrade::Upgraded>;
type Writer = WebSocketWrite<WriteHalf<Stream>>;

/// Reads whole messages within `server.max_payload_bytes`. fastwebsockets bounds one
/// frame and its fragment collector bounds nothing, so fragments are put together here,
/// with the limit applied to their total.
struct Reader {
    frames: WebSocketRead<ReadHalf<Stream>>,
    max: usize,
    /// A fragmented message being received: its opcode and its bytes so far.
    partial: Option<(OpCode, Vec<u8>)>,
}

impl Reader {
    /// The next whole text or binary message, or a control frame. Not cancel safe.
    async fn read(&mut self) -> Result<(OpCode, Bytes), WebSocketError> {
        let mut send_fn = ignore_obligated_send;
        loop {
            let frame = self.frames.read_frame(&mut send_fn).await?;
            let opcode = frame.opcode;
            match (opcode, self.partial.as_mut()) {
                (OpCode::Text | OpCode::Binary, None) if frame.fin => {
                    return Ok((opcode, Bytes::copy_from_slice(&frame.payload)));
                }
                (OpCode::Text | OpCode::Binary, None) => {
                    self.partial = Some((opcode, frame.payload.to_vec()));
                }
                (OpCode::Continuation, Some((_, bytes))) => {
                    if bytes.len() + frame.payload.len() > self.max {
                        return Err(WebSocketError::FrameTooLarge);
                    }
                    bytes.extend_from_slice(&frame.payload);
                    if frame.fin {
                        let (opcode, bytes) = self.partial.take().expect("matched above");
                        return Ok((opcode, Bytes::from(bytes)));
                    }
                }
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(WebSocketError::InvalidFragment);
                }
                (OpCode::Continuation, None) => {
                    return Err(WebSocketError::InvalidContinuationFrame);
                }
                // Control frames, which may come between fragments.
                _ => return Ok((opcode, Bytes::copy_from_slice(&frame.payload))),
            }
        }
    }
}

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

fn split(mut ws: WebSocket<Stream>, settings: &ServerConfig) -> (Reader, Writer) {
    let max = settings.max_payload_bytes as usize;
    // fastwebsockets refuses a frame of `len >= limit`: a frame of exactly `max` is allowed.
    ws.set_max_message_size(max.saturating_add(1));
    ws.set_auto_close(false);
    ws.set_auto_pong(false);
    let (frames, write) = ws.split(tokio::io::split);
    let reader = Reader {
        frames,
        max,
        partial: None,
    };
    (reader, write)
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
    tokio::spawn(write_loop(engine.clone(), session.clone(), writer));
    read_loop(&engine, &session, reader).await;
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
                message = reader.read() => message,
            };
            let Ok((OpCode::Text, text)) = message else {
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
    tokio::spawn(write_loop(engine.clone(), session.clone(), writer));
    read_loop(&engine, &session, reader).await;
}

/// With auto close and auto pong off the reader never has to write.
async fn ignore_obligated_send(_frame: WsFrame<'_>) -> Result<(), WebSocketError> {
    Ok(())
}

async fn read_loop<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    session: &Arc<Session<H::Data>>,
    mut reader: Reader,
) {
    loop {
        let message = tokio::select! {
            biased;
            _ = session.closed() => return,
            message = reader.read() => message,
        };
        let (opcode, payload) = match message {
            Ok(message) => message,
            Err(error) => {
                let reason = match error {
                    WebSocketError::ConnectionClosed | WebSocketError::UnexpectedEOF => {
                        CloseReason::TransportClose
                    }
                    WebSocketError::FrameTooLarge => CloseReason::PayloadTooLarge,
                    _ => CloseReason::TransportError,
                };
                session.close(reason);
                return;
            }
        };
        engine.bytes_in.inc_by(payload.len() as u64);
        let packet = match opcode {
            OpCode::Text => match decode_text(payload) {
                Ok(packet) => packet,
                Err(error) => {
                    tracing::debug!(sid = %session.id, %error, "bad WebSocket packet");
                    session.close(CloseReason::ParseError);
                    return;
                }
            },
            OpCode::Binary => Packet::Binary(payload),
            OpCode::Close => {
                session.close(CloseReason::TransportClose);
                return;
            }
            OpCode::Ping => {
                let _ = session.send(Outbound::ws_pong(payload));
                continue;
            }
            OpCode::Pong | OpCode::Continuation => continue,
        };
        if let Err(reason) = engine.on_packet(session, packet) {
            session.close(reason);
            return;
        }
    }
}

async fn write_loop<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut writer: Writer,
) {
    let mut outbox = session.outbox_rx.lock().await;
    loop {
        let item = tokio::select! {
            biased;
            _ = session.closed() => break,
            item = outbox.recv() => item,
        };
        let Some(item) = item else { break };
        if write_item(&engine, &mut writer, &item).await.is_err() {
            session.close(CloseReason::TransportError);
            break;
        }
    }
    // Ends the WebSocket without the Engine.IO close packet: clients see "transport
    // close" and reconnect by themselves.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        writer.write_frame(WsFrame::close(1000, b"")),
    )
    .await;
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
