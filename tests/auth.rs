//! Client authentication (`[auth]`) end to end: the official clients against JWTs signed
//! with a secret, a PEM key and a JSON Web Key Set served by the test, and against an auth
//! webhook served by the test; user rooms through the admin API on one node and across a
//! Redis cluster. Bad input (a 1 MB token, `alg: none`, a key set that is not JSON) is a
//! clear, counted refusal.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use common::admin::metric_value;
use common::{ClientKind, RawWs, TIMEOUT, TestRelay, start_relay};
use hmac::Mac;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, jwk::Jwk};
use serde_json::{Value, json};
use sio_relay::config::{AdapterKind, AuthMode, Config};

const SECRET: &str = "test-secret-of-enough-length-0123456789";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token signed with [`SECRET`] carrying `claims`.
fn hs256(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn vector(name: &str) -> std::path::PathBuf {
    common::crate_dir().join("tests/vectors/auth").join(name)
}

/// An ES256 token signed with the test key `key` (`es256-a`...) under `kid`.
fn es256(key: &str, kid: &str, claims: Value) -> String {
    let pem = std::fs::read(vector(&format!("{key}.pem"))).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    encode(&header, &claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

/// The public JWK of the test key `key` under `kid`.
fn jwk(key: &str, kid: &str) -> Value {
    let pem = std::fs::read(vector(&format!("{key}.pem"))).unwrap();
    let encoding = EncodingKey::from_ec_pem(&pem).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

async fn jwt_relay(tweak: impl FnOnce(&mut Config)) -> TestRelay {
    start_relay(|config| {
        config.server.namespaces = vec!["/".into(), "/chat/*".into()];
        config.auth.mode = AuthMode::Jwt;
        config.auth.jwt_secret = SECRET.into();
        tweak(config);
    })
    .await
}

/// Spawns a client of `kind` with `auth` on `ns` and returns its `connect_error` line.
async fn refused(relay: &TestRelay, kind: ClientKind, ns: &str, auth: Option<Value>) -> Value {
    let mut options = relay
        .client(kind)
        .transports("websocket")
        .ns(ns)
        .no_reconnect();
    if let Some(auth) = auth {
        options = options.auth(auth);
    }
    let mut client = options.spawn().await;
    let line = client
        .wait_for(|v| common::clients::is(v, "connect_error"), TIMEOUT)
        .await;
    client.exit().await;
    line
}

/// The refusal code of a `connect_error` line.
fn code(line: &Value) -> &str {
    line["data"]["code"].as_str().unwrap_or("")
}

async fn auth_metric(relay: &TestRelay, outcome: &str) -> f64 {
    let metrics = relay.admin().metrics().await;
    metric_value(
        &metrics,
        &format!("sio_relay_auth_total{{outcome=\"{outcome}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Opens a raw WebSocket session with `query` added, sends `packet` and returns the
/// CONNECT or CONNECT_ERROR answer for `/`.
async fn raw_connect(relay: &TestRelay, query: &str, packet: &str) -> String {
    let url = RawWs::url(
        relay.socketio_addr,
        "/socket.io/",
        &format!("EIO=4&transport=websocket{query}"),
    );
    let mut ws = RawWs::connect(&url, &[]).await.unwrap();
    ws.recv_text(TIMEOUT).await.expect("open packet");
    ws.send_text(packet).await;
    ws.recv_until(|p| p.starts_with("40") || p.starts_with("44"), TIMEOUT)
        .await
        .expect("no CONNECT answer")
}

#[tokio::test]
async fn jwt_accepts_valid_tokens_and_refuses_each_case_with_its_code() {
    let relay = jwt_relay(|c| c.server.max_payload_bytes = 2_000_000).await;
    let good = hs256(json!({
        "sub": "alice", "exp": now() + 600, "rooms": ["team-1"],
        "namespaces": ["/", "/chat/*"], "data": {"plan": "pro"},
    }));

    // Accepted from the auth payload (JS, WebSocket) and the bearer header (Python, polling).
    let mut js = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .auth(json!({ "token": good }))
        .no_reconnect()
        .connect()
        .await;
    let mut py = relay
        .client(ClientKind::Py)
        .transports("polling")
        .header("Authorization", &format!("Bearer {good}"))
        .no_reconnect()
        .connect()
        .await;
    let listing = relay.admin().sockets("user=alice").await;
    let sockets = listing.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sockets.len(), 2, "{sockets:?}");
    for socket in &sockets {
        assert_eq!(socket["user"], "alice");
        assert_eq!(socket["data"], json!({"plan": "pro"}));
        let rooms = socket["rooms"].as_array().unwrap();
        assert!(rooms.contains(&json!("team-1")) && rooms.contains(&json!("user:alice")));
        assert!(
            !socket.to_string().contains(&good),
            "the token is never listed"
        );
    }
    let sent = relay
        .admin()
        .emit(&json!({"user": "alice", "event": "hi", "data": 1}))
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 2);
    js.wait_event("/", "hi").await;
    py.wait_event("/", "hi").await;

    // The token in the query string, on the listener's direct WebSocket path.
    let answer = raw_connect(&relay, &format!("&token={good}"), "40").await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");

    // Within the leeway (30 s by default) an expired token still passes.
    let lately = hs256(json!({"sub": "bob", "exp": now() - 10}));
    let answer = raw_connect(&relay, "", &format!("40{}", json!({"token": lately}))).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");

    let cases: Vec<(Option<Value>, &str, &str)> = vec![
        (None, "/", "token_missing"),
        (Some(json!({"token": "not.a.jwt"})), "/", "token_invalid"),
        (Some(json!({"token": 42})), "/", "token_invalid"),
        (
            Some(json!({"token": hs256(json!({"sub": "a", "exp": now() - 120}))})),
            "/",
            "token_expired",
        ),
        (
            Some(
                json!({"token": hs256(json!({"sub": "a", "exp": now() + 60, "namespaces": ["/chat/*"]}))}),
            ),
            "/",
            "namespace_forbidden",
        ),
        (
            Some(json!({"token": hs256(json!({"sub": "a"}))})),
            "/",
            "token_invalid",
        ),
        (
            Some(json!({"token": hs256(json!({"sub": "a", "exp": now() + 60, "data": [1]}))})),
            "/chat/x",
            "token_invalid",
        ),
    ];
    for (auth, ns, want) in cases {
        let line = refused(&relay, ClientKind::Js, ns, auth.clone()).await;
        assert_eq!(code(&line), want, "{auth:?} on {ns}: {line}");
        assert_eq!(line["message"], "unauthorized");
    }
    let line = refused(&relay, ClientKind::Py, "/", Some(json!({"token": "x.y.z"}))).await;
    assert_eq!(code(&line), "token_invalid", "{line}");

    // A token signed with another secret, and `alg: none`.
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "mallory", "exp": now() + 60}),
        &EncodingKey::from_secret(b"another secret").unwrap(),
    )
    .unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(json!({"sub": "mallory", "exp": now() + 60}).to_string())
    );
    for token in [forged, unsigned] {
        let answer = raw_connect(&relay, "", &format!("40{}", json!({ "token": token }))).await;
        assert_eq!(
            answer,
            r#"44{"message":"unauthorized","data":{"code":"token_invalid"}}"#
        );
    }

    // A 1 MB token is refused at once, without parsing, and the relay serves on.
    let huge = "a".repeat(1_000_000);
    let answer = raw_connect(&relay, "", &format!("40{}", json!({ "token": huge }))).await;
    assert_eq!(
        answer,
        r#"44{"message":"unauthorized","data":{"code":"token_invalid"}}"#
    );
    let sent = relay
        .admin()
        .emit(&json!({"user": ["alice", "nobody"], "event": "still", "data": 2}))
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 2);
    js.wait_event("/", "still").await;

    assert_eq!(auth_metric(&relay, "token_missing").await, 1.0);
    assert_eq!(auth_metric(&relay, "token_expired").await, 1.0);
    assert_eq!(auth_metric(&relay, "namespace_forbidden").await, 1.0);
    assert_eq!(auth_metric(&relay, "token_invalid").await, 8.0);
    assert_eq!(auth_metric(&relay, "accepted").await, 4.0);
    js.exit().await;
    py.exit().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_pem_public_key_checks_eddsa_tokens_and_refuses_hmac_ones() {
    let relay = start_relay(|config| {
        config.auth.mode = AuthMode::Jwt;
        config.auth.jwt_public_key_file = vector("ed25519.pub.pem").display().to_string();
        config.auth.jwt_issuer = "https://issuer.test".into();
    })
    .await;
    let key = EncodingKey::from_ed_pem(&std::fs::read(vector("ed25519.pem")).unwrap()).unwrap();
    let claims = |iss: &str| json!({"sub": "carol", "exp": now() + 60, "iss": iss});
    let good = encode(
        &Header::new(Algorithm::EdDSA),
        &claims("https://issuer.test"),
        &key,
    )
    .unwrap();
    let answer = raw_connect(&relay, "", &format!("40{}", json!({ "token": good }))).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");

    let other_issuer = encode(&Header::new(Algorithm::EdDSA), &claims("evil"), &key).unwrap();
    // The public key's bytes used as an HMAC secret: the algorithm-confusion attack.
    let public = std::fs::read(vector("ed25519.pub.pem")).unwrap();
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims("https://issuer.test"),
        &EncodingKey::from_secret(&public).unwrap(),
    )
    .unwrap();
    for token in [other_issuer, confused] {
        let answer = raw_connect(&relay, "", &format!("40{}", json!({ "token": token }))).await;
        assert!(answer.contains("token_invalid"), "{answer}");
    }
    relay.shutdown().await;
}

/// A JSON Web Key Set server: serves `set` and counts the fetches.
#[derive(Clone, Default)]
struct KeySet {
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_keys(State(keys): State<KeySet>) -> Response {
    keys.fetches.fetch_add(1, Ordering::SeqCst);
    let body = keys.body.lock().unwrap().clone();
    ([("content-type", "application/json")], body).into_response()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

#[tokio::test]
async fn jwks_keys_are_cached_by_kid_and_a_rotated_key_is_fetched() {
    let keys = KeySet::default();
    *keys.body.lock().unwrap() = json!({"keys": [jwk("es256-a", "k1")]}).to_string();
    let addr = serve(
        Router::new()
            .route("/jwks", get(serve_keys))
            .with_state(keys.clone()),
    )
    .await;
    let relay = start_relay(|config| {
        config.auth.mode = AuthMode::Jwt;
        config.auth.jwks_url = format!("http://{addr}/jwks");
    })
    .await;
    let claims = json!({"sub": "dave", "exp": now() + 600});
    let connect = |token: String| format!("40{}", json!({ "token": token }));

    let first = relay
        .client(ClientKind::Js)
        .transports("polling,websocket")
        .auth(json!({"token": es256("es256-a", "k1", claims.clone())}))
        .no_reconnect()
        .connect()
        .await;
    let answer = raw_connect(&relay, "", &connect(es256("es256-a", "k1", claims.clone()))).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 1, "k1 is cached");

    // The issuer rotates to k2. An unknown kid right after a fetch is refused without
    // fetching again (at most one fetch per 10 s)...
    *keys.body.lock().unwrap() =
        json!({"keys": [jwk("es256-a", "k1"), jwk("es256-b", "k2")]}).to_string();
    let rotated = es256("es256-b", "k2", claims.clone());
    let answer = raw_connect(&relay, "", &connect(rotated.clone())).await;
    assert!(answer.contains("token_invalid"), "{answer}");
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 1);
    // ...and once 10 s have passed, the new kid makes the relay fetch the set again.
    tokio::time::sleep(Duration::from_millis(10_200)).await;
    let answer = raw_connect(&relay, "", &connect(rotated)).await;
    assert!(answer.starts_with("40{\"sid\""), "{answer}");
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
    // A kid that is in no set, just after a fetch, costs no fetch.
    let answer = raw_connect(&relay, "", &connect(es256("es256-b", "k9", claims))).await;
    assert!(answer.contains("token_invalid"), "{answer}");
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
    first.exit().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_key_set_that_is_not_json_refuses_with_auth_unavailable() {
    let keys = KeySet::default();
    *keys.body.lock().unwrap() = "<html>maintenance</html>".into();
    let addr = serve(
        Router::new()
            .route("/jwks", get(serve_keys))
            .with_state(keys.clone()),
    )
    .await;
    let relay = start_relay(|config| {
        config.auth.mode = AuthMode::Jwt;
        config.auth.jwks_url = format!("http://{addr}/jwks");
    })
    .await;
    let token = es256("es256-a", "k1", json!({"sub": "erin", "exp": now() + 60}));
    let line = refused(&relay, ClientKind::Js, "/", Some(json!({ "token": token }))).await;
    assert_eq!(code(&line), "auth_unavailable", "{line}");
    let listing = relay.admin().sockets("").await;
    assert_eq!(listing.expect_status(200)["sockets"], json!([]));
    assert_eq!(auth_metric(&relay, "auth_unavailable").await, 1.0);
    relay.shutdown().await;
}

/// What the test webhook saw.
#[derive(Clone, Default)]
struct Hook {
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

/// The test webhook: answers by the auth payload's `token`.
async fn authorize(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap();
    // Checks the signature as a backend would.
    let timestamp = headers["x-sio-relay-timestamp"].to_str().unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        headers["x-sio-relay-signature"].to_str().unwrap(),
        format!("v1={expected}")
    );
    hook.requests
        .lock()
        .unwrap()
        .push((headers, request.clone()));
    if request["namespace"] == "/slow" {
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    match request["auth"]["token"].as_str().unwrap_or("") {
        token if token.starts_with("ok:") => Json(json!({
            "user": &token[3..], "rooms": ["vip"], "data": {"tier": 2},
        }))
        .into_response(),
        "deny" => (StatusCode::FORBIDDEN, Json(json!({"message": "banned"}))).into_response(),
        "deny-plain" => StatusCode::UNAUTHORIZED.into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(json!({})).into_response()
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The auth webhook backend (`authorize`) on loopback and a relay that asks it.
async fn webhook_backend_and_relay() -> (Hook, TestRelay) {
    let hook = Hook::default();
    let addr = serve(
        Router::new()
            .route("/auth", post(authorize))
            .with_state(hook.clone()),
    )
    .await;
    (hook, webhook_relay(format!("http://{addr}/auth")).await)
}

async fn webhook_relay(url: String) -> TestRelay {
    start_relay(|config| {
        config.server.namespaces = vec!["/".into(), "/slow".into()];
        config.auth.mode = AuthMode::Webhook;
        config.auth.webhook_url = url;
        config.auth.webhook_secret = "hook-secret".into();
        config.auth.forward_headers = vec!["x-tenant".into()];
        config.auth.timeout_ms = 1_500;
    })
    .await
}

#[tokio::test]
async fn the_webhook_decides_signed_and_answers_map_to_codes() {
    let (hook, relay) = webhook_backend_and_relay().await;

    let client = relay
        .client(ClientKind::PyAsync)
        .transports("polling,websocket")
        .auth(json!({"token": "ok:frank"}))
        .header("X-Tenant", "acme")
        .header("Cookie", "session=private")
        .no_reconnect()
        .connect()
        .await;
    let listing = relay.admin().sockets("user=frank").await;
    let sockets = listing.expect_status(200)["sockets"].clone();
    assert_eq!(sockets[0]["user"], "frank", "{sockets}");
    assert_eq!(sockets[0]["data"], json!({"tier": 2}));
    assert!(
        sockets[0]["rooms"]
            .as_array()
            .unwrap()
            .contains(&json!("vip"))
    );
    {
        let requests = hook.requests.lock().unwrap();
        let (headers, body) = &requests[0];
        assert_eq!(body["type"], "authorize");
        assert_eq!(body["namespace"], "/");
        assert_eq!(body["auth"], json!({"token": "ok:frank"}));
        assert_eq!(
            body["headers"],
            json!({"x-tenant": "acme"}),
            "only forwarded headers"
        );
        assert_eq!(body["query"]["EIO"], "4");
        assert!(body["address"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(headers["x-sio-relay-delivery"].len(), 32);
    }

    for (token, message, want) in [
        ("deny", "banned", "rejected"),
        ("deny-plain", "unauthorized", "rejected"),
        ("boom", "unauthorized", "auth_unavailable"),
        ("slow", "unauthorized", "auth_unavailable"),
    ] {
        let line = refused(&relay, ClientKind::Js, "/", Some(json!({ "token": token }))).await;
        assert_eq!(
            (code(&line), line["message"].as_str().unwrap()),
            (want, message),
            "{line}"
        );
    }
    assert_eq!(auth_metric(&relay, "rejected").await, 2.0);
    assert_eq!(auth_metric(&relay, "auth_unavailable").await, 2.0);
    assert_eq!(auth_metric(&relay, "accepted").await, 1.0);
    client.exit().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_pending_check_blocks_neither_other_namespaces_nor_the_packets_behind_it() {
    let (_hook, relay) = webhook_backend_and_relay().await;

    // One connection, two namespaces: "/" answers while "/slow" is still being checked.
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .ns("/slow")
        .ns("/")
        .auth(json!({"token": "ok:gina"}))
        .no_reconnect()
        .spawn()
        .await;
    client
        .wait_for(
            |v| common::clients::is(v, "connect") && v["ns"] == "/slow",
            TIMEOUT,
        )
        .await;
    let order: Vec<String> = client
        .history()
        .iter()
        .filter(|v| common::clients::is(v, "connect"))
        .map(|v| v["ns"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["/", "/slow"]);

    // A DISCONNECT sent while its CONNECT is checked waits for it, then applies in order.
    let url = RawWs::url(
        relay.socketio_addr,
        "/socket.io/",
        "EIO=4&transport=websocket",
    );
    let mut ws = RawWs::connect(&url, &[]).await.unwrap();
    ws.recv_text(TIMEOUT).await.expect("open packet");
    ws.send_text(&format!("40/slow,{}", json!({"token": "ok:hank"})))
        .await;
    ws.send_text("41/slow,").await;
    ws.send_text(&format!("40{}", json!({"token": "ok:hank"})))
        .await;
    let first = ws
        .recv_until(|p| p.starts_with("40"), TIMEOUT)
        .await
        .unwrap();
    assert!(
        first.starts_with("40{"),
        "/ first, without waiting: {first}"
    );
    ws.recv_until(|p| p.starts_with("40/slow,{"), TIMEOUT)
        .await
        .expect("the /slow CONNECT answer");
    common::eventually("hank's socket to leave", TIMEOUT, || async {
        let listing = relay.admin().sockets("namespace=%2Fslow&user=hank").await;
        (listing.expect_status(200)["sockets"] == json!([])).then_some(())
    })
    .await;
    client.exit().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn with_the_webhook_down_nobody_is_let_in() {
    let relay = webhook_relay(format!(
        "http://127.0.0.1:{}/auth",
        common::relay::free_port()
    ))
    .await;
    for kind in [ClientKind::Js, ClientKind::Py] {
        let line = refused(&relay, kind, "/", Some(json!({"token": "ok:ivan"}))).await;
        assert_eq!(code(&line), "auth_unavailable", "{line}");
    }
    let answer = raw_connect(&relay, "", &format!("40{}", json!({"token": "ok:ivan"}))).await;
    assert_eq!(
        answer,
        r#"44{"message":"unauthorized","data":{"code":"auth_unavailable"}}"#
    );
    let listing = relay.admin().sockets("").await;
    assert_eq!(listing.expect_status(200)["sockets"], json!([]));
    assert_eq!(auth_metric(&relay, "auth_unavailable").await, 3.0);
    assert_eq!(auth_metric(&relay, "accepted").await, 0.0);
    relay.shutdown().await;
}

/// A user with three devices on two cluster nodes gets one push on each through `user`.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_users_devices_on_two_nodes_each_get_one_push() {
    let prefix = format!("auth-user-{}", std::process::id());
    let node = |prefix: String| {
        jwt_relay(move |config| {
            config.cluster.adapter = AdapterKind::Redis;
            config.cluster.key_prefix = prefix;
        })
    };
    let a = node(prefix.clone()).await;
    let b = node(prefix.clone()).await;
    common::eventually("both nodes ready", TIMEOUT, || async {
        let (ra, rb) = (
            a.admin().get("/readyz").await,
            b.admin().get("/readyz").await,
        );
        (ra.status == 200 && rb.status == 200).then_some(())
    })
    .await;
    let token = |user: &str| json!({"token": hs256(json!({"sub": user, "exp": now() + 600}))});
    let mut devices = vec![
        a.client(ClientKind::Js)
            .transports("websocket")
            .auth(token("judy"))
            .no_reconnect()
            .connect()
            .await,
        a.client(ClientKind::Py)
            .transports("polling")
            .auth(token("judy"))
            .no_reconnect()
            .connect()
            .await,
        b.client(ClientKind::Js)
            .transports("polling,websocket")
            .auth(token("judy"))
            .no_reconnect()
            .connect()
            .await,
    ];
    let mut other = b
        .client(ClientKind::Js)
        .transports("websocket")
        .auth(token("karl"))
        .no_reconnect()
        .connect()
        .await;

    let listing = b.admin().sockets("user=judy").await;
    let sockets = listing.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sockets.len(), 3, "{sockets:?}");
    assert!(sockets.iter().all(|s| s["user"] == "judy"), "{sockets:?}");

    let sent = a
        .admin()
        .emit(&json!({"user": "judy", "event": "news", "data": {"n": 1}}))
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 3);
    for device in &mut devices {
        device.wait_event("/", "news").await;
        device
            .expect_none(|v| v["event"] == "news", common::QUIET)
            .await;
    }
    other
        .expect_none(|v| v["event"] == "news", common::QUIET)
        .await;

    let gone = b.admin().disconnect(&json!({"user": "judy"})).await;
    assert_eq!(gone.expect_status(200)["sockets"], 3);
    for device in devices {
        device.exit().await;
    }
    other.exit().await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Connection state recovery with `[auth]`, on one node and with the Redis store: a
/// reconnecting client is checked again; as the same user it gets its sid, user, `data`,
/// user room and missed events back; with another user's token it gets a fresh socket;
/// with a bad token it is refused.
#[tokio::test]
async fn a_recovered_socket_keeps_its_user_and_only_that_user_recovers_it() {
    let adapters: &[AdapterKind] = if cfg!(feature = "redis") {
        &[AdapterKind::Memory, AdapterKind::Redis]
    } else {
        &[AdapterKind::Memory]
    };
    for adapter in adapters {
        let prefix = format!("auth-recovery-{}", std::process::id());
        let relay = jwt_relay(|config| {
            config.recovery.enabled = true;
            config.cluster.adapter = *adapter;
            config.cluster.key_prefix = prefix;
        })
        .await;
        let admin = relay.admin();
        common::eventually("ready", TIMEOUT, || async {
            (admin.get("/readyz").await.status == 200).then_some(())
        })
        .await;
        let no_sockets = || async {
            common::eventually("no sockets", TIMEOUT, || async {
                let listing = admin.get("/v1/sockets").await;
                (listing.json["sockets"].as_array().map(Vec::len) == Some(0)).then_some(())
            })
            .await
        };
        let token = |user: &str| json!({"token": hs256(json!({"sub": user, "exp": now() + 600, "data": {"of": user}}))});
        let mut client = relay
            .client(ClientKind::Js)
            .transports("websocket")
            .auth(token("alice"))
            .connect()
            .await;
        let sid = client.sid("/").unwrap();
        // The client learns an offset from the first event it reads.
        let sent = admin
            .emit(&json!({"user": "alice", "event": "warmup"}))
            .await;
        assert_eq!(sent.expect_status(200)["recipients"], 1);
        client.wait_event("/", "warmup").await;

        // Away and back as the same user: recovered, with its identity.
        client
            .send(json!({"cmd": "kill_transport", "pause_ms": 1000}))
            .await;
        client.wait_disconnect("/").await;
        no_sockets().await;
        let sent = admin
            .emit(&json!({"user": "alice", "event": "missed", "data": 1}))
            .await;
        assert_eq!(sent.expect_status(200)["recipients"], 0);
        let connect = client
            .wait_for(|v| common::clients::is(v, "connect"), TIMEOUT)
            .await;
        assert_eq!(
            connect["recovered"],
            true,
            "{adapter:?} {}",
            client.report()
        );
        assert_eq!(connect["sid"], sid);
        let missed = client.wait_event("/", "missed").await;
        assert_eq!(missed[0], 1, "{missed}");
        let listing = admin.sockets("user=alice").await;
        let sockets = listing.expect_status(200)["sockets"].clone();
        assert_eq!(sockets.as_array().map(Vec::len), Some(1), "{sockets}");
        assert_eq!(sockets[0]["sid"], sid);
        assert_eq!(sockets[0]["user"], "alice");
        assert_eq!(sockets[0]["data"], json!({"of": "alice"}));
        assert_eq!(sockets[0]["rooms"], json!(["user:alice"]));
        let sent = admin
            .emit(&json!({"user": "alice", "event": "after"}))
            .await;
        assert_eq!(sent.expect_status(200)["recipients"], 1);
        client.wait_event("/", "after").await;

        // Back with another user's token: a fresh socket for that user.
        client
            .send(json!({"cmd": "set_auth", "auth": token("bob")}))
            .await;
        client
            .send(json!({"cmd": "kill_transport", "pause_ms": 500}))
            .await;
        client.wait_disconnect("/").await;
        let connect = client
            .wait_for(|v| common::clients::is(v, "connect"), TIMEOUT)
            .await;
        assert_eq!(
            connect["recovered"],
            false,
            "{adapter:?} {}",
            client.report()
        );
        assert_ne!(connect["sid"], sid);
        let bob = admin.sockets("user=bob").await;
        assert_eq!(bob.expect_status(200)["sockets"][0]["sid"], connect["sid"]);
        let alice = admin.sockets("user=alice").await;
        assert_eq!(alice.expect_status(200)["sockets"], json!([]));
        let metrics = admin.metrics().await;
        assert_eq!(
            metric_value(
                &metrics,
                r#"sio_relay_recoveries_total{outcome="unknown_session"}"#
            ),
            Some(1.0),
            "{adapter:?}"
        );

        // Back with a bad token, while holding a claim: refused, not recovered.
        let sent = admin.emit(&json!({"user": "bob", "event": "offset"})).await;
        assert_eq!(sent.expect_status(200)["recipients"], 1);
        client.wait_event("/", "offset").await;
        client
            .send(json!({"cmd": "set_auth", "auth": {"token": "not-a-jwt"}}))
            .await;
        client
            .send(json!({"cmd": "kill_transport", "pause_ms": 500}))
            .await;
        client.wait_disconnect("/").await;
        let line = client
            .wait_for(|v| common::clients::is(v, "connect_error"), TIMEOUT)
            .await;
        assert_eq!(code(&line), "token_invalid", "{line}");
        no_sockets().await;
        client.exit().await;
        relay.shutdown().await;
    }
}

/// The clients of the older protocol and of the msgpack parser are checked like the
/// others. A socket.io-client 2.x client (Engine.IO v3) is connected to `/` unasked when
/// its session opens: that connect takes the token from the handshake (`Authorization`
/// header, `token` query parameter), and a refusal is Socket.IO v4's error packet carrying
/// the usual payload; outside `/` the namespace's query stands for the `auth` payload. A
/// msgpack client's `auth` payload is read as a JSON one's. `/v1/sockets` shows user,
/// data, parser and Engine.IO version together, and `user` reaches every kind.
#[tokio::test]
async fn engine_io_v3_and_msgpack_clients_are_checked_too() {
    let relay = jwt_relay(|_| {}).await;
    let token = |user: &str| {
        hs256(json!({
            "sub": user, "exp": now() + 600, "data": {"who": user},
            "namespaces": ["/", "/chat/*"],
        }))
    };
    let bearer = |user: &str| format!("Bearer {}", token(user));
    let mut clients = vec![
        relay
            .client(ClientKind::Js)
            .v2()
            .transports("websocket")
            .header("Authorization", &bearer("v2-ws"))
            .no_reconnect()
            .connect()
            .await,
        relay
            .client(ClientKind::Js)
            .v2()
            .transports("polling")
            .header("Authorization", &bearer("v2-polling"))
            .no_reconnect()
            .connect()
            .await,
        relay
            .client(ClientKind::Js)
            .msgpack()
            .transports("polling,websocket")
            .auth(json!({ "token": token("mp-js") }))
            .no_reconnect()
            .connect()
            .await,
        relay
            .client(ClientKind::Py)
            .msgpack()
            .transports("websocket")
            .auth(json!({ "token": token("mp-py") }))
            .no_reconnect()
            .connect()
            .await,
    ];
    let kinds = [
        ("v2-ws", "json", 3),
        ("v2-polling", "json", 3),
        ("mp-js", "msgpack", 4),
        ("mp-py", "msgpack", 4),
    ];
    let admin = relay.admin();
    let listing = admin
        .sockets("user=v2-ws&user=v2-polling&user=mp-js&user=mp-py")
        .await;
    let sockets = listing.expect_status(200)["sockets"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(sockets.len(), 4, "{sockets:?}");
    for (user, parser, eio) in kinds {
        let socket = sockets
            .iter()
            .find(|s| s["user"] == user)
            .unwrap_or_else(|| panic!("{user} is not listed: {sockets:?}"));
        assert_eq!(socket["parser"], parser, "{socket}");
        assert_eq!(socket["eio"], eio, "{socket}");
        assert_eq!(socket["data"], json!({ "who": user }), "{socket}");
        assert_eq!(socket["rooms"], json!([format!("user:{user}")]), "{socket}");
    }
    let users: Vec<&str> = kinds.iter().map(|(user, _, _)| *user).collect();
    let sent = admin
        .emit(&json!({"user": users, "event": "news", "data": {"n": 1}}))
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 4);
    for client in &mut clients {
        assert_eq!(client.wait_event("/", "news").await, json!([{"n": 1}]));
    }

    // Outside `/`, a 2.x client's namespace query carries the token.
    let chat = relay
        .client(ClientKind::Js)
        .v2()
        .transports("websocket")
        .ns("/chat/room")
        .auth(json!({ "token": token("v2-chat") }))
        .no_reconnect()
        .connect()
        .await;
    let listing = admin.sockets("namespace=%2Fchat%2Froom").await;
    let sockets = listing.expect_status(200)["sockets"].clone();
    assert_eq!(sockets[0]["user"], "v2-chat", "{sockets}");
    assert_eq!(sockets[0]["eio"], 3, "{sockets}");

    // Refused: 2.x without a token over each transport (its `/`), msgpack clients with a
    // bad token or none; each sees the message and the code.
    for transports in ["websocket", "polling"] {
        let mut client = relay
            .client(ClientKind::Js)
            .v2()
            .transports(transports)
            .no_reconnect()
            .spawn()
            .await;
        let line = client
            .wait_for(|v| common::clients::is(v, "connect_error"), TIMEOUT)
            .await;
        assert_eq!(line["message"], "unauthorized", "{transports}: {line}");
        assert_eq!(code(&line), "token_missing", "{transports}: {line}");
        client.exit().await;
    }
    for (kind, auth, want) in [
        (
            ClientKind::Js,
            json!({"token": "not-a-jwt"}),
            "token_invalid",
        ),
        (ClientKind::Py, json!({}), "token_missing"),
    ] {
        let mut client = relay
            .client(kind)
            .msgpack()
            .transports("websocket")
            .auth(auth)
            .no_reconnect()
            .spawn()
            .await;
        let line = client
            .wait_for(|v| common::clients::is(v, "connect_error"), TIMEOUT)
            .await;
        assert_eq!(line["message"], "unauthorized", "{line}");
        assert_eq!(code(&line), want, "{line}");
        if kind == ClientKind::Js {
            client.exit().await;
        }
    }

    // On the wire: the handshake's `token` query parameter lets the implied `/` in; without
    // it the open packet is followed by the v4 error packet, length-prefixed.
    let endpoint = format!("{}/socket.io/", relay.url());
    let handshake = |query: String| {
        let endpoint = endpoint.clone();
        async move {
            let open = common::RawPolling::request(
                &endpoint,
                axum::http::Method::GET,
                &format!("EIO=3&transport=polling&b64=1{query}"),
                &[],
                None,
            )
            .await;
            assert_eq!(open.status, 200, "{}", open.body);
            open.body
        }
    };
    let accepted = handshake(format!("&token={}", token("raw"))).await;
    assert!(accepted.ends_with("2:40"), "{accepted}");
    let refusal = r#"44{"message":"unauthorized","data":{"code":"token_missing"}}"#;
    let refused = handshake(String::new()).await;
    assert!(
        refused.ends_with(&format!("{}:{refusal}", refusal.len())),
        "{refused}"
    );
    for client in clients {
        client.exit().await;
    }
    chat.exit().await;
    relay.shutdown().await;
}

/// With the auth webhook, a 2.x client's connects are checked while its session goes on:
/// its `/`, which carries no payload, reaches the webhook with `auth: null` and the
/// handshake's query (the webhook fails it here: `auth_unavailable`); a namespace whose
/// query carries the token reaches it as `auth` and is let in.
#[tokio::test]
async fn the_webhook_checks_v2_clients_with_their_namespace_query() {
    let (hook, relay) = webhook_backend_and_relay().await;

    let mut client = relay
        .client(ClientKind::Js)
        .v2()
        .transports("polling")
        .ns("/")
        .ns("/slow")
        .auth(json!({"token": "ok:lena"}))
        .no_reconnect()
        .spawn()
        .await;
    let line = client.wait_connect_error("/").await;
    assert_eq!(line, "unauthorized");
    let sid = client.wait_connected("/slow").await;
    let listing = relay.admin().sockets("namespace=%2Fslow&user=lena").await;
    let sockets = listing.expect_status(200)["sockets"].clone();
    assert_eq!(
        format!("/slow#{}", sockets[0]["sid"].as_str().unwrap()),
        sid,
        "{sockets}"
    );
    assert_eq!(sockets[0]["data"], json!({"tier": 2}));
    assert_eq!(
        (&sockets[0]["parser"], &sockets[0]["eio"]),
        (&json!("json"), &json!(3))
    );
    {
        let requests = hook.requests.lock().unwrap();
        let root = requests
            .iter()
            .map(|(_, body)| body)
            .find(|body| body["namespace"] == "/")
            .expect("the implied `/` was checked");
        assert_eq!(root["auth"], Value::Null);
        assert_eq!(root["query"]["EIO"], "3");
        let slow = requests
            .iter()
            .map(|(_, body)| body)
            .find(|body| body["namespace"] == "/slow")
            .expect("`/slow` was checked");
        assert_eq!(slow["auth"], json!({"token": "ok:lena"}));
    }
    assert_eq!(auth_metric(&relay, "auth_unavailable").await, 1.0);
    assert_eq!(auth_metric(&relay, "accepted").await, 1.0);
    client.exit().await;
    relay.shutdown().await;
}
