//! `POST /v1/emit` answered without hyper, on plain-TCP admin connections.
//!
//! A push is mostly one small request on a keep-alive connection: `POST /v1/emit`, a bearer
//! token, a JSON object naming a sid or a room. Through hyper and the router its handling
//! in user space (header maps, routing, middleware, extension maps) costs about as much CPU
//! as the kernel's writes around it (docs/benchmarks.md). [`AdminListener`] therefore
//! serves each connection itself first. A request it can answer exactly as the router
//! would is sent and answered here, with the same checks, metrics, audit line and answer:
//! HTTP/1.1, `POST /v1/emit` without a query, a `Content-Length` body of at most
//! [`MAX_BODY`] bytes and `admin.max_body_bytes`, one valid token, one JSON object that
//! passes validation and the caller's scope and waits for no acknowledgement.
//!
//! At the first request it does not take, before doing anything of it, the connection goes
//! to hyper with the bytes already read put back in front ([`Rewound`]). Every other route,
//! every refusal and every other HTTP feature (chunked bodies, `Expect`, `Connection:
//! close`, `Idempotency-Key`, HTTP/2) is then the router's, as it always was.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use bytes::{Buf, Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::audit::Access;
use super::body::is_json_type;
use super::error::{ApiError, ErrorDetail};
use super::{AdminState, Call, emit};
use crate::config::AdminOp;

/// The most headers a request taken here may have.
const MAX_HEADERS: usize = 32;
/// The longest request head looked at; a longer one goes to hyper.
const MAX_HEAD: usize = 8 * 1024;
/// The largest body taken here. Larger pushes gain nothing from this path, and keeping
/// them out bounds what each idle connection's buffer grows to.
pub const MAX_BODY: usize = 64 * 1024;
/// What a read asks the kernel for at least.
const READ_SIZE: usize = 4 * 1024;

/// A connection handed to hyper, and its peer.
type HandedOff = (Rewound, SocketAddr);

/// The plain-TCP admin listener: serves each connection's plain pushes itself and yields
/// to `axum::serve` the connections whose requests it leaves to the router.
pub struct AdminListener {
    listener: TcpListener,
    state: AdminState,
    stop: CancellationToken,
    connections: TaskTracker,
    hand_off: mpsc::UnboundedSender<HandedOff>,
    handed_off: mpsc::UnboundedReceiver<HandedOff>,
}

impl AdminListener {
    /// Serves `listener`'s connections for `state`. When `stop` is cancelled, connections
    /// between two requests close; one in the middle of a request finishes it first.
    pub fn new(listener: TcpListener, state: AdminState, stop: CancellationToken) -> Self {
        let (hand_off, handed_off) = mpsc::unbounded_channel();
        Self {
            listener,
            state,
            stop,
            connections: TaskTracker::new(),
            hand_off,
            handed_off,
        }
    }

    /// The connections served here (not those handed to hyper); wait for them once
    /// `axum::serve` has ended.
    pub fn connections(&self) -> TaskTracker {
        self.connections.clone()
    }
}

impl axum::serve::Listener for AdminListener {
    type Io = Rewound;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> HandedOff {
        loop {
            tokio::select! {
                Some(handed_off) = self.handed_off.recv() => return handed_off,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        // Without TCP_NODELAY small answers wait for delayed ACKs.
                        let _ = stream.set_nodelay(true);
                        let connection = Connection {
                            stream,
                            buffer: BytesMut::new(),
                            state: self.state.clone(),
                        };
                        let hand_off = self.hand_off.clone();
                        let stop = self.stop.clone();
                        self.connections.spawn(async move {
                            if let Some(stream) = connection.serve(&stop).await {
                                let _ = hand_off.send((stream, remote));
                            }
                        });
                    }
                    Err(error) => {
                        // Out of file descriptors, mostly: wait rather than spin.
                        tracing::warn!(%error, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// One admin connection while its requests are answered here.
struct Connection {
    stream: TcpStream,
    /// Read and not yet answered.
    buffer: BytesMut,
    state: AdminState,
}

/// What became of one request.
enum Step {
    Answered,
    /// Left to hyper: nothing of it was done.
    HandOff,
    Closed,
}

impl Connection {
    /// Answers requests until one is left to hyper (then returns the connection for it)
    /// or the connection ends.
    async fn serve(mut self, stop: &CancellationToken) -> Option<Rewound> {
        loop {
            if self.buffer.is_empty() {
                // Between requests the connection may end, and shutdown closes it.
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    more = self.read_more() => if !more { return None },
                }
            }
            match self.next_request().await {
                Step::Answered => {}
                Step::HandOff => {
                    return Some(Rewound {
                        read_first: self.buffer.freeze(),
                        stream: self.stream,
                    });
                }
                Step::Closed => return None,
            }
        }
    }

    /// Reads what the client sent next; `false` when the connection ended.
    async fn read_more(&mut self) -> bool {
        self.buffer.reserve(READ_SIZE);
        matches!(self.stream.read_buf(&mut self.buffer).await, Ok(n) if n > 0)
    }

    /// Takes the request at the start of the buffer, reading the rest of it, if it is a
    /// plain push; leaves the buffer as it is otherwise.
    async fn next_request(&mut self) -> Step {
        let call = Call::new(&Method::POST, "/v1/emit");
        let head = loop {
            match parse_head(&self.buffer) {
                Parsed::Push(head) => break head,
                Parsed::Partial if self.buffer.len() < MAX_HEAD => {
                    if !self.read_more().await {
                        return Step::Closed;
                    }
                }
                Parsed::Partial | Parsed::Other => return Step::HandOff,
            }
        };
        let live = self.state.live();
        if head.body_length > MAX_BODY || head.body_length as u64 > live.max_body_bytes {
            return Step::HandOff;
        }
        let length = head.length + head.body_length;
        while self.buffer.len() < length {
            if !self.read_more().await {
                return Step::Closed;
            }
        }
        let authorization = head.authorization.map(|range| &self.buffer[range]);
        let Some(caller) = live.tokens.caller_of(authorization.into_iter()) else {
            return Step::HandOff;
        };
        let body = &self.buffer[head.length..length];
        let Ok(value @ Value::Object(_)) = serde_json::from_slice(body) else {
            return Step::HandOff;
        };
        let Ok(request) = emit::parse(value, live.max_ack_timeout_ms, self.state.user_rooms())
        else {
            return Step::HandOff;
        };
        let access = Access::new(caller);
        if request.ack_timeout.is_some()
            || access.check(AdminOp::Emit, &request.target, &[]).is_err()
        {
            return Step::HandOff;
        }
        // Taken: from here on the request is answered here, whatever happens.
        self.buffer.advance(length);
        let sent = emit::send(&self.state, request).await.and_then(|answer| {
            serde_json::to_vec(&answer).map_err(|error| ApiError::Internal(error.to_string()))
        });
        let (status, content, detail) = match sent {
            Ok(content) => (StatusCode::OK, content, None),
            Err(error) => refusal(error).await,
        };
        call.record(&self.state, status, Some(&access), detail.as_deref());
        match self.write_answer(status, &content).await {
            true => Step::Answered,
            false => Step::Closed,
        }
    }

    /// Writes a JSON answer with the headers hyper gives the router's.
    async fn write_answer(&mut self, status: StatusCode, content: &[u8]) -> bool {
        use std::io::Write as _;
        let mut answer = Vec::with_capacity(128 + content.len());
        let _ = write!(
            answer,
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             date: {}\r\n\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or_default(),
            content.len(),
            httpdate::fmt_http_date(SystemTime::now()),
        );
        answer.extend_from_slice(content);
        self.stream.write_all(&answer).await.is_ok()
    }
}

/// The status, envelope and logged detail of an emit that failed once taken (the cluster
/// unavailable, say): what the router would answer.
async fn refusal(error: ApiError) -> (StatusCode, Vec<u8>, Option<String>) {
    let response = error.into_response();
    let status = response.status();
    let detail = response
        .extensions()
        .get::<ErrorDetail>()
        .map(|ErrorDetail(detail)| detail.clone());
    let content = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    (status, content, detail)
}

/// What the buffer starts with.
#[derive(Debug, PartialEq)]
enum Parsed {
    /// The head of a push this path may take (its body still to be checked).
    Push(Head),
    /// Not a whole head yet.
    Partial,
    /// Anything else: hyper's.
    Other,
}

/// The head of a candidate push.
#[derive(Debug, PartialEq)]
struct Head {
    /// The head's length in bytes.
    length: usize,
    /// `Content-Length`.
    body_length: usize,
    /// Where the one `Authorization` value lies in the buffer.
    authorization: Option<Range<usize>>,
}

/// Parses the head at the start of `bytes`: a [`Parsed::Push`] only for HTTP/1.1 `POST
/// /v1/emit` with exactly one `Content-Length`, at most one `Authorization`, a JSON
/// `Content-Type` if any, `Connection: keep-alive` if any, and none of the headers whose
/// handling is hyper's or the router's.
fn parse_head(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let length = match request.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if request.method != Some("POST")
        || request.path != Some("/v1/emit")
        || request.version != Some(1)
    {
        return Parsed::Other;
    }
    let mut body_length = None;
    let mut authorization = None;
    for header in request.headers.iter() {
        let name = header.name;
        let value = header.value;
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        if is("content-length") {
            match (body_length, decimal(value)) {
                (None, Some(declared)) => body_length = Some(declared),
                _ => return Parsed::Other,
            }
        } else if is("authorization") {
            if authorization.is_some() {
                return Parsed::Other;
            }
            // httparse gives slices of `bytes`: the value's place there.
            let start = value.as_ptr() as usize - bytes.as_ptr() as usize;
            authorization = Some(start..start + value.len());
        } else if is("content-type") {
            if !is_json_type(value) {
                return Parsed::Other;
            }
        } else if is("connection") {
            if !value.eq_ignore_ascii_case(b"keep-alive") {
                return Parsed::Other;
            }
        } else if is("transfer-encoding")
            || is("expect")
            || is("upgrade")
            || is(super::idempotency::HEADER)
        {
            return Parsed::Other;
        }
    }
    match body_length {
        Some(body_length) => Parsed::Push(Head {
            length,
            body_length,
            authorization,
        }),
        None => Parsed::Other,
    }
}

/// A `Content-Length` value: ASCII digits only.
fn decimal(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A connection with bytes already read from it put back in front, for hyper.
pub struct Rewound {
    read_first: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewound {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_first.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.read_first.len().min(buf.remaining());
        buf.put_slice(&this.read_first.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewound {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH: &str = "POST /v1/emit HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n\
        Authorization: Bearer t\r\nContent-Length: 26\r\n\r\n{\"to\":\"r\",\"event\":\"e\"}    ";

    fn head(request: &str) -> Parsed {
        parse_head(request.as_bytes())
    }

    #[test]
    fn a_plain_push_is_taken_with_its_token_and_length() {
        let Parsed::Push(pushed) = head(PUSH) else {
            panic!("not taken: {PUSH}");
        };
        assert_eq!(pushed.length, PUSH.len() - 26);
        assert_eq!(pushed.body_length, 26);
        assert_eq!(&PUSH[pushed.authorization.unwrap()], "Bearer t");
        for taken in [
            PUSH.replace(
                "Content-Type: application/json",
                "content-type: application/json; charset=utf-8",
            ),
            PUSH.replace("Content-Type: application/json", "Connection: keep-alive"),
            PUSH.replace("Authorization: Bearer t\r\n", ""),
        ] {
            assert!(matches!(head(&taken), Parsed::Push(_)), "{taken}");
        }
        assert_eq!(head(&PUSH[..40]), Parsed::Partial);
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        let variants = [
            PUSH.replace("POST", "GET"),
            PUSH.replace("/v1/emit", "/v1/emit?x=1"),
            PUSH.replace("/v1/emit", "/v1/join"),
            PUSH.replace("/v1/emit", "/v1/emit/"),
            PUSH.replace("HTTP/1.1", "HTTP/1.0"),
            PUSH.replace("Content-Length: 26", "Content-Length: +26"),
            PUSH.replace(
                "Content-Length: 26",
                "Content-Length: 26\r\nContent-Length: 26",
            ),
            PUSH.replace("Content-Length: 26", "Transfer-Encoding: chunked"),
            PUSH.replace("Host: relay", "Expect: 100-continue"),
            PUSH.replace("Host: relay", "Idempotency-Key: k1"),
            PUSH.replace("Host: relay", "Connection: close"),
            PUSH.replace("Host: relay", "Authorization: Bearer u"),
            PUSH.replace("application/json", "text/plain"),
            PUSH.replace("Host: relay", "Upgrade: h2c"),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into(),
            "POST /v1/emit HTTP/1.1\r\nBad Header\r\n\r\n".into(),
        ];
        for request in &variants {
            assert_eq!(head(request), Parsed::Other, "{request}");
        }
        let crowded = PUSH.replace("Host: relay\r\n", &"X-A: 1\r\n".repeat(MAX_HEADERS));
        assert_eq!(head(&crowded), Parsed::Other);
    }
}
