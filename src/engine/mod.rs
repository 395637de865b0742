//! Engine.IO v4 and v3: sessions over WebSocket and HTTP long-polling. Knows nothing of
//! namespaces or events: it hands text and binary messages to an [`EngineHandler`] and
//! sends what is queued in each session's outbox.
//!
//! A session lives as long as its supervisor, which sends heartbeats, enforces the
//! connect timeout ([`heartbeat`]) and, whatever ends the session, removes it from the
//! table and tells the handler exactly once ([`Engine::retire`]). The supervisor of a
//! polling session is a task of its own; a session born on WebSocket is supervised by its
//! transport task. A polling session the relay closed on purpose owes its client the
//! close packet (see [`close_packet`]).

pub mod admission;
mod close_packet;
pub mod handshake;
mod heartbeat;
mod http;
mod listener;
mod outbox;
pub mod packet;
mod polling;
pub mod session;
pub mod sid;
mod stream;
pub mod v3;
mod websocket;
pub mod ws_read;
mod ws_write;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use prometheus::IntCounter;

use self::admission::{Admission, Permit};
use self::close_packet::OwedClosePackets;
pub use self::handshake::Handshake;
use self::heartbeat::Heartbeat;
pub use self::http::router;
pub use self::listener::serve;
use self::packet::{Frame, Packet, Version};
pub use self::session::{CloseReason, Outbound, SendError, Session};
use self::sid::Sid;
use crate::config::{LimitsConfig, ServerConfig, SlowClientPolicy, Transport};
use crate::metrics::Metrics;

/// The protocol a handshake asked for: the Engine.IO version, and (v3) whether polling
/// answers may use the binary framing (the client did not ask for `b64`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Protocol {
    pub(crate) version: Version,
    pub(crate) polling_binary: bool,
}

impl Protocol {
    /// Engine.IO v4 (whose polling payloads are text whatever `polling_binary` says).
    pub(crate) const V4: Protocol = Protocol {
        version: Version::V4,
        polling_binary: true,
    };
}

/// Who opens a new session: the client's address, its admission, the protocol it asked
/// for and its opening request.
pub(crate) struct Admitted<'a> {
    pub(crate) remote: SocketAddr,
    pub(crate) permit: Permit,
    pub(crate) protocol: Protocol,
    pub(crate) handshake: Handshake<'a>,
}

/// A message for the layer above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (the Engine.IO `4` prefix removed).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

/// The layer above Engine.IO (Socket.IO), told about each session's life.
///
/// Callbacks run on the session's transport tasks and must not block.
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-session state of the layer above.
    type Data: Send + Sync + 'static;

    /// Creates the state for a session being opened by `handshake`, keeping what it needs
    /// of that request.
    fn new_session_data(&self, handshake: &Handshake<'_>) -> Self::Data;

    /// The session is open and its open packet is on its way: what is sent now follows it.
    fn on_open(&self, _session: &Arc<Session<Self::Data>>) {}

    /// A message arrived, in order.
    fn on_message(&self, session: &Arc<Session<Self::Data>>, message: Message);

    /// The session moved from long-polling to WebSocket.
    fn on_upgrade(&self, session: &Arc<Session<Self::Data>>);

    /// The session ended; called exactly once, after which nothing more is delivered.
    fn on_close(&self, session: &Arc<Session<Self::Data>>, reason: CloseReason);
}

/// The Engine.IO server: the session table and the settings transports read.
pub struct Engine<H: EngineHandler> {
    handler: H,
    sessions: RwLock<HashMap<Sid, Arc<Session<H::Data>>>>,
    /// Replaced whole on reload; read once per request or session, never per message.
    settings: RwLock<Arc<ServerConfig>>,
    /// Who may open a session (`[limits]`, trusted proxies).
    admission: Admission,
    /// `limits.max_queued_bytes` and `limits.slow_client` for new sessions.
    queue_limits: RwLock<(u64, SlowClientPolicy)>,
    metrics: Metrics,
    bytes_in: IntCounter,
    bytes_out: IntCounter,
    /// Ended polling sessions whose next GET gets the close packet.
    owed_close: OwedClosePackets,
}

impl<H: EngineHandler> Engine<H> {
    /// A new engine with no sessions.
    pub fn new(handler: H, settings: ServerConfig, metrics: Metrics) -> Arc<Self> {
        let bytes_in = metrics.bytes.with_label_values(&["in"]);
        let bytes_out = metrics.bytes.with_label_values(&["out"]);
        let admission = Admission::new(metrics.clone());
        admission.set_trusted_proxies(&settings.trusted_proxies);
        Arc::new(Engine {
            handler,
            sessions: RwLock::new(HashMap::new()),
            settings: RwLock::new(Arc::new(settings)),
            admission,
            queue_limits: RwLock::new((
                LimitsConfig::default().max_queued_bytes,
                SlowClientPolicy::default(),
            )),
            metrics,
            bytes_in,
            bytes_out,
            owed_close: OwedClosePackets::default(),
        })
    }

    /// The layer above.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<ServerConfig> {
        self.settings
            .read()
            .expect("settings lock poisoned")
            .clone()
    }

    /// Replaces the settings that can change live (origins, limits, timings for new
    /// sessions). Listen address and path changes need a restart.
    pub fn update_settings(&self, settings: ServerConfig) {
        self.admission
            .set_trusted_proxies(&settings.trusted_proxies);
        *self.settings.write().expect("settings lock poisoned") = Arc::new(settings);
    }

    /// Applies `[limits]` to the next handshakes and sessions.
    pub fn set_limits(&self, limits: &LimitsConfig) {
        self.admission.set_limits(limits);
        *self.queue_limits.write().expect("limits lock poisoned") =
            (limits.max_queued_bytes, limits.slow_client);
    }

    /// Who may open a session.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.read().expect("sessions lock poisoned").len()
    }

    /// Closes every session with `reason`.
    pub fn close_all(&self, reason: CloseReason) {
        let sessions: Vec<_> = self
            .sessions
            .read()
            .expect("sessions lock poisoned")
            .values()
            .cloned()
            .collect();
        for session in sessions {
            session.close(reason);
        }
    }

    fn session(&self, sid: &str) -> Option<Arc<Session<H::Data>>> {
        let sid: Sid = sid.parse().ok()?;
        self.sessions
            .read()
            .expect("sessions lock poisoned")
            .get(&sid)
            .cloned()
    }

    /// Opens a session outside the limits and starts its supervisor. In-process benchmarks
    /// and tests call this (with [`Handshake::none`]), then drain the session with
    /// [`Session::try_recv`].
    pub fn open_session(
        self: &Arc<Self>,
        remote: SocketAddr,
        transport: Transport,
        handshake: &Handshake<'_>,
    ) -> Arc<Session<H::Data>> {
        let admitted = Admitted {
            remote,
            permit: Permit::unlimited(),
            protocol: Protocol::V4,
            handshake: *handshake,
        };
        let (session, permit) = self.open_admitted(admitted, transport);
        self.spawn_supervisor(&session, permit);
        session
    }

    /// Opens a session that [`Admission::admit`] let in. Its supervisor, which the caller
    /// starts, holds the permit until the session ends.
    fn open_admitted(
        self: &Arc<Self>,
        admitted: Admitted<'_>,
        transport: Transport,
    ) -> (Arc<Session<H::Data>>, Permit) {
        let Admitted {
            remote,
            permit,
            protocol,
            handshake,
        } = admitted;
        let (max_queued_bytes, slow_client) =
            *self.queue_limits.read().expect("limits lock poisoned");
        let session = Arc::new(Session::new(
            remote,
            protocol.version,
            protocol.polling_binary,
            transport,
            self.handler.new_session_data(&handshake),
            usize::try_from(max_queued_bytes).unwrap_or(usize::MAX),
            slow_client,
            &self.metrics,
        ));
        self.sessions
            .write()
            .expect("sessions lock poisoned")
            .insert(session.id, session.clone());
        self.metrics.connections.inc();
        (session, permit)
    }

    /// The open packet: `0{"sid",...}` (v3 has no `maxPayload`).
    fn open_packet(&self, session: &Session<H::Data>, settings: &ServerConfig) -> Bytes {
        let upgrades: &[&str] = if session.transport() == Transport::Polling
            && settings.transports.contains(&Transport::Websocket)
        {
            &["websocket"]
        } else {
            &[]
        };
        let mut open = serde_json::json!({
            "sid": session.id.as_str(),
            "upgrades": upgrades,
            "pingInterval": settings.ping_interval_ms,
            "pingTimeout": settings.ping_timeout_ms,
        });
        if session.version == Version::V4 {
            open["maxPayload"] = settings.max_payload_bytes.into();
        }
        let mut text = b"0".to_vec();
        serde_json::to_writer(&mut text, &open).expect("JSON into a Vec cannot fail");
        Bytes::from(text)
    }

    /// Supervises a session on a task of its own for its whole life (heartbeats and the
    /// connect timeout), then retires it, whatever ended it.
    fn spawn_supervisor(self: &Arc<Self>, session: &Arc<Session<H::Data>>, permit: Permit) {
        let heartbeat = Heartbeat::new(&self.settings(), session.version);
        tokio::spawn(self.clone().supervise(session.clone(), heartbeat, permit));
    }

    async fn supervise(
        self: Arc<Self>,
        session: Arc<Session<H::Data>>,
        mut heartbeat: Heartbeat,
        permit: Permit,
    ) {
        let timer = heartbeat.timer();
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                _ = session.closed() => break,
                _ = &mut timer => heartbeat.on_timer(&session, timer.as_mut()),
                _ = session.pong.notified(), if heartbeat.awaits_client() => {
                    heartbeat.on_client(timer.as_mut());
                }
            }
        }
        self.retire(session, permit, heartbeat.patience()).await;
    }

    /// The clean-up after a session ended, once: out of the table, counted, its permit
    /// returned, the handler told. A polling client that may still come back for the close
    /// packet it is owed gets it for `patience`.
    async fn retire(
        self: Arc<Self>,
        session: Arc<Session<H::Data>>,
        permit: Permit,
        patience: Duration,
    ) {
        let reason = session
            .close_reason()
            .unwrap_or(CloseReason::TransportClose);
        // Owed before the session leaves the table, so that no GET finds neither.
        let owes_close = reason.closes_next_poll()
            && if session.transport() == Transport::Polling {
                self.owed_close.owe(session.id)
            } else {
                // Upgraded while a GET took the packet: clear what that GET left.
                self.owed_close.forget(&session.id);
                false
            };
        self.sessions
            .write()
            .expect("sessions lock poisoned")
            .remove(&session.id);
        self.metrics
            .disconnections
            .with_label_values(&[reason.as_str()])
            .inc();
        drop(permit);
        tracing::debug!(sid = %session.id, reason = reason.as_str(), "session closed");
        self.handler.on_close(&session, reason);
        if owes_close {
            // A client that has not polled for a ping interval and timeout has given up on
            // the session by itself. Nothing but the sid is kept meanwhile.
            let sid = session.id;
            drop(session);
            let engine: Weak<Self> = Arc::downgrade(&self);
            drop(self);
            tokio::time::sleep(patience).await;
            if let Some(engine) = engine.upgrade() {
                engine.owed_close.forget(&sid);
            }
        }
    }

    /// Applies one packet from a client, whatever the transport. An error means the
    /// client broke the protocol; the caller closes the session.
    fn on_packet(
        &self,
        session: &Arc<Session<H::Data>>,
        packet: Packet,
    ) -> Result<(), CloseReason> {
        let v3 = session.version == Version::V3;
        if v3 {
            // The client is alive: see `supervise`.
            session.pong.notify_one();
        }
        match packet {
            Packet::Message(text) => self.handler.on_message(session, Message::Text(text)),
            Packet::Binary(bytes) => self.handler.on_message(session, Message::Binary(bytes)),
            Packet::Ping(data) if v3 => {
                let mut pong = Vec::with_capacity(1 + data.len());
                pong.push(b'3');
                pong.extend_from_slice(&data);
                let _ = session.send(Outbound::frame(Frame::Text(Bytes::from(pong))));
            }
            Packet::Pong(_) if v3 => {}
            Packet::Pong(_) => session.pong.notify_one(),
            Packet::Close => session.close(CloseReason::ClientClose),
            Packet::Noop => {}
            // Probes and upgrades are handled by the WebSocket transport before it takes
            // over; anywhere else they, like an open packet, break the protocol.
            Packet::Ping(_) | Packet::Upgrade | Packet::Open => {
                return Err(CloseReason::ParseError);
            }
        }
        Ok(())
    }
}
