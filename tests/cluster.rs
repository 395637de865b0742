//! Two relays sharing the Redis on 127.0.0.1:6379 (each test under its own key prefix):
//! an admin call through one node reaches a client connected to the other.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::clients::ClientKind;
use common::start_relay;
use serde_json::json;
use sio_relay::config::AdapterKind;

async fn cluster_node(prefix: &str) -> common::relay::TestRelay {
    let prefix = prefix.to_owned();
    let relay = start_relay(move |config| {
        config.cluster.adapter = AdapterKind::Redis;
        config.cluster.key_prefix = prefix;
        config.cluster.request_timeout_ms = 1000;
    })
    .await;
    common::eventually("the node is ready", common::TIMEOUT, || async {
        (relay.admin().get("/readyz").await.status == 200).then_some(())
    })
    .await;
    relay
}

#[tokio::test]
async fn admin_calls_through_one_node_reach_clients_on_another() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("sio-relay-e2e-{nanos}");
    let a = cluster_node(&prefix).await;
    let b = cluster_node(&prefix).await;
    let mut client = b
        .client(ClientKind::Js)
        .transports("websocket")
        .no_reconnect()
        .connect()
        .await;
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
