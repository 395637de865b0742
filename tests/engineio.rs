//! Engine.IO over the relay: the reference server's error answers, the Origin policy and
//! CORS, heartbeats and the connect timeout, bad and oversized input over both transports,
//! overlapping polls, the polling→WebSocket upgrade by hand, and slow clients.
//!
//! Each case that feeds a session bad input ends with a [`Witness`] check: other clients
//! on the same relay still receive what is pushed to them.

mod common;

use std::time::Duration;

use common::clients::{ClientKind, is};
use common::push::sid_of;
use common::raw::{RawPolling, RawWs, endpoint, split_payload};
use common::{HttpResponse, QUIET, TIMEOUT, TestRelay, Witness, eventually, start_relay};
use reqwest::Method;
use serde_json::{Value, json};
use sio_relay::adapter::Target;
use sio_relay::config::SlowClientPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const UNKNOWN_SID: &str = "AAAAAAAAAAAAAAAAAAAA";

fn error_body(code: u8, message: &str) -> Value {
    json!({"code": code, "message": message})
}

fn disconnections(relay: &TestRelay, reason: &str) -> f64 {
    relay.metric(&format!(
        "sio_relay_disconnections_total{{reason=\"{reason}\"}}"
    ))
}

/// Waits until `disconnections_total{reason}` reaches `n`.
async fn wait_disconnections(relay: &TestRelay, reason: &str, n: f64) {
    eventually(
        &format!("{n} disconnection(s) for {reason}"),
        TIMEOUT,
        || async { (disconnections(relay, reason) == n).then_some(()) },
    )
    .await;
}

/// A request at the Engine.IO endpoint.
async fn eio_request(
    relay: &TestRelay,
    method: Method,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> HttpResponse {
    let at = endpoint(relay.socketio_addr, "/socket.io/");
    RawPolling::request(&at, method, query, headers, body).await
}

/// The status and JSON body of a refused WebSocket handshake.
async fn ws_refusal(relay: &TestRelay, query: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let url = RawWs::url(relay.socketio_addr, "/socket.io/", query);
    match RawWs::connect(&url, headers).await {
        Ok(_) => panic!("WebSocket handshake {query} was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (resp.status().as_u16(), body)
        }
        Err(other) => panic!("WebSocket handshake {query}: {other}"),
    }
}

/// The sids of every socket in `ns`.
async fn sids_in(relay: &TestRelay, ns: &str) -> Vec<String> {
    let target = Target {
        namespace: ns.into(),
        ..Target::default()
    };
    let listing = relay.inner().adapter.sockets(&target).await.unwrap();
    listing.items.into_iter().map(|s| s.sid).collect()
}

/// A Socket.IO event packet of exactly `size` bytes.
fn event_of_size(size: usize) -> String {
    let frame = "42[\"big\",\"\"]";
    assert!(size >= frame.len());
    format!("42[\"big\",\"{}\"]", "x".repeat(size - frame.len()))
}

#[tokio::test]
async fn error_answers_have_the_reference_codes() {
    let relay = start_relay(|_| {}).await;
    let mut witness = Witness::join(&relay).await;
    let unknown = format!("EIO=4&transport=polling&sid={UNKNOWN_SID}");
    let cases = [
        (Method::GET, "EIO=4&transport=flash", 0, "Transport unknown"),
        (Method::GET, "EIO=4", 0, "Transport unknown"),
        (Method::GET, unknown.as_str(), 1, "Session ID unknown"),
        (Method::POST, unknown.as_str(), 1, "Session ID unknown"),
        (
            Method::GET,
            "EIO=4&transport=polling&sid=not-a-sid",
            1,
            "Session ID unknown",
        ),
        (
            Method::POST,
            "EIO=4&transport=polling",
            2,
            "Bad handshake method",
        ),
        (
            Method::PUT,
            "EIO=4&transport=polling",
            2,
            "Bad handshake method",
        ),
        (
            Method::GET,
            "EIO=2&transport=polling",
            5,
            "Unsupported protocol version",
        ),
        (
            Method::GET,
            "transport=polling",
            5,
            "Unsupported protocol version",
        ),
        // Not an upgrade request.
        (Method::GET, "EIO=4&transport=websocket", 3, "Bad request"),
    ];
    for (method, query, code, message) in cases {
        let body = (method == Method::POST).then(|| b"40".to_vec());
        let resp = eio_request(&relay, method.clone(), query, &[], body).await;
        assert_eq!(resp.status, 400, "{method} {query}: {}", resp.body);
        assert_eq!(resp.json, error_body(code, message), "{method} {query}");
        assert_eq!(
            resp.header("content-type"),
            Some("application/json"),
            "{method} {query}"
        );
    }

    // A method other than GET and POST on a session.
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    let query = format!("EIO=4&transport=polling&sid={}", polling.sid);
    let resp = eio_request(&relay, Method::PUT, &query, &[], None).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json, error_body(3, "Bad request"));

    // The same answers over WebSocket.
    let ws_cases = [
        (
            format!("EIO=4&transport=websocket&sid={UNKNOWN_SID}"),
            1,
            "Session ID unknown",
        ),
        (
            "EIO=2&transport=websocket".to_string(),
            5,
            "Unsupported protocol version",
        ),
        ("EIO=4&transport=flash".to_string(), 0, "Transport unknown"),
    ];
    for (query, code, message) in ws_cases {
        let (status, body) = ws_refusal(&relay, &query, &[]).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body, error_body(code, message), "{query}");
    }

    // A transport turned off in the config is unknown.
    witness.check(&relay, "error answers").await;
    relay.shutdown().await;

    let relay =
        start_relay(|c| c.server.transports = vec![sio_relay::config::Transport::Websocket]).await;
    let resp = eio_request(&relay, Method::GET, "EIO=4&transport=polling", &[], None).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json, error_body(0, "Transport unknown"));
    let (mut ws, open) = RawWs::connect_eio(relay.socketio_addr).await;
    assert_eq!(open["upgrades"], json!([]));
    ws.connect_ns("/").await;
    relay.shutdown().await;
}

#[tokio::test]
async fn open_packet_announces_the_settings() {
    let relay = start_relay(|c| {
        c.server.ping_interval_ms = 1234;
        c.server.ping_timeout_ms = 567;
        c.server.max_payload_bytes = 8910;
    })
    .await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    assert_eq!(polling.open["upgrades"], json!(["websocket"]));
    assert_eq!(polling.open["pingInterval"], 1234);
    assert_eq!(polling.open["pingTimeout"], 567);
    assert_eq!(polling.open["maxPayload"], 8910);
    assert_eq!(polling.sid.len(), 20);
    let (_ws, open) = RawWs::connect_eio(relay.socketio_addr).await;
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["pingInterval"], 1234);

    // The default `allowed_origins = ["*"]` echoes any Origin (credentials need that).
    let origin = "https://anywhere.example";
    let resp = eio_request(
        &relay,
        Method::GET,
        "EIO=4&transport=polling",
        &[("origin", origin)],
        None,
    )
    .await;
    resp.expect_status(200);
    assert_eq!(resp.header("access-control-allow-origin"), Some(origin));
    relay.shutdown().await;
}

#[tokio::test]
async fn origin_policy_and_cors() {
    let good = "https://app.example";
    let evil = "https://evil.example";
    let relay = start_relay(|c| c.server.allowed_origins = vec![good.into()]).await;
    let mut witness = Witness::join(&relay).await;
    let handshake = "EIO=4&transport=polling";

    // A disallowed Origin: 403 on the polling handshake, on a session's requests, on a
    // preflight and on the WebSocket handshake.
    let resp = eio_request(&relay, Method::GET, handshake, &[("origin", evil)], None).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json, error_body(4, "Forbidden"));
    assert_eq!(resp.header("access-control-allow-origin"), None);
    let (status, body) = ws_refusal(&relay, "EIO=4&transport=websocket", &[("origin", evil)]).await;
    assert_eq!(status, 403);
    assert_eq!(body, error_body(4, "Forbidden"));
    let resp = eio_request(
        &relay,
        Method::OPTIONS,
        handshake,
        &[("origin", evil)],
        None,
    )
    .await;
    assert_eq!(resp.status, 403);
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    let session = format!("EIO=4&transport=polling&sid={}", polling.sid);
    let resp = eio_request(&relay, Method::GET, &session, &[("origin", evil)], None).await;
    assert_eq!(resp.status, 403);

    // An allowed Origin gets the CORS headers, on success and on errors.
    let resp = eio_request(&relay, Method::GET, handshake, &[("origin", good)], None).await;
    resp.expect_status(200);
    assert_eq!(resp.header("access-control-allow-origin"), Some(good));
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    let open = common::raw::parse_open(&split_payload(&resp.body)[0]);
    let session = format!(
        "EIO=4&transport=polling&sid={}",
        open["sid"].as_str().unwrap()
    );
    let resp = eio_request(
        &relay,
        Method::POST,
        &session,
        &[
            ("origin", good),
            ("content-type", "text/plain;charset=UTF-8"),
        ],
        Some(b"40".to_vec()),
    )
    .await;
    resp.expect_status(200);
    assert_eq!(resp.header("access-control-allow-origin"), Some(good));
    let resp = eio_request(&relay, Method::GET, &session, &[("origin", good)], None).await;
    resp.expect_status(200);
    assert!(resp.body.starts_with("40{\"sid\":"), "{}", resp.body);
    assert_eq!(resp.header("access-control-allow-origin"), Some(good));
    let unknown = format!("EIO=4&transport=polling&sid={UNKNOWN_SID}");
    let resp = eio_request(&relay, Method::GET, &unknown, &[("origin", good)], None).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("access-control-allow-origin"), Some(good));

    // The preflight.
    let resp = eio_request(
        &relay,
        Method::OPTIONS,
        handshake,
        &[
            ("origin", good),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type, x-custom"),
        ],
        None,
    )
    .await;
    assert!(
        resp.status == 200 || resp.status == 204,
        "preflight: {}",
        resp.status
    );
    assert_eq!(resp.header("access-control-allow-origin"), Some(good));
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    let methods = resp.header("access-control-allow-methods").unwrap_or("");
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    let headers = resp.header("access-control-allow-headers").unwrap_or("");
    assert!(headers.contains("content-type"), "{headers}");

    // The allowed Origin over WebSocket, and no Origin at all (not a browser).
    let url = RawWs::url(
        relay.socketio_addr,
        "/socket.io/",
        "EIO=4&transport=websocket",
    );
    let mut ws = RawWs::connect(&url, &[("origin", good)]).await.unwrap();
    assert!(ws.recv_text(TIMEOUT).await.unwrap().starts_with('0'));
    let resp = eio_request(&relay, Method::GET, handshake, &[], None).await;
    resp.expect_status(200);
    assert_eq!(resp.header("access-control-allow-origin"), None);

    // The JS client sending a disallowed Origin is refused; an allowed one connects.
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .header("Origin", evil)
        .no_reconnect()
        .spawn()
        .await;
    client.wait_connect_error("/").await;
    client.exit().await;
    let client = relay
        .client(ClientKind::Js)
        .transports("polling")
        .header("Origin", good)
        .no_reconnect()
        .connect()
        .await;
    client.exit().await;

    witness.check(&relay, "Origin checks").await;
    relay.shutdown().await;
}

/// A raw WebSocket client that never answers pings is closed after ping interval plus
/// ping timeout, counted as `ping_timeout`; the official clients, which answer, stay.
#[tokio::test]
async fn silent_websocket_client_is_closed_by_the_heartbeat() {
    let relay = start_relay(|c| {
        c.server.ping_interval_ms = 200;
        c.server.ping_timeout_ms = 200;
    })
    .await;
    let mut js_ws = relay.connect(ClientKind::Js, "websocket").await;
    let mut js_polling = relay.connect(ClientKind::Js, "polling").await;

    let (mut silent, _) = RawWs::connect_eio(relay.socketio_addr).await;
    silent.connect_ns("/").await;
    let started = tokio::time::Instant::now();
    let mut pinged = false;
    loop {
        match silent.recv(TIMEOUT).await {
            Some(Ok(message)) if message.is_text() => {
                pinged |= message.to_text().unwrap() == "2";
            }
            Some(Ok(message)) if message.is_close() => break,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
        assert!(started.elapsed() < TIMEOUT, "silent client never closed");
    }
    assert!(pinged, "the server never pinged");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed only after {:?}",
        started.elapsed()
    );
    wait_disconnections(&relay, "ping_timeout", 1.0).await;

    // Several heartbeats later the answering clients are still connected and served.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for client in [&mut js_ws, &mut js_polling] {
        let sid = client.sid("/").expect("client lost its connection");
        relay.push("/", &[&sid], "alive", json!([])).await;
        client.wait_event("/", "alive").await;
        client
            .expect_none(|v| is(v, "disconnect"), Duration::ZERO)
            .await;
    }
    assert_eq!(disconnections(&relay, "ping_timeout"), 1.0);
    js_ws.exit().await;
    js_polling.exit().await;
    relay.shutdown().await;
}

/// A polling client that handshakes, joins and never polls again is removed: its sid is
/// unknown, its socket gone from the adapter and the gauge.
#[tokio::test]
async fn polling_client_that_never_polls_is_cleaned_up() {
    let relay = start_relay(|c| {
        c.server.ping_interval_ms = 200;
        c.server.ping_timeout_ms = 200;
    })
    .await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    polling.send(&["40"]).await;
    let sids = eventually("the socket to be listed", TIMEOUT, || async {
        let sids = sids_in(&relay, "/").await;
        (!sids.is_empty()).then_some(sids)
    })
    .await;
    let gauge = "sio_relay_sockets{namespace=\"/\",transport=\"polling\"}";
    assert_eq!(relay.metric(gauge), 1.0);

    wait_disconnections(&relay, "ping_timeout", 1.0).await;
    assert_eq!(relay.inner().engine.session_count(), 0);
    let resp = polling.get_within(TIMEOUT).await.expect("GET not answered");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json, error_body(1, "Session ID unknown"));
    assert!(sids_in(&relay, "/").await.is_empty());
    assert_eq!(relay.metric(gauge), 0.0);
    let outcome = relay.push("/", &[&sids[0]], "late", json!([])).await;
    assert_eq!(outcome.recipients, 0);

    // A python-socketio client over polling answers the same pings and stays.
    let mut client = relay.connect(ClientKind::Py, "polling").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sid = client.sid("/").expect("python client lost its connection");
    relay.push("/", &[&sid], "alive", json!([])).await;
    client.wait_event("/", "alive").await;
    assert_eq!(disconnections(&relay, "ping_timeout"), 1.0);
    drop(client);
    relay.shutdown().await;
}

/// A session that joins no namespace within `connect_timeout_ms` is closed, over either
/// transport; one that joined stays.
#[tokio::test]
async fn connect_timeout_closes_sessions_that_join_no_namespace() {
    let relay = start_relay(|c| c.server.connect_timeout_ms = 300).await;
    let (mut joined, _) = RawWs::connect_eio(relay.socketio_addr).await;
    let joined_sid = sid_of(&joined.connect_ns("/").await);
    let (mut idle_ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
    let idle_polling = RawPolling::handshake(relay.socketio_addr).await;
    // A connection that never sends a request.
    let mut silent = tokio::net::TcpStream::connect(relay.socketio_addr)
        .await
        .unwrap();
    let started = tokio::time::Instant::now();

    assert!(idle_ws.closed_within(TIMEOUT).await, "idle WebSocket kept");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(TIMEOUT, silent.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "silent connection kept: {read:?}"
    );
    idle_polling.assert_gone("idle polling session").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed only after {:?}",
        started.elapsed()
    );
    wait_disconnections(&relay, "connect_timeout", 2.0).await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.push("/", &[&joined_sid], "kept", json!([])).await;
    joined.expect_packet("42[\"kept\"]").await;
    assert_eq!(relay.inner().engine.session_count(), 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn bad_engineio_packets_over_websocket_close_the_session() {
    let relay = start_relay(|_| {}).await;
    let mut witness = Witness::join(&relay).await;
    let text = |s: &str| (OpCode::Data(Data::Text), s.as_bytes().to_vec());
    let cases = [
        ("garbage", text("hello there")),
        ("unknown packet type", text("9")),
        ("empty message", text("")),
        ("open packet from a client", text("0{}")),
        ("ping that is not a probe", text("2")),
        ("upgrade without a probe", text("5")),
        (
            "text that is not UTF-8",
            (OpCode::Data(Data::Text), b"42[\"\xff\xfe\"]".to_vec()),
        ),
    ];
    for (name, (opcode, payload)) in cases {
        let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
        ws.connect_ns("/").await;
        ws.send_raw_frame(opcode, payload, true).await;
        assert!(ws.closed_within(TIMEOUT).await, "{name}: session kept");
        witness.check(&relay, name).await;
    }
    eventually("every bad session closed", TIMEOUT, || async {
        (relay.inner().engine.session_count() == 2).then_some(())
    })
    .await;
    assert!(disconnections(&relay, "parse_error") >= 6.0);
    relay.shutdown().await;
}

#[tokio::test]
async fn bad_engineio_payloads_over_polling_close_the_session() {
    let relay = start_relay(|_| {}).await;
    let mut witness = Witness::join(&relay).await;
    let cases: [(&str, &[u8]); 9] = [
        ("garbage", b"hello there"),
        ("unknown packet type", b"9"),
        ("empty body", b""),
        ("empty record", b"42[\"a\"]\x1e"),
        ("open packet from a client", b"0{}"),
        ("ping from a client", b"2"),
        ("upgrade over polling", b"5"),
        ("text that is not UTF-8", b"42[\"\xff\xfe\"]"),
        ("invalid base64", b"b!!not base64!!"),
    ];
    for (name, body) in cases {
        let polling = RawPolling::handshake(relay.socketio_addr).await;
        polling.connect_ns("/").await;
        let resp = polling.post(body.to_vec()).await;
        assert_eq!(resp.status, 400, "{name}: {}", resp.body);
        assert_eq!(resp.json, error_body(3, "Bad request"), "{name}");
        polling.assert_gone(name).await;
        witness.check(&relay, name).await;
    }
    wait_disconnections(&relay, "parse_error", cases.len() as f64).await;
    relay.shutdown().await;
}

/// `max_payload_bytes` bounds a WebSocket message (however it is fragmented) and a
/// polling POST body; a message of exactly that size is allowed.
#[tokio::test]
async fn oversized_input_is_refused() {
    const MAX: usize = 1000;
    let relay = start_relay(|c| c.server.max_payload_bytes = MAX as u64).await;
    let mut witness = Witness::join(&relay).await;
    let events_in = "sio_relay_packets_total{direction=\"in\",type=\"event\"}";

    // Exactly the limit: accepted over both transports.
    let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
    let ws_sid = sid_of(&ws.connect_ns("/").await);
    ws.send_text(&event_of_size(MAX)).await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    let polling_sid = sid_of(&polling.connect_ns("/").await);
    polling.send(&[&event_of_size(MAX)]).await;
    eventually("both events at the limit counted", TIMEOUT, || async {
        (relay.metric(events_in) == 2.0).then_some(())
    })
    .await;
    // A message fragmented into frames, within the limit.
    let half = event_of_size(MAX).into_bytes();
    let (first, rest) = half.split_at(MAX / 2);
    ws.send_raw_frame(OpCode::Data(Data::Text), first.to_vec(), false)
        .await;
    ws.send_raw_frame(OpCode::Data(Data::Continue), rest.to_vec(), true)
        .await;
    eventually("the fragmented event counted", TIMEOUT, || async {
        (relay.metric(events_in) == 3.0).then_some(())
    })
    .await;
    for (sid, name) in [(&ws_sid, "ws"), (&polling_sid, "polling")] {
        let outcome = relay.push("/", &[sid], "still", json!([])).await;
        assert_eq!(outcome.recipients, 1, "{name} session closed at the limit");
    }
    ws.expect_packet("42[\"still\"]").await;
    polling.expect_packet("42[\"still\"]").await;

    // One byte over: closed, counted as payload_too_large.
    ws.send_text(&event_of_size(MAX + 1)).await;
    assert!(ws.closed_within(TIMEOUT).await, "oversized message kept");
    wait_disconnections(&relay, "payload_too_large", 1.0).await;
    witness.check(&relay, "oversized WebSocket message").await;

    // Over the limit in fragments that are each under it.
    let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
    ws.connect_ns("/").await;
    let big = event_of_size(3 * MAX).into_bytes();
    let chunks: Vec<&[u8]> = big.chunks(MAX / 2).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        ws.send_raw_frame(opcode, chunk.to_vec(), i == chunks.len() - 1)
            .await;
    }
    assert!(
        ws.closed_within(TIMEOUT).await,
        "oversized fragmented message kept"
    );
    wait_disconnections(&relay, "payload_too_large", 2.0).await;
    witness.check(&relay, "oversized fragmented message").await;

    // A POST body over the limit: 413.
    let resp = polling.post(event_of_size(MAX + 1)).await;
    assert_eq!(resp.status, 413, "{}", resp.body);
    polling.assert_gone("oversized POST").await;
    wait_disconnections(&relay, "payload_too_large", 3.0).await;
    witness.check(&relay, "oversized POST").await;
    relay.shutdown().await;
}

/// A second GET while one is pending is refused with 400 and ends the session; the first
/// gets the close packet.
#[tokio::test]
async fn overlapping_polls_close_the_session() {
    let relay = start_relay(|_| {}).await;
    let mut witness = Witness::join(&relay).await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    polling.connect_ns("/").await;
    let at = polling.endpoint.clone();
    let query = format!("EIO=4&transport=polling&sid={}", polling.sid);
    let first =
        tokio::spawn(async move { RawPolling::request(&at, Method::GET, &query, &[], None).await });
    // Let the first GET reach the server and wait there.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!first.is_finished(), "the first GET did not wait");

    let second = polling.get_within(TIMEOUT).await.expect("second GET hung");
    assert_eq!(second.status, 400, "{}", second.body);
    assert_eq!(second.json, error_body(3, "Bad request"));
    let first = tokio::time::timeout(TIMEOUT, first)
        .await
        .expect("the first GET was not ended")
        .unwrap();
    // The waiting GET is answered with the close packet, as the reference server does.
    assert_eq!((first.status, first.body.as_str()), (200, "1"));
    polling.assert_gone("overlapping GET").await;
    wait_disconnections(&relay, "transport_error", 1.0).await;
    witness.check(&relay, "overlapping GET").await;
    relay.shutdown().await;
}

/// A second POST while one is still being received is refused with 400 and ends the
/// session.
#[tokio::test]
async fn overlapping_posts_close_the_session() {
    let relay = start_relay(|_| {}).await;
    let mut witness = Witness::join(&relay).await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    polling.connect_ns("/").await;

    // A POST whose body never finishes arriving.
    let mut slow = TcpStream::connect(relay.socketio_addr).await.unwrap();
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\n\
         Host: {}\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n42",
        polling.sid, relay.socketio_addr
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let resp = polling.post("42[\"second\"]").await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(resp.json, error_body(3, "Bad request"));
    polling.assert_gone("overlapping POST").await;
    wait_disconnections(&relay, "transport_error", 1.0).await;
    witness.check(&relay, "overlapping POST").await;
    drop(slow);
    relay.shutdown().await;
}

/// The upgrade done by hand: probe, noop to the pending poll, upgrade packet; then the
/// session is served over WebSocket and refuses polling and a second upgrade.
#[tokio::test]
async fn polling_session_upgrades_to_websocket() {
    let relay = start_relay(|_| {}).await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    let sid = sid_of(&polling.connect_ns("/").await);

    let at = polling.endpoint.clone();
    let query = format!("EIO=4&transport=polling&sid={}", polling.sid);
    let pending =
        tokio::spawn(async move { RawPolling::request(&at, Method::GET, &query, &[], None).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let url = RawWs::url(
        relay.socketio_addr,
        "/socket.io/",
        &format!("EIO=4&transport=websocket&sid={}", polling.sid),
    );
    let mut ws = RawWs::connect(&url, &[]).await.expect("upgrade refused");
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text(TIMEOUT).await.as_deref(), Some("3probe"));
    let noop = tokio::time::timeout(TIMEOUT, pending)
        .await
        .expect("the pending poll was not ended")
        .unwrap();
    noop.expect_status(200);
    assert_eq!(split_payload(&noop.body), vec!["6"]);

    // A second upgrade attempt while the first is under way: its handshake is accepted and
    // the connection closed at once, as the reference server does.
    let url = RawWs::url(
        relay.socketio_addr,
        "/socket.io/",
        &format!("EIO=4&transport=websocket&sid={}", polling.sid),
    );
    let mut second = RawWs::connect(&url, &[])
        .await
        .expect("the second handshake is accepted");
    assert!(second.closed_within(TIMEOUT).await);

    ws.send_text("5").await;
    eventually("the upgrade to complete", TIMEOUT, || async {
        let target = Target {
            namespace: "/".into(),
            to: vec![sid.clone()],
            except: vec![],
        };
        let listing = relay.inner().adapter.sockets(&target).await.unwrap();
        (listing.items[0].transport == Some(sio_relay::config::Transport::Websocket)).then_some(())
    })
    .await;
    relay.push("/", &[&sid], "over_ws", json!([1])).await;
    ws.expect_packet("42[\"over_ws\",1]").await;
    let gauge = "sio_relay_sockets{namespace=\"/\",transport=\"websocket\"}";
    assert_eq!(relay.metric(gauge), 1.0);

    // Polling is over for this session.
    let resp = polling.get_within(TIMEOUT).await.expect("GET hung");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json, error_body(3, "Bad request"));
    relay.shutdown().await;
}

/// A probe that goes wrong leaves the polling session as it was.
#[tokio::test]
async fn failed_upgrade_keeps_the_polling_session() {
    let relay = start_relay(|_| {}).await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    let sid = sid_of(&polling.connect_ns("/").await);
    let url = RawWs::url(
        relay.socketio_addr,
        "/socket.io/",
        &format!("EIO=4&transport=websocket&sid={}", polling.sid),
    );
    let mut ws = RawWs::connect(&url, &[]).await.expect("upgrade refused");
    ws.send_text("2notaprobe").await;
    assert!(ws.closed_within(TIMEOUT).await);
    relay.push("/", &[&sid], "still_polling", json!([])).await;
    polling.expect_packet("42[\"still_polling\"]").await;
    relay.shutdown().await;
}

const QUEUE: usize = 8;
/// Room for exactly `QUEUE` of the floods below: `42["flood",n]` (13 bytes for one digit)
/// plus the queue's 64 bytes of bookkeeping each.
const QUEUE_BYTES: u64 = QUEUE as u64 * (13 + 64);

/// A polling client that never polls while events pile up: with the default policy its
/// session is closed once its queue is full (`queue_full`), and later pushes find no one.
#[tokio::test]
async fn slow_client_is_disconnected_when_its_queue_is_full() {
    let relay = start_relay(|c| c.limits.max_queued_bytes = QUEUE_BYTES).await;
    let mut witness = Witness::join(&relay).await;
    let slow = RawPolling::handshake(relay.socketio_addr).await;
    let sid = sid_of(&slow.connect_ns("/").await);

    let mut delivered = 0;
    for n in 0..1000 {
        delivered += relay
            .push("/", &[&sid], "flood", json!([n]))
            .await
            .recipients;
    }
    assert_eq!(delivered, QUEUE, "only a full queue's worth is accepted");
    wait_disconnections(&relay, "queue_full", 1.0).await;
    assert!(relay.metric("sio_relay_dropped_total{reason=\"slow_client\"}") >= 1.0);
    slow.assert_gone("slow client").await;
    assert!(!sids_in(&relay, "/").await.contains(&sid));
    assert_eq!(relay.inner().engine.session_count(), 2);
    witness.check(&relay, "a slow client's flood").await;
    relay.shutdown().await;
}

/// With `limits.slow_client = "drop"` the slow client stays; what does not fit in its
/// queue is dropped and counted, and the queue never holds more than its bound.
#[tokio::test]
async fn slow_client_keeps_its_session_with_the_drop_policy() {
    let relay = start_relay(|c| {
        c.limits.max_queued_bytes = QUEUE_BYTES;
        c.limits.slow_client = SlowClientPolicy::Drop;
    })
    .await;
    let mut witness = Witness::join(&relay).await;
    let slow = RawPolling::handshake(relay.socketio_addr).await;
    let sid = sid_of(&slow.connect_ns("/").await);

    const N: usize = 1000;
    let mut delivered = 0;
    for n in 0..N {
        delivered += relay
            .push("/", &[&sid], "flood", json!([n]))
            .await
            .recipients;
    }
    assert_eq!(delivered, QUEUE);
    let dropped = relay.metric("sio_relay_dropped_total{reason=\"slow_client\"}");
    assert_eq!(dropped, (N - QUEUE) as f64);
    assert_eq!(disconnections(&relay, "queue_full"), 0.0);

    // What was queued is exactly the first events, in order; nothing more was kept.
    let packets = slow.recv().await;
    let expected: Vec<String> = (0..QUEUE).map(|n| format!("42[\"flood\",{n}]")).collect();
    assert_eq!(packets, expected);

    // Still connected and served.
    relay.push("/", &[&sid], "after", json!([])).await;
    slow.expect_packet("42[\"after\"]").await;
    let extra = slow.get_within(QUIET).await;
    assert!(extra.is_none(), "more was queued: {extra:?}");
    witness.check(&relay, "a slow client's flood").await;
    relay.shutdown().await;
}

/// Plain POSTs carry several packets at once, and the payload format keeps binary.
#[tokio::test]
async fn polling_payloads_carry_several_packets() {
    let relay = start_relay(|_| {}).await;
    let polling = RawPolling::handshake(relay.socketio_addr).await;
    let sid = sid_of(&polling.connect_ns("/").await);
    let binary_event = r#"451-["up",{"_placeholder":true,"num":0}]"#;
    polling
        .send(&["42[\"a\"]", binary_event, "bAQID", "42[\"b\"]", "6"])
        .await;
    let counted = || {
        (
            relay.metric("sio_relay_packets_total{direction=\"in\",type=\"event\"}"),
            relay.metric("sio_relay_packets_total{direction=\"in\",type=\"binary_event\"}"),
        )
    };
    eventually("three events counted", TIMEOUT, || async {
        (counted() == (2.0, 1.0)).then_some(())
    })
    .await;

    // Several queued packets go out in one GET, binary as `b<base64>`.
    relay.push("/", &[&sid], "one", json!([])).await;
    relay
        .push(
            "/",
            &[&sid],
            "two",
            json!([common::clients::binary(&[1, 2, 3])]),
        )
        .await;
    let packets = polling.recv().await;
    assert_eq!(
        packets,
        vec![
            "42[\"one\"]".to_string(),
            r#"451-["two",{"_placeholder":true,"num":0}]"#.to_string(),
            "bAQID".to_string(),
        ]
    );
    relay.shutdown().await;
}
