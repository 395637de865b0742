//! Namespace connects: the allowlist, authentication, the socket's creation with its rooms,
//! and the CONNECT or CONNECT_ERROR answer.
//!
//! A check that needs I/O (an auth webhook, a key-set fetch) runs on a task of its own, so
//! the session's other namespaces and every other client go on meanwhile. Packets the
//! client sends to that namespace before the check ends wait, in order, in the pending
//! connect (at most [`MAX_QUEUED`]; more are dropped and counted as `auth_pending`), and
//! are handled right after the socket is created, before anything that arrives later.
//! Refused, they are dropped. A second CONNECT to a namespace whose check is running is
//! ignored, as the reference server ignores a CONNECT it is already handling.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::packet::{
    Packet, PacketType, encode_connect, encode_connect_error, encode_connect_refusal,
};
use super::socket::{Identity, Socket};
use super::{Client, SocketIo};
use crate::auth::{Check, Grant, Handshake, Refusal, Request};
use crate::engine::Session;

/// The most packets held for one namespace while its connect is checked.
pub const MAX_QUEUED: usize = 64;

/// A namespace connect whose check is running, and the packets waiting for it.
pub(super) struct PendingConnect {
    namespace: Arc<str>,
    queued: VecDeque<(Packet, Vec<Bytes>)>,
}

/// What [`SocketIo::hold`] did with a packet.
pub(super) enum Held {
    /// Queued behind a pending connect (or dropped, the queue being full).
    Yes,
    /// No connect pending for its namespace: handle it now.
    No(Packet, Vec<Bytes>),
}

impl SocketIo {
    /// Queues a packet for a namespace whose connect is still being checked.
    pub(super) fn hold(
        &self,
        session: &Session<Client>,
        packet: Packet,
        attachments: Vec<Bytes>,
    ) -> Held {
        let mut state = session.data.lock();
        let Some(pending) = state
            .pending
            .iter_mut()
            .find(|p| *p.namespace == *packet.namespace)
        else {
            return Held::No(packet, attachments);
        };
        if pending.queued.len() >= MAX_QUEUED {
            self.shared.auth_pending_dropped.inc();
        } else {
            pending.queued.push_back((packet, attachments));
        }
        Held::Yes
    }

    pub(super) fn on_connect(&self, session: &Arc<Session<Client>>, packet: Packet) {
        let namespace: Arc<str> = Arc::from(packet.namespace.as_str());
        let allowed = self
            .shared
            .namespaces
            .read()
            .expect("policy lock poisoned")
            .allows(&namespace);
        let Some(metric_namespace) = allowed else {
            let _ = session.send(encode_connect_error(&namespace, "Invalid namespace"));
            self.shared.count_out(PacketType::ConnectError, 1);
            return;
        };
        {
            let state = session.data.lock();
            if state.closed || state.pending.iter().any(|p| p.namespace == namespace) {
                return;
            }
            // A repeated connect gets the same socket back, without a new check.
            if let Some(existing) = state.sockets.iter().find(|s| s.namespace == namespace) {
                let existing = existing.clone();
                drop(state);
                existing.send(&encode_connect(&namespace, existing.sid.as_str()));
                self.shared.count_out(PacketType::Connect, 1);
                return;
            }
        }
        let payload = packet.data.unwrap_or(Value::Null);
        let Some(auth) = &self.shared.auth else {
            self.accept(
                session,
                namespace,
                metric_namespace,
                payload,
                Grant::default(),
            );
            return;
        };
        let empty = Handshake::default();
        let request = Request {
            namespace: &namespace,
            auth: &payload,
            handshake: session.data.handshake.as_deref().unwrap_or(&empty),
            address: session.remote,
        };
        match auth.check(&request) {
            Check::Ready(Ok(grant)) => {
                self.accept(session, namespace, metric_namespace, payload, grant)
            }
            Check::Ready(Err(refusal)) => self.refuse(session, &namespace, &refusal),
            Check::Pending(check) => {
                session.data.lock().pending.push(PendingConnect {
                    namespace: namespace.clone(),
                    queued: VecDeque::new(),
                });
                let this = SocketIo {
                    shared: self.shared.clone(),
                };
                let session = session.clone();
                tokio::spawn(async move {
                    let outcome = tokio::select! {
                        outcome = check => outcome,
                        // Closed meanwhile: `on_close` dropped the pending connect.
                        _ = session.closed() => return,
                    };
                    match outcome {
                        Ok(grant) => {
                            this.accept(
                                &session,
                                namespace.clone(),
                                metric_namespace,
                                payload,
                                grant,
                            );
                            this.drain(&session, &namespace);
                        }
                        Err(refusal) => {
                            this.forget_pending(&session, &namespace);
                            this.refuse(&session, &namespace, &refusal);
                        }
                    }
                });
            }
        }
    }

    /// Creates the socket, in its user's room and granted rooms, and answers CONNECT.
    fn accept(
        &self,
        session: &Arc<Session<Client>>,
        namespace: Arc<str>,
        metric_namespace: Arc<str>,
        payload: Value,
        grant: Grant,
    ) {
        let mut rooms = grant.rooms;
        if let (Some(user), Some(auth)) = (&grant.user, &self.shared.auth) {
            rooms.push(auth.user_room(user));
        }
        let identity = Identity {
            user: grant.user.map(Arc::from),
            data: grant.data,
        };
        let mut state = session.data.lock();
        if state.closed {
            return;
        }
        let socket = Arc::new(Socket::new(
            namespace.clone(),
            session.clone(),
            payload,
            identity,
            self.shared.clone(),
            metric_namespace,
        ));
        socket.set_gauge_transport(session.transport());
        self.shared
            .metrics
            .sockets
            .with_label_values(&[&socket.metric_namespace, socket.gauge_transport().as_str()])
            .inc();
        state.sockets.push(socket.clone());
        self.shared.adapter.add_in_rooms(socket.clone(), &rooms);
        session.set_established();
        drop(state);
        socket.send(&encode_connect(&namespace, socket.sid.as_str()));
        self.shared.count_out(PacketType::Connect, 1);
    }

    fn refuse(&self, session: &Session<Client>, namespace: &str, refusal: &Refusal) {
        tracing::debug!(
            sid = %session.id,
            namespace,
            code = refusal.code.as_str(),
            detail = %refusal.detail,
            "connect refused"
        );
        let _ = session.send(encode_connect_refusal(namespace, &refusal.payload()));
        self.shared.count_out(PacketType::ConnectError, 1);
    }

    /// Handles the packets that waited for the socket, in order; packets arriving
    /// meanwhile queue behind them until the queue is empty and the pending connect goes.
    fn drain(&self, session: &Arc<Session<Client>>, namespace: &str) {
        loop {
            let batch = {
                let mut state = session.data.lock();
                let Some(index) = state
                    .pending
                    .iter()
                    .position(|p| &*p.namespace == namespace)
                else {
                    return;
                };
                if state.pending[index].queued.is_empty() {
                    state.pending.swap_remove(index);
                    return;
                }
                std::mem::take(&mut state.pending[index].queued)
            };
            for (packet, attachments) in batch {
                self.dispatch(session, packet, attachments);
            }
        }
    }

    fn forget_pending(&self, session: &Session<Client>, namespace: &str) {
        let mut state = session.data.lock();
        state.pending.retain(|p| &*p.namespace != namespace);
    }
}
