//! Request building, and the client against a small local admin API stand-in.

use super::*;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes as AxumBytes;
use axum::extract::OriginalUri;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use axum::routing::any;

/// What the stand-in saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A stand-in admin API: records each request and answers `status` with `body`.
struct Stub {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn stub(status: u16, body: &'static str) -> Stub {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = {
        let seen = seen.clone();
        move |method: axum::http::Method,
              OriginalUri(uri): OriginalUri,
              headers: HeaderMap,
              payload: AxumBytes| {
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map(|value| value.to_str().unwrap().to_owned())
                };
                seen.lock().unwrap().push(Seen {
                    method: method.to_string(),
                    uri: uri.to_string(),
                    authorization: header("authorization"),
                    content_type: header("content-type"),
                    body: String::from_utf8(payload.to_vec()).unwrap(),
                });
                (
                    AxumStatus::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
                    .into_response()
            }
        }
    };
    let app = Router::new().fallback(any(record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Stub {
        url: format!("http://{addr}"),
        seen,
    }
}

impl Stub {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// An address nothing listens on.
async fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

async fn run_captured(command: OpsCommand) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(&command, false, &mut out, &mut err).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn emit(admin_url: &str) -> EmitCommand {
    EmitCommand {
        to: vec!["abc".into()],
        event: "news".into(),
        admin_url: admin_url.into(),
        ..EmitCommand::default()
    }
}

#[test]
fn emit_body_carries_every_flag() {
    let command = EmitCommand {
        to: vec!["room1".into(), "sid2".into()],
        except: vec!["muted".into()],
        event: "news".into(),
        data: Some(r#"{"a": [1, {"$binary": "AAE="}]}"#.into()),
        namespace: Some("/chat".into()),
        ack_timeout_ms: Some(1500),
        ..EmitCommand::default()
    };
    let request = command.request().unwrap();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path_and_query, "/v1/emit");
    assert_eq!(
        request.body.unwrap(),
        json!({
            "namespace": "/chat",
            "to": ["room1", "sid2"],
            "except": ["muted"],
            "event": "news",
            "data": {"a": [1, {"$binary": "AAE="}]},
            "ack_timeout_ms": 1500,
        })
    );
}

#[test]
fn emit_broadcast_with_args_and_nothing_unset() {
    let command = EmitCommand {
        broadcast: true,
        event: "tick".into(),
        args: Some(r#"[1, "two", null]"#.into()),
        ..EmitCommand::default()
    };
    assert_eq!(
        command.request().unwrap().body.unwrap(),
        json!({"broadcast": true, "event": "tick", "args": [1, "two", null]})
    );
    let bare = EmitCommand {
        broadcast: true,
        event: "tick".into(),
        ..EmitCommand::default()
    };
    assert_eq!(
        bare.request().unwrap().body.unwrap(),
        json!({"broadcast": true, "event": "tick"})
    );
}

#[test]
fn emit_usage_errors() {
    let base = emit("http://127.0.0.1:3001");
    let cases = [
        EmitCommand {
            to: vec![],
            ..base.clone()
        },
        EmitCommand {
            broadcast: true,
            ..base.clone()
        },
        EmitCommand {
            event: String::new(),
            ..base.clone()
        },
        EmitCommand {
            data: Some("1".into()),
            args: Some("[]".into()),
            ..base.clone()
        },
        EmitCommand {
            data: Some("{not json".into()),
            ..base.clone()
        },
        EmitCommand {
            args: Some(r#"{"a": 1}"#.into()),
            ..base.clone()
        },
    ];
    for command in cases {
        let error = command.request().unwrap_err();
        assert!(matches!(error, OpsError::Usage(_)), "{command:?}: {error}");
        assert_eq!(error.exit_code(), 2);
    }
}

#[test]
fn sockets_and_rooms_queries_are_encoded() {
    let sockets = SocketsCommand {
        namespace: Some("/chat room".into()),
        to: vec!["a&b".into(), "c".into()],
        except: vec!["é".into()],
        ..SocketsCommand::default()
    };
    let request = sockets.request();
    assert_eq!(request.method, Method::GET);
    assert_eq!(
        request.path_and_query,
        "/v1/sockets?namespace=%2Fchat%20room&to=a%26b&to=c&except=%C3%A9"
    );
    assert_eq!(
        SocketsCommand::default().request().path_and_query,
        "/v1/sockets"
    );
    let rooms = RoomsCommand {
        namespace: Some("/".into()),
        ..RoomsCommand::default()
    };
    assert_eq!(rooms.request().path_and_query, "/v1/rooms?namespace=%2F");
    assert_eq!(
        RoomsCommand::default().request().path_and_query,
        "/v1/rooms"
    );
}

#[test]
fn admin_urls() {
    let url = parse_admin_url("http://127.0.0.1:3001").unwrap();
    assert_eq!(
        (url.host.as_str(), url.port, url.prefix.as_str()),
        ("127.0.0.1", 3001, "")
    );
    let url = parse_admin_url("http://[::1]:4000/relay/").unwrap();
    assert_eq!((url.host.as_str(), url.port), ("::1", 4000));
    assert_eq!(
        (url.authority.as_str(), url.prefix.as_str()),
        ("[::1]:4000", "/relay")
    );
    assert_eq!(parse_admin_url("http://relay.internal").unwrap().port, 80);
    for bad in [
        "https://127.0.0.1:3001",
        "127.0.0.1:3001",
        "http://u:p@h:1",
        "http://h:1/?a=b",
        "",
    ] {
        let error = parse_admin_url(bad).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad}");
    }
}

#[test]
fn default_admin_url_reaches_unspecified_listeners_over_loopback() {
    let cases = [
        ("127.0.0.1:3001", "http://127.0.0.1:3001"),
        ("0.0.0.0:3001", "http://127.0.0.1:3001"),
        ("[::]:3001", "http://[::1]:3001"),
        ("10.1.2.3:9", "http://10.1.2.3:9"),
    ];
    for (listen, url) in cases {
        assert_eq!(default_admin_url(listen.parse().unwrap()), url);
    }
}

#[tokio::test]
async fn healthcheck_up_down_and_unreachable() {
    let up = stub(200, "ok").await;
    let command = |url: &str| {
        OpsCommand::Healthcheck(HealthcheckCommand {
            admin_url: url.into(),
        })
    };
    let (code, out, err) = run_captured(command(&up.url)).await;
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let seen = up.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("GET", "/healthz")
    );
    assert_eq!(seen[0].authorization, None);

    let down = stub(503, "shutting down").await;
    let (code, _, err) = run_captured(command(&down.url)).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("503") && err.contains("shutting down"),
        "{err}"
    );

    let (code, _, err) = run_captured(command(&closed_port_url().await)).await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn healthcheck_gives_up_after_two_seconds() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let result = execute(&OpsCommand::Healthcheck(HealthcheckCommand {
        admin_url: url,
    }))
    .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(OpsError::Timeout { .. })),
        "{result:?}"
    );
    assert!(
        elapsed >= HEALTHCHECK_TIMEOUT && elapsed < HEALTHCHECK_TIMEOUT * 2,
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn emit_sends_json_with_token_and_prints_the_answer() {
    let relay = stub(200, r#"{"recipients":1}"#).await;
    let command = EmitCommand {
        token: Some("s3cret".into()),
        data: Some(r#"{"x": 1}"#.into()),
        ..emit(&relay.url)
    };
    let (code, out, err) = run_captured(OpsCommand::Emit(command)).await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "{\"recipients\":1}\n", "")
    );
    let seen = &relay.seen()[0];
    assert_eq!(
        (seen.method.as_str(), seen.uri.as_str()),
        ("POST", "/v1/emit")
    );
    assert_eq!(seen.authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({"to": ["abc"], "event": "news", "data": {"x": 1}})
    );
}

#[tokio::test]
async fn a_refusal_exits_1_with_the_relay_message() {
    let relay = stub(
        401,
        r#"{"error":{"code":"unauthorized","message":"a valid bearer token is required"}}"#,
    )
    .await;
    let (code, out, err) = run_captured(OpsCommand::Emit(emit(&relay.url))).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "sio-relay: refused (401 unauthorized): a valid bearer token is required\n"
    );
}

#[tokio::test]
async fn a_usage_error_exits_2_and_sends_nothing() {
    let relay = stub(200, "{}").await;
    let command = EmitCommand {
        data: Some("nope".into()),
        ..emit(&relay.url)
    };
    let (code, out, err) = run_captured(OpsCommand::Emit(command)).await;
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with("sio-relay: --data is not valid JSON"),
        "{err}"
    );
    assert!(relay.seen().is_empty());
}

#[tokio::test]
async fn sockets_and_rooms_print_the_answer_pretty_on_request() {
    let relay = stub(200, r#"{"rooms":[{"name":"lobby","size":2}]}"#).await;
    let command = OpsCommand::Rooms(RoomsCommand {
        namespace: Some("/chat".into()),
        admin_url: format!("{}/", relay.url),
        token: None,
    });
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(&command, true, &mut out, &mut err).await;
    assert_eq!(code, 0);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("\n  \"rooms\": [\n"), "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"rooms": [{"name": "lobby", "size": 2}]})
    );

    let command = OpsCommand::Sockets(SocketsCommand {
        to: vec!["lobby".into()],
        admin_url: relay.url.clone(),
        token: Some("t".into()),
        ..SocketsCommand::default()
    });
    let (code, _, _) = run_captured(command).await;
    assert_eq!(code, 0);
    let seen = relay.seen();
    assert_eq!(seen[0].uri, "/v1/rooms?namespace=%2Fchat");
    assert_eq!(seen[1].uri, "/v1/sockets?to=lobby");
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer t"));
}

#[tokio::test]
async fn a_non_json_refusal_shows_the_body() {
    let relay = stub(502, "bad gateway from a proxy").await;
    let error = execute(&OpsCommand::Rooms(RoomsCommand {
        admin_url: relay.url.clone(),
        ..RoomsCommand::default()
    }))
    .await
    .unwrap_err();
    assert_eq!(error.exit_code(), 1);
    assert_eq!(error.to_string(), "refused (502): bad gateway from a proxy");
}
