//! Backend hooks (`[hooks]`): client events and lifecycle events sent to a real HTTP backend
//! on loopback, driven by the official clients.

#[path = "hooks/backend.rs"]
mod backend;
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backend::Backend;
use common::clients::is;
use common::{ClientKind, QUIET, TIMEOUT, start_relay};
use serde_json::{Value, json};
use sio_relay::config::{Config, LifecycleEvent};

const SECRET: &str = "test-secret";

fn hooks(config: &mut Config, url: &str, events: &[&str], lifecycle: &[LifecycleEvent]) {
    config.hooks.url = url.to_owned();
    config.hooks.secret = SECRET.to_owned();
    config.hooks.events = events.iter().map(|e| e.to_string()).collect();
    config.hooks.lifecycle = lifecycle.to_vec();
    config.hooks.timeout_ms = 1_000;
}

fn ack_line(id: u64) -> impl FnMut(&Value) -> bool {
    move |v| (is(v, "ack") || is(v, "ack_timeout")) && v["id"] == id
}

/// A hook answers a client event with emits and an ack; the emits arrive first, binary
/// travels both ways, the request is signed; with both official clients, each with the
/// JSON and the msgpack parser, and socket.io-client 2.x (Engine.IO v3; it keeps `ping`
/// to itself, hence `greet`).
#[tokio::test]
async fn event_answered_with_emits_then_ack() {
    let mut backend = Backend::start(|body: Value| async move {
        let answer = json!({
            "ack": ["pong", body["args"][1].clone()],
            "emit": [
                {"event": "first", "data": body["args"][0].clone()},
                {"event": "second", "args": [1, {"$binary": "AAEC"}]},
            ],
        });
        (200, answer.to_string())
    })
    .await;
    let relay = start_relay(|c| hooks(c, &backend.url(), &["greet", "chat:*"], &[])).await;
    let clients = [
        relay.client(ClientKind::Js),
        relay.client(ClientKind::Py),
        relay.client(ClientKind::Js).msgpack(),
        relay.client(ClientKind::Py).msgpack(),
        relay.client(ClientKind::Js).v2(),
    ];
    let n = clients.len() as f64;
    for options in clients {
        let mut client = options.connect().await;
        let sid = client.sid("/").unwrap();
        client
            .emit_with_ack(
                "/",
                "greet",
                json!([{"a": 1}, {"$binary": "/w=="}]),
                7,
                Some(5_000),
            )
            .await;
        let request = backend.wait(|r| r.kind() == "event").await;
        request.assert_signed(SECRET);
        assert_eq!(
            request.body,
            json!({"type": "event", "namespace": "/", "sid": sid, "user": null,
                   "event": "greet", "args": [{"a": 1}, {"$binary": "/w=="}], "ack": true})
        );
        // Emits, then the ack, in that order.
        let mut order = Vec::new();
        while order.len() < 3 {
            let line = client
                .wait_for(
                    |v| is(v, "event") || is(v, "ack") || is(v, "ack_timeout"),
                    TIMEOUT,
                )
                .await;
            order.push(line);
        }
        if client.kind().is_python() {
            // python-engineio hands each received message to its own thread, so the
            // driver may print them out of order: check what came, not the order.
            let rank = |v: &Value| match (v["type"].as_str(), v["event"].as_str()) {
                (Some("event"), Some("first")) => 0,
                (Some("event"), Some("second")) => 1,
                _ => 2,
            };
            order.sort_by_key(rank);
        }
        assert_eq!(order[0]["event"], "first", "{order:?}");
        assert_eq!(order[0]["args"], json!([{"a": 1}]));
        assert_eq!(order[1]["event"], "second");
        assert_eq!(order[1]["args"], json!([1, {"$binary": "AAEC"}]));
        assert!(is(&order[2], "ack"), "{order:?}");
        assert_eq!(order[2]["args"], json!(["pong", {"$binary": "/w=="}]));

        // Without an ack request the hook is told so; events matching no glob stay here.
        client.emit("/", "other", json!([])).await;
        client.emit("/", "chat:x", json!([])).await;
        let request = backend.wait(|r| r.kind() == "event").await;
        assert_eq!(request.body["ack"], false);
        assert_eq!(request.body["event"], "chat:x");
        client.exit().await;
    }
    assert!(backend.next(QUIET).await.is_none());
    assert_eq!(
        relay.metric(r#"sio_relay_hook_requests_total{outcome="ok",type="event"}"#),
        2.0 * n
    );
    assert_eq!(
        relay.metric(r#"sio_relay_dropped_total{reason="client_event"}"#),
        n
    );
}

/// A slow hook and a dead one: the client gets no ack (its own timeout fires), each failure
/// is counted once, and nothing else waits: other sockets' events, admin pushes.
#[tokio::test]
async fn slow_or_down_hook_means_no_ack_and_blocks_nothing() {
    let backend = Backend::start(|body: Value| async move {
        if body["event"] == "slow" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        (200, json!({"ack": ["done"]}).to_string())
    })
    .await;
    let relay = start_relay(|c| {
        hooks(c, &backend.url(), &["*"], &[]);
        c.hooks.timeout_ms = 700;
    })
    .await;
    let mut slow = relay.client(ClientKind::Js).connect().await;
    let mut other = relay.client(ClientKind::Py).connect().await;
    slow.emit_with_ack("/", "slow", json!([]), 1, Some(3_000))
        .await;
    // While the slow request hangs, another socket is answered and pushes go through.
    other
        .emit_with_ack("/", "fast", json!([]), 2, Some(3_000))
        .await;
    let line = other.wait_for(ack_line(2), TIMEOUT).await;
    assert_eq!(line["args"], json!(["done"]), "{line}");
    let sid = slow.sid("/").unwrap();
    relay
        .admin()
        .emit(&json!({"to": sid, "event": "pushed"}))
        .await
        .expect_status(200);
    slow.wait_event("/", "pushed").await;
    let line = slow.wait_for(ack_line(1), TIMEOUT).await;
    assert!(is(&line, "ack_timeout"), "{line}");
    assert_eq!(
        relay.metric(r#"sio_relay_hook_requests_total{outcome="timeout",type="event"}"#),
        1.0
    );

    // A hook nobody listens on: refused connections, counted, no ack.
    drop(backend);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let mut config = relay.config.clone();
    hooks(&mut config, &url, &["*"], &[]);
    relay.inner().reload(config);
    other
        .emit_with_ack("/", "x", json!([]), 3, Some(1_500))
        .await;
    let line = other.wait_for(ack_line(3), TIMEOUT).await;
    assert!(is(&line, "ack_timeout"), "{line}");
    common::eventually("unreachable counted", TIMEOUT, || async {
        (relay.metric(r#"sio_relay_hook_requests_total{outcome="unreachable",type="event"}"#)
            == 1.0)
            .then_some(())
    })
    .await;
    slow.exit().await;
    other.exit().await;
}

/// Events of one socket reach the hook in the order sent, even when the hook answers
/// them at different speeds and several sockets send at once; sockets run concurrently.
#[tokio::test]
async fn events_of_one_socket_arrive_in_order() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let mut backend = Backend::start(move |body: Value| {
        let (running, most) = (r.clone(), m.clone());
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let n = body["args"][0].as_u64().unwrap_or(0);
            // Early events slowest, so a relay that sent them in parallel would reorder.
            tokio::time::sleep(Duration::from_millis(30 - n % 10 * 3)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            (200, "{}".to_owned())
        }
    })
    .await;
    let relay = start_relay(|c| hooks(c, &backend.url(), &["seq"], &[])).await;
    const N: u64 = 30;
    let mut clients = Vec::new();
    for kind in [ClientKind::Js, ClientKind::Py, ClientKind::Js] {
        clients.push(relay.client(kind).connect().await);
    }
    for n in 0..N {
        for client in &mut clients {
            client.emit("/", "seq", json!([n])).await;
        }
    }
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    for _ in 0..N * clients.len() as u64 {
        let r = backend.wait(|r| r.kind() == "event").await;
        seen.entry(r.body["sid"].as_str().unwrap().to_owned())
            .or_default()
            .push(r.body["args"][0].as_u64().unwrap());
    }
    assert_eq!(seen.len(), clients.len());
    for (sid, got) in &seen {
        assert_eq!(*got, (0..N).collect::<Vec<_>>(), "socket {sid}");
    }
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "sockets were not served concurrently"
    );
    for client in clients {
        client.exit().await;
    }
}

/// Lifecycle: a connect the hook fails twice is retried with the same delivery id, its
/// answer's emits reach the new socket, and the socket's disconnect comes only after it.
#[tokio::test]
async fn lifecycle_retried_and_disconnect_after_connect() {
    let failures = Arc::new(AtomicUsize::new(0));
    let f = failures.clone();
    let mut backend = Backend::start(move |body: Value| {
        let failures = f.clone();
        async move {
            if body["type"] == "connect" && failures.fetch_add(1, Ordering::SeqCst) < 2 {
                return (503, "{}".to_owned());
            }
            let answer = if body["type"] == "connect" {
                json!({"emit": [{"event": "welcome", "data": body["sid"].clone()}]})
            } else {
                json!({})
            };
            (200, answer.to_string())
        }
    })
    .await;
    let relay = start_relay(|c| {
        hooks(
            c,
            &backend.url(),
            &[],
            &[LifecycleEvent::Connect, LifecycleEvent::Disconnect],
        );
        c.hooks.retries = 3;
        c.server.namespaces = vec!["/".into(), "/chat".into()];
    })
    .await;
    let mut client = relay.client(ClientKind::Py).ns("/chat").connect().await;
    let sid = client.sid("/chat").unwrap();
    // Leave at once, while the connect is still being retried.
    client.disconnect().await;
    let mut got = Vec::new();
    while got.len() < 4 {
        let r = backend.wait(|r| r.body["sid"] == sid).await;
        r.assert_signed(SECRET);
        got.push(r);
    }
    let kinds: Vec<&str> = got.iter().map(|r| r.kind()).collect();
    assert_eq!(kinds, ["connect", "connect", "connect", "disconnect"]);
    assert!(got[..3].iter().all(|r| r.delivery() == got[0].delivery()));
    assert_ne!(got[3].delivery(), got[0].delivery());
    let connect = &got[0].body;
    assert_eq!(connect["namespace"], "/chat");
    assert_eq!(connect["user"], Value::Null);
    assert_eq!(connect["data"], Value::Null);
    assert_eq!(connect["rooms"], json!([]));
    assert!(
        connect["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    // python-socketio leaves its namespaces and closes the session at once: which of the
    // two the relay sees first decides the reason.
    let reason = got[3].body["reason"].clone();
    assert!(
        reason == "client namespace disconnect" || reason == "transport close",
        "{reason}"
    );
    assert_eq!(
        got[3].body,
        json!({"type": "disconnect", "namespace": "/chat", "sid": sid, "user": null,
               "reason": reason})
    );
    assert_eq!(
        relay.metric(r#"sio_relay_hook_requests_total{outcome="http_error",type="connect"}"#),
        2.0
    );
    common::eventually("lifecycle queue empty", TIMEOUT, || async {
        (relay.metric("sio_relay_hook_lifecycle_queue") == 0.0).then_some(())
    })
    .await;

    // A connect answered at once: its emit reaches the new socket.
    let mut client = relay.client(ClientKind::Js).connect().await;
    let sid = client.sid("/").unwrap();
    assert_eq!(client.wait_event("/", "welcome").await, json!([sid]));
    relay
        .admin()
        .disconnect(&json!({"to": sid}))
        .await
        .expect_status(200);
    let r = backend
        .wait(|r| r.kind() == "disconnect" && r.body["sid"] == sid)
        .await;
    assert_eq!(r.body["reason"], "server namespace disconnect");
    client.exit().await;
}

/// A lifecycle event the hook never accepts is given up after `retries`, counted.
#[tokio::test]
async fn lifecycle_given_up_after_retries() {
    let mut backend = Backend::start(|_| async { (500, String::new()) }).await;
    let relay = start_relay(|c| {
        hooks(c, &backend.url(), &[], &[LifecycleEvent::Connect]);
        c.hooks.retries = 1;
    })
    .await;
    let client = relay.client(ClientKind::Js).connect().await;
    backend.wait(|r| r.kind() == "connect").await;
    backend.wait(|r| r.kind() == "connect").await;
    common::eventually("given up", TIMEOUT, || async {
        (relay.metric(r#"sio_relay_dropped_total{reason="hook_gave_up"}"#) == 1.0).then_some(())
    })
    .await;
    assert!(backend.next(QUIET).await.is_none());
    client.exit().await;
}

/// Answers the relay refuses: unknown fields, bodies over the limit, emits without an
/// explicit broadcast or with a bad selector. No ack, nothing sent, counted.
#[tokio::test]
async fn bad_answers_are_refused_and_counted() {
    let backend = Backend::start(|body: Value| async move {
        let answer = match body["args"][0].as_str().unwrap_or_default() {
            "unknown" => json!({"ack": [1], "later": true}).to_string(),
            "huge" => json!({"ack": ["x".repeat(10 << 20)]}).to_string(),
            "no_broadcast" => json!({"emit": [{"event": "e", "broadcast": false}], "ack": []}).to_string(),
            "conflict" => json!({"emit": [{"event": "e"}, {"event": "e", "to": "r", "broadcast": true}], "ack": []}).to_string(),
            "not_json" => "nope".to_owned(),
            _ => json!({"ack": ["fine"]}).to_string(),
        };
        (200, answer)
    })
    .await;
    let relay = start_relay(|c| hooks(c, &backend.url(), &["*"], &[])).await;
    let mut client = relay.client(ClientKind::Js).connect().await;
    let cases = ["unknown", "huge", "no_broadcast", "conflict", "not_json"];
    for (id, case) in cases.iter().enumerate() {
        client
            .emit_with_ack("/", "e", json!([case]), id as u64, Some(2_000))
            .await;
    }
    client
        .emit_with_ack("/", "e", json!(["ok"]), 99, Some(5_000))
        .await;
    // The good event is answered at once, before the refused ones' ack timeouts fire:
    // read the answers in whatever order they come.
    let mut due: Vec<u64> = (0..cases.len() as u64).chain([99]).collect();
    while !due.is_empty() {
        let line = client
            .wait_for(
                |v| {
                    (is(v, "ack") || is(v, "ack_timeout"))
                        && v["id"].as_u64().is_some_and(|id| due.contains(&id))
                },
                TIMEOUT,
            )
            .await;
        let id = line["id"].as_u64().unwrap();
        due.retain(|d| *d != id);
        match cases.get(id as usize) {
            Some(case) => assert!(is(&line, "ack_timeout"), "{case} {line}"),
            None => assert_eq!(line["args"], json!(["fine"])),
        }
    }
    // Nothing of a refused answer was emitted.
    assert!(!client.history().iter().any(|v| is(v, "event")));
    assert_eq!(
        relay.metric(r#"sio_relay_hook_requests_total{outcome="bad_answer",type="event"}"#),
        cases.len() as f64
    );
    client.exit().await;
}

/// Over `max_in_flight`, client events are dropped and counted, not queued.
#[tokio::test]
async fn events_beyond_max_in_flight_are_dropped() {
    let backend = Backend::start(|_| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        (200, json!({"ack": []}).to_string())
    })
    .await;
    let relay = start_relay(|c| {
        hooks(c, &backend.url(), &["*"], &[]);
        c.hooks.max_in_flight = 2;
        c.hooks.timeout_ms = 5_000;
    })
    .await;
    let mut client = relay.client(ClientKind::Js).connect().await;
    for id in 0..5 {
        client
            .emit_with_ack("/", "e", json!([]), id, Some(4_000))
            .await;
    }
    let mut answered = 0;
    for id in 0..5 {
        if is(&client.wait_for(ack_line(id), TIMEOUT).await, "ack") {
            answered += 1;
        }
    }
    assert_eq!(answered, 2);
    assert_eq!(
        relay.metric(r#"sio_relay_dropped_total{reason="hook_busy"}"#),
        3.0
    );
    client.exit().await;
}

/// Hooks switch on with a reload: before, client events are dropped; after, forwarded.
#[tokio::test]
async fn hooks_follow_a_reload() {
    let mut backend = Backend::start(|_| async { (200, json!({"ack": ["on"]}).to_string()) }).await;
    let relay = start_relay(|_| {}).await;
    let mut client = relay.client(ClientKind::Py).connect().await;
    client
        .emit_with_ack("/", "e", json!([]), 1, Some(1_000))
        .await;
    assert!(is(
        &client.wait_for(ack_line(1), TIMEOUT).await,
        "ack_timeout"
    ));
    let mut config = relay.config.clone();
    hooks(&mut config, &backend.url(), &["e"], &[]);
    assert!(relay.inner().reload(config).is_empty());
    client
        .emit_with_ack("/", "e", json!([]), 2, Some(5_000))
        .await;
    let line = client.wait_for(ack_line(2), TIMEOUT).await;
    assert_eq!(line["args"], json!(["on"]), "{line}");
    backend.wait(|r| r.kind() == "event").await;
    client.exit().await;
}

/// A hook URL off loopback without a secret is refused at start, naming `hooks.secret`.
#[tokio::test]
async fn secret_required_off_loopback() {
    let out = common::run_relay_cli(
        &["--check-config"],
        &[("SIO_RELAY_HOOKS_URL", "https://backend.example/hook")],
    )
    .await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("hooks.secret"), "{}", out.stderr);
    let out = common::run_relay_cli(
        &["--check-config"],
        &[
            ("SIO_RELAY_HOOKS_URL", "https://backend.example/hook"),
            ("SIO_RELAY_HOOKS_SECRET", "s3cret-value"),
            ("SIO_RELAY_HOOKS_EVENTS", "chat:*,typing"),
            ("SIO_RELAY_HOOKS_LIFECYCLE", "connect,disconnect"),
        ],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains("s3cret-value"), "{}", out.stdout);
}

/// A child process playing one of the example backends in `deploy/examples/`.
struct ExampleBackend {
    child: tokio::process::Child,
    port: u16,
}

impl ExampleBackend {
    async fn start(program: &std::path::Path, script: &str, admin_url: &str) -> ExampleBackend {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut child = tokio::process::Command::new(program)
            .arg(common::crate_dir().join(script))
            .env("HOOK_SECRET", SECRET)
            .env("PORT", "0")
            .env("RELAY_ADMIN_URL", admin_url)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("the example backend did not start in time")
            .unwrap()
            .expect("the example backend exited");
        let port = serde_json::from_str::<Value>(&line).unwrap()["listening"]
            .as_u64()
            .unwrap() as u16;
        ExampleBackend { child, port }
    }
}

/// Both example backends, for real: they check the signature (and refuse a forged one),
/// answer the ack, push to the sender through the admin API, and greet on connect.
#[tokio::test]
async fn example_backends_work_as_documented() {
    let node = std::path::PathBuf::from("node");
    let python = common::clients::python_bin();
    for (program, script) in [
        (&python, "deploy/examples/python/backend.py"),
        (&node, "deploy/examples/node/backend.js"),
    ] {
        let relay = start_relay(|_| {}).await;
        let mut example = ExampleBackend::start(program, script, &relay.admin_url()).await;
        let url = format!("http://127.0.0.1:{}/hook", example.port);
        let mut config = relay.config.clone();
        hooks(
            &mut config,
            &url,
            &["*"],
            &[LifecycleEvent::Connect, LifecycleEvent::Disconnect],
        );
        relay.inner().reload(config);

        let mut client = relay.client(ClientKind::Js).connect().await;
        let sid = client.sid("/").unwrap();
        assert_eq!(
            client.wait_event("/", "welcome").await,
            json!([{"sid": sid}]),
            "{script}"
        );
        client
            .emit_with_ack("/", "hello", json!([1, "two"]), 5, Some(5_000))
            .await;
        // The backend pushes the notice before it answers, so it comes first.
        assert_eq!(
            client.wait_event("/", "notice").await,
            json!([{"received": "hello"}])
        );
        let line = client.wait_for(ack_line(5), TIMEOUT).await;
        assert_eq!(
            line["args"],
            json!([{"ok": true, "event": "hello", "args": [1, "two"]}]),
            "{script}: {line}"
        );

        // A request with a wrong signature is refused by the backend.
        let forged = common::admin::http_client()
            .post(&url)
            .header("x-sio-relay-timestamp", "1")
            .header("x-sio-relay-signature", "v1=00")
            .body(r#"{"type":"event"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status().as_u16(), 401, "{script}");
        assert_eq!(
            relay.metric(r#"sio_relay_hook_requests_total{outcome="ok",type="event"}"#),
            1.0
        );
        client.exit().await;
        let _ = example.child.kill().await;
    }
}

/// With `[auth]`, a hook sees the socket's real `user` and `data` (event, connect and
/// disconnect), and an answer's emit with `user` reaches every socket of that user, through
/// their user rooms, and not the sender.
#[tokio::test]
async fn hooks_see_the_authenticated_user_and_answers_reach_user_rooms() {
    let mut backend = Backend::start(|body: Value| async move {
        let answer = match body["event"].as_str() {
            Some("notify") => json!({
                "emit": [{"event": "note", "user": body["args"][0].clone(), "data": "hi"}],
                "ack": ["sent"],
            }),
            _ => json!({}),
        };
        (200, answer.to_string())
    })
    .await;
    let jwt_secret = "hooks-test-secret-of-enough-length-0123";
    let relay = start_relay(|c| {
        hooks(
            c,
            &backend.url(),
            &["*"],
            &[LifecycleEvent::Connect, LifecycleEvent::Disconnect],
        );
        c.auth.mode = sio_relay::config::AuthMode::Jwt;
        c.auth.jwt_secret = jwt_secret.into();
    })
    .await;
    let token = |sub: &str| {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let claims = json!({"sub": sub, "exp": exp, "rooms": ["team"], "data": {"plan": sub}});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(jwt_secret.as_bytes()).unwrap(),
        )
        .unwrap()
    };

    let mut alice_js = relay
        .client(ClientKind::Js)
        .auth(json!({"token": token("alice")}))
        .connect()
        .await;
    let alice_sid = alice_js.sid("/").unwrap();
    let connect = backend
        .wait(|r| r.kind() == "connect" && r.body["sid"] == alice_sid)
        .await;
    connect.assert_signed(SECRET);
    assert_eq!(connect.body["user"], "alice");
    assert_eq!(connect.body["data"], json!({"plan": "alice"}));
    let mut rooms: Vec<String> = serde_json::from_value(connect.body["rooms"].clone()).unwrap();
    rooms.sort();
    assert_eq!(rooms, ["team", "user:alice"]);
    let mut alice_py = relay
        .client(ClientKind::Py)
        .auth(json!({"token": token("alice")}))
        .connect()
        .await;
    let mut bob = relay
        .client(ClientKind::Js)
        .auth(json!({"token": token("bob")}))
        .connect()
        .await;
    let bob_sid = bob.sid("/").unwrap();

    bob.emit_with_ack("/", "notify", json!(["alice"]), 1, Some(5_000))
        .await;
    let event = backend.wait(|r| r.kind() == "event").await;
    assert_eq!(
        event.body,
        json!({"type": "event", "namespace": "/", "sid": bob_sid, "user": "bob",
               "event": "notify", "args": ["alice"], "ack": true})
    );
    assert_eq!(alice_js.wait_event("/", "note").await, json!(["hi"]));
    assert_eq!(alice_py.wait_event("/", "note").await, json!(["hi"]));
    let line = bob.wait_for(ack_line(1), TIMEOUT).await;
    assert_eq!(line["args"], json!(["sent"]));
    // The emit named a user: the sender, not that user, got nothing.
    assert!(!bob.history().iter().any(|v| is(v, "event")));

    bob.exit().await;
    let disconnect = backend
        .wait(|r| r.kind() == "disconnect" && r.body["sid"] == bob_sid)
        .await;
    assert_eq!(disconnect.body["user"], "bob");
    alice_js.exit().await;
    alice_py.exit().await;
}
