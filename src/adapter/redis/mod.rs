//! The Redis cluster adapter: nodes share one Redis and speak the protocol of Node's
//! `@socket.io/redis-adapter` 8.x (classic pub/sub), so sio-relay nodes, Node.js Socket.IO
//! servers and `@socket.io/redis-emitter` publishers can share one cluster.
//!
//! - [`wire`] owns the bytes on the channels (pure, no I/O).
//! - `conn` owns the connections: subscriber, publisher, readiness, reconnection.
//! - `inbound` applies what other nodes publish to this node through [`LocalOps`].
//! - [`RedisCluster`] (this module) runs operations cluster-wide: it publishes, applies
//!   locally, and collects other nodes' answers, bounded by the request timeout.
//!
//! How many nodes answer is learnt the Node way, from `PUBSUB NUMSUB` of the namespace's
//! request channel. Node servers do not answer broadcasts, joins, leaves or disconnects;
//! sio-relay nodes do (a request id rides in a place Node ignores), and they are counted
//! apart through a channel only they subscribe (`<prefix>-relay#<nsp>#`), so that a call
//! never waits for a Node server that will not answer.

mod conn;
mod inbound;
mod local_ops;
pub mod wire;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use local_ops::{BoxFuture, LocalOps};

use self::conn::Connections;
use self::wire::node::{Broadcast, RemoteSocket, Request, RequestKind, Response};
use self::wire::{BroadcastOpts, Channels, EventPacket, Flags, Selector};
use super::{
    AckReply, AdapterError, Applied, EmitOutcome, EmitRequest, Listing, RoomInfo, SocketInfo,
    Target,
};
use crate::config::{ClusterConfig, Transport};
use crate::metrics::Metrics;

/// Whether the cluster engine can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Connected and subscribed.
    Up,
    /// Not connected; why.
    Down(String),
}

/// Why the cluster adapter could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `cluster.redis_url` is not a Redis URL.
    #[error("cluster.redis_url: {0}")]
    InvalidUrl(String),
}

/// How to join the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `redis://`, `rediss://` or `unix://` URL, with user and password when needed.
    pub url: String,
    /// Channel prefix shared with the Node servers (`key` there).
    pub key_prefix: String,
    /// Bound on waiting for other nodes.
    pub request_timeout: Duration,
    /// The python-socketio channel to apply, when enabled.
    pub python_channel: Option<String>,
    /// Namespaces to subscribe from the start; others are subscribed on first use.
    pub namespaces: Vec<String>,
    /// Where the cluster's metrics are counted.
    pub metrics: Metrics,
}

impl ClusterOptions {
    /// Options from the `[cluster]` section and the namespaces clients may join. Exact
    /// names are subscribed from the start; namespaces allowed by a wildcard (`"*"`,
    /// `"/chat/*"`) when a local socket first joins one, or on their first admin call.
    pub fn from_config(config: &ClusterConfig, namespaces: &[String], metrics: Metrics) -> Self {
        ClusterOptions {
            url: config.redis_url.clone(),
            key_prefix: config.key_prefix.clone(),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            python_channel: config
                .python_socketio
                .then(|| config.python_socketio_channel.clone()),
            namespaces: namespaces
                .iter()
                .filter(|n| !n.ends_with('*'))
                .cloned()
                .collect(),
            metrics,
        }
    }
}

/// This node's membership of a Redis cluster.
#[derive(Clone)]
pub struct RedisCluster {
    inner: Arc<Inner>,
}

struct Inner {
    conns: Arc<Connections>,
    local: Arc<dyn LocalOps>,
    request_timeout: Duration,
    subscribe_tx: mpsc::UnboundedSender<conn::Subscribe>,
    /// Responses to publish, `(channel, payload)`, in order (see [`send_responses`]).
    responses: mpsc::UnboundedSender<(String, Vec<u8>)>,
    /// Requests of this node waiting for answers, by request id.
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<Response>>>,
    readiness: watch::Receiver<Readiness>,
    metrics: Metrics,
}

/// Removes a pending request when its caller is done (or dropped).
struct PendingGuard<'a> {
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
fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl RedisCluster {
    /// Joins the cluster: starts the connection task, which connects, subscribes and
    /// reconnects by itself until `shutdown`. Returns at once; see [`Self::readiness`].
    pub fn start(
        options: ClusterOptions,
        local: Arc<dyn LocalOps>,
        shutdown: CancellationToken,
    ) -> Result<Self, ClusterError> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|err| ClusterError::InvalidUrl(err.to_string()))?;
        let (readiness_tx, readiness) = watch::channel(Readiness::Down("connecting".into()));
        let conns = Arc::new(Connections {
            client,
            channels: Channels::new(options.key_prefix),
            uid: random_id(6),
            python_channel: options.python_channel,
            namespaces: Mutex::new(options.namespaces.into_iter().collect::<BTreeSet<_>>()),
            subscribed: Mutex::new(HashSet::new()),
            publisher: Mutex::new(None),
            readiness: readiness_tx,
            metrics: options.metrics.clone(),
        });
        let (subscribe_tx, subscribe_rx) = mpsc::unbounded_channel();
        let (responses, responses_rx) = mpsc::unbounded_channel();
        tokio::spawn(send_responses(
            conns.clone(),
            responses_rx,
            options.metrics.clone(),
        ));
        let inner = Arc::new(Inner {
            conns: conns.clone(),
            local,
            request_timeout: options.request_timeout,
            subscribe_tx,
            responses,
            pending: Mutex::new(HashMap::new()),
            readiness,
            metrics: options.metrics,
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(conn::supervise(
            conns,
            subscribe_rx,
            shutdown,
            move |message| {
                let inner = weak.upgrade();
                async move {
                    if let Some(inner) = inner {
                        inbound::handle(&inner, message).await;
                    }
                }
            },
        ));
        Ok(RedisCluster { inner })
    }

    /// Up, or down with the reason.
    pub fn readiness(&self) -> Readiness {
        self.inner.readiness.borrow().clone()
    }

    /// Waits until the cluster is up, at most `timeout`; whether it is.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.readiness.clone();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r == Readiness::Up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// This node's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.inner.conns.uid
    }

    /// What to call when a local socket joins a namespace this node has no socket in yet
    /// (see [`LocalAdapter::on_new_namespace`](crate::adapter::local::LocalAdapter::on_new_namespace)):
    /// subscribes the namespace's channels without waiting, so that broadcasts from other
    /// nodes and emitters reach namespaces allowed by a wildcard before any admin call
    /// names them. Holds no reference to the local adapter (no cycle).
    pub fn namespace_hook(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let conns = self.inner.conns.clone();
        let subscribe_tx = self.inner.subscribe_tx.clone();
        move |nsp: &str| {
            let added = conns
                .namespaces
                .lock()
                .expect("namespaces lock poisoned")
                .insert(nsp.to_owned());
            if added {
                // Nobody waits for the confirmation; while Redis is down the namespace is
                // subscribed on reconnection.
                let (done, _) = oneshot::channel();
                let _ = subscribe_tx.send((nsp.to_owned(), done));
            }
        }
    }

    /// Emits cluster-wide: published first (nothing is delivered when Redis refuses),
    /// then delivered here; counts and acks of the other nodes are merged in.
    pub async fn emit(&self, request: EmitRequest) -> Result<EmitOutcome, AdapterError> {
        let kind = match request.ack_timeout {
            Some(_) => "emit_ack",
            None => "emit",
        };
        let started = Instant::now();
        let result = self.emit_unmeasured(request).await;
        self.inner
            .observe(kind, started, result.as_ref().map(|o| o.partial));
        result
    }

    async fn emit_unmeasured(&self, request: EmitRequest) -> Result<EmitOutcome, AdapterError> {
        let inner = &*self.inner;
        let nsp = request.target.namespace.clone();
        inner.ensure_namespace(&nsp).await?;
        let packet = EventPacket {
            nsp: nsp.clone(),
            event: request.event.clone(),
            args: request.args.clone(),
        };
        let selector = selector(&request.target);
        let Some(ack_timeout) = request.ack_timeout else {
            let (id, rx, _guard) = inner.register();
            // The request id always rides along (Node ignores it): the other sio-relay
            // nodes are counted in the same round trip as the publish.
            let broadcast = Broadcast {
                uid: inner.conns.uid.clone(),
                packet,
                opts: BroadcastOpts {
                    selector,
                    flags: Flags::default(),
                },
                request_id: Some(id),
            };
            let channel = inner
                .conns
                .channels
                .broadcast_for(&nsp, &broadcast.opts.selector.rooms);
            let relays = inner
                .count_and_publish(
                    &conn::relay_channel(&inner.conns.channels, &nsp),
                    &channel,
                    encode(broadcast.encode())?,
                )
                .await?;
            let local = inner.local.emit(request).await;
            let (remote, partial) = inner.collect_counts(rx, relays.saturating_sub(1)).await;
            return Ok(EmitOutcome {
                recipients: local.recipients + remote,
                partial,
                ..local
            });
        };
        let [nodes] = inner.numsub([inner.conns.channels.request(&nsp)]).await?;
        let others = nodes.saturating_sub(1);
        let (id, rx, _guard) = inner.register();
        let wire = Request {
            uid: Some(inner.conns.uid.clone()),
            kind: RequestKind::Broadcast {
                request_id: id,
                packet,
                opts: BroadcastOpts {
                    selector,
                    flags: Flags {
                        timeout: Some(ack_timeout.as_millis().try_into().unwrap_or(u64::MAX)),
                        ..Flags::default()
                    },
                },
            },
        };
        inner
            .publish(
                &inner.conns.channels.request(&nsp),
                Kind::Request,
                encode(wire.encode())?,
            )
            .await?;
        let (local, remote) = tokio::join!(
            inner.local.emit(request),
            collect_acks(rx, others, ack_timeout)
        );
        Ok(merge_acks(local, remote))
    }

    /// Makes the target's sockets join `rooms` on every node.
    pub async fn join(&self, target: &Target, rooms: &[String]) -> Result<Applied, AdapterError> {
        let kind = |request_id, selector| RequestKind::Join {
            request_id,
            selector,
            rooms: rooms.to_vec(),
        };
        self.inner
            .apply("join", target, kind, |local| local.join(target, rooms))
            .await
    }

    /// Makes the target's sockets leave `rooms` on every node.
    pub async fn leave(&self, target: &Target, rooms: &[String]) -> Result<Applied, AdapterError> {
        let kind = |request_id, selector| RequestKind::Leave {
            request_id,
            selector,
            rooms: rooms.to_vec(),
        };
        self.inner
            .apply("leave", target, kind, |local| local.leave(target, rooms))
            .await
    }

    /// Disconnects the target's sockets on every node.
    pub async fn disconnect(&self, target: &Target) -> Result<Applied, AdapterError> {
        let kind = |request_id, selector| RequestKind::Disconnect {
            request_id,
            selector,
            close: false,
        };
        self.inner
            .apply("disconnect", target, kind, |local| local.disconnect(target))
            .await
    }

    /// The target's sockets on every node.
    pub async fn sockets(&self, target: &Target) -> Result<Listing<SocketInfo>, AdapterError> {
        let (remote, partial) = self.inner.fetch("sockets", target).await?;
        let mut items = self.inner.local.sockets(target);
        items.extend(
            remote
                .into_iter()
                .map(|s| socket_info(&target.namespace, s)),
        );
        Ok(Listing { items, partial })
    }

    /// The namespace's rooms on every node, without per-sid rooms.
    pub async fn rooms(&self, namespace: &str) -> Result<Listing<RoomInfo>, AdapterError> {
        let target = Target {
            namespace: namespace.to_owned(),
            ..Target::default()
        };
        let (remote, partial) = self.inner.fetch("rooms", &target).await?;
        let mut sizes: HashMap<String, usize> = HashMap::new();
        for room in self.inner.local.rooms(namespace) {
            *sizes.entry(room.name).or_default() += room.size;
        }
        for socket in remote {
            let rooms: HashSet<String> = socket
                .rooms
                .into_iter()
                .filter(|r| *r != socket.id)
                .collect();
            for room in rooms {
                *sizes.entry(room).or_default() += 1;
            }
        }
        let items = sizes
            .into_iter()
            .map(|(name, size)| RoomInfo { name, size })
            .collect();
        Ok(Listing { items, partial })
    }
}

fn encode(result: Result<Vec<u8>, wire::WireError>) -> Result<Vec<u8>, AdapterError> {
    // Only arguments with a placeholder that points at no attachment fail to encode; the
    // admin API never builds such arguments.
    result.map_err(|err| AdapterError::ClusterUnavailable(format!("cannot encode: {err}")))
}

fn selector(target: &Target) -> Selector {
    Selector {
        rooms: target.to.clone(),
        except: target.except.clone(),
    }
}

fn socket_info(namespace: &str, socket: RemoteSocket) -> SocketInfo {
    let transport = match socket.transport() {
        Some("websocket") => Some(Transport::Websocket),
        Some("polling") => Some(Transport::Polling),
        _ => None,
    };
    SocketInfo {
        namespace: namespace.to_owned(),
        rooms: socket
            .rooms
            .iter()
            .filter(|r| **r != socket.id)
            .cloned()
            .collect(),
        transport,
        address: socket.address(),
        connected_at: socket.connected_at(),
        sid: socket.id,
    }
}

/// What a cluster message is, for `sio_relay_cluster_messages_total{kind}`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Broadcast,
    Request,
    Response,
    Python,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Broadcast => "broadcast",
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::Python => "python",
        }
    }
}

impl Inner {
    /// Counts one cluster-wide operation (`Ok(partial)`, or refused) and its duration.
    fn observe(&self, kind: &'static str, started: Instant, outcome: Result<bool, &AdapterError>) {
        let outcome = match outcome {
            Ok(false) => "complete",
            Ok(true) => "partial",
            Err(_) => "unavailable",
        };
        self.metrics
            .cluster_requests
            .with_label_values(&[kind, outcome])
            .inc();
        if outcome != "unavailable" {
            self.metrics
                .cluster_request_duration
                .with_label_values(&[kind])
                .observe(started.elapsed().as_secs_f64());
        }
    }

    fn count_message(&self, direction: &'static str, kind: Kind) {
        self.metrics
            .cluster_messages
            .with_label_values(&[direction, kind.as_str()])
            .inc();
    }

    fn check_up(&self) -> Result<(), AdapterError> {
        match &*self.readiness.borrow() {
            Readiness::Up => Ok(()),
            Readiness::Down(reason) => Err(AdapterError::ClusterUnavailable(reason.clone())),
        }
    }

    /// Subscribes `nsp` if it is not yet, waiting for Redis to confirm: the node counts
    /// itself in `NUMSUB` only once subscribed. A namespace that the namespace hook asked
    /// for a moment ago is waited for too.
    async fn ensure_namespace(&self, nsp: &str) -> Result<(), AdapterError> {
        self.check_up()?;
        if self.conns.is_subscribed(nsp) {
            return Ok(());
        }
        self.conns
            .namespaces
            .lock()
            .expect("namespaces lock poisoned")
            .insert(nsp.to_owned());
        // Subscribing twice is harmless: Redis keeps one subscription per channel.
        let (done, confirmed) = oneshot::channel();
        let _ = self.subscribe_tx.send((nsp.to_owned(), done));
        match tokio::time::timeout(self.request_timeout, confirmed).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(AdapterError::ClusterUnavailable("cannot subscribe".into())),
        }
    }

    async fn publish(
        &self,
        channel: &str,
        kind: Kind,
        payload: Vec<u8>,
    ) -> Result<(), AdapterError> {
        let mut publisher = self
            .conns
            .publisher()
            .ok_or_else(|| AdapterError::ClusterUnavailable("not connected to Redis".into()))?;
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut publisher)
            .await
            .map_err(|err| AdapterError::ClusterUnavailable(err.to_string()))?;
        self.count_message("out", kind);
        Ok(())
    }

    /// `PUBSUB NUMSUB count_channel` and `PUBLISH channel payload` in one round trip (a
    /// pipeline: Redis runs them back to back); the subscriber count.
    async fn count_and_publish(
        &self,
        count_channel: &str,
        channel: &str,
        payload: Vec<u8>,
    ) -> Result<usize, AdapterError> {
        self.check_up()?;
        let mut publisher = self
            .conns
            .publisher()
            .ok_or_else(|| AdapterError::ClusterUnavailable("not connected to Redis".into()))?;
        let (counts, _receivers): (Vec<(String, usize)>, i64) = redis::pipe()
            .cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(count_channel)
            .cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut publisher)
            .await
            .map_err(|err| AdapterError::ClusterUnavailable(err.to_string()))?;
        self.count_message("out", Kind::Broadcast);
        Ok(counts.first().map_or(0, |(_, n)| *n))
    }

    /// Subscriber counts of `channels`.
    async fn numsub<const N: usize>(
        &self,
        channels: [String; N],
    ) -> Result<[usize; N], AdapterError> {
        self.check_up()?;
        let mut publisher = self
            .conns
            .publisher()
            .ok_or_else(|| AdapterError::ClusterUnavailable("not connected to Redis".into()))?;
        let reply: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channels[..])
            .query_async(&mut publisher)
            .await
            .map_err(|err| AdapterError::ClusterUnavailable(err.to_string()))?;
        let mut counts = [0; N];
        for (count, (_, n)) in counts.iter_mut().zip(reply) {
            *count = n;
        }
        Ok(counts)
    }

    fn register(&self) -> (String, mpsc::UnboundedReceiver<Response>, PendingGuard<'_>) {
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

    fn is_pending(&self, id: &str) -> bool {
        self.pending
            .lock()
            .expect("pending lock poisoned")
            .contains_key(id)
    }

    /// Hands a response to the request waiting for it, if any.
    fn deliver(&self, response: Response) {
        let pending = self.pending.lock().expect("pending lock poisoned");
        if let Some(tx) = pending.get(response.request_id()) {
            let _ = tx.send(response);
        }
    }

    /// Publishes a join, leave or disconnect, applies it here, and sums the counts of the
    /// other sio-relay nodes.
    async fn apply(
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

    async fn apply_unmeasured(
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
    async fn collect_counts(
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
    async fn fetch(
        &self,
        name: &'static str,
        target: &Target,
    ) -> Result<(Vec<RemoteSocket>, bool), AdapterError> {
        let started = Instant::now();
        let result = self.fetch_unmeasured(target).await;
        self.observe(name, started, result.as_ref().map(|(_, partial)| *partial));
        result
    }

    async fn fetch_unmeasured(
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

/// Publishes the responses this node owes other nodes, in the order they were queued,
/// pipelining whatever has queued up meanwhile. The inbound handler only queues them: it
/// never waits for Redis to acknowledge a response before handling the next message.
/// Ends when the cluster is dropped. Responses queued while Redis is down are dropped
/// (their requesters time out, as they would have).
async fn send_responses(
    conns: Arc<Connections>,
    mut rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    metrics: Metrics,
) {
    const MAX_BATCH: usize = 256;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Some(mut publisher) = conns.publisher() else {
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        match pipe.query_async::<()>(&mut publisher).await {
            Ok(()) => metrics
                .cluster_messages
                .with_label_values(&["out", Kind::Response.as_str()])
                .inc_by(batch.len() as u64),
            Err(err) => tracing::debug!(%err, "cluster: responses not published"),
        }
        batch.clear();
    }
}

/// What other nodes answered to a broadcast with acks.
#[derive(Default)]
struct RemoteAcks {
    recipients: usize,
    sids: Vec<String>,
    acks: Vec<AckReply>,
    partial: bool,
}

/// Collects client counts from `nodes` nodes and the acks they announce, until all are in
/// or `timeout` passes.
async fn collect_acks(
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

fn merge_acks(mut local: EmitOutcome, remote: RemoteAcks) -> EmitOutcome {
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

#[cfg(test)]
mod tests;
