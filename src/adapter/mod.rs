//! The adapter: who is connected, which rooms they are in, and delivery to them.
//!
//! The admin API and the Socket.IO layer talk to [`Adapter`] only; whether it spans one
//! node (in memory) or a cluster is its own business.

pub mod idempotency;
pub mod local;
#[cfg(feature = "redis")]
pub mod redis;
pub mod replay;

use std::time::Duration;

use serde::Serialize;

use crate::config::Transport;
use crate::socketio::packet::Args;

/// Which sockets of one namespace an operation applies to.
///
/// Built by the admin API's selector after validation: `to` empty means the whole
/// namespace (the API only allows that with `broadcast: true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The namespace, e.g. `/`.
    pub namespace: String,
    /// Rooms (a sid is a room); empty: the whole namespace.
    pub to: Vec<String>,
    /// Rooms (or sids) left out.
    pub except: Vec<String>,
}

/// One event to emit.
#[derive(Debug, Clone)]
pub struct EmitRequest {
    /// Who receives it.
    pub target: Target,
    /// The event name.
    pub event: String,
    /// The arguments after the event name; binary parts are attachments.
    pub args: Args,
    /// Wait this long for every recipient's acknowledgement.
    pub ack_timeout: Option<Duration>,
}

/// What an emit did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmitOutcome {
    /// Sockets the event was sent to.
    pub recipients: usize,
    /// Acknowledgements received (only with an ack timeout).
    pub acks: Vec<AckReply>,
    /// Sids that did not answer in time (only with an ack timeout).
    pub timeouts: Vec<String>,
    /// Some node of the cluster did not answer.
    pub partial: bool,
}

/// One socket's answer to an acknowledged emit.
#[derive(Debug, Clone, PartialEq)]
pub struct AckReply {
    /// The socket that answered; `None` when the cluster protocol does not tell.
    pub sid: Option<String>,
    /// The arguments it answered with.
    pub args: Args,
}

/// A count of sockets an operation applied to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// How many sockets.
    pub sockets: usize,
    /// Some node of the cluster did not answer.
    pub partial: bool,
}

/// A connected socket, as listed by the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketInfo {
    /// The socket id.
    pub sid: String,
    /// Its namespace.
    pub namespace: String,
    /// Rooms it is in, without its own sid room.
    pub rooms: Vec<String>,
    /// Its current transport; `None` for sockets on peers that do not tell.
    pub transport: Option<Transport>,
    /// Its parser, `json` or `msgpack`; `None` for sockets on peers that do not tell.
    pub parser: Option<String>,
    /// Its Engine.IO version, 3 or 4; `None` for sockets on peers that do not tell.
    pub eio: Option<u8>,
    /// Peer address as `ip:port`.
    pub address: Option<String>,
    /// When it connected, RFC 3339.
    pub connected_at: Option<String>,
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// The data authentication attached (a JSON object), if any.
    pub data: Option<serde_json::Value>,
}

/// A room and how many sockets are in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomInfo {
    /// The room's name.
    pub name: String,
    /// Sockets in it.
    pub size: usize,
}

/// A list from the whole cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// The items.
    pub items: Vec<T>,
    /// Some node of the cluster did not answer.
    pub partial: bool,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing {
            items: Vec::new(),
            partial: false,
        }
    }
}

/// Why the adapter could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The cluster engine (Redis) is unreachable; nothing was done.
    #[error("the cluster is unavailable: {0}")]
    ClusterUnavailable(String),
}

/// The adapter the rest of the relay uses: this node's rooms index, plus the cluster when
/// one is configured.
pub struct Adapter {
    local: std::sync::Arc<local::LocalAdapter>,
    #[cfg(feature = "redis")]
    cluster: Option<redis::RedisCluster>,
    /// `Idempotency-Key`s of a single node (a cluster keeps them in Redis).
    idempotency: idempotency::MemoryKeys,
}

impl Adapter {
    /// An adapter for a single node.
    pub fn memory(local: std::sync::Arc<local::LocalAdapter>) -> Self {
        Self {
            local,
            #[cfg(feature = "redis")]
            cluster: None,
            idempotency: idempotency::MemoryKeys::default(),
        }
    }

    /// An adapter for a cluster member: every call means the whole cluster.
    #[cfg(feature = "redis")]
    pub fn cluster(
        local: std::sync::Arc<local::LocalAdapter>,
        cluster: redis::RedisCluster,
    ) -> Self {
        Self {
            local,
            cluster: Some(cluster),
            idempotency: idempotency::MemoryKeys::default(),
        }
    }

    /// This node's rooms index.
    pub fn local(&self) -> &std::sync::Arc<local::LocalAdapter> {
        &self.local
    }

    /// The cluster membership, when clustered.
    #[cfg(feature = "redis")]
    pub fn redis(&self) -> Option<&redis::RedisCluster> {
        self.cluster.as_ref()
    }

    /// Emits one event to the target's sockets; with an ack timeout, waits for their
    /// acknowledgements (answering early once all arrived, or at once on shutdown).
    pub async fn emit(&self, request: EmitRequest) -> Result<EmitOutcome, AdapterError> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.emit(request).await;
        }
        self.local.emit(request).await
    }

    /// Claims an `Idempotency-Key` for `window`, cluster-wide when clustered.
    pub async fn claim_idempotency(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<idempotency::Claim, AdapterError> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.claim_idempotency(key, window).await;
        }
        Ok(self.idempotency.claim(key, window))
    }

    /// Stores the answer of a claimed key for `window`; `None` releases it.
    pub async fn finish_idempotency(
        &self,
        key: &str,
        answer: Option<bytes::Bytes>,
        window: Duration,
    ) {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.finish_idempotency(key, answer, window).await;
        }
        self.idempotency.finish(key, answer, window);
    }

    /// Makes the target's sockets join `rooms`.
    pub async fn join(&self, target: &Target, rooms: &[String]) -> Result<Applied, AdapterError> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.join(target, rooms).await;
        }
        Ok(self.local.join(target, rooms))
    }

    /// Makes the target's sockets leave `rooms`.
    pub async fn leave(&self, target: &Target, rooms: &[String]) -> Result<Applied, AdapterError> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.leave(target, rooms).await;
        }
        Ok(self.local.leave(target, rooms))
    }

    /// Disconnects the target's sockets from their namespace ("io server disconnect").
    pub async fn disconnect(&self, target: &Target) -> Result<Applied, AdapterError> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.disconnect(target).await;
        }
        Ok(self.local.disconnect(target))
    }

    /// Lists the target's sockets.
    pub async fn sockets(&self, target: &Target) -> Result<Listing<SocketInfo>, AdapterError> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.sockets(target).await;
        }
        Ok(self.local.sockets(target))
    }

    /// Lists the namespace's rooms, without per-sid rooms.
    pub async fn rooms(&self, namespace: &str) -> Result<Listing<RoomInfo>, AdapterError> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            return cluster.rooms(namespace).await;
        }
        Ok(self.local.rooms(namespace))
    }

    /// `Ok` when every backing service is up; otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster
            && let redis::Readiness::Down(reason) = cluster.readiness()
        {
            return Err(format!("cluster: {reason}"));
        }
        Ok(())
    }
}
