//! SIGTERM on the real binary: in-flight ack-waits are answered at once, every official
//! client, over either transport, sees its connection end and reconnects by itself (here:
//! to a new relay on the same address), and the process exits 0 within
//! `server.shutdown_grace_ms`.

mod common;

use std::time::{Duration, Instant};

use common::clients::{Client, ClientKind, is};
use common::relay::free_port;
use common::{Admin, ClientOptions, TIMEOUT, spawn_relay_process};
use serde_json::{Value, json};

const GRACE_MS: u64 = 4_000;
const TOKEN: &str = "shutdown-test-token";

fn relay_env() -> Vec<(&'static str, String)> {
    vec![
        ("SIO_RELAY_SERVER_SHUTDOWN_GRACE_MS", GRACE_MS.to_string()),
        ("SIO_RELAY_ADMIN_TOKENS", TOKEN.to_string()),
    ]
}

async fn spawn_on(listen: &str) -> common::RelayProcess {
    let env = relay_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_relay_process(&["--listen", listen], &env).await
}

/// The `disconnect` reason a client reports when the relay ends its session on shutdown:
/// a lost connection, which the library answers by reconnecting (not "io server
/// disconnect" / "server disconnect", which are final).
///
/// socket.io-client says "transport close" when the WebSocket is closed; over polling the
/// session ends without the Engine.IO close packet (python-socketio would take that packet
/// as final), so its next poll fails: "transport error". python-socketio reports every
/// lost connection as "transport error".
fn shutdown_reason(kind: ClientKind, transports: &str) -> &'static str {
    match (kind, transports) {
        (ClientKind::Js, "websocket") => "transport close",
        _ => "transport error",
    }
}

#[tokio::test]
async fn sigterm_answers_ack_waits_ends_sessions_so_clients_reconnect_and_exits_zero() {
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let mut relay = spawn_on(&listen).await;
    let admin = relay.admin(Some(TOKEN));

    // Every official client, over each transport, with the library's own reconnection.
    let mut clients: Vec<(String, &str, Client)> = Vec::new();
    for kind in ClientKind::ALL {
        for transports in ["websocket", "polling"] {
            let client = ClientOptions::new(kind, &url)
                .transports(transports)
                .connect()
                .await;
            let name = format!("{} over {transports}", kind.name());
            clients.push((name, transports, client));
        }
    }
    // The JS driver answers no acknowledgement unless told to; python-socketio answers
    // every one. So an ack-wait to the JS WebSocket client and a Python client collects
    // one answer at once and then waits for the other.
    let silent = clients[0].2.sid("/").unwrap();
    let answering = clients[2].2.sid("/").unwrap();
    let waiter = tokio::spawn({
        let admin: Admin = admin.clone();
        let body = json!({"to": [silent.clone(), answering.clone()], "event": "wait_for_me",
                          "ack_timeout_ms": 30_000});
        async move {
            let resp = admin.emit(&body).await;
            (resp, Instant::now())
        }
    });
    for index in [0, 2] {
        clients[index].2.wait_event("/", "wait_for_me").await;
    }
    // Let the Python client's answer reach the relay before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    relay.sigterm();
    let status = relay
        .wait_exit(Duration::from_millis(GRACE_MS) + TIMEOUT)
        .await;
    let exited = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status}\n--- relay stderr ---\n{}",
        relay.stderr()
    );
    assert!(
        exited < Duration::from_millis(GRACE_MS),
        "exited {exited:?} after SIGTERM, grace is {GRACE_MS} ms\n{}",
        relay.stderr()
    );

    // The ack-wait was answered at once: the answer it had, the other as a timeout.
    let (resp, answered_at) = tokio::time::timeout(TIMEOUT, waiter)
        .await
        .expect("the ack-wait request was not answered")
        .unwrap();
    let waited = answered_at.saturating_duration_since(signalled);
    assert!(
        waited < Duration::from_secs(2),
        "the ack-wait was answered {waited:?} after SIGTERM"
    );
    assert_eq!(
        resp.expect_status(200),
        &json!({"recipients": 2, "acks": [{"sid": answering, "args": []}], "timeouts": [silent]})
    );

    // Every client saw its connection end as a lost connection.
    for (name, transports, client) in &mut clients {
        let kind = client.kind();
        let reason = client.wait_disconnect("/").await;
        assert_eq!(
            reason,
            shutdown_reason(kind, transports),
            "{name}\n{}",
            client.report()
        );
        if kind == ClientKind::Js {
            client.wait_for(|v| is(v, "reconnecting"), TIMEOUT).await;
        }
    }

    // A new relay on the same address: every client comes back by itself.
    let mut second = spawn_on(&listen).await;
    for (name, _, client) in &mut clients {
        let line = client
            .try_wait_for(|v| is(v, "connect") && v["ns"] == "/", TIMEOUT)
            .await;
        assert!(
            line.is_some(),
            "{name} did not reconnect to a new relay on the same address\n{}",
            client.report()
        );
    }
    let sockets = second.admin(Some(TOKEN)).sockets("").await;
    let listed = sockets.expect_status(200)["sockets"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert_eq!(listed, clients.len(), "{}", sockets.body);

    for (_, _, client) in clients {
        client.exit().await;
    }
    second.sigterm();
    let status = second.wait_exit(TIMEOUT).await;
    assert!(
        status.success(),
        "second relay: {status}\n{}",
        second.stderr()
    );
}

/// SIGTERM with an idle admin connection and a waiting long-poll: neither holds the
/// process past the grace period, and an ack-wait with nobody to answer returns at once.
#[tokio::test]
async fn sigterm_answers_an_ack_wait_with_only_timeouts() {
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let mut relay = spawn_on(&listen).await;
    let admin = relay.admin(Some(TOKEN));
    let mut client = ClientOptions::new(ClientKind::Js, &url)
        .transports("polling")
        .connect()
        .await;
    let sid = client.sid("/").unwrap();
    let waiter = tokio::spawn({
        let admin = admin.clone();
        let body = json!({"to": sid, "event": "never_acked", "ack_timeout_ms": 60_000});
        async move { admin.emit(&body).await }
    });
    let args: Value = client.wait_event("/", "never_acked").await;
    assert_eq!(args, json!([]));

    let signalled = Instant::now();
    relay.sigterm();
    let resp = tokio::time::timeout(TIMEOUT, waiter)
        .await
        .expect("the ack-wait request was not answered")
        .unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_eq!(
        resp.expect_status(200),
        &json!({"recipients": 1, "acks": [], "timeouts": [sid]})
    );
    let status = relay
        .wait_exit(Duration::from_millis(GRACE_MS) + TIMEOUT)
        .await;
    assert!(status.success(), "{status}\n{}", relay.stderr());
    assert!(signalled.elapsed() < Duration::from_millis(GRACE_MS));
    let reason = client.wait_disconnect("/").await;
    assert_eq!(
        reason,
        shutdown_reason(ClientKind::Js, "polling"),
        "{}",
        client.report()
    );
    client.wait_for(|v| is(v, "reconnecting"), TIMEOUT).await;
    client.exit().await;
}

/// The admin API runs on a thread of its own: a relay whose runtime goes away without a
/// shutdown (an embedding test, a panic unwinding) takes that thread and its listener
/// with it, rather than leaving the port answering.
#[test]
fn the_admin_listener_ends_with_the_runtime_that_started_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay = runtime.block_on(common::relay::start_relay(|_| {}));
    let admin = relay.admin_addr;
    let mut stream = std::net::TcpStream::connect(admin).expect("the admin API listens");
    std::io::Write::write_all(
        &mut stream,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    drop(relay);
    drop(runtime);
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(admin).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the admin listener still accepts after its runtime is gone"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
