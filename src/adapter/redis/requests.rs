//! This node's requests waiting for answers: registering a request id, handing
//! responses to their waiting request, and collecting the other nodes' answers (counts,
//! fetched sockets, acknowledgements) until all are in or the timeout passes.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::wire::node::{RemoteSocket, Request, RequestKind, Response};
use super::wire::{self, Selector};
use super::{Inner, Kind, LocalOps, conn, encode, selector};
use crate::adapter::{AckReply, AdapterError, Applied, EmitOutcome, Target};

/// Removes a pending request when its caller is done (or dropped).
pub(super) struct PendingGuard<'a> {
    inner: &'a Inner,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.inner
            .pending
            .lock()
            .expect("pending lock poisoned")
            .remove(&self.id);
    }
}

/// A random id of `len` characters from `[A-Za-z0-9]`, like Node's `uid2`.
pub(super) fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Inner {
    pub(super) fn register(&self) -> (String, mpsc::UnboundedReceiver<Response>, PendingGuard<'_>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut pending = self.pending.lock().expect("pending lock poisoned");
        let id = loop {
            let id = random_id(wire::node::REQUEST_ID_LEN);
            if !pending.contains_key(&id) {
                break id;
            }
        };
        pending.insert(id.clone(), tx);
        let guard = PendingGuard {
            inner: self,
            id: id.clone(),
        };
        (id, rx, guard)
    }

    pub(super) fn is_pending(&self, id: &str) -> bool {
        self.pending
            .lock()
            .expect("pending lock poisoned")
            .contains_key(id)
    }

    /// Hands a response to the request waiting for it, if any.
    pub(super) fn deliver(&self, response: Response) {
        let pending = self.pending.lock().expect("pending lock poisoned");
        if let Some(tx) = pending.get(response.request_id()) {
            let _ = tx.send(response);
        }
    }

    /// Publishes a join, leave or disconnect, applies it here, and sums the counts of the
    /// other sio-relay nodes.
    pub(super) async fn apply(
        &self,
        name: &'static str,
        target: &Target,
        kind: impl FnOnce(Option<String>, Selector) -> RequestKind,
        local: impl FnOnce(&dyn LocalOps) -> usize,
    ) -> Result<Applied, AdapterError> {
        let started = Instant::now();
        let result = self.apply_unmeasured(target, kind, local).await;
        self.observe(name, started, result.as_ref().map(|a| a.partial));
        result
    }

    pub(super) async fn apply_unmeasured(
        &self,
        target: &Target,
        kind: impl FnOnce(Option<String>, Selector) -> RequestKind,
        local: impl FnOnce(&dyn LocalOps) -> usize,
    ) -> Result<Applied, AdapterError> {
        self.ensure_namespace(&target.namespace).await?;
        let [relays] = self
            .numsub([conn::relay_channel(&self.conns.channels, &target.namespace)])
            .await?;
        let (id, rx, _guard) = self.register();
        let request = Request {
            uid: Some(self.conns.uid.clone()),
            kind: kind((relays > 1).then_some(id), selector(target)),
        };
        let channel = self.conns.channels.request(&target.namespace);
        self.publish(&channel, Kind::Request, encode(request.encode())?)
            .await?;
        let here = local(&*self.local);
        let (remote, partial) = self.collect_counts(rx, relays.saturating_sub(1)).await;
        Ok(Applied {
            sockets: here + remote,
            partial,
        })
    }

    /// Sums `expected` count answers, until the request timeout.
    pub(super) async fn collect_counts(
        &self,
        mut rx: mpsc::UnboundedReceiver<Response>,
        expected: usize,
    ) -> (usize, bool) {
        let deadline = Instant::now() + self.request_timeout;
        let (mut total, mut answers) = (0, 0);
        while answers < expected {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(Response::Count { count, .. })) => {
                    total += count as usize;
                    answers += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        (total, answers < expected)
    }

    /// Asks every other node for the target's sockets.
    pub(super) async fn fetch(
        &self,
        name: &'static str,
        target: &Target,
    ) -> Result<(Vec<RemoteSocket>, bool), AdapterError> {
        let started = Instant::now();
        let result = self.fetch_unmeasured(target).await;
        self.observe(name, started, result.as_ref().map(|(_, partial)| *partial));
        result
    }

    pub(super) async fn fetch_unmeasured(
        &self,
        target: &Target,
    ) -> Result<(Vec<RemoteSocket>, bool), AdapterError> {
        self.ensure_namespace(&target.namespace).await?;
        let channel = self.conns.channels.request(&target.namespace);
        let [nodes] = self.numsub([channel.clone()]).await?;
        let expected = nodes.saturating_sub(1);
        if expected == 0 {
            return Ok((Vec::new(), false));
        }
        let (id, mut rx, _guard) = self.register();
        let request = Request {
            uid: Some(self.conns.uid.clone()),
            kind: RequestKind::FetchSockets {
                request_id: id,
                selector: selector(target),
                relay_skip: false,
            },
        };
        self.publish(&channel, Kind::Request, encode(request.encode())?)
            .await?;
        let deadline = Instant::now() + self.request_timeout;
        let (mut sockets, mut answers) = (Vec::new(), 0);
        while answers < expected {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(Response::Sockets { sockets: found, .. })) => {
                    sockets.extend(found);
                    answers += 1;
                }
                Ok(Some(Response::SocketIds { sockets: ids, .. })) => {
                    sockets.extend(ids.into_iter().map(|id| RemoteSocket {
                        rooms: vec![id.clone()],
                        id,
                        handshake: serde_json::Value::Null,
                        data: serde_json::Value::Null,
                        relay: None,
                    }));
                    answers += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        Ok((sockets, answers < expected))
    }
}

/// What other nodes answered to a broadcast with acks.
#[derive(Default)]
pub(super) struct RemoteAcks {
    recipients: usize,
    sids: Vec<String>,
    acks: Vec<AckReply>,
    partial: bool,
}

/// Collects client counts from `nodes` nodes and the acks they announce, until all are in
/// or `timeout` passes.
pub(super) async fn collect_acks(
    mut rx: mpsc::UnboundedReceiver<Response>,
    nodes: usize,
    timeout: Duration,
) -> RemoteAcks {
    let mut out = RemoteAcks::default();
    if nodes == 0 {
        return out;
    }
    let deadline = Instant::now() + timeout;
    let mut counted = 0;
    while counted < nodes || out.acks.len() < out.recipients {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(Response::ClientCount {
                client_count, sids, ..
            })) => {
                counted += 1;
                out.recipients += client_count as usize;
                out.sids.extend(sids.unwrap_or_default());
            }
            Ok(Some(Response::Ack { packet, relay, .. })) => out.acks.push(match relay {
                Some(relay) => AckReply {
                    sid: Some(relay.sid),
                    args: relay.args,
                },
                None => AckReply {
                    sid: None,
                    args: packet.unwrap_or_default(),
                },
            }),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    out.partial = counted < nodes;
    out
}

pub(super) fn merge_acks(mut local: EmitOutcome, remote: RemoteAcks) -> EmitOutcome {
    let answered: HashSet<&str> = remote
        .acks
        .iter()
        .filter_map(|a| a.sid.as_deref())
        .collect();
    local.timeouts.extend(
        remote
            .sids
            .iter()
            .filter(|sid| !answered.contains(sid.as_str()))
            .cloned(),
    );
    local.recipients += remote.recipients;
    local.acks.extend(remote.acks);
    local.partial |= remote.partial;
    local
}
