//! Socket.IO over the relay: the official clients (socket.io-client, python-socketio)
//! over each transport receive pushed events with JSON and binary arguments, answer
//! acknowledgements, use two namespaces at once and are refused a namespace not allowed;
//! every socket is in its own sid room; client events are counted and never answered;
//! bad Socket.IO packets close only the session that sent them.
//!
//! Events are pushed through the relay's adapter, as the admin API does.

mod common;

use std::time::Duration;

use common::clients::{Client, ClientKind, binary, is};
use common::push::{from_args, sid_of};
use common::raw::{RawPolling, RawWs, polling_payload};
use common::{QUIET, TIMEOUT, TestRelay, Witness, eventually, start_relay};
use serde_json::{Value, json};
use sio_relay::adapter::Target;
use sio_relay::config::Transport;

const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Ends a client driver. The Python ones are killed rather than asked to exit:
/// python-engineio's sync client over polling can stop its write loop before sending the
/// Engine.IO close packet, and then waits for the server's next ping (25 s) to end its
/// pending GET, which the harness would wait out.
async fn finish(client: Client) {
    if client.kind().is_python() {
        drop(client);
    } else {
        client.exit().await;
    }
}

async fn relay_with_chat() -> TestRelay {
    start_relay(|c| c.server.namespaces = vec!["/".into(), "/chat".into()]).await
}

/// The transport the adapter reports for `sid` in `ns`.
async fn adapter_transport(relay: &TestRelay, ns: &str, sid: &str) -> Option<Transport> {
    let target = Target {
        namespace: ns.into(),
        to: vec![sid.into()],
        except: vec![],
    };
    let listing = relay.inner().adapter.sockets(&target).await.unwrap();
    listing.items.first().and_then(|s| s.transport)
}

/// One client of `kind` over `transports`, joined to `/` and `/chat` on one connection:
/// events with JSON and binary arguments in both namespaces, acks with JSON and binary
/// answers.
async fn serves_a_client(kind: ClientKind, transports: &str) {
    let relay = relay_with_chat().await;
    let mut client = relay
        .client(kind)
        .transports(transports)
        .ns("/")
        .ns("/chat")
        .auth(json!({"token": "secret-1"}))
        .ack("ask", json!(["fine", {"n": 1}]))
        .ack(
            "ask_binary",
            json!([binary(&[1, 2, 3]), {"more": binary(b"xyz")}]),
        )
        .no_reconnect()
        .connect()
        .await;
    let sid = client.sid("/").unwrap();
    let chat_sid = client.sid("/chat").unwrap();
    assert_ne!(sid, chat_sid, "one socket per namespace");

    let want = match transports {
        "polling" => Transport::Polling,
        _ => Transport::Websocket,
    };
    if kind == ClientKind::Js && transports == "polling,websocket" {
        let upgraded = |v: &Value| is(v, "upgrade") && v["transport"] == "websocket";
        if !client.history().iter().any(upgraded) {
            client.wait_for(upgraded, TIMEOUT).await;
        }
    }
    for (ns, sid) in [("/", &sid), ("/chat", &chat_sid)] {
        eventually(
            "the adapter to see the client's transport",
            TIMEOUT,
            || async { (adapter_transport(&relay, ns, sid).await == Some(want)).then_some(()) },
        )
        .await;
    }

    // JSON arguments of every kind.
    let args = json!([{"a": 1, "b": [true, null]}, "two", 3.5, null, [1, "x"]]);
    let outcome = relay.push("/", &[&sid], "json", args.clone()).await;
    assert_eq!(outcome.recipients, 1);
    assert_eq!(client.wait_event("/", "json").await, args);

    // No arguments at all.
    relay.push("/", &[&sid], "bare", json!([])).await;
    assert_eq!(client.wait_event("/", "bare").await, json!([]));

    // Binary arguments, top level and nested, next to JSON ones.
    let args = json!([
        "caption",
        binary(&[0, 1, 2, 254, 255]),
        {"nested": binary(b"hello"), "n": 7},
        [binary(&[])]
    ]);
    relay.push("/", &[&sid], "bin", args.clone()).await;
    assert_eq!(client.wait_event("/", "bin").await, args);

    // The second namespace over the same connection.
    let outcome = relay
        .push("/chat", &[&chat_sid], "chatty", json!(["hi", binary(&[9])]))
        .await;
    assert_eq!(outcome.recipients, 1);
    let line = client
        .wait_for(|v| is(v, "event") && v["event"] == "chatty", TIMEOUT)
        .await;
    assert_eq!(line["ns"], "/chat");
    assert_eq!(line["args"], json!(["hi", binary(&[9])]));

    // A sid is a room of its own namespace only.
    let outcome = relay.push("/", &[&chat_sid], "wrong_ns", json!([])).await;
    assert_eq!(outcome.recipients, 0);

    // Acks: JSON answer.
    let outcome = relay
        .push_with_ack("/", &[&sid], "ask", json!([1]), ACK_TIMEOUT)
        .await;
    assert_eq!(outcome.recipients, 1);
    assert!(outcome.timeouts.is_empty(), "{outcome:?}");
    assert_eq!(outcome.acks.len(), 1);
    assert_eq!(outcome.acks[0].sid.as_deref(), Some(sid.as_str()));
    assert_eq!(from_args(&outcome.acks[0].args), json!(["fine", {"n": 1}]));
    let line = client
        .wait_for(|v| is(v, "event") && v["event"] == "ask", TIMEOUT)
        .await;
    assert_eq!(line["ack_requested"], true);

    // Acks: binary answer, as attachments.
    let outcome = relay
        .push_with_ack("/", &[&sid], "ask_binary", json!([]), ACK_TIMEOUT)
        .await;
    assert!(outcome.timeouts.is_empty(), "{outcome:?}");
    assert_eq!(outcome.acks.len(), 1);
    assert_eq!(outcome.acks[0].args.attachments.len(), 2);
    assert_eq!(
        from_args(&outcome.acks[0].args),
        json!([binary(&[1, 2, 3]), {"more": binary(b"xyz")}])
    );

    // Acks in the second namespace, with a binary argument going out.
    let outcome = relay
        .push_with_ack(
            "/chat",
            &[&chat_sid],
            "ask",
            json!([binary(&[4])]),
            ACK_TIMEOUT,
        )
        .await;
    assert_eq!(outcome.acks.len(), 1, "{outcome:?}");
    assert_eq!(outcome.acks[0].sid.as_deref(), Some(chat_sid.as_str()));
    assert_eq!(from_args(&outcome.acks[0].args), json!(["fine", {"n": 1}]));

    let answered = relay.metric("sio_relay_acks_total{outcome=\"answered\"}");
    assert_eq!(answered, 3.0);

    finish(client).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn js_client_over_websocket() {
    serves_a_client(ClientKind::Js, "websocket").await;
}

#[tokio::test]
async fn js_client_over_polling() {
    serves_a_client(ClientKind::Js, "polling").await;
}

#[tokio::test]
async fn js_client_over_polling_with_upgrade() {
    serves_a_client(ClientKind::Js, "polling,websocket").await;
}

#[tokio::test]
async fn python_client_over_websocket() {
    serves_a_client(ClientKind::Py, "websocket").await;
}

#[tokio::test]
async fn python_client_over_polling() {
    serves_a_client(ClientKind::Py, "polling").await;
}

#[tokio::test]
async fn python_async_client_over_polling_with_upgrade() {
    serves_a_client(ClientKind::PyAsync, "polling,websocket").await;
}

/// Events pushed while the JS client upgrades from polling to WebSocket all arrive, once
/// and in order.
#[tokio::test]
async fn no_event_lost_or_reordered_across_the_upgrade() {
    let relay = start_relay(|_| {}).await;
    let mut client = relay.connect(ClientKind::Js, "polling,websocket").await;
    let sid = client.sid("/").unwrap();
    const N: u64 = 40;
    for n in 0..N {
        relay.push("/", &[&sid], "seq", json!([n])).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for n in 0..N {
        let line = client
            .wait_for(|v| is(v, "event") && v["event"] == "seq", TIMEOUT)
            .await;
        assert_eq!(line["args"], json!([n]), "{}", client.report());
    }
    assert!(
        client.history().iter().any(|v| is(v, "upgrade")),
        "the client did not upgrade\n{}",
        client.report()
    );
    finish(client).await;
    relay.shutdown().await;
}

/// A namespace outside `server.namespaces` gets CONNECT_ERROR "Invalid namespace", over
/// both transports, for both libraries; allowed ones on the same connection still work.
#[tokio::test]
async fn namespace_not_allowed_is_refused() {
    let relay = relay_with_chat().await;
    for kind in [ClientKind::Js, ClientKind::Py] {
        for transports in ["websocket", "polling"] {
            let context = format!("{} over {transports}", kind.name());
            let mut client = relay
                .client(kind)
                .transports(transports)
                .ns("/forbidden")
                .no_reconnect()
                .spawn()
                .await;
            let message = client.wait_connect_error("/forbidden").await;
            assert_eq!(message, "Invalid namespace", "{context}");
            assert!(client.sid("/forbidden").is_none(), "{context}");
            finish(client).await;
        }
    }
    // The JS client multiplexes: `/chat` joins while `/admin` is refused.
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .ns("/chat")
        .ns("/admin")
        .no_reconnect()
        .spawn()
        .await;
    assert_eq!(
        client.wait_connect_error("/admin").await,
        "Invalid namespace"
    );
    let chat_sid = match client.sid("/chat") {
        Some(sid) => sid,
        None => client.wait_connected("/chat").await,
    };
    relay.push("/chat", &[&chat_sid], "still", json!([])).await;
    client.wait_event("/chat", "still").await;
    finish(client).await;

    let refused = relay.metric("sio_relay_packets_total{direction=\"out\",type=\"connect_error\"}");
    assert!(refused >= 5.0, "connect_error packets counted: {refused}");
    relay.shutdown().await;
}

/// The wildcard allows any namespace.
#[tokio::test]
async fn wildcard_allows_any_namespace() {
    let relay = start_relay(|c| c.server.namespaces = vec!["*".into()]).await;
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .ns("/anything")
        .ns("/else")
        .no_reconnect()
        .connect()
        .await;
    let sid = client.sid("/else").unwrap();
    relay.push("/else", &[&sid], "hi", json!([1])).await;
    assert_eq!(client.wait_event("/else", "hi").await, json!([1]));
    finish(client).await;
    relay.shutdown().await;
}

/// An emit to a sid reaches exactly that client; several sids reach each once.
#[tokio::test]
async fn every_socket_is_in_its_own_sid_room() {
    let relay = start_relay(|_| {}).await;
    let mut a = relay.connect(ClientKind::Js, "websocket").await;
    let mut b = relay.connect(ClientKind::Js, "polling").await;
    let mut c = relay.connect(ClientKind::Py, "websocket").await;
    let sids = [
        a.sid("/").unwrap(),
        b.sid("/").unwrap(),
        c.sid("/").unwrap(),
    ];

    for (i, sid) in sids.iter().enumerate() {
        let outcome = relay.push("/", &[sid], "only", json!([i])).await;
        assert_eq!(outcome.recipients, 1);
    }
    assert_eq!(a.wait_event("/", "only").await, json!([0]));
    assert_eq!(b.wait_event("/", "only").await, json!([1]));
    assert_eq!(c.wait_event("/", "only").await, json!([2]));

    // Two sids at once: each of them once, the third not at all.
    let outcome = relay
        .push("/", &[&sids[0], &sids[2]], "pair", json!([]))
        .await;
    assert_eq!(outcome.recipients, 2);
    a.wait_event("/", "pair").await;
    c.wait_event("/", "pair").await;

    // A sid nobody has: nobody.
    let outcome = relay
        .push("/", &["AAAAAAAAAAAAAAAAAAAA"], "nobody", json!([]))
        .await;
    assert_eq!(outcome.recipients, 0);

    // Nothing else arrived anywhere: `b` never got "pair", nobody got "nobody".
    let any_event = |v: &Value| is(v, "event");
    a.expect_none(any_event, QUIET).await;
    b.expect_none(any_event, Duration::from_millis(50)).await;
    c.expect_none(any_event, Duration::from_millis(50)).await;
    for client in [a, b, c] {
        finish(client).await;
    }
    relay.shutdown().await;
}

/// Events that clients emit are counted and dropped; one asking for an ack gets none.
#[tokio::test]
async fn client_events_are_counted_and_never_acknowledged() {
    let relay = start_relay(|_| {}).await;
    let events_in = "sio_relay_packets_total{direction=\"in\",type=\"event\"}";
    let binary_in = "sio_relay_packets_total{direction=\"in\",type=\"binary_event\"}";
    let dropped = "sio_relay_dropped_total{reason=\"client_event\"}";
    let mut expected_events = 0.0;
    let mut expected_binary = 0.0;
    for (kind, transports) in [(ClientKind::Js, "websocket"), (ClientKind::Py, "polling")] {
        let mut client = relay.connect(kind, transports).await;
        client.emit("/", "plain", json!([1, "two"])).await;
        client.emit("/", "bin", json!([binary(&[1, 2])])).await;
        client
            .emit_with_ack("/", "wants_answer", json!([{"q": 1}]), 1, Some(700))
            .await;
        let line = client
            .wait_for(
                |v| v["id"] == 1 && (is(v, "ack") || is(v, "ack_timeout")),
                TIMEOUT,
            )
            .await;
        assert!(
            is(&line, "ack_timeout"),
            "{} got an ack: {line}",
            kind.name()
        );
        expected_events += 2.0;
        expected_binary += 1.0;
        eventually("client events to be counted", TIMEOUT, || async {
            (relay.metric(events_in) == expected_events
                && relay.metric(binary_in) == expected_binary)
                .then_some(())
        })
        .await;
        assert_eq!(relay.metric(dropped), expected_events + expected_binary);
        // The client is still connected and served.
        let sid = client.sid("/").unwrap();
        relay.push("/", &[&sid], "after", json!([])).await;
        client.wait_event("/", "after").await;
        finish(client).await;
    }
    relay.shutdown().await;
}

/// How one bad input is sent: raw text or binary messages, on one transport.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// Sends `messages` from a fresh session joined to `/` over each transport; the session
/// must be closed (WebSocket closed; polling sid unknown) and counted as `parse_error`,
/// and the witness still served.
async fn closes_only_the_sender(
    relay: &TestRelay,
    witness: &mut Witness,
    name: &str,
    messages: &[Raw<'_>],
) {
    let parse_errors = "sio_relay_disconnections_total{reason=\"parse_error\"}";

    let before = relay.metric(parse_errors);
    let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
    ws.connect_ns("/").await;
    for message in messages {
        match message {
            Raw::Text(text) => ws.send_text(text).await,
            Raw::Binary(bytes) => ws.send_binary(bytes).await,
        }
    }
    assert!(
        ws.closed_within(TIMEOUT).await,
        "{name}: WebSocket session not closed"
    );
    eventually("parse_error counted", TIMEOUT, || async {
        (relay.metric(parse_errors) == before + 1.0).then_some(())
    })
    .await;
    witness
        .check(relay, &format!("{name} over WebSocket"))
        .await;

    let before = relay.metric(parse_errors);
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    polling.connect_ns("/").await;
    let packets: Vec<String> = messages
        .iter()
        .map(|m| match m {
            Raw::Text(text) => text.to_string(),
            Raw::Binary(bytes) => format!("b{}", base64_of(bytes)),
        })
        .collect();
    let packets: Vec<&str> = packets.iter().map(String::as_str).collect();
    let resp = polling.post(polling_payload(&packets)).await;
    assert!(
        resp.status == 200 || resp.status == 400,
        "{name}: POST answered {} {}",
        resp.status,
        resp.body
    );
    polling.assert_gone(name).await;
    eventually("parse_error counted", TIMEOUT, || async {
        (relay.metric(parse_errors) == before + 1.0).then_some(())
    })
    .await;
    witness.check(relay, &format!("{name} over polling")).await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn malformed_socketio_packets_close_only_their_session() {
    let relay = start_relay(|_| {}).await;
    let mut witness = Witness::join(&relay).await;
    let placeholder = r#"{"_placeholder":true,"num":0}"#;
    let binary_event = format!(r#"451-["up",{placeholder}]"#);
    let two_attachments = format!(r#"452-["up",{placeholder},{placeholder}]"#);
    let cases: Vec<(&str, Vec<Raw>)> = vec![
        ("garbage", vec![Raw::Text("4garbage")]),
        ("unknown Socket.IO type", vec![Raw::Text("49[\"x\"]")]),
        ("empty Socket.IO packet", vec![Raw::Text("4")]),
        ("invalid JSON", vec![Raw::Text("42[\"ev\",{\"a\":")]),
        ("event without a name", vec![Raw::Text("42[1,2]")]),
        ("connect with an array", vec![Raw::Text("40/chat,[1]")]),
        ("ack without id", vec![Raw::Text("43[\"x\"]")]),
        (
            "attachment count too large",
            vec![Raw::Text("45999-[\"x\"]")],
        ),
        ("attachment with no packet", vec![Raw::Binary(&[1, 2, 3])]),
        (
            "new packet while an attachment is due",
            vec![Raw::Text(&binary_event), Raw::Text("42[\"next\"]")],
        ),
        (
            "new binary packet while attachments are due",
            vec![
                Raw::Text(&two_attachments),
                Raw::Binary(&[1]),
                Raw::Text(&binary_event),
            ],
        ),
    ];
    for (name, messages) in &cases {
        closes_only_the_sender(&relay, &mut witness, name, messages).await;
    }
    relay.shutdown().await;
}

/// A complete binary event from a raw client (text, then its attachments) is accepted
/// over both transports and counted; the session stays open.
#[tokio::test]
async fn complete_binary_event_from_client_is_accepted() {
    let relay = start_relay(|_| {}).await;
    let text = r#"452-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;

    let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
    let ws_sid = sid_of(&ws.connect_ns("/").await);
    ws.send_text(text).await;
    ws.send_binary(&[1]).await;
    ws.send_binary(&[2]).await;

    let polling = RawPolling::handshake(relay.socketio_addr).await;
    let polling_sid = sid_of(&polling.connect_ns("/").await);
    polling.send(&[text, "bAQ==", "bAg=="]).await;

    let binary_in = "sio_relay_packets_total{direction=\"in\",type=\"binary_event\"}";
    eventually("both binary events counted", TIMEOUT, || async {
        (relay.metric(binary_in) == 2.0).then_some(())
    })
    .await;
    relay.push("/", &[&ws_sid], "ok", json!([])).await;
    relay.push("/", &[&polling_sid], "ok", json!([])).await;
    ws.expect_packet("42[\"ok\"]").await;
    polling.expect_packet("42[\"ok\"]").await;
    relay.shutdown().await;
}

/// An ack-wait reports who answered and who did not within the timeout, and counts both.
#[tokio::test]
async fn ack_wait_reports_answers_and_timeouts() {
    let relay = start_relay(|_| {}).await;
    let answering = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .ack("*", json!(["yes"]))
        .no_reconnect()
        .connect()
        .await;
    // socket.io-client answers only the events an `--ack` names.
    let mut silent = relay.connect(ClientKind::Js, "polling").await;
    let answering_sid = answering.sid("/").unwrap();
    let silent_sid = silent.sid("/").unwrap();

    let started = tokio::time::Instant::now();
    let outcome = relay
        .push_with_ack(
            "/",
            &[&answering_sid, &silent_sid],
            "question",
            json!([]),
            Duration::from_millis(500),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(outcome.recipients, 2);
    assert_eq!(outcome.acks.len(), 1, "{outcome:?}");
    assert_eq!(outcome.acks[0].sid.as_deref(), Some(answering_sid.as_str()));
    assert_eq!(from_args(&outcome.acks[0].args), json!(["yes"]));
    assert_eq!(outcome.timeouts, vec![silent_sid.clone()]);
    let line = silent
        .wait_for(|v| is(v, "event") && v["event"] == "question", TIMEOUT)
        .await;
    assert_eq!(line["ack_requested"], true);

    // Every recipient answering ends the wait at once.
    let started = tokio::time::Instant::now();
    let outcome = relay
        .push_with_ack(
            "/",
            &[&answering_sid],
            "question",
            json!([]),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(outcome.acks.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));

    assert_eq!(
        relay.metric("sio_relay_acks_total{outcome=\"answered\"}"),
        2.0
    );
    assert_eq!(
        relay.metric("sio_relay_acks_total{outcome=\"timed_out\"}"),
        1.0
    );
    answering.exit().await;
    silent.exit().await;
    relay.shutdown().await;
}

/// A client leaving one namespace keeps the others; the socket it left is gone from the
/// adapter and the gauge.
#[tokio::test]
async fn leaving_one_namespace_keeps_the_others() {
    let relay = relay_with_chat().await;
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .ns("/")
        .ns("/chat")
        .no_reconnect()
        .connect()
        .await;
    let sid = client.sid("/").unwrap();
    let chat_sid = client.sid("/chat").unwrap();
    let chat_gauge = "sio_relay_sockets{namespace=\"/chat\",transport=\"websocket\"}";
    assert_eq!(relay.metric(chat_gauge), 1.0);

    client
        .send(json!({"cmd": "disconnect", "ns": "/chat"}))
        .await;
    assert_eq!(
        client.wait_disconnect("/chat").await,
        "io client disconnect"
    );
    eventually("the /chat socket to be removed", TIMEOUT, || async {
        (adapter_transport(&relay, "/chat", &chat_sid)
            .await
            .is_none())
        .then_some(())
    })
    .await;
    assert_eq!(relay.metric(chat_gauge), 0.0);
    let outcome = relay.push("/chat", &[&chat_sid], "gone", json!([])).await;
    assert_eq!(outcome.recipients, 0);

    relay.push("/", &[&sid], "still", json!([])).await;
    client.wait_event("/", "still").await;
    finish(client).await;
    relay.shutdown().await;
}
