//! The client side's shared plumbing: the child server's handle (start, addresses, kill on
//! drop) and blocking connects and non-blocking reads of this process's connections.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

pub(super) struct Server {
    child: Child,
    pub(super) pid: u32,
    pub(super) clients: SocketAddr,
    pub(super) admin: SocketAddr,
}

impl Server {
    pub(super) fn start(mode: &str, tick_ms: u64, limit_secs: u64) -> Result<Self, String> {
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

/// Opens `n` connections one after the other (blocking connects; the server accepts them as
/// they come), then makes them non-blocking for mio.
pub(super) fn connect_blocking(
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
pub(super) fn drain(s: &mut TcpStream, buf: &mut [u8]) -> (usize, bool) {
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
