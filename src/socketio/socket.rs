//! A Socket.IO socket: one client's connection to one namespace. This is what the
//! adapter's rooms index stores and sends to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::mpsc;

use super::codec::Codec;
use super::observer::DisconnectReason;
use super::packet::{Args, EventPacket, PacketType, Parser};
use super::recovery::Offset;
use super::{Client, Shared};
use crate::config::Transport;
use crate::engine::sid::Sid;
use crate::engine::{Outbound, Session};

/// Where a socket's acknowledgement goes: the collector of one acknowledged emit.
pub type AckSender = mpsc::UnboundedSender<(Sid, Args)>;

/// Who a socket's client is, as authentication established it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The user (a token's `sub`, a webhook's `user`).
    pub user: Option<Arc<str>>,
    /// Data attached to the socket (a JSON object).
    pub data: Option<Value>,
}

/// Live deliveries held during a recovery, each with its offset if it has one.
type Held = Vec<(Option<Offset>, Outbound)>;

/// One client's connection to one namespace.
pub struct Socket {
    /// The socket id (`socket.id` in the JS client).
    pub sid: Sid,
    /// The namespace.
    pub namespace: Arc<str>,
    /// How this client's packets are written.
    pub(super) codec: Codec,
    session: Arc<Session<Client>>,
    /// Who the client is, as authentication found (`sub` of its token, or the webhook's
    /// `user`); `None` without authentication.
    user: Option<Arc<str>>,
    /// What authentication attached to the socket (a JSON object), shown in listings.
    /// Boxed, and `None` when empty: a `Value` inline is 80 bytes in every socket.
    data: Option<Box<Value>>,
    connected_at: SystemTime,
    /// Acks awaited from this client, by ack id. Usually empty; touched only by
    /// acknowledged emits and the client's answers, never by plain delivery.
    acks: Mutex<Vec<(u64, AckSender)>>,
    attached: AtomicBool,
    /// The transport this socket is counted under in `sio_relay_sockets`.
    gauge_transport: AtomicU8,
    pub(super) shared: Arc<Shared>,
    pub(super) metric_namespace: Arc<str>,
    /// The private id that recovers this socket (only with `[recovery] enabled`).
    pub(super) pid: Option<Sid>,
    /// Set while a recovery replays missed events: live deliveries wait in `held`.
    /// Checked once per delivery; never set without recovery.
    holding: AtomicBool,
    held: Mutex<Option<Held>>,
    /// The newest offset a recovery's replay covered: a live delivery of an event at or
    /// before it (one logged before the replay read the log, published after) is a repeat.
    replayed_to: OnceLock<Offset>,
}

impl Socket {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        sid: Sid,
        codec: Codec,
        namespace: Arc<str>,
        session: Arc<Session<Client>>,
        identity: Identity,
        shared: Arc<Shared>,
        metric_namespace: Arc<str>,
        pid: Option<Sid>,
        holding: bool,
    ) -> Self {
        Socket {
            sid,
            namespace,
            codec,
            session,
            user: identity.user,
            data: identity.data.map(Box::new),
            connected_at: SystemTime::now(),
            acks: Mutex::new(Vec::new()),
            attached: AtomicBool::new(true),
            gauge_transport: AtomicU8::new(Transport::Polling as u8),
            shared,
            metric_namespace,
            pid,
            holding: AtomicBool::new(holding),
            held: Mutex::new(holding.then(Vec::new)),
            replayed_to: OnceLock::new(),
        }
    }

    /// Queues an encoded packet for this client. `false` when it was not queued (the
    /// session closed, or its queue was full and the slow-client policy applied).
    pub fn send(&self, packet: &Outbound) -> bool {
        self.hold_or_send(packet, None)
    }

    /// Queues an event, in this client's parser, that carries `offset` as its last argument
    /// if it has one: while a recovery replays, the offset tells whether the replay already
    /// covered it. Same as [`Self::send`] otherwise.
    pub fn deliver(&self, event: &EventPacket, offset: Option<Offset>) -> bool {
        self.hold_or_send(event.encoded(self.codec.parser), offset)
    }

    fn hold_or_send(&self, packet: &Outbound, offset: Option<Offset>) -> bool {
        if let (Some(offset), Some(covered)) = (offset, self.replayed_to.get())
            && offset <= *covered
        {
            return true;
        }
        if self.holding.load(Ordering::Acquire) {
            let mut held = self.held.lock().expect("held lock poisoned");
            if let Some(held) = held.as_mut() {
                held.push((offset, packet.clone()));
                return true;
            }
        }
        self.send_now(packet)
    }

    /// Sends past the hold: the CONNECT answer and replayed events of a recovery.
    pub(super) fn send_now(&self, packet: &Outbound) -> bool {
        self.session.send(packet.clone()).is_ok()
    }

    /// The client's parser.
    pub fn parser(&self) -> Parser {
        self.codec.parser
    }

    /// The client's Engine.IO version (3 or 4).
    pub fn eio(&self) -> u8 {
        self.session.version.number()
    }

    /// Ends a recovery's hold: sends what was held, in order, except the events at or
    /// before `covered` (the replay sent them).
    pub(super) fn release_hold(&self, covered: Option<Offset>) {
        if let Some(covered) = covered {
            let _ = self.replayed_to.set(covered);
        }
        let mut held = self.held.lock().expect("held lock poisoned");
        for (offset, packet) in held.take().into_iter().flatten() {
            if offset.is_some_and(|o| covered.is_some_and(|c| o <= c)) {
                continue;
            }
            self.send_now(&packet);
        }
        // Under the lock: a delivery that still sees `holding` waits for it, then sends
        // after everything held.
        self.holding.store(false, Ordering::Release);
    }

    /// Gives up a socket whose recovery failed, before its CONNECT answer: it leaves the
    /// index and the client, silently (the client is answered by a fresh socket).
    pub(super) fn abandon(&self) {
        self.shared.adapter.remove(self);
        if self.session.data.forget(&self.sid) && self.detach() {
            // Never announced to the observer: only the gauge knew of it.
            self.shared
                .metrics
                .sockets
                .with_label_values(&[&self.metric_namespace, self.gauge_transport().as_str()])
                .dec();
        }
    }

    /// The transport the client uses now.
    pub fn transport(&self) -> Transport {
        self.session.transport()
    }

    /// The client's address.
    pub fn address(&self) -> SocketAddr {
        self.session.remote
    }

    /// When the socket connected.
    pub fn connected_at(&self) -> SystemTime {
        self.connected_at
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The data authentication attached to the socket (a JSON object), if any.
    pub fn data(&self) -> Option<&Value> {
        self.data.as_deref()
    }

    /// Answers the client's event `id` with `args`; `false` when it could not be queued.
    pub fn send_ack(&self, id: u64, args: &Args) -> bool {
        let kind = if args.attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        let sent = self.send(&self.codec.ack(&self.namespace, id, args));
        if sent {
            self.shared.count_out(kind, 1);
        }
        sent
    }

    /// Whether the socket is still connected to its namespace.
    pub fn is_connected(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }

    /// Registers interest in the client's answer to ack id `id`. Call before sending.
    pub fn expect_ack(&self, id: u64, to: AckSender) {
        self.acks.lock().expect("acks lock poisoned").push((id, to));
    }

    /// Forgets an ack that is no longer awaited.
    pub fn cancel_ack(&self, id: u64) {
        self.acks
            .lock()
            .expect("acks lock poisoned")
            .retain(|(pending, _)| *pending != id);
    }

    /// Delivers the client's answer to ack `id`, if it is awaited.
    pub(super) fn resolve_ack(&self, id: u64, args: Args) {
        let sender = {
            let mut acks = self.acks.lock().expect("acks lock poisoned");
            let index = acks.iter().position(|(pending, _)| *pending == id);
            index.map(|i| acks.swap_remove(i).1)
        };
        if let Some(sender) = sender {
            let _ = sender.send((self.sid, args));
        }
    }

    /// Marks the socket gone; `true` for the first caller only, who does the clean-up.
    pub(super) fn detach(&self) -> bool {
        if self.attached.swap(false, Ordering::AcqRel) {
            self.acks.lock().expect("acks lock poisoned").clear();
            true
        } else {
            false
        }
    }

    /// Moves the socket's gauge count to `to`; returns the transport it was counted
    /// under when that changed.
    pub(super) fn set_gauge_transport(&self, to: Transport) -> Option<Transport> {
        let previous = self.gauge_transport.swap(to as u8, Ordering::AcqRel);
        (previous != to as u8).then_some(if previous == Transport::Websocket as u8 {
            Transport::Websocket
        } else {
            Transport::Polling
        })
    }

    /// The transport the socket is counted under.
    pub(super) fn gauge_transport(&self) -> Transport {
        if self.gauge_transport.load(Ordering::Acquire) == Transport::Websocket as u8 {
            Transport::Websocket
        } else {
            Transport::Polling
        }
    }

    /// The server ends this socket's namespace connection, after the adapter removed it
    /// from its index: the client gets a DISCONNECT packet ("io server disconnect") and
    /// does not reconnect by itself.
    pub fn disconnect_by_server(self: &Arc<Self>) {
        if self.session.data.forget(&self.sid) && self.detach() {
            self.shared
                .socket_gone(self, DisconnectReason::ServerNamespaceDisconnect);
            let _ = self.session.send(self.codec.disconnect(&self.namespace));
            self.shared.count_out(PacketType::Disconnect, 1);
        }
    }
}
