//! This node's rooms index: room → sockets and socket → rooms, per namespace, and
//! delivery of one encoded packet to the sockets a target selects.

use super::{AdapterError, Applied, EmitOutcome, EmitRequest, Listing, RoomInfo, SocketInfo, Target};

/// The in-memory rooms index of this node.
#[derive(Default)]
pub struct LocalAdapter {}

impl LocalAdapter {
    /// Emits to this node's sockets.
    pub async fn emit(&self, _request: EmitRequest) -> Result<EmitOutcome, AdapterError> {
        todo!()
    }
    /// Joins rooms on this node.
    pub fn join(&self, _target: &Target, _rooms: &[String]) -> Applied {
        todo!()
    }
    /// Leaves rooms on this node.
    pub fn leave(&self, _target: &Target, _rooms: &[String]) -> Applied {
        todo!()
    }
    /// Disconnects sockets on this node.
    pub fn disconnect(&self, _target: &Target) -> Applied {
        todo!()
    }
    /// Lists sockets on this node.
    pub fn sockets(&self, _target: &Target) -> Listing<SocketInfo> {
        todo!()
    }
    /// Lists rooms on this node.
    pub fn rooms(&self, _namespace: &str) -> Listing<RoomInfo> {
        todo!()
    }
}
