//! `fanout`, client side: `--clients` connections read the child's periodic fan-outs; CPU per
//! delivered frame, measured between two fan-outs.

use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::clients::{Server, connect_blocking, drain};
use super::wire::{EVENT, ws_frame};
use super::{FloorArgs, FloorRow, per_unit};
use crate::stats::Probe;

pub(super) fn run(a: &FloorArgs) -> Result<FloorRow, String> {
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
