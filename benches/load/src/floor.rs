//! `floor`: what the kernel alone charges a server for the socket traffic of the load
//! scenarios, measured with an "ideal server" that does no user-space work.
//!
//! On loopback most of a relay's CPU per delivered message is kernel time: every delivery is
//! one TCP send, and the receiving end's TCP work (softirq) runs in the sender's context and is
//! charged to it. To tell how much of a server's figure is its own work and how much is the
//! unavoidable cost of the system calls and of TCP, this subcommand re-executes this binary as
//! a child process (the hidden `floor-server` subcommand) that serves the same traffic with as
//! little as possible in user space: one thread, plain non-blocking sockets on epoll (mio), no
//! allocation per message, every byte it sends prebuilt, no parsing beyond reading a port
//! number at a fixed offset, and no read until `EAGAIN` when the protocol says nothing more can
//! have arrived. This process plays the clients, as in the other scenarios, and reads the
//! child's CPU time (user and system) and RSS from `/proc` around each measured phase.
//!
//! - `fanout`: every 200 ms the child writes one prebuilt WebSocket text frame (a ~50-byte
//!   Socket.IO event) to each of `--clients` connections: one `send` per delivery, like a
//!   broadcast. CPU per delivered frame.
//! - `unicast`: pushes at a fixed rate as HTTP/1.1 POST requests on keep-alive admin
//!   connections; for each the child does one read, one write of the frame to the client the
//!   request names, one write of a prebuilt `200` response. CPU per push, and the latency from
//!   the request written to the frame read.
//! - `connect`: WebSocket upgrade request, `101` response with the Engine.IO open packet,
//!   masked Socket.IO `40` connect, `40{"sid":…}` answer; connections stay open. CPU per
//!   connection (the whole phase, accept included) and RSS per connection.
//!
//! These are floors: a real server also parses, routes, allocates and wakes tasks, and usually
//! reads until `EAGAIN`. Everything binds to 127.0.0.1 and every phase is bounded in time.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::stats::{self, Histogram, Probe};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FloorScenario {
    /// One prebuilt frame to every connection every 200 ms: CPU per delivery.
    Fanout,
    /// HTTP push in, frame out to one client, HTTP response out: CPU per push.
    Unicast,
    /// WebSocket upgrade and Socket.IO connect: CPU and RSS per connection.
    Connect,
}

impl FloorScenario {
    fn name(self) -> &'static str {
        match self {
            FloorScenario::Fanout => "fanout",
            FloorScenario::Unicast => "unicast",
            FloorScenario::Connect => "connect",
        }
    }
}

#[derive(Args, Clone)]
pub struct FloorArgs {
    /// Scenarios to run, in order (comma-separated); each gets a fresh server process.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "fanout,unicast,connect"
    )]
    scenario: Vec<FloorScenario>,
    /// Connections written to in `fanout`.
    #[arg(long, default_value_t = 2_000)]
    clients: usize,
    /// Interval between two fan-outs, milliseconds.
    #[arg(long, default_value_t = 200)]
    tick_ms: u64,
    /// Client connections in `unicast`.
    #[arg(long, default_value_t = 1_000)]
    unicast_clients: usize,
    /// Pushes per second in `unicast`.
    #[arg(long, default_value_t = 5_000.0)]
    unicast_rate: f64,
    /// Keep-alive admin connections in `unicast`.
    #[arg(long, default_value_t = 64)]
    http_conns: usize,
    /// Connections opened in `connect`.
    #[arg(long, default_value_t = 5_000)]
    connects: usize,
    /// Connection attempts in flight at once in `connect`.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Measured time of `fanout` and `unicast` (`8`, `8s`, `500ms`).
    #[arg(long, default_value = "8s", value_parser = crate::secs)]
    duration: f64,
    /// Unmeasured time before measuring.
    #[arg(long, default_value = "2s", value_parser = crate::secs)]
    warmup: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServerMode {
    Fanout,
    Unicast,
    Connect,
}

/// The ideal server's own arguments (set by the parent).
#[derive(Args, Clone)]
pub struct ServerArgs {
    #[arg(long, value_enum)]
    mode: ServerMode,
    #[arg(long, default_value_t = 200)]
    tick_ms: u64,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 120)]
    limit_secs: u64,
}

// ---------------------------------------------------------------------------------------------
// The bytes on the wire, shared by both ends.

/// The Socket.IO event every delivery carries (`42["tick",{…}]`), as a server→client frame.
const EVENT: &[u8] = br#"42["tick",{"seq":12345,"payload":"xxxxxxxxxxxxxxxx"}]"#;
/// Engine.IO open packet (sent after the 101 in the same write).
const OPEN: &[u8] = br#"0{"sid":"AAAAAAAAAAAAAAAAAAAA","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
/// Socket.IO connect answer.
const CONNECTED: &[u8] = br#"40{"sid":"BBBBBBBBBBBBBBBBBBBB"}"#;
const UPGRADE_REQ: &[u8] = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\
Host: 127.0.0.1:29000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
User-Agent: sio-relay-load\r\n\r\n";
const UPGRADE_RESP: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
/// Masked client text frame holding `40` (6-byte header, 2 bytes of payload).
const CLIENT_CONNECT: [u8; 8] = {
    let mask = [0x12, 0x34, 0x56, 0x78];
    [
        0x81,
        0x82,
        mask[0],
        mask[1],
        mask[2],
        mask[3],
        b'4' ^ mask[0],
        b'0' ^ mask[1],
    ]
};
/// The push request; `PORT_MARK` is replaced with the target client's local port (5 digits).
const PUSH_REQ_BODY: &str = r#"{"to":"PPPPP-sid-abcdefghijk","event":"tick","data":{"seq":12345,"payload":"xxxxxxxxxxxxxxxx"}}"#;
const PORT_MARK: &[u8] = b"PPPPP";
const PUSH_RESP_BODY: &str = r#"{"recipients":1}"#;

/// An unmasked server→client text frame (payload under 126 bytes).
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![0x81, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

fn push_request() -> Vec<u8> {
    format!(
        "POST /v1/emit HTTP/1.1\r\nhost: 127.0.0.1:29001\r\ncontent-type: application/json\r\n\
authorization: Bearer 0123456789abcdef0123456789abcdef\r\ncontent-length: {}\r\n\r\n{PUSH_REQ_BODY}",
        PUSH_REQ_BODY.len()
    )
    .into_bytes()
}

fn push_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
date: Thu, 01 Jan 2026 00:00:00 GMT\r\nvary: origin\r\n\r\n{PUSH_RESP_BODY}",
        PUSH_RESP_BODY.len()
    )
    .into_bytes()
}

fn port_offset(req: &[u8]) -> usize {
    req.windows(PORT_MARK.len())
        .position(|w| w == PORT_MARK)
        .expect("request template holds the port mark")
}

/// Sets the listen backlog (mio's `bind` uses 128, too few for bursts of connects).
#[allow(unsafe_code)]
fn set_backlog(l: &TcpListener, backlog: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `l`, which is alive and bound; calling listen() again on
    // a listening socket only changes its backlog.
    let r = unsafe { libc::listen(l.as_raw_fd(), backlog) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn loopback_listener() -> io::Result<TcpListener> {
    let l = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    set_backlog(&l, 4096)?;
    Ok(l)
}

// ---------------------------------------------------------------------------------------------
// The ideal server (child process).

const CLIENT_LISTENER: Token = Token(usize::MAX - 1);
const ADMIN_LISTENER: Token = Token(usize::MAX - 2);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `connect`: waiting for the upgrade request.
    Upgrade,
    /// `connect`: waiting for the Socket.IO connect frame (bytes of it seen so far).
    SioConnect(usize),
    /// Connected; nothing more expected.
    Open,
    /// `unicast`: an admin connection.
    Admin,
}

struct SConn {
    stream: TcpStream,
    phase: Phase,
}

/// Writes all of `buf` in one `send`; a short write counts as a failure (never seen on
/// loopback with these sizes and buffers).
fn send(s: &mut TcpStream, buf: &[u8], failed: &mut u64) {
    match s.write(buf) {
        Ok(n) if n == buf.len() => {}
        _ => *failed += 1,
    }
}

/// Runs the ideal server: prints `CLIENT_ADDR ADMIN_ADDR` on stdout, then serves until killed
/// or `--limit-secs` have passed.
pub fn serve(args: ServerArgs) -> io::Result<()> {
    stats::raise_fd_limit();
    let deadline = Instant::now() + Duration::from_secs(args.limit_secs);
    let mut poll = Poll::new()?;
    let mut clients_l = loopback_listener()?;
    let mut admin_l = loopback_listener()?;
    poll.registry()
        .register(&mut clients_l, CLIENT_LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(&mut admin_l, ADMIN_LISTENER, Interest::READABLE)?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "{} {}", clients_l.local_addr()?, admin_l.local_addr()?)?;
        out.flush()?;
    }

    let frame = ws_frame(EVENT);
    let mut connect_answer = UPGRADE_RESP.to_vec();
    connect_answer.extend_from_slice(&ws_frame(OPEN));
    let connected = ws_frame(CONNECTED);
    let req_len = push_request().len();
    let port_at = port_offset(&push_request());
    let resp = push_response();

    let mut conns: Vec<SConn> = Vec::with_capacity(8192);
    // Client connection index by peer port, for `unicast`.
    let mut by_port: Vec<u32> = vec![u32::MAX; 65536];
    let mut buf = [0u8; 4096];
    let mut failed = 0u64;
    let mut events = Events::with_capacity(1024);
    let tick = Duration::from_millis(args.tick_ms.max(1));
    let mut next_tick = Instant::now() + tick;

    while Instant::now() < deadline {
        let timeout = if args.mode == ServerMode::Fanout {
            next_tick.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(500)
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            match ev.token() {
                t @ (CLIENT_LISTENER | ADMIN_LISTENER) => loop {
                    let l = if t == CLIENT_LISTENER {
                        &clients_l
                    } else {
                        &admin_l
                    };
                    let (mut stream, peer) = match l.accept() {
                        Ok(x) => x,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    };
                    let _ = stream.set_nodelay(true);
                    let i = conns.len();
                    let phase = match (t, args.mode) {
                        (ADMIN_LISTENER, _) => Phase::Admin,
                        (_, ServerMode::Connect) => Phase::Upgrade,
                        _ => Phase::Open,
                    };
                    // Fan-out and unicast clients never send: no need to watch them.
                    if phase == Phase::Admin || phase == Phase::Upgrade {
                        poll.registry()
                            .register(&mut stream, Token(i), Interest::READABLE)?;
                    } else {
                        by_port[peer.port() as usize] = i as u32;
                    }
                    conns.push(SConn { stream, phase });
                },
                Token(i) => {
                    let Some(c) = conns.get_mut(i) else { continue };
                    // One read: the peer sends its next message only after our answer, so
                    // nothing else can be waiting (epoll signals every new arrival).
                    let n = match c.stream.read(&mut buf) {
                        Ok(0) => {
                            let _ = poll.registry().deregister(&mut c.stream);
                            c.phase = Phase::Open;
                            continue;
                        }
                        Ok(n) => n,
                        Err(_) => continue,
                    };
                    match c.phase {
                        Phase::Upgrade => {
                            if buf[..n].ends_with(b"\r\n\r\n") {
                                send(&mut c.stream, &connect_answer, &mut failed);
                                c.phase = Phase::SioConnect(0);
                            }
                        }
                        Phase::SioConnect(seen) => {
                            let seen = seen + n;
                            if seen >= CLIENT_CONNECT.len() {
                                send(&mut c.stream, &connected, &mut failed);
                                c.phase = Phase::Open;
                            } else {
                                c.phase = Phase::SioConnect(seen);
                            }
                        }
                        Phase::Admin => {
                            let target = if n == req_len {
                                buf[port_at..port_at + 5]
                                    .iter()
                                    .try_fold(0usize, |acc, d| {
                                        d.is_ascii_digit().then(|| acc * 10 + (d - b'0') as usize)
                                    })
                                    .and_then(|p| by_port.get(p).copied())
                                    .filter(|&j| j != u32::MAX)
                            } else {
                                None
                            };
                            if let Some(j) = target {
                                send(&mut conns[j as usize].stream, &frame, &mut failed);
                            } else {
                                failed += 1;
                            }
                            send(&mut conns[i].stream, &resp, &mut failed);
                        }
                        Phase::Open => {}
                    }
                }
            }
        }
        if args.mode == ServerMode::Fanout && Instant::now() >= next_tick {
            for c in conns.iter_mut() {
                send(&mut c.stream, &frame, &mut failed);
            }
            next_tick += tick;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + tick;
            }
        }
    }
    eprintln!("floor-server: time limit reached ({failed} failed writes)");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The clients (this process).

struct Server {
    child: Child,
    pid: u32,
    clients: SocketAddr,
    admin: SocketAddr,
}

impl Server {
    fn start(mode: &str, tick_ms: u64, limit_secs: u64) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .args([
                "floor-server",
                "--mode",
                mode,
                "--tick-ms",
                &tick_ms.to_string(),
                "--limit-secs",
                &limit_secs.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the floor server: {e}"))?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("floor server: {e}"))?;
        let mut addrs = line.split_whitespace().map(|a| a.parse::<SocketAddr>());
        match (addrs.next(), addrs.next()) {
            (Some(Ok(clients)), Some(Ok(admin))) => Ok(Self {
                pid: child.id(),
                child,
                clients,
                admin,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "floor server did not report its addresses: {line:?}"
                ))
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scenario's figures.
struct FloorRow {
    scenario: &'static str,
    conns: usize,
    count: u64,
    per: &'static str,
    user_us: f64,
    sys_us: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    rss_kib_per_conn: Option<f64>,
    tool_pct: f64,
    psi_pct: Option<f64>,
    note: Option<String>,
}

fn header() -> String {
    format!(
        "{:<9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>5} {:>7} {:>7} {:>8} {:>6} {:>5}",
        "scenario",
        "conns",
        "count",
        "per",
        "µs user",
        "µs sys",
        "µs total",
        "sys%",
        "p50 ms",
        "p99 ms",
        "KiB/conn",
        "tool%",
        "psi%"
    )
}

fn row_line(r: &FloorRow) -> String {
    let opt = |v: Option<f64>, p: usize| v.map_or_else(|| "-".to_string(), |v| format!("{v:.p$}"));
    let total = r.user_us + r.sys_us;
    format!(
        "{:<9} {:>6} {:>8} {:>8} {:>8.2} {:>8.2} {:>9.2} {:>5.0} {:>7} {:>7} {:>8} {:>6.0} {:>5}",
        r.scenario,
        r.conns,
        r.count,
        r.per,
        r.user_us,
        r.sys_us,
        total,
        if total > 0.0 {
            r.sys_us / total * 100.0
        } else {
            0.0
        },
        opt(r.p50_ms, 3),
        opt(r.p99_ms, 3),
        opt(r.rss_kib_per_conn, 2),
        r.tool_pct,
        opt(r.psi_pct, 0)
    )
}

/// Server user and system CPU microseconds between two probes, divided by `count`.
fn per_unit(p0: &Probe, p1: &Probe, count: u64) -> (f64, f64) {
    let (Some(a), Some(b)) = (p0.server, p1.server) else {
        return (0.0, 0.0);
    };
    let sys = b.sys_us.saturating_sub(a.sys_us) as f64;
    let all = b.cpu_us.saturating_sub(a.cpu_us) as f64;
    let n = count.max(1) as f64;
    ((all - sys).max(0.0) / n, sys / n)
}

/// Opens `n` connections one after the other (blocking connects; the server accepts them as
/// they come), then makes them non-blocking for mio.
fn connect_blocking(
    addr: SocketAddr,
    n: usize,
    deadline: Instant,
) -> Result<Vec<TcpStream>, String> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        if Instant::now() > deadline {
            return Err(format!("connected only {} of {n} in time", v.len()));
        }
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        v.push(TcpStream::from_std(s));
    }
    Ok(v)
}

/// Reads everything available; returns the bytes read, and whether the peer closed.
fn drain(s: &mut TcpStream, buf: &mut [u8]) -> (usize, bool) {
    let mut total = 0;
    loop {
        match s.read(buf) {
            Ok(0) => return (total, true),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (total, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (total, true),
        }
    }
}

fn fanout(a: &FloorArgs) -> Result<FloorRow, String> {
    let tick = Duration::from_millis(a.tick_ms.max(1));
    let limit = (a.warmup + a.duration + 60.0).ceil() as u64;
    let server = Server::start("fanout", a.tick_ms, limit)?;
    let deadline = Instant::now() + Duration::from_secs(limit - 5);
    let mut conns = connect_blocking(server.clients, a.clients, deadline)?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    for (i, c) in conns.iter_mut().enumerate() {
        poll.registry()
            .register(c, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    let frame_len = ws_frame(EVENT).len() as u64;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    let mut closed = 0usize;
    let mut last_data = Instant::now();
    // A measurement boundary is a quiet moment between two fan-outs: nothing arrived for
    // `quiet` (a fan-out takes a few ms), so every fan-out is wholly in or out of the window.
    let quiet = tick.mul_f64(0.3);
    let warm_end = Instant::now() + Duration::from_secs_f64(a.warmup);
    let mut start: Option<(Probe, u64)> = None;
    let mut end: Option<(Probe, u64)> = None;
    let mut measure_end = None;
    while end.is_none() {
        if Instant::now() > deadline {
            return Err("fanout: no quiet moment between fan-outs before the deadline".into());
        }
        poll.poll(&mut events, Some(quiet / 4))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let (n, eof) = drain(&mut conns[ev.token().0], &mut buf);
            bytes += n as u64;
            if eof {
                closed += 1;
                let _ = poll.registry().deregister(&mut conns[ev.token().0]);
            }
            last_data = Instant::now();
        }
        let now = Instant::now();
        if now.duration_since(last_data) < quiet {
            continue;
        }
        match (&start, measure_end) {
            (None, _) if now >= warm_end => {
                start = Some((Probe::take(Some(server.pid)), bytes));
                measure_end = Some(now + Duration::from_secs_f64(a.duration));
            }
            (Some(_), Some(m)) if now >= m => end = Some((Probe::take(Some(server.pid)), bytes)),
            _ => {}
        }
    }
    let ((p0, b0), (p1, b1)) = (start.expect("set"), end.expect("set"));
    let delivered = (b1 - b0) / frame_len;
    let (user_us, sys_us) = per_unit(&p0, &p1, delivered);
    let mut notes = Vec::new();
    if !(b1 - b0).is_multiple_of(frame_len) || !delivered.is_multiple_of(a.clients as u64) {
        notes.push(format!(
            "{} bytes: not whole fan-outs to {} clients",
            b1 - b0,
            a.clients
        ));
    }
    if closed > 0 {
        notes.push(format!("{closed} connections closed"));
    }
    Ok(FloorRow {
        scenario: "fanout",
        conns: a.clients,
        count: delivered,
        per: "delivery",
        user_us,
        sys_us,
        p50_ms: None,
        p99_ms: None,
        rss_kib_per_conn: None,
        tool_pct: p0.tool_cpu_pct(&p1),
        psi_pct: p0.cpu_pressure_pct(&p1),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn unicast(a: &FloorArgs) -> Result<FloorRow, String> {
    let n = a.unicast_clients.max(1);
    let limit = (a.warmup + a.duration + 60.0).ceil() as u64;
    let server = Server::start("unicast", a.tick_ms, limit)?;
    let deadline = Instant::now() + Duration::from_secs(limit - 5);
    let mut clients = connect_blocking(server.clients, n, deadline)?;
    let mut admins = connect_blocking(server.admin, a.http_conns.max(1), deadline)?;
    let ports: Vec<u16> = clients
        .iter()
        .map(|c| c.local_addr().map(|a| a.port()).unwrap_or(0))
        .collect();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    for (i, c) in clients.iter_mut().enumerate() {
        poll.registry()
            .register(c, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    for (i, c) in admins.iter_mut().enumerate() {
        poll.registry()
            .register(c, Token(n + i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    // Let the server accept everything before the schedule starts.
    std::thread::sleep(Duration::from_millis(300));

    let mut req = push_request();
    let port_at = port_offset(&req);
    let resp_len = push_response().len();
    let frame_len = ws_frame(EVENT).len();
    let mut sent_at: Vec<Option<Instant>> = vec![None; n];
    let mut admin_busy = vec![false; admins.len()];
    let mut admin_got = vec![0usize; admins.len()];
    let mut client_got = vec![0usize; n];
    let mut free: Vec<usize> = (0..admins.len()).collect();
    let latency = Histogram::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let rate = a.unicast_rate.max(1.0);
    let start = Instant::now();
    let warm = Duration::from_secs_f64(a.warmup);
    let total = Duration::from_secs_f64(a.warmup + a.duration);
    let mut sent = 0u64;
    let mut targets_busy = 0usize;
    let mut frames = 0u64;
    let mut responses = 0u64;
    let mut errors = 0u64;
    let mut max_lag = Duration::ZERO;
    let mut p0: Option<(Probe, u64, u64)> = None;
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err("unicast: deadline reached".into());
        }
        let elapsed = now.duration_since(start);
        if p0.is_none() && elapsed >= warm {
            latency.reset();
            p0 = Some((Probe::take(Some(server.pid)), sent, frames));
        }
        let sending = elapsed < total;
        if !sending && admin_busy.iter().all(|b| !b) {
            break;
        }
        if !sending && elapsed > total + Duration::from_secs(3) {
            errors += admin_busy.iter().filter(|b| **b).count() as u64;
            break;
        }
        // Pushes due so far, each on an admin connection with no request in flight.
        let due = if sending {
            (elapsed.as_secs_f64() * rate) as u64 + 1
        } else {
            sent
        };
        while sent < due {
            // A client with no push in flight, so that each frame read matches one request.
            if targets_busy >= n {
                break;
            }
            let Some(k) = free.pop() else { break };
            let mut target = (xorshift(&mut rng) % n as u64) as usize;
            while sent_at[target].is_some() {
                target = (target + 1) % n;
            }
            let mut port = ports[target];
            for d in req[port_at..port_at + 5].iter_mut().rev() {
                *d = b'0' + (port % 10) as u8;
                port /= 10;
            }
            let lag = elapsed.saturating_sub(Duration::from_secs_f64(sent as f64 / rate));
            max_lag = max_lag.max(lag);
            let t = Instant::now();
            match admins[k].write(&req) {
                Ok(w) if w == req.len() => {
                    sent_at[target] = Some(t);
                    targets_busy += 1;
                    admin_busy[k] = true;
                    sent += 1;
                }
                _ => {
                    errors += 1;
                    free.push(k);
                    break;
                }
            }
        }
        let next_due = start + Duration::from_secs_f64(sent as f64 / rate);
        let timeout = if sending && !free.is_empty() {
            next_due.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(5)
        };
        poll.poll(&mut events, Some(timeout))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let i = ev.token().0;
            if i < n {
                let (got, eof) = drain(&mut clients[i], &mut buf);
                let now = Instant::now();
                client_got[i] += got;
                while client_got[i] >= frame_len {
                    client_got[i] -= frame_len;
                    frames += 1;
                    if let Some(t) = sent_at[i].take() {
                        targets_busy -= 1;
                        latency.record(now.duration_since(t).as_nanos() as u64);
                    }
                }
                if eof {
                    let _ = poll.registry().deregister(&mut clients[i]);
                    errors += 1;
                }
            } else {
                let k = i - n;
                let (got, eof) = drain(&mut admins[k], &mut buf);
                admin_got[k] += got;
                if admin_got[k] >= resp_len {
                    admin_got[k] -= resp_len;
                    responses += 1;
                    admin_busy[k] = false;
                    free.push(k);
                }
                if eof {
                    let _ = poll.registry().deregister(&mut admins[k]);
                    errors += 1;
                }
            }
        }
    }
    // Let the last frames arrive.
    let settle = Instant::now() + Duration::from_millis(200);
    while Instant::now() < settle {
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let i = ev.token().0;
            if i < n {
                let (got, _) = drain(&mut clients[i], &mut buf);
                client_got[i] += got;
                while client_got[i] >= frame_len {
                    client_got[i] -= frame_len;
                    frames += 1;
                }
            }
        }
    }
    let p1 = Probe::take(Some(server.pid));
    let (p0, sent0, frames0) = p0.ok_or("unicast: measurement never started")?;
    let pushes = sent - sent0;
    let (user_us, sys_us) = per_unit(&p0, &p1, pushes);
    let snap = latency.snapshot();
    let mut notes = Vec::new();
    if frames - frames0 != pushes {
        notes.push(format!("{} frames for {pushes} pushes", frames - frames0));
    }
    if responses != sent {
        notes.push(format!("{responses} responses for {sent} pushes"));
    }
    if errors > 0 {
        notes.push(format!("{errors} errors"));
    }
    let achieved = sent as f64 / total.as_secs_f64();
    if achieved < rate * 0.97 {
        notes.push(format!(
            "fell behind: {achieved:.0}/s (up to {:.1} ms late)",
            max_lag.as_secs_f64() * 1e3
        ));
    }
    Ok(FloorRow {
        scenario: "unicast",
        conns: n,
        count: pushes,
        per: "push",
        user_us,
        sys_us,
        p50_ms: (snap.count() > 0).then(|| snap.quantile(0.5) as f64 / 1e6),
        p99_ms: (snap.count() > 0).then(|| snap.quantile(0.99) as f64 / 1e6),
        rss_kib_per_conn: None,
        tool_pct: p0.tool_cpu_pct(&p1),
        psi_pct: p0.cpu_pressure_pct(&p1),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CState {
    Connecting,
    /// Upgrade request sent; bytes of the answer seen.
    Upgrading(usize),
    /// `40` sent; bytes of the answer seen.
    Joining(usize),
    Done,
}

/// Advances one `connect` client on a readiness event; `Ok(true)` when it has joined.
fn step(
    s: &mut TcpStream,
    state: &mut CState,
    ev: &mio::event::Event,
    buf: &mut [u8],
    answer_len: usize,
    joined_len: usize,
) -> Result<bool, String> {
    if *state == CState::Connecting && ev.is_writable() {
        match (s.take_error(), s.peer_addr()) {
            (Ok(None), Ok(_)) => {
                let _ = s.set_nodelay(true);
                match s.write(UPGRADE_REQ) {
                    Ok(w) if w == UPGRADE_REQ.len() => *state = CState::Upgrading(0),
                    r => return Err(format!("upgrade write: {r:?}")),
                }
            }
            (Ok(Some(e)), _) | (Err(e), _) => return Err(e.to_string()),
            (_, Err(e)) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            (_, Err(e)) => return Err(e.to_string()),
        }
    }
    if !ev.is_readable() || *state == CState::Connecting {
        return Ok(false);
    }
    let (got, eof) = drain(s, buf);
    match *state {
        CState::Upgrading(seen) if seen + got >= answer_len => match s.write(&CLIENT_CONNECT) {
            Ok(8) => *state = CState::Joining(seen + got - answer_len),
            r => return Err(format!("connect write: {r:?}")),
        },
        CState::Upgrading(seen) => *state = CState::Upgrading(seen + got),
        CState::Joining(seen) => *state = CState::Joining(seen + got),
        _ => {}
    }
    if let CState::Joining(seen) = *state
        && seen >= joined_len
    {
        *state = CState::Done;
        return Ok(true);
    }
    if eof {
        return Err("closed by the server".into());
    }
    Ok(false)
}

fn connect(a: &FloorArgs) -> Result<FloorRow, String> {
    let n = a.connects.max(1);
    let limit = 90;
    let server = Server::start("connect", a.tick_ms, limit)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::sleep(Duration::from_millis(200));
    let answer_len = UPGRADE_RESP.len() + ws_frame(OPEN).len();
    let joined_len = ws_frame(CONNECTED).len();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    let mut state: Vec<CState> = Vec::with_capacity(n);
    let mut in_flight = 0usize;
    let mut done = 0usize;
    let mut failed = 0usize;
    let mut first_error: Option<String> = None;
    let p0 = Probe::take(Some(server.pid));
    let t0 = Instant::now();
    while done + failed < n {
        if Instant::now() > deadline {
            return Err(format!("connect: {done} of {n} done before the deadline"));
        }
        while in_flight < a.connect_concurrency.max(1) && conns.len() < n {
            let i = conns.len();
            match TcpStream::connect(server.clients) {
                Ok(mut s) => {
                    poll.registry()
                        .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                        .map_err(|e| e.to_string())?;
                    conns.push(s);
                    state.push(CState::Connecting);
                    in_flight += 1;
                }
                Err(e) => return Err(format!("connect: {e}")),
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let i = ev.token().0;
            let s = &mut conns[i];
            match step(s, &mut state[i], ev, &mut buf, answer_len, joined_len) {
                Ok(false) => {}
                Ok(true) => {
                    done += 1;
                    in_flight -= 1;
                    let _ = poll.registry().deregister(s);
                }
                Err(why) => {
                    first_error.get_or_insert(why);
                    state[i] = CState::Done;
                    failed += 1;
                    in_flight -= 1;
                    let _ = poll.registry().deregister(s);
                }
            }
        }
    }
    let elapsed = t0.elapsed();
    let p1 = Probe::take(Some(server.pid));
    // RSS after the server has gone idle.
    std::thread::sleep(Duration::from_millis(500));
    let p2 = Probe::take(Some(server.pid));
    let (user_us, sys_us) = per_unit(&p0, &p1, done as u64);
    let rss = match (p0.server, p2.server) {
        (Some(a), Some(b)) => Some((b.rss_kib as f64 - a.rss_kib as f64) / done.max(1) as f64),
        _ => None,
    };
    let mut notes = vec![format!(
        "{:.0} connects/s",
        done as f64 / elapsed.as_secs_f64().max(1e-9)
    )];
    if failed > 0 {
        notes.push(format!(
            "{failed} failed (first: {})",
            first_error.unwrap_or_default()
        ));
    }
    drop(conns);
    Ok(FloorRow {
        scenario: "connect",
        conns: done,
        count: done as u64,
        per: "connect",
        user_us,
        sys_us,
        p50_ms: None,
        p99_ms: None,
        rss_kib_per_conn: rss,
        tool_pct: p0.tool_cpu_pct(&p1),
        psi_pct: p0.cpu_pressure_pct(&p1),
        note: Some(notes.join("; ")),
    })
}

/// Runs the floor scenarios and prints one row each; returns the exit code.
pub fn run(a: FloorArgs) -> i32 {
    let fds = stats::raise_fd_limit();
    let most = a
        .clients
        .max(a.unicast_clients + a.http_conns)
        .max(a.connects);
    if most as u64 + 64 > fds {
        eprintln!(
            "sio-relay-load floor: {most} connections need more than the open-files limit of {fds}"
        );
        return 1;
    }
    println!("{}", header());
    let mut code = 0;
    for s in &a.scenario {
        let r = match s {
            FloorScenario::Fanout => fanout(&a),
            FloorScenario::Unicast => unicast(&a),
            FloorScenario::Connect => connect(&a),
        };
        match r {
            Ok(row) => {
                println!("{}", row_line(&row));
                if let Some(note) = &row.note {
                    println!("    note: {note}");
                }
            }
            Err(e) => {
                eprintln!("sio-relay-load floor: {}: {e}", s.name());
                code = 1;
            }
        }
    }
    code
}
