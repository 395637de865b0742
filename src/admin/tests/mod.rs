//! Table tests of the admin router, driven with `oneshot` requests: authentication,
//! routing, content types, limits, validation, the error envelope, route metrics, the
//! OpenAPI document, and (through the in-memory adapter) the answers. [`clients`] drives
//! the API against real Socket.IO clients over long-polling.

mod clients;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{AdminState, ROUTES, router};
use crate::adapter::Adapter;
use crate::adapter::local::LocalAdapter;
use crate::config::AdminConfig;
use crate::metrics::Metrics;

const TOKEN: &str = "tok-1";

fn config(tokens: &[&str]) -> AdminConfig {
    AdminConfig {
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
        max_body_bytes: 256,
        max_ack_timeout_ms: 1000,
        ..AdminConfig::default()
    }
}

fn state(config: &AdminConfig) -> AdminState {
    let metrics = Metrics::new();
    let local = LocalAdapter::new(metrics.clone(), CancellationToken::new());
    let adapter = Arc::new(Adapter::memory(Arc::new(local)));
    AdminState::new(adapter, metrics, config)
}

fn app(tokens: &[&str]) -> Router {
    router(state(&config(tokens)))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the error envelope with `code`, and nothing else in it but a message.
    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.headers[CONTENT_TYPE], "application/json");
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        let keys: BTreeSet<&str> = body["error"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            keys.is_subset(&BTreeSet::from(["code", "message", "index"])),
            "{body}"
        );
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn request(method: Method, uri: &str, token: Option<&str>, body: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(body) => builder
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned())),
        None => builder.body(Body::empty()),
    }
    .unwrap()
}

async fn post(app: &Router, uri: &str, body: &str) -> Answer {
    send(app, request(Method::POST, uri, Some(TOKEN), Some(body))).await
}

async fn get(app: &Router, uri: &str) -> Answer {
    send(app, request(Method::GET, uri, Some(TOKEN), None)).await
}

#[tokio::test]
async fn every_v1_path_needs_a_token_before_routing() {
    let app = app(&[TOKEN, "tok-2"]);
    let cases = [
        (Method::GET, "/v1/sockets", None),
        (Method::GET, "/v1/rooms", Some("wrong")),
        (Method::GET, "/v1/openapi.json", Some("tok-")),
        (Method::POST, "/v1/emit", None),
        (Method::PUT, "/v1/emit", None),
        (Method::DELETE, "/v1/sockets", None),
        (Method::POST, "/v1/nope", None),
        (Method::GET, "/v1/", None),
        (Method::GET, "/v1", None),
    ];
    for (method, uri, token) in cases {
        let answer = send(&app, request(method.clone(), uri, token, Some("{}"))).await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer", "{method} {uri}");
    }
    // With a token, the router answers.
    let answer = send(&app, request(Method::GET, "/v1/nope", Some("tok-2"), None)).await;
    answer.assert_error(StatusCode::NOT_FOUND, "not_found");
    let answer = send(&app, request(Method::PUT, "/v1/emit", Some(TOKEN), None)).await;
    answer.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(answer.headers[ALLOW], "POST");
}

#[tokio::test]
async fn operations_endpoints_need_no_token() {
    let state = state(&config(&[TOKEN]));
    let app = router(state.clone());
    let answer = send(&app, request(Method::GET, "/healthz", None, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"status": "ok"}));

    let answer = send(&app, request(Method::GET, "/readyz", None, None)).await;
    answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    state.set_listening(true);
    let answer = send(&app, request(Method::GET, "/readyz", None, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"status": "ready"}));
    state.set_listening(false);
    let answer = send(&app, request(Method::GET, "/readyz", None, None)).await;
    answer.assert_error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");

    let answer = send(&app, request(Method::GET, "/metrics", None, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(String::from_utf8_lossy(&answer.body).contains("sio_relay_admin_requests_total"));
}

#[tokio::test]
async fn no_tokens_configured_means_no_auth() {
    let app = app(&[]);
    let answer = send(&app, request(Method::POST, "/v1/emit", None, Some("{}"))).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "missing_target");
    let answer = send(&app, request(Method::GET, "/v1/nope", None, None)).await;
    answer.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = app(&[TOKEN]);
    for uri in ["/", "/nope", "/healthz/", "/v2/emit", "/metrics/x"] {
        let answer = send(&app, request(Method::GET, uri, None, None)).await;
        answer.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    for (method, uri, allow) in [
        (Method::POST, "/healthz", "GET,HEAD"),
        (Method::DELETE, "/metrics", "GET,HEAD"),
        (Method::GET, "/v1/emit", "POST"),
        (Method::GET, "/v1/join", "POST"),
        (Method::PATCH, "/v1/disconnect", "POST"),
        (Method::POST, "/v1/sockets", "GET,HEAD"),
        (Method::OPTIONS, "/v1/rooms", "GET,HEAD"),
    ] {
        let answer = send(&app, request(method.clone(), uri, Some(TOKEN), None)).await;
        answer.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(answer.headers[ALLOW], allow, "{method} {uri}");
    }
}

#[tokio::test]
async fn bodies_are_validated_whole_before_anything_is_done() {
    let app = app(&[TOKEN]);
    let cases: &[(&str, &str, &str, Option<usize>)] = &[
        ("/v1/emit", "", "invalid_json", None),
        ("/v1/emit", "{", "invalid_json", None),
        ("/v1/emit", "not json", "invalid_json", None),
        ("/v1/emit", "5", "invalid_json", None),
        ("/v1/emit", "\"x\"", "invalid_json", None),
        ("/v1/emit", "null", "invalid_json", None),
        ("/v1/emit", "[5]", "invalid_json", Some(0)),
        (
            "/v1/emit",
            r#"[{"to":"a","event":"e"},[]]"#,
            "invalid_json",
            Some(1),
        ),
        (
            "/v1/emit",
            r#"[{"to":"a","event":"e"},{"to":"a"}]"#,
            "invalid_field",
            Some(1),
        ),
        (
            "/v1/emit",
            r#"[{"to":"a","event":"e"},{"event":"e"},{"x":1}]"#,
            "missing_target",
            Some(1),
        ),
        (
            "/v1/emit",
            r#"[{"to":"a","event":"connect"}]"#,
            "reserved_event",
            Some(0),
        ),
        ("/v1/emit", r#"{"event":"e"}"#, "missing_target", None),
        (
            "/v1/emit",
            r#"{"event":"e","broadcast":false}"#,
            "missing_target",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","broadcast":true,"event":"e"}"#,
            "conflicting_target",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","room":"b","event":"e"}"#,
            "conflicting_target",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"","event":"e"}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":[],"event":"e"}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":["a",""],"event":"e"}"#,
            "invalid_field",
            None,
        ),
        ("/v1/emit", r#"{"to":"a"}"#, "invalid_field", None),
        (
            "/v1/emit",
            r#"{"to":"a","event":""}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","event":"disconnecting"}"#,
            "reserved_event",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","event":"e","data":1,"args":[1]}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","event":"e","args":1}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","event":"e","data":{"$binary":"!"}}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","event":"e","ack_timeout_ms":0}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","event":"e","ack_timeout_ms":1001}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/emit",
            r#"{"to":"a","event":"e","extra":1}"#,
            "unknown_field",
            None,
        ),
        ("/v1/join", r#"{"to":"a"}"#, "invalid_field", None),
        (
            "/v1/join",
            r#"{"to":"a","rooms":[]}"#,
            "invalid_field",
            None,
        ),
        ("/v1/join", r#"{"rooms":["r"]}"#, "missing_target", None),
        (
            "/v1/join",
            r#"[{"to":"a","rooms":["r"]}]"#,
            "invalid_json",
            None,
        ),
        (
            "/v1/leave",
            r#"{"to":"a","rooms":["r"],"event":"e"}"#,
            "unknown_field",
            None,
        ),
        (
            "/v1/leave",
            r#"{"to":"a","rooms":["r"],"broadcast":true}"#,
            "conflicting_target",
            None,
        ),
        ("/v1/disconnect", r#"{}"#, "missing_target", None),
        (
            "/v1/disconnect",
            r#"{"to":"a","rooms":["r"]}"#,
            "unknown_field",
            None,
        ),
        (
            "/v1/disconnect",
            r#"{"to":"a","namespace":"x"}"#,
            "invalid_field",
            None,
        ),
        (
            "/v1/disconnect",
            r#"{"to":"a","close":true}"#,
            "unknown_field",
            None,
        ),
    ];
    for (uri, body, code, index) in cases {
        let answer = post(&app, uri, body).await;
        answer.assert_error(StatusCode::BAD_REQUEST, code);
        assert_eq!(
            answer.json()["error"].get("index").and_then(Value::as_u64),
            index.map(|i| i as u64),
            "{uri} {body}"
        );
    }
}

#[tokio::test]
async fn queries_are_validated() {
    let app = app(&[TOKEN]);
    for uri in [
        "/v1/sockets?bogus=1",
        "/v1/sockets?room=a",
        "/v1/sockets?to=",
        "/v1/sockets?to=a&except=",
        "/v1/sockets?namespace=chat",
        "/v1/sockets?namespace=%2Fa&namespace=%2Fb",
        "/v1/rooms?to=a",
        "/v1/rooms?namespace=",
    ] {
        let answer = get(&app, uri).await;
        let code = if uri.contains("bogus") || uri.contains("room=") || uri.contains("rooms?to") {
            "unknown_field"
        } else {
            "invalid_field"
        };
        answer.assert_error(StatusCode::BAD_REQUEST, code);
    }
}

#[tokio::test]
async fn content_types() {
    let app = app(&[TOKEN]);
    // The body is read (and found to lack a target) for these types...
    for content_type in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("APPLICATION/JSON;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut builder = Request::post("/v1/emit").header(AUTHORIZATION, "Bearer tok-1");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        let answer = send(&app, builder.body(Body::from(r#"{"event":"e"}"#)).unwrap()).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "missing_target");
    }
    // ...and refused for the others, on every body route.
    for uri in ["/v1/emit", "/v1/join", "/v1/leave", "/v1/disconnect"] {
        for content_type in [
            "text/plain",
            "application/xml",
            "multipart/form-data; boundary=x",
        ] {
            let request = Request::post(uri)
                .header(AUTHORIZATION, "Bearer tok-1")
                .header(CONTENT_TYPE, content_type)
                .body(Body::from("{}"))
                .unwrap();
            let answer = send(&app, request).await;
            answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit() {
    let app = app(&[TOKEN]);
    let big = format!(r#"{{"to":"a","event":"e","data":"{}"}}"#, "x".repeat(300));
    for uri in ["/v1/emit", "/v1/join", "/v1/leave", "/v1/disconnect"] {
        // With a Content-Length...
        let answer = post(&app, uri, &big).await;
        answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        // ...and streamed without one.
        let chunks: Vec<Result<Bytes, std::io::Error>> = big
            .as_bytes()
            .chunks(50)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let request = Request::post(uri)
            .header(AUTHORIZATION, "Bearer tok-1")
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap();
        let answer = send(&app, request).await;
        answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    }
    // A body of exactly the limit is read.
    let body = format!(r#"{{"event":"e","data":"{}"}}"#, "x".repeat(256 - 23));
    assert_eq!(body.len(), 256);
    post(&app, "/v1/emit", &body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "missing_target");
}

#[tokio::test]
async fn reload_swaps_tokens_and_limits() {
    let state = state(&config(&[TOKEN]));
    let app = router(state.clone());
    let body = format!(r#"{{"event":"e","data":"{}"}}"#, "x".repeat(300));
    post(&app, "/v1/emit", &body)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let ack = r#"{"to":"a","event":"e","ack_timeout_ms":5000}"#;
    post(&app, "/v1/emit", ack)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_field");

    state.reload(&AdminConfig {
        tokens: vec!["new".into()],
        max_body_bytes: 1000,
        max_ack_timeout_ms: 4000,
        ..AdminConfig::default()
    });
    post(&app, "/v1/emit", "{}")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let with_new = |body: &str| request(Method::POST, "/v1/emit", Some("new"), Some(body));
    send(&app, with_new(&body))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "missing_target");
    send(&app, with_new(ack))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_field");
    let answer = send(
        &app,
        request(Method::GET, "/v1/openapi.json", Some("new"), None),
    )
    .await;
    assert_eq!(
        answer
            .json()
            .pointer("/components/schemas/AckTimeout/maximum"),
        Some(&json!(4000))
    );
}

#[tokio::test]
async fn requests_are_counted_by_route_template() {
    let state = state(&config(&[TOKEN]));
    let app = router(state.clone());
    post(&app, "/v1/emit", "{}").await;
    post(&app, "/v1/emit", "{}").await;
    send(&app, request(Method::GET, "/v1/emit", None, None)).await;
    send(&app, request(Method::GET, "/v1/emit", Some(TOKEN), None)).await;
    send(
        &app,
        request(Method::GET, "/v1/secret-room-name", Some(TOKEN), None),
    )
    .await;
    send(&app, request(Method::GET, "/some/raw/path", None, None)).await;
    send(&app, request(Method::GET, "/healthz", None, None)).await;

    let text = state.metrics().render();
    for line in [
        r#"sio_relay_admin_requests_total{route="/v1/emit",status="400"} 2"#,
        r#"sio_relay_admin_requests_total{route="/v1/emit",status="401"} 1"#,
        r#"sio_relay_admin_requests_total{route="/v1/emit",status="405"} 1"#,
        r#"sio_relay_admin_requests_total{route="other",status="404"} 2"#,
        r#"sio_relay_admin_requests_total{route="/healthz",status="200"} 1"#,
        r#"sio_relay_admin_request_duration_seconds_count{route="/v1/emit"} 4"#,
        r#"sio_relay_admin_request_duration_seconds_count{route="other"} 2"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(!text.contains("secret-room-name") && !text.contains("raw/path"));
}

/// The OpenAPI document: well-formed, and listing exactly the routes the router serves,
/// with exactly the methods it serves.
#[tokio::test]
async fn openapi_lists_every_route() {
    let app = app(&[TOKEN]);
    let answer = get(&app, "/v1/openapi.json").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    let doc = answer.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["security"], json!([{"bearer": []}]));

    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(documented, BTreeSet::from(ROUTES));

    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    for (path, item) in paths {
        for method in &methods {
            let key = method.as_str().to_ascii_lowercase();
            let operation = item.get(&key);
            // An invalid body or query, so no handler reaches the adapter.
            let (uri, body) = match *method {
                Method::GET => (format!("{path}?zz=1"), None),
                _ => (path.clone(), Some("{}")),
            };
            let answer = send(&app, request(method.clone(), &uri, Some(TOKEN), body)).await;
            match operation {
                None => assert_eq!(
                    answer.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}"
                ),
                Some(operation) => {
                    assert!(
                        ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]
                            .contains(&answer.status),
                        "{method} {path}: {}",
                        answer.status
                    );
                    let responses = operation["responses"].as_object().expect("responses");
                    assert!(
                        responses.contains_key(answer.status.as_str()),
                        "{method} {path}: {} not documented",
                        answer.status
                    );
                    if path.starts_with("/v1/") {
                        assert!(responses.contains_key("401"), "{method} {path}: 401");
                        assert!(operation.get("security").is_none(), "{method} {path}");
                    } else {
                        assert_eq!(operation["security"], json!([]), "{method} {path}");
                    }
                    assert!(operation["operationId"].is_string(), "{method} {path}");
                }
            }
        }
    }
    assert_refs_resolve(&doc, &doc);
}

fn assert_refs_resolve(doc: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let pointer = reference.strip_prefix('#').expect("local $ref");
                assert!(doc.pointer(pointer).is_some(), "dangling $ref {reference}");
            }
            map.values().for_each(|v| assert_refs_resolve(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| assert_refs_resolve(doc, v)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_without_tokens_drops_security() {
    let app = app(&[]);
    let doc = get(&app, "/v1/openapi.json").await.json();
    assert_eq!(doc["security"], json!([]));
    assert_eq!(
        doc.pointer("/components/schemas/AckTimeout/maximum"),
        Some(&json!(1000))
    );
    let reserved: Vec<&str> = doc
        .pointer("/components/schemas/EventName/not/enum")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(reserved, crate::socketio::packet::RESERVED_EVENTS);
}

#[tokio::test]
async fn answers_through_the_adapter() {
    let app = app(&[TOKEN]);
    let cases: &[(&str, &str, Value)] = &[
        (
            "/v1/emit",
            r#"{"to":"nobody","event":"e"}"#,
            json!({"recipients": 0}),
        ),
        (
            "/v1/emit",
            r#"{"broadcast":true,"except":"x","event":"e","data":{"b":{"$binary":"AA=="}}}"#,
            json!({"recipients": 0}),
        ),
        (
            "/v1/emit",
            r#"{"room":"nobody","event":"e","ack_timeout_ms":50}"#,
            json!({"recipients": 0, "acks": [], "timeouts": []}),
        ),
        (
            "/v1/emit",
            r#"[{"to":"a","event":"e"},{"to":"b","event":"e","args":[1,2]}]"#,
            json!([{"recipients": 0}, {"recipients": 0}]),
        ),
        ("/v1/emit", "[]", json!([])),
        (
            "/v1/join",
            r#"{"to":"nobody","rooms":["r"]}"#,
            json!({"sockets": 0}),
        ),
        (
            "/v1/leave",
            r#"{"broadcast":true,"rooms":["r"]}"#,
            json!({"sockets": 0}),
        ),
        (
            "/v1/disconnect",
            r#"{"to":["a","b"]}"#,
            json!({"sockets": 0}),
        ),
    ];
    for (uri, body, want) in cases {
        let answer = post(&app, uri, body).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri} {body}");
        assert_eq!(&answer.json(), want, "{uri} {body}");
    }
    let answer = get(&app, "/v1/sockets?namespace=%2F&to=a&to=b&except=c").await;
    assert_eq!(answer.json(), json!({"sockets": []}));
    let answer = get(&app, "/v1/sockets").await;
    assert_eq!(answer.json(), json!({"sockets": []}));
    let answer = get(&app, "/v1/rooms?namespace=%2Fchat").await;
    assert_eq!(answer.json(), json!({"rooms": []}));
}
