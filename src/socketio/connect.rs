//! Namespace connects: the allowlist, authentication, connection state recovery, the
//! socket's creation with its rooms, and the CONNECT or CONNECT_ERROR answer.
//!
//! Every CONNECT is checked by `[auth]`, a recovering one too (Node skips its middlewares
//! on a recovery; here a token that expired meanwhile still refuses the client). A
//! recovery then restores the saved socket only for the same user it was saved for.
//!
//! A check that needs I/O (an auth webhook, a key-set fetch) and a recovery (whose store
//! may be Redis) run on a task of their own, so the session's other namespaces and every
//! other client go on meanwhile. Packets the client sends to that namespace before the
//! socket exists wait, in order, in the pending connect (at most [`MAX_QUEUED`]; more are
//! dropped and counted as `auth_pending`), and are handled right after the socket is
//! created, before anything that arrives later. Refused, they are dropped. A second
//! CONNECT to a namespace whose connect is pending is ignored, as the reference server
//! ignores a CONNECT it is already handling.
//!
//! Every parser and protocol goes through the same steps; only the packets differ (see
//! [`Codec`]). A msgpack client's `auth` payload is decoded like a JSON one's. A Socket.IO
//! v4 client (Engine.IO v3) sends no `auth` payload: the query it may append to a
//! namespace (`/chat?token=…`, socket.io-client 2.x's `query` option) stands for it, as
//! Socket.IO v3 replaced one with the other; its token may also come from the handshake's
//! `Authorization` header or `token` query parameter, in the contract's order. Its `/`,
//! connected unasked when the session opens, is checked like any CONNECT, and a refusal
//! reaches it as Socket.IO v4's error packet, with the same `{"message", "data"}` payload.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::codec::Codec;
use super::packet::{Packet, PacketType, Parser};
use super::recovery::{self, Claim};
use super::socket::{Identity, Socket};
use super::{Client, Shared, SocketIo};
use crate::auth::{Check, Grant, Handshake, Refusal, Request};
use crate::engine::Session;
use crate::engine::packet::Version;
use crate::engine::sid::Sid;

/// The most packets held for one namespace while its connect is pending.
pub const MAX_QUEUED: usize = 64;

/// A namespace connect being checked or recovered, and the packets waiting for it.
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

/// A socket about to join its namespace: who it is and where.
#[derive(Clone)]
pub(super) struct Joining {
    pub namespace: Arc<str>,
    pub metric_namespace: Arc<str>,
    pub identity: Identity,
    /// Rooms it is in from the start (granted ones, its user's, or a recovered socket's),
    /// without its sid room.
    pub rooms: Vec<String>,
}

impl Joining {
    /// A socket that `grant` lets in: the granted rooms and its user's room.
    pub(super) fn granted(
        shared: &Shared,
        namespace: Arc<str>,
        metric_namespace: Arc<str>,
        grant: Grant,
    ) -> Self {
        let mut rooms = grant.rooms;
        if let (Some(user), Some(auth)) = (&grant.user, &shared.auth) {
            let room = auth.user_room(user);
            if !rooms.contains(&room) {
                rooms.push(room);
            }
        }
        Joining {
            namespace,
            metric_namespace,
            identity: Identity {
                user: grant.user.map(Arc::from),
                data: grant.data,
            },
            rooms,
        }
    }
}

/// The ids of a socket being recovered.
pub(super) struct Restored {
    pub sid: Sid,
    pub pid: Sid,
}

impl SocketIo {
    /// Queues a packet for a namespace whose connect is still pending.
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
        let codec = codec_of(session);
        let (namespace, payload) = connect_target(codec, packet.namespace, packet.data);
        let namespace: Arc<str> = Arc::from(namespace);
        let allowed = self.policy().allows(&namespace);
        let Some(metric_namespace) = allowed else {
            let _ = session.send(codec.connect_error(&namespace, "Invalid namespace"));
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
                answer_connect(&self.shared, &existing);
                return;
            }
        }
        let claim = match self.shared.recovery.get() {
            // Socket.IO v4 has no connection state recovery (see `connect_socket`).
            Some(_) if !codec.v4 => Claim::from_auth(Some(&payload)),
            _ => None,
        };
        let check = match &self.shared.auth {
            None => Check::Ready(Ok(Grant::default())),
            Some(auth) => {
                let empty = Handshake::default();
                auth.check(&Request {
                    namespace: &namespace,
                    auth: &payload,
                    handshake: session.data.handshake.as_deref().unwrap_or(&empty),
                    address: session.remote,
                })
            }
        };
        let check = match (check, claim) {
            (Check::Ready(Err(refusal)), _) => return self.refuse(session, &namespace, &refusal),
            (Check::Ready(Ok(grant)), None) => {
                let joining = Joining::granted(&self.shared, namespace, metric_namespace, grant);
                connect_socket(&self.shared, session, joining, None);
                return;
            }
            (check, _) => check,
        };
        // The rest waits for I/O: the check, or the recovery's store.
        session.data.lock().pending.push(PendingConnect {
            namespace: namespace.clone(),
            queued: VecDeque::new(),
        });
        let this = SocketIo {
            shared: self.shared.clone(),
        };
        let session = session.clone();
        tokio::spawn(async move {
            let outcome = match check {
                Check::Ready(outcome) => outcome,
                Check::Pending(check) => tokio::select! {
                    outcome = check => outcome,
                    // Closed meanwhile: `on_close` dropped the pending connect.
                    _ = session.closed() => return,
                },
            };
            let grant = match outcome {
                Ok(grant) => grant,
                Err(refusal) => {
                    this.forget_pending(&session, &namespace);
                    this.refuse(&session, &namespace, &refusal);
                    return;
                }
            };
            let joining =
                Joining::granted(&this.shared, namespace.clone(), metric_namespace, grant);
            match claim {
                Some(claim) => recovery::restore(&this.shared, &session, joining, claim).await,
                None => {
                    connect_socket(&this.shared, &session, joining, None);
                }
            }
            this.drain(&session, &namespace);
        });
    }

    fn refuse(&self, session: &Session<Client>, namespace: &str, refusal: &Refusal) {
        tracing::debug!(
            sid = %session.id,
            namespace,
            code = refusal.code.as_str(),
            detail = %refusal.detail,
            "connect refused"
        );
        let answer = codec_of(session).connect_refusal(namespace, &refusal.payload());
        let _ = session.send(answer);
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

/// How `session`'s packets are written: its parser (JSON until its first packet tells),
/// and Socket.IO v4 for an Engine.IO v3 session.
pub(super) fn codec_of(session: &Session<Client>) -> Codec {
    Codec {
        parser: session.data.parser().unwrap_or(Parser::Json),
        v4: session.version == Version::V3,
    }
}

/// The namespace a CONNECT asks for, and its `auth` payload (`Null` when absent). A
/// Socket.IO v4 client appends its query to the namespace (`/chat?token=…`) and sends no
/// payload: its query, as a JSON object of strings (the first value of each name), is the
/// payload.
fn connect_target(codec: Codec, mut namespace: String, data: Option<Value>) -> (String, Value) {
    let start = match namespace.find('?') {
        Some(start) if codec.v4 => start,
        _ => return (namespace, data.unwrap_or(Value::Null)),
    };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&namespace[start + 1..]).unwrap_or_default();
    namespace.truncate(start);
    let mut query = serde_json::Map::new();
    for (name, value) in pairs {
        query.entry(name).or_insert(Value::String(value));
    }
    (namespace, Value::Object(query))
}

/// Sends a socket's CONNECT answer, with its private id when it has one (recovery).
fn answer_connect(shared: &Shared, socket: &Socket) {
    let pid = socket.pid.as_ref().map(Sid::as_str);
    socket.send_now(
        &socket
            .codec
            .connect(&socket.namespace, socket.sid.as_str(), pid),
    );
    shared.count_out(PacketType::Connect, 1);
}

/// Connects a socket of `session` to its namespace, in its rooms, and answers the CONNECT;
/// a repeated connect gets the same socket back. With `restored`, the socket takes those
/// ids, holds live deliveries and is not answered: the recovery does that, and gets `None`
/// when the namespace is already joined. `None` too when the session has closed.
///
/// A Socket.IO v4 socket (Engine.IO v3) takes the session's id, as the client computes
/// it, and gets no pid: its CONNECT answer has no payload to carry one, so it is never
/// saved for recovery.
pub(super) fn connect_socket(
    shared: &Arc<Shared>,
    session: &Arc<Session<Client>>,
    joining: Joining,
    restored: Option<Restored>,
) -> Option<Arc<Socket>> {
    let recovering = restored.is_some();
    let codec = codec_of(session);
    let mut state = session.data.lock();
    if state.closed {
        return None;
    }
    let mut new = false;
    let socket = match state
        .sockets
        .iter()
        .find(|s| s.namespace == joining.namespace)
    {
        Some(_) if recovering => return None,
        Some(existing) => existing.clone(),
        None => {
            new = true;
            let (sid, pid) = match restored {
                Some(restored) => (restored.sid, Some(restored.pid)),
                None if codec.v4 => (session.id, None),
                None => (Sid::random(), shared.recovery.get().map(|_| Sid::random())),
            };
            let socket = Arc::new(Socket::new(
                sid,
                codec,
                joining.namespace,
                session.clone(),
                joining.identity,
                shared.clone(),
                joining.metric_namespace,
                pid,
                recovering,
            ));
            socket.set_gauge_transport(session.transport());
            shared
                .metrics
                .sockets
                .with_label_values(&[&socket.metric_namespace, socket.gauge_transport().as_str()])
                .inc();
            state.sockets.push(socket.clone());
            shared.adapter.add_in_rooms(socket.clone(), &joining.rooms);
            session.set_established();
            socket
        }
    };
    drop(state);
    if recovering {
        return Some(socket);
    }
    answer_connect(shared, &socket);
    if new {
        shared.announce(&socket);
    }
    Some(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v4_namespace_query_stands_for_the_auth_payload() {
        let v4 = Codec {
            parser: Parser::Json,
            v4: true,
        };
        let v5 = Codec { v4: false, ..v4 };
        assert_eq!(
            connect_target(v4, "/chat?token=a%3Ab&x=1&x=2".into(), None),
            ("/chat".into(), json!({"token": "a:b", "x": "1"}))
        );
        assert_eq!(
            connect_target(v4, "/".into(), None),
            ("/".into(), Value::Null)
        );
        assert_eq!(
            connect_target(v4, "/?".into(), None),
            ("/".into(), json!({}))
        );
        // Socket.IO v5 sends its payload apart: a `?` belongs to the namespace's name.
        let auth = json!({"token": "t"});
        assert_eq!(
            connect_target(v5, "/a?b".into(), Some(auth.clone())),
            ("/a?b".into(), auth)
        );
    }
}
