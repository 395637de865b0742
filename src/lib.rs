//! sio-relay: a standalone Socket.IO relay that backends push to over HTTP.
//!
//! # Layout
//!
//! Data flows along two paths that meet at a session's outbox:
//!
//! - **client → [`engine`] → [`socketio`] → [`adapter`]**: Engine.IO sessions (WebSocket and
//!   long-polling) carry Socket.IO packets; namespaces register sockets in the adapter's
//!   rooms index.
//! - **[`admin`] → [`adapter`]**: the HTTP API selects sockets by room, sid or namespace and
//!   hands the adapter one encoded packet, which it fans out.
//!
//! Both end in a socket's session outbox, a bounded queue the session's transport drains.
//! [`app`] wires the pieces together; only it knows all of them.

pub mod adapter;
pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod glob;
pub mod hooks;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod signing;
pub mod socketio;
pub mod tls;
