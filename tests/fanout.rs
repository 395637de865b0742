//! An emit is encoded once per parser: every recipient's queue holds the same bytes as
//! every other recipient with the same parser, with connection state recovery on too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use sio_relay::adapter::local::{LocalAdapter, Offsets};
use sio_relay::adapter::replay::MemoryReplay;
use sio_relay::adapter::{EmitRequest, Target};
use sio_relay::config::{RecoveryConfig, ServerConfig, Transport};
use sio_relay::engine::packet::Frame;
use sio_relay::engine::{
    CloseReason, Engine, EngineHandler, Handshake, Message, Outbound, Session,
};
use sio_relay::metrics::Metrics;
use sio_relay::socketio::packet::{Args, PacketType};
use sio_relay::socketio::recovery::Recovery;
use sio_relay::socketio::{Client, SocketIo, msgpack};
use tokio_util::sync::CancellationToken;

fn text_ptr(item: &Outbound) -> *const u8 {
    match &item.frames()[0] {
        Frame::Text(bytes) => bytes.as_ptr(),
        Frame::Binary(_) => panic!("a text frame first"),
    }
}

#[tokio::test]
async fn broadcast_shares_one_encoding_among_recipients() {
    let metrics = Metrics::new();
    let adapter = Arc::new(LocalAdapter::new(metrics.clone(), CancellationToken::new()));
    let settings = ServerConfig::default();
    let engine = Engine::new(
        SocketIo::new(adapter.clone(), &settings.namespaces, metrics.clone()),
        settings.clone(),
        metrics,
    );
    let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let sessions: Vec<_> = (0..3)
        .map(|_| {
            let session = engine.open_session(remote, Transport::Websocket, &Handshake::none());
            engine
                .handler()
                .on_message(&session, Message::Text(Bytes::from_static(b"0")));
            session.try_recv().expect("connect answer");
            session
        })
        .collect();
    for binary in [false, true] {
        let args = Args {
            values: vec![json!({"n": 1})],
            attachments: if binary {
                vec![Bytes::from_static(b"\x01")]
            } else {
                vec![]
            },
        };
        let outcome = adapter
            .emit(EmitRequest {
                target: Target {
                    namespace: "/".into(),
                    ..Target::default()
                },
                event: "e".into(),
                args,
                ack_timeout: None,
            })
            .await
            .unwrap();
        assert_eq!(outcome.recipients, 3);
        let received: Vec<_> = sessions.iter().map(|s| s.try_recv().unwrap()).collect();
        assert!(
            received
                .iter()
                .all(|r| text_ptr(r) == text_ptr(&received[0]))
        );
        assert_eq!(received[0].frames().len(), if binary { 2 } else { 1 });
    }
}

fn first_ptr(item: &Outbound) -> *const u8 {
    match &item.frames()[0] {
        Frame::Text(bytes) | Frame::Binary(bytes) => bytes.as_ptr(),
    }
}

/// JSON and msgpack clients in one broadcast: two encodings, each shared by its parser's
/// recipients; the msgpack one carries the binary argument inline.
#[tokio::test]
async fn mixed_parsers_share_one_encoding_each() {
    let metrics = Metrics::new();
    let adapter = Arc::new(LocalAdapter::new(metrics.clone(), CancellationToken::new()));
    let settings = ServerConfig::default();
    let engine = Engine::new(
        SocketIo::new(adapter.clone(), &settings.namespaces, metrics.clone()),
        settings.clone(),
        metrics,
    );
    let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let msgpack_connect: &'static [u8] = b"\x82\xa4type\x00\xa3nsp\xa1/";
    let sessions: Vec<_> = (0..4)
        .map(|i| {
            let session = engine.open_session(remote, Transport::Websocket, &Handshake::none());
            let connect = if i % 2 == 0 {
                Message::Text(Bytes::from_static(b"0"))
            } else {
                Message::Binary(Bytes::from_static(msgpack_connect))
            };
            engine.handler().on_message(&session, connect);
            session.try_recv().expect("connect answer");
            session
        })
        .collect();
    let outcome = adapter
        .emit(EmitRequest {
            target: Target {
                namespace: "/".into(),
                ..Target::default()
            },
            event: "e".into(),
            args: Args {
                values: vec![json!({"_placeholder": true, "num": 0})],
                attachments: vec![Bytes::from_static(b"\x01")],
            },
            ack_timeout: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome.recipients, 4);
    let received: Vec<_> = sessions.iter().map(|s| s.try_recv().unwrap()).collect();
    assert_eq!(first_ptr(&received[0]), first_ptr(&received[2]));
    assert_eq!(first_ptr(&received[1]), first_ptr(&received[3]));
    assert_ne!(first_ptr(&received[0]), first_ptr(&received[1]));
    assert_eq!(received[0].frames().len(), 2, "JSON: text and attachment");
    assert_eq!(received[1].frames().len(), 1, "msgpack: one binary message");
    let Frame::Binary(msgpack) = &received[1].frames()[0] else {
        panic!("msgpack packets are binary");
    };
    assert!(
        msgpack.windows(3).any(|w| w == b"\xc4\x01\x01"),
        "bin 1 byte"
    );
}

/// The frames of a session's next item, waiting for it (a recovery answers from a task).
async fn next_item(session: &Session<Client>) -> Outbound {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(item) = session.try_recv() {
            return item;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The JSON payload of a JSON or msgpack packet.
fn payload(item: &Outbound) -> Value {
    match &item.frames()[0] {
        Frame::Text(text) => {
            let text = std::str::from_utf8(&text[1..]).unwrap();
            sio_relay::socketio::packet::decode(text)
                .unwrap()
                .data
                .unwrap()
        }
        Frame::Binary(bytes) => msgpack::decode(bytes).unwrap().0.data.unwrap(),
    }
}

/// With connection state recovery on, a broadcast to JSON and msgpack clients is still
/// encoded once per parser; a JSON and a msgpack client that were away get their sid back
/// and the missed event in their own parser: the JSON one the very bytes delivered live,
/// the msgpack one the same bytes as a msgpack client that stayed.
#[tokio::test]
async fn recovery_replays_in_each_clients_parser() {
    let metrics = Metrics::new();
    let adapter = Arc::new(LocalAdapter::new(metrics.clone(), CancellationToken::new()));
    let settings = ServerConfig::default();
    let socketio = SocketIo::new(adapter.clone(), &settings.namespaces, metrics.clone());
    let recovery = RecoveryConfig {
        enabled: true,
        ..RecoveryConfig::default()
    };
    let replay = Arc::new(MemoryReplay::new(&recovery, &metrics));
    adapter.set_offsets(Offsets::Log(replay.clone()));
    socketio.enable_recovery(Recovery { store: replay });
    let engine = Engine::new(socketio, settings.clone(), metrics);
    let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let msgpack_connect: &'static [u8] = b"\x82\xa4type\x00\xa3nsp\xa1/";
    let mut sessions = Vec::new();
    let mut identities = Vec::new();
    for i in 0..4 {
        let session = engine.open_session(remote, Transport::Websocket, &Handshake::none());
        let connect = if i % 2 == 0 {
            Message::Text(Bytes::from_static(b"0"))
        } else {
            Message::Binary(Bytes::from_static(msgpack_connect))
        };
        engine.handler().on_message(&session, connect);
        let answer = payload(&session.try_recv().expect("connect answer"));
        assert!(answer["pid"].is_string(), "{answer}");
        identities.push(answer);
        sessions.push(session);
    }
    let emit = |event: &str| EmitRequest {
        target: Target {
            namespace: "/".into(),
            ..Target::default()
        },
        event: event.into(),
        args: Args {
            values: vec![json!({"_placeholder": true, "num": 0})],
            attachments: vec![Bytes::from_static(b"\x01")],
        },
        ack_timeout: None,
    };
    assert_eq!(adapter.emit(emit("seen")).await.unwrap().recipients, 4);
    let seen: Vec<_> = sessions.iter().map(|s| s.try_recv().unwrap()).collect();
    assert_eq!(first_ptr(&seen[0]), first_ptr(&seen[2]));
    assert_eq!(first_ptr(&seen[1]), first_ptr(&seen[3]));
    let offsets: Vec<Value> = seen.iter().map(|item| payload(item)[2].clone()).collect();
    assert!(offsets.iter().all(|o| *o == offsets[0] && o.is_string()));

    // Sessions 2 (JSON) and 3 (msgpack) drop; an event is emitted meanwhile.
    sessions[2].close(CloseReason::TransportClose);
    sessions[3].close(CloseReason::TransportClose);
    let everyone = Target {
        namespace: "/".into(),
        ..Target::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while adapter.sockets(&everyone).items.len() > 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sockets still listed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(adapter.emit(emit("missed")).await.unwrap().recipients, 2);
    let live: Vec<_> = sessions[..2]
        .iter()
        .map(|s| s.try_recv().unwrap())
        .collect();

    for (away, live) in [(2, &live[0]), (3, &live[1])] {
        let claim = json!({"pid": identities[away]["pid"], "offset": offsets[0]});
        let session = engine.open_session(remote, Transport::Websocket, &Handshake::none());
        let connect = if away == 2 {
            Message::Text(Bytes::from(format!("0{claim}")))
        } else {
            let bytes = msgpack::encode(PacketType::Connect, "/", Some(&claim), &[], None);
            Message::Binary(bytes)
        };
        engine.handler().on_message(&session, connect);
        let answer = payload(&next_item(&session).await);
        assert_eq!(answer["sid"], identities[away]["sid"], "{away}");
        let replayed = next_item(&session).await;
        assert_eq!(payload(&replayed)[0], "missed");
        assert_eq!(replayed.frames(), live.frames(), "{away}");
        if away == 2 {
            assert_eq!(first_ptr(&replayed), first_ptr(live), "the logged bytes");
        }
    }
}
