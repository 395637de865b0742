//! A hook backend for the tests: a real HTTP server on `127.0.0.1:0` that records every
//! request (headers and JSON body) and answers as the test's responder says.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;

/// One request the backend received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub fn delivery(&self) -> String {
        self.header("x-sio-relay-delivery").to_owned()
    }

    /// Checks the signature and the timestamp as a backend should.
    pub fn assert_signed(&self, secret: &str) {
        let timestamp: u64 = self
            .header("x-sio-relay-timestamp")
            .parse()
            .expect("a numeric timestamp");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            now.abs_diff(timestamp) < 60,
            "timestamp {timestamp}, now {now}"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&self.raw);
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(self.header("x-sio-relay-signature"), format!("v1={want}"));
        let delivery = self.delivery();
        assert!(
            delivery.len() >= 16 && delivery.chars().all(|c| c.is_ascii_alphanumeric()),
            "{delivery}"
        );
        assert_eq!(self.header("content-type"), "application/json");
    }
}

/// What the backend answers: a status and a body.
pub type Answer = (u16, String);
type Responder = Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// A running backend; stops when dropped.
pub struct Backend {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Received>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Backend {
    /// Starts a backend answering every request with what `respond` returns for its body.
    pub async fn start<F, Fut>(respond: F) -> Backend
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let respond: Responder = Arc::new(move |body| Box::pin(respond(body)));
        let (tx, requests) = mpsc::unbounded_channel();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, raw: Bytes| {
                let respond = respond.clone();
                let tx = tx.clone();
                async move {
                    let body: Value = serde_json::from_slice(&raw).expect("hook body is JSON");
                    let _ = tx.send(Received {
                        headers,
                        body: body.clone(),
                        raw,
                    });
                    let (status, text) = respond(body).await;
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        text,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Backend {
            addr,
            requests,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next request, within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Received> {
        tokio::time::timeout(timeout, self.requests.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next request whose body matches `pred`; panics when none comes in 10 s.
    pub async fn wait(&mut self, mut pred: impl FnMut(&Received) -> bool) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(r) if pred(&r) => return r,
                Some(_) => {}
                None => panic!("no matching hook request within 10 s"),
            }
        }
    }
}
