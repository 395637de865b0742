//! What the Socket.IO layer tells the layer above about its sockets: a socket joined a
//! namespace, a client emitted an event, a socket left. The backend hooks implement
//! [`SocketObserver`]; with no observer, client events are dropped and counted.
//!
//! Callbacks run on the session's transport tasks, so an observer only queues work: it
//! never blocks nor waits on the network there.

use std::sync::Arc;

use super::packet::Args;
use super::socket::Socket;
use crate::engine::CloseReason;

/// An event a client emitted.
#[derive(Debug, Clone)]
pub struct ClientEvent {
    /// The event name.
    pub event: String,
    /// Its arguments, binary parts as attachments.
    pub args: Args,
    /// The ack id when the client asked for an acknowledgement.
    pub ack_id: Option<u64>,
}

/// Why a socket left its namespace, in Socket.IO's own words (a Node.js server's
/// `disconnect` reasons), so backends written for Socket.IO read them as they expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client left the namespace (`socket.disconnect()`).
    ClientNamespaceDisconnect,
    /// The server removed the socket (`/v1/disconnect`).
    ServerNamespaceDisconnect,
    /// The Engine.IO session ended.
    Session(CloseReason),
}

impl DisconnectReason {
    /// The reason as a Socket.IO server names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::Session(reason) => match reason {
                CloseReason::TransportClose => "transport close",
                CloseReason::ClientClose => "transport close",
                CloseReason::TransportError | CloseReason::PayloadTooLarge => "transport error",
                CloseReason::PingTimeout => "ping timeout",
                CloseReason::ParseError => "parse error",
                CloseReason::QueueFull => "forced close",
                CloseReason::ConnectTimeout => "forced close",
                CloseReason::ServerShutdown => "server shutting down",
            },
        }
    }
}

/// Told about every socket's life. See the module documentation.
pub trait SocketObserver: Send + Sync + 'static {
    /// `socket` joined its namespace; the client already has the CONNECT answer.
    fn on_connect(&self, socket: &Arc<Socket>);
    /// A client emitted `event` on `socket`. `false` when the observer does not take it:
    /// the event is then dropped and counted.
    fn on_event(&self, socket: &Arc<Socket>, event: ClientEvent) -> bool;
    /// `socket` left its namespace.
    fn on_disconnect(&self, socket: &Arc<Socket>, reason: DisconnectReason);
}
