//! Connection state recovery on a single node: the replay log of each namespace and the
//! saved sessions, in this node's memory.
//!
//! The log keeps replayable events (no acknowledgement asked) as the JSON parser's
//! encoded packets that were delivered, shared with the delivery itself, each with its
//! target rooms and except rooms: JSON clients get those very bytes again, msgpack
//! clients the event read back from them and encoded for their parser. Only the JSON form
//! is kept: the decoded arguments would cost several times the bytes. It is bounded per
//! namespace by `recovery.max_buffered_messages`, `recovery.max_buffered_bytes` and the
//! age `recovery.max_disconnection_ms`; the oldest events go first. Saved sessions expire
//! after `recovery.max_disconnection_ms`.
//!
//! Offsets are `<epoch>-<seq>`: the epoch is the log's creation time in milliseconds, so
//! an offset from another process is never mistaken for one of this log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::IntGauge;

use super::Target;
use crate::config::RecoveryConfig;
use crate::engine::Outbound;
use crate::engine::sid::Sid;
use crate::metrics::Metrics;
use crate::socketio::packet::{EventPacket, Parser, reencode_event};
use crate::socketio::recovery::{
    BoxFuture, Missed, Offset, SavedSession, SessionStore, StoreError,
};

/// What one logged event costs besides its packet: the entry and its room names.
const ENTRY_OVERHEAD: usize = 96;

struct Entry {
    seq: u64,
    at: Instant,
    to: Box<[String]>,
    except: Box<[String]>,
    packet: Outbound,
    cost: usize,
}

#[derive(Default)]
struct Log {
    entries: VecDeque<Entry>,
    /// The sequence number the next event gets.
    next: u64,
    bytes: usize,
}

struct Saved {
    session: SavedSession,
    until: Instant,
}

/// The replay logs and saved sessions of this node.
pub struct MemoryReplay {
    epoch: u64,
    max_age: Duration,
    max_messages: usize,
    max_bytes: usize,
    /// One lock per namespace log: held to append (offset, encode, push) and to read.
    logs: Mutex<HashMap<Arc<str>, Arc<Mutex<Log>>>>,
    sessions: Mutex<HashMap<(Arc<str>, Sid), Saved>>,
    buffered_bytes: IntGauge,
    buffered_messages: IntGauge,
}

impl MemoryReplay {
    /// Empty logs bounded by `config`.
    pub fn new(config: &RecoveryConfig, metrics: &Metrics) -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        MemoryReplay {
            epoch,
            max_age: Duration::from_millis(config.max_disconnection_ms),
            max_messages: usize::try_from(config.max_buffered_messages).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(config.max_buffered_bytes).unwrap_or(usize::MAX),
            logs: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            buffered_bytes: metrics.recovery_buffered_bytes.clone(),
            buffered_messages: metrics.recovery_buffered_messages.clone(),
        }
    }

    fn log(&self, namespace: &str) -> Arc<Mutex<Log>> {
        let mut logs = self.logs.lock().expect("logs lock poisoned");
        if let Some(log) = logs.get(namespace) {
            return log.clone();
        }
        logs.entry(Arc::from(namespace)).or_default().clone()
    }

    /// Logs one event for `target`: `make` gets its offset (to append as the last
    /// argument) and returns the event, which is returned for delivery; its JSON encoding
    /// is kept (and so made here, once, for the delivery too). Offsets are handed out and
    /// logged in one step, so the log is in offset order.
    pub fn append(
        &self,
        target: &Target,
        make: impl FnOnce(Offset) -> Arc<EventPacket>,
    ) -> (Offset, Arc<EventPacket>) {
        let log = self.log(&target.namespace);
        let mut log = log.lock().expect("log lock poisoned");
        let offset = Offset {
            ms: self.epoch,
            seq: log.next,
        };
        let event = make(offset);
        let packet = event.encoded(Parser::Json).clone();
        let cost = packet.frames().iter().map(|f| f.len()).sum::<usize>()
            + ENTRY_OVERHEAD
            + target
                .to
                .iter()
                .chain(&target.except)
                .map(String::len)
                .sum::<usize>();
        log.next += 1;
        log.bytes += cost;
        log.entries.push_back(Entry {
            seq: offset.seq,
            at: Instant::now(),
            to: target.to.clone().into_boxed_slice(),
            except: target.except.clone().into_boxed_slice(),
            packet,
            cost,
        });
        self.buffered_bytes.add(cost as i64);
        self.buffered_messages.inc();
        self.trim(&mut log);
        (offset, event)
    }

    /// Drops the oldest events beyond the count, size and age bounds.
    fn trim(&self, log: &mut Log) {
        let now = Instant::now();
        while let Some(front) = log.entries.front() {
            let over = log.entries.len() > self.max_messages
                || log.bytes > self.max_bytes
                || now.duration_since(front.at) > self.max_age;
            if !over {
                break;
            }
            let cost = front.cost;
            log.entries.pop_front();
            log.bytes -= cost;
            self.buffered_bytes.sub(cost as i64);
            self.buffered_messages.dec();
        }
    }
}

impl Drop for MemoryReplay {
    fn drop(&mut self) {
        // The gauges belong to the metrics, which may outlive this store (tests).
        let logs = self.logs.get_mut().expect("logs lock poisoned");
        for log in logs.values() {
            let log = log.lock().expect("log lock poisoned");
            self.buffered_bytes.sub(log.bytes as i64);
            self.buffered_messages.sub(log.entries.len() as i64);
        }
    }
}

/// Whether an event for `to` except `except` reached a socket in `rooms` (Node's rule).
fn reached(rooms: &[String], to: &[String], except: &[String]) -> bool {
    let included = to.is_empty() || rooms.iter().any(|r| to.contains(r));
    included && !rooms.iter().any(|r| except.contains(r))
}

impl SessionStore for MemoryReplay {
    fn persist(&self, namespace: &str, pid: Sid, session: SavedSession) {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("sessions lock poisoned");
        // Expired sessions go as new ones come: the map never outgrows the sockets that
        // disconnected within the window.
        sessions.retain(|_, saved| saved.until > now);
        sessions.insert(
            (Arc::from(namespace), pid),
            Saved {
                session,
                until: now + self.max_age,
            },
        );
    }

    fn take(
        &self,
        namespace: &str,
        pid: Sid,
    ) -> BoxFuture<'_, Result<Option<SavedSession>, StoreError>> {
        let saved = self
            .sessions
            .lock()
            .expect("sessions lock poisoned")
            .remove(&(Arc::from(namespace), pid))
            .filter(|saved| saved.until > Instant::now())
            .map(|saved| saved.session);
        Box::pin(std::future::ready(Ok(saved)))
    }

    fn missed<'a>(
        &'a self,
        namespace: &'a str,
        offset: Offset,
        rooms: &'a [String],
        parser: Parser,
    ) -> BoxFuture<'a, Result<Option<(Missed, Offset)>, StoreError>> {
        let found = (|| {
            if offset.ms != self.epoch {
                return Ok(None);
            }
            let log = self.log(namespace);
            let mut log = log.lock().expect("log lock poisoned");
            self.trim(&mut log);
            let Some(first) = log.entries.front().map(|e| e.seq) else {
                return Ok(None);
            };
            let index = offset
                .seq
                .checked_sub(first)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < log.entries.len());
            let Some(index) = index else {
                return Ok(None);
            };
            let mut missed = Vec::new();
            for e in log.entries.iter().skip(index + 1) {
                if !reached(rooms, &e.to, &e.except) {
                    continue;
                }
                let offset = Offset {
                    ms: self.epoch,
                    seq: e.seq,
                };
                // Only the JSON form is logged; a msgpack client gets it re-encoded.
                let packet = reencode_event(namespace, &e.packet, parser)
                    .ok_or_else(|| format!("logged event {offset} does not re-encode"))?;
                missed.push((offset, packet));
            }
            let last = Offset {
                ms: self.epoch,
                seq: log.next.saturating_sub(1),
            };
            Ok(Some((missed, last)))
        })();
        Box::pin(std::future::ready(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::packet::Frame;
    use crate::socketio::packet::Args;

    fn config(messages: u64) -> RecoveryConfig {
        RecoveryConfig {
            enabled: true,
            max_buffered_messages: messages,
            ..RecoveryConfig::default()
        }
    }

    fn target(to: &[&str], except: &[&str]) -> Target {
        Target {
            namespace: "/".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            except: except.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn packet(offset: Offset) -> Arc<EventPacket> {
        let args = Args {
            values: vec![offset.to_string().into()],
            attachments: Vec::new(),
        };
        Arc::new(EventPacket::new("/".into(), "e".into(), args, None))
    }

    fn texts(missed: &Missed) -> Vec<String> {
        missed.iter().map(|(o, _)| o.seq.to_string()).collect()
    }

    #[tokio::test]
    async fn replays_what_reached_the_rooms_after_the_offset() {
        let metrics = Metrics::new();
        let replay = MemoryReplay::new(&config(100), &metrics);
        let (first, _) = replay.append(&target(&["a"], &[]), packet);
        replay.append(&target(&["b"], &[]), packet);
        replay.append(&target(&[], &[]), packet);
        replay.append(&target(&[], &["a"]), packet);
        replay.append(&target(&["a", "b"], &["c"]), packet);
        let rooms = vec!["a".to_string(), "sid".to_string()];
        let (missed, last) = replay
            .missed("/", first, &rooms, Parser::Json)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(texts(&missed), ["2", "4"]);
        assert_eq!(last.seq, 4);
        // JSON clients get the logged bytes; msgpack clients the same events re-encoded.
        let json = &missed[0].1.frames()[0];
        assert!(
            matches!(json, Frame::Text(t) if t.ends_with(b"-2\"]")),
            "{json:?}"
        );
        let (msgpack, _) = replay
            .missed("/", first, &rooms, Parser::Msgpack)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(texts(&msgpack), ["2", "4"]);
        let offset = format!("{}-2", first.ms);
        assert!(matches!(
            &msgpack[0].1.frames()[0],
            Frame::Binary(b) if b.ends_with(offset.as_bytes())
        ));
        assert!(metrics.recovery_buffered_messages.get() == 5);
        // An offset of another process, or of nothing logged, is unknown.
        let foreign = Offset { ms: 1, seq: 0 };
        assert!(
            replay
                .missed("/", foreign, &rooms, Parser::Json)
                .await
                .unwrap()
                .is_none()
        );
        let ahead = Offset { seq: 9, ..first };
        assert!(
            replay
                .missed("/", ahead, &rooms, Parser::Json)
                .await
                .unwrap()
                .is_none()
        );
        drop(replay);
        assert_eq!(metrics.recovery_buffered_messages.get(), 0);
        assert_eq!(metrics.recovery_buffered_bytes.get(), 0);
    }

    #[tokio::test]
    async fn the_oldest_events_go_beyond_the_bound() {
        let metrics = Metrics::new();
        let replay = MemoryReplay::new(&config(3), &metrics);
        let (first, _) = replay.append(&target(&[], &[]), packet);
        let (second, _) = replay.append(&target(&[], &[]), packet);
        for _ in 0..3 {
            replay.append(&target(&[], &[]), packet);
        }
        assert_eq!(metrics.recovery_buffered_messages.get(), 3);
        assert!(
            replay
                .missed("/", first, &[], Parser::Json)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            replay
                .missed("/", second, &[], Parser::Json)
                .await
                .unwrap()
                .is_none()
        );
        let third = Offset { seq: 2, ..first };
        let (missed, _) = replay
            .missed("/", third, &[], Parser::Json)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(texts(&missed), ["3", "4"]);
    }

    #[tokio::test]
    async fn a_session_is_taken_once() {
        let metrics = Metrics::new();
        let replay = MemoryReplay::new(&config(3), &metrics);
        let pid = Sid::random();
        let saved = SavedSession {
            sid: Sid::random(),
            rooms: vec!["a".into()],
            user: Some("u1".into()),
        };
        replay.persist("/", pid, saved.clone());
        assert_eq!(replay.take("/other", pid).await.unwrap(), None);
        assert_eq!(replay.take("/", pid).await.unwrap(), Some(saved));
        assert_eq!(replay.take("/", pid).await.unwrap(), None);
    }
}
