//! A Socket.IO client over HTTP long-polling (Engine.IO v4, Socket.IO v5, namespace `/`), for
//! the idle scenarios.
//!
//! Like a browser, each client holds two keep-alive connections: one where a long-poll GET
//! is always waiting for the server's next packets, one for its POSTs (the CONNECT, the
//! pongs). A payload carries one or more packets, separated by the record separator 0x1e.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::client::{Shared, SioTarget, connect_answer, sid_of};
use crate::http::HttpConn;

/// The content type browsers POST payloads with.
const TEXT: &str = "text/plain;charset=UTF-8";
const PING: &[u8] = b"2";
const PONG: &[u8] = b"3";

/// One session's connections and the URI of its requests.
pub struct Polling {
    get: HttpConn,
    post: HttpConn,
    /// `{path}?EIO=4&transport=polling&sid={sid}`.
    uri: String,
}

/// The body of a `200` answer; any other status is an error.
fn body((status, body): (u16, Bytes)) -> io::Result<Bytes> {
    if status != 200 {
        return Err(io::Error::other(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(body)
}

/// The next payload from the server: one long-poll GET.
async fn poll(conn: &mut HttpConn, uri: &str) -> io::Result<Bytes> {
    body(conn.get(uri).await?)
}

async fn send(conn: &mut HttpConn, uri: &str, packet: Bytes) -> io::Result<()> {
    body(conn.post(uri, TEXT, packet).await?).map(drop)
}

fn packets(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload.split(|&b| b == 0x1e)
}

/// Opens one polling session and joins namespace `/`; returns the socket id, or with
/// `namespace` false the Engine.IO sid right after the handshake.
pub async fn connect(target: &SioTarget, namespace: bool) -> io::Result<(String, Polling)> {
    let mut get = HttpConn::small_reads(target.addr);
    let handshake = format!("{}?EIO=4&transport=polling", target.path);
    let open = poll(&mut get, &handshake).await?;
    let Some(open) = open.strip_prefix(b"0") else {
        return Err(io::Error::other("expected an Engine.IO open packet"));
    };
    let sid = sid_of(open)?;
    let mut p = Polling {
        get,
        post: HttpConn::small_reads(target.addr),
        uri: format!("{handshake}&sid={sid}"),
    };
    if !namespace {
        return Ok((sid, p));
    }
    let connect = Bytes::copy_from_slice(&target.connect_packet);
    send(&mut p.post, &p.uri, connect).await?;
    loop {
        let payload = poll(&mut p.get, &p.uri).await?;
        let mut sid = None;
        for packet in packets(&payload) {
            if packet == PING {
                send(&mut p.post, &p.uri, Bytes::from_static(PONG)).await?;
            } else if let Some(s) = connect_answer(packet)? {
                sid = Some(s);
            }
        }
        if let Some(sid) = sid {
            return Ok((sid, p));
        }
    }
}

/// Holds the session until the server ends it or the task is aborted.
pub async fn run(p: Polling, shared: Arc<Shared>) {
    let _ = hold(p).await;
    shared.closed.fetch_add(1, Ordering::Relaxed);
}

async fn hold(p: Polling) -> io::Result<()> {
    let Polling {
        mut get,
        mut post,
        uri,
    } = p;
    let mut ping = false;
    loop {
        // The pong goes out while the next GET already waits, as a browser's would.
        let pong = async {
            if ping {
                send(&mut post, &uri, Bytes::from_static(PONG)).await?;
            }
            Ok(())
        };
        let (payload, ()) = tokio::try_join!(poll(&mut get, &uri), pong)?;
        ping = false;
        for packet in packets(&payload) {
            match packet {
                PING => ping = true,
                [b'1', ..] => return Err(io::Error::other("closed by the server")),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_payloads() {
        let p: Vec<&[u8]> = packets(b"2\x1e40{\"sid\":\"x\"}").collect();
        assert_eq!(p, [&b"2"[..], br#"40{"sid":"x"}"#]);
        assert_eq!(packets(b"6").count(), 1);
    }
}
