//! The admin API against real sockets: Socket.IO clients over HTTP long-polling, driven
//! in memory through the Engine.IO router, so each answer can be checked against what
//! the clients received.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;

use super::*;
use crate::config::ServerConfig;
use crate::engine::Engine;
use crate::socketio::SocketIo;

/// The Socket.IO listener and the admin API over one rooms index.
struct Relay {
    engine: Router,
    admin: Router,
    next_port: u16,
}

impl Relay {
    fn new() -> Self {
        let metrics = Metrics::new();
        let local = Arc::new(LocalAdapter::new(metrics.clone(), CancellationToken::new()));
        let adapter = Arc::new(Adapter::memory(local.clone()));
        let namespaces = ["/".to_string(), "/chat".to_string()];
        let socketio = SocketIo::new(local, &namespaces, metrics.clone());
        let engine = Engine::new(socketio, ServerConfig::default(), metrics.clone());
        let state = AdminState::new(adapter, metrics, &config(&[TOKEN]));
        Relay {
            engine: crate::engine::router(engine),
            admin: router(state),
            next_port: 40000,
        }
    }

    /// Opens an Engine.IO session and connects it to `namespace`.
    async fn connect(&mut self, namespace: &str) -> Client {
        self.next_port += 1;
        let address = SocketAddr::from(([127, 0, 0, 1], self.next_port));
        let mut client = Client {
            engine: self.engine.clone(),
            address,
            eio_sid: String::new(),
            namespace: namespace.to_owned(),
            sid: String::new(),
        };
        let open = client.request(Method::GET, "", None).await;
        let open: Value = serde_json::from_str(open.strip_prefix('0').expect("open packet"))
            .expect("open payload");
        client.eio_sid = open["sid"].as_str().unwrap().to_owned();
        let connect = format!("40{}", client.prefix());
        client.post(&connect).await;
        let packets = client.poll().await;
        let reply = packets[0]
            .strip_prefix(&format!("40{}", client.prefix()))
            .expect("connect reply");
        let reply: Value = serde_json::from_str(reply).unwrap();
        client.sid = reply["sid"].as_str().unwrap().to_owned();
        client
    }

    async fn post(&self, uri: &str, body: &str) -> Value {
        let answer = post(&self.admin, uri, body).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{uri} {body}: {:?}",
            answer.body
        );
        answer.json()
    }

    async fn get(&self, uri: &str) -> Value {
        let answer = get(&self.admin, uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {:?}", answer.body);
        answer.json()
    }
}

/// A Socket.IO client on one namespace, over polling.
struct Client {
    engine: Router,
    address: SocketAddr,
    eio_sid: String,
    namespace: String,
    sid: String,
}

impl Client {
    /// The namespace part of a packet (`/chat,`), empty for `/`.
    fn prefix(&self) -> String {
        if self.namespace == "/" {
            String::new()
        } else {
            format!("{},", self.namespace)
        }
    }

    async fn request(&self, method: Method, sid: &str, body: Option<&str>) -> String {
        let uri = format!("/socket.io/?EIO=4&transport=polling{sid}");
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(self.address));
        let answer = send(&self.engine, request).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        String::from_utf8(answer.body.to_vec()).unwrap()
    }

    async fn post(&self, payload: &str) {
        let sid = format!("&sid={}", self.eio_sid);
        assert_eq!(self.request(Method::POST, &sid, Some(payload)).await, "ok");
    }

    /// The packets of one long-polling GET, which must come within a second.
    async fn poll(&self) -> Vec<String> {
        let sid = format!("&sid={}", self.eio_sid);
        let body = tokio::time::timeout(
            Duration::from_secs(1),
            self.request(Method::GET, &sid, None),
        )
        .await
        .expect("a packet within a second");
        body.split('\x1e').map(str::to_owned).collect()
    }

    /// Whether a GET stays pending (nothing was sent to this client).
    async fn nothing_received(&self) -> bool {
        let sid = format!("&sid={}", self.eio_sid);
        tokio::time::timeout(
            Duration::from_millis(100),
            self.request(Method::GET, &sid, None),
        )
        .await
        .is_err()
    }
}

#[tokio::test]
async fn emit_reaches_the_selected_sockets() {
    let mut relay = Relay::new();
    let a = relay.connect("/").await;
    let b = relay.connect("/").await;
    let chat = relay.connect("/chat").await;

    let body = json!({"to": a.sid, "event": "hello", "data": {"n": 1}}).to_string();
    assert_eq!(
        relay.post("/v1/emit", &body).await,
        json!({"recipients": 1})
    );
    assert_eq!(a.poll().await, vec![r#"42["hello",{"n":1}]"#]);
    assert!(b.nothing_received().await);

    let body = json!({"broadcast": true, "except": b.sid, "event": "e", "args": [1, "x"]});
    let answer = relay.post("/v1/emit", &body.to_string()).await;
    assert_eq!(answer, json!({"recipients": 1}));
    assert_eq!(a.poll().await, vec![r#"42["e",1,"x"]"#]);

    let body = json!({"namespace": "/chat", "broadcast": true, "event": "e"}).to_string();
    assert_eq!(
        relay.post("/v1/emit", &body).await,
        json!({"recipients": 1})
    );
    assert_eq!(chat.poll().await, vec![r#"42/chat,["e"]"#]);

    // Offline sids count 0; a batch answers in order.
    let body = json!([
        {"to": "AAAAAAAAAAAAAAAAAAAA", "event": "e"},
        {"to": [a.sid, b.sid], "event": "both"},
    ]);
    let answer = relay.post("/v1/emit", &body.to_string()).await;
    assert_eq!(answer, json!([{"recipients": 0}, {"recipients": 2}]));
    assert_eq!(b.poll().await, vec![r#"42["both"]"#]);
}

#[tokio::test]
async fn a_refused_batch_sends_nothing() {
    let mut relay = Relay::new();
    let a = relay.connect("/").await;
    let body = json!([
        {"to": a.sid, "event": "first"},
        {"to": a.sid, "event": "disconnect"},
    ]);
    let answer = post(&relay.admin, "/v1/emit", &body.to_string()).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "reserved_event");
    assert_eq!(answer.json()["error"]["index"], 1);
    assert!(a.nothing_received().await);
}

#[tokio::test]
async fn binary_goes_out_as_attachments() {
    let mut relay = Relay::new();
    let a = relay.connect("/").await;
    let body =
        json!({"to": a.sid, "event": "file", "data": {"name": "x", "bytes": {"$binary": "AAEC"}}});
    assert_eq!(
        relay.post("/v1/emit", &body.to_string()).await,
        json!({"recipients": 1})
    );
    assert_eq!(
        a.poll().await,
        vec![
            r#"451-["file",{"name":"x","bytes":{"_placeholder":true,"num":0}}]"#,
            "bAAEC"
        ]
    );
}

#[tokio::test]
async fn acks_come_back_with_binary_and_timeouts() {
    let mut relay = Relay::new();
    let a = relay.connect("/").await;
    let b = relay.connect("/").await;
    let body = json!({"broadcast": true, "event": "ping", "ack_timeout_ms": 500}).to_string();
    let admin = relay.admin.clone();
    let emit = tokio::spawn(async move { post(&admin, "/v1/emit", &body).await });

    let packet = a.poll().await.remove(0);
    let id: String = packet
        .strip_prefix("42")
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(packet, format!(r#"42{id}["ping"]"#));
    assert_eq!(b.poll().await, vec![packet.clone()]);
    a.post(&format!(
        "461-{id}[\"pong\",{{\"_placeholder\":true,\"num\":0}}]\x1ebAAEC"
    ))
    .await;

    let answer = emit.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({
            "recipients": 2,
            "acks": [{"sid": a.sid, "args": ["pong", {"$binary": "AAEC"}]}],
            "timeouts": [b.sid],
        })
    );
}

#[tokio::test]
async fn rooms_join_leave_and_listings() {
    let mut relay = Relay::new();
    let a = relay.connect("/").await;
    let b = relay.connect("/").await;
    let body = json!({"to": [a.sid, b.sid], "rooms": ["r1", "r2"]}).to_string();
    assert_eq!(relay.post("/v1/join", &body).await, json!({"sockets": 2}));
    let body = json!({"room": b.sid, "rooms": ["r2"]}).to_string();
    assert_eq!(relay.post("/v1/leave", &body).await, json!({"sockets": 1}));

    assert_eq!(
        relay.get("/v1/rooms").await,
        json!({"rooms": [{"name": "r1", "size": 2}, {"name": "r2", "size": 1}]})
    );
    assert_eq!(
        relay.get("/v1/rooms?namespace=%2Fchat").await,
        json!({"rooms": []})
    );

    let body = json!({"to": "r2", "event": "e"}).to_string();
    assert_eq!(
        relay.post("/v1/emit", &body).await,
        json!({"recipients": 1})
    );
    assert_eq!(a.poll().await, vec![r#"42["e"]"#]);

    let listing = relay
        .get(&format!("/v1/sockets?to=r1&except={}", b.sid))
        .await;
    let sockets = listing["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 1, "{listing}");
    let socket = &sockets[0];
    assert_eq!(socket["sid"], a.sid.as_str());
    assert_eq!(socket["namespace"], "/");
    let mut rooms: Vec<&str> = socket["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    rooms.sort_unstable();
    assert_eq!(rooms, ["r1", "r2"]);
    assert_eq!(socket["transport"], "polling");
    assert_eq!(socket["address"], a.address.to_string());
    let connected_at = socket["connected_at"].as_str().unwrap();
    assert!(
        humantime::parse_rfc3339(connected_at).is_ok(),
        "{connected_at}"
    );
    let keys: BTreeSet<&str> = socket
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "sid",
            "namespace",
            "rooms",
            "transport",
            "parser",
            "eio",
            "address",
            "connected_at",
            "user",
            "data"
        ])
    );

    let everyone = relay.get("/v1/sockets").await;
    assert_eq!(everyone["sockets"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn disconnect_removes_sockets() {
    let mut relay = Relay::new();
    let a = relay.connect("/").await;
    let b = relay.connect("/").await;
    let body = json!({"to": a.sid}).to_string();
    assert_eq!(
        relay.post("/v1/disconnect", &body).await,
        json!({"sockets": 1})
    );
    assert_eq!(a.poll().await, vec!["41"]);
    let listing = relay.get("/v1/sockets").await;
    assert_eq!(
        listing,
        json!({"sockets": [relay_socket(&listing, &b.sid)]})
    );
    let body = json!({"to": a.sid, "event": "e"}).to_string();
    assert_eq!(
        relay.post("/v1/emit", &body).await,
        json!({"recipients": 0})
    );
}

/// The listed socket with `sid`, for comparing whole listings.
fn relay_socket(listing: &Value, sid: &str) -> Value {
    listing["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sid"] == sid)
        .cloned()
        .unwrap_or_else(|| panic!("{sid} not in {listing}"))
}
