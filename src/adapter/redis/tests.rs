//! The cluster against the real Redis on 127.0.0.1:6379, each test under its own key
//! prefix, with nodes whose rooms index is a small in-memory double.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::wire::node::{Broadcast, Request, RequestKind};
use super::wire::python::{PythonEmit, PythonKind, PythonMessage};
use super::wire::{BroadcastOpts, Channels, EventPacket, Selector};
use super::{BoxFuture, ClusterOptions, LocalOps, Readiness, RedisCluster};
use crate::adapter::{
    AckReply, AdapterError, EmitOutcome, EmitRequest, RoomInfo, SocketInfo, Target,
};
use crate::config::Transport;
use crate::socketio::packet::Args;

const REDIS: &str = "redis://127.0.0.1:6379";

/// A socket of the double.
#[derive(Clone)]
struct FakeSocket {
    sid: String,
    rooms: Vec<String>,
    /// What it answers to an event with an ack; `None`: it never answers.
    answer: Option<Args>,
}

/// A node's rooms index: sockets, and the events they received.
#[derive(Default)]
struct FakeLocal {
    namespace: String,
    sockets: Mutex<Vec<FakeSocket>>,
    received: Mutex<Vec<(String, String, Args)>>,
}

impl FakeLocal {
    fn with(sockets: &[(&str, &[&str])]) -> Arc<Self> {
        Arc::new(FakeLocal {
            namespace: "/".into(),
            sockets: Mutex::new(
                sockets
                    .iter()
                    .map(|(sid, rooms)| FakeSocket {
                        sid: (*sid).into(),
                        rooms: rooms.iter().map(|r| (*r).into()).collect(),
                        answer: Some(Args {
                            values: vec![json!(format!("ack-{sid}"))],
                            attachments: vec![],
                        }),
                    })
                    .collect(),
            ),
            received: Mutex::default(),
        })
    }

    fn selected(&self, target: &Target) -> Vec<FakeSocket> {
        if target.namespace != self.namespace {
            return Vec::new();
        }
        let member = |s: &FakeSocket, names: &[String]| {
            names.iter().any(|n| *n == s.sid || s.rooms.contains(n))
        };
        let sockets = self.sockets.lock().unwrap();
        sockets
            .iter()
            .filter(|s| target.to.is_empty() || member(s, &target.to))
            .filter(|s| !member(s, &target.except))
            .cloned()
            .collect()
    }

    fn received(&self) -> Vec<(String, String, Args)> {
        self.received.lock().unwrap().clone()
    }

    fn rooms_of(&self, sid: &str) -> Vec<String> {
        let sockets = self.sockets.lock().unwrap();
        sockets
            .iter()
            .find(|s| s.sid == sid)
            .map(|s| s.rooms.clone())
            .unwrap_or_default()
    }
}

impl LocalOps for FakeLocal {
    fn emit(&self, request: EmitRequest) -> BoxFuture<'_, EmitOutcome> {
        Box::pin(async move {
            let selected = self.selected(&request.target);
            let mut outcome = EmitOutcome {
                recipients: selected.len(),
                ..EmitOutcome::default()
            };
            for socket in &selected {
                let entry = (
                    socket.sid.clone(),
                    request.event.clone(),
                    request.args.clone(),
                );
                self.received.lock().unwrap().push(entry);
                if request.ack_timeout.is_some() {
                    match &socket.answer {
                        Some(args) => outcome.acks.push(AckReply {
                            sid: Some(socket.sid.clone()),
                            args: args.clone(),
                        }),
                        None => outcome.timeouts.push(socket.sid.clone()),
                    }
                }
            }
            if let Some(timeout) = request.ack_timeout
                && !outcome.timeouts.is_empty()
            {
                tokio::time::sleep(timeout).await;
            }
            outcome
        })
    }

    fn join(&self, target: &Target, rooms: &[String]) -> usize {
        let selected: Vec<String> = self.selected(target).into_iter().map(|s| s.sid).collect();
        for socket in self.sockets.lock().unwrap().iter_mut() {
            if selected.contains(&socket.sid) {
                for room in rooms {
                    if !socket.rooms.contains(room) {
                        socket.rooms.push(room.clone());
                    }
                }
            }
        }
        selected.len()
    }

    fn leave(&self, target: &Target, rooms: &[String]) -> usize {
        let selected: Vec<String> = self.selected(target).into_iter().map(|s| s.sid).collect();
        for socket in self.sockets.lock().unwrap().iter_mut() {
            if selected.contains(&socket.sid) {
                socket.rooms.retain(|r| !rooms.contains(r));
            }
        }
        selected.len()
    }

    fn disconnect(&self, target: &Target) -> usize {
        let selected: Vec<String> = self.selected(target).into_iter().map(|s| s.sid).collect();
        self.sockets
            .lock()
            .unwrap()
            .retain(|s| !selected.contains(&s.sid));
        selected.len()
    }

    fn sockets(&self, target: &Target) -> Vec<SocketInfo> {
        self.selected(target)
            .into_iter()
            .map(|s| SocketInfo {
                sid: s.sid,
                namespace: target.namespace.clone(),
                rooms: s.rooms,
                transport: Some(Transport::Websocket),
                parser: Some("json".into()),
                eio: Some(4),
                address: Some("127.0.0.1:4000".into()),
                connected_at: Some("2026-11-26T00:17:06.346Z".into()),
                user: None,
                data: None,
            })
            .collect()
    }

    fn rooms(&self, namespace: &str) -> Vec<RoomInfo> {
        let all = Target {
            namespace: namespace.into(),
            ..Target::default()
        };
        let mut rooms: Vec<RoomInfo> = Vec::new();
        for socket in self.selected(&all) {
            for room in socket.rooms {
                match rooms.iter_mut().find(|r| r.name == room) {
                    Some(r) => r.size += 1,
                    None => rooms.push(RoomInfo {
                        name: room,
                        size: 1,
                    }),
                }
            }
        }
        rooms
    }

    fn has_room(&self, namespace: &str, room: &str) -> bool {
        let target = Target {
            namespace: namespace.to_owned(),
            to: vec![room.to_owned()],
            except: Vec::new(),
        };
        !self.selected(&target).is_empty()
    }
}

fn prefix() -> String {
    format!("sio-relay-test-{}", super::random_id(10))
}

fn options(url: &str, prefix: &str) -> ClusterOptions {
    ClusterOptions {
        url: url.into(),
        key_prefix: prefix.into(),
        request_timeout: Duration::from_millis(500),
        python_channel: Some(format!("{prefix}-python")),
        namespaces: vec!["/".into()],
        metrics: crate::metrics::Metrics::new(),
    }
}

async fn node(prefix: &str, local: Arc<FakeLocal>) -> RedisCluster {
    let cluster =
        RedisCluster::start(options(REDIS, prefix), local, CancellationToken::new()).unwrap();
    assert!(
        cluster.wait_ready(Duration::from_secs(5)).await,
        "{:?}",
        cluster.readiness()
    );
    cluster
}

fn to(rooms: &[&str]) -> Target {
    Target {
        namespace: "/".into(),
        to: rooms.iter().map(|r| (*r).into()).collect(),
        except: vec![],
    }
}

fn emit(target: Target, event: &str, ack: Option<Duration>) -> EmitRequest {
    EmitRequest {
        target,
        event: event.into(),
        args: Args {
            values: vec![json!("hi"), json!({"_placeholder": true, "num": 0})],
            attachments: vec![Bytes::from_static(&[1, 2, 3])],
        },
        ack_timeout: ack,
    }
}

async fn publish(channel: &str, payload: &[u8]) {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap();
}

/// Polls `check` for up to two seconds.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

const SID_A: &str = "AAAAAAAAAAAAAAAAAAAA";
const SID_B: &str = "BBBBBBBBBBBBBBBBBBBB";
const SID_C: &str = "CCCCCCCCCCCCCCCCCCCC";

#[tokio::test]
async fn emit_reaches_other_nodes_and_counts_cluster_wide() {
    let prefix = prefix();
    let (la, lb) = (
        FakeLocal::with(&[(SID_A, &[])]),
        FakeLocal::with(&[(SID_B, &["room1"]), (SID_C, &[])]),
    );
    let a = node(&prefix, la.clone()).await;
    let _b = node(&prefix, lb.clone()).await;

    let outcome = a.emit(emit(to(&[SID_B]), "hello", None)).await.unwrap();
    assert_eq!((outcome.recipients, outcome.partial), (1, false));
    let received = lb.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, SID_B);
    assert_eq!(
        received[0].2.attachments,
        vec![Bytes::from_static(&[1, 2, 3])]
    );

    let outcome = a.emit(emit(to(&[]), "all", None)).await.unwrap();
    assert_eq!(outcome.recipients, 3);
    let outcome = a
        .emit(emit(to(&["nobody-here"]), "none", None))
        .await
        .unwrap();
    assert_eq!((outcome.recipients, outcome.partial), (0, false));
}

#[tokio::test]
async fn acks_come_back_with_sids_and_timeouts() {
    let prefix = prefix();
    let lb = FakeLocal::with(&[(SID_B, &["room1"]), (SID_C, &["room1"])]);
    lb.sockets.lock().unwrap()[1].answer = None;
    let a = node(&prefix, FakeLocal::with(&[(SID_A, &["room1"])])).await;
    let _b = node(&prefix, lb).await;

    let outcome = a
        .emit(emit(
            to(&["room1"]),
            "ask",
            Some(Duration::from_millis(800)),
        ))
        .await
        .unwrap();
    assert_eq!(outcome.recipients, 3);
    let mut sids: Vec<_> = outcome
        .acks
        .iter()
        .map(|a| a.sid.clone().unwrap())
        .collect();
    sids.sort();
    assert_eq!(sids, vec![SID_A.to_owned(), SID_B.to_owned()]);
    assert_eq!(outcome.timeouts, vec![SID_C.to_owned()]);
    assert!(!outcome.partial);
}

#[tokio::test]
async fn join_leave_disconnect_apply_everywhere_and_listings_merge() {
    let prefix = prefix();
    let (la, lb) = (
        FakeLocal::with(&[(SID_A, &["room1"])]),
        FakeLocal::with(&[(SID_B, &["room1"])]),
    );
    let a = node(&prefix, la.clone()).await;
    let _b = node(&prefix, lb.clone()).await;

    let applied = a.join(&to(&["room1"]), &["room2".into()]).await.unwrap();
    assert_eq!((applied.sockets, applied.partial), (2, false));
    assert_eq!(
        lb.rooms_of(SID_B),
        vec!["room1".to_owned(), "room2".to_owned()]
    );
    assert_eq!(
        la.rooms_of(SID_A),
        vec!["room1".to_owned(), "room2".to_owned()]
    );

    let listing = a.sockets(&to(&["room2"])).await.unwrap();
    assert!(!listing.partial);
    let remote = listing.items.iter().find(|s| s.sid == SID_B).unwrap();
    assert_eq!(remote.rooms, vec!["room1".to_owned(), "room2".to_owned()]);
    assert_eq!(remote.transport, Some(Transport::Websocket));
    assert_eq!(remote.address.as_deref(), Some("127.0.0.1:4000"));
    assert_eq!(
        remote.connected_at.as_deref(),
        Some("2026-11-26T00:17:06.346Z")
    );

    let mut rooms = a.rooms("/").await.unwrap().items;
    rooms.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        rooms,
        vec![
            RoomInfo {
                name: "room1".into(),
                size: 2
            },
            RoomInfo {
                name: "room2".into(),
                size: 2
            }
        ]
    );

    let applied = a.leave(&to(&[SID_B]), &["room2".into()]).await.unwrap();
    assert_eq!(applied.sockets, 1);
    assert_eq!(lb.rooms_of(SID_B), vec!["room1".to_owned()]);

    let applied = a.disconnect(&to(&["room1"])).await.unwrap();
    assert_eq!(applied.sockets, 2);
    assert!(lb.sockets.lock().unwrap().is_empty());
    assert_eq!(a.sockets(&to(&[])).await.unwrap().items, vec![]);
}

#[tokio::test]
async fn a_node_that_never_answers_makes_listings_partial() {
    let prefix = prefix();
    let a = node(&prefix, FakeLocal::with(&[(SID_A, &[])])).await;
    // A subscriber of the request channel that never answers, like a dead Node server.
    let client = redis::Client::open(REDIS).unwrap();
    let mut silent = client.get_async_pubsub().await.unwrap();
    silent
        .subscribe(Channels::new(prefix.as_str()).request("/"))
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let listing = a.sockets(&to(&[])).await.unwrap();
    assert!(listing.partial);
    assert_eq!(listing.items.len(), 1);
    assert!(started.elapsed() < Duration::from_millis(1500));
    // A silent node is not a sio-relay node: joins do not wait for it.
    let applied = a.join(&to(&[]), &["r".into()]).await.unwrap();
    assert_eq!((applied.sockets, applied.partial), (1, false));
}

#[tokio::test]
async fn node_emitter_and_python_messages_are_applied() {
    let prefix = prefix();
    let local = FakeLocal::with(&[(SID_A, &["room1"]), (SID_B, &[])]);
    let _a = node(&prefix, local.clone()).await;
    let channels = Channels::new(prefix.as_str());

    // @socket.io/redis-emitter: a broadcast to room1, then a socketsJoin.
    let broadcast = Broadcast {
        uid: "emitter".into(),
        packet: EventPacket {
            nsp: "/".into(),
            event: "news".into(),
            args: Args {
                values: vec![json!(1)],
                attachments: vec![],
            },
        },
        opts: BroadcastOpts {
            selector: Selector {
                rooms: vec!["room1".into()],
                except: vec![],
            },
            ..BroadcastOpts::default()
        },
        request_id: None,
    };
    publish(&channels.room("/", "room1"), &broadcast.encode().unwrap()).await;
    let join = Request {
        uid: None,
        kind: RequestKind::Join {
            request_id: None,
            selector: Selector::default(),
            rooms: vec!["room9".into()],
        },
    };
    publish(&channels.request("/"), &join.encode().unwrap()).await;
    // A reserved event name and garbage are dropped.
    let mut reserved = broadcast.clone();
    reserved.packet.event = "disconnect".into();
    publish(&channels.broadcast("/"), &reserved.encode().unwrap()).await;
    publish(&channels.broadcast("/"), b"{\"not\":\"msgpack\"}").await;

    assert!(eventually(|| local.rooms_of(SID_B).contains(&"room9".to_owned())).await);
    let received = local.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].0.as_str(), received[0].1.as_str()),
        (SID_A, "news")
    );

    // python-socketio: pickled (dropped), then JSON emit and enter_room.
    let python = format!("{prefix}-python");
    publish(
        &python,
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.",
    )
    .await;
    let emit = PythonMessage {
        host_id: Some("h".into()),
        kind: PythonKind::Emit(PythonEmit {
            namespace: "/".into(),
            event: "py".into(),
            args: Args {
                values: vec![json!("x")],
                attachments: vec![],
            },
            rooms: Some(vec![SID_B.into()]),
            skip_sids: vec![],
            callback: None,
        }),
    };
    publish(&python, &emit.encode().unwrap()).await;
    let enter = PythonMessage {
        host_id: Some("h".into()),
        kind: PythonKind::EnterRoom {
            namespace: "/".into(),
            sid: SID_A.into(),
            room: "py-room".into(),
        },
    };
    publish(&python, &enter.encode().unwrap()).await;
    assert!(eventually(|| local.rooms_of(SID_A).contains(&"py-room".to_owned())).await);
    let received = local.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        (received[1].0.as_str(), received[1].1.as_str()),
        (SID_B, "py")
    );
}

/// Forwards TCP to Redis until `stop` is cancelled; then refuses until restarted.
async fn proxy(listener: TcpListener, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => return,
        };
        let Ok((mut client, _)) = accepted else {
            return;
        };
        let stop = stop.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect("127.0.0.1:6379").await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

#[tokio::test]
async fn redis_outage_is_reported_refused_and_recovered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(proxy(listener, stop.clone()));

    let prefix = prefix();
    let local = FakeLocal::with(&[(SID_A, &[])]);
    let url = format!("redis://{addr}");
    let a = RedisCluster::start(
        options(&url, &prefix),
        local.clone(),
        CancellationToken::new(),
    )
    .unwrap();
    assert!(a.wait_ready(Duration::from_secs(5)).await);

    stop.cancel();
    let mut rx = a.inner.readiness.clone();
    // (The watch guard is dropped at once: holding it would block the connection task.)
    let down = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|r| *r != Readiness::Up))
        .await
        .is_ok();
    assert!(down, "down within 5 s");
    let refused = a.emit(emit(to(&[]), "lost", None)).await;
    assert!(matches!(refused, Err(AdapterError::ClusterUnavailable(_))));
    assert!(local.received().is_empty(), "nothing half-delivered");

    // Redis comes back on the same address.
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    tokio::spawn(proxy(listener, CancellationToken::new()));
    assert!(
        a.wait_ready(Duration::from_secs(10)).await,
        "ready again within 10 s"
    );

    // Resubscribed: a broadcast from another node arrives.
    let broadcast = Broadcast {
        uid: "other".into(),
        packet: EventPacket {
            nsp: "/".into(),
            event: "back".into(),
            args: Args::default(),
        },
        opts: BroadcastOpts::default(),
        request_id: None,
    };
    publish(
        &Channels::new(prefix.as_str()).broadcast("/"),
        &broadcast.encode().unwrap(),
    )
    .await;
    assert!(eventually(|| local.received().len() == 1).await);
}

#[tokio::test]
async fn unreachable_redis_is_down_with_a_reason() {
    let a = RedisCluster::start(
        options("redis://127.0.0.1:1", &prefix()),
        FakeLocal::with(&[]),
        CancellationToken::new(),
    )
    .unwrap();
    assert!(!a.wait_ready(Duration::from_millis(300)).await);
    assert!(matches!(a.readiness(), Readiness::Down(_)));
    assert!(matches!(
        a.rooms("/").await,
        Err(AdapterError::ClusterUnavailable(_))
    ));
    assert!(
        RedisCluster::start(
            options("http://x", "p"),
            FakeLocal::with(&[]),
            CancellationToken::new()
        )
        .is_err()
    );
}
