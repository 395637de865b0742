//! HTTP long-polling: the handshake, GET (wait for queued packets) and POST (packets from
//! the client). One GET and one POST at a time per session; an overlap closes it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};

use super::http::{Cors, EngineError};
use super::packet::{Frame, NOOP, Version, decode_payload};
use super::v3::Framing;
use super::{Admitted, CloseReason, Engine, EngineHandler, Outbound, Session, v3};
use crate::config::{ServerConfig, Transport};

fn text_response(body: Bytes, cors: &Cors) -> Response {
    payload_response(body, "text/plain; charset=UTF-8", cors)
}

fn payload_response(body: Bytes, content_type: &'static str, cors: &Cors) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    cors.apply(response.headers_mut());
    response
}

/// Opens a polling session and answers with its open packet (in v3, framed as a payload,
/// which the packets the layer above sends on open then follow).
pub(super) fn handshake<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    settings: &ServerConfig,
    admitted: Admitted<'_>,
    cors: &Cors,
) -> Response {
    let version = admitted.protocol.version;
    let (session, permit) = engine.open_admitted(admitted, Transport::Polling);
    engine.spawn_supervisor(&session, permit);
    session.set_origin(cors.origin());
    let open = engine.open_packet(&session, settings);
    engine.handler.on_open(&session);
    if version == Version::V4 {
        engine.bytes_out.inc_by(open.len() as u64);
        return text_response(open, cors);
    }
    let mut items = vec![Outbound::frame(Frame::Text(open))];
    if let Some(mut outbox) = session.outbox.try_drain() {
        while let Some(item) = outbox.try_pop() {
            session.item_done();
            items.push(item);
        }
    }
    let (payload, content_type) = encode_items(&session, &items);
    engine.bytes_out.inc_by(payload.len() as u64);
    payload_response(payload, content_type, cors)
}

/// A long-poll: waits for queued packets and sends as many as are ready at once.
pub(super) async fn get<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    cors: &Cors,
) -> Response {
    if session.transport() != Transport::Polling {
        return EngineError::BadRequest.response(cors);
    }
    let Some(mut outbox) = session.outbox.try_drain() else {
        // A second GET while one waits: the reference server closes the session.
        session.close(CloseReason::TransportError);
        return EngineError::BadRequest.response(cors);
    };
    let first = tokio::select! {
        biased;
        // The client's own close packet ends a waiting poll with a noop, as the reference
        // server does; any other end is answered below.
        _ = session.closed() => (session.close_reason() == Some(CloseReason::ClientClose))
            .then(|| Outbound::frame(NOOP)),
        item = outbox.pop() => {
            session.item_done();
            Some(item)
        }
        _ = session.upgrade_wake.notified() => Some(Outbound::frame(NOOP)),
    };
    let Some(first) = first else {
        return match session.close_reason() {
            Some(reason) if reason.sends_close_packet() => {
                if reason.closes_next_poll() {
                    engine.owed_close.paid(session.id);
                }
                close_packet(session.version, cors)
            }
            // Shutdown: ended without the close packet, so clients reconnect by themselves.
            _ => EngineError::UnknownSid.response(cors),
        };
    };
    // Packets already queued ride along, up to about the client's payload limit.
    let limit = engine.settings().max_payload_bytes as usize;
    let mut size = size_of_item(&first);
    let mut items = vec![first];
    while size < limit {
        match outbox.try_pop() {
            Some(item) => {
                session.item_done();
                size += size_of_item(&item);
                items.push(item);
            }
            None => break,
        }
    }
    drop(outbox);
    let (payload, content_type) = encode_items(&session, &items);
    engine.bytes_out.inc_by(payload.len() as u64);
    payload_response(payload, content_type, cors)
}

/// The Engine.IO close packet, as the answer to a GET of a session the relay ended:
/// length-prefixed for Engine.IO v3.
pub(super) fn close_packet(version: Version, cors: &Cors) -> Response {
    match version {
        Version::V3 => text_response(Bytes::from_static(b"1:1"), cors),
        Version::V4 => text_response(Bytes::from_static(b"1"), cors),
    }
}

fn size_of_item(item: &Outbound) -> usize {
    item.frames().iter().map(Frame::len).sum()
}

/// A GET answer's body in the session's framing, and its content type.
fn encode_items<D>(session: &Session<D>, items: &[Outbound]) -> (Bytes, &'static str) {
    let frames = || items.iter().flat_map(Outbound::frames);
    let mut payload = BytesMut::with_capacity(items.iter().map(size_of_item).sum::<usize>() + 16);
    if session.version == Version::V4 {
        for frame in frames() {
            frame.write_to_payload(&mut payload);
        }
        return (payload.freeze(), "text/plain; charset=UTF-8");
    }
    let framing = Framing::choose(session.polling_binary, frames());
    for frame in frames() {
        framing.write(frame, &mut payload);
    }
    (payload.freeze(), framing.content_type())
}

/// Resets the session's POST flag however the request ends.
struct PostGuard<'a, D>(&'a Session<D>);

impl<D> Drop for PostGuard<'_, D> {
    fn drop(&mut self) {
        self.0.posting.store(false, Ordering::Release);
    }
}

/// Packets from the client.
pub(super) async fn post<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    settings: &ServerConfig,
    session: Arc<Session<H::Data>>,
    request: Request<Body>,
    cors: &Cors,
) -> Response {
    if session.transport() != Transport::Polling && !session.upgrading.load(Ordering::Acquire) {
        return EngineError::BadRequest.response(cors);
    }
    if session.posting.swap(true, Ordering::AcqRel) {
        session.close(CloseReason::TransportError);
        return EngineError::BadRequest.response(cors);
    }
    let _guard = PostGuard(&session);
    let limit = settings.max_payload_bytes as usize;
    let body = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(body) => body,
        Err(error) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                session.close(CloseReason::PayloadTooLarge);
                let mut response = StatusCode::PAYLOAD_TOO_LARGE.into_response();
                cors.apply(response.headers_mut());
                return response;
            }
            session.close(CloseReason::TransportError);
            return EngineError::BadRequest.response(cors);
        }
    };
    engine.bytes_in.inc_by(body.len() as u64);
    let decoded = match session.version {
        Version::V4 => decode_payload(body),
        Version::V3 => v3::decode_payload(body),
    };
    let packets = match decoded {
        Ok(packets) => packets,
        Err(error) => {
            tracing::debug!(sid = %session.id, %error, "bad polling payload");
            session.close(CloseReason::ParseError);
            return EngineError::BadRequest.response(cors);
        }
    };
    for packet in packets {
        if let Err(reason) = engine.on_packet(&session, packet) {
            session.close(reason);
            return EngineError::BadRequest.response(cors);
        }
    }
    text_response(Bytes::from_static(b"ok"), cors)
}
