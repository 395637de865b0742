//! Connection state recovery, as socket.io-client 4.6+ speaks it: the Socket.IO side.
//!
//! With `[recovery] enabled`, every socket gets a private id (`pid`) in its CONNECT
//! answer, and every replayable event carries its [`Offset`] as its last argument (the
//! client remembers the last one it saw). When a socket's session ends for a reason the
//! client recovers from (a transport closed or failed, a ping timeout, a full queue, a
//! server shutdown), its sid and rooms are saved under its pid in a [`SessionStore`]. A
//! client that comes back sends `pid` and `offset` in its CONNECT; if the session is still
//! saved and the offset still buffered, the socket gets its sid and rooms back and the
//! events emitted to it meanwhile, in order, then the ones emitted since.
//!
//! With `[auth]`, the CONNECT is checked first, as any other (see `connect`), and the
//! saved session keeps its user: a claim is honoured only for that same user, and the
//! recovered socket has its user, `data` and user room again, with the rooms a fresh
//! connect would be granted added to those it had.
//!
//! No event may be lost or doubled between the replay and live delivery: the restored
//! socket is registered in the rooms index *before* the missed events are read, holding
//! live deliveries; once the replay is sent, the held ones follow, except those whose
//! offset the replay already covered (see `Socket::release_hold`). Live deliveries of
//! covered offsets that arrive even later (logged before the read, published after it)
//! are dropped too.
//!
//! The store (this node's memory, or Redis in a cluster) is the adapter's business.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::Value;

use super::connect::{Joining, Restored, connect_socket};
use super::packet::{PacketType, Parser};
use super::{Client, Shared};
use crate::engine::sid::Sid;
use crate::engine::{CloseReason, Outbound, Session};

/// Where a replayable event sits in its namespace's log, in the form of a Redis stream
/// id (`<ms>-<seq>`), which it is in a cluster. Offsets of one namespace are ordered as
/// the events were logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset {
    /// Milliseconds part (the log's epoch on a single node).
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for Offset {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').ok_or(())?;
        let digits = |p: &str| -> Result<u64, ()> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            p.parse().map_err(|_| ())
        };
        Ok(Offset {
            ms: digits(ms)?,
            seq: digits(seq)?,
        })
    }
}

/// The offset an event carries as its last argument, if it carries one.
pub fn offset_of(values: &[Value]) -> Option<Offset> {
    values.last()?.as_str()?.parse().ok()
}

/// What is kept of a disconnected socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// Its sid, given back on recovery.
    pub sid: Sid,
    /// Its rooms, without its own sid room.
    pub rooms: Vec<String>,
    /// Its authenticated user, if any: only that user may recover it.
    pub user: Option<String>,
}

/// Events a recovering socket missed, oldest first, each with its offset, encoded in the
/// socket's parser.
pub type Missed = Vec<(Offset, Outbound)>;

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a store could not answer (Redis unreachable...).
pub type StoreError = String;

/// Where disconnected sockets and replayable events are kept.
pub trait SessionStore: Send + Sync + 'static {
    /// Keeps a disconnected socket for `recovery.max_disconnection_ms`. Must not block.
    fn persist(&self, namespace: &str, pid: Sid, session: SavedSession);

    /// Takes (removes) what was kept under `pid`; `None` when nothing is (any more).
    fn take(
        &self,
        namespace: &str,
        pid: Sid,
    ) -> BoxFuture<'_, Result<Option<SavedSession>, StoreError>>;

    /// The events after `offset` that a socket in `rooms` (its own sid included) was sent,
    /// encoded for `parser`, and the newest offset looked at; `None` when `offset` is no
    /// longer in the log.
    fn missed<'a>(
        &'a self,
        namespace: &'a str,
        offset: Offset,
        rooms: &'a [String],
        parser: Parser,
    ) -> BoxFuture<'a, Result<Option<(Missed, Offset)>, StoreError>>;
}

/// Whether a session that ended this way may be recovered (Node's recoverable reasons:
/// the client did not leave on purpose and was not refused).
pub fn recoverable(reason: CloseReason) -> bool {
    matches!(
        reason,
        CloseReason::TransportClose
            | CloseReason::TransportError
            | CloseReason::ClientClose
            | CloseReason::PingTimeout
            | CloseReason::QueueFull
            | CloseReason::ServerShutdown
    )
}

/// What a reconnecting client's CONNECT asks to recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The private id it was given.
    pub pid: Sid,
    /// The last offset it saw.
    pub offset: Offset,
}

impl Claim {
    /// Reads `pid` and `offset` from a CONNECT payload. The client sends no `offset` when it
    /// saw no replayable event: like Node, that is no claim.
    pub fn from_auth(auth: Option<&Value>) -> Option<Claim> {
        let auth = auth?.as_object()?;
        Some(Claim {
            pid: auth.get("pid")?.as_str()?.parse().ok()?,
            offset: auth.get("offset")?.as_str()?.parse().ok()?,
        })
    }
}

/// The recovery settings and store the Socket.IO layer uses.
pub struct Recovery {
    /// Where sessions and events are kept.
    pub store: Arc<dyn SessionStore>,
}

/// How one recovery attempt ended: the `outcome` label of `sio_relay_recoveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sid, rooms and missed events restored.
    Recovered,
    /// No session saved under the pid (never, expired, or already recovered), or one
    /// saved for another user.
    UnknownSession,
    /// The client's offset is no longer in the replay log (too old).
    UnknownOffset,
    /// The store could not be read.
    Unavailable,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::UnknownSession => "unknown_session",
            Outcome::UnknownOffset => "unknown_offset",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Recovers the socket `claim` names for `joining` (a connect `[auth]` accepted), or
/// connects a fresh one when that is not possible. The caller runs it on a task of its
/// own: the store may be remote.
pub(super) async fn restore(
    shared: &Arc<Shared>,
    session: &Arc<Session<Client>>,
    joining: Joining,
    claim: Claim,
) {
    let Some(recovery) = shared.recovery.get() else {
        return;
    };
    let store = recovery.store.clone();
    let (outcome, joining) = attempt(shared, &store, session, joining, claim).await;
    // `None`: the client went away meanwhile; nothing to count or connect.
    let Some(outcome) = outcome else { return };
    shared
        .metrics
        .recoveries
        .with_label_values(&[outcome.as_str()])
        .inc();
    if let Some(joining) = joining {
        tracing::debug!(outcome = outcome.as_str(), "connection state not recovered");
        connect_socket(shared, session, joining, None);
    }
}

/// Tries the recovery; gives `joining` back when a fresh socket must be connected instead.
async fn attempt(
    shared: &Arc<Shared>,
    store: &Arc<dyn SessionStore>,
    session: &Arc<Session<Client>>,
    joining: Joining,
    claim: Claim,
) -> (Option<Outcome>, Option<Joining>) {
    let namespace = joining.namespace.clone();
    let saved = match store.take(&namespace, claim.pid).await {
        Ok(Some(saved)) => saved,
        Ok(None) => return (Some(Outcome::UnknownSession), Some(joining)),
        Err(error) => {
            tracing::warn!(%error, "cannot read a saved session");
            return (Some(Outcome::Unavailable), Some(joining));
        }
    };
    if saved.user.as_deref() != joining.identity.user.as_deref() {
        tracing::debug!("a saved session claimed by another user; not recovered");
        return (Some(Outcome::UnknownSession), Some(joining));
    }
    // The events it missed are those sent to the rooms it was in.
    let mut rooms = saved.rooms.clone();
    rooms.push(saved.sid.to_string());
    let fallback = joining.clone();
    // It is back in its rooms, and in those a fresh connect gets (its user's room...).
    let mut restored_rooms = saved.rooms;
    for room in joining.rooms {
        if !restored_rooms.contains(&room) {
            restored_rooms.push(room);
        }
    }
    let joining = Joining {
        rooms: restored_rooms,
        ..joining
    };
    let ids = Restored {
        sid: saved.sid,
        pid: claim.pid,
    };
    // Registered first, holding live deliveries, so that nothing falls between the log read
    // below and live delivery. `None`: the client went away meanwhile, or already has a
    // socket there.
    let Some(socket) = connect_socket(shared, session, joining, Some(ids)) else {
        return (None, None);
    };
    // The missed events come encoded in the socket's parser.
    let missed = store.missed(&namespace, claim.offset, &rooms, socket.parser());
    let (missed, last) = match missed.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            socket.abandon();
            return (Some(Outcome::UnknownOffset), Some(fallback));
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the replay log");
            socket.abandon();
            return (Some(Outcome::Unavailable), Some(fallback));
        }
    };
    let pid = Some(claim.pid.as_str());
    socket.send_now(&socket.codec.connect(&namespace, socket.sid.as_str(), pid));
    shared.count_out(PacketType::Connect, 1);
    let replayed = missed.len() as u64;
    for (_, packet) in &missed {
        socket.send_now(packet);
    }
    shared.count_out(PacketType::Event, replayed);
    socket.release_hold(Some(last));
    shared.announce(&socket);
    (Some(Outcome::Recovered), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn offsets_read_and_print_as_stream_ids() {
        let offset: Offset = "1733212345678-42".parse().unwrap();
        assert_eq!(
            offset,
            Offset {
                ms: 1_733_212_345_678,
                seq: 42
            }
        );
        assert_eq!(offset.to_string(), "1733212345678-42");
        for bad in ["", "1", "1-", "-1", "a-1", "1-2-3", "+1-2"] {
            assert!(bad.parse::<Offset>().is_err(), "{bad}");
        }
        assert!("1-9".parse::<Offset>().unwrap() < "1-10".parse::<Offset>().unwrap());
    }

    #[test]
    fn claims_need_a_pid_and_an_offset() {
        let pid = Sid::random();
        let auth = json!({"pid": pid.as_str(), "offset": "5-1", "token": "x"});
        assert_eq!(
            Claim::from_auth(Some(&auth)),
            Some(Claim {
                pid,
                offset: Offset { ms: 5, seq: 1 }
            })
        );
        assert_eq!(Claim::from_auth(Some(&json!({"pid": pid.as_str()}))), None);
        assert_eq!(Claim::from_auth(Some(&json!({"offset": "5-1"}))), None);
        assert_eq!(Claim::from_auth(Some(&json!("x"))), None);
        assert_eq!(Claim::from_auth(None), None);
    }

    #[test]
    fn the_offset_is_the_last_string_argument() {
        assert_eq!(
            offset_of(&[json!(1), json!("7-8")]),
            Some(Offset { ms: 7, seq: 8 })
        );
        assert_eq!(offset_of(&[json!("7-8"), json!(1)]), None);
        assert_eq!(offset_of(&[]), None);
    }
}
