//! What the cluster needs from this node's rooms index, as a trait: the cluster applies
//! operations from other nodes here and reads this node's part of cluster-wide listings.

use std::future::Future;
use std::pin::Pin;

use super::super::local::LocalAdapter;
use super::super::{EmitOutcome, EmitRequest, RoomInfo, SocketInfo, Target};

/// A boxed future, for the one async operation.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// This node's sockets and rooms, as the cluster uses them.
pub trait LocalOps: Send + Sync + 'static {
    /// Emits to this node's sockets (waiting for acks when the request has a timeout).
    fn emit(&self, request: EmitRequest) -> BoxFuture<'_, EmitOutcome>;
    /// Makes the target's sockets join `rooms`; how many sockets.
    fn join(&self, target: &Target, rooms: &[String]) -> usize;
    /// Makes the target's sockets leave `rooms`; how many sockets.
    fn leave(&self, target: &Target, rooms: &[String]) -> usize;
    /// Disconnects the target's sockets; how many.
    fn disconnect(&self, target: &Target) -> usize;
    /// The target's sockets (rooms without the socket's own sid room).
    fn sockets(&self, target: &Target) -> Vec<SocketInfo>;
    /// The namespace's rooms, without per-sid rooms.
    fn rooms(&self, namespace: &str) -> Vec<RoomInfo>;
    /// Whether some socket of this node is in `room` (a sid is a room). Used to drop
    /// broadcasts to other rooms without decoding them, so it must be cheap.
    fn has_room(&self, namespace: &str, room: &str) -> bool;
}

impl LocalOps for LocalAdapter {
    fn emit(&self, request: EmitRequest) -> BoxFuture<'_, EmitOutcome> {
        Box::pin(async move { LocalAdapter::emit(self, request).await.unwrap_or_default() })
    }

    fn join(&self, target: &Target, rooms: &[String]) -> usize {
        LocalAdapter::join(self, target, rooms).sockets
    }

    fn leave(&self, target: &Target, rooms: &[String]) -> usize {
        LocalAdapter::leave(self, target, rooms).sockets
    }

    fn disconnect(&self, target: &Target) -> usize {
        LocalAdapter::disconnect(self, target).sockets
    }

    fn sockets(&self, target: &Target) -> Vec<SocketInfo> {
        LocalAdapter::sockets(self, target).items
    }

    fn rooms(&self, namespace: &str) -> Vec<RoomInfo> {
        LocalAdapter::rooms(self, namespace).items
    }

    fn has_room(&self, namespace: &str, room: &str) -> bool {
        LocalAdapter::has_room(self, namespace, room)
    }
}
