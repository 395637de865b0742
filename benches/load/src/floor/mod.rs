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
//!
//! The parts, by what each owns:
//! - [`wire`]: the bytes on the wire, shared by both ends;
//! - [`server`]: the ideal server (the child process);
//! - [`clients`]: the child's handle and the connection plumbing of this process's clients;
//! - [`fanout`], [`unicast`], [`connect`]: the client side of each scenario, one row each.
//!
//! This module holds the command line, the report and the loop over the scenarios.

mod clients;
mod connect;
mod fanout;
mod server;
mod unicast;
mod wire;

pub use server::{ServerArgs, serve};

use clap::{Args, ValueEnum};

use crate::stats::{self, Probe};

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
    /// Also append the figures to this JSON-lines file, as the rows of the load scenarios
    /// they are the floor of (`fanout` as `rooms` and `broadcast`, `connect` as `idle`), so
    /// that `report` puts the floor in a column beside the servers.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// The column name of those rows.
    #[arg(long, default_value = "floor")]
    label: String,
}

// ---------------------------------------------------------------------------------------------
// The report.

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

/// The load scenarios whose figure `r` is the floor of, as rows for `report`.
fn load_rows(r: &FloorRow, label: &str) -> Vec<crate::Row> {
    let total = r.user_us + r.sys_us;
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let row = |scenario: &str| crate::Row {
        label: label.to_owned(),
        scenario: scenario.to_owned(),
        unix_time,
        clients: r.conns,
        connected: r.conns,
        batch: 1,
        server_sys_pct: (total > 0.0).then(|| r.sys_us / total * 100.0),
        tool_cpu_pct: r.tool_pct,
        cpu_pressure_pct: r.psi_pct,
        note: r.note.clone(),
        ..crate::Row::default()
    };
    match r.scenario {
        "fanout" => ["rooms", "broadcast"]
            .map(|scenario| crate::Row {
                cpu_us_per_msg: Some(total),
                ..row(scenario)
            })
            .to_vec(),
        "unicast" => vec![crate::Row {
            cpu_us_per_msg: Some(total),
            cpu_us_per_push: Some(total),
            p50_ms: r.p50_ms,
            p99_ms: r.p99_ms,
            ..row("unicast")
        }],
        // Not its RSS: the ideal server keeps no state per connection, so a ratio to it
        // would say nothing.
        "connect" => vec![crate::Row {
            cpu_us_per_connect: Some(total),
            ..row("idle")
        }],
        _ => Vec::new(),
    }
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
            FloorScenario::Fanout => fanout::run(&a),
            FloorScenario::Unicast => unicast::run(&a),
            FloorScenario::Connect => connect::run(&a),
        };
        match r {
            Ok(row) => {
                println!("{}", row_line(&row));
                if let Some(note) = &row.note {
                    println!("    note: {note}");
                }
                if let Some(path) = &a.json {
                    for load_row in load_rows(&row, &a.label) {
                        if let Err(e) = crate::append_json(path, &load_row) {
                            eprintln!("sio-relay-load floor: {e}");
                            code = 1;
                        }
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn floor_row(scenario: &'static str) -> FloorRow {
        FloorRow {
            scenario,
            conns: 10,
            count: 100,
            per: "unit",
            user_us: 1.0,
            sys_us: 3.0,
            p50_ms: None,
            p99_ms: None,
            rss_kib_per_conn: Some(0.02),
            tool_pct: 1.0,
            psi_pct: None,
            note: None,
        }
    }

    #[test]
    fn floor_rows_stand_for_the_load_scenarios() {
        let fanout = load_rows(&floor_row("fanout"), "floor");
        let scenarios: Vec<&str> = fanout.iter().map(|r| r.scenario.as_str()).collect();
        assert_eq!(scenarios, ["rooms", "broadcast"]);
        assert!(fanout.iter().all(|r| r.cpu_us_per_msg == Some(4.0)));
        let connect = load_rows(&floor_row("connect"), "floor");
        assert_eq!(connect.len(), 1);
        assert_eq!(connect[0].scenario, "idle");
        assert_eq!(connect[0].cpu_us_per_connect, Some(4.0));
        // The ideal server keeps nothing per connection: no RSS to compare with.
        assert_eq!(connect[0].rss_kib_per_conn, None);
    }
}
