//! Wiring: builds the engine, Socket.IO layer, adapter and admin API, binds the listeners.
