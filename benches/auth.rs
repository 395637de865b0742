//! What `[auth] mode = "jwt"` adds to a namespace connect: checking an HS256 token (header,
//! signature, claims, namespace globs, rooms and data) against a secret, through the same
//! `Auth::check` the Socket.IO layer calls. Figures in docs/benchmarks.md.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use sio_relay::auth::{Auth, Check, Handshake, Request};
use sio_relay::config::{AuthConfig, AuthMode};
use sio_relay::metrics::Metrics;

fn hs256_check(c: &mut Criterion) {
    let secret = "bench-secret-0123456789abcdef0123456789";
    let config = AuthConfig {
        mode: AuthMode::Jwt,
        jwt_secret: secret.into(),
        ..AuthConfig::default()
    };
    let auth = Auth::new(&config, &Metrics::new())
        .unwrap()
        .expect("jwt mode");
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = encode(
        &Header::new(Algorithm::HS256),
        &json!({
            "sub": "user-12345", "exp": exp, "rooms": ["team-1", "org-7"],
            "namespaces": ["/", "/chat/*"], "data": {"plan": "pro", "locale": "en"},
        }),
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap();
    let payload = json!({ "token": token });
    let handshake = Handshake::default();
    let address: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    c.bench_function("auth/jwt_hs256_check", |b| {
        b.iter(|| {
            let request = Request {
                namespace: "/chat/room-1",
                auth: black_box(&payload),
                handshake: &handshake,
                address,
            };
            match auth.check(&request) {
                Check::Ready(Ok(grant)) => black_box(grant),
                _ => panic!("the token is valid"),
            }
        })
    });
}

criterion_group!(benches, hs256_check);
criterion_main!(benches);
