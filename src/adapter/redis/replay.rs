//! Connection state recovery across the cluster: saved sessions and the replay log kept
//! in Redis, so a client may come back on any node.
//!
//! - A disconnected socket is saved under `<prefix>-session#<nsp>#<pid>` (JSON: sid,
//!   rooms, and its authenticated user if any) with an expiry of `recovery.max_disconnection_ms`; a recovery takes it with
//!   `GETDEL`, so it is recovered at most once.
//! - Replayable emits are appended, by the node that receives them from the admin API, to
//!   the stream `<prefix>-log#<nsp>#` before they are published; the entry id is the
//!   event's offset, which rides in the published event as its last argument. The stream is
//!   trimmed to `recovery.max_buffered_messages` and to the age `max_disconnection_ms`
//!   (`XTRIM MINID`), and expires when no emit refreshes it.
//! - A recovery reads the entries after the client's offset (`XRANGE`), keeps those that
//!   reached the socket's rooms and encodes them again with their offset, in the
//!   recovering client's parser.
//!
//! Events published by other writers (Node servers, emitters, python-socketio) have no
//! offset and are not replayed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::Value;

use super::AdapterError;
use super::conn::Connections;
use crate::adapter::EmitRequest;
use crate::config::RecoveryConfig;
use crate::engine::sid::Sid;
use crate::socketio::packet::{Args, EventPacket, Parser};
use crate::socketio::recovery::{
    BoxFuture, Missed, Offset, SavedSession, SessionStore, StoreError,
};

/// The Redis side of recovery for one cluster member.
pub struct RedisReplay {
    conns: Arc<Connections>,
    max_age: Duration,
    max_messages: u64,
}

type Fields = HashMap<String, Vec<u8>>;
/// Stream entries as `XRANGE` gives them: id and fields.
type Entries = Vec<(String, Fields)>;

impl RedisReplay {
    pub(super) fn new(conns: Arc<Connections>, config: &RecoveryConfig) -> Self {
        RedisReplay {
            conns,
            max_age: Duration::from_millis(config.max_disconnection_ms),
            max_messages: config.max_buffered_messages,
        }
    }

    fn session_key(&self, nsp: &str, pid: Sid) -> String {
        format!("{}-session#{nsp}#{pid}", self.conns.channels.prefix())
    }

    fn log_key(&self, nsp: &str) -> String {
        format!("{}-log#{nsp}#", self.conns.channels.prefix())
    }

    fn publisher(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        self.conns
            .publisher()
            .ok_or_else(|| "not connected to Redis".to_owned())
    }

    /// Appends a replayable emit to its namespace's log; its offset.
    pub(super) async fn append(&self, request: &EmitRequest) -> Result<Offset, AdapterError> {
        let unavailable = |err: String| AdapterError::ClusterUnavailable(err);
        let mut publisher = self.publisher().map_err(unavailable)?;
        let key = self.log_key(&request.target.namespace);
        let mut xadd = redis::cmd("XADD");
        xadd.arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_messages)
            .arg("*")
            .arg("to")
            .arg(json(&request.target.to))
            .arg("except")
            .arg(json(&request.target.except))
            .arg("event")
            .arg(request.event.as_bytes())
            .arg("args")
            .arg(json(&request.args.values));
        for (i, attachment) in request.args.attachments.iter().enumerate() {
            xadd.arg(format!("b{i}")).arg(attachment.as_ref());
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let oldest = now_ms.saturating_sub(self.max_age.as_millis() as u64);
        let (id, ..): (String, i64, i64) = redis::pipe()
            .add_command(xadd)
            .cmd("XTRIM")
            .arg(&key)
            .arg("MINID")
            .arg("~")
            .arg(oldest)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.max_age.as_millis() as u64)
            .query_async(&mut publisher)
            .await
            .map_err(|err| unavailable(err.to_string()))?;
        id.parse()
            .map_err(|()| unavailable(format!("unexpected stream id {id}")))
    }
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON of strings and values cannot fail")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    sid: String,
    rooms: Vec<String>,
    /// Absent for a socket with no user (and in sessions saved before users existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

impl SessionStore for RedisReplay {
    fn persist(&self, namespace: &str, pid: Sid, session: SavedSession) {
        let Ok(mut publisher) = self.publisher() else {
            tracing::debug!("cluster: Redis unavailable, disconnected socket not saved");
            return;
        };
        let key = self.session_key(namespace, pid);
        let stored = Stored {
            sid: session.sid.to_string(),
            rooms: session.rooms,
            user: session.user,
        };
        let value = serde_json::to_vec(&stored).expect("JSON of strings cannot fail");
        let ttl = self.max_age.as_millis() as u64;
        tokio::spawn(async move {
            let result = redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut publisher)
                .await;
            if let Err(error) = result {
                tracing::debug!(%error, "cluster: disconnected socket not saved");
            }
        });
    }

    fn take(
        &self,
        namespace: &str,
        pid: Sid,
    ) -> BoxFuture<'_, Result<Option<SavedSession>, StoreError>> {
        let key = self.session_key(namespace, pid);
        Box::pin(async move {
            let mut publisher = self.publisher()?;
            let value: Option<Vec<u8>> = redis::cmd("GETDEL")
                .arg(&key)
                .query_async(&mut publisher)
                .await
                .map_err(|err| err.to_string())?;
            let Some(value) = value else {
                return Ok(None);
            };
            let stored: Stored = serde_json::from_slice(&value).map_err(|err| err.to_string())?;
            let sid = stored
                .sid
                .parse()
                .map_err(|_| format!("saved session with a bad sid {}", stored.sid))?;
            Ok(Some(SavedSession {
                sid,
                rooms: stored.rooms,
                user: stored.user,
            }))
        })
    }

    fn missed<'a>(
        &'a self,
        namespace: &'a str,
        offset: Offset,
        rooms: &'a [String],
        parser: Parser,
    ) -> BoxFuture<'a, Result<Option<(Missed, Offset)>, StoreError>> {
        Box::pin(async move {
            let mut publisher = self.publisher()?;
            let key = self.log_key(namespace);
            let at = offset.to_string();
            // One MULTI: the client's own entry (still logged?) and everything after it.
            let (own, after): (Entries, Entries) = redis::pipe()
                .atomic()
                .cmd("XRANGE")
                .arg(&key)
                .arg(&at)
                .arg(&at)
                .cmd("XRANGE")
                .arg(&key)
                .arg(format!("({at}"))
                .arg("+")
                .query_async(&mut publisher)
                .await
                .map_err(|err| err.to_string())?;
            if own.is_empty() {
                return Ok(None);
            }
            let mut last = offset;
            let mut missed = Vec::new();
            for (id, fields) in &after {
                let Ok(entry_offset) = id.parse::<Offset>() else {
                    continue;
                };
                last = entry_offset;
                match replayed(namespace, entry_offset, fields, rooms, parser) {
                    Ok(Some(packet)) => missed.push((entry_offset, packet)),
                    Ok(None) => {}
                    Err(reason) => {
                        tracing::warn!(%id, %reason, "cluster: unreadable replay log entry")
                    }
                }
            }
            Ok(Some((missed, last)))
        })
    }
}

/// The packet of one log entry as first delivered, in `parser`, if it reached `rooms`.
fn replayed(
    nsp: &str,
    offset: Offset,
    fields: &Fields,
    rooms: &[String],
    parser: Parser,
) -> Result<Option<crate::engine::Outbound>, String> {
    let field = |name: &str| fields.get(name).ok_or_else(|| format!("no `{name}`"));
    let list = |name: &str| -> Result<Vec<String>, String> {
        serde_json::from_slice(field(name)?).map_err(|err| format!("`{name}`: {err}"))
    };
    let (to, except) = (list("to")?, list("except")?);
    let included = to.is_empty() || rooms.iter().any(|r| to.contains(r));
    if !included || rooms.iter().any(|r| except.contains(r)) {
        return Ok(None);
    }
    let event = std::str::from_utf8(field("event")?).map_err(|_| "`event` is not UTF-8")?;
    let mut values: Vec<Value> =
        serde_json::from_slice(field("args")?).map_err(|err| format!("`args`: {err}"))?;
    values.push(Value::String(offset.to_string()));
    let attachments = (0..)
        .map_while(|i| fields.get(&format!("b{i}")))
        .map(|b| Bytes::copy_from_slice(b))
        .collect();
    let args = Args {
        values,
        attachments,
    };
    let event = EventPacket::new(nsp.to_owned(), event.to_owned(), args, None);
    Ok(Some(event.encoded(parser).clone()))
}
