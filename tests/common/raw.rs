//! Hand-written Engine.IO clients for tests that send what no official client would.
//!
//! Packets are plain strings as on the wire: `0{...}` open, `2` ping, `3` pong, `4...`
//! message (so `40` is a Socket.IO CONNECT to `/`, `42["ev",1]` an EVENT). Long-polling
//! payloads join packets with the record separator `\x1e`.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TIMEOUT;
use super::admin::{HttpResponse, http_request};

/// The record separator between packets of a long-polling payload.
pub const SEPARATOR: char = '\x1e';

/// Joins packets into one long-polling payload.
pub fn polling_payload(packets: &[&str]) -> String {
    packets.join(&SEPARATOR.to_string())
}

/// Splits a long-polling payload into packets.
pub fn split_payload(payload: &str) -> Vec<String> {
    if payload.is_empty() {
        return Vec::new();
    }
    payload.split(SEPARATOR).map(str::to_string).collect()
}

/// The JSON of an Engine.IO open packet (`0{...}`).
pub fn parse_open(packet: &str) -> Value {
    let json = packet
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an Engine.IO open packet: {packet:?}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad open packet {packet:?}: {e}"))
}

/// The JSON payload of a Socket.IO packet of type `kind` (`"40"`, `"44"`...), for `ns`,
/// e.g. `40{"sid":"…"}` or `40/admin,{"sid":"…"}`; `None` when `packet` is another one.
pub fn sio_payload(packet: &str, kind: &str, ns: &str) -> Option<Value> {
    let rest = packet.strip_prefix(kind)?;
    let rest = if ns == "/" {
        if rest.starts_with('/') {
            return None;
        }
        rest
    } else {
        rest.strip_prefix(ns)?.strip_prefix(',')?
    };
    if rest.is_empty() {
        return Some(Value::Null);
    }
    serde_json::from_str(rest).ok()
}

/// The Socket.IO CONNECT packet for `ns`.
pub fn connect_packet(ns: &str) -> String {
    if ns == "/" {
        "40".to_string()
    } else {
        format!("40{ns},")
    }
}

/// Whether `packet` answers a CONNECT to `ns`: accepted (`40`) or refused (`44`).
fn answers_connect(packet: &str, ns: &str) -> bool {
    sio_payload(packet, "40", ns).is_some() || sio_payload(packet, "44", ns).is_some()
}

/// The JSON of the CONNECT answer `packet` for `ns`; panics when it is a refusal.
fn accepted_connect(packet: &str, ns: &str) -> Value {
    sio_payload(packet, "40", ns).unwrap_or_else(|| panic!("namespace {ns} refused: {packet}"))
}

/// `http://addr{path}` with the path given in the config (`/socket.io/`).
pub fn endpoint(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// A long-polling Engine.IO session.
pub struct RawPolling {
    http: reqwest::Client,
    /// `http://addr/socket.io/`.
    pub endpoint: String,
    /// The Engine.IO session id.
    pub sid: String,
    /// The open packet's JSON (`sid`, `upgrades`, `pingInterval`, `pingTimeout`, `maxPayload`).
    pub open: Value,
    /// Bound on one GET (a GET waits up to the ping interval when nothing is queued).
    pub get_timeout: Duration,
}

impl RawPolling {
    /// Opens a session at the default path.
    pub async fn handshake(addr: SocketAddr) -> RawPolling {
        RawPolling::handshake_at(&endpoint(addr, "/socket.io/")).await
    }

    /// Opens a session at `endpoint` (`http://addr/path/`); panics unless it is accepted.
    pub async fn handshake_at(endpoint: &str) -> RawPolling {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let url = format!("{endpoint}?EIO=4&transport=polling");
        let resp = http_request(&http, Method::GET, &url, &[], None).await;
        resp.expect_status(200);
        let packets = split_payload(&resp.body);
        let open = parse_open(packets.first().expect("empty handshake answer"));
        let sid = open["sid"]
            .as_str()
            .expect("open packet without sid")
            .to_string();
        RawPolling {
            http,
            endpoint: endpoint.to_string(),
            sid,
            open,
            get_timeout: Duration::from_secs(40),
        }
    }

    /// Any request at the endpoint: `query` without `?`, headers as given.
    pub async fn request(
        endpoint: &str,
        method: Method,
        query: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> HttpResponse {
        let http = super::admin::http_client();
        let url = if query.is_empty() {
            endpoint.to_string()
        } else {
            format!("{endpoint}?{query}")
        };
        http_request(&http, method, &url, headers, body).await
    }

    /// The session's URL (`...?EIO=4&transport=polling&sid=...`).
    pub fn url(&self) -> String {
        format!("{}?EIO=4&transport=polling&sid={}", self.endpoint, self.sid)
    }

    /// One GET; panics if it takes over `get_timeout`.
    pub async fn get(&self) -> HttpResponse {
        self.get_within(self.get_timeout)
            .await
            .unwrap_or_else(|| panic!("polling GET got no answer within {:?}", self.get_timeout))
    }

    /// One GET, or `None` when it is still pending after `timeout` (the GET is dropped).
    pub async fn get_within(&self, timeout: Duration) -> Option<HttpResponse> {
        let url = self.url();
        tokio::time::timeout(
            timeout,
            http_request(&self.http, Method::GET, &url, &[], None),
        )
        .await
        .ok()
    }

    /// One POST of `body` as `text/plain;charset=UTF-8`.
    pub async fn post(&self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.post_with(&[("content-type", "text/plain;charset=UTF-8")], body)
            .await
    }

    /// One POST with the given headers.
    pub async fn post_with(
        &self,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> HttpResponse {
        let url = self.url();
        tokio::time::timeout(
            TIMEOUT,
            http_request(&self.http, Method::POST, &url, headers, Some(body.into())),
        )
        .await
        .expect("polling POST got no answer in time")
    }

    /// POSTs `packets` as one payload; panics unless the answer is 200.
    pub async fn send(&self, packets: &[&str]) {
        self.post(polling_payload(packets)).await.expect_status(200);
    }

    /// GETs once and splits the payload; panics unless the answer is 200.
    pub async fn recv(&self) -> Vec<String> {
        let resp = self.get().await;
        resp.expect_status(200);
        split_payload(&resp.body)
    }

    /// GETs until a packet matches `pred` (answering pings with pongs); returns it, or
    /// `None` after `timeout`.
    pub async fn recv_until(
        &self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let resp = self.get_within(left).await?;
            resp.expect_status(200);
            for packet in split_payload(&resp.body) {
                if pred(&packet) {
                    return Some(packet);
                }
                if packet == "2" {
                    self.send(&["3"]).await;
                }
            }
        }
    }

    /// GETs until the packet `packet` arrives (answering pings); panics when it does not
    /// within [`TIMEOUT`].
    pub async fn expect_packet(&self, packet: &str) {
        if self.recv_until(|p| p == packet, TIMEOUT).await.is_none() {
            panic!("no {packet} within {TIMEOUT:?}");
        }
    }

    /// Waits until the session answers "Session ID unknown", reading whatever was still
    /// queued for it first (and the close packet, when the relay ended the session);
    /// panics (naming `context`) when it stays open for [`TIMEOUT`].
    pub async fn assert_gone(&self, context: &str) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(resp) = self.get_within(left).await else {
                panic!("{context}: polling session still open after {TIMEOUT:?}");
            };
            if resp.status == 400 {
                assert_eq!(
                    resp.json,
                    json!({"code": 1, "message": "Session ID unknown"}),
                    "{context}"
                );
                return;
            }
            resp.expect_status(200);
        }
    }

    /// Joins `ns` and returns the CONNECT answer's JSON (`{"sid": …}`); panics when refused.
    pub async fn connect_ns(&self, ns: &str) -> Value {
        self.send(&[&connect_packet(ns)]).await;
        let packet = self
            .recv_until(|p| answers_connect(p, ns), TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no CONNECT answer for {ns}"));
        accepted_connect(&packet, ns)
    }
}

/// A WebSocket connection that sends whatever it is told.
pub struct RawWs {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The handshake answer's status.
    pub status: u16,
}

impl RawWs {
    /// `ws://addr{path}?{query}`.
    pub fn url(addr: SocketAddr, path: &str, query: &str) -> String {
        format!("ws://{addr}{path}?{query}")
    }

    /// Opens a WebSocket to `url` with extra handshake `headers` (no message size limit on
    /// our side). An `Err` carries a refused handshake (`Error::Http` with the response).
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<RawWs, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        for (name, value) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("bad header name"),
                HeaderValue::from_str(value).expect("bad header value"),
            );
        }
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let connect = tokio_tungstenite::connect_async_with_config(req, Some(config), true);
        let (ws, resp) = tokio::time::timeout(TIMEOUT, connect)
            .await
            .expect("WebSocket handshake timed out")?;
        Ok(RawWs {
            ws,
            status: resp.status().as_u16(),
        })
    }

    /// The HTTP status of a refused handshake (e.g. 400, 403), from [`connect`](Self::connect)'s error.
    pub fn refused_status(err: &tungstenite::Error) -> Option<u16> {
        match err {
            tungstenite::Error::Http(resp) => Some(resp.status().as_u16()),
            _ => None,
        }
    }

    /// Opens an Engine.IO WebSocket session at the default path and reads its open packet.
    pub async fn connect_eio(addr: SocketAddr) -> (RawWs, Value) {
        let url = RawWs::url(addr, "/socket.io/", "EIO=4&transport=websocket");
        let mut ws = RawWs::connect(&url, &[])
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake to {url} refused: {e}"));
        let open = ws
            .recv_text(TIMEOUT)
            .await
            .expect("no Engine.IO open packet");
        let open = parse_open(&open);
        (ws, open)
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.send_message(Message::binary(bytes.to_vec())).await;
    }

    /// Sends any message. Errors (the peer closed) are ignored: the test looks at what
    /// comes back.
    pub async fn send_message(&mut self, msg: Message) {
        let _ = tokio::time::timeout(TIMEOUT, self.ws.send(msg)).await;
    }

    /// Sends one raw frame: any opcode, any payload (even invalid UTF-8 as text), `fin` as
    /// given (false starts a fragmented message).
    pub async fn send_raw_frame(&mut self, opcode: OpCode, payload: Vec<u8>, fin: bool) {
        self.send_message(Message::Frame(Frame::message(payload, opcode, fin)))
            .await;
    }

    /// The next message, `Some(Err)` on a protocol error, `None` on timeout or end.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Result<Message, tungstenite::Error>> {
        tokio::time::timeout(timeout, self.ws.next())
            .await
            .ok()
            .flatten()
    }

    /// The next text message (binary ones are skipped; WebSocket pings are answered by the
    /// library); `None` on timeout, close or error.
    pub async fn recv_text(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await? {
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Reads text messages until one matches `pred` (answering Engine.IO pings); `None`
    /// after `timeout` or when the connection ends.
    pub async fn recv_until(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let text = self.recv_text(left).await?;
            if pred(&text) {
                return Some(text);
            }
            if text == "2" {
                self.send_text("3").await;
            }
        }
    }

    /// Reads until the packet `packet` arrives (answering pings); panics when it does not
    /// within [`TIMEOUT`] or the connection ends.
    pub async fn expect_packet(&mut self, packet: &str) {
        if self.recv_until(|p| p == packet, TIMEOUT).await.is_none() {
            panic!("no {packet} within {TIMEOUT:?}");
        }
    }

    /// Joins `ns` and returns the CONNECT answer's JSON; panics when refused.
    pub async fn connect_ns(&mut self, ns: &str) -> Value {
        self.send_text(&connect_packet(ns)).await;
        let packet = self
            .recv_until(|p| answers_connect(p, ns), TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no CONNECT answer for {ns}"));
        accepted_connect(&packet, ns)
    }

    /// Whether the server ends the connection (close frame, EOF or error) within `timeout`,
    /// reading and dropping whatever comes before.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Sends a close frame and waits briefly for the server's.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
        let _ = self.closed_within(Duration::from_secs(2)).await;
    }
}
