//! Socket.IO on top of Engine.IO sessions: namespace connects (checked by `[auth]`, see
//! [`connect`]), sockets, events from clients (handed to the [`SocketObserver`], the
//! backend hooks, or counted and dropped) and acknowledgements.
//!
//! Each Engine.IO session carries a [`Client`]: its sockets (one per joined namespace),
//! its parser and a packet waiting for its binary attachments. Sockets are registered in
//! the adapter's rooms index, through which the admin API reaches them.
//!
//! Engine.IO v3 sessions speak Socket.IO v4 (socket.io-client 2.x): they are connected
//! to `/` as soon as they open (a connect checked like any other), and each socket's id is
//! the session's id, as the client computes it. The parser (JSON or msgpack) is whatever
//! the client's first packet is written in: a binary message that opens a msgpack map
//! means msgpack.

pub mod codec;
mod connect;
pub mod msgpack;
pub mod namespace;
pub mod observer;
pub mod packet;
pub mod recovery;
pub mod socket;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use prometheus::IntCounter;
use serde_json::Value;

use self::connect::{Held, PendingConnect};
use self::namespace::NamespacePolicy;
use self::observer::{ClientEvent, DisconnectReason, SocketObserver};
use self::packet::{Args, Packet, PacketType, Parser};
use self::recovery::{Recovery, SavedSession};
use self::socket::Socket;
use crate::adapter::local::LocalAdapter;
use crate::auth::Auth;
use crate::config::Transport;
use crate::engine::packet::Version;
use crate::engine::sid::Sid;
use crate::engine::{CloseReason, EngineHandler, Handshake, Message, Session};
use crate::metrics::Metrics;

/// The Socket.IO layer: the engine's handler.
pub struct SocketIo {
    shared: Arc<Shared>,
}

/// What every socket of this relay shares.
pub(crate) struct Shared {
    adapter: Arc<LocalAdapter>,
    /// Replaced on reload; read once per namespace connect.
    namespaces: RwLock<NamespacePolicy>,
    metrics: Metrics,
    packets_in: [IntCounter; 7],
    packets_out: [IntCounter; 7],
    client_events_dropped: IntCounter,
    /// `None`: `[auth] mode = "none"`, everyone is accepted.
    auth: Option<Arc<Auth>>,
    /// Packets dropped because too many waited for a connect being checked.
    auth_pending_dropped: IntCounter,
    /// Connection state recovery, when enabled (set once at start).
    recovery: OnceLock<Recovery>,
    /// Set once at start when something listens (the hooks).
    observer: OnceLock<Arc<dyn SocketObserver>>,
}

impl Shared {
    pub(crate) fn count_out(&self, kind: PacketType, n: u64) {
        self.packets_out[kind as usize].inc_by(n);
    }

    /// Tells the observer about a socket that connected (or was recovered).
    fn announce(&self, socket: &Arc<Socket>) {
        if let Some(observer) = self.observer.get() {
            observer.on_connect(socket);
        }
    }

    fn socket_gone(&self, socket: &Arc<Socket>, reason: DisconnectReason) {
        self.metrics
            .sockets
            .with_label_values(&[&socket.metric_namespace, socket.gauge_transport().as_str()])
            .dec();
        if let Some(observer) = self.observer.get() {
            observer.on_disconnect(socket, reason);
        }
    }
}

impl SocketIo {
    /// The Socket.IO layer over `adapter`, allowing `namespaces`.
    pub fn new(adapter: Arc<LocalAdapter>, namespaces: &[String], metrics: Metrics) -> Self {
        let by_type = |direction: &str| {
            PacketType::ALL.map(|kind| {
                metrics
                    .packets
                    .with_label_values(&[direction, kind.as_str()])
            })
        };
        let shared = Shared {
            adapter,
            namespaces: RwLock::new(NamespacePolicy::new(namespaces)),
            packets_in: by_type("in"),
            packets_out: by_type("out"),
            client_events_dropped: metrics.dropped.with_label_values(&["client_event"]),
            auth: None,
            auth_pending_dropped: metrics.dropped.with_label_values(&["auth_pending"]),
            metrics,
            recovery: OnceLock::new(),
            observer: OnceLock::new(),
        };
        SocketIo {
            shared: Arc::new(shared),
        }
    }

    /// Checks every namespace connect with `auth`. Call before any session opens.
    pub fn with_auth(mut self, auth: Option<Arc<Auth>>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("set before the layer is shared")
            .auth = auth;
        self
    }

    /// Turns connection state recovery on, keeping sessions in `recovery`'s store. Call
    /// before serving; only the first call counts.
    pub fn enable_recovery(&self, recovery: Recovery) {
        let _ = self.shared.recovery.set(recovery);
    }

    /// Tells `observer` about every socket from now on; a second observer is ignored.
    pub fn set_observer(&self, observer: Arc<dyn SocketObserver>) {
        let _ = self.shared.observer.set(observer);
    }

    /// Replaces the namespace allowlist for connects from now on.
    pub fn set_namespaces(&self, namespaces: &[String]) {
        *self
            .shared
            .namespaces
            .write()
            .expect("policy lock poisoned") = NamespacePolicy::new(namespaces);
    }
}

/// A packet waiting for its binary attachments.
struct Partial {
    packet: Packet,
    attachments: Vec<Bytes>,
}

#[derive(Default)]
struct ClientState {
    sockets: Vec<Arc<Socket>>,
    partial: Option<Partial>,
    /// Namespace connects still being checked (authentication) or recovered.
    pending: Vec<PendingConnect>,
    closed: bool,
}

/// The Socket.IO state of one Engine.IO session.
///
/// Lock order: this state's lock, then the adapter's; never the other way round.
#[derive(Default)]
pub struct Client {
    state: Mutex<ClientState>,
    /// What authentication kept of the opening request; `None` without `[auth]`.
    handshake: Option<Box<crate::auth::Handshake>>,
    /// 0 until the first packet tells, then 1 + [`Parser`] as a number.
    parser: AtomicU8,
}

impl Client {
    /// The client's parser, once its first packet told.
    pub fn parser(&self) -> Option<Parser> {
        match self.parser.load(Ordering::Acquire) {
            1 => Some(Parser::Json),
            2 => Some(Parser::Msgpack),
            _ => None,
        }
    }

    /// The client's parser; `parser` from now on if none was set yet.
    fn parser_or(&self, parser: Parser) -> Parser {
        let code = match parser {
            Parser::Json => 1,
            Parser::Msgpack => 2,
        };
        match self
            .parser
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => parser,
            Err(_) => self.parser().unwrap_or(parser),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientState> {
        self.state.lock().expect("client lock poisoned")
    }

    fn socket(&self, namespace: &str) -> Option<Arc<Socket>> {
        self.lock()
            .sockets
            .iter()
            .find(|s| &*s.namespace == namespace)
            .cloned()
    }

    /// The sids of this client's sockets, one per joined namespace.
    pub fn sids(&self) -> Vec<Sid> {
        self.lock().sockets.iter().map(|s| s.sid).collect()
    }

    /// Removes a socket from the client; `true` when it was there.
    fn forget(&self, sid: &Sid) -> bool {
        let mut state = self.lock();
        let before = state.sockets.len();
        state.sockets.retain(|s| s.sid != *sid);
        state.sockets.len() != before
    }
}

impl EngineHandler for SocketIo {
    type Data = Client;

    fn new_session_data(&self, handshake: &Handshake<'_>) -> Client {
        Client {
            state: Mutex::default(),
            parser: AtomicU8::new(0),
            handshake: self
                .shared
                .auth
                .as_ref()
                .map(|a| Box::new(a.keep(handshake))),
        }
    }

    fn on_open(&self, session: &Arc<Session<Client>>) {
        if session.version != Version::V3 {
            return;
        }
        // Socket.IO v4: the server connects `/` unasked (when clients may join it).
        session.data.parser_or(Parser::Json);
        if self.policy().allows("/").is_some() {
            let root = Packet {
                kind: PacketType::Connect,
                namespace: "/".to_owned(),
                id: None,
                data: None,
                attachments: 0,
            };
            self.on_connect(session, root);
        }
    }

    fn on_message(&self, session: &Arc<Session<Client>>, message: Message) {
        let outcome = match message {
            Message::Text(text) => match session.data.parser_or(Parser::Json) {
                Parser::Json => self.on_text(session, &text),
                Parser::Msgpack => Err(ClientError::TextFromMsgpack),
            },
            Message::Binary(bytes) => match session.data.parser() {
                Some(Parser::Json) => self.on_binary(session, bytes),
                Some(Parser::Msgpack) => self.on_msgpack(session, &bytes),
                None if session.version == Version::V4 && msgpack::looks_like_packet(&bytes) => {
                    session.data.parser_or(Parser::Msgpack);
                    self.on_msgpack(session, &bytes)
                }
                None => Err(ClientError::UnexpectedAttachment),
            },
        };
        if let Err(error) = outcome {
            tracing::debug!(sid = %session.id, %error, "closing session after a bad packet");
            session.close(CloseReason::ParseError);
        }
    }

    fn on_upgrade(&self, session: &Arc<Session<Client>>) {
        let state = session.data.lock();
        for socket in &state.sockets {
            if let Some(from) = socket.set_gauge_transport(Transport::Websocket) {
                let gauge = &self.shared.metrics.sockets;
                gauge
                    .with_label_values(&[&socket.metric_namespace, from.as_str()])
                    .dec();
                gauge
                    .with_label_values(&[&socket.metric_namespace, "websocket"])
                    .inc();
            }
        }
    }

    fn on_close(&self, session: &Arc<Session<Client>>, reason: CloseReason) {
        let mut state = session.data.lock();
        state.closed = true;
        state.partial = None;
        state.pending.clear();
        let recovery = self
            .shared
            .recovery
            .get()
            .filter(|_| recovery::recoverable(reason));
        for socket in std::mem::take(&mut state.sockets) {
            let rooms = self.shared.adapter.remove(&socket);
            if socket.detach() {
                self.shared
                    .socket_gone(&socket, DisconnectReason::Session(reason));
                if let (Some(recovery), Some(pid)) = (recovery, socket.pid) {
                    let rooms = rooms.iter().map(|r| r.to_string()).collect();
                    let saved = SavedSession {
                        sid: socket.sid,
                        rooms,
                        user: socket.user().map(str::to_owned),
                    };
                    recovery.store.persist(&socket.namespace, pid, saved);
                }
            }
        }
    }
}

/// Why a client's packet was refused.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error(transparent)]
    Packet(#[from] packet::PacketError),
    #[error("binary attachment without a packet announcing it")]
    UnexpectedAttachment,
    #[error("a new packet while attachments were still due")]
    AttachmentsMissing,
    #[error("text that is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Msgpack(#[from] msgpack::MsgpackError),
    #[error("a text message from a msgpack client")]
    TextFromMsgpack,
}

impl SocketIo {
    fn policy(&self) -> std::sync::RwLockReadGuard<'_, NamespacePolicy> {
        self.shared.namespaces.read().expect("policy lock poisoned")
    }

    fn on_msgpack(&self, session: &Arc<Session<Client>>, bytes: &[u8]) -> Result<(), ClientError> {
        let (packet, attachments) = msgpack::decode(bytes)?;
        self.shared.packets_in[packet.kind as usize].inc();
        self.on_packet(session, packet, attachments);
        Ok(())
    }

    fn on_text(&self, session: &Arc<Session<Client>>, text: &Bytes) -> Result<(), ClientError> {
        let text = std::str::from_utf8(text).map_err(|_| ClientError::NotUtf8)?;
        let packet = packet::decode(text)?;
        self.shared.packets_in[packet.kind as usize].inc();
        if packet.attachments > 0 {
            let mut state = session.data.lock();
            if state.partial.is_some() {
                return Err(ClientError::AttachmentsMissing);
            }
            state.partial = Some(Partial {
                attachments: Vec::with_capacity(packet.attachments),
                packet,
            });
            return Ok(());
        }
        if session.data.lock().partial.is_some() {
            return Err(ClientError::AttachmentsMissing);
        }
        self.on_packet(session, packet, Vec::new());
        Ok(())
    }

    fn on_binary(&self, session: &Arc<Session<Client>>, bytes: Bytes) -> Result<(), ClientError> {
        let complete = {
            let mut state = session.data.lock();
            let partial = state
                .partial
                .as_mut()
                .ok_or(ClientError::UnexpectedAttachment)?;
            partial.attachments.push(bytes);
            if partial.attachments.len() == partial.packet.attachments {
                state.partial.take()
            } else {
                None
            }
        };
        if let Some(Partial {
            packet,
            attachments,
        }) = complete
        {
            self.on_packet(session, packet, attachments);
        }
        Ok(())
    }

    fn on_packet(&self, session: &Arc<Session<Client>>, packet: Packet, attachments: Vec<Bytes>) {
        if packet.kind == PacketType::Connect {
            return self.on_connect(session, packet);
        }
        if let Held::No(packet, attachments) = self.hold(session, packet, attachments) {
            self.dispatch(session, packet, attachments);
        }
    }

    /// Handles a packet of a namespace with no connect pending.
    fn dispatch(&self, session: &Arc<Session<Client>>, packet: Packet, attachments: Vec<Bytes>) {
        match packet.kind {
            PacketType::Connect => self.on_connect(session, packet),
            PacketType::Disconnect => {
                let mut state = session.data.lock();
                let index = state
                    .sockets
                    .iter()
                    .position(|s| *s.namespace == *packet.namespace);
                if let Some(socket) = index.map(|i| state.sockets.swap_remove(i)) {
                    self.shared.adapter.remove(&socket);
                    if socket.detach() {
                        self.shared
                            .socket_gone(&socket, DisconnectReason::ClientNamespaceDisconnect);
                    }
                }
            }
            PacketType::Event | PacketType::BinaryEvent => {
                self.on_event(session, packet, attachments);
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let (Some(id), Some(Value::Array(values))) = (packet.id, packet.data) else {
                    return;
                };
                if let Some(socket) = session.data.socket(&packet.namespace) {
                    socket.resolve_ack(
                        id,
                        Args {
                            values,
                            attachments,
                        },
                    );
                }
            }
            // Refused by the decoder.
            PacketType::ConnectError => {}
        }
    }

    /// A client's event goes to the observer; with none, or one that does not take it, it
    /// is counted and dropped, and a client asking for an ack gets none, as from a server
    /// with no handler.
    fn on_event(&self, session: &Arc<Session<Client>>, packet: Packet, attachments: Vec<Bytes>) {
        let taken = match (self.shared.observer.get(), packet.data) {
            (Some(observer), Some(Value::Array(mut values))) => {
                let socket = session.data.socket(&packet.namespace);
                // The decoder checked that the first value is the event name.
                match (socket, values.is_empty()) {
                    (Some(socket), false) => match values.remove(0) {
                        Value::String(event) => observer.on_event(
                            &socket,
                            ClientEvent {
                                event,
                                args: Args {
                                    values,
                                    attachments,
                                },
                                ack_id: packet.id,
                            },
                        ),
                        _ => false,
                    },
                    _ => false,
                }
            }
            _ => false,
        };
        if !taken {
            self.shared.client_events_dropped.inc();
        }
    }
}
