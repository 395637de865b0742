//! The admin API's fixed-rate push loop and room joins, over keep-alive connections.

use std::io;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::{Shared, find, number_after};
use crate::http::{HttpConn, JSON};

/// Whom each push goes to.
#[derive(Clone)]
pub enum Addressing {
    /// A random sid from the list.
    Sids(Arc<Vec<String>>),
    /// Rooms `room-0` .. `room-{n-1}`, in turn.
    Rooms(usize),
    /// `"broadcast": true`.
    Broadcast,
}

/// Totals of one push phase, shared by the workers.
#[derive(Default)]
pub struct Tally {
    pub pushes: AtomicU64,
    /// Sum of `recipients` in the answers: the deliveries the server promised.
    pub recipients: AtomicU64,
    /// Pushes in non-2xx answers and failed requests.
    pub errors: AtomicU64,
    /// Pushes answered with `recipients: 0`.
    pub empty: AtomicU64,
    /// Largest delay between a push's scheduled time and when it was written, nanoseconds.
    pub max_lag_ns: AtomicU64,
    pub first_error: std::sync::Mutex<Option<String>>,
}

/// A fixed-rate schedule: push `k` is due at `start + k / rate`.
pub struct Plan {
    pub start: Instant,
    pub rate: f64,
    pub count: u64,
    /// Sequence number of push 0 (sequence numbers never repeat across phases).
    pub seq_base: u64,
    pub event: String,
    /// Extra bytes of padding in each event's data.
    pub padding: usize,
    /// Pushes per request (1: a single JSON object; more: a JSON array of that many).
    pub batch: u64,
    pub next: AtomicU64,
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// Sends pushes from `plan` over `conn` until the plan is exhausted. Several workers share one
/// plan: each claims the next due push, so a slow answer on one connection does not hold
/// back the schedule while another connection is free. With `plan.batch` > 1 a worker claims
/// that many consecutive pushes at once, sends them when the last one is due, and POSTs them
/// as one JSON array.
pub async fn push_worker(
    mut conn: HttpConn,
    plan: Arc<Plan>,
    to: Addressing,
    shared: Arc<Shared>,
    tally: Arc<Tally>,
    worker: u64,
) -> HttpConn {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (worker + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let padding = "x".repeat(plan.padding);
    let batch = plan.batch.max(1);
    let mut buf = Vec::with_capacity((256 + plan.padding) * batch as usize + 2);
    loop {
        let first = plan.next.fetch_add(batch, Ordering::Relaxed);
        if first >= plan.count {
            break;
        }
        let end = first.saturating_add(batch).min(plan.count);
        let n = end - first;
        let last = end - 1;
        let due = plan.start + Duration::from_secs_f64(last as f64 / plan.rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        if let Err(e) = conn.wait_ready().await {
            note_error(&tally, n, e.to_string());
            continue;
        }
        let now = Instant::now();
        let lag = now.saturating_duration_since(due).as_nanos() as u64;
        tally.max_lag_ns.fetch_max(lag, Ordering::Relaxed);
        let sent_ns = shared.now_ns();
        buf.clear();
        if batch > 1 {
            buf.push(b'[');
        }
        for k in first..end {
            if k > first {
                buf.push(b',');
            }
            let seq = plan.seq_base + k;
            buf.push(b'{');
            match &to {
                Addressing::Sids(sids) => {
                    let sid = &sids[(xorshift(&mut rng) % sids.len() as u64) as usize];
                    let _ = write!(buf, r#""to":"{sid}","#);
                }
                Addressing::Rooms(rooms) => {
                    let _ = write!(buf, r#""to":"room-{}","#, k % *rooms as u64);
                }
                Addressing::Broadcast => buf.extend_from_slice(br#""broadcast":true,"#),
            }
            let _ = write!(
                buf,
                r#""event":"{}","data":{{"s":{seq},"t":{sent_ns}"#,
                plan.event
            );
            if !padding.is_empty() {
                let _ = write!(buf, r#","p":"{padding}""#);
            }
            buf.extend_from_slice(b"}}");
        }
        if batch > 1 {
            buf.push(b']');
        }
        tally.pushes.fetch_add(n, Ordering::Relaxed);
        match conn
            .post("/v1/emit", JSON, Bytes::copy_from_slice(&buf))
            .await
        {
            Ok((200, body)) => {
                // One `recipients` per push: a single answer, or one per element of a batch.
                let mut rest = &body[..];
                let mut answers = 0;
                while let Some(i) = find(rest, RECIPIENTS) {
                    let r = number_after(&rest[i..], RECIPIENTS).unwrap_or(0);
                    tally.recipients.fetch_add(r, Ordering::Relaxed);
                    if r == 0 {
                        tally.empty.fetch_add(1, Ordering::Relaxed);
                    }
                    answers += 1;
                    rest = &rest[i + RECIPIENTS.len()..];
                }
                // Pushes the answer says nothing about reached nobody, as far as we know.
                if answers < n {
                    tally.empty.fetch_add(n - answers, Ordering::Relaxed);
                }
            }
            Ok((status, body)) => note_error(
                &tally,
                n,
                format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
            ),
            Err(e) => note_error(&tally, n, e.to_string()),
        }
    }
    conn
}

const RECIPIENTS: &[u8] = b"\"recipients\":";

/// Counts `pushes` failed pushes (a failed request fails every push it carries).
fn note_error(tally: &Tally, pushes: u64, msg: String) {
    tally.errors.fetch_add(pushes, Ordering::Relaxed);
    let mut first = tally.first_error.lock().expect("not poisoned");
    first.get_or_insert(msg);
}

/// Joins every sid to one of `rooms` rooms (`room-{i % rooms}`), `conns.len()` requests at a
/// time. Returns how many joins the server confirmed.
pub async fn join_rooms(
    conns: &mut [HttpConn],
    sids: &[String],
    rooms: usize,
) -> io::Result<usize> {
    let next = AtomicU64::new(0);
    let joined = AtomicU64::new(0);
    let work = conns.iter_mut().map(|conn| {
        let next = &next;
        let joined = &joined;
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= sids.len() {
                    return Ok::<(), io::Error>(());
                }
                let body = format!(
                    r#"{{"to":"{}","rooms":["room-{}"]}}"#,
                    sids[i],
                    i % rooms.max(1)
                );
                let (status, resp) = conn.post("/v1/join", JSON, Bytes::from(body)).await?;
                if status != 200 {
                    return Err(io::Error::other(format!(
                        "join: HTTP {status}: {}",
                        String::from_utf8_lossy(&resp)
                    )));
                }
                let n = number_after(&resp, b"\"sockets\":").unwrap_or(0);
                joined.fetch_add(n, Ordering::Relaxed);
            }
        }
    });
    for r in futures_util::future::join_all(work).await {
        r?;
    }
    Ok(joined.load(Ordering::Relaxed) as usize)
}
