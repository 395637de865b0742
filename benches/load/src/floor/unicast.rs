//! `unicast`, client side: pushes at a fixed rate on keep-alive admin connections, each to a
//! client with no push in flight; CPU per push and push-to-frame latency.

use std::io::Write;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::clients::{Server, connect_blocking, drain};
use super::wire::{EVENT, port_offset, push_request, push_response, ws_frame};
use super::{FloorArgs, FloorRow, per_unit};
use crate::stats::{Histogram, Probe};

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

pub(super) fn run(a: &FloorArgs) -> Result<FloorRow, String> {
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
