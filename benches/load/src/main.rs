//! `sio-relay-load`: a load generator for Socket.IO relays driven through the admin API.
//!
//! Clients connect over WebSocket (Engine.IO v4 / Socket.IO v5) to a server on loopback, or in
//! the idle scenarios over HTTP long-polling if asked; pushes go to `POST /v1/emit` on its
//! admin listener at a fixed rate. With `--pid`, the server's CPU time and resident memory are
//! read from `/proc` around every phase.

mod admin;
mod client;
mod floor;
mod http;
mod polling;
mod report;
mod stats;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use admin::{Addressing, Plan, Tally};
use client::{Clients, Shared, SioTarget};
use http::HttpConn;
use stats::Probe;

#[derive(Parser)]
#[command(
    name = "sio-relay-load",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Render JSON-lines results (from --json) as a Markdown table, one column per label;
    /// repeated runs of a label are summarised by their median.
    Report {
        /// Files written with --json.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also show each figure as a multiple of this label's (e.g. `floor`); repeatable.
        #[arg(long = "ratio-to", value_name = "LABEL")]
        ratio_to: Vec<String>,
    },
    /// The kernel's share: CPU per delivery, per push and per connect of an ideal server that
    /// does no user-space work, for the same socket traffic as the scenarios (run as a child
    /// process of this tool, on loopback).
    Floor(floor::FloorArgs),
    /// The ideal server of `floor` (started by `floor` itself).
    #[command(hide = true)]
    FloorServer(floor::ServerArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    /// Connect many clients and hold them: RSS per connection, CPU per connect.
    Idle,
    /// Like `idle`, but clients stop after the Engine.IO handshake and join no namespace:
    /// the share of the per-connection cost that is Engine.IO and WebSocket. The server
    /// closes such sessions after its connect timeout (45 s by default): keep --settle below.
    IdleEngine,
    /// Pushes to random sids at a fixed rate: latency, losses, CPU per message.
    Unicast,
    /// Clients spread over rooms, pushes to rooms: CPU per delivery.
    Rooms,
    /// Pushes with `broadcast: true`: CPU per delivery.
    Broadcast,
    /// Raise the unicast rate until p99 or losses fail: the highest passing rate.
    UnicastMax,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::IdleEngine => "idle-engine",
            Scenario::Unicast => "unicast",
            Scenario::Rooms => "rooms",
            Scenario::Broadcast => "broadcast",
            Scenario::UnicastMax => "unicast-max",
        }
    }
}

/// How the clients of the idle scenarios reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// One WebSocket connection per client.
    Websocket,
    /// HTTP long-polling: two keep-alive connections per client, as a browser holds them
    /// (one where a GET always waits, one for POSTs).
    Polling,
}

/// Parses `10`, `10s`, `1.5s` or `500ms` as seconds.
fn secs(s: &str) -> Result<f64, String> {
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s}"))?;
    if !(0.0..=600.0).contains(&(v * scale)) {
        return Err(format!("{s}: must be between 0 and 600 s"));
    }
    Ok(v * scale)
}

#[derive(Args, Clone, Serialize)]
struct RunArgs {
    /// Socket.IO endpoint (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:3000/socket.io/")]
    url: String,
    /// Admin API base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    admin_url: String,
    /// PID of the server process, to read its CPU time and RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Name of the server in the output.
    #[arg(long, default_value = "server")]
    label: String,
    /// Scenarios to run, in order (comma-separated). Run `idle` first on a fresh server: RSS
    /// that an earlier scenario made the allocator keep hides the per-connection cost.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "idle,unicast,rooms,broadcast"
    )]
    scenario: Vec<Scenario>,

    /// Clients held by `idle`.
    #[arg(long, default_value_t = 10_000)]
    idle_clients: usize,
    /// Transport of the clients of `idle` and `idle-engine` (the other scenarios use
    /// WebSocket). A polling client takes two sockets, so half as many fit in `ulimit -n`.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
    /// Clients for `unicast` and `unicast-max`.
    #[arg(long, default_value_t = 1_000)]
    unicast_clients: usize,
    /// Pushes per second in `unicast`.
    #[arg(long, default_value_t = 5_000.0)]
    unicast_rate: f64,
    /// Clients for `rooms`.
    #[arg(long, default_value_t = 2_000)]
    rooms_clients: usize,
    /// Number of rooms in `rooms` (client i joins `room-{i % rooms}`).
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// Deliveries per second in `rooms` (pushes/s = this / clients per room).
    #[arg(long, default_value_t = 10_000.0)]
    rooms_deliveries: f64,
    /// Clients for `broadcast`.
    #[arg(long, default_value_t = 2_000)]
    broadcast_clients: usize,
    /// Deliveries per second in `broadcast` (pushes/s = this / clients).
    #[arg(long, default_value_t = 10_000.0)]
    broadcast_deliveries: f64,

    /// Measured push time per scenario (`10`, `10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = secs)]
    duration: f64,
    /// Unmeasured pushes at the same rate before measuring.
    #[arg(long, default_value = "2s", value_parser = secs)]
    warmup: f64,
    /// Wait after connecting the idle clients before reading RSS.
    #[arg(long, default_value = "5s", value_parser = secs)]
    settle: f64,
    /// Longest wait for in-flight deliveries after the last push.
    #[arg(long, default_value = "5s", value_parser = secs)]
    drain: f64,
    /// Pause after closing a scenario's clients, so the server sees them go.
    #[arg(long, default_value = "2s", value_parser = secs)]
    cooldown: f64,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Keep-alive HTTP connections pushing to the admin API.
    #[arg(long, default_value_t = 64)]
    http_conns: usize,
    /// Extra bytes in each event's data.
    #[arg(long, default_value_t = 0)]
    padding: usize,
    /// Pushes per admin request: with N > 1 each `POST /v1/emit` carries a JSON array of N
    /// pushes, sent when the last of them is due (the server must accept batches).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch: u64,
    /// Event name of the pushes.
    #[arg(long, default_value = "m")]
    event: String,
    /// Runtime threads of this tool (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// `unicast-max`: p99 must stay under this many milliseconds.
    #[arg(long, default_value_t = 50.0)]
    max_p99_ms: f64,
    /// `unicast-max`: first rate tried.
    #[arg(long, default_value_t = 1_000.0)]
    max_start_rate: f64,
    /// `unicast-max`: factor between steps until one fails (then three bisections).
    #[arg(long, default_value_t = 1.5)]
    max_factor: f64,
    /// `unicast-max`: highest rate tried.
    #[arg(long, default_value_t = 100_000.0)]
    max_rate_limit: f64,
    /// `unicast-max`: keep-alive admin connections. More give more requests in flight (the
    /// round trip then caps the rate later) but burstier arrivals at the server.
    #[arg(long, default_value_t = 64)]
    max_http_conns: usize,
    /// `unicast-max`: measured time of each step.
    #[arg(long, default_value = "5s", value_parser = secs)]
    max_step: f64,

    /// The auth payload of every client's CONNECT, a JSON object (e.g.
    /// `{"token":"eyJ…"}` for a server that checks tokens).
    #[arg(long, value_parser = auth_object)]
    auth: Option<String>,

    /// Append one JSON object per scenario to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Give up (exit 2) after this long in total.
    #[arg(long, default_value = "600s", value_parser = secs)]
    time_limit: f64,
}

/// One scenario's figures (a table row, a JSON line).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    pub scenario: String,
    pub unix_time: u64,
    pub clients: usize,
    pub connected: usize,
    /// Pushes per admin request (`--batch`).
    #[serde(default = "one")]
    pub batch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<usize>,
    /// Pushes per second asked for / achieved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub achieved_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushes: Option<u64>,
    /// Deliveries the server reported (`recipients`) and those the clients received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    /// Server CPU per delivered message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_msg: Option<f64>,
    /// Server CPU per push (admin request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_push: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib_per_conn: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_connect: Option<f64>,
    /// This tool's own RSS growth per idle client (for scale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_rss_kib_per_conn: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connects_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_kib: Option<u64>,
    /// Highest passing rate of `unicast-max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<f64>,
    /// Share of that CPU time spent in the kernel (stime), percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_sys_pct: Option<f64>,
    /// Server CPU use over the phase, percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_pct: Option<f64>,
    pub tool_cpu_pct: f64,
    /// Share of the phase during which some task waited for a CPU (`/proc/pressure/cpu`);
    /// includes this tool and the server competing with each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_pressure_pct: Option<f64>,
    /// Connections the server closed during the scenario.
    pub dropped_clients: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `--auth`: a JSON object, kept as given.
fn auth_object(s: &str) -> Result<String, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(_)) => Ok(s.to_owned()),
        _ => Err("expected a JSON object, e.g. {\"token\":\"…\"}".into()),
    }
}

fn one() -> u64 {
    1
}

/// Appends `row` to the JSON-lines file `path` (`--json`).
pub fn append_json(path: &std::path::Path, row: &Row) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let line = serde_json::to_string(row).map_err(|e| e.to_string())?;
    writeln!(f, "{line}").map_err(|e| format!("{}: {e}", path.display()))
}

fn loopback_addr(url: &str, what: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| format!("{what}: only http:// or ws:// URLs: {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{what}: {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{what}: {hostport}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{what}: {addr} is not a loopback address; this tool only loads local servers"
        ));
    }
    Ok((addr, path.to_string()))
}

struct Ctx {
    args: RunArgs,
    sio: SioTarget,
    admin: SocketAddr,
    shared: Arc<Shared>,
    next_seq: u64,
    printed_header: bool,
}

/// Figures of one push phase.
struct PushResult {
    pushes: u64,
    expected: u64,
    delivered: u64,
    errors: u64,
    empty: u64,
    first_error: Option<String>,
    achieved_rate: f64,
    latency: stats::Snapshot,
    server_cpu_us: Option<u64>,
    server_sys_pct: Option<f64>,
    wall: f64,
    tool_cpu_pct: f64,
    cpu_pressure_pct: Option<f64>,
    max_lag_ms: f64,
}

impl Ctx {
    fn row(&self, scenario: Scenario, clients: usize, connected: usize) -> Row {
        Row {
            label: self.args.label.clone(),
            scenario: scenario.name().to_string(),
            unix_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            clients,
            connected,
            batch: self.args.batch,
            ..Row::default()
        }
    }

    async fn connect(
        &self,
        n: usize,
        transport: Transport,
        namespace: bool,
    ) -> Result<Clients, String> {
        let c = client::connect_many(
            &self.sio,
            transport,
            n,
            self.args.connect_concurrency,
            namespace,
            Duration::from_secs(20),
            &self.shared,
        )
        .await;
        if c.failed > 0 {
            eprintln!(
                "{}: {} of {n} connections failed (first: {})",
                self.args.label,
                c.failed,
                c.first_error.as_deref().unwrap_or("?")
            );
        }
        if c.sids.is_empty() {
            return Err(format!(
                "no client could connect to {}: {}",
                self.sio.addr,
                c.first_error.unwrap_or_default()
            ));
        }
        Ok(c)
    }

    async fn close(&self, clients: Clients) {
        drop(clients);
        tokio::time::sleep(Duration::from_secs_f64(self.args.cooldown)).await;
    }

    fn admin_conns(&self, n: usize) -> Vec<HttpConn> {
        (0..n.max(1)).map(|_| HttpConn::new(self.admin)).collect()
    }

    /// Pushes at `rate` for `duration` seconds, then waits for deliveries to drain.
    async fn push(
        &mut self,
        conns: &mut Vec<HttpConn>,
        to: &Addressing,
        rate: f64,
        duration: f64,
    ) -> PushResult {
        let count = (rate * duration).round().max(1.0) as u64;
        let seq_base = self.next_seq;
        self.next_seq += count;
        let shared = self.shared.clone();
        shared.begin_phase(seq_base);
        let tally = Arc::new(Tally::default());
        let p0 = Probe::take(self.args.pid);
        let plan = Arc::new(Plan {
            start: Instant::now() + Duration::from_millis(5),
            rate,
            count,
            seq_base,
            event: self.args.event.clone(),
            padding: self.args.padding,
            batch: self.args.batch,
            next: Default::default(),
        });
        let handles: Vec<_> = conns
            .drain(..)
            .enumerate()
            .map(|(i, conn)| {
                tokio::spawn(admin::push_worker(
                    conn,
                    plan.clone(),
                    to.clone(),
                    shared.clone(),
                    tally.clone(),
                    i as u64,
                ))
            })
            .collect();
        for h in handles {
            if let Ok(conn) = h.await {
                conns.push(conn);
            }
        }
        let send_wall = plan.start.elapsed().as_secs_f64();
        let expected = tally.recipients.load(Ordering::Relaxed);
        let drain_until = Instant::now() + Duration::from_secs_f64(self.args.drain);
        while shared.received.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let p1 = Probe::take(self.args.pid);
        let pushes = tally.pushes.load(Ordering::Relaxed);
        PushResult {
            pushes,
            expected,
            delivered: shared.received.load(Ordering::Relaxed),
            errors: tally.errors.load(Ordering::Relaxed),
            empty: tally.empty.load(Ordering::Relaxed),
            first_error: tally.first_error.lock().expect("not poisoned").take(),
            achieved_rate: pushes as f64 / send_wall.max(1e-9),
            latency: shared.latency.snapshot(),
            server_cpu_us: p0.server_cpu_us(&p1),
            server_sys_pct: p0.server_sys_pct(&p1),
            wall: p0
                .at
                .zip(p1.at)
                .map(|(a, b)| b.duration_since(a).as_secs_f64())
                .unwrap_or(0.0),
            tool_cpu_pct: p0.tool_cpu_pct(&p1),
            cpu_pressure_pct: p0.cpu_pressure_pct(&p1),
            max_lag_ms: tally.max_lag_ns.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    fn fill(&self, row: &mut Row, r: &PushResult, rate: f64) {
        let ms = |ns: u64| ns as f64 / 1e6;
        row.target_rate = Some(rate);
        row.achieved_rate = Some(r.achieved_rate);
        row.pushes = Some(r.pushes);
        row.expected = Some(r.expected);
        row.delivered = Some(r.delivered);
        row.lost = Some(r.expected as i64 - r.delivered as i64);
        row.http_errors = Some(r.errors);
        if r.latency.count() > 0 {
            row.p50_ms = Some(ms(r.latency.quantile(0.50)));
            row.p90_ms = Some(ms(r.latency.quantile(0.90)));
            row.p99_ms = Some(ms(r.latency.quantile(0.99)));
            row.max_ms = Some(ms(r.latency.max()));
        }
        if let Some(cpu) = r.server_cpu_us {
            if r.delivered > 0 {
                row.cpu_us_per_msg = Some(cpu as f64 / r.delivered as f64);
            }
            if r.pushes > 0 {
                row.cpu_us_per_push = Some(cpu as f64 / r.pushes as f64);
            }
            if r.wall > 0.0 {
                row.server_cpu_pct = Some(cpu as f64 / 1e4 / r.wall);
            }
        }
        row.tool_cpu_pct = r.tool_cpu_pct;
        row.cpu_pressure_pct = r.cpu_pressure_pct;
        row.server_sys_pct = r.server_sys_pct;
        let mut notes = Vec::new();
        if r.errors > 0 {
            notes.push(format!(
                "{} failed pushes (first: {})",
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            ));
        }
        if r.empty > 0 {
            notes.push(format!("{} pushes reached nobody", r.empty));
        }
        if r.achieved_rate < rate * 0.97 {
            notes.push(format!(
                "fell behind the schedule (up to {:.0} ms late)",
                r.max_lag_ms
            ));
        }
        if !notes.is_empty() {
            row.note = Some(notes.join("; "));
        }
    }

    async fn idle(&mut self, scenario: Scenario) -> Result<Row, String> {
        let n = self.args.idle_clients;
        let transport = self.args.transport;
        let closed0 = self.shared.closed.load(Ordering::Relaxed);
        let p0 = Probe::take(self.args.pid);
        let clients = self
            .connect(n, transport, scenario == Scenario::Idle)
            .await?;
        let p1 = Probe::take(self.args.pid);
        tokio::time::sleep(Duration::from_secs_f64(self.args.settle)).await;
        let p2 = Probe::take(self.args.pid);
        let connected = clients.sids.len();
        let mut row = self.row(scenario, n, connected);
        if transport == Transport::Polling {
            row.scenario.push_str("-polling");
        }
        if let (Some(a), Some(b)) = (p0.server, p2.server) {
            row.rss_kib_per_conn =
                Some((b.rss_kib as f64 - a.rss_kib as f64) / connected.max(1) as f64);
            row.server_rss_kib = Some(b.rss_kib);
        }
        row.tool_rss_kib_per_conn =
            Some((p2.tool.rss_kib as f64 - p0.tool.rss_kib as f64) / connected.max(1) as f64);
        row.cpu_us_per_connect = p0
            .server_cpu_us(&p1)
            .map(|c| c as f64 / connected.max(1) as f64);
        row.connects_per_sec = Some(connected as f64 / clients.elapsed.as_secs_f64().max(1e-9));
        row.tool_cpu_pct = p0.tool_cpu_pct(&p1);
        row.cpu_pressure_pct = p0.cpu_pressure_pct(&p2);
        row.server_sys_pct = p0.server_sys_pct(&p1);
        row.dropped_clients = self.shared.closed.load(Ordering::Relaxed) - closed0;
        if clients.failed > 0 {
            row.note = Some(format!(
                "{} connections failed: {}",
                clients.failed,
                clients.first_error.clone().unwrap_or_default()
            ));
        }
        self.close(clients).await;
        Ok(row)
    }

    async fn fixed_rate(
        &mut self,
        scenario: Scenario,
        n: usize,
        make: impl FnOnce(&Clients) -> (Addressing, f64),
        rooms: Option<usize>,
    ) -> Result<Row, String> {
        let clients = self.connect(n, Transport::Websocket, true).await?;
        let closed0 = self.shared.closed.load(Ordering::Relaxed);
        let mut conns = self.admin_conns(self.args.http_conns);
        if let Some(k) = rooms {
            let joined = admin::join_rooms(&mut conns, &clients.sids, k)
                .await
                .map_err(|e| e.to_string())?;
            if joined != clients.sids.len() {
                eprintln!(
                    "{}: joined {joined} of {} sockets to rooms",
                    self.args.label,
                    clients.sids.len()
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (to, rate) = make(&clients);
        if self.args.warmup > 0.0 {
            self.push(&mut conns, &to, rate, self.args.warmup).await;
        }
        let r = self.push(&mut conns, &to, rate, self.args.duration).await;
        let mut row = self.row(scenario, n, clients.sids.len());
        row.rooms = rooms;
        self.fill(&mut row, &r, rate);
        row.dropped_clients = self.shared.closed.load(Ordering::Relaxed) - closed0;
        drop(conns);
        self.close(clients).await;
        Ok(row)
    }

    async fn unicast_max(&mut self) -> Result<Row, String> {
        let n = self.args.unicast_clients;
        let clients = self.connect(n, Transport::Websocket, true).await?;
        let closed0 = self.shared.closed.load(Ordering::Relaxed);
        let mut conns = self.admin_conns(self.args.max_http_conns);
        let to = Addressing::Sids(Arc::new(clients.sids.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let limit_ms = self.args.max_p99_ms;
        let mut best: Option<(f64, Row)> = None;
        let mut failed: Option<f64> = None;
        let mut rate = self.args.max_start_rate;
        let mut bisections = 0;
        loop {
            if self.args.warmup > 0.0 {
                self.push(&mut conns, &to, rate, self.args.warmup.min(1.0))
                    .await;
            }
            let r = self.push(&mut conns, &to, rate, self.args.max_step).await;
            let mut row = self.row(Scenario::UnicastMax, n, clients.sids.len());
            self.fill(&mut row, &r, rate);
            let p99 = r.latency.quantile(0.99) as f64 / 1e6;
            let ok = r.errors == 0
                && r.empty == 0
                && r.delivered >= r.expected
                && r.achieved_rate >= rate * 0.97
                && p99 < limit_ms;
            eprintln!(
                "{}: unicast {rate:.0}/s: achieved {:.0}/s, p99 {p99:.2} ms, lost {}, errors {}, tool CPU {:.0}% -> {}",
                self.args.label,
                r.achieved_rate,
                r.expected as i64 - r.delivered as i64,
                r.errors,
                r.tool_cpu_pct,
                if ok { "pass" } else { "fail" }
            );
            if ok {
                best = Some((rate, row));
            } else {
                failed = Some(rate);
                // Let a server that fell behind catch up before the next step.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            rate = match failed {
                None if rate * self.args.max_factor <= self.args.max_rate_limit => {
                    (rate * self.args.max_factor / 100.0).round() * 100.0
                }
                None => break,
                Some(high) => {
                    // Bisect three times between the best pass and the lowest failure.
                    let Some(low) = best.as_ref().map(|b| b.0) else {
                        break;
                    };
                    if bisections >= 3 {
                        break;
                    }
                    bisections += 1;
                    let mid = ((low + high) / 2.0 / 100.0).round() * 100.0;
                    if mid <= low || mid >= high {
                        break;
                    }
                    mid
                }
            };
        }
        let dropped = self.shared.closed.load(Ordering::Relaxed) - closed0;
        let connected = clients.sids.len();
        drop(conns);
        self.close(clients).await;
        let mut row = match best {
            Some((rate, mut row)) => {
                row.max_rate = Some(rate);
                row
            }
            None => {
                let mut row = self.row(Scenario::UnicastMax, n, connected);
                row.max_rate = Some(0.0);
                row.note = Some(format!("even {:.0}/s failed", self.args.max_start_rate));
                row
            }
        };
        row.dropped_clients = dropped;
        Ok(row)
    }

    async fn run(&mut self, s: Scenario) -> Result<Row, String> {
        let a = self.args.clone();
        match s {
            Scenario::Idle | Scenario::IdleEngine => self.idle(s).await,
            Scenario::Unicast => {
                self.fixed_rate(
                    s,
                    a.unicast_clients,
                    |c| (Addressing::Sids(Arc::new(c.sids.clone())), a.unicast_rate),
                    None,
                )
                .await
            }
            Scenario::Rooms => {
                let k = a.rooms.max(1);
                self.fixed_rate(
                    s,
                    a.rooms_clients,
                    |c| {
                        let per_room = c.sids.len() as f64 / k as f64;
                        (Addressing::Rooms(k), a.rooms_deliveries / per_room.max(1.0))
                    },
                    Some(k),
                )
                .await
            }
            Scenario::Broadcast => {
                self.fixed_rate(
                    s,
                    a.broadcast_clients,
                    |c| {
                        (
                            Addressing::Broadcast,
                            a.broadcast_deliveries / c.sids.len().max(1) as f64,
                        )
                    },
                    None,
                )
                .await
            }
            Scenario::UnicastMax => self.unicast_max().await,
        }
    }

    fn emit(&mut self, row: &Row) -> Result<(), String> {
        if !self.printed_header {
            println!("{}", report::table_header());
            self.printed_header = true;
        }
        println!("{}", report::table_row(row));
        if row.batch > 1 && row.pushes.is_some() {
            println!("    note: {} pushes per request (--batch)", row.batch);
        }
        if let Some(note) = &row.note {
            println!("    note: {note}");
        }
        if let Some(path) = &self.args.json {
            append_json(path, row)?;
        }
        Ok(())
    }
}

async fn run_all(args: RunArgs) -> Result<(), String> {
    let (sio_addr, path) = loopback_addr(&args.url, "--url")?;
    let (admin, _) = loopback_addr(&args.admin_url, "--admin-url")?;
    let path = if path.is_empty() || path == "/" {
        "/socket.io/".to_string()
    } else if path.ends_with('/') {
        path
    } else {
        format!("{path}/")
    };
    let fds = stats::raise_fd_limit();
    let idle_sockets = match args.transport {
        Transport::Websocket => args.idle_clients,
        Transport::Polling => 2 * args.idle_clients,
    };
    let most = [
        idle_sockets,
        args.unicast_clients,
        args.rooms_clients,
        args.broadcast_clients,
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    if most as u64 + args.http_conns as u64 + 64 > fds {
        return Err(format!(
            "{most} client sockets need more file descriptors than the limit of {fds} (ulimit -n)"
        ));
    }
    if let Some(pid) = args.pid {
        stats::sample(pid).map_err(|e| format!("--pid {pid}: {e}"))?;
    }
    let mut ctx = Ctx {
        sio: SioTarget {
            addr: sio_addr,
            path,
            connect_packet: format!("40{}", args.auth.as_deref().unwrap_or_default()).into_bytes(),
        },
        admin,
        shared: Shared::new(),
        next_seq: 1,
        printed_header: false,
        args,
    };
    for s in ctx.args.scenario.clone() {
        let row = ctx.run(s).await?;
        ctx.emit(&row)?;
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Report { files, ratio_to }) => {
            match report::markdown(&files, &ratio_to) {
                Ok(s) => print!("{s}"),
                Err(e) => {
                    eprintln!("sio-relay-load: {e}");
                    std::process::exit(1);
                }
            }
            return;
        }
        Some(Cmd::Floor(args)) => std::process::exit(floor::run(args)),
        Some(Cmd::FloorServer(args)) => {
            if let Err(e) = floor::serve(args) {
                eprintln!("sio-relay-load floor-server: {e}");
                std::process::exit(1);
            }
            return;
        }
        None => {}
    }
    let args = cli.run;
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let limit = Duration::from_secs_f64(args.time_limit);
    let res = rt.block_on(async move {
        match tokio::time::timeout(limit, run_all(args)).await {
            Ok(r) => r.map_err(|e| (1, e)),
            Err(_) => Err((2, "time limit reached".to_string())),
        }
    });
    // Dropping thousands of connections is the kernel's job; do not wait for the runtime.
    if let Err((code, e)) = res {
        eprintln!("sio-relay-load: {e}");
        std::process::exit(code);
    }
}
