//! The ideal server (child process, the hidden `floor-server` subcommand): one thread, mio,
//! every byte it sends prebuilt; serves whichever scenario the parent names.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::wire::{
    CLIENT_CONNECT, CONNECTED, EVENT, OPEN, UPGRADE_RESP, port_offset, push_request, push_response,
    ws_frame,
};
use crate::stats;

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
