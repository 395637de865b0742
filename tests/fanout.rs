//! An emit is encoded once: every recipient's queue holds the same bytes.

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
            let session = engine.open_session(
                remote,
                Transport::Websocket,
                &sio_relay::engine::Handshake::none(),
            );
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
