//! The Redis cluster adapter: nodes share one Redis and speak the protocol of Node's
//! `@socket.io/redis-adapter` 8.x (classic pub/sub), so sio-relay nodes, Node.js Socket.IO
//! servers and `@socket.io/redis-emitter` publishers can share one cluster.
//!
//! - [`wire`] owns the bytes on the channels (pure, no I/O).
//! - `conn` owns the connections: subscriber, publisher, readiness, reconnection.
//! - `inbound` applies what other nodes publish to this node through [`LocalOps`].
//! - [`RedisCluster`] (this module) runs operations cluster-wide: it publishes, applies
//!   locally, and collects other nodes' answers, bounded by the request timeout.
//! - `outbound` owns what this node sends to Redis: publishes, subscriber counts,
//!   on-demand namespace subscriptions and the responses it owes other nodes.
//! - `requests` owns this node's requests waiting for answers, and collects the answers.
//! - `node_peers` counts an emit's recipients on Node.js peers, which do not report it.
//!
//! How many nodes answer is learnt the Node way, from `PUBSUB NUMSUB` of the namespace's
//! request channel. Node servers do not answer broadcasts, joins, leaves or disconnects;
//! sio-relay nodes do (a request id rides in a place Node ignores), and they are counted
//! apart through a channel only they subscribe (`<prefix>-relay#<nsp>#`), so that a call
//! never waits for a Node server that will not answer.

mod conn;
mod idempotency;
mod inbound;
mod local_ops;
mod node_peers;
mod outbound;
pub mod replay;
mod requests;
pub mod wire;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use local_ops::{BoxFuture, LocalOps};

use self::conn::Connections;
use self::outbound::send_responses;
use self::replay::RedisReplay;
use self::requests::{collect_acks, merge_acks, random_id};
use self::wire::node::{Broadcast, RemoteSocket, Request, RequestKind, Response};
use self::wire::{BroadcastOpts, Channels, EventPacket, Flags, Selector};
use super::{
    AdapterError, Applied, EmitOutcome, EmitRequest, Listing, RoomInfo, SocketInfo, Target,
};
use crate::config::{ClusterConfig, RecoveryConfig, Transport};
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
    /// The replay log and saved sessions, with connection state recovery on.
    replay: OnceLock<Arc<RedisReplay>>,
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
            replay: OnceLock::new(),
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

    /// Turns on connection state recovery across the cluster (sessions and the replay log
    /// in Redis); the store for the Socket.IO layer. Call before serving.
    pub fn enable_recovery(&self, config: &RecoveryConfig) -> Arc<RedisReplay> {
        self.inner
            .replay
            .get_or_init(|| Arc::new(RedisReplay::new(self.inner.conns.clone(), config)))
            .clone()
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

    async fn emit_unmeasured(&self, mut request: EmitRequest) -> Result<EmitOutcome, AdapterError> {
        let inner = &*self.inner;
        let nsp = request.target.namespace.clone();
        inner.ensure_namespace(&nsp).await?;
        // A replayable event is logged first; its offset rides as its last argument.
        if let (Some(replay), None) = (inner.replay.get(), request.ack_timeout) {
            let offset = replay.append(&request).await?;
            request.args.values.push(offset.to_string().into());
        }
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
            let [relays, nodes] = inner
                .count_and_publish(
                    [
                        conn::relay_channel(&inner.conns.channels, &nsp),
                        inner.conns.channels.request(&nsp),
                    ],
                    &channel,
                    encode(broadcast.encode())?,
                )
                .await?;
            let local = inner.local.emit(request).await;
            let relay_counts = inner.collect_counts(rx, relays.saturating_sub(1));
            // Node.js peers do not answer the broadcast: they are asked apart.
            let node_peers = nodes.saturating_sub(relays);
            let ((remote, partial), (on_peers, peers_partial)) = if node_peers == 0 {
                (relay_counts.await, (0, false))
            } else {
                let selector = broadcast.opts.selector;
                tokio::join!(
                    relay_counts,
                    inner.count_on_node_peers(&nsp, selector, node_peers)
                )
            };
            return Ok(EmitOutcome {
                recipients: local.recipients + remote + on_peers,
                partial: partial || peers_partial,
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
        parser: socket.relay.as_ref().and_then(|r| r.parser.clone()),
        eio: socket.relay.as_ref().and_then(|r| r.eio),
        address: socket.address(),
        connected_at: socket.connected_at(),
        user: socket.relay.as_ref().and_then(|r| r.user.clone()),
        data: match &socket.data {
            serde_json::Value::Object(map) if !map.is_empty() => Some(socket.data.clone()),
            _ => None,
        },
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

#[cfg(test)]
mod tests;
