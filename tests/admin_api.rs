//! The admin HTTP API end to end, with the official clients (socket.io-client and
//! python-socketio, over WebSocket and polling) on the receiving side: who gets an emit
//! and who does not, acknowledgements, binary, batches, rooms, disconnects, listings,
//! tokens and metrics.
//!
//! "Nobody else got it" is checked by comparing, after every call of a scenario, the
//! whole list of events each client printed with the list it should have printed, once
//! no more lines have arrived for a quiet window.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::admin::metric_value;
use common::clients::{Client, binary, connect_all, exit_all, is};
use common::{Admin, ClientKind, QUIET, RawWs, TIMEOUT, TestRelay, start_relay};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "admin-api-test-token";
const OTHER_TOKEN: &str = "second-token";

async fn relay() -> TestRelay {
    start_relay(|config| {
        config.admin.tokens = vec![TOKEN.into(), OTHER_TOKEN.into()];
        config.server.namespaces = vec!["/".into(), "/chat".into()];
    })
    .await
}

fn sid(client: &Client) -> String {
    client.sid("/").expect("client not connected to /")
}

/// Every `event` line of `ns` a client has printed: `(event, args)`.
fn events(client: &Client, ns: &str) -> Vec<(String, Value)> {
    client
        .history()
        .iter()
        .filter(|v| is(v, "event") && v["ns"] == ns)
        .map(|v| (v["event"].as_str().unwrap().to_string(), v["args"].clone()))
        .collect()
}

/// Waits until each client printed its last expected event, then for a quiet window, and
/// checks that each printed exactly the expected events of `/`, in order.
async fn check_deliveries(clients: &mut [Client], expected: &[Vec<(&str, Value)>]) {
    for (client, want) in clients.iter_mut().zip(expected) {
        while events(client, "/").len() < want.len() {
            client.wait_for(|v| is(v, "event"), TIMEOUT).await;
        }
    }
    tokio::time::sleep(QUIET).await;
    for (client, want) in clients.iter_mut().zip(expected) {
        // Lines that arrived during the quiet window are buffered: read them now.
        client
            .try_wait_for(|_| false, Duration::from_millis(50))
            .await;
        let want: Vec<(String, Value)> = want
            .iter()
            .map(|(e, args)| (e.to_string(), args.clone()))
            .collect();
        assert_eq!(
            events(client, "/"),
            want,
            "{} client {} received other events than expected\n{}",
            client.kind().name(),
            sid(client),
            client.report()
        );
    }
}

#[track_caller]
fn expect_error(resp: &common::HttpResponse, status: u16, code: &str) {
    assert_eq!(resp.status, status, "{}", resp.body);
    assert_eq!(resp.error_code(), Some(code), "{}", resp.body);
    assert!(
        resp.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        resp.body
    );
}

/// One sid, the `room` alias, rooms after join and leave, `except`, broadcast, batches,
/// and refused calls, over four clients of both libraries and both transports.
#[tokio::test]
async fn emits_reach_exactly_the_selected_clients() {
    let relay = relay().await;
    let admin = relay.admin();
    let mut clients = connect_all(vec![
        relay.client(ClientKind::Js).transports("websocket"),
        relay.client(ClientKind::Js).transports("polling"),
        relay.client(ClientKind::Py).transports("polling"),
        relay.client(ClientKind::PyAsync).transports("websocket"),
    ])
    .await;
    let sids: Vec<String> = clients.iter().map(sid).collect();
    let (a, b, c, d) = (&sids[0], &sids[1], &sids[2], &sids[3]);
    let mut expected: Vec<Vec<(&str, Value)>> = vec![Vec::new(); 4];

    // To one sid each: that client only.
    for (i, s) in sids.iter().enumerate() {
        let resp = admin
            .emit(&json!({"to": s, "event": "one", "data": {"for": i}}))
            .await;
        assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
        expected[i].push(("one", json!([{"for": i}])));
    }
    // `room` is an alias of `to`; both with the same value is fine.
    let resp = admin
        .emit(&json!({"room": b, "event": "alias", "args": [1, "two"]}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    expected[1].push(("alias", json!([1, "two"])));
    let resp = admin
        .emit(&json!({"to": [c], "room": c, "event": "alias_same"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    expected[2].push(("alias_same", json!([])));
    // A sid that is not connected: nobody, and the answer says so.
    let resp = admin
        .emit(&json!({"to": "AAAAAAAAAAAAAAAAAAAA", "event": "nobody"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 0}));

    // Join a and c to "team": a room emit reaches both.
    let resp = admin.join(&json!({"to": [a, c], "rooms": ["team"]})).await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 2}));
    let resp = admin.emit(&json!({"to": "team", "event": "team"})).await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 2}));
    expected[0].push(("team", json!([])));
    expected[2].push(("team", json!([])));
    // A sid and a room that overlap: each socket gets it once.
    let resp = admin
        .emit(&json!({"to": ["team", a, d], "event": "overlap"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 3}));
    for i in [0, 2, 3] {
        expected[i].push(("overlap", json!([])));
    }

    // `except`: a room minus a sid, and the namespace minus a room.
    let resp = admin
        .emit(&json!({"to": "team", "except": a, "event": "except_sid"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    expected[2].push(("except_sid", json!([])));
    let resp = admin
        .emit(&json!({"broadcast": true, "except": ["team"], "event": "except_room"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 2}));
    expected[1].push(("except_room", json!([])));
    expected[3].push(("except_room", json!([])));

    // Broadcast only with `broadcast: true`.
    let resp = admin
        .emit(&json!({"broadcast": true, "event": "all", "data": "everyone"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 4}));
    for e in &mut expected {
        e.push(("all", json!(["everyone"])));
    }

    // Refused calls deliver nothing.
    for (body, code) in [
        (json!({"event": "refused"}), "missing_target"),
        (
            json!({"broadcast": false, "event": "refused"}),
            "missing_target",
        ),
        (json!({"except": a, "event": "refused"}), "missing_target"),
        (
            json!({"to": a, "broadcast": true, "event": "refused"}),
            "conflicting_target",
        ),
        (
            json!({"to": a, "room": b, "event": "refused"}),
            "conflicting_target",
        ),
        (json!({"to": "", "event": "refused"}), "invalid_field"),
        (json!({"to": [], "event": "refused"}), "invalid_field"),
        (json!({"to": a, "event": "connect"}), "reserved_event"),
        (
            json!({"to": a, "event": "refused", "unknown": 1}),
            "unknown_field",
        ),
    ] {
        expect_error(&admin.emit(&body).await, 400, code);
    }
    // A batch with one bad element is refused whole, with its index.
    let resp = admin
        .emit(&json!([
            {"to": a, "event": "refused"},
            {"broadcast": true, "event": "refused"},
            {"event": "refused"}
        ]))
        .await;
    expect_error(&resp, 400, "missing_target");
    assert_eq!(resp.json["error"]["index"], 2, "{}", resp.body);
    // Join with a bad selector changes nothing: "team" still holds a and c only.
    expect_error(
        &admin.join(&json!({"rooms": ["team"]})).await,
        400,
        "missing_target",
    );
    expect_error(
        &admin
            .join(&json!({"to": b, "broadcast": true, "rooms": ["team"]}))
            .await,
        400,
        "conflicting_target",
    );

    // A batch: answers in order, events in order.
    let resp = admin
        .emit(&json!([
            {"to": a, "event": "batch_1", "data": 1},
            {"to": "team", "event": "batch_2", "data": 2},
            {"broadcast": true, "except": "team", "event": "batch_3", "data": 3}
        ]))
        .await;
    assert_eq!(
        resp.expect_status(200),
        &json!([{"recipients": 1}, {"recipients": 2}, {"recipients": 2}])
    );
    expected[0].push(("batch_1", json!([1])));
    expected[0].push(("batch_2", json!([2])));
    expected[2].push(("batch_2", json!([2])));
    expected[1].push(("batch_3", json!([3])));
    expected[3].push(("batch_3", json!([3])));

    // Leave: a is no longer in "team".
    let resp = admin.leave(&json!({"to": a, "rooms": ["team"]})).await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 1}));
    let resp = admin
        .emit(&json!({"to": "team", "event": "after_leave"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    expected[2].push(("after_leave", json!([])));

    check_deliveries(&mut clients, &expected).await;
    exit_all(clients).await;
    relay.shutdown().await;
}

fn by_sid(acks: &Value) -> BTreeMap<String, Value> {
    acks.as_array()
        .expect("acks is an array")
        .iter()
        .map(|a| (a["sid"].as_str().unwrap().to_string(), a["args"].clone()))
        .collect()
}

fn sorted(values: &Value) -> Vec<String> {
    let mut list: Vec<String> = values
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    list.sort();
    list
}

/// One ack-wait over clients that answer and one that never does; and a call whose
/// recipients all answer returns as soon as they have.
#[tokio::test]
async fn ack_waits_collect_answers_and_timeouts() {
    let relay = relay().await;
    let admin = relay.admin();
    let mut clients = connect_all(vec![
        relay
            .client(ClientKind::Js)
            .transports("websocket")
            .ack("ask", json!(["js", {"n": 1}])),
        relay
            .client(ClientKind::Py)
            .transports("polling")
            .ack("ask", json!([{"from": "py"}])),
        // python-socketio answers every ack request; with no `--ack`, with no arguments.
        relay.client(ClientKind::PyAsync).transports("websocket"),
        // The JS driver answers only what an `--ack` matches: this one never answers.
        relay.client(ClientKind::Js).transports("polling"),
    ])
    .await;
    let sids: Vec<String> = clients.iter().map(sid).collect();

    let timeout_ms = 1_500;
    let started = Instant::now();
    let resp = admin
        .emit(
            &json!({"broadcast": true, "event": "ask", "data": "q", "ack_timeout_ms": timeout_ms}),
        )
        .await;
    let took = started.elapsed();
    let body = resp.expect_status(200);
    assert_eq!(body["recipients"], 4, "{body}");
    let acks = by_sid(&body["acks"]);
    let want: BTreeMap<String, Value> = [
        (sids[0].clone(), json!(["js", {"n": 1}])),
        (sids[1].clone(), json!([{"from": "py"}])),
        (sids[2].clone(), json!([])),
    ]
    .into_iter()
    .collect();
    assert_eq!(acks, want, "{body}");
    assert_eq!(body["timeouts"], json!([sids[3]]), "{body}");
    assert!(
        took >= Duration::from_millis(timeout_ms)
            && took < Duration::from_millis(timeout_ms + 1_500),
        "a call with a silent recipient took {took:?} with ack_timeout_ms {timeout_ms}"
    );
    for client in &mut clients {
        let line = client
            .wait_for(|v| is(v, "event") && v["event"] == "ask", TIMEOUT)
            .await;
        assert_eq!(line["args"], json!(["q"]));
        assert_eq!(line["ack_requested"], true, "{line}");
    }

    // Everyone answers: the call returns long before its timeout.
    let answering = &sids[..3];
    let started = Instant::now();
    let resp = admin
        .emit(&json!({"to": answering, "event": "ask", "args": [], "ack_timeout_ms": 20_000}))
        .await;
    let took = started.elapsed();
    let body = resp.expect_status(200);
    assert_eq!(body["recipients"], 3, "{body}");
    assert_eq!(by_sid(&body["acks"]), want, "{body}");
    assert_eq!(body["timeouts"], json!([]), "{body}");
    assert!(
        took < Duration::from_secs(3),
        "all recipients answered, yet the call took {took:?} (timeout 20 s)"
    );

    // Without `ack_timeout_ms` nobody is asked for an ack and the answer has no acks.
    let resp = admin.emit(&json!({"to": sids[0], "event": "no_ack"})).await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    let line = clients[0]
        .wait_for(|v| is(v, "event") && v["event"] == "no_ack", TIMEOUT)
        .await;
    assert_eq!(line["ack_requested"], false, "{line}");

    // An ack-wait with no recipient answers at once.
    let started = Instant::now();
    let resp = admin
        .emit(&json!({"to": "empty-room", "event": "ask", "ack_timeout_ms": 20_000}))
        .await;
    assert_eq!(
        resp.expect_status(200),
        &json!({"recipients": 0, "acks": [], "timeouts": []})
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // A batch of ack-waits: one answer per element.
    let resp = admin
        .emit(&json!([
            {"to": sids[1], "event": "ask", "ack_timeout_ms": 5_000},
            {"to": [sids[0], sids[3]], "event": "ask", "ack_timeout_ms": 300}
        ]))
        .await;
    let body = resp.expect_status(200);
    assert_eq!(
        body[0],
        json!({"recipients": 1, "acks": [{"sid": sids[1], "args": [{"from": "py"}]}], "timeouts": []})
    );
    assert_eq!(body[1]["recipients"], 2);
    assert_eq!(
        body[1]["acks"],
        json!([{"sid": sids[0], "args": ["js", {"n": 1}]}])
    );
    assert_eq!(sorted(&body[1]["timeouts"]), vec![sids[3].clone()]);

    exit_all(clients).await;
    relay.shutdown().await;
}

/// `{"$binary": …}` becomes a binary attachment for both libraries, and binary in an
/// acknowledgement comes back in the same form.
#[tokio::test]
async fn binary_both_ways() {
    let relay = relay().await;
    let admin = relay.admin();
    let payload: Vec<u8> = (0..=255).collect();
    let ack_bytes = b"\x00\xffack\x01".to_vec();
    let mut clients = Vec::new();
    for (kind, transports) in [
        (ClientKind::Js, "websocket"),
        (ClientKind::Js, "polling"),
        (ClientKind::Py, "websocket"),
        (ClientKind::PyAsync, "polling"),
    ] {
        clients.push(relay.client(kind).transports(transports).ack(
            "bin",
            json!([binary(&ack_bytes), {"nested": binary(b"x")}, "text"]),
        ));
    }
    let mut clients = connect_all(clients).await;
    for client in &mut clients {
        let sid = sid(client);
        let args = json!([binary(&payload), {"deep": [binary(b""), binary(b"\x01")]}, "plain"]);
        let started = Instant::now();
        let resp = admin
            .emit(&json!({"to": sid, "event": "bin", "args": args, "ack_timeout_ms": 10_000}))
            .await;
        let body = resp.expect_status(200);
        assert_eq!(
            body,
            &json!({"recipients": 1, "acks": [{"sid": sid, "args": [binary(&ack_bytes), {"nested": binary(b"x")}, "text"]}], "timeouts": []}),
            "{} client",
            client.kind().name()
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        let got = client.wait_event("/", "bin").await;
        assert_eq!(got, args, "{} client", client.kind().name());

        // `data` with a binary value, no ack.
        let resp = admin
            .emit(&json!({"to": sid, "event": "bin_data", "data": binary(b"\x02\x03")}))
            .await;
        assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
        assert_eq!(
            client.wait_event("/", "bin_data").await,
            json!([binary(b"\x02\x03")])
        );
    }
    // On the wire: a BINARY_EVENT with a placeholder and the bytes as a binary frame; a
    // BINARY_ACK comes back as `$binary`.
    let (mut raw, _) = RawWs::connect_eio(relay.socketio_addr).await;
    let raw_sid = raw.connect_ns("/").await["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let waiter = tokio::spawn({
        let admin = admin.clone();
        let body = json!({"to": raw_sid, "event": "raw", "args": [{"k": binary(b"\x07\x08")}],
                          "ack_timeout_ms": 10_000});
        async move { admin.emit(&body).await }
    });
    let text = raw
        .recv_until(|p| p.starts_with("45"), TIMEOUT)
        .await
        .expect("no BINARY_EVENT");
    let rest = text.strip_prefix("451-").expect("one attachment");
    let open = rest.find('[').unwrap();
    let ack_id = &rest[..open];
    assert!(ack_id.bytes().all(|b| b.is_ascii_digit()), "{text}");
    let array: Value = serde_json::from_str(&rest[open..]).unwrap();
    assert_eq!(
        array,
        json!(["raw", {"k": {"_placeholder": true, "num": 0}}])
    );
    let attachment = loop {
        match raw.recv(TIMEOUT).await {
            Some(Ok(Message::Binary(bytes))) => break bytes,
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => raw.send_text("3").await,
            other => panic!("expected the attachment, got {other:?}"),
        }
    };
    assert_eq!(&attachment[..], b"\x07\x08");
    raw.send_text(&format!(
        "461-{ack_id}[\"fine\",{{\"_placeholder\":true,\"num\":0}}]"
    ))
    .await;
    raw.send_binary(b"\xfe\xff").await;
    let resp = tokio::time::timeout(TIMEOUT, waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resp.expect_status(200),
        &json!({"recipients": 1, "acks": [{"sid": raw_sid, "args": ["fine", binary(b"\xfe\xff")]}], "timeouts": []})
    );
    raw.close().await;

    // Invalid base64 is refused and nothing is sent.
    expect_error(
        &admin
            .emit(
                &json!({"broadcast": true, "event": "bad_bin", "data": {"$binary": "not base64!"}}),
            )
            .await,
        400,
        "invalid_field",
    );
    for client in &mut clients {
        client
            .expect_none(|v| is(v, "event") && v["event"] == "bad_bin", QUIET)
            .await;
    }
    exit_all(clients).await;
    relay.shutdown().await;
}

/// `/v1/disconnect`: the client sees the server's disconnect and does not reconnect;
/// others stay connected.
#[tokio::test]
async fn disconnect_is_final_for_the_client() {
    let relay = relay().await;
    let admin = relay.admin();
    let mut clients = connect_all(vec![
        relay.client(ClientKind::Js).transports("websocket"),
        relay.client(ClientKind::Js).transports("polling"),
        relay.client(ClientKind::Py).transports("websocket"),
        relay.client(ClientKind::PyAsync).transports("polling"),
    ])
    .await;
    let sids: Vec<String> = clients.iter().map(sid).collect();
    // Refused: nobody is disconnected.
    expect_error(&admin.disconnect(&json!({})).await, 400, "missing_target");
    let resp = admin.disconnect(&json!({"to": "no-such-room"})).await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 0}));

    let resp = admin
        .join(&json!({"to": [&sids[1], &sids[3]], "rooms": ["kick"]}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 2}));
    let resp = admin.disconnect(&json!({"to": &sids[0]})).await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 1}));
    let resp = admin.disconnect(&json!({"room": "kick"})).await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 2}));

    for i in [0, 1, 3] {
        let client = &mut clients[i];
        let reason = client.wait_disconnect("/").await;
        let want = if client.kind() == ClientKind::Js {
            "io server disconnect"
        } else {
            "server disconnect"
        };
        assert_eq!(reason, want, "{}", client.report());
    }
    // Nobody comes back (the drivers reconnect within 200 ms to 1 s when they do).
    for i in [0, 1, 3] {
        clients[i]
            .expect_none(|v| is(v, "connect") || is(v, "reconnecting"), QUIET)
            .await;
    }
    let listed = admin.sockets("").await;
    let listed: Vec<String> = listed.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, vec![sids[2].clone()]);
    // The one left still receives.
    let resp = admin
        .emit(&json!({"broadcast": true, "event": "still_here"}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    clients[2].wait_event("/", "still_here").await;
    exit_all(clients).await;
    relay.shutdown().await;
}

fn is_rfc3339(text: &str) -> bool {
    // 2026-01-02T03:04:05[.fraction](Z|+hh:mm|-hh:mm)
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19))
    {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    rest == "Z"
        || rest == "z"
        || (rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':')
}

/// `GET /v1/sockets` and `GET /v1/rooms`: the contract's fields, filters, no per-sid
/// rooms, and never the client's `auth` payload.
#[tokio::test]
async fn sockets_and_rooms_listings() {
    let relay = relay().await;
    let admin = relay.admin();
    let secret = "auth-payload-secret-7d3f";
    let mut clients = connect_all(vec![
        relay
            .client(ClientKind::Js)
            .transports("websocket")
            .auth(json!({"token": secret})),
        relay
            .client(ClientKind::Py)
            .transports("polling")
            .auth(json!({"token": secret})),
        relay
            .client(ClientKind::PyAsync)
            .transports("websocket")
            .ns("/")
            .ns("/chat")
            .auth(json!({"token": secret})),
    ])
    .await;
    let sids: Vec<String> = clients.iter().map(sid).collect();
    let chat_sid = clients[2].sid("/chat").unwrap();
    let transports = ["websocket", "polling", "websocket"];

    let resp = admin
        .join(&json!({"to": [&sids[0], &sids[1]], "rooms": ["r1", "r2"]}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 2}));
    let resp = admin.join(&json!({"to": &sids[2], "rooms": ["r2"]})).await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 1}));

    let resp = admin.sockets("").await;
    assert!(!resp.body.contains(secret), "{}", resp.body);
    let listed = resp.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(listed.len(), 3, "{}", resp.body);
    for socket in &listed {
        let keys: Vec<&str> = socket
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort();
        assert_eq!(
            sorted_keys,
            [
                "address",
                "connected_at",
                "data",
                "eio",
                "namespace",
                "parser",
                "rooms",
                "sid",
                "transport",
                "user"
            ],
            "{socket}"
        );
        assert_eq!(
            (&socket["parser"], &socket["eio"]),
            (&json!("json"), &json!(4))
        );
        let sid = socket["sid"].as_str().unwrap();
        let i = sids.iter().position(|s| s == sid).expect("a known sid");
        assert_eq!(socket["namespace"], "/");
        assert_eq!(socket["transport"], transports[i], "{socket}");
        let rooms = sorted(&socket["rooms"]);
        let want: &[&str] = if i < 2 { &["r1", "r2"] } else { &["r2"] };
        assert_eq!(rooms, want, "{socket}");
        let address: SocketAddr = socket["address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("address of {socket}: {e}"));
        assert!(address.ip().is_loopback(), "{socket}");
        assert_ne!(address.port(), 0);
        let at = socket["connected_at"].as_str().unwrap();
        assert!(is_rfc3339(at), "connected_at {at:?} is not RFC 3339");
    }

    // Filters: `to` and `except`, repeatable.
    let only = |resp: common::HttpResponse| {
        let mut sids: Vec<String> = resp.expect_status(200)["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sid"].as_str().unwrap().to_string())
            .collect();
        sids.sort();
        sids
    };
    let mut want = vec![sids[0].clone(), sids[1].clone()];
    want.sort();
    assert_eq!(only(admin.sockets("to=r1").await), want);
    assert_eq!(
        only(admin.sockets(&format!("to=r2&except={}", sids[0])).await),
        {
            let mut w = vec![sids[1].clone(), sids[2].clone()];
            w.sort();
            w
        }
    );
    assert_eq!(
        only(
            admin
                .sockets(&format!("to={}&to={}", sids[0], sids[2]))
                .await
        ),
        {
            let mut w = vec![sids[0].clone(), sids[2].clone()];
            w.sort();
            w
        }
    );
    assert_eq!(
        only(admin.sockets("except=r1&except=r2").await),
        Vec::<String>::new()
    );
    // The other namespace.
    let resp = admin.sockets("namespace=%2Fchat").await;
    let chat = resp.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(chat.len(), 1, "{}", resp.body);
    assert_eq!(chat[0]["sid"], chat_sid.as_str());
    assert_eq!(chat[0]["namespace"], "/chat");
    assert_eq!(chat[0]["rooms"], json!([]));
    expect_error(&admin.sockets("bogus=1").await, 400, "unknown_field");

    // Rooms: names and sizes, without per-sid rooms.
    let resp = admin.rooms("").await;
    assert_eq!(
        resp.expect_status(200),
        &json!({"rooms": [{"name": "r1", "size": 2}, {"name": "r2", "size": 3}]})
    );
    let resp = admin.rooms("namespace=/chat").await;
    assert_eq!(resp.expect_status(200), &json!({"rooms": []}));
    // A room that empties is gone.
    let resp = admin
        .leave(&json!({"broadcast": true, "rooms": ["r1"]}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 3}));
    let resp = admin.rooms("").await;
    assert_eq!(
        resp.expect_status(200),
        &json!({"rooms": [{"name": "r2", "size": 3}]})
    );
    // A client that leaves leaves its rooms.
    clients.remove(0).exit().await;
    common::eventually("the JS client to be gone from r2", TIMEOUT, || {
        let admin = admin.clone();
        async move {
            let resp = admin.rooms("").await;
            (resp.json == json!({"rooms": [{"name": "r2", "size": 2}]})).then_some(())
        }
    })
    .await;

    exit_all(clients).await;
    relay.shutdown().await;
}

/// With tokens configured: every `/v1/` path needs one of them, and a refused call does
/// nothing; the operations endpoints need none.
#[tokio::test]
async fn tokens_guard_every_v1_route() {
    let relay = relay().await;
    let open = Admin::new(relay.admin_url());
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .connect()
        .await;
    let sid = sid(&client);
    let emit = json!({"to": sid, "event": "unauthorized"});

    let bad_headers: [&[(&str, &str)]; 6] = [
        &[],
        &[("authorization", "Bearer wrong-token")],
        &[("authorization", "Bearer ")],
        &[("authorization", "admin-api-test-token")],
        &[("authorization", "Basic YWRtaW4tYXBpLXRlc3QtdG9rZW4=")],
        &[("authorization", "Bearer admin-api-test-token-and-more")],
    ];
    for headers in bad_headers {
        let mut with_type = vec![("content-type", "application/json")];
        with_type.extend_from_slice(headers);
        let resp = open
            .request(
                reqwest::Method::POST,
                "/v1/emit",
                &with_type,
                Some(emit.to_string().into_bytes()),
            )
            .await;
        expect_error(&resp, 401, "unauthorized");
        for (method, path) in [
            (reqwest::Method::GET, "/v1/sockets"),
            (reqwest::Method::GET, "/v1/rooms"),
            (reqwest::Method::GET, "/v1/openapi.json"),
            (reqwest::Method::POST, "/v1/join"),
            (reqwest::Method::POST, "/v1/leave"),
            (reqwest::Method::POST, "/v1/disconnect"),
            // Not routed, or not with this method: still 401, so routes cannot be probed.
            (reqwest::Method::GET, "/v1/no-such-route"),
            (reqwest::Method::DELETE, "/v1/emit"),
            (reqwest::Method::GET, "/v1/emit"),
            (reqwest::Method::POST, "/v1/sockets"),
        ] {
            let resp = open.request(method.clone(), path, headers, None).await;
            expect_error(&resp, 401, "unauthorized");
            // Nothing in the answer tells a route from a non-route.
            assert_eq!(
                resp.header("allow"),
                None,
                "{method} {path} without a valid token tells which methods the route takes"
            );
        }
    }
    client.expect_none(|v| is(v, "event"), QUIET).await;

    // Either configured token works.
    for token in [TOKEN, OTHER_TOKEN] {
        let resp = open.post_json("/v1/emit", &emit, Some(token)).await;
        assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
        client.wait_event("/", "unauthorized").await;
    }
    // With a valid token, unknown routes and methods get their own errors.
    let authed = open.clone().with_token(Some(TOKEN.into()));
    expect_error(&authed.get("/v1/no-such-route").await, 404, "not_found");
    let resp = authed.get("/v1/emit").await;
    expect_error(&resp, 405, "method_not_allowed");
    assert_eq!(resp.header("allow"), Some("POST"));
    // No token needed outside /v1/.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(open.get(path).await.status, 200, "{path}");
    }
    client.exit().await;
    relay.shutdown().await;
}

/// After traffic, `/metrics` shows every metric the contract names, with bounded labels.
#[tokio::test]
async fn metrics_after_traffic() {
    let relay = relay().await;
    let admin = relay.admin();
    let mut clients = connect_all(vec![
        relay
            .client(ClientKind::Js)
            .transports("websocket")
            .ack("ask", json!(["ok"])),
        relay.client(ClientKind::Js).transports("polling"),
    ])
    .await;
    let sids: Vec<String> = clients.iter().map(sid).collect();
    // An event with an ack answered, one timed out, a binary event, a client event
    // (dropped), a refused call, a disconnect.
    let resp = admin
        .emit(&json!({"broadcast": true, "event": "ask", "ack_timeout_ms": 300}))
        .await;
    assert_eq!(resp.expect_status(200)["timeouts"], json!([sids[1]]));
    let resp = admin
        .emit(&json!({"to": sids[0], "event": "bin", "data": binary(b"\x01")}))
        .await;
    resp.expect_status(200);
    clients[0].wait_event("/", "bin").await;
    clients[1].emit("/", "from_client", json!([1])).await;
    expect_error(
        &admin.emit(&json!({"event": "x"})).await,
        400,
        "missing_target",
    );
    admin
        .disconnect(&json!({"to": sids[1]}))
        .await
        .expect_status(200);
    clients[1].wait_disconnect("/").await;

    // A client that goes away ends its Engine.IO session.
    clients.remove(1).exit().await;

    let text = common::eventually(
        "the client event and the session end to be counted",
        TIMEOUT,
        || {
            let admin = admin.clone();
            async move {
                let text = admin.metrics().await;
                let dropped =
                    metric_value(&text, "sio_relay_dropped_total{reason=\"client_event\"}");
                let ended = text
                    .lines()
                    .any(|l| l.starts_with("sio_relay_disconnections_total{reason="));
                (dropped.is_some_and(|v| v >= 1.0) && ended).then_some(text)
            }
        },
    )
    .await;
    let has = |series: &str| {
        text.lines()
            .any(|l| l.starts_with(series) && !l.starts_with('#'))
    };
    for series in [
        "sio_relay_sockets{namespace=\"/\",transport=\"websocket\"} 1",
        "sio_relay_connections_total ",
        "sio_relay_disconnections_total{reason=",
        "sio_relay_packets_total{direction=\"out\",type=\"event\"}",
        "sio_relay_packets_total{direction=\"out\",type=\"binary_event\"}",
        "sio_relay_packets_total{direction=\"in\",type=\"ack\"}",
        "sio_relay_packets_total{direction=\"in\",type=\"event\"}",
        "sio_relay_packets_total{direction=\"in\",type=\"connect\"}",
        "sio_relay_packets_total{direction=\"out\",type=\"disconnect\"}",
        "sio_relay_bytes_total{direction=\"in\"}",
        "sio_relay_bytes_total{direction=\"out\"}",
        "sio_relay_admin_requests_total{route=\"/v1/emit\",status=\"200\"}",
        "sio_relay_admin_requests_total{route=\"/v1/emit\",status=\"400\"}",
        "sio_relay_admin_requests_total{route=\"/v1/disconnect\",status=\"200\"}",
        "sio_relay_admin_request_duration_seconds_bucket{route=\"/v1/emit\",le=",
        "sio_relay_admin_request_duration_seconds_count{route=\"/v1/emit\"}",
        "sio_relay_acks_total{outcome=\"answered\"} 1",
        "sio_relay_acks_total{outcome=\"timed_out\"} 1",
        "sio_relay_dropped_total{reason=\"client_event\"}",
    ] {
        assert!(has(series), "no {series} in\n{text}");
    }
    assert!(
        metric_value(&text, "sio_relay_connections_total").is_some_and(|v| v >= 2.0),
        "{text}"
    );
    // Labels never carry a sid or a raw path.
    for sid in &sids {
        assert!(
            !text.contains(sid.as_str()),
            "a sid in the metrics:\n{text}"
        );
    }
    let resp = admin.get("/v1/this-path-is-not-a-label").await;
    expect_error(&resp, 404, "not_found");
    let text = admin.metrics().await;
    assert!(!text.contains("this-path-is-not-a-label"), "{text}");
    assert!(
        text.contains("sio_relay_admin_requests_total{route=\"other\",status=\"404\"}"),
        "{text}"
    );

    exit_all(clients).await;
    relay.shutdown().await;
}

/// Reads `count` HTTP/1.1 answers (each with a `Content-Length`) from one connection:
/// `(status, body)`.
async fn read_answers(stream: &mut tokio::net::TcpStream, count: usize) -> Vec<(u16, Value)> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let mut answers = Vec::new();
    while answers.len() < count {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut answer = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = answer.parse(&bytes) {
            let length: usize = answer
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .expect("an answer without Content-Length");
            if bytes.len() >= head + length {
                let status = answer.code.unwrap();
                let body = serde_json::from_slice(&bytes[head..head + length]).unwrap();
                answers.push((status, body));
                bytes.drain(..head + length);
                continue;
            }
        }
        let mut chunk = [0; 4096];
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
            .await
            .expect("the relay did not answer in time")
            .unwrap();
        assert!(n > 0, "the relay closed after {} answers", answers.len());
        bytes.extend_from_slice(&chunk[..n]);
    }
    answers
}

/// Requests pipelined on one keep-alive connection are answered in order, whichever part
/// of the relay answers each: plain pushes, a refused push (with what follows it), another
/// route, a push with `Connection: close`.
#[tokio::test]
async fn one_connection_carries_pushes_refusals_and_other_routes_in_order() {
    use tokio::io::AsyncWriteExt;
    let relay = relay().await;
    let mut client = relay.connect(ClientKind::Js, "websocket").await;
    let to = sid(&client);
    let post = |body: String, extra: &str| {
        format!(
            "POST /v1/emit HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let push = |n: u32| post(json!({"to": to, "event": "n", "data": n}).to_string(), "");
    let requests = [
        push(1),
        push(2),
        post(json!({"to": to, "event": "n", "dta": 0}).to_string(), ""),
        push(3),
        format!(
            "GET /v1/sockets?namespace=/ HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        ),
        push(4),
        post(
            json!({"to": to, "event": "n", "data": 5}).to_string(),
            "Connection: close\r\n",
        ),
    ];
    let mut stream = tokio::net::TcpStream::connect(relay.admin_addr)
        .await
        .unwrap();
    // Split across writes, so requests also arrive in pieces.
    let all = requests.concat();
    let (first, rest) = all.as_bytes().split_at(all.len() / 3 + 7);
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(rest).await.unwrap();
    let answers = read_answers(&mut stream, requests.len()).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 400, 200, 200, 200, 200], "{answers:?}");
    assert_eq!(answers[0].1, json!({"recipients": 1}));
    assert_eq!(answers[2].1["error"]["code"], "unknown_field");
    assert_eq!(answers[4].1["sockets"][0]["sid"], json!(to), "{answers:?}");
    assert_eq!(answers[6].1, json!({"recipients": 1}));
    let mut rest = [0; 16];
    let closed = tokio::time::timeout(
        TIMEOUT,
        tokio::io::AsyncReadExt::read(&mut stream, &mut rest),
    );
    assert_eq!(
        closed.await.expect("not closed").unwrap(),
        0,
        "Connection: close kept it open"
    );
    while events(&client, "/").len() < 5 {
        client.wait_for(|v| is(v, "event"), TIMEOUT).await;
    }
    let received: Vec<Value> = events(&client, "/")
        .into_iter()
        .map(|(_, args)| args)
        .collect();
    assert_eq!(received, (1..=5).map(|n| json!([n])).collect::<Vec<_>>());

    let text = relay.admin().metrics().await;
    assert_eq!(
        metric_value(
            &text,
            "sio_relay_admin_requests_total{route=\"/v1/emit\",status=\"200\"}"
        ),
        Some(5.0),
        "{text}"
    );
    client.exit().await;
    relay.shutdown().await;
}
