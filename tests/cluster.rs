//! Clusters over Redis: sio-relay nodes sharing the Redis on 127.0.0.1:6379 (each test
//! under its own key prefix), a real Node.js Socket.IO server with
//! `@socket.io/redis-adapter` in the same cluster, `@socket.io/redis-emitter` and
//! python-socketio's write-only `AsyncRedisManager` publishing to it, a node killed with
//! SIGKILL, and a private Redis stopped and restarted under running nodes.

#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::admin::metric_value;
use common::clients::{Client, ClientKind, is};
use common::peers::{Peer, PrivateRedis, numsub};
use common::{Admin, RelayProcess, TestRelay, spawn_relay_process, start_relay};
use serde_json::{Value, json};
use sio_relay::config::AdapterKind;

/// The shared Redis of development and CI machines.
const REDIS: &str = "redis://127.0.0.1:6379";

/// A key prefix no other test uses.
fn prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("sio-relay-test-{test}-{nanos}")
}

/// Waits until `GET /readyz` answers `status`; panics after `within`.
async fn wait_readyz(admin: &Admin, status: u16, within: Duration) {
    common::eventually(&format!("/readyz {status}"), within, || async {
        (admin.get("/readyz").await.status == status).then_some(())
    })
    .await;
}

/// An in-process cluster node on the Redis at `url`, ready.
async fn node(url: &str, prefix: &str, timeout_ms: u64) -> TestRelay {
    node_with(url, prefix, timeout_ms, |_| {}).await
}

async fn node_with(
    url: &str,
    prefix: &str,
    timeout_ms: u64,
    tweak: impl FnOnce(&mut sio_relay::config::Config),
) -> TestRelay {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    let relay = start_relay(move |config| {
        config.cluster.adapter = AdapterKind::Redis;
        config.cluster.redis_url = url;
        config.cluster.key_prefix = prefix;
        config.cluster.request_timeout_ms = timeout_ms;
        tweak(config);
    })
    .await;
    wait_readyz(&relay.admin(), 200, common::TIMEOUT).await;
    relay
}

/// A cluster node running as the built binary (so that it can be stopped or killed, and
/// its log read), ready.
async fn node_process(prefix: &str, timeout_ms: u64, extra: &[(&str, &str)]) -> RelayProcess {
    let timeout = timeout_ms.to_string();
    let mut env = vec![
        ("SIO_RELAY_CLUSTER_ADAPTER", "redis"),
        ("SIO_RELAY_CLUSTER_REDIS_URL", REDIS),
        ("SIO_RELAY_CLUSTER_KEY_PREFIX", prefix),
        ("SIO_RELAY_CLUSTER_REQUEST_TIMEOUT_MS", timeout.as_str()),
    ];
    env.extend_from_slice(extra);
    let relay = spawn_relay_process(&[], &env).await;
    wait_readyz(&relay.admin(None), 200, common::TIMEOUT).await;
    relay
}

/// Names of the events `client` read in `ns`, in order.
fn events(client: &Client, ns: &str) -> Vec<String> {
    client
        .history()
        .iter()
        .filter(|v| is(v, "event") && v["ns"] == ns)
        .map(|v| v["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Broadcasts `end` through `admin` and checks that each client then read exactly
/// `expected[i]` (plus `end`) in `/`: every event it should get, once, and nothing else.
async fn expect_exactly(admin: &common::Admin, clients: &mut [&mut Client], expected: &[&[&str]]) {
    let resp = admin
        .emit(&json!({"broadcast": true, "event": "end"}))
        .await;
    resp.expect_status(200);
    for (client, want) in clients.iter_mut().zip(expected) {
        client.wait_event("/", "end").await;
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.push("end".into());
        want.sort();
        // Compared as sets: the Python asyncio client handles each message on a task of
        // its own, so events that arrive together may be reported in either order.
        let mut got = events(client, "/");
        got.sort();
        assert_eq!(
            got,
            want,
            "{} client {:?}\n{}",
            client.kind().name(),
            client.sid("/"),
            client.report()
        );
    }
}

fn sids_of(listing: &Value) -> Vec<String> {
    let mut sids: Vec<String> = listing["sockets"]
        .as_array()
        .expect("a socket list")
        .iter()
        .map(|s| s["sid"].as_str().unwrap().to_owned())
        .collect();
    sids.sort();
    sids
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    items.sort();
    items
}

#[tokio::test]
async fn admin_calls_through_one_node_reach_clients_on_another() {
    let prefix = prefix("two");
    let a = node(REDIS, &prefix, 1000).await;
    let b = node(REDIS, &prefix, 1000).await;
    let mut client = b.connect(ClientKind::Js, "websocket").await;
    let sid = client.sid("/").expect("connected without a sid");

    let resp = a
        .admin()
        .emit(&json!({"to": sid, "event": "hello", "data": {"n": 1}}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    assert_eq!(client.wait_event("/", "hello").await, json!([{"n": 1}]));

    let resp = a
        .admin()
        .join(&json!({"to": sid, "rooms": ["room1"]}))
        .await;
    assert_eq!(resp.expect_status(200)["sockets"], 1);
    let resp = a
        .admin()
        .emit(&json!({"to": "room1", "event": "in-room", "data": 2}))
        .await;
    assert_eq!(resp.expect_status(200)["recipients"], 1);
    assert_eq!(client.wait_event("/", "in-room").await, json!([2]));

    let resp = a.admin().get("/v1/sockets").await;
    let sockets = resp.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0]["sid"], sid.as_str());
    assert_eq!(sockets[0]["rooms"], json!(["room1"]));
    assert_eq!(sockets[0]["transport"], "websocket");

    client.exit().await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Three nodes, one client of each library on each: an admin call through any node means
/// the whole cluster.
#[tokio::test]
async fn three_nodes_act_as_one() {
    let prefix = prefix("three");
    let (a, b, c) = tokio::join!(
        node(REDIS, &prefix, 2000),
        node(REDIS, &prefix, 2000),
        node(REDIS, &prefix, 2000)
    );
    let (mut ca, mut cb, mut cc) = tokio::join!(
        a.client(ClientKind::Js)
            .transports("websocket")
            .no_reconnect()
            .ack("*", json!(["from-a"]))
            .connect(),
        b.client(ClientKind::Py)
            .transports("polling")
            .no_reconnect()
            .ack("*", json!(["from-b"]))
            .connect(),
        c.client(ClientKind::PyAsync)
            .no_reconnect()
            .ack("*", json!(["from-c"]))
            .connect(),
    );
    let (sa, sb, sc) = (
        ca.sid("/").unwrap(),
        cb.sid("/").unwrap(),
        cc.sid("/").unwrap(),
    );

    // To one sid, posted to A, delivered on C.
    let resp = a
        .admin()
        .emit(&json!({"to": sc, "event": "to-c", "data": 1}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    assert_eq!(cc.wait_event("/", "to-c").await, json!([1]));

    // A room joined through B, emitted to through C.
    let resp = b
        .admin()
        .join(&json!({"to": [sa, sc], "rooms": ["r1"]}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 2}));
    let resp = c
        .admin()
        .emit(&json!({"to": "r1", "event": "in-r1", "data": 2}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 2}));
    // Except, through B: everyone but r1.
    let resp = b
        .admin()
        .emit(&json!({"broadcast": true, "except": "r1", "event": "not-r1"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));

    // Listings through any node cover the cluster.
    for node in [&a, &b, &c] {
        let resp = node.admin().sockets("").await;
        let listing = resp.expect_status(200);
        assert_eq!(sids_of(listing), sorted(&[&sa, &sb, &sc]), "{listing}");
        assert!(listing.get("partial").is_none(), "{listing}");
        for socket in listing["sockets"].as_array().unwrap() {
            let rooms = if socket["sid"] == sb.as_str() {
                json!([])
            } else {
                json!(["r1"])
            };
            assert_eq!(socket["rooms"], rooms, "{socket}");
            assert!(socket["transport"].is_string(), "{socket}");
            assert!(socket["address"].is_string(), "{socket}");
        }
        let resp = node.admin().rooms("").await;
        assert_eq!(
            resp.expect_status(200)["rooms"],
            json!([{"name": "r1", "size": 2}])
        );
    }

    // Acks from every node, collected by the node that was asked.
    let started = Instant::now();
    let resp = b
        .admin()
        .emit(&json!({"broadcast": true, "event": "ask", "ack_timeout_ms": 5000}))
        .await;
    let answer = resp.expect_status(200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered once all acks were in"
    );
    assert_eq!(answer["recipients"], 3, "{answer}");
    assert_eq!(answer["timeouts"], json!([]), "{answer}");
    let mut acks: Vec<(String, Value)> = answer["acks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ack| (ack["sid"].as_str().unwrap().to_owned(), ack["args"].clone()))
        .collect();
    acks.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (sa.clone(), json!(["from-a"])),
        (sb.clone(), json!(["from-b"])),
        (sc.clone(), json!(["from-c"])),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(acks, want);

    // Each client got what was meant for it, once, and nothing else.
    expect_exactly(
        &a.admin(),
        &mut [&mut ca, &mut cb, &mut cc],
        &[
            &["in-r1", "ask"],
            &["not-r1", "ask"],
            &["to-c", "in-r1", "ask"],
        ],
    )
    .await;

    // B holds neither C's sid nor room r1: both pushes were dropped by their channel,
    // without decoding.
    let metrics = b.admin().metrics().await;
    assert_eq!(
        metric_value(&metrics, "sio_relay_cluster_broadcasts_skipped_total"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "sio_relay_cluster_redis_connected"),
        Some(1.0)
    );

    tokio::join!(ca.exit(), cb.exit(), cc.exit());
    tokio::join!(a.shutdown(), b.shutdown(), c.shutdown());
}

/// A real Node.js Socket.IO 4 server with `@socket.io/redis-adapter` 8 shares the cluster.
#[tokio::test]
async fn a_node_server_shares_the_cluster() {
    let prefix = prefix("mixed");
    let relay = node(REDIS, &prefix, 2000).await;
    let (mut server, port) = Peer::node_server(REDIS, &prefix).await;
    let node_url = format!("http://127.0.0.1:{port}");
    let (mut on_node, mut on_relay) = tokio::join!(
        common::ClientOptions::new(ClientKind::Js, node_url)
            .transports("websocket")
            .no_reconnect()
            .ack("*", json!(["node-client", 2]))
            .connect(),
        relay.connect(ClientKind::Py, "websocket"),
    );
    let (sn, sr) = (on_node.sid("/").unwrap(), on_relay.sid("/").unwrap());
    assert_eq!(sn.len(), 20);
    assert_eq!(sr.len(), 20, "sio-relay ids look like Node's");

    // A sio-relay admin emit reaches a client of the Node server, and counts it: Node
    // servers do not report how many sockets a broadcast reached, so the relay asks them.
    let resp = relay
        .admin()
        .emit(&json!({"to": sn, "event": "from-relay", "data": {"k": [1, null]}}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    assert_eq!(
        on_node.wait_event("/", "from-relay").await,
        json!([{"k": [1, null]}])
    );
    // With an ack, the Node server reports its recipients and relays the first argument.
    let resp = relay
        .admin()
        .emit(&json!({"to": sn, "event": "ask", "ack_timeout_ms": 3000}))
        .await;
    assert_eq!(
        resp.expect_status(200),
        &json!({"recipients": 1, "acks": [{"sid": null, "args": ["node-client"]}], "timeouts": []})
    );

    // The Node server's io.to(room).emit() and fetchSockets() see the relay's client.
    let resp = relay
        .admin()
        .join(&json!({"to": sr, "rooms": ["mixed-room"]}))
        .await;
    assert_eq!(resp.expect_status(200)["sockets"], 1);
    server
        .call(json!({"cmd": "emit", "to": "mixed-room", "event": "from-node", "args": ["x", 3]}))
        .await;
    assert_eq!(on_relay.wait_event("/", "from-node").await, json!(["x", 3]));
    let fetched = server.call(json!({"cmd": "fetch"})).await;
    let mut found: Vec<(String, Vec<String>)> = fetched["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut rooms: Vec<String> = serde_json::from_value(s["rooms"].clone()).unwrap();
            rooms.sort();
            (s["id"].as_str().unwrap().to_owned(), rooms)
        })
        .collect();
    found.sort();
    let mut want = vec![
        (sn.clone(), vec![sn.clone()]),
        (sr.clone(), sorted(&[&sr, "mixed-room"])),
    ];
    want.sort();
    assert_eq!(found, want);
    let in_room = server
        .call(json!({"cmd": "fetch", "to": "mixed-room"}))
        .await;
    assert_eq!(in_room["sockets"].as_array().unwrap().len(), 1);

    // A room spread over both kinds of nodes: the total counts both, each client gets
    // the emit once; a room nobody is in counts none.
    let resp = relay
        .admin()
        .join(&json!({"to": sn, "rooms": ["mixed-room"]}))
        .await;
    resp.expect_status(200);
    let in_room = server
        .call(json!({"cmd": "fetch", "to": "mixed-room"}))
        .await;
    assert_eq!(in_room["sockets"].as_array().unwrap().len(), 2);
    let resp = relay
        .admin()
        .emit(&json!({"to": "mixed-room", "event": "to-both"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 2}));
    on_relay.wait_event("/", "to-both").await;
    let resp = relay
        .admin()
        .emit(&json!({"to": "nobody-here", "event": "to-none"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 0}));
    let resp = relay
        .admin()
        .emit(&json!({"broadcast": true, "except": sr, "event": "to-node-only"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));

    // The relay lists the Node server's socket too, with what that protocol tells.
    let resp = relay.admin().sockets("").await;
    let listing = resp.expect_status(200);
    assert_eq!(sids_of(listing), sorted(&[&sn, &sr]));
    let node_socket = listing["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sid"] == sn.as_str())
        .unwrap();
    assert_eq!(node_socket["transport"], Value::Null);
    assert_eq!(node_socket["address"], "127.0.0.1");
    assert!(node_socket["connected_at"].is_string());

    on_node.wait_event("/", "to-node-only").await;
    tokio::time::sleep(common::QUIET).await;
    on_relay
        .try_wait_for(|_| false, Duration::from_millis(50))
        .await;
    on_node
        .try_wait_for(|_| false, Duration::from_millis(50))
        .await;
    let events_on_node: Vec<String> = events(&on_node, "/");
    assert_eq!(
        events_on_node,
        ["from-relay", "ask", "to-both", "to-node-only"]
    );
    assert_eq!(events(&on_relay, "/"), ["from-node", "to-both"]);
    tokio::join!(on_node.exit(), on_relay.exit(), server.exit());
    relay.shutdown().await;
}

/// `@socket.io/redis-emitter` and python-socketio's write-only `AsyncRedisManager` push to
/// sio-relay clients unchanged; a pickled python message is dropped and logged.
#[tokio::test]
async fn emitters_reach_relay_clients() {
    let prefix = prefix("emitters");
    let channel = format!("{prefix}-python");
    let env = [
        ("SIO_RELAY_CLUSTER_PYTHON_SOCKETIO", "true"),
        (
            "SIO_RELAY_CLUSTER_PYTHON_SOCKETIO_CHANNEL",
            channel.as_str(),
        ),
        ("SIO_RELAY_SERVER_NAMESPACES", "/,/chat/*"),
    ];
    let p = node_process(&prefix, 2000, &env).await;
    let b = node_with(REDIS, &prefix, 2000, |config| {
        config.cluster.python_socketio = true;
        config.cluster.python_socketio_channel = channel.clone();
        config.server.namespaces = vec!["/".into(), "/chat/*".into()];
    })
    .await;
    let (mut c1, mut c2, mut c3, mut emitter, mut python) = tokio::join!(
        p.connect(ClientKind::Js, "websocket"),
        b.connect(ClientKind::PyAsync, "websocket"),
        b.client(ClientKind::Js)
            .ns("/")
            .ns("/chat/x")
            .no_reconnect()
            .connect(),
        Peer::node_emitter(REDIS, &prefix),
        Peer::python_manager(REDIS, &channel),
    );
    let (s1, s2) = (c1.sid("/").unwrap(), c2.sid("/").unwrap());

    // /chat/x is allowed by a wildcard and was never named in an admin call: B subscribed
    // it when c3 joined.
    let chat_requests = format!("{prefix}-request#/chat/x#");
    common::eventually("/chat/x subscribed", common::TIMEOUT, || async {
        (numsub(REDIS, &chat_requests).await == 1).then_some(())
    })
    .await;
    emitter
        .call(json!({"cmd": "emit", "ns": "/chat/x", "event": "chat", "args": ["hi"]}))
        .await;
    assert_eq!(c3.wait_event("/chat/x", "chat").await, json!(["hi"]));

    // Rooms: c1 through the admin API, c2 through python-socketio's enter_room.
    let resp = b.admin().join(&json!({"to": s1, "rooms": ["grp"]})).await;
    assert_eq!(resp.expect_status(200)["sockets"], 1);
    python
        .call(json!({"cmd": "enter_room", "sid": s2, "room": "grp"}))
        .await;
    common::eventually("c2 in grp", common::TIMEOUT, || async {
        let resp = p.admin(None).sockets("to=grp").await;
        (resp.json["sockets"].as_array().map(Vec::len) == Some(2)).then_some(())
    })
    .await;

    // @socket.io/redis-emitter: one sid, a room with an exception, binary and a date.
    emitter
        .call(json!({"cmd": "emit", "to": s1, "event": "e-sid", "args": [{"a": 1}]}))
        .await;
    emitter
        .call(
            json!({"cmd": "emit", "to": "grp", "except": s1, "event": "e-room",
            "args": [{"$binary": "AQID"}, {"$date": "1970-01-01T00:00:00.000Z"}]}),
        )
        .await;
    // python-socketio: one sid (`to`), a room with skip_sid.
    python
        .call(json!({"cmd": "emit", "event": "p-sid", "data": "x", "to": s2}))
        .await;
    python
        .call(json!({"cmd": "emit", "event": "p-room", "data": [1, 2], "room": "grp", "skip_sid": s2}))
        .await;
    // A pickled message (python-socketio 5.13 and older): dropped, never decoded.
    python
        .call(
            json!({"cmd": "pickle", "message": {"method": "emit", "event": "pickled",
            "data": "x", "namespace": "/", "room": null, "skip_sid": null,
            "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}}),
        )
        .await;
    let logged = p
        .wait_stderr(|line| line.contains("pickled"), common::TIMEOUT)
        .await
        .expect("the relay logs the pickled message");
    assert!(logged.contains("5.14"), "the log line says why: {logged}");

    assert_eq!(c1.wait_event("/", "e-sid").await, json!([{"a": 1}]));
    let c2_events = c2.wait_events("/", &["e-room", "p-sid"]).await;
    assert_eq!(
        c2_events["e-room"],
        json!([{"$binary": "AQID"}, "1970-01-01T00:00:00.000Z"])
    );
    assert_eq!(c2_events["p-sid"], json!(["x"]));
    assert_eq!(c1.wait_event("/", "p-room").await, json!([[1, 2]]));
    expect_exactly(
        &b.admin(),
        &mut [&mut c1, &mut c2, &mut c3],
        &[&["e-sid", "p-room"], &["e-room", "p-sid"], &[]],
    )
    .await;

    tokio::join!(
        c1.exit(),
        c2.exit(),
        c3.exit(),
        emitter.exit(),
        python.exit()
    );
    b.shutdown().await;
}

/// A node that hangs, then dies (SIGKILL) in the middle of a request: the other nodes keep
/// serving, calls answer within the request timeout and say they are partial.
#[tokio::test]
async fn a_dead_node_delays_calls_by_the_request_timeout_at_most() {
    const TIMEOUT_MS: u64 = 1500;
    let bound = Duration::from_millis(TIMEOUT_MS + 1000);
    let prefix = prefix("kill");
    let (p1, p2, mut p3) = tokio::join!(
        node_process(&prefix, TIMEOUT_MS, &[]),
        node_process(&prefix, TIMEOUT_MS, &[]),
        node_process(&prefix, TIMEOUT_MS, &[]),
    );
    let (mut c1, mut c2, c3) = tokio::join!(
        p1.connect(ClientKind::Js, "websocket"),
        p2.connect(ClientKind::Py, "websocket"),
        p3.connect(ClientKind::Js, "websocket"),
    );
    let (s1, s2) = (c1.sid("/").unwrap(), c2.sid("/").unwrap());
    let resp = p1.admin(None).sockets("").await;
    assert_eq!(
        resp.expect_status(200)["sockets"].as_array().unwrap().len(),
        3
    );

    // P3 stops answering (still subscribed, so still counted).
    p3.signal(nix::sys::signal::Signal::SIGSTOP);
    let started = Instant::now();
    let resp = p1.admin(None).sockets("").await;
    let listing = resp.expect_status(200);
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    assert_eq!(listing["partial"], true, "{listing}");
    assert_eq!(sids_of(listing), sorted(&[&s1, &s2]));
    let started = Instant::now();
    let resp = p1
        .admin(None)
        .emit(&json!({"broadcast": true, "event": "while-hung"}))
        .await;
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    assert_eq!(
        resp.expect_status(200),
        &json!({"recipients": 2, "partial": true})
    );

    // P3 dies while P2 waits for its answer.
    let admin2 = p2.admin(None);
    let started = Instant::now();
    let pending = tokio::spawn(async move { admin2.rooms("").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    p3.kill().await;
    let resp = pending.await.unwrap();
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    assert_eq!(resp.expect_status(200)["partial"], true, "{}", resp.body);

    // Once Redis has dropped the dead node, calls are complete and prompt again.
    let started = Instant::now();
    let resp = p2.admin(None).sockets("").await;
    let listing = resp.expect_status(200);
    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS));
    assert!(listing.get("partial").is_none(), "{listing}");
    assert_eq!(sids_of(listing), sorted(&[&s1, &s2]));
    let resp = p2
        .admin(None)
        .emit(&json!({"to": s1, "event": "after"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    expect_exactly(
        &p1.admin(None),
        &mut [&mut c1, &mut c2],
        &[&["while-hung", "after"], &["while-hung"]],
    )
    .await;

    drop(c3);
    tokio::join!(c1.exit(), c2.exit());
}

/// Redis stops and comes back under two running nodes: readiness follows, admin calls are
/// refused meanwhile, clients stay connected, nothing is delivered twice, and delivery
/// resumes without restarting anything.
#[tokio::test]
async fn redis_outage_and_recovery() {
    let mut redis = PrivateRedis::start().await;
    let url = redis.url();
    let prefix = prefix("outage");
    let (a, b) = tokio::join!(node(&url, &prefix, 1000), node(&url, &prefix, 1000));
    let (mut ca, mut cb) = tokio::join!(
        a.connect(ClientKind::Js, "websocket"),
        b.connect(ClientKind::Py, "polling"),
    );
    let (sa, sb) = (ca.sid("/").unwrap(), cb.sid("/").unwrap());
    let resp = a.admin().emit(&json!({"to": sb, "event": "before"})).await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    cb.wait_event("/", "before").await;

    redis.stop().await;
    let stopped = Instant::now();
    for node in [&a, &b] {
        wait_readyz(&node.admin(), 503, Duration::from_secs(5)).await;
    }
    assert!(stopped.elapsed() < Duration::from_secs(5));
    for resp in [
        a.admin().emit(&json!({"to": sb, "event": "lost"})).await,
        b.admin()
            .emit(&json!({"broadcast": true, "event": "lost"}))
            .await,
        a.admin().sockets("").await,
        b.admin().join(&json!({"to": sa, "rooms": ["x"]})).await,
    ] {
        assert_eq!(resp.status, 503, "{}", resp.body);
        assert_eq!(
            resp.error_code(),
            Some("cluster_unavailable"),
            "{}",
            resp.body
        );
    }
    assert_eq!(ca.status().await["connected"]["/"], sa.as_str());
    assert_eq!(cb.status().await["connected"]["/"], sb.as_str());

    redis.restart().await;
    let back = Instant::now();
    for node in [&a, &b] {
        wait_readyz(&node.admin(), 200, Duration::from_secs(10)).await;
    }
    assert!(back.elapsed() < Duration::from_secs(10));
    let metrics = a.admin().metrics().await;
    assert_eq!(
        metric_value(&metrics, "sio_relay_cluster_redis_disconnections_total"),
        Some(1.0)
    );

    // Same sessions, no restart: delivery works both ways, once.
    let resp = a.admin().emit(&json!({"to": sb, "event": "after"})).await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    let resp = b.admin().emit(&json!({"to": sa, "event": "after"})).await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    assert_eq!(ca.sid("/").as_deref(), Some(sa.as_str()));
    expect_exactly(
        &b.admin(),
        &mut [&mut ca, &mut cb],
        &[&["after"], &["before", "after"]],
    )
    .await;

    tokio::join!(ca.exit(), cb.exit());
    tokio::join!(a.shutdown(), b.shutdown());
}
