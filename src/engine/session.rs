//! One Engine.IO session: its bounded outbox, transport state, heartbeat signals and
//! the reason it closed.
//!
//! Producers (the Socket.IO layer, the adapter's fan-out) call [`Session::send`], which
//! never blocks and never locks. On a WebSocket session with nothing queued it writes the
//! frame to the socket at once (see [`super::ws_write`]); otherwise the item goes to the
//! bounded outbox, where a full queue applies the slow-client policy, and whichever
//! transport serves the session drains it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::http::HeaderValue;
use bytes::Bytes;
use prometheus::IntCounter;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;
use super::packet::{Frame, Version};
use super::sid::Sid;
use super::ws_write::{Direct, WsOut};
use crate::config::{SlowClientPolicy, Transport};
use crate::metrics::Metrics;

/// What a session's transport sends next. One pointer: a queue slot stays small, and a
/// broadcast shares one allocation among all its recipients.
#[derive(Debug, Clone)]
pub struct Outbound(Arc<Item>);

#[derive(Debug)]
enum Item {
    One(Frame),
    /// A Socket.IO packet and its binary attachments: they go out together, in order.
    Many(Box<[Frame]>),
    /// A WebSocket pong answering a client's WebSocket ping.
    WsPong(Bytes),
}

impl Outbound {
    /// One frame.
    pub fn frame(frame: Frame) -> Self {
        Outbound(Arc::new(Item::One(frame)))
    }

    /// Frames that must go out together and in order.
    pub fn frames_in_order(frames: Vec<Frame>) -> Self {
        Outbound(Arc::new(Item::Many(frames.into_boxed_slice())))
    }

    pub(super) fn ws_pong(payload: Bytes) -> Self {
        Outbound(Arc::new(Item::WsPong(payload)))
    }

    /// The frames this item carries (none for transport-level control).
    pub fn frames(&self) -> &[Frame] {
        match &*self.0 {
            Item::One(frame) => std::slice::from_ref(frame),
            Item::Many(frames) => frames,
            Item::WsPong(_) => &[],
        }
    }

    /// The payload of a WebSocket pong to send.
    pub(super) fn as_ws_pong(&self) -> Option<&Bytes> {
        match &*self.0 {
            Item::WsPong(payload) => Some(payload),
            _ => None,
        }
    }
}

/// Why a session ended: a closed set, also the `reason` label of
/// `sio_relay_disconnections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the connection or the WebSocket.
    TransportClose,
    /// The connection failed, or the client broke the transport's rules.
    TransportError,
    /// The client sent the Engine.IO close packet.
    ClientClose,
    /// No pong within the ping timeout.
    PingTimeout,
    /// The client sent something that is not Engine.IO or Socket.IO.
    ParseError,
    /// The client sent more than `server.max_payload_bytes` at once.
    PayloadTooLarge,
    /// The client could not keep up and its outbox filled.
    QueueFull,
    /// The session joined no namespace within `server.connect_timeout_ms`.
    ConnectTimeout,
    /// The relay is shutting down.
    ServerShutdown,
}

impl CloseReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport_close",
            CloseReason::TransportError => "transport_error",
            CloseReason::ClientClose => "client_close",
            CloseReason::PingTimeout => "ping_timeout",
            CloseReason::ParseError => "parse_error",
            CloseReason::PayloadTooLarge => "payload_too_large",
            CloseReason::QueueFull => "queue_full",
            CloseReason::ConnectTimeout => "connect_timeout",
            CloseReason::ServerShutdown => "server_shutdown",
        }
    }

    /// Whether a long-polling client's waiting GET is answered with the Engine.IO close
    /// packet, as the reference server does when it ends a session: socket.io-client then
    /// reports "transport close" and reconnects. Not when the client ended the session,
    /// and not on shutdown: python-socketio takes the packet as final and would not
    /// reconnect to another node, so shutdown ends polling sessions without it (the
    /// client's next poll fails and it reconnects).
    pub fn sends_close_packet(self) -> bool {
        !matches!(
            self,
            CloseReason::TransportClose | CloseReason::ClientClose | CloseReason::ServerShutdown
        )
    }

    /// Whether the close packet also waits for the client's next GET when none was
    /// waiting: when the relay closed the session on purpose (it joined no namespace in
    /// time, or could not keep up), as the reference server's orderly close does. A
    /// session that broke (ping timeout, bad input) is forgotten at once, and its next GET
    /// finds it unknown, as there.
    pub fn closes_next_poll(self) -> bool {
        matches!(self, CloseReason::ConnectTimeout | CloseReason::QueueFull)
    }
}

/// Why [`Session::send`] did not queue an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The outbox was full; `limits.slow_client` was applied.
    Full,
    /// The session has closed.
    Closed,
}

/// One Engine.IO session, shared by its transport tasks and by everyone who sends to it.
/// `D` is the per-session state of the layer above (Socket.IO).
pub struct Session<D> {
    /// The Engine.IO session id.
    pub id: Sid,
    /// The client's address.
    pub remote: SocketAddr,
    /// The Engine.IO version the client speaks.
    pub version: Version,
    /// Whether long-polling answers may use binary framing (Engine.IO v3 clients that did
    /// not ask for `b64`); v4 payloads are always text.
    pub(super) polling_binary: bool,
    /// The layer above's state for this session.
    pub data: D,
    /// Items waiting for the transport.
    pub(super) outbox: Outbox,
    /// Items in the outbox or being written by the transport. A direct write happens only
    /// when this is zero, so it never overtakes a queued item.
    queued: AtomicUsize,
    /// The WebSocket's write side, once the session is served over WebSocket.
    ws: OnceLock<WsOut>,
    transport: AtomicU8,
    pub(super) upgrading: AtomicBool,
    /// Ends a pending long-poll with a noop so the client can finish an upgrade.
    pub(super) upgrade_wake: Notify,
    pub(super) pong: Notify,
    pub(super) posting: AtomicBool,
    established: AtomicBool,
    /// The browser `Origin` a polling session was opened from: its later requests keep
    /// being served from it after a reload removes it from `server.allowed_origins`.
    origin: OnceLock<HeaderValue>,
    closing: CancellationToken,
    close_reason: OnceLock<CloseReason>,
    policy: SlowClientPolicy,
    /// `sio_relay_dropped_total{reason="slow_client"}`.
    dropped_slow_client: IntCounter,
}

impl<D> Session<D> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        remote: SocketAddr,
        version: Version,
        polling_binary: bool,
        transport: Transport,
        data: D,
        max_queued_bytes: usize,
        policy: SlowClientPolicy,
        metrics: &Metrics,
    ) -> Self {
        Session {
            id: Sid::random(),
            remote,
            version,
            polling_binary,
            data,
            outbox: Outbox::new(max_queued_bytes),
            queued: AtomicUsize::new(0),
            ws: OnceLock::new(),
            transport: AtomicU8::new(transport as u8),
            upgrading: AtomicBool::new(false),
            upgrade_wake: Notify::new(),
            pong: Notify::new(),
            posting: AtomicBool::new(false),
            established: AtomicBool::new(false),
            origin: OnceLock::new(),
            closing: CancellationToken::new(),
            close_reason: OnceLock::new(),
            policy,
            dropped_slow_client: metrics.dropped.with_label_values(&["slow_client"]),
        }
    }

    /// Sends an item to the client without waiting: written to the WebSocket at once when
    /// nothing is queued and the socket takes it, queued otherwise. A full outbox applies
    /// `limits.slow_client`: the session is closed (`queue_full`) or the item dropped.
    pub fn send(&self, item: Outbound) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        if let Some(ws) = self.ws.get()
            && self.queued.load(Ordering::SeqCst) == 0
        {
            match ws.try_write_now(&item, &self.queued) {
                Direct::Written => return Ok(()),
                Direct::Failed => {
                    self.close(CloseReason::TransportError);
                    return Err(SendError::Closed);
                }
                Direct::NotNow => {}
            }
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.outbox.push(item).is_ok() {
            return Ok(());
        }
        self.queued.fetch_sub(1, Ordering::SeqCst);
        self.dropped_slow_client.inc();
        if self.policy == SlowClientPolicy::Disconnect {
            self.close(CloseReason::QueueFull);
        }
        Err(SendError::Full)
    }

    /// Tells the session that the transport wrote (or took over) one item it received
    /// from the outbox.
    pub(super) fn item_done(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }

    /// From now on producers may write to this WebSocket directly.
    pub(super) fn attach_ws(&self, out: WsOut) -> &WsOut {
        let _ = self.ws.set(out);
        self.ws.get().expect("just set")
    }

    /// The count `WsOut` checks before a direct write.
    pub(super) fn queued(&self) -> &AtomicUsize {
        &self.queued
    }

    /// The transport currently serving the session.
    pub fn transport(&self) -> Transport {
        if self.transport.load(Ordering::Acquire) == Transport::Websocket as u8 {
            Transport::Websocket
        } else {
            Transport::Polling
        }
    }

    pub(super) fn set_transport(&self, transport: Transport) {
        self.transport.store(transport as u8, Ordering::Release);
    }

    /// Marks that the layer above has established itself (a namespace was joined), so the
    /// connect timeout no longer applies.
    pub fn set_established(&self) {
        self.established.store(true, Ordering::Release);
    }

    pub(super) fn is_established(&self) -> bool {
        self.established.load(Ordering::Acquire)
    }

    /// Records the `Origin` the session was opened from.
    pub(super) fn set_origin(&self, origin: Option<&HeaderValue>) {
        if let Some(origin) = origin {
            let _ = self.origin.set(origin.clone());
        }
    }

    /// Whether the session was opened from this browser `Origin`.
    pub(super) fn opened_from(&self, origin: Option<&HeaderValue>) -> bool {
        origin.is_some() && self.origin.get() == origin
    }

    /// Ends the session. The first reason given wins; later calls do nothing.
    pub fn close(&self, reason: CloseReason) {
        if self.close_reason.set(reason).is_ok() {
            self.closing.cancel();
        }
    }

    /// Takes the next queued item without waiting, when no transport is draining the
    /// session (in-process benchmarks and tests).
    pub fn try_recv(&self) -> Option<Outbound> {
        let item = self.outbox.try_drain()?.try_pop()?;
        self.item_done();
        Some(item)
    }

    /// Whether the session has been closed.
    pub fn is_closed(&self) -> bool {
        // The reason is set before the token is cancelled; reading it is one atomic load.
        self.close_reason.get().is_some()
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason.get().copied()
    }

    /// Completes when the session is closed.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn closed(&self) {
        self.closing.cancelled().await
    }
}
