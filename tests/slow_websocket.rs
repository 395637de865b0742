//! A WebSocket client that stops reading is cut off: once its queue fills, the session
//! ends and the relay closes its side of the connection, even though the write it was
//! blocked in never completes.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TIMEOUT, eventually, start_relay};
use futures_util::SinkExt;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The kernel's state of the relay's side of the connection `server` ← `client`, from
/// `/proc/net/tcp` (`01` is ESTABLISHED); `None` once the socket is gone.
fn server_side_state(server: SocketAddr, client: SocketAddr) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, state) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
        (port(local)? == server.port() && port(remote)? == client.port()).then(|| state.to_string())
    })
}

/// A raw WebSocket client connected to `/` that reads nothing after its CONNECT: the
/// client, its address and its sid.
async fn silent_client(
    relay: &common::TestRelay,
) -> (
    tokio_tungstenite::WebSocketStream<TcpStream>,
    SocketAddr,
    String,
) {
    let tcp = TcpStream::connect(relay.socketio_addr).await.unwrap();
    let client_addr = tcp.local_addr().unwrap();
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        relay.socketio_addr
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    ws.send(Message::text("40")).await.unwrap();
    // Learn the socket's sid from the listing: no reading on this client from here on.
    let sid = eventually("the socket to be listed", TIMEOUT, || async {
        let target = sio_relay::adapter::Target {
            namespace: "/".into(),
            ..Default::default()
        };
        let listing = relay.inner().adapter.sockets(&target).await.ok()?;
        listing.items.first().map(|socket| socket.sid.clone())
    })
    .await;
    assert_eq!(
        server_side_state(relay.socketio_addr, client_addr).as_deref(),
        Some("01")
    );
    (ws, client_addr, sid)
}

/// Waits until the relay's side of `client`'s connection has left ESTABLISHED.
async fn relay_closes_its_side(relay: &common::TestRelay, client: SocketAddr) {
    eventually("the relay to close its side", TIMEOUT, || async {
        (server_side_state(relay.socketio_addr, client).as_deref() != Some("01")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_released() {
    // Room for four of the 256 KiB events below.
    let relay = start_relay(|config| config.limits.max_queued_bytes = 4 * (256 * 1024 + 100)).await;
    let (ws, client_addr, sid) = silent_client(&relay).await;

    // Large events until the relay gives up on the client.
    let chunk = "x".repeat(256 * 1024);
    for _ in 0..400 {
        relay.push("/", &[&sid], "big", json!([chunk])).await;
        if relay.metric(r#"sio_relay_disconnections_total{reason="queue_full"}"#) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        relay.metric(r#"sio_relay_disconnections_total{reason="queue_full"}"#),
        1.0
    );
    // The relay's side leaves ESTABLISHED although the client still reads nothing.
    relay_closes_its_side(&relay, client_addr).await;
    drop(ws);
}

/// A client that stops reading while the relay is blocked writing to it, with room left in
/// its queue, is still ended by the heartbeat: its ping goes unanswered.
#[tokio::test]
async fn a_client_blocked_in_a_write_is_closed_by_the_heartbeat() {
    let relay = start_relay(|config| {
        config.limits.max_queued_bytes = 64 * 1024 * 1024;
        config.server.ping_interval_ms = 300;
        config.server.ping_timeout_ms = 200;
    })
    .await;
    let (ws, client_addr, sid) = silent_client(&relay).await;

    // More than loopback's socket buffers take, less than the queue holds: the relay's
    // write to this client blocks, and nothing else would end the session.
    let chunk = "x".repeat(256 * 1024);
    for _ in 0..64 {
        relay.push("/", &[&sid], "big", json!([chunk])).await;
    }
    eventually("the heartbeat to end the session", TIMEOUT, || async {
        (relay.metric(r#"sio_relay_disconnections_total{reason="ping_timeout"}"#) >= 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        relay.metric(r#"sio_relay_disconnections_total{reason="queue_full"}"#),
        0.0
    );
    relay_closes_its_side(&relay, client_addr).await;
    drop(ws);
}
