//! A Socket.IO client's packets through the real engine, in memory: a long-polling
//! session connects to `/`, then the input is POSTed as one polling payload (text
//! messages and `b`-prefixed binary attachments), so the Socket.IO layer's reassembly of
//! binary packets (`BINARY_EVENT`/`BINARY_ACK` and their attachments, in any order and
//! number) runs on it. When the first byte is odd, an admin emit to this socket waits for
//! its acknowledgement meanwhile, so a matching `BINARY_ACK` goes on to the placeholder
//! substitution that turns attachments back into `{"$binary": …}`. Ack ids change from
//! input to input, so every `#` in the payload is replaced with the id the relay just
//! used. The wait is abandoned after the payload: no input waits for a timeout.
//!
//! Whatever the input: no panic, and every session is closed and gone before the next
//! input.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use sio_relay::adapter::Adapter;
use sio_relay::adapter::local::LocalAdapter;
use sio_relay::admin::{AdminState, router};
use sio_relay::config::{AdminConfig, ServerConfig};
use sio_relay::engine::{CloseReason, Engine};
use sio_relay::metrics::Metrics;
use sio_relay::socketio::SocketIo;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    engine: Arc<Engine<SocketIo>>,
    http: Router,
    admin: Router,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (engine, admin) = runtime.block_on(async {
            let metrics = Metrics::new();
            let local = Arc::new(LocalAdapter::new(metrics.clone(), CancellationToken::new()));
            let adapter = Arc::new(Adapter::memory(local.clone()));
            let socketio = SocketIo::new(local, &["/".to_string()], metrics.clone());
            let engine = Engine::new(socketio, ServerConfig::default(), metrics.clone());
            let state = AdminState::new(adapter, metrics, &AdminConfig::default());
            state.set_listening(true);
            (engine, router(state))
        });
        let http = sio_relay::engine::router(engine.clone());
        Fixture {
            runtime,
            engine,
            http,
            admin,
        }
    })
}

async fn polling(http: &Router, method: Method, sid: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("/socket.io/?EIO=4&transport=polling{sid}"))
        .body(Body::from(body))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = http.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, payload)) = input.split_first() else {
        return;
    };
    let fixture = fixture();
    fixture.runtime.block_on(async {
        let (status, open) = polling(&fixture.http, Method::GET, "", Vec::new()).await;
        assert_eq!(status, 200);
        let open: serde_json::Value =
            serde_json::from_slice(open.strip_prefix(b"0").expect("open packet")).unwrap();
        let sid = format!("&sid={}", open["sid"].as_str().unwrap());
        assert_eq!(
            polling(&fixture.http, Method::POST, &sid, b"40".to_vec()).await.0,
            200
        );
        let (_, connected) = polling(&fixture.http, Method::GET, &sid, Vec::new()).await;
        let connected: serde_json::Value =
            serde_json::from_slice(connected.strip_prefix(b"40").expect("CONNECT answer")).unwrap();
        let socket = connected["sid"].as_str().unwrap();

        let mut payload = payload.to_vec();
        let waiting = if flags & 1 == 1 {
            let request = Request::builder()
                .method(Method::POST)
                .uri("/v1/emit")
                .body(Body::from(format!(
                    r#"{{"to": "{socket}", "event": "e", "ack_timeout_ms": 60000}}"#
                )))
                .unwrap();
            let waiting = tokio::spawn(fixture.admin.clone().oneshot(request));
            tokio::task::yield_now().await;
            // The event: `421["e"]`, with the ack id after the type.
            let poll = polling(&fixture.http, Method::GET, &sid, Vec::new());
            let (_, event) = tokio::time::timeout(std::time::Duration::from_secs(5), poll)
                .await
                .expect("the acknowledged event reaches the client");
            let id: Vec<u8> = event
                .strip_prefix(b"42")
                .unwrap_or_default()
                .iter()
                .copied()
                .take_while(u8::is_ascii_digit)
                .collect();
            payload = replace_all(&payload, b'#', &id);
            Some(waiting)
        } else {
            None
        };
        // Any answer is fine (a bad payload closes the session); only a panic is not.
        polling(&fixture.http, Method::POST, &sid, payload).await;
        tokio::task::yield_now().await;
        if let Some(waiting) = waiting {
            if waiting.is_finished() {
                let response = waiting.await.unwrap().unwrap();
                assert_eq!(response.status().as_u16(), 200);
            } else {
                waiting.abort();
            }
        }
        fixture.engine.close_all(CloseReason::ServerShutdown);
        for _ in 0..100_000 {
            if fixture.engine.session_count() == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("a closed session was not removed");
    });
});

fn replace_all(data: &[u8], from: u8, to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &byte in data {
        if byte == from {
            out.extend_from_slice(to);
        } else {
            out.push(byte);
        }
    }
    out
}
