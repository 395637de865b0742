//! `[limits]` and `server.trusted_proxies`: connection caps per node and per client
//! address, the per-address handshake rate, and the client address behind a proxy.
//!
//! Storms come from raw sockets bound to a chosen loopback source address (127.0.0.1 or
//! 127.0.0.2), so one test can play two client hosts; the official clients check that a
//! client within the limits still connects.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::admin::metric_value;
use common::{ClientKind, TIMEOUT, start_relay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HOST_A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const HOST_B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A connection to `relay` from `source` (port chosen by the kernel).
async fn connect_from(source: IpAddr, relay: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    tokio::time::timeout(TIMEOUT, socket.connect(relay))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Sends `request` and reads the answer's status line's code; the connection stays open
/// (a WebSocket session lives on it).
async fn status_of(stream: &mut TcpStream, request: &str) -> u16 {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(TIMEOUT, async {
        while !head.ends_with(b"\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await
    .expect("an answer in time");
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
}

fn websocket_open(extra: &str) -> String {
    format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

fn polling_open(extra: &str) -> String {
    format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n")
}

/// Opens a WebSocket session (the listener's direct path) from `source`: its status and
/// the connection, kept open.
async fn websocket_from(source: IpAddr, relay: SocketAddr, extra: &str) -> (u16, TcpStream) {
    let mut stream = connect_from(source, relay).await;
    let status = status_of(&mut stream, &websocket_open(extra)).await;
    (status, stream)
}

/// The test process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_storm_from_one_address_is_capped_and_others_still_connect() {
    let relay = start_relay(|c| c.limits.max_connections_per_ip = 5).await;
    let addr = relay.socketio_addr;

    // 60 WebSocket opens at once from 127.0.0.1, each holding its connection.
    let storm: Vec<_> = (0..60)
        .map(|_| tokio::spawn(websocket_from(HOST_A, addr, "")))
        .collect();
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    for opened in storm {
        let (status, stream) = opened.await.unwrap();
        statuses.push(status);
        held.push(stream);
    }
    let opened = statuses.iter().filter(|s| **s == 101).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!((opened, refused), (5, 55), "{statuses:?}");

    // Polling from the same address is refused too; another address is not.
    let mut polling = connect_from(HOST_A, addr).await;
    assert_eq!(status_of(&mut polling, &polling_open("")).await, 503);
    let (status, _b) = websocket_from(HOST_B, addr, "").await;
    assert_eq!(status, 101);
    let mut polling = connect_from(HOST_B, addr).await;
    assert_eq!(status_of(&mut polling, &polling_open("")).await, 200);

    let metrics = relay.admin().metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "sio_relay_refused_connections_total{reason=\"max_connections_per_ip\"}"
        ),
        Some(56.0)
    );

    // Closing the held sessions frees their places.
    drop(held);
    common::eventually("places freed", TIMEOUT, || async {
        let (status, stream) = websocket_from(HOST_A, addr, "").await;
        (status == 101).then_some(stream)
    })
    .await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_rate_per_address_is_a_token_bucket_and_memory_stays_bounded() {
    let relay = start_relay(|c| c.limits.handshakes_per_second_per_ip = 3).await;
    let addr = relay.socketio_addr;

    let mut opened = 0;
    let mut refused = 0;
    for _ in 0..20 {
        let mut stream = connect_from(HOST_A, addr).await;
        match status_of(&mut stream, &polling_open("Connection: close\r\n")).await {
            200 => opened += 1,
            503 => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // A burst of 3, plus whatever the bucket refilled while the loop ran (3 per second).
    assert!((3..=6).contains(&opened), "{opened} opened");
    assert!(refused >= 14, "{refused} refused");
    let (status, _b) = websocket_from(HOST_B, addr, "").await;
    assert_eq!(status, 101, "another address has its own bucket");

    // A longer storm of refused handshakes keeps memory flat: nothing is kept per
    // refused attempt.
    let before = rss_kib();
    for _ in 0..4 {
        let storm: Vec<_> = (0..250)
            .map(|_| tokio::spawn(websocket_from(HOST_A, addr, "")))
            .collect();
        for opened in storm {
            let (status, _stream) = opened.await.unwrap();
            assert!(status == 503 || status == 101);
        }
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB over 1000 refused handshakes"
    );
    assert!(relay.inner().engine.admission().tracked_addresses() <= 2);

    // Refilled after a second: a client within the rate connects with an official client.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let client = relay.connect(ClientKind::Js, "websocket").await;
    client.exit().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_cap_counts_every_address_and_reloads() {
    let relay = start_relay(|c| c.limits.max_connections = 2).await;
    let addr = relay.socketio_addr;
    let (a, _a) = websocket_from(HOST_A, addr, "").await;
    let (b, _b) = websocket_from(HOST_B, addr, "").await;
    let (c, _c) = websocket_from(HOST_B, addr, "").await;
    assert_eq!((a, b, c), (101, 101, 503));
    let metrics = relay.admin().metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "sio_relay_refused_connections_total{reason=\"max_connections\"}"
        ),
        Some(1.0)
    );

    // Raised live (as on SIGHUP): the next handshake passes, the open sessions stay.
    let mut config = relay.config.clone();
    config.limits.max_connections = 3;
    assert_eq!(relay.inner().reload(config), Vec::<&str>::new());
    let (d, _d) = websocket_from(HOST_B, addr, "").await;
    assert_eq!(d, 101);
    assert_eq!(relay.inner().engine.session_count(), 3);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_counts_and_is_listed() {
    let relay = start_relay(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
        c.limits.max_connections_per_ip = 1;
    })
    .await;
    let addr = relay.socketio_addr;

    // Two clients through the proxy (127.0.0.1), each with its own forwarded address.
    let first = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .header("X-Forwarded-For", "203.0.113.5")
        .connect()
        .await;
    let second = relay
        .client(ClientKind::Py)
        .transports("polling")
        .header("X-Forwarded-For", "198.51.100.7, 127.0.0.1")
        .connect()
        .await;
    let listed = relay.admin().sockets("").await;
    let mut addresses: Vec<String> = listed.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["address"].as_str().unwrap().to_owned())
        .collect();
    addresses.sort();
    assert_eq!(addresses, ["198.51.100.7:0", "203.0.113.5:0"]);

    // The forwarded address is what the per-address cap counts...
    let (status, _s) = websocket_from(HOST_A, addr, "X-Forwarded-For: 203.0.113.5\r\n").await;
    assert_eq!(status, 503);
    // ...and from an untrusted peer the header is ignored: 127.0.0.2 is the client.
    let (status, _s) = websocket_from(HOST_B, addr, "X-Forwarded-For: 203.0.113.5\r\n").await;
    assert_eq!(status, 101);

    first.exit().await;
    second.exit().await;
    relay.shutdown().await;
}
