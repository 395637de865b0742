//! What other nodes and emitters publish, applied to this node: broadcasts delivered to
//! local sockets, requests answered, responses handed to the waiting request, and
//! python-socketio messages mapped onto the same operations.
//!
//! Messages are handled one at a time in arrival order, so a join followed by an emit to
//! the room is applied in that order. Nothing here blocks on other nodes: an ack wait
//! runs in its own task.

use std::sync::Arc;
use std::time::Duration;

use super::wire::node::{
    Broadcast, RelaySocket, RemoteSocket, Request, RequestKind, Response, peek_relay_broadcast,
};
use super::wire::python::{PythonKind, PythonMessage};
use super::wire::{BroadcastChannel, Selector, WireError};
use super::{Inner, Kind};
use crate::adapter::{EmitRequest, Target};
use crate::socketio::packet::is_reserved_event;

/// Messages larger than this are dropped unread.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Handles one pub/sub message.
pub(super) async fn handle(inner: &Arc<Inner>, message: redis::Msg) {
    let payload = message.get_payload_bytes();
    let channel = message.get_channel_name();
    if payload.len() > MAX_MESSAGE_BYTES {
        tracing::warn!(
            channel,
            bytes = payload.len(),
            "cluster: message too large, dropped"
        );
        return;
    }
    let channels = &inner.conns.channels;
    if message.from_pattern() {
        let Ok(pattern) = message.get_pattern::<String>() else {
            return;
        };
        let Some(nsp) = namespace_of(inner, |nsp| channels.broadcast_pattern(nsp) == pattern)
        else {
            return;
        };
        inner.count_message("in", Kind::Broadcast);
        return on_broadcast(inner, &nsp, channel, payload).await;
    }
    if inner.conns.python_channel.as_deref() == Some(channel) {
        inner.count_message("in", Kind::Python);
        return on_python(inner, payload).await;
    }
    if let Some(nsp) = namespace_of(inner, |nsp| channels.request(nsp) == channel) {
        inner.count_message("in", Kind::Request);
        return on_request(inner, &nsp, payload).await;
    }
    if namespace_of(inner, |nsp| {
        channels.response(nsp) == channel
            || channels.specific_response(nsp, &inner.conns.uid) == channel
    })
    .is_some()
    {
        inner.count_message("in", Kind::Response);
        match Response::decode(payload) {
            Ok(response) => inner.deliver(response),
            Err(err) => tracing::debug!(channel, %err, "cluster: undecodable response dropped"),
        }
    }
}

fn namespace_of(inner: &Inner, matches: impl Fn(&str) -> bool) -> Option<String> {
    let namespaces = inner
        .conns
        .namespaces
        .lock()
        .expect("namespaces lock poisoned");
    namespaces.iter().find(|nsp| matches(nsp)).cloned()
}

fn target(nsp: &str, selector: Selector) -> Target {
    Target {
        namespace: nsp.to_owned(),
        to: selector.rooms,
        except: selector.except,
    }
}

/// The one socket a legacy (sid-addressed) request names.
fn sid_target(nsp: &str, sid: String) -> Target {
    Target {
        namespace: nsp.to_owned(),
        to: vec![sid],
        except: Vec::new(),
    }
}

async fn on_broadcast(inner: &Arc<Inner>, nsp: &str, channel: &str, payload: &[u8]) {
    if let Some(BroadcastChannel::Room(room)) = inner.conns.channels.broadcast_room(nsp, channel)
        && !inner.local.has_room(nsp, room)
    {
        // No socket here is in that room: dropped undecoded. A sio-relay sender waits for
        // our count (of zero); its uid and request id are read at their fixed places.
        inner.metrics.cluster_broadcasts_skipped.inc();
        if let Some((uid, request_id)) = peek_relay_broadcast(payload)
            && uid != inner.conns.uid
        {
            let count = Response::Count {
                request_id: request_id.to_owned(),
                count: 0,
            };
            respond_to(inner, nsp, uid, count).await;
        }
        return;
    }
    let broadcast = match Broadcast::decode(payload) {
        Ok(broadcast) => broadcast,
        Err(err) => {
            tracing::debug!(channel, %err, "cluster: undecodable broadcast dropped");
            return;
        }
    };
    if broadcast.uid == inner.conns.uid || broadcast.packet.nsp != nsp {
        return;
    }
    let count = if is_reserved_event(&broadcast.packet.event) {
        tracing::warn!(event = %broadcast.packet.event, "cluster: reserved event name dropped");
        0
    } else {
        let request = EmitRequest {
            target: target(nsp, broadcast.opts.selector),
            event: broadcast.packet.event,
            args: broadcast.packet.args,
            ack_timeout: None,
        };
        inner.local.emit(request).await.recipients
    };
    if let Some(request_id) = broadcast.request_id {
        let count = Response::Count {
            request_id,
            count: count as u64,
        };
        respond_to(inner, nsp, &broadcast.uid, count).await;
    }
}

/// Publishes a response of Node's protocol on the namespace's response channel, where
/// every Node version listens.
async fn respond(inner: &Inner, nsp: &str, response: Response) {
    publish_response(inner, &inner.conns.channels.response(nsp), response).await;
}

/// Publishes a count (a sio-relay extension, read by sio-relay nodes only) on the
/// requester's own response channel, so that no other node receives it.
async fn respond_to(inner: &Inner, nsp: &str, uid: &str, response: Response) {
    let channel = inner.conns.channels.specific_response(nsp, uid);
    publish_response(inner, &channel, response).await;
}

/// Queues a response; it is published in order, without holding up this handler.
async fn publish_response(inner: &Inner, channel: &str, response: Response) {
    match response.encode() {
        Ok(bytes) => {
            let _ = inner.responses.send((channel.to_owned(), bytes));
        }
        Err(err) => tracing::warn!(%err, "cluster: response not encodable"),
    }
}

async fn on_request(inner: &Arc<Inner>, nsp: &str, payload: &[u8]) {
    let request = match Request::decode(payload) {
        Ok(request) => request,
        Err(err) => {
            tracing::debug!(nsp, %err, "cluster: undecodable request dropped");
            return;
        }
    };
    let ours = request.uid.as_deref() == Some(inner.conns.uid.as_str())
        || request
            .kind
            .request_id()
            .is_some_and(|id| inner.is_pending(id));
    if ours {
        // Applied locally when sent.
        return;
    }
    let local = &inner.local;
    let uid = request.uid.as_deref();
    match request.kind {
        RequestKind::Sockets { request_id, rooms } => {
            let target = target(
                nsp,
                Selector {
                    rooms,
                    except: Vec::new(),
                },
            );
            let sockets = local.sockets(&target).into_iter().map(|s| s.sid).collect();
            respond(
                inner,
                nsp,
                Response::SocketIds {
                    request_id,
                    sockets,
                },
            )
            .await;
        }
        RequestKind::AllRooms { request_id } => {
            let mut rooms: Vec<String> = local.rooms(nsp).into_iter().map(|r| r.name).collect();
            let all = target(nsp, Selector::default());
            rooms.extend(local.sockets(&all).into_iter().map(|s| s.sid));
            respond(inner, nsp, Response::Rooms { request_id, rooms }).await;
        }
        RequestKind::Join {
            request_id,
            selector,
            rooms,
        } => {
            let count = local.join(&target(nsp, selector), &rooms);
            answer_count(inner, nsp, uid, request_id, count).await;
        }
        RequestKind::Leave {
            request_id,
            selector,
            rooms,
        } => {
            let count = local.leave(&target(nsp, selector), &rooms);
            answer_count(inner, nsp, uid, request_id, count).await;
        }
        RequestKind::Disconnect {
            request_id,
            selector,
            ..
        } => {
            let count = local.disconnect(&target(nsp, selector));
            answer_count(inner, nsp, uid, request_id, count).await;
        }
        RequestKind::LegacyJoin {
            request_id,
            sid,
            room,
        } => {
            let one = sid_target(nsp, sid);
            if local.join(&one, &[room]) > 0 {
                answer_done(inner, nsp, request_id).await;
            }
        }
        RequestKind::LegacyLeave {
            request_id,
            sid,
            room,
        } => {
            let one = sid_target(nsp, sid);
            if local.leave(&one, &[room]) > 0 {
                answer_done(inner, nsp, request_id).await;
            }
        }
        RequestKind::LegacyDisconnect {
            request_id, sid, ..
        } => {
            let one = sid_target(nsp, sid);
            if local.disconnect(&one) > 0 {
                answer_done(inner, nsp, request_id).await;
            }
        }
        RequestKind::FetchSockets {
            relay_skip: true, ..
        } => {
            // Counts an emit's recipients on Node.js peers; this node was counted through
            // the emit's broadcast.
        }
        RequestKind::FetchSockets {
            request_id,
            selector,
            relay_skip: false,
        } => {
            let sockets = local
                .sockets(&target(nsp, selector))
                .into_iter()
                .map(remote_socket)
                .collect();
            respond(
                inner,
                nsp,
                Response::Sockets {
                    request_id,
                    sockets,
                },
            )
            .await;
        }
        RequestKind::ServerSideEmit { .. } => {
            // The relay has no server-side handlers, like a Node server without a
            // listener for the event: nothing to do, no answer.
        }
        RequestKind::Broadcast {
            request_id,
            packet,
            opts,
        } => {
            let timeout = opts
                .flags
                .timeout
                .map_or(inner.request_timeout, Duration::from_millis);
            // Answer a little before the sender gives up, so that our acks count.
            let margin = (timeout / 10).min(Duration::from_millis(100));
            let request = EmitRequest {
                target: target(nsp, opts.selector),
                event: packet.event,
                args: packet.args,
                ack_timeout: Some(timeout - margin),
            };
            if is_reserved_event(&request.event) {
                return respond(inner, nsp, client_count(request_id, 0, Vec::new())).await;
            }
            let inner = inner.clone();
            let nsp = nsp.to_owned();
            tokio::spawn(async move {
                let outcome = inner.local.emit(request).await;
                let sids = outcome
                    .acks
                    .iter()
                    .filter_map(|a| a.sid.clone())
                    .chain(outcome.timeouts.iter().cloned())
                    .collect();
                let count = client_count(request_id.clone(), outcome.recipients, sids);
                respond(&inner, &nsp, count).await;
                for ack in outcome.acks {
                    let sid = ack.sid.unwrap_or_default();
                    match Response::ack(request_id.clone(), sid, ack.args) {
                        Ok(response) => respond(&inner, &nsp, response).await,
                        Err(err) => tracing::warn!(%err, "cluster: ack not encodable"),
                    }
                }
            });
        }
    }
}

fn client_count(request_id: String, count: usize, sids: Vec<String>) -> Response {
    Response::ClientCount {
        request_id,
        client_count: count as u64,
        sids: Some(sids),
    }
}

/// Answers a join, leave or disconnect that carried a request id (from a sio-relay node).
async fn answer_count(
    inner: &Inner,
    nsp: &str,
    uid: Option<&str>,
    request_id: Option<String>,
    count: usize,
) {
    let Some(request_id) = request_id else {
        return;
    };
    let count = Response::Count {
        request_id,
        count: count as u64,
    };
    match uid {
        Some(uid) => respond_to(inner, nsp, uid, count).await,
        None => respond(inner, nsp, count).await,
    }
}

async fn answer_done(inner: &Inner, nsp: &str, request_id: Option<String>) {
    if let Some(request_id) = request_id {
        respond(inner, nsp, Response::Done { request_id }).await;
    }
}

fn remote_socket(info: crate::adapter::SocketInfo) -> RemoteSocket {
    let connected_at = info.connected_at.unwrap_or_default();
    let connected_ms = humantime::parse_rfc3339(&connected_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let mut rooms = vec![info.sid.clone()];
    rooms.extend(info.rooms);
    let relay = RelaySocket {
        transport: info
            .transport
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        address: info.address.unwrap_or_default(),
        connected_at,
        user: info.user,
        parser: info.parser,
        eio: info.eio,
    };
    let mut socket = RemoteSocket::relay(info.sid, rooms, relay, connected_ms);
    // Where Node's protocol carries `socket.data`.
    if let Some(data) = info.data {
        socket.data = data;
    }
    socket
}

async fn on_python(inner: &Inner, payload: &[u8]) {
    let message = match PythonMessage::decode(payload) {
        Ok(message) => message,
        Err(WireError::Pickle) => {
            tracing::warn!(
                "cluster: pickled python-socketio message dropped, never unpickled; \
                 publish with python-socketio 5.14 or later, which sends JSON"
            );
            return;
        }
        Err(err) => {
            tracing::debug!(%err, "cluster: python-socketio message dropped");
            return;
        }
    };
    let local = &inner.local;
    let one = |namespace: &str, name: String| Target {
        namespace: namespace.to_owned(),
        to: vec![name],
        except: Vec::new(),
    };
    match message.kind {
        PythonKind::Emit(emit) => {
            if is_reserved_event(&emit.event) || emit.rooms.as_ref().is_some_and(Vec::is_empty) {
                return;
            }
            let request = EmitRequest {
                target: Target {
                    namespace: emit.namespace,
                    to: emit.rooms.unwrap_or_default(),
                    except: emit.skip_sids,
                },
                event: emit.event,
                args: emit.args,
                ack_timeout: None,
            };
            // Without an ack timeout the local emit completes at once.
            local.emit(request).await;
        }
        PythonKind::EnterRoom {
            namespace,
            sid,
            room,
        } => {
            local.join(&one(&namespace, sid), &[room]);
        }
        PythonKind::LeaveRoom {
            namespace,
            sid,
            room,
        } => {
            local.leave(&one(&namespace, sid), &[room]);
        }
        PythonKind::CloseRoom { namespace, room } => {
            local.leave(&one(&namespace, room.clone()), &[room]);
        }
        PythonKind::Disconnect { namespace, sid } => {
            local.disconnect(&one(&namespace, sid));
        }
        PythonKind::Callback { .. } => {
            // Acks returning to a python server; this relay never asks python clients.
        }
    }
}
