//! `connect`, client side: WebSocket upgrades and Socket.IO connects, a bounded number in
//! flight, connections kept open; CPU and RSS per connection.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::clients::{Server, drain};
use super::wire::{CLIENT_CONNECT, CONNECTED, OPEN, UPGRADE_REQ, UPGRADE_RESP, ws_frame};
use super::{FloorArgs, FloorRow, per_unit};
use crate::stats::Probe;

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

pub(super) fn run(a: &FloorArgs) -> Result<FloorRow, String> {
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
