//! End-to-end smoke tests: official clients receive what the admin API pushes.

mod common;

use common::clients::{ClientKind, ClientOptions};
use common::relay::free_port;
use common::{TIMEOUT, spawn_relay_process, start_relay};
use serde_json::json;

#[tokio::test]
async fn js_client_over_websocket_receives_pushed_event() {
    let relay = start_relay(|_| {}).await;
    let mut client = relay.connect(ClientKind::Js, "websocket").await;
    let sid = client.sid("/").expect("connected without a sid");
    assert_eq!(client.history()[0]["transport"], "websocket");

    let resp = relay
        .admin()
        .emit(&json!({"to": sid, "event": "hello", "data": {"msg": "hi", "n": 1}}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));

    let args = client.wait_event("/", "hello").await;
    assert_eq!(args, json!([{"msg": "hi", "n": 1}]));

    client.exit().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn python_client_over_polling_receives_pushed_event() {
    let relay = start_relay(|_| {}).await;
    let mut client = relay.connect(ClientKind::Py, "polling").await;
    let sid = client.sid("/").expect("connected without a sid");
    assert_eq!(client.history()[0]["transport"], "polling");

    let resp = relay
        .admin()
        .emit(&json!({"to": sid, "event": "hello", "data": {"msg": "hi", "list": [1, 2, 3]}}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));

    let args = client.wait_event("/", "hello").await;
    assert_eq!(args, json!([{"msg": "hi", "list": [1, 2, 3]}]));

    client.exit().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn binary_process_serves_clients_and_exits_on_sigterm() {
    let mut relay = spawn_relay_process(&[], &[]).await;
    let mut client = relay
        .client(ClientKind::PyAsync)
        .transports("polling,websocket")
        .connect()
        .await;
    let sid = client.sid("/").unwrap();

    let resp = relay
        .admin(None)
        .emit(&json!({"to": sid, "event": "hello", "data": "world"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    assert_eq!(client.wait_event("/", "hello").await, json!(["world"]));

    relay.sigterm();
    let status = relay.wait_exit(TIMEOUT).await;
    assert!(status.success(), "exit status {status}\n{}", relay.stderr());
    client.exit().await;
}

/// The drivers themselves: installed, and they report a server that is not there.
#[tokio::test]
async fn client_drivers_report_an_unreachable_server() {
    let url = format!("http://127.0.0.1:{}", free_port());
    for kind in ClientKind::ALL {
        for transports in ["websocket", "polling"] {
            let mut client = ClientOptions::new(kind, &url)
                .transports(transports)
                .no_reconnect()
                .spawn()
                .await;
            let message = client.wait_connect_error("/").await;
            assert!(
                !message.is_empty(),
                "{} {transports}: empty message",
                kind.name()
            );
            assert!(client.sid("/").is_none());
            let status = client.exit().await.expect("driver did not exit");
            assert!(
                status.success(),
                "{} driver exited with {status}",
                kind.name()
            );
        }
    }
}
