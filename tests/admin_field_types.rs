//! Every body field of every admin route, given each JSON type it does not take: the call
//! is refused with 400 `invalid_field` and changes nothing (no event delivered, no room
//! joined or left, nobody disconnected), as seen by a real socket.io-client.

mod common;

use common::clients::is;
use common::{Admin, ClientKind, QUIET, start_relay};
use serde_json::{Value, json};

/// One value of each JSON type.
fn values_of_every_type() -> [(&'static str, Value); 6] {
    [
        ("null", Value::Null),
        ("boolean", json!(true)),
        ("number", json!(7)),
        ("string", json!("r")),
        ("array", json!(["r"])),
        ("object", json!({"r": 1})),
    ]
}

/// The JSON types each field takes (`"any"`: every type, so none is wrong).
fn field_types(route: &str) -> Vec<(&'static str, &'static [&'static str])> {
    let mut fields: Vec<(&str, &[&str])> = vec![
        ("namespace", &["string"]),
        ("to", &["string", "array"]),
        ("room", &["string", "array"]),
        ("except", &["string", "array"]),
        ("broadcast", &["boolean"]),
    ];
    match route {
        "/v1/emit" => fields.extend([
            ("event", &["string"][..]),
            ("data", &["any"][..]),
            ("args", &["array"][..]),
            ("ack_timeout_ms", &["number"][..]),
        ]),
        "/v1/join" | "/v1/leave" => fields.push(("rooms", &["array"])),
        _ => {}
    }
    fields
}

/// A valid body for `route` addressed to `sid`; it would change something if accepted.
fn valid_body(route: &str, sid: &str) -> Value {
    match route {
        "/v1/emit" => json!({"to": sid, "event": "changed"}),
        "/v1/join" => json!({"to": sid, "rooms": ["joined"]}),
        "/v1/leave" => json!({"to": sid, "rooms": ["kept"]}),
        _ => json!({"to": sid}),
    }
}

/// The client's rooms as `/v1/sockets` lists them, and how many sockets there are.
async fn snapshot(admin: &Admin) -> Value {
    let listing = admin.sockets("").await;
    let sockets = listing.expect_status(200)["sockets"].clone();
    json!(
        sockets
            .as_array()
            .unwrap()
            .iter()
            .map(|s| json!([s["sid"], s["rooms"]]))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn every_wrong_field_type_is_invalid_field_and_changes_nothing() {
    let relay = start_relay(|_| {}).await;
    let admin = relay.admin();
    let mut client = relay.connect(ClientKind::Js, "websocket").await;
    let sid = client.sid("/").unwrap();
    admin
        .join(&json!({"to": sid, "rooms": ["kept"]}))
        .await
        .expect_status(200);
    let before = snapshot(&admin).await;
    assert_eq!(before, json!([[sid, ["kept"]]]));

    let mut refused = 0;
    for route in ["/v1/emit", "/v1/join", "/v1/leave", "/v1/disconnect"] {
        for (field, takes) in field_types(route) {
            for (type_name, value) in values_of_every_type() {
                if takes.contains(&type_name) || takes.contains(&"any") {
                    continue;
                }
                let mut body = valid_body(route, &sid);
                body[field] = value;
                let case = format!("{route} with `{field}` {type_name}: {body}");
                let resp = admin.post_json(route, &body, None).await;
                assert_eq!(resp.status, 400, "{case}: {}", resp.body);
                assert_eq!(
                    resp.error_code(),
                    Some("invalid_field"),
                    "{case}: {}",
                    resp.body
                );
                let message = resp.json["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains(field), "{case}: message {message:?}");
                if route == "/v1/emit" {
                    // In a batch, the element's index comes with the error; nothing is sent.
                    let batch = json!([valid_body(route, &sid), body]);
                    let resp = admin.post_json(route, &batch, None).await;
                    assert_eq!(resp.status, 400, "batch {case}: {}", resp.body);
                    assert_eq!(resp.error_code(), Some("invalid_field"), "batch {case}");
                    assert_eq!(resp.json["error"]["index"], 1, "batch {case}");
                }
                assert_eq!(snapshot(&admin).await, before, "{case} changed the rooms");
                refused += 1;
            }
        }
    }
    // The 5 selector fields on 4 routes, emit's `event`, `args` and `ack_timeout_ms`, and
    // `rooms` on 2 routes.
    assert_eq!(refused, 4 * 22 + 15 + 2 * 5, "cases tried");

    // Nothing reached the client and it is still connected; a valid call still works.
    client
        .expect_none(|v| is(v, "event") || is(v, "disconnect"), QUIET)
        .await;
    let resp = admin.emit(&valid_body("/v1/emit", &sid)).await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    client.wait_event("/", "changed").await;
    client.exit().await;
    relay.shutdown().await;
}
