//! One emit fanned out to 10,000 in-process sockets: the cost of a broadcast, a room
//! emit and a unicast through the rooms index, excluding the transports; and a broadcast
//! and room emit where half the sockets speak the msgpack parser (`_mixed`).
//!
//! To compare `_mixed` with all JSON, run each benchmark in its own process (a name filter
//! on the command line): within one process the first benchmark measured is the slower.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sio_relay::adapter::local::LocalAdapter;
use sio_relay::adapter::{EmitRequest, Target};
use sio_relay::config::{ServerConfig, Transport};
use sio_relay::engine::{Engine, EngineHandler, Message, Session};
use sio_relay::metrics::Metrics;
use sio_relay::socketio::packet::Args;
use sio_relay::socketio::{Client, SocketIo};
use tokio_util::sync::CancellationToken;

const SOCKETS: usize = 10_000;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    adapter: Arc<LocalAdapter>,
    sessions: Vec<Arc<Session<Client>>>,
    sids: Vec<String>,
}

/// socket.io-msgpack-parser's CONNECT to `/`: `{"type": 0, "nsp": "/"}`.
const MSGPACK_CONNECT: &[u8] = b"\x82\xa4type\x00\xa3nsp\xa1/";

/// Two fixtures of 10,000 sockets: all JSON, and mixed (every other socket speaks msgpack).
/// Their sockets are opened in turn, one in each, so that both get the same kind of place in
/// the heap: built one after the other, the second lands in the first one's freed memory and
/// is slower for that alone, whatever its parsers.
fn fixtures() -> (Fixture, Fixture) {
    let (mut json, mut mixed) = (Building::new(), Building::new());
    for i in 0..SOCKETS {
        json.open(false);
        mixed.open(i % 2 == 1);
    }
    (json.finish(), mixed.finish())
}

/// A fixture while its sockets are being opened.
struct Building {
    runtime: tokio::runtime::Runtime,
    adapter: Arc<LocalAdapter>,
    engine: Arc<Engine<SocketIo>>,
    sessions: Vec<Arc<Session<Client>>>,
}

impl Building {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let metrics = Metrics::new();
        let adapter = Arc::new(LocalAdapter::new(metrics.clone(), CancellationToken::new()));
        let settings = ServerConfig {
            ping_interval_ms: 3_600_000,
            connect_timeout_ms: 3_600_000,
            ..ServerConfig::default()
        };
        let socketio = SocketIo::new(adapter.clone(), &settings.namespaces, metrics.clone());
        let engine = Engine::new(socketio, settings, metrics);
        Building {
            runtime,
            adapter,
            engine,
            sessions: Vec::with_capacity(SOCKETS),
        }
    }

    /// Opens a session and connects it to `/` with the JSON or the msgpack parser.
    fn open(&mut self, msgpack: bool) {
        let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let _runtime = self.runtime.enter();
        let session = self.engine.open_session(
            remote,
            Transport::Websocket,
            &sio_relay::engine::Handshake::none(),
        );
        let connect = if msgpack {
            Message::Binary(Bytes::from_static(MSGPACK_CONNECT))
        } else {
            Message::Text(Bytes::from_static(b"0"))
        };
        self.engine.handler().on_message(&session, connect);
        assert_eq!(drain(&session), 1);
        self.sessions.push(session);
    }

    /// Joins the sockets to rooms of 100.
    fn finish(self) -> Fixture {
        let sids: Vec<String> = self
            .sessions
            .iter()
            .map(|session| session.data.sids()[0].to_string())
            .collect();
        for (i, sid) in sids.iter().enumerate() {
            self.adapter.join(
                &Target {
                    namespace: "/".into(),
                    to: vec![sid.clone()],
                    except: vec![],
                },
                &[format!("room-{}", i % 100)],
            );
        }
        Fixture {
            runtime: self.runtime,
            adapter: self.adapter,
            sessions: self.sessions,
            sids,
        }
    }
}

fn drain(session: &Session<Client>) -> usize {
    let mut n = 0;
    while session.try_recv().is_some() {
        n += 1;
    }
    n
}

fn request(to: Vec<String>) -> EmitRequest {
    EmitRequest {
        target: Target {
            namespace: "/".into(),
            to,
            except: vec![],
        },
        event: "update".into(),
        args: Args {
            values: vec![json!({"id": 1, "status": "ok"})],
            attachments: vec![],
        },
        ack_timeout: None,
    }
}

fn bench(c: &mut Criterion, fx: &Fixture, name: &str, to: impl Fn(usize) -> Vec<String>) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters as usize {
                let request = request(to(i));
                let start = Instant::now();
                let outcome = fx.runtime.block_on(fx.adapter.emit(request)).unwrap();
                total += start.elapsed();
                assert!(outcome.recipients > 0);
                for session in &fx.sessions {
                    drain(session);
                }
            }
            total
        })
    });
}

fn fanout(c: &mut Criterion) {
    let (fx, mixed) = fixtures();
    bench(c, &fx, "fanout/broadcast_10k", |_| vec![]);
    bench(c, &mixed, "fanout/broadcast_10k_mixed", |_| vec![]);
    bench(c, &fx, "fanout/room_100", |i| {
        vec![format!("room-{}", i % 100)]
    });
    bench(c, &mixed, "fanout/room_100_mixed", |i| {
        vec![format!("room-{}", i % 100)]
    });
    bench(c, &fx, "fanout/unicast", |i| {
        vec![fx.sids[i % SOCKETS].clone()]
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = fanout
}
criterion_main!(benches);
