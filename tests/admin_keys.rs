//! `[[admin.keys]]`: scoped admin keys refused outside their scope with 403, every
//! refused and every mutating call in the audit log (with the key's name, never its
//! token), keys reloaded on SIGHUP; and `admin.allow_open`.

mod common;

use common::{ClientKind, QUIET, TIMEOUT, TempFile, run_relay_cli, spawn_relay_process};
use serde_json::json;
use sio_relay::config::{AdminKey, AdminOp, AuthMode};

const FULL: &str = "full-access-token-1";
const ORDERS: &str = "orders-key-token-7f3a";

fn config(orders_ops: &str) -> String {
    format!(
        r#"
[admin]
tokens = ["{FULL}"]

[[admin.keys]]
name = "orders-service"
token = "{ORDERS}"
namespaces = ["/"]
rooms = ["orders:*"]
ops = [{orders_ops}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_key_is_refused_outside_its_scope_changes_nothing_and_is_audited() {
    let file = TempFile::new("keys.toml", &config(r#""emit""#));
    let relay = spawn_relay_process(&["--config", &file.arg()], &[]).await;
    let admin = relay.admin(Some(FULL));
    let mut client = relay.connect(ClientKind::Js, "websocket").await;
    let sid = client.sid("/").unwrap();
    admin
        .join(&json!({"to": sid, "rooms": ["orders:1", "billing:1"]}))
        .await
        .expect_status(200);

    // In scope: delivered.
    let sent = admin
        .post_json(
            "/v1/emit",
            &json!({"to": "orders:1", "event": "order", "data": 1}),
            Some(ORDERS),
        )
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 1);
    client.wait_event("/", "order").await;

    // Out of scope: 403 forbidden, nothing sent.
    for (path, body) in [
        (
            "/v1/emit",
            json!({"to": "billing:1", "event": "bill", "data": 1}),
        ),
        (
            "/v1/emit",
            json!({"to": ["orders:1", "billing:1"], "event": "bill"}),
        ),
        ("/v1/emit", json!({"broadcast": true, "event": "bill"})),
        (
            "/v1/emit",
            json!({"namespace": "/other", "to": "orders:1", "event": "bill"}),
        ),
        ("/v1/join", json!({"to": "orders:1", "rooms": ["orders:2"]})),
        ("/v1/disconnect", json!({"to": "orders:1"})),
    ] {
        let refused = admin.post_json(path, &body, Some(ORDERS)).await;
        refused.expect_status(403);
        assert_eq!(refused.error_code(), Some("forbidden"), "{path} {body}");
    }
    let batch = admin
        .post_json(
            "/v1/emit",
            &json!([
                {"to": "orders:1", "event": "bill"},
                {"to": "billing:1", "event": "bill"}
            ]),
            Some(ORDERS),
        )
        .await;
    assert_eq!(batch.expect_status(403)["error"]["index"], 1);
    for path in ["/v1/sockets", "/v1/sockets?to=orders:1", "/v1/rooms"] {
        let refused = admin.get_with(path, Some(ORDERS)).await;
        assert_eq!(refused.error_code(), Some("forbidden"), "{path}");
    }
    client
        .expect_none(
            |line| common::clients::is(line, "event") && line["event"] == "bill",
            QUIET,
        )
        .await;
    // The refused join changed nothing.
    let listed = admin.sockets(&format!("to={sid}")).await;
    let rooms = &listed.expect_status(200)["sockets"][0]["rooms"];
    assert_eq!(rooms.as_array().unwrap().len(), 2, "{rooms}");

    // The audit log: the key's name, route, target and outcome of each call.
    let audited = relay
        .wait_stderr(
            |l| {
                l.contains("sio_relay::audit")
                    && l.contains("orders-service")
                    && l.contains("to billing:1")
                    && l.contains("status=403")
            },
            TIMEOUT,
        )
        .await;
    assert!(audited.is_some(), "no audit line:\n{}", relay.stderr());
    let ok = relay
        .wait_stderr(
            |l| l.contains("orders-service") && l.contains("status=200") && l.contains("/v1/emit"),
            TIMEOUT,
        )
        .await;
    assert!(ok.is_some(), "no audit line for the accepted emit");
    let unauthorized = admin.post_json("/v1/emit", &json!({}), Some("nope")).await;
    unauthorized.expect_status(401);
    let line = relay
        .wait_stderr(
            |l| l.contains("sio_relay::audit") && l.contains("status=401"),
            TIMEOUT,
        )
        .await;
    assert!(line.is_some(), "no audit line for a 401");
    let stderr = relay.stderr();
    assert!(
        !stderr.contains(ORDERS) && !stderr.contains(FULL),
        "a token was logged"
    );
    let broadcasts = stderr
        .lines()
        .filter(|l| l.contains("sio_relay::audit") && l.contains("broadcast"))
        .count();
    assert!(broadcasts >= 1);

    // Reloaded on SIGHUP: the key may now read its rooms.
    file.write(&config(r#""emit", "read""#));
    relay.sighup();
    relay
        .wait_stderr(|l| l.contains("configuration reloaded"), TIMEOUT)
        .await
        .expect("reloaded");
    let read = admin
        .get_with("/v1/sockets?to=orders:1", Some(ORDERS))
        .await;
    assert_eq!(read.expect_status(200)["sockets"][0]["sid"], sid);
    let rooms = admin.get_with("/v1/rooms", Some(ORDERS)).await;
    assert_eq!(
        rooms.expect_status(200)["rooms"],
        json!([{"name": "orders:1", "size": 1}]),
        "only rooms in scope are listed"
    );
    assert_eq!(
        admin
            .get_with("/v1/sockets", Some(ORDERS))
            .await
            .error_code(),
        Some("forbidden"),
        "the whole namespace stays out of scope"
    );
    client.exit().await;
    drop(relay);
}

/// The selector's `user` names user rooms (`[auth]`), so a scoped key reaches users only
/// through a room glob that matches those rooms, on every route that takes a selector.
#[tokio::test]
async fn a_scoped_key_addresses_users_only_through_their_rooms() {
    const JWT_SECRET: &str = "keys-test-secret-of-enough-length-01234";
    const USERS: &str = "users-key-token-9c1d";
    let key = |name: &str, token: &str, rooms: &[&str]| AdminKey {
        name: name.into(),
        token: token.into(),
        namespaces: vec!["/".into()],
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        ops: vec![
            AdminOp::Emit,
            AdminOp::Join,
            AdminOp::Leave,
            AdminOp::Disconnect,
            AdminOp::Read,
        ],
    };
    let relay = common::start_relay(|c| {
        c.admin.tokens = vec![FULL.into()];
        c.admin.keys = vec![
            key("notifications", USERS, &["user:*"]),
            key("orders-service", ORDERS, &["orders:*"]),
        ];
        c.auth.mode = AuthMode::Jwt;
        c.auth.jwt_secret = JWT_SECRET.into();
    })
    .await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .auth(json!({ "token": token }))
        .no_reconnect()
        .connect()
        .await;
    let admin = relay.admin();

    let sent = admin
        .post_json(
            "/v1/emit",
            &json!({"user": "alice", "event": "note"}),
            Some(USERS),
        )
        .await;
    assert_eq!(sent.expect_status(200)["recipients"], 1);
    client.wait_event("/", "note").await;
    let listed = admin.get_with("/v1/sockets?user=alice", Some(USERS)).await;
    assert_eq!(listed.expect_status(200)["sockets"][0]["user"], "alice");
    admin
        .post_json(
            "/v1/join",
            &json!({"user": "alice", "rooms": ["user:shared"]}),
            Some(USERS),
        )
        .await
        .expect_status(200);

    for (path, body) in [
        ("/v1/emit", json!({"user": "alice", "event": "bill"})),
        (
            "/v1/emit",
            json!({"to": "orders:1", "user": "alice", "event": "bill"}),
        ),
        ("/v1/join", json!({"user": "alice", "rooms": ["orders:1"]})),
        ("/v1/leave", json!({"user": "alice", "rooms": ["orders:1"]})),
        ("/v1/disconnect", json!({"user": "alice"})),
    ] {
        let refused = admin.post_json(path, &body, Some(ORDERS)).await;
        refused.expect_status(403);
        assert_eq!(refused.error_code(), Some("forbidden"), "{path} {body}");
    }
    // A key for users may not name other rooms either.
    let refused = admin
        .post_json(
            "/v1/join",
            &json!({"user": "alice", "rooms": ["orders:1"]}),
            Some(USERS),
        )
        .await;
    assert_eq!(refused.error_code(), Some("forbidden"));
    let refused = admin.get_with("/v1/sockets?user=alice", Some(ORDERS)).await;
    assert_eq!(refused.error_code(), Some("forbidden"));
    client
        .expect_none(
            |line| common::clients::is(line, "event") && line["event"] == "bill",
            QUIET,
        )
        .await;
    let rooms = admin.sockets("user=alice").await;
    let mut rooms: Vec<String> =
        serde_json::from_value(rooms.expect_status(200)["sockets"][0]["rooms"].clone()).unwrap();
    rooms.sort();
    assert_eq!(
        rooms,
        ["user:alice", "user:shared"],
        "the refused join changed nothing"
    );

    let gone = admin
        .post_json("/v1/disconnect", &json!({"user": "alice"}), Some(USERS))
        .await;
    assert_eq!(gone.expect_status(200)["sockets"], 1);
    client.wait_disconnect("/").await;
    client.exit().await;
}

#[tokio::test]
async fn an_open_admin_listener_off_loopback_needs_allow_open() {
    let open = TempFile::new("open.toml", "[admin]\nlisten = \"0.0.0.0:3901\"\n");
    let refused = run_relay_cli(&["--config", &open.arg(), "--check-config"], &[]).await;
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("admin.tokens"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("allow_open"), "{}", refused.stderr);

    let allowed = TempFile::new(
        "allowed.toml",
        "[admin]\nlisten = \"0.0.0.0:3901\"\nallow_open = true\n",
    );
    let ok = run_relay_cli(&["--config", &allowed.arg(), "--check-config"], &[]).await;
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);

    let keyed = TempFile::new(
        "keyed.toml",
        &format!(
            "[admin]\nlisten = \"0.0.0.0:3901\"\n\n[[admin.keys]]\nname = \"k\"\ntoken = \"{ORDERS}\"\nops = [\"read\"]\n"
        ),
    );
    let ok = run_relay_cli(&["--config", &keyed.arg(), "--check-config"], &[]).await;
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(!ok.stdout.contains(ORDERS), "the key's token is masked");
}
