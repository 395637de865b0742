//! The Socket.IO listener: accepts connections, answers the upgrade of a new WebSocket
//! session itself, and hands every other connection to hyper and the engine's router.
//!
//! Opening a session over WebSocket (`GET {path}?EIO=4&transport=websocket`, no sid) is
//! the usual connection, and answered here it takes one write: the `101 Switching
//! Protocols` answer and the Engine.IO open packet together. Through hyper they are two
//! writes (hyper sends the 101, then the session its first frame), and on loopback a write
//! costs several microseconds of kernel time. The first request is only peeked at, so
//! whatever this fast path does not take (polling, an upgrade with a sid, anything wrong
//! or incomplete) reaches hyper untouched and gets the answers it always got.
//!
//! hyper serves the rest over HTTP/1.1, what Socket.IO clients speak, rather than through
//! `axum::serve`, which wraps each connection in a private type: an upgrade through the
//! router must hand back the plain `TcpStream` (see `websocket::split`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::{Engine, EngineHandler, http, websocket};

/// Serves Socket.IO on `listener` until `stop`; then stops accepting, lets each
/// connection finish the request in progress, and ends once they are done.
pub fn serve<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    listener: TcpListener,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let router = http::router(engine.clone());
    tokio::spawn(async move {
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, mostly: wait rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Without TCP_NODELAY small frames wait for delayed ACKs (up to 40 ms stalls).
            let _ = stream.set_nodelay(true);
            let engine = engine.clone();
            let router = router.clone();
            let stop = stop.clone();
            connections.spawn(async move {
                if let Some(stream) = websocket::open_directly(&engine, stream, remote, &stop).await
                {
                    serve_http(stream, remote, router, stop).await;
                }
            });
        }
        connections.close();
        connections.wait().await;
    })
}

/// One HTTP/1.1 connection through the router, with upgrades.
async fn serve_http(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
