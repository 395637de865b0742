//! The admin API's request readers, through the real router: the body reader
//! (`Content-Type`, size, JSON) and the emit, join/leave and disconnect parsers with the
//! selector, plus the query parsers of the listings and the stats stream. The first byte
//! picks the route and `Content-Type`; the rest is the body (or the query string).
//!
//! Whatever the input: no panic, no 5xx, and every refusal is the JSON error envelope
//! with a code. The relay behind it has no sockets, so accepted calls reach nobody.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sio_relay::adapter::Adapter;
use sio_relay::adapter::local::LocalAdapter;
use sio_relay::admin::{AdminState, router};
use sio_relay::config::AdminConfig;
use sio_relay::metrics::Metrics;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    admin: Router,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let admin = runtime.block_on(async {
            let metrics = Metrics::new();
            let local = Arc::new(LocalAdapter::new(metrics.clone(), CancellationToken::new()));
            let adapter = Arc::new(Adapter::memory(local));
            let mut config = AdminConfig::default();
            // Small, so that the size limit is reachable.
            config.max_body_bytes = 4096;
            config.max_ack_timeout_ms = 1;
            let state = AdminState::new(adapter, metrics, &config);
            state.set_listening(true);
            router(state)
        });
        Fixture { runtime, admin }
    })
}

const POSTS: [&str; 4] = ["/v1/emit", "/v1/join", "/v1/leave", "/v1/disconnect"];
const GETS: [&str; 4] = ["/v1/sockets", "/v1/rooms", "/v1/stats", "/v1/stats/stream"];
const TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=utf-8"),
];

fuzz_target!(|input: &[u8]| {
    let Some((&which, rest)) = input.split_first() else {
        return;
    };
    let route = usize::from(which & 0x07);
    let request = if route < POSTS.len() {
        let mut builder = Request::builder().method(Method::POST).uri(POSTS[route]);
        if let Some(kind) = TYPES[usize::from(which >> 3) % TYPES.len()] {
            builder = builder.header(header::CONTENT_TYPE, kind);
        }
        builder.body(Body::from(rest.to_vec())).unwrap()
    } else {
        let Ok(query) = std::str::from_utf8(rest) else {
            return;
        };
        let path = GETS[route - POSTS.len()];
        let Ok(request) = Request::builder()
            .uri(format!("{path}?{query}"))
            .body(Body::empty())
        else {
            return; // not a valid URI: never reaches the relay
        };
        request
    };
    let fixture = fixture();
    fixture.runtime.block_on(async {
        let response = fixture.admin.clone().oneshot(request).await.unwrap();
        let status = response.status();
        assert!(!status.is_server_error(), "{status}");
        if status.is_success() {
            return; // a stream never ends; other answers are checked by the tests
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&body).expect("errors are JSON");
        assert!(value["error"]["code"].is_string(), "{value}");
    });
});
