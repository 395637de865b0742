//! Protocol breadth: socket.io-client 2.x (Engine.IO v3, Socket.IO v4), the msgpack parser
//! (socket.io-msgpack-parser, python-socketio `serializer="msgpack"`) and the default JSON
//! clients, all on one relay and in one room, over each transport, getting the same pushes
//! and answering acks through the admin API (the msgpack bundle in headless Chromium too);
//! then what the older protocol does differently on the wire, and bad input in each, on raw
//! sockets.

mod common;

use std::time::Duration;

use common::browser::{self, BROWSER_START, Browser};
use common::clients::{Client, ClientKind, ClientOptions, binary};
use common::raw::{RawPolling, RawWs};
use common::{TIMEOUT, TestRelay, start_relay};
use reqwest::Method;
use serde_json::{Value, json};

async fn relay_with_chat() -> TestRelay {
    start_relay(|c| c.server.namespaces = vec!["/".into(), "/chat".into()]).await
}

/// Ends a client: Python drivers are killed (see tests/socketio.rs), JS ones exit.
async fn finish(client: Client) {
    if client.kind().is_python() {
        drop(client);
    } else {
        client.exit().await;
    }
}

/// The sid the relay knows a client by in `/`: what the client prints, except that
/// socket.io-client 2.x prints `/ns#<sid>` outside `/`.
fn relay_sid(client: &Client, ns: &str) -> String {
    let sid = client.sid(ns).expect("connected");
    match sid.split_once('#') {
        Some((_, bare)) => bare.to_string(),
        None => sid,
    }
}

/// Every kind of client on one relay over `transports`, in one room: each gets the same
/// pushes (JSON and binary), answers an ack with JSON and binary, and `/v1/sockets`
/// shows its parser and Engine.IO version.
async fn mixed_room(transports: &str) {
    let relay = relay_with_chat().await;
    let answer = json!(["fine", binary(&[1, 2, 3]), {"nested": binary(b"xyz")}]);
    let options = |o: ClientOptions| {
        o.transports(transports)
            .ack("ask", answer.clone())
            .no_reconnect()
    };
    let kinds: Vec<(&str, ClientOptions, &str, u64)> = vec![
        ("js-json", options(relay.client(ClientKind::Js)), "json", 4),
        (
            "js-msgpack",
            options(relay.client(ClientKind::Js).msgpack()),
            "msgpack",
            4,
        ),
        (
            "js-v2",
            options(relay.client(ClientKind::Js).v2()),
            "json",
            3,
        ),
        (
            "py-msgpack",
            options(relay.client(ClientKind::Py).msgpack()),
            "msgpack",
            4,
        ),
    ];
    let mut clients = Vec::new();
    for (name, options, parser, eio) in kinds {
        let client = options.connect().await;
        clients.push((name, client, parser, eio));
    }
    let admin = relay.admin();
    let sids: Vec<String> = clients
        .iter()
        .map(|(_, c, _, _)| relay_sid(c, "/"))
        .collect();
    let joined = admin.join(&json!({"to": sids, "rooms": ["mixed"]})).await;
    assert_eq!(joined.expect_status(200)["sockets"], 4);

    let listing = admin.sockets("to=mixed").await;
    let listed = listing.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(listed.len(), 4, "{listed:?}");
    for ((name, _, parser, eio), sid) in clients.iter().zip(&sids) {
        let socket = listed
            .iter()
            .find(|s| s["sid"] == *sid)
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(socket["parser"], *parser, "{name}");
        assert_eq!(socket["eio"], *eio, "{name}");
        assert_eq!(socket["rooms"], json!(["mixed"]), "{name}");
    }

    let args = json!([{"a": 1, "b": [true, null, -2, 3.5]}, "two", binary(&[0, 1, 254, 255]), {"deep": [binary(b"hi")]}]);
    let sent = admin
        .emit(&json!({"to": "mixed", "event": "news", "args": args}))
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 4);
    for (name, client, _, _) in &mut clients {
        assert_eq!(
            client.wait_event("/", "news").await,
            args,
            "{name}\n{}",
            client.report()
        );
    }

    let asked = admin
        .emit(&json!({"to": "mixed", "event": "ask", "data": binary(&[7]), "ack_timeout_ms": 8000}))
        .await;
    let outcome = asked.expect_status(200);
    assert_eq!(outcome["recipients"], 4, "{outcome}");
    assert_eq!(outcome["timeouts"], json!([]), "{outcome}");
    let acks = outcome["acks"].as_array().unwrap();
    assert_eq!(acks.len(), 4, "{outcome}");
    for ack in acks {
        assert!(sids.iter().any(|s| ack["sid"] == *s), "{ack}");
        assert_eq!(ack["args"], answer, "{ack}");
    }
    for (name, client, _, _) in &mut clients {
        assert_eq!(
            client.wait_event("/", "ask").await,
            json!([binary(&[7])]),
            "{name}"
        );
    }

    // Pushes to one sid, and a server-side disconnect, per client.
    for ((name, client, _, _), sid) in clients.iter_mut().zip(&sids) {
        let sent = admin
            .emit(&json!({"to": sid, "event": "solo", "data": name.to_string()}))
            .await;
        assert_eq!(sent.expect_status(200)["recipients"], 1);
        assert_eq!(
            client.wait_event("/", "solo").await,
            json!([name.to_string()])
        );
    }
    let gone = admin.disconnect(&json!({"to": "mixed"})).await;
    assert_eq!(gone.expect_status(200)["sockets"], 4);
    for (name, client, _, _) in &mut clients {
        let reason = client.wait_disconnect("/").await;
        assert!(reason.contains("server disconnect"), "{name}: {reason}");
    }
    for (_, client, _, _) in clients {
        finish(client).await;
    }
    relay.shutdown().await;
}

/// socket.io-client's msgpack bundle in headless Chromium, in one room with a JSON client
/// in Node, over `transports`: both get the same push (JSON and binary, natively binary in
/// msgpack), both answer an ack, and `/v1/sockets` shows each one's parser.
async fn browser_msgpack_beside_json(transports: &str) {
    if !browser::available() {
        return;
    }
    let relay = relay_with_chat().await;
    let answer = json!(["fine", binary(&[1, 2, 3])]);
    let mut node = relay
        .client(ClientKind::Js)
        .transports(transports)
        .ack("ask", answer.clone())
        .no_reconnect()
        .connect()
        .await;
    let node_sid = relay_sid(&node, "/");
    let transports_list: Vec<&str> = transports.split(',').collect();
    let mut page = Browser::open(
        &relay.url(),
        json!({"parser": "msgpack", "transports": transports_list, "ack": {"ask": answer}}),
    )
    .await;
    let page_sid = page.next("connect", None, BROWSER_START).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = relay.admin();
    let joined = admin
        .join(&json!({"to": [&node_sid, &page_sid], "rooms": ["mixed"]}))
        .await;
    assert_eq!(joined.expect_status(200)["sockets"], 2);
    let listing = admin.sockets("to=mixed").await;
    let listed = listing.expect_status(200)["sockets"].clone();
    let parser_of = |sid: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["sid"] == sid)
            .map(|s| s["parser"].clone())
    };
    assert_eq!(parser_of(&page_sid), Some(json!("msgpack")), "{listed}");
    assert_eq!(parser_of(&node_sid), Some(json!("json")), "{listed}");

    let args = json!([{"a": 1, "b": [true, null, -2, 3.5]}, binary(&[0, 1, 254, 255])]);
    let sent = admin
        .emit(&json!({"to": "mixed", "event": "news", "args": args}))
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 2);
    assert_eq!(node.wait_event("/", "news").await, args);
    assert_eq!(
        page.next("event", Some("news"), TIMEOUT).await["args"],
        args
    );

    let asked = admin
        .emit(&json!({"to": "mixed", "event": "ask", "ack_timeout_ms": 8000}))
        .await;
    let outcome = asked.expect_status(200);
    assert_eq!(outcome["timeouts"], json!([]), "{outcome}");
    let acks = outcome["acks"].as_array().unwrap();
    assert_eq!(acks.len(), 2, "{outcome}");
    for ack in acks {
        assert_eq!(ack["args"], answer, "{ack}");
    }
    page.close().await;
    finish(node).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn browser_msgpack_client_over_websocket() {
    browser_msgpack_beside_json("websocket").await;
}

#[tokio::test]
async fn browser_msgpack_client_over_polling() {
    browser_msgpack_beside_json("polling").await;
}

#[tokio::test]
async fn mixed_room_over_websocket() {
    mixed_room("websocket").await;
}

#[tokio::test]
async fn mixed_room_over_polling() {
    mixed_room("polling").await;
}

#[tokio::test]
async fn mixed_room_over_polling_with_upgrade() {
    mixed_room("polling,websocket").await;
}

/// socket.io-client 2.x with namespaces: `/chat` is joined after the implied `/`, its
/// socket id is `/chat#<session id>` on the client and the session id on the relay; a
/// namespace not allowed gets the v4 error packet, which 2.x reports as an `error` event.
#[tokio::test]
async fn socket_io_v2_namespaces() {
    let relay = relay_with_chat().await;
    for transports in ["websocket", "polling"] {
        let mut client = relay
            .client(ClientKind::Js)
            .v2()
            .transports(transports)
            .ns("/")
            .ns("/chat")
            .ns("/forbidden")
            .no_reconnect()
            .spawn()
            .await;
        assert_eq!(
            client.wait_connect_error("/forbidden").await,
            "Invalid namespace"
        );
        let root = match client.sid("/") {
            Some(sid) => sid,
            None => client.wait_connected("/").await,
        };
        let chat = match client.sid("/chat") {
            Some(sid) => sid,
            None => client.wait_connected("/chat").await,
        };
        assert_eq!(chat, format!("/chat#{root}"), "{transports}");
        let sent = relay
            .admin()
            .emit(&json!({"namespace": "/chat", "to": root, "event": "hi", "args": [1, binary(&[2])]}))
            .await;
        assert_eq!(sent.expect_status(200)["recipients"], 1);
        assert_eq!(
            client.wait_event("/chat", "hi").await,
            json!([1, binary(&[2])])
        );
        finish(client).await;
    }
    relay.shutdown().await;
}

/// The raw Engine.IO v3 handshake over polling: a length-prefixed payload holding the
/// open packet (no `maxPayload`) and the implied CONNECT to `/`.
async fn v3_polling(relay: &TestRelay, query: &str) -> (String, String) {
    let endpoint = format!("{}/socket.io/", relay.url());
    let open = RawPolling::request(
        &endpoint,
        Method::GET,
        &format!("EIO=3&transport=polling{query}"),
        &[],
        None,
    )
    .await;
    open.expect_status(200);
    let colon = open.body.find(':').unwrap();
    let length: usize = open.body[..colon].parse().unwrap();
    let packet = &open.body[colon + 1..colon + 1 + length];
    let json: Value = serde_json::from_str(packet.strip_prefix('0').unwrap()).unwrap();
    assert!(json.get("maxPayload").is_none(), "{json}");
    assert_eq!(json["upgrades"], json!(["websocket"]));
    assert_eq!(
        &open.body[colon + 1 + length..],
        "2:40",
        "the implied CONNECT follows"
    );
    (endpoint, json["sid"].as_str().unwrap().to_string())
}

/// Engine.IO v3 on the wire: the client pings and the relay answers; a binary push is a
/// base64 record in a text payload for a `b64` client and the binary framing otherwise;
/// a session silent for longer than ping interval plus timeout is closed.
#[tokio::test]
async fn engine_io_v3_on_the_wire() {
    let relay = start_relay(|c| {
        c.server.ping_interval_ms = 400;
        c.server.ping_timeout_ms = 400;
    })
    .await;
    let (endpoint, sid) = v3_polling(&relay, "&b64=1").await;
    let query = format!("EIO=3&transport=polling&sid={sid}");
    let post =
        RawPolling::request(&endpoint, Method::POST, &query, &[], Some(b"1:2".to_vec())).await;
    post.expect_status(200);
    let get = RawPolling::request(&endpoint, Method::GET, &query, &[], None).await;
    assert_eq!(get.body, "1:3");

    relay
        .push("/", &[&sid], "bin", json!([binary(&[1, 2, 3])]))
        .await;
    let get = RawPolling::request(&endpoint, Method::GET, &query, &[], None).await;
    assert_eq!(
        get.body,
        "41:451-[\"bin\",{\"_placeholder\":true,\"num\":0}]6:b4AQID"
    );
    assert!(
        get.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );

    // Silent: closed after ping interval + timeout (800 ms), generously bounded.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let gone = RawPolling::request(&endpoint, Method::GET, &query, &[], None).await;
    assert_eq!(gone.status, 400, "{}", gone.body);
    let closed = relay.metric("sio_relay_disconnections_total{reason=\"ping_timeout\"}");
    assert!(closed >= 1.0, "{closed}");

    // Without b64, binary goes in the binary framing.
    let (endpoint, sid) = v3_polling(&relay, "").await;
    let query = format!("EIO=3&transport=polling&sid={sid}");
    relay.push("/", &[&sid], "bin", json!([binary(&[9])])).await;
    let http = reqwest::Client::new();
    let get = http
        .get(format!("{endpoint}?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.headers()["content-type"], "application/octet-stream");
    let body = get.bytes().await.unwrap();
    let text = b"451-[\"bin\",{\"_placeholder\":true,\"num\":0}]";
    let mut want = vec![0, 4, 1, 255];
    want.extend_from_slice(text);
    want.extend_from_slice(&[1, 2, 255, 4, 9]);
    assert_eq!(&body[..], &want[..]);
    relay.shutdown().await;
}

/// Engine.IO v3 over WebSocket (through the listener's direct path): the open packet,
/// the implied CONNECT, binary frames behind a `4` byte both ways.
#[tokio::test]
async fn engine_io_v3_websocket() {
    let relay = start_relay(|_| {}).await;
    let url = RawWs::url(
        relay.socketio_addr,
        "/socket.io/",
        "EIO=3&transport=websocket",
    );
    let mut ws = RawWs::connect(&url, &[]).await.unwrap();
    let open = ws.recv_text(TIMEOUT).await.unwrap();
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    assert!(open.get("maxPayload").is_none());
    ws.expect_packet("40").await;
    let sid = open["sid"].as_str().unwrap().to_string();
    ws.send_text("2").await;
    ws.expect_packet("3").await;

    relay
        .push("/", &[&sid], "bin", json!([binary(&[5, 6])]))
        .await;
    ws.expect_packet("451-[\"bin\",{\"_placeholder\":true,\"num\":0}]")
        .await;
    let frame = ws.recv(TIMEOUT).await.unwrap().unwrap();
    assert_eq!(frame.into_data().to_vec(), vec![4, 5, 6]);

    // A binary frame without the type byte breaks the protocol.
    ws.send_binary(&[1, 2]).await;
    assert!(ws.closed_within(TIMEOUT).await);
    relay.shutdown().await;
}

/// The limits hold for Engine.IO v3 and msgpack clients: a v3 polling body over
/// `server.max_payload_bytes` gets 413; a v3 session whose queue outgrows
/// `limits.max_queued_bytes` with no GET waiting gets the close packet, length-prefixed,
/// on its next GET, and a waiting GET of a session closed for bad input gets it at once; a
/// msgpack message over `max_payload_bytes` closes its WebSocket.
#[tokio::test]
async fn limits_hold_for_v3_and_msgpack_clients() {
    let relay = start_relay(|c| {
        c.server.max_payload_bytes = 1000;
        c.limits.max_queued_bytes = 4 * 80;
    })
    .await;
    let metric = |reason: &str| format!("sio_relay_disconnections_total{{reason=\"{reason}\"}}");

    let (endpoint, sid) = v3_polling(&relay, "").await;
    let query = format!("EIO=3&transport=polling&sid={sid}");
    let body = format!("1999:4{}", "x".repeat(1998)).into_bytes();
    let post = RawPolling::request(&endpoint, Method::POST, &query, &[], Some(body)).await;
    assert_eq!(post.status, 413, "{}", post.body);

    // Nobody polls while pushes overflow the queue: the next GET gets `1:1`, then the
    // session is unknown.
    let (endpoint, sid) = v3_polling(&relay, "").await;
    let query = format!("EIO=3&transport=polling&sid={sid}");
    for n in 0.. {
        assert!(n < 100, "the queue never overflowed");
        let sent = relay.push("/", &[&sid], "flood", json!([n])).await;
        if sent.recipients == 0 {
            break;
        }
    }
    common::eventually("the session closed: queue_full", TIMEOUT, || async {
        (relay.metric(&metric("queue_full")) == 1.0).then_some(())
    })
    .await;
    let owed = RawPolling::request(&endpoint, Method::GET, &query, &[], None).await;
    assert_eq!((owed.status, owed.body.as_str()), (200, "1:1"));
    let gone = RawPolling::request(&endpoint, Method::GET, &query, &[], None).await;
    assert_eq!(gone.status, 400, "{}", gone.body);

    // A GET waits; a bad payload ends the session: the waiting GET gets `1:1`.
    let (endpoint, sid) = v3_polling(&relay, "").await;
    let query = format!("EIO=3&transport=polling&sid={sid}");
    let waiting = {
        let (endpoint, query) = (endpoint.clone(), query.clone());
        tokio::spawn(
            async move { RawPolling::request(&endpoint, Method::GET, &query, &[], None).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bad = RawPolling::request(&endpoint, Method::POST, &query, &[], Some(b"5:40".to_vec()));
    assert_eq!(bad.await.status, 400);
    let answered = tokio::time::timeout(TIMEOUT, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((answered.status, answered.body.as_str()), (200, "1:1"));

    // A msgpack message over the limit.
    let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
    ws.send_binary(MSGPACK_CONNECT).await;
    assert!(ws.recv(TIMEOUT).await.unwrap().unwrap().is_binary());
    let mut big = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa2ev\xc5\x07\xd0".to_vec();
    big.resize(big.len() + 2000, 0);
    ws.send_binary(&big).await;
    assert!(ws.closed_within(TIMEOUT).await, "over max_payload_bytes");
    common::eventually("both sessions counted", TIMEOUT, || async {
        (relay.metric(&metric("payload_too_large")) == 2.0).then_some(())
    })
    .await;
    relay.shutdown().await;
}

/// A msgpack map that opens a session's Socket.IO traffic: connect as socket.io-msgpack-parser
/// does, `{"type": 0, "nsp": "/"}`.
const MSGPACK_CONNECT: &[u8] = b"\x82\xa4type\x00\xa3nsp\xa1/";

/// Bad msgpack and bad v3 payloads close only the session that sent them, counted as
/// `parse_error`; a msgpack client next to them keeps getting its pushes.
#[tokio::test]
async fn bad_input_closes_only_that_session() {
    let relay = start_relay(|_| {}).await;
    let mut bystander = relay
        .client(ClientKind::Js)
        .msgpack()
        .transports("websocket")
        .no_reconnect()
        .connect()
        .await;
    let bystander_sid = bystander.sid("/").unwrap();

    let event_truncated = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa2ev";
    let cases: [(&str, &[u8]); 5] = [
        ("wrong type", b"\x82\xa4type\x09\xa3nsp\xa1/"),
        ("huge map header", b"\xdf\xff\xff\xff\xff\xa4type"),
        ("truncated", event_truncated),
        ("nested too deep", &[0x91; 4096]),
        ("event without data", b"\x82\xa4type\x02\xa3nsp\xa1/"),
    ];
    let mut closed = 0.0;
    for (name, bytes) in cases {
        let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
        // The first packet of one case is bad; of the others, it follows a good CONNECT.
        if name != "huge map header" {
            ws.send_binary(MSGPACK_CONNECT).await;
            let answer = ws.recv(TIMEOUT).await.unwrap().unwrap();
            assert!(answer.is_binary(), "{name}: {answer:?}");
        }
        ws.send_binary(bytes).await;
        assert!(ws.closed_within(TIMEOUT).await, "{name}");
        closed += 1.0;
    }
    // A text packet from a msgpack client.
    let (mut ws, _) = RawWs::connect_eio(relay.socketio_addr).await;
    ws.send_binary(MSGPACK_CONNECT).await;
    ws.recv(TIMEOUT).await.unwrap().unwrap();
    ws.send_text("42[\"x\"]").await;
    assert!(ws.closed_within(TIMEOUT).await, "text from msgpack");
    closed += 1.0;

    // Engine.IO v3 payloads with wrong length prefixes.
    for body in [
        &b"5:40"[..],
        b"x:40",
        b"2:40junk",
        b"\x00\x09\xff40",
        b"\x01\x01\xff",
    ] {
        let (endpoint, sid) = v3_polling(&relay, "").await;
        let query = format!("EIO=3&transport=polling&sid={sid}");
        let post =
            RawPolling::request(&endpoint, Method::POST, &query, &[], Some(body.to_vec())).await;
        assert_eq!(post.status, 400, "{body:?}");
        let after = RawPolling::request(&endpoint, Method::GET, &query, &[], None).await;
        // Gone: the close packet once (length-prefixed), or unknown.
        assert!(
            after.status == 400 || after.body == "1:1",
            "{body:?}: the session is gone: {} {}",
            after.status,
            after.body
        );
        closed += 1.0;
    }

    common::eventually("every bad session counted", TIMEOUT, || async {
        let counted = relay.metric("sio_relay_disconnections_total{reason=\"parse_error\"}");
        (counted >= closed).then_some(())
    })
    .await;
    let sent = relay
        .push("/", &[&bystander_sid], "still", json!([binary(&[1])]))
        .await;
    assert_eq!(sent.recipients, 1);
    assert_eq!(
        bystander.wait_event("/", "still").await,
        json!([binary(&[1])])
    );
    finish(bystander).await;
    relay.shutdown().await;
}

/// A msgpack client is refused a namespace in msgpack, with the v5 error object.
#[tokio::test]
async fn msgpack_namespace_refused() {
    let relay = start_relay(|_| {}).await;
    for kind in [ClientKind::Js, ClientKind::Py] {
        let mut client = relay
            .client(kind)
            .msgpack()
            .transports("websocket")
            .ns("/nope")
            .no_reconnect()
            .spawn()
            .await;
        let message = client.wait_connect_error("/nope").await;
        assert_eq!(message, "Invalid namespace", "{}", kind.name());
        finish(client).await;
    }
    relay.shutdown().await;
}
