//! The Redis cluster adapter: nodes share one Redis and speak the protocol of Node's
//! `@socket.io/redis-adapter` 8.x (classic pub/sub), so sio-relay nodes, Node.js Socket.IO
//! servers and `@socket.io/redis-emitter` publishers can share one cluster.
//!
//! [`wire`] owns the bytes on the channels (pure, no I/O).

pub mod wire;
