//! Socket.IO v5 on top of Engine.IO sessions: namespaces, sockets, events and acks.

pub mod packet;
