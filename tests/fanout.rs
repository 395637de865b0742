//! An emit is encoded once per parser: every recipient's queue holds the same bytes as
//! every other recipient with the same parser.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use sio_relay::adapter::local::LocalAdapter;
use sio_relay::adapter::{EmitRequest, Target};
use sio_relay::config::{ServerConfig, Transport};
use sio_relay::engine::packet::Frame;
use sio_relay::engine::{Engine, EngineHandler, Message, Outbound};
use sio_relay::metrics::Metrics;
use sio_relay::socketio::SocketIo;
use sio_relay::socketio::packet::Args;
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
            let session = engine.open_session(remote, Transport::Websocket);
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
            let session = engine.open_session(remote, Transport::Websocket);
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
