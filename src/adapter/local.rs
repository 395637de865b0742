//! This node's rooms index: per namespace, room → sockets and socket → rooms, and the
//! delivery of one encoded packet to the sockets a [`Target`] selects.
//!
//! A socket's own sid room is implicit: a name that is a connected sid selects that
//! socket, so connecting costs no room entry.
//!
//! Locks: one `RwLock` per namespace, held only for map work, never across an await or
//! a delivery. A fan-out collects its recipients under the read lock, then delivers
//! after releasing it, since a delivery may write to the client's socket.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::replay::MemoryReplay;
use super::{
    AckReply, AdapterError, Applied, EmitOutcome, EmitRequest, Listing, RoomInfo, SocketInfo,
    Target,
};
use crate::engine::sid::Sid;
use crate::metrics::Metrics;
use crate::socketio::packet::{EventPacket, PacketType};
use crate::socketio::recovery::offset_of;
use crate::socketio::socket::Socket;

type Room = Arc<str>;

/// One namespace's sockets and rooms.
#[derive(Default)]
struct Index {
    sockets: HashMap<Sid, Member>,
    rooms: HashMap<Room, HashSet<Sid>>,
}

struct Member {
    socket: Arc<Socket>,
    rooms: Vec<Room>,
}

#[derive(Default)]
struct Namespace {
    index: RwLock<Index>,
    /// Ack ids are per namespace, so one id can be shared by every recipient of an
    /// encoded-once broadcast.
    next_ack_id: AtomicU64,
}

/// The in-memory rooms index of this node.
pub struct LocalAdapter {
    namespaces: RwLock<HashMap<Arc<str>, Arc<Namespace>>>,
    /// Cancelled on shutdown: ack waits answer at once with what they have.
    shutdown: CancellationToken,
    events_out: IntCounter,
    binary_events_out: IntCounter,
    metrics: Metrics,
    /// Told the name of a namespace when its first socket on this node joins it.
    on_new_namespace: OnceLock<NamespaceHook>,
    /// Where replayable events get their offsets, with connection state recovery on.
    offsets: OnceLock<Offsets>,
}

/// Where the offsets of replayable events come from (connection state recovery).
pub enum Offsets {
    /// This node's replay log hands them out (one node).
    Log(Arc<MemoryReplay>),
    /// They arrive as the events' last argument (a cluster logs them in Redis).
    Carried,
}

/// See [`LocalAdapter::on_new_namespace`].
type NamespaceHook = Box<dyn Fn(&str) + Send + Sync>;

impl Index {
    /// Calls `f` for each socket `target` selects, each once.
    fn for_each_target(&self, target: &Target, mut f: impl FnMut(&Arc<Socket>)) {
        let excluded = self.resolve(&target.except);
        let keep = |sid: &Sid| !excluded.as_ref().is_some_and(|e| e.contains(sid));
        if target.to.is_empty() {
            for (sid, member) in &self.sockets {
                if keep(sid) {
                    f(&member.socket);
                }
            }
            return;
        }
        if let [name] = target.to.as_slice() {
            // One name, the usual case: a room, a sid, or both; no set needed.
            let room = self.rooms.get(name.as_str());
            for sid in room.into_iter().flatten() {
                if keep(sid)
                    && let Some(member) = self.sockets.get(sid)
                {
                    f(&member.socket);
                }
            }
            if let Some(sid) = sid_of(name) {
                let in_room = room.is_some_and(|members| members.contains(&sid));
                if let Some(member) = self.sockets.get(&sid).filter(|_| !in_room && keep(&sid)) {
                    f(&member.socket);
                }
            }
            return;
        }
        let selected = self.resolve(&target.to).unwrap_or_default();
        for sid in &selected {
            if keep(sid)
                && let Some(member) = self.sockets.get(sid)
            {
                f(&member.socket);
            }
        }
    }

    /// The sids named by room names or sids; `None` for an empty list.
    fn resolve(&self, names: &[String]) -> Option<HashSet<Sid>> {
        if names.is_empty() {
            return None;
        }
        let mut sids = HashSet::new();
        for name in names {
            if let Some(room) = self.rooms.get(name.as_str()) {
                sids.extend(room.iter().copied());
            }
            if let Some(sid) = sid_of(name).filter(|sid| self.sockets.contains_key(sid)) {
                sids.insert(sid);
            }
        }
        Some(sids)
    }

    fn selected(&self, target: &Target) -> Vec<Sid> {
        let mut sids = Vec::new();
        self.for_each_target(target, |socket| sids.push(socket.sid));
        sids
    }

    fn join(&mut self, sid: &Sid, room: &str) {
        let Some(member) = self.sockets.get_mut(sid) else {
            return;
        };
        if member.rooms.iter().any(|r| &**r == room) {
            return;
        }
        // Every member of a room shares the index's one copy of its name.
        let room = match self.rooms.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => Room::from(room),
        };
        member.rooms.push(room.clone());
        self.rooms.entry(room).or_default().insert(*sid);
    }

    fn leave(&mut self, sid: &Sid, room: &str) {
        let Some(member) = self.sockets.get_mut(sid) else {
            return;
        };
        let Some(position) = member.rooms.iter().position(|r| &**r == room) else {
            return;
        };
        member.rooms.swap_remove(position);
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(sid);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    fn remove(&mut self, sid: &Sid) -> Vec<Room> {
        self.remove_member(sid).map_or_else(Vec::new, |m| m.rooms)
    }

    fn remove_member(&mut self, sid: &Sid) -> Option<Member> {
        let member = self.sockets.remove(sid)?;
        for room in &member.rooms {
            if let Some(members) = self.rooms.get_mut(room) {
                members.remove(sid);
                if members.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        Some(member)
    }
}

fn sid_of(name: &str) -> Option<Sid> {
    name.parse().ok()
}

impl LocalAdapter {
    /// An empty index; `shutdown` ends ack waits early.
    pub fn new(metrics: Metrics, shutdown: CancellationToken) -> Self {
        LocalAdapter {
            namespaces: RwLock::new(HashMap::new()),
            shutdown,
            events_out: metrics
                .packets
                .with_label_values(&["out", PacketType::Event.as_str()]),
            binary_events_out: metrics
                .packets
                .with_label_values(&["out", PacketType::BinaryEvent.as_str()]),
            metrics,
            on_new_namespace: OnceLock::new(),
            offsets: OnceLock::new(),
        }
    }

    /// Turns on offsets for replayable events (connection state recovery). Call before
    /// serving; only the first call counts.
    pub fn set_offsets(&self, offsets: Offsets) {
        let _ = self.offsets.set(offsets);
    }

    /// Sets what to call, with the namespace's name, when the first socket of a namespace
    /// joins it on this node (the cluster subscribes the namespace then). Called outside
    /// every lock of the index; must not block. Only the first hook set is kept.
    pub fn on_new_namespace(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.on_new_namespace.set(Box::new(hook));
    }

    fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces
            .read()
            .expect("namespaces lock poisoned")
            .get(name)
            .cloned()
    }

    /// Registers a connected socket.
    pub fn add(&self, socket: Arc<Socket>) {
        self.add_in_rooms(socket, &[]);
    }

    /// Registers a connected socket already in `rooms` (those authentication gave it, or a
    /// recovered socket's), so no emit can find it in the index but not yet in its rooms.
    pub fn add_in_rooms(&self, socket: Arc<Socket>, rooms: &[String]) {
        let created = {
            let mut namespaces = self.namespaces.write().expect("namespaces lock poisoned");
            let created = !namespaces.contains_key(&socket.namespace);
            let namespace = namespaces.entry(socket.namespace.clone()).or_default();
            let mut index = namespace.index.write().expect("index lock poisoned");
            index.sockets.insert(
                socket.sid,
                Member {
                    socket: socket.clone(),
                    // Exactly these: most sockets join no other room (a push grows it).
                    rooms: Vec::with_capacity(rooms.len()),
                },
            );
            for room in rooms {
                index.join(&socket.sid, room);
            }
            created
        };
        if created && let Some(hook) = self.on_new_namespace.get() {
            hook(&socket.namespace);
        }
    }

    /// Removes a socket and its room memberships; forgets a namespace left empty. Returns
    /// the rooms it was in (without its sid room).
    pub fn remove(&self, socket: &Socket) -> Vec<Room> {
        let mut namespaces = self.namespaces.write().expect("namespaces lock poisoned");
        let Some(namespace) = namespaces.get(&socket.namespace) else {
            return Vec::new();
        };
        let (rooms, empty) = {
            let mut index = namespace.index.write().expect("index lock poisoned");
            let rooms = index.remove(&socket.sid);
            (rooms, index.sockets.is_empty())
        };
        if empty {
            namespaces.remove(&socket.namespace);
        }
        rooms
    }

    /// Emits to this node's sockets; with an ack timeout waits for their answers.
    pub async fn emit(&self, mut request: EmitRequest) -> Result<EmitOutcome, AdapterError> {
        let Some(namespace) = self.namespace(&request.target.namespace) else {
            // Nobody here to reach, but a recovering socket may miss it: logged anyway.
            if let (Some(Offsets::Log(log)), None) = (self.offsets.get(), request.ack_timeout) {
                log.append(&request.target, |offset| {
                    request.args.values.push(offset.to_string().into());
                    Arc::new(EventPacket::new(
                        request.target.namespace.clone(),
                        request.event,
                        request.args,
                        None,
                    ))
                });
            }
            return Ok(EmitOutcome::default());
        };
        let ack_id = request
            .ack_timeout
            .map(|_| namespace.next_ack_id.fetch_add(1, Ordering::Relaxed));
        let binary = !request.args.attachments.is_empty();
        // Encoded on first use, once per parser among the recipients (and the replays). A
        // replayable event gets its offset as its last argument (see `Offsets`); it is
        // logged before the recipients are picked, which recovery relies on.
        let (packet, offset) = match (self.offsets.get(), ack_id) {
            (Some(Offsets::Log(log)), None) => {
                let (offset, packet) = log.append(&request.target, |offset| {
                    request.args.values.push(offset.to_string().into());
                    Arc::new(EventPacket::new(
                        request.target.namespace.clone(),
                        request.event,
                        request.args,
                        None,
                    ))
                });
                (packet, Some(offset))
            }
            (offsets, _) => {
                let offset = offsets.and_then(|_| offset_of(&request.args.values));
                let packet = EventPacket::new(
                    request.target.namespace.clone(),
                    request.event,
                    request.args,
                    ack_id,
                );
                (Arc::new(packet), offset)
            }
        };
        // Only an acknowledged emit needs a channel for the answers.
        let (ack_tx, ack_rx) = match ack_id {
            Some(id) => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some((id, tx)), Some(rx))
            }
            None => (None, None),
        };
        // Delivery can write to sockets (see `Session::send`), so it happens after the
        // index lock is released: joins and connects never wait for a fan-out.
        let mut targets = Vec::new();
        namespace
            .index
            .read()
            .expect("index lock poisoned")
            .for_each_target(&request.target, |socket| targets.push(socket.clone()));
        let mut awaited = Vec::new();
        let mut recipients = 0;
        for socket in targets {
            if let Some((id, tx)) = &ack_tx {
                socket.expect_ack(*id, tx.clone());
            }
            if socket.deliver(&packet, offset) {
                recipients += 1;
                if ack_tx.is_some() {
                    awaited.push(socket);
                }
            } else if let Some((id, _)) = &ack_tx {
                socket.cancel_ack(*id);
            }
        }
        drop(ack_tx);
        let counter = if binary {
            &self.binary_events_out
        } else {
            &self.events_out
        };
        counter.inc_by(recipients as u64);
        let (Some(id), Some(timeout), Some(ack_rx)) = (ack_id, request.ack_timeout, ack_rx) else {
            return Ok(EmitOutcome {
                recipients,
                ..EmitOutcome::default()
            });
        };
        let acks = self.collect_acks(ack_rx, awaited.len(), timeout).await;
        let answered: HashSet<Sid> = acks.iter().map(|(sid, _)| *sid).collect();
        let mut timeouts = Vec::new();
        for socket in &awaited {
            if !answered.contains(&socket.sid) {
                socket.cancel_ack(id);
                timeouts.push(socket.sid.to_string());
            }
        }
        self.metrics
            .acks
            .with_label_values(&["answered"])
            .inc_by(acks.len() as u64);
        self.metrics
            .acks
            .with_label_values(&["timed_out"])
            .inc_by(timeouts.len() as u64);
        Ok(EmitOutcome {
            recipients,
            acks: acks
                .into_iter()
                .map(|(sid, args)| AckReply {
                    sid: Some(sid.to_string()),
                    args,
                })
                .collect(),
            timeouts,
            partial: false,
        })
    }

    /// Collects up to `expected` acks until the timeout, or at once on shutdown.
    async fn collect_acks(
        &self,
        mut answers: mpsc::UnboundedReceiver<(Sid, crate::socketio::packet::Args)>,
        expected: usize,
        timeout: Duration,
    ) -> Vec<(Sid, crate::socketio::packet::Args)> {
        let mut acks = Vec::with_capacity(expected);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        while acks.len() < expected {
            tokio::select! {
                answer = answers.recv() => match answer {
                    Some(answer) => acks.push(answer),
                    None => break,
                },
                _ = &mut deadline => break,
                _ = self.shutdown.cancelled() => break,
            }
        }
        acks
    }

    /// Makes the target's sockets join `rooms`.
    pub fn join(&self, target: &Target, rooms: &[String]) -> Applied {
        self.update(target, |index, sid| {
            for room in rooms {
                index.join(sid, room);
            }
        })
    }

    /// Makes the target's sockets leave `rooms`.
    pub fn leave(&self, target: &Target, rooms: &[String]) -> Applied {
        self.update(target, |index, sid| {
            for room in rooms {
                index.leave(sid, room);
            }
        })
    }

    fn update(&self, target: &Target, mut change: impl FnMut(&mut Index, &Sid)) -> Applied {
        let Some(namespace) = self.namespace(&target.namespace) else {
            return Applied::default();
        };
        let mut index = namespace.index.write().expect("index lock poisoned");
        let sids = index.selected(target);
        for sid in &sids {
            change(&mut index, sid);
        }
        Applied {
            sockets: sids.len(),
            partial: false,
        }
    }

    /// Disconnects the target's sockets from their namespace.
    pub fn disconnect(&self, target: &Target) -> Applied {
        let Some(namespace) = self.namespace(&target.namespace) else {
            return Applied::default();
        };
        let removed: Vec<Arc<Socket>> = {
            let mut index = namespace.index.write().expect("index lock poisoned");
            let sids = index.selected(target);
            sids.iter()
                .filter_map(|sid| index.remove_member(sid).map(|m| m.socket))
                .collect()
        };
        for socket in &removed {
            socket.disconnect_by_server();
        }
        Applied {
            sockets: removed.len(),
            partial: false,
        }
    }

    /// Lists the target's sockets on this node.
    pub fn sockets(&self, target: &Target) -> Listing<SocketInfo> {
        let Some(namespace) = self.namespace(&target.namespace) else {
            return Listing::default();
        };
        let index = namespace.index.read().expect("index lock poisoned");
        let mut items = Vec::new();
        index.for_each_target(target, |socket| {
            let rooms = index.sockets[&socket.sid]
                .rooms
                .iter()
                .map(|r| r.to_string())
                .collect();
            items.push(SocketInfo {
                sid: socket.sid.to_string(),
                namespace: socket.namespace.to_string(),
                rooms,
                transport: Some(socket.transport()),
                parser: Some(socket.parser().as_str().to_owned()),
                eio: Some(socket.eio()),
                address: Some(socket.address().to_string()),
                connected_at: Some(
                    humantime::format_rfc3339_millis(socket.connected_at()).to_string(),
                ),
                user: socket.user().map(str::to_owned),
                data: socket.data().cloned(),
            });
        });
        Listing {
            items,
            partial: false,
        }
    }

    /// Whether some socket of this node is in `room` of `namespace` (a connected sid is a
    /// room too). Two lookups under read locks; nothing is listed or copied.
    pub fn has_room(&self, namespace: &str, room: &str) -> bool {
        let Some(namespace) = self.namespace(namespace) else {
            return false;
        };
        let index = namespace.index.read().expect("index lock poisoned");
        index.rooms.contains_key(room)
            || sid_of(room).is_some_and(|sid| index.sockets.contains_key(&sid))
    }

    /// Lists the namespace's rooms on this node (sid rooms are implicit, never listed).
    pub fn rooms(&self, namespace: &str) -> Listing<RoomInfo> {
        let Some(namespace) = self.namespace(namespace) else {
            return Listing::default();
        };
        let index = namespace.index.read().expect("index lock poisoned");
        let items = index
            .rooms
            .iter()
            .map(|(name, members)| RoomInfo {
                name: name.to_string(),
                size: members.len(),
            })
            .collect();
        Listing {
            items,
            partial: false,
        }
    }
}
