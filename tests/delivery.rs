//! Delivery guarantees with real clients: connection state recovery (socket.io-client 4.x
//! in Node with either parser and in headless Chromium on one node, and across a
//! three-node cluster on the Redis at 127.0.0.1:6379), idempotent emits, and a client
//! that stops reading.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::browser::{self, BROWSER_START, Browser};
use common::clients::{Client, ClientKind, ClientOptions, binary, is};
use common::{Admin, TIMEOUT, TestRelay, eventually, start_relay};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// A JS client on WebSocket, connected; its sid.
async fn js_client(url: String) -> (Client, String) {
    let client = ClientOptions::new(ClientKind::Js, url)
        .transports("websocket")
        .connect()
        .await;
    let sid = client.sid("/").expect("connected");
    (client, sid)
}

/// Waits until the cluster (or node) behind `admin` lists `n` sockets in `/`.
async fn wait_sockets(admin: &Admin, n: usize) {
    eventually(&format!("{n} sockets listed"), TIMEOUT, || async {
        let listing = admin.get("/v1/sockets").await;
        (listing.json["sockets"].as_array().map(Vec::len) == Some(n)).then_some(())
    })
    .await;
}

/// The `event` lines of `name` that `client` printed, in order.
fn received(client: &Client, name: &str) -> Vec<Value> {
    client
        .history()
        .iter()
        .filter(|v| is(v, "event") && v["event"] == name)
        .map(|v| v["args"].clone())
        .collect()
}

/// Reads lines until `client` has printed `n` events `name` in all; panics after `timeout`.
async fn read_events(client: &mut Client, name: &str, n: usize, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = received(client, name).len();
    while seen < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        client
            .wait_for(|v| is(v, "event") && v["event"] == name, left)
            .await;
        seen += 1;
    }
}

/// Kills the client's transport, pushes `n` events `e` to `room` through `admin` while
/// it is away, and waits for it to connect again; its `connect` line.
async fn away_while_pushed(
    client: &mut Client,
    admin: &Admin,
    room: &str,
    n: usize,
    pause_ms: u64,
) -> Value {
    client
        .send(json!({"cmd": "kill_transport", "pause_ms": pause_ms}))
        .await;
    client.wait_disconnect("/").await;
    wait_sockets(admin, 0).await;
    for i in 0..n {
        let resp = admin
            .emit(&json!({"to": room, "event": "e", "data": i}))
            .await;
        // The client may be back before the last ones (a loaded machine pushes slowly):
        // then they race with its recovery, which must not lose or double any either.
        if i == 0 {
            assert_eq!(resp.expect_status(200)["recipients"], 0);
        }
    }
    client
        .wait_for(
            |v| is(v, "connect"),
            Duration::from_millis(pause_ms) + TIMEOUT,
        )
        .await
}

/// After a recovery: `n` events `e` read in order, once each, each with its offset as its
/// last argument; then nothing but the `after` pushed to `sid`.
async fn check_replayed(client: &mut Client, admin: &Admin, sid: &str, n: usize) {
    read_events(client, "e", n, TIMEOUT).await;
    let resp = admin.emit(&json!({"to": sid, "event": "after"})).await;
    assert_eq!(resp.expect_status(200)["recipients"], 1);
    client.wait_event("/", "after").await;
    let got = received(client, "e");
    let values: Vec<Value> = got.iter().map(|args| args[0].clone()).collect();
    let expected: Vec<Value> = (0..n).map(|i| json!(i)).collect();
    assert_eq!(values, expected, "{}", client.report());
    for args in &got {
        let offset = args[1].as_str().expect("the offset, last");
        assert!(offset.contains('-'), "{offset}");
    }
}

fn recovery_on(config: &mut sio_relay::config::Config) {
    config.recovery.enabled = true;
}

/// The sid, rooms and the 100 events pushed while a socket.io-client was away come back:
/// same sid, `socket.recovered`, every event once and in order.
#[tokio::test]
async fn a_js_client_recovers_its_sid_rooms_and_missed_events() {
    let relay = start_relay(recovery_on).await;
    let admin = relay.admin();
    let (mut client, sid) = js_client(relay.url()).await;
    let connect = client.history().iter().find(|v| is(v, "connect")).cloned();
    assert_eq!(connect.unwrap()["recovered"], false);
    admin
        .join(&json!({"to": sid, "rooms": ["r"]}))
        .await
        .expect_status(200);
    // The client learns an offset from the first event it reads.
    admin
        .emit(&json!({"to": "r", "event": "warmup"}))
        .await
        .expect_status(200);
    let warmup = client.wait_event("/", "warmup").await;
    assert!(
        warmup[0].as_str().is_some_and(|o| o.contains('-')),
        "{warmup}"
    );

    let connect = away_while_pushed(&mut client, &admin, "r", 100, 1500).await;
    assert_eq!(connect["recovered"], true, "{}", client.report());
    assert_eq!(connect["sid"], sid);
    check_replayed(&mut client, &admin, &sid, 100).await;
    let listing = admin.get("/v1/sockets").await;
    assert_eq!(listing.json["sockets"][0]["rooms"], json!(["r"]));
    assert_eq!(
        relay.metric(r#"sio_relay_recoveries_total{outcome="recovered"}"#),
        1.0
    );
    assert!(relay.metric("sio_relay_recovery_buffered_messages") >= 101.0);
    client.exit().await;
    relay.shutdown().await;
}

/// A socket.io-msgpack-parser client recovers as a JSON one does: its CONNECT answer
/// carries the pid and the missed events come back in msgpack, binary included. A
/// socket.io-client 2.x one beside it (Socket.IO v4 has no recovery) gets the same pushes,
/// the offset included as from a Node.js server.
#[tokio::test]
async fn a_msgpack_client_recovers_beside_a_2x_client() {
    let relay = start_relay(recovery_on).await;
    let admin = relay.admin();
    let mut client = ClientOptions::new(ClientKind::Js, relay.url())
        .transports("websocket")
        .msgpack()
        .connect()
        .await;
    let sid = client.sid("/").expect("connected");
    let mut old = ClientOptions::new(ClientKind::Js, relay.url())
        .transports("websocket")
        .v2()
        .no_reconnect()
        .connect()
        .await;
    let old_sid = old.sid("/").expect("connected");
    admin
        .join(&json!({"to": [sid, old_sid], "rooms": ["r"]}))
        .await
        .expect_status(200);
    let data = binary(&[1, 2, 255]);
    admin
        .emit(&json!({"to": "r", "event": "warmup", "data": data}))
        .await
        .expect_status(200);
    for c in [&mut client, &mut old] {
        let warmup = c.wait_event("/", "warmup").await;
        assert_eq!(warmup[0], data, "{}", c.report());
        assert!(
            warmup[1].as_str().is_some_and(|o| o.contains('-')),
            "{warmup}"
        );
    }
    old.exit().await;
    wait_sockets(&admin, 1).await;

    // One binary event among the missed ones.
    client
        .send(json!({"cmd": "kill_transport", "pause_ms": 1500}))
        .await;
    client.wait_disconnect("/").await;
    wait_sockets(&admin, 0).await;
    admin
        .emit(&json!({"to": "r", "event": "bin", "data": data}))
        .await
        .expect_status(200);
    let connect = client
        .wait_for(|v| is(v, "connect"), Duration::from_millis(1500) + TIMEOUT)
        .await;
    assert_eq!(connect["recovered"], true, "{}", client.report());
    assert_eq!(connect["sid"], sid);
    let replayed = client.wait_event("/", "bin").await;
    assert_eq!(replayed[0], data, "{}", client.report());
    let connect = away_while_pushed(&mut client, &admin, "r", 50, 1500).await;
    assert_eq!(connect["recovered"], true, "{}", client.report());
    check_replayed(&mut client, &admin, &sid, 50).await;
    let listing = admin.get("/v1/sockets").await;
    assert_eq!(listing.json["sockets"][0]["parser"], "msgpack");
    assert_eq!(
        relay.metric(r#"sio_relay_recoveries_total{outcome="recovered"}"#),
        2.0
    );
    client.exit().await;
    relay.shutdown().await;
}

/// Past `max_disconnection_ms` the client gets a fresh socket, and nothing it missed.
#[tokio::test]
async fn after_the_window_a_client_starts_afresh() {
    let relay = start_relay(|c| {
        c.recovery.enabled = true;
        c.recovery.max_disconnection_ms = 1000;
    })
    .await;
    let admin = relay.admin();
    let (mut client, sid) = js_client(relay.url()).await;
    admin
        .emit(&json!({"to": sid, "event": "warmup"}))
        .await
        .expect_status(200);
    client.wait_event("/", "warmup").await;

    let connect = away_while_pushed(&mut client, &admin, &sid, 20, 2500).await;
    assert_eq!(connect["recovered"], false, "{}", client.report());
    let fresh = connect["sid"].as_str().unwrap().to_owned();
    assert_ne!(fresh, sid);
    admin
        .emit(&json!({"to": fresh, "event": "after"}))
        .await
        .expect_status(200);
    client.wait_event("/", "after").await;
    assert!(received(&client, "e").is_empty(), "{}", client.report());
    assert!(relay.metric(r#"sio_relay_recoveries_total{outcome="unknown_session"}"#) >= 1.0);
    client.exit().await;
    relay.shutdown().await;
}

/// With recovery off, the CONNECT answer carries no `pid` and events no offset.
#[tokio::test]
async fn recovery_off_changes_nothing_on_the_wire() {
    let relay = start_relay(|_| {}).await;
    let (mut client, sid) = js_client(relay.url()).await;
    relay.push("/", &[&sid], "plain", json!([1])).await;
    assert_eq!(client.wait_event("/", "plain").await, json!([1]));
    client.exit().await;
    relay.shutdown().await;
}

/// A TCP hop in front of the relay's client listener that the test cuts as a network
/// failure would: every connection through it ends at once, without a close frame, and new
/// ones are refused until it is mended.
struct Cable {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cable {
    async fn to(relay: SocketAddr) -> Cable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cable = Cable {
            addr: listener.local_addr().unwrap(),
            up: Arc::new(AtomicBool::new(true)),
            links: Arc::default(),
        };
        let (up, links) = (cable.up.clone(), cable.links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(relay).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.lock().unwrap().push(link.abort_handle());
            }
        });
        cable
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn mend(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The same recovery in a real browser: Chromium loses its connection while 100 events are
/// pushed, reconnects with the same sid, `recovered`, and gets all 100 in order, once each.
#[tokio::test]
async fn a_browser_client_recovers_its_missed_events() {
    if !browser::available() {
        return;
    }
    let relay = start_relay(recovery_on).await;
    let admin = relay.admin();
    let cable = Cable::to(relay.inner().socketio_addr).await;
    let url = format!("http://{}", cable.addr);
    let mut browser = Browser::open(&url, json!({"reconnection_delay_ms": 1000})).await;
    let connect = browser.next("connect", None, BROWSER_START).await;
    assert_eq!(connect["recovered"], false);
    let sid = connect["sid"].as_str().unwrap().to_owned();
    admin
        .join(&json!({"to": sid, "rooms": ["r"]}))
        .await
        .expect_status(200);
    admin
        .emit(&json!({"to": "r", "event": "warmup"}))
        .await
        .expect_status(200);
    browser.next("event", Some("warmup"), TIMEOUT).await;

    cable.cut();
    browser.next("disconnect", None, TIMEOUT).await;
    wait_sockets(&admin, 0).await;
    for i in 0..100 {
        let resp = admin
            .emit(&json!({"to": "r", "event": "e", "data": i}))
            .await;
        assert_eq!(resp.expect_status(200)["recipients"], 0);
    }
    cable.mend();
    let connect = browser.next("connect", None, TIMEOUT).await;
    assert_eq!(connect["recovered"], true, "{:?}", browser.seen);
    assert_eq!(connect["sid"], sid);
    admin
        .emit(&json!({"to": sid, "event": "after"}))
        .await
        .expect_status(200);
    browser.next("event", Some("after"), TIMEOUT).await;
    let replayed: Vec<Value> = browser.events("e").iter().map(|a| a[0].clone()).collect();
    let expected: Vec<Value> = (0..100).map(|i| json!(i)).collect();
    assert_eq!(replayed, expected);
    browser.close().await;
    relay.shutdown().await;
}

/// The Redis on development and CI machines.
#[cfg(feature = "redis")]
const REDIS: &str = "redis://127.0.0.1:6379";

#[cfg(feature = "redis")]
fn prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("sio-relay-test-{test}-{nanos}")
}

#[cfg(feature = "redis")]
async fn cluster_node(prefix: &str, recovery: bool) -> TestRelay {
    let prefix = prefix.to_owned();
    let relay = start_relay(move |config| {
        config.cluster.adapter = sio_relay::config::AdapterKind::Redis;
        config.cluster.redis_url = REDIS.into();
        config.cluster.key_prefix = prefix;
        config.recovery.enabled = recovery;
    })
    .await;
    eventually("the node to be ready", TIMEOUT, || async {
        (relay.admin().get("/readyz").await.status == 200).then_some(())
    })
    .await;
    relay
}

/// A load balancer in front of the nodes: each new connection goes to the node `target`
/// names at the time.
#[cfg(feature = "redis")]
async fn balancer(target: Arc<Mutex<SocketAddr>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = *target.lock().unwrap();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

/// Three nodes: the client is recovered by another node than the one it left, with the
/// events pushed meanwhile through the third.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_js_client_recovers_on_another_node_of_the_cluster() {
    recovers_on_another_node("recover", false).await;
}

/// The same with the msgpack parser: the node that recovers it encodes the events read
/// from the Redis log in msgpack.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_msgpack_client_recovers_on_another_node_of_the_cluster() {
    recovers_on_another_node("recover-msgpack", true).await;
}

#[cfg(feature = "redis")]
async fn recovers_on_another_node(test: &str, msgpack: bool) {
    let prefix = prefix(test);
    let a = cluster_node(&prefix, true).await;
    let b = cluster_node(&prefix, true).await;
    let c = cluster_node(&prefix, true).await;
    let target = Arc::new(Mutex::new(a.inner().socketio_addr));
    let front = balancer(target.clone()).await;
    let mut options =
        ClientOptions::new(ClientKind::Js, format!("http://{front}")).transports("websocket");
    if msgpack {
        options = options.msgpack();
    }
    let mut client = options.connect().await;
    let sid = client.sid("/").expect("connected");
    let admin = c.admin();
    admin
        .join(&json!({"to": sid, "rooms": ["r"]}))
        .await
        .expect_status(200);
    admin
        .emit(&json!({"to": "r", "event": "warmup"}))
        .await
        .expect_status(200);
    client.wait_event("/", "warmup").await;

    *target.lock().unwrap() = b.inner().socketio_addr;
    let connect = away_while_pushed(&mut client, &admin, "r", 100, 1500).await;
    assert_eq!(connect["recovered"], true, "{}", client.report());
    assert_eq!(connect["sid"], sid);
    check_replayed(&mut client, &admin, &sid, 100).await;
    // It is on B now, in its room.
    let on_b = b
        .inner()
        .adapter
        .local()
        .sockets(&sio_relay::adapter::Target {
            namespace: "/".into(),
            ..Default::default()
        });
    assert_eq!(on_b.items.len(), 1);
    assert_eq!(on_b.items[0].rooms, ["r"]);
    assert_eq!(
        b.metric(r#"sio_relay_recoveries_total{outcome="recovered"}"#),
        1.0
    );
    client.exit().await;
    for node in [a, b, c] {
        node.shutdown().await;
    }
}

async fn emit_with_key(admin: &Admin, key: &str, body: &Value) -> common::admin::HttpResponse {
    admin
        .request(
            Method::POST,
            "/v1/emit",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
}

/// Ten repeats of one `Idempotency-Key`, through two nodes of a cluster: one delivery,
/// ten byte-identical answers.
#[cfg(feature = "redis")]
#[tokio::test]
async fn an_idempotent_emit_repeated_across_two_nodes_arrives_once() {
    let prefix = prefix("idempotency");
    let a = cluster_node(&prefix, false).await;
    let b = cluster_node(&prefix, false).await;
    let (mut client, sid) = js_client(a.url()).await;
    let body = json!({"to": sid, "event": "once", "data": 1});
    let mut answers = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        let resp = emit_with_key(&node.admin(), "order-42", &body).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        answers.push(resp.body);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0], r#"{"recipients":1}"#);
    client.wait_event("/", "once").await;
    client
        .expect_none(|v| is(v, "event") && v["event"] == "once", common::QUIET)
        .await;
    let repeats = a.metric("sio_relay_idempotent_repeats_total")
        + b.metric("sio_relay_idempotent_repeats_total");
    assert_eq!(repeats, 9.0);
    // Another key sends again.
    let resp = emit_with_key(&b.admin(), "order-43", &body).await;
    assert_eq!(resp.status, 200);
    client.wait_event("/", "once").await;
    client.exit().await;
    a.shutdown().await;
    b.shutdown().await;
}

/// On one node: a refused body uses no key, a bad key is refused, and repeats send nothing.
#[tokio::test]
async fn idempotency_keys_on_one_node() {
    let relay = start_relay(|_| {}).await;
    let admin = relay.admin();
    let (mut client, sid) = js_client(relay.url()).await;
    let bad = emit_with_key(&admin, "k1", &json!({"event": "x"})).await;
    assert_eq!(bad.status, 400);
    let bad_key = emit_with_key(&admin, "has space", &json!({"to": sid, "event": "x"})).await;
    assert_eq!(bad_key.error_code(), Some("invalid_field"));
    let body = json!([{"to": sid, "event": "one"}, {"to": "nobody", "event": "two"}]);
    let first = emit_with_key(&admin, "k1", &body).await;
    let again = emit_with_key(&admin, "k1", &body).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, again.body);
    assert_eq!(first.body, r#"[{"recipients":1},{"recipients":0}]"#);
    client.wait_event("/", "one").await;
    client
        .expect_none(|v| is(v, "event") && v["event"] == "one", common::QUIET)
        .await;
    client.exit().await;
    relay.shutdown().await;
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A socket.io-client that stops reading while 10,000 pushes go to its room is
/// disconnected; the relay's memory stays bounded and the other client gets every push.
#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_others_get_every_push() {
    let relay = start_relay(|c| c.limits.max_queued_bytes = 256 * 1024).await;
    let admin = relay.admin();
    let (mut slow, slow_sid) = js_client(relay.url()).await;
    let (mut reader, reader_sid) = js_client(relay.url()).await;
    admin
        .join(&json!({"to": [slow_sid, reader_sid], "rooms": ["r"]}))
        .await
        .expect_status(200);
    slow.send(json!({"cmd": "stop_reading"})).await;
    let before = rss_kib();
    let payload = "x".repeat(1024);
    const N: usize = 10_000;
    const BATCH: usize = 100;
    for start in (0..N).step_by(BATCH) {
        let batch: Vec<Value> = (start..start + BATCH)
            .map(|i| json!({"to": "r", "event": "push", "args": [i, payload]}))
            .collect();
        admin.emit(&json!(batch)).await.expect_status(200);
    }
    read_events(&mut reader, "push", N, Duration::from_secs(90)).await;
    let got = received(&reader, "push");
    let order: Vec<u64> = got.iter().filter_map(|a| a[0].as_u64()).collect();
    assert_eq!(order, (0..N as u64).collect::<Vec<_>>());
    assert_eq!(
        relay.metric(r#"sio_relay_disconnections_total{reason="queue_full"}"#),
        1.0
    );
    assert!(relay.metric(r#"sio_relay_dropped_total{reason="slow_client"}"#) >= 1.0);
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 200, "the relay grew by {grown_mib} MiB");
    reader.exit().await;
    slow.exit().await;
    relay.shutdown().await;
}
