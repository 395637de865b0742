//! Long-polling sessions the relay ends for a reason of its own (connect timeout, ping
//! timeout, a full queue): like the reference server, it answers the waiting GET with the
//! Engine.IO close packet, and, when it closed the session on purpose (connect timeout,
//! full queue), the next GET if none was waiting; socket.io-client then reports
//! "transport close" and reconnects. Shutdown is the exception, without the packet
//! (`tests/shutdown.rs`).

mod common;

use std::time::Duration;

use common::clients::is;
use common::{ClientKind, RawPolling, TIMEOUT, TestRelay, eventually, start_relay};
use serde_json::json;

/// Waits until `sio_relay_disconnections_total{reason}` reaches `n`.
async fn wait_disconnections(relay: &TestRelay, reason: &str, n: f64) {
    let series = format!("sio_relay_disconnections_total{{reason=\"{reason}\"}}");
    eventually(
        &format!("{n} {reason} disconnection(s)"),
        TIMEOUT,
        || async { (relay.metric(&series) == n).then_some(()) },
    )
    .await;
}

/// The next GET gets the close packet and nothing else; the one after it finds the
/// session unknown.
async fn expect_close_packet_then_gone(polling: &RawPolling, context: &str) {
    let resp = polling
        .get_within(TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("{context}: GET not answered"));
    assert_eq!(resp.status, 200, "{context}: {}", resp.body);
    assert_eq!(resp.body, "1", "{context}: not the close packet");
    let resp = polling.get_within(TIMEOUT).await.expect("GET not answered");
    assert_eq!(resp.status, 400, "{context}: {}", resp.body);
    assert_eq!(
        resp.json,
        json!({"code": 1, "message": "Session ID unknown"}),
        "{context}"
    );
}

#[tokio::test]
async fn a_waiting_get_gets_the_close_packet() {
    let relay = start_relay(|c| {
        c.server.connect_timeout_ms = 500;
        c.server.ping_interval_ms = 300;
        c.server.ping_timeout_ms = 300;
    })
    .await;

    // Connect timeout: a GET is waiting when it fires (the first may bring the ping).
    let idle = RawPolling::handshake(relay.socketio_addr).await;
    let first = idle.get_within(TIMEOUT).await.expect("GET not answered");
    assert_eq!(first.status, 200, "{}", first.body);
    if first.body == "2" {
        expect_close_packet_then_gone(&idle, "connect timeout").await;
    } else {
        assert_eq!(first.body, "1", "connect timeout: not the close packet");
        let resp = idle.get_within(TIMEOUT).await.expect("GET not answered");
        assert_eq!(resp.status, 400, "{}", resp.body);
    }
    wait_disconnections(&relay, "connect_timeout", 1.0).await;

    // Ping timeout: the ping is read but not answered, and the next GET waits.
    let silent = RawPolling::handshake(relay.socketio_addr).await;
    silent.connect_ns("/").await;
    let ping = silent
        .recv_until(|p| p == "2", TIMEOUT)
        .await
        .expect("no ping");
    assert_eq!(ping, "2");
    expect_close_packet_then_gone(&silent, "ping timeout").await;
    wait_disconnections(&relay, "ping_timeout", 1.0).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn the_next_get_gets_the_close_packet_when_the_relay_closed_on_purpose() {
    let relay = start_relay(|c| {
        c.server.connect_timeout_ms = 500;
        c.server.ping_interval_ms = 300;
        c.server.ping_timeout_ms = 300;
    })
    .await;
    // Nobody polls when the connect timeout fires: the next GET, later, still gets it.
    let away = RawPolling::handshake(relay.socketio_addr).await;
    wait_disconnections(&relay, "connect_timeout", 1.0).await;
    assert_eq!(relay.inner().engine.session_count(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    expect_close_packet_then_gone(&away, "connect timeout, no GET waiting").await;

    // Not owed forever: once a client silent for a ping interval and timeout would have
    // given up by itself, its GET finds the session unknown.
    let gone = RawPolling::handshake(relay.socketio_addr).await;
    wait_disconnections(&relay, "connect_timeout", 2.0).await;
    tokio::time::sleep(Duration::from_millis(600 + 300)).await;
    let resp = gone.get_within(TIMEOUT).await.expect("GET not answered");
    assert_eq!(resp.status, 400, "{}", resp.body);

    // A session that broke (here: no pong) is forgotten at once, as by the reference
    // server: with no GET waiting, the next one finds it unknown.
    let silent = RawPolling::handshake(relay.socketio_addr).await;
    silent.connect_ns("/").await;
    wait_disconnections(&relay, "ping_timeout", 1.0).await;
    let resp = silent.get_within(TIMEOUT).await.expect("GET not answered");
    assert_eq!(resp.status, 400, "{}", resp.body);
    relay.shutdown().await;
}

/// socket.io-client over long-polling whose queue overflows: the relay ends its session
/// with the close packet, the client reports "transport close" and reconnects by itself.
#[tokio::test]
async fn socket_io_client_reconnects_after_the_close_packet() {
    // Room for about four of the floods below (each ~16 bytes plus 64 of bookkeeping).
    const QUEUE_BYTES: u64 = 4 * 80;
    let relay = start_relay(|c| c.limits.max_queued_bytes = QUEUE_BYTES).await;
    let mut client = relay
        .client(ClientKind::Js)
        .transports("polling")
        .connect()
        .await;
    let sid = client.sid("/").unwrap();

    // Far more than the queue holds, faster than the client polls.
    let mut accepted = 0;
    for n in 0..2000 {
        accepted += relay
            .push("/", &[&sid], "flood", json!([n]))
            .await
            .recipients;
        if relay.metric("sio_relay_disconnections_total{reason=\"queue_full\"}") == 1.0 {
            break;
        }
    }
    wait_disconnections(&relay, "queue_full", 1.0).await;
    assert!(accepted < 2000, "the queue never overflowed");

    let reason = client.wait_disconnect("/").await;
    assert_eq!(reason, "transport close", "{}", client.report());
    let line = client
        .try_wait_for(
            |v| is(v, "connect") && v["ns"] == "/" && v["sid"] != sid,
            TIMEOUT,
        )
        .await;
    assert!(line.is_some(), "did not reconnect\n{}", client.report());
    let new_sid = client.sid("/").unwrap();
    relay.push("/", &[&new_sid], "back", json!([])).await;
    client.wait_event("/", "back").await;
    client.exit().await;
    relay.shutdown().await;
}
