//! Engine.IO v4: sessions over WebSocket and HTTP long-polling. Knows nothing of
//! namespaces or events.
