//! A minimal Socket.IO client over a raw WebSocket (Engine.IO v4, Socket.IO v5, namespace `/`).
//!
//! Each connected client is one task that answers Engine.IO pings and, for every event, reads
//! the sequence number and send timestamp the load generator put in its data. The shared
//! state and [`connect_many`] serve the HTTP long-polling clients of [`crate::polling`] too.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::Transport;
use crate::polling::{self, Polling};
use crate::stats::Histogram;

/// State shared by every client task and the driver.
pub struct Shared {
    /// Origin of the timestamps carried in events.
    pub epoch: Instant,
    /// Events with a sequence number at or above this one belong to the current phase.
    pub phase_start_seq: AtomicU64,
    /// Events of the current phase received, all clients together.
    pub received: AtomicU64,
    /// Events of an earlier phase received late.
    pub stale: AtomicU64,
    /// Events whose data could not be read.
    pub malformed: AtomicU64,
    /// Connections that ended while the driver still wanted them.
    pub closed: AtomicU64,
    /// Push-to-receive latency of this phase's events, nanoseconds.
    pub latency: Histogram,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            phase_start_seq: AtomicU64::new(0),
            received: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            latency: Histogram::default(),
        })
    }

    /// Nanoseconds since [`Shared::epoch`].
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Starts a new phase: events numbered below `seq` are no longer counted.
    pub fn begin_phase(&self, seq: u64) {
        self.phase_start_seq.store(seq, Ordering::SeqCst);
        self.received.store(0, Ordering::SeqCst);
        self.stale.store(0, Ordering::SeqCst);
        self.malformed.store(0, Ordering::SeqCst);
        self.latency.reset();
    }
}

/// A TCP stream that first yields bytes read past the end of the HTTP upgrade response.
pub struct Conn {
    pre: Vec<u8>,
    pos: usize,
    tcp: TcpStream,
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.pre.len() {
            let n = buf.remaining().min(self.pre.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.pre[start..start + n]);
            self.pos += n;
            if self.pos == self.pre.len() {
                self.pre = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Where the Socket.IO server listens.
#[derive(Clone, Debug)]
pub struct SioTarget {
    pub addr: SocketAddr,
    /// Engine.IO path, with leading and trailing slash.
    pub path: String,
    /// The Socket.IO CONNECT packet: `40`, or `40` and an auth payload (`--auth`).
    pub connect_packet: Vec<u8>,
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the unsigned integer right after `key` (e.g. `"s":`) in `buf`.
pub fn number_after(buf: &[u8], key: &[u8]) -> Option<u64> {
    let mut start = find(buf, key)? + key.len();
    while buf.get(start).is_some_and(|b| b.is_ascii_whitespace()) {
        start += 1;
    }
    let digits = buf[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in &buf[start..start + digits] {
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

async fn upgrade(target: &SioTarget) -> io::Result<Conn> {
    let mut tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let req = format!(
        "GET {}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: c2lvLXJlbGF5LWxvYWQtMQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.addr
    );
    tcp.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    let end = loop {
        if buf.len() > 16 * 1024 {
            return Err(io::Error::other("upgrade response headers too long"));
        }
        let mut chunk = [0u8; 1024];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::other("closed during the upgrade"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
        return Err(io::Error::other(format!(
            "upgrade refused: {}",
            String::from_utf8_lossy(line)
        )));
    }
    let pre = buf.split_off(end);
    Ok(Conn { pre, pos: 0, tcp })
}

async fn next_text(ws: &mut WebSocket<Conn>) -> io::Result<Vec<u8>> {
    loop {
        let frame = ws.read_frame().await.map_err(io::Error::other)?;
        match frame.opcode {
            OpCode::Text => return Ok(frame.payload.to_vec()),
            OpCode::Close => return Err(io::Error::other("closed by the server")),
            _ => {}
        }
    }
}

/// The `sid` of an Engine.IO open packet's or a Socket.IO CONNECT answer's JSON object.
pub fn sid_of(json: &[u8]) -> io::Result<String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(io::Error::other)?;
    v.get("sid")
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .ok_or_else(|| io::Error::other("open packet or connect answer without sid"))
}

/// The socket id if `p` is the answer to the CONNECT (`40{"sid":…}`), an error if it is a
/// refusal (`44…`), `None` for any other packet.
pub fn connect_answer(p: &[u8]) -> io::Result<Option<String>> {
    if p.starts_with(b"44") {
        return Err(io::Error::other(format!(
            "connect refused: {}",
            String::from_utf8_lossy(p)
        )));
    }
    p.strip_prefix(b"40").map(sid_of).transpose()
}

/// Opens one Socket.IO connection to namespace `/` and returns its socket id; with
/// `namespace` false, stops after the Engine.IO handshake and returns the Engine.IO sid.
pub async fn connect(target: &SioTarget, namespace: bool) -> io::Result<(String, WebSocket<Conn>)> {
    let conn = upgrade(target).await?;
    let mut ws = WebSocket::after_handshake(conn, Role::Client);
    let open = next_text(&mut ws).await?;
    let Some(open) = open.strip_prefix(b"0") else {
        return Err(io::Error::other("expected an Engine.IO open packet"));
    };
    if !namespace {
        return Ok((sid_of(open)?, ws));
    }
    ws.write_frame(Frame::text(Payload::Borrowed(&target.connect_packet)))
        .await
        .map_err(io::Error::other)?;
    loop {
        let p = next_text(&mut ws).await?;
        if p.as_slice() == b"2" {
            ws.write_frame(Frame::text(Payload::Borrowed(b"3")))
                .await
                .map_err(io::Error::other)?;
            continue;
        }
        if let Some(sid) = connect_answer(&p)? {
            return Ok((sid, ws));
        }
    }
}

/// Serves one connected client until the connection ends or the task is aborted.
pub async fn run(mut ws: WebSocket<Conn>, shared: Arc<Shared>) {
    loop {
        let frame = match ws.read_frame().await {
            Ok(f) => f,
            Err(_) => break,
        };
        match frame.opcode {
            OpCode::Text => {
                let p: &[u8] = &frame.payload;
                match p {
                    b"2" => {
                        let pong = ws.write_frame(Frame::text(Payload::Borrowed(b"3")));
                        if pong.await.is_err() {
                            break;
                        }
                    }
                    [b'4', b'2', ..] => on_event(p, &shared),
                    [b'1', ..] => break,
                    _ => {}
                }
            }
            OpCode::Close => break,
            _ => {}
        }
    }
    shared.closed.fetch_add(1, Ordering::Relaxed);
}

fn on_event(p: &[u8], shared: &Shared) {
    let (Some(seq), Some(sent)) = (number_after(p, b"\"s\":"), number_after(p, b"\"t\":")) else {
        shared.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if seq < shared.phase_start_seq.load(Ordering::Relaxed) {
        shared.stale.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let now = shared.now_ns();
    shared.latency.record(now.saturating_sub(sent));
    shared.received.fetch_add(1, Ordering::Relaxed);
}

/// A set of connected clients; dropping it closes every connection.
pub struct Clients {
    pub sids: Vec<String>,
    pub tasks: JoinSet<()>,
    pub failed: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

/// A connected client over either transport.
enum Session {
    Websocket(WebSocket<Conn>),
    Polling(Polling),
}

async fn open(
    target: &SioTarget,
    transport: Transport,
    namespace: bool,
) -> io::Result<(String, Session)> {
    Ok(match transport {
        Transport::Websocket => {
            let (sid, ws) = connect(target, namespace).await?;
            (sid, Session::Websocket(ws))
        }
        Transport::Polling => {
            let (sid, p) = polling::connect(target, namespace).await?;
            (sid, Session::Polling(p))
        }
    })
}

/// Connects `n` clients over `transport`, at most `concurrency` handshakes at a time.
pub async fn connect_many(
    target: &SioTarget,
    transport: Transport,
    n: usize,
    concurrency: usize,
    namespace: bool,
    timeout: Duration,
    shared: &Arc<Shared>,
) -> Clients {
    let started = Instant::now();
    let mut clients = Clients {
        sids: Vec::with_capacity(n),
        tasks: JoinSet::new(),
        failed: 0,
        first_error: None,
        elapsed: Duration::ZERO,
    };
    let mut attempts = futures_util::stream::iter(0..n)
        .map(|_| async move {
            match tokio::time::timeout(timeout, open(target, transport, namespace)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::other("connect timed out")),
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = attempts.next().await {
        match r {
            Ok((sid, session)) => {
                clients.sids.push(sid);
                let shared = shared.clone();
                match session {
                    Session::Websocket(ws) => clients.tasks.spawn(run(ws, shared)),
                    Session::Polling(p) => clients.tasks.spawn(polling::run(p, shared)),
                };
            }
            Err(e) => {
                clients.failed += 1;
                clients.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    clients.elapsed = started.elapsed();
    clients
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers() {
        let p = br#"42["m",{"s":17,"t":123456789}]"#;
        assert_eq!(number_after(p, b"\"s\":"), Some(17));
        assert_eq!(number_after(p, b"\"t\":"), Some(123_456_789));
        assert_eq!(number_after(p, b"\"x\":"), None);
        assert_eq!(number_after(br#"{"s":}"#, b"\"s\":"), None);
        assert_eq!(
            number_after(br#"{"recipients": 12}"#, b"\"recipients\":"),
            Some(12)
        );
    }

    #[test]
    fn reads_connect_answers() {
        let sid = connect_answer(br#"40{"sid":"abc"}"#).unwrap();
        assert_eq!(sid.as_deref(), Some("abc"));
        assert!(connect_answer(b"2").unwrap().is_none());
        assert!(connect_answer(br#"44{"message":"no"}"#).is_err());
        assert!(connect_answer(b"40{}").is_err());
    }
}
