//! The Engine.IO close packet owed to long-polling clients whose session the relay closed.
//!
//! When the relay ends a polling session for a reason of its own, the reference server
//! answers a GET that is waiting with the close packet, and socket.io-client then reports
//! "transport close" and reconnects; [`polling::get`](super::polling) does that. When the
//! relay closed the session on purpose (connect timeout, a client that cannot keep up)
//! and no GET was waiting, the reference server keeps the packet for the next GET: this
//! set remembers those sessions, so that the next GET, which finds the session gone, still
//! gets it. An entry is taken by that GET, or forgotten once the client, silent that long,
//! would have given up on the session itself.
//!
//! Shutdown is the exception: it ends polling sessions without the packet, which
//! python-socketio takes as final (it would not reconnect to another node).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use super::sid::Sid;

/// Where a session's close packet stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Debt {
    /// Its client has not had it yet: the next GET gets it.
    Owed,
    /// A GET that was waiting when the session closed got it, before the supervisor
    /// recorded the debt; the supervisor then clears this.
    Paid,
}

/// The ended polling sessions whose next GET gets the close packet.
///
/// A waiting GET and the session's supervisor both wake when the session closes, in
/// either order; each clears what the other left, so the packet goes out once.
#[derive(Default)]
pub(super) struct OwedClosePackets {
    /// Held only to look up, insert or remove one sid.
    debts: Mutex<HashMap<Sid, Debt>>,
}

impl OwedClosePackets {
    /// The supervisor of an ended session: its client is owed the close packet, unless a
    /// waiting GET already took it. `true` when it is now owed.
    pub(super) fn owe(&self, sid: Sid) -> bool {
        match self.lock().entry(sid) {
            Entry::Vacant(entry) => {
                entry.insert(Debt::Owed);
                true
            }
            Entry::Occupied(entry) => {
                entry.remove();
                false
            }
        }
    }

    /// A GET that was waiting when the session closed answered with the close packet.
    pub(super) fn paid(&self, sid: Sid) {
        match self.lock().entry(sid) {
            Entry::Vacant(entry) => {
                entry.insert(Debt::Paid);
            }
            Entry::Occupied(entry) => {
                entry.remove();
            }
        }
    }

    /// Whether a GET for `sid`, whose session is gone, gets the close packet; the debt is
    /// settled by this call.
    pub(super) fn take(&self, sid: &str) -> bool {
        let Ok(sid) = sid.parse::<Sid>() else {
            return false;
        };
        let mut debts = self.lock();
        if debts.get(&sid) == Some(&Debt::Owed) {
            debts.remove(&sid);
            return true;
        }
        false
    }

    /// Drops the debt unpaid: the client never came back.
    pub(super) fn forget(&self, sid: &Sid) {
        self.lock().remove(sid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Debt>> {
        self.debts.lock().expect("close packet debts poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_get_takes_an_owed_packet_once() {
        let owed = OwedClosePackets::default();
        let sid = Sid::random();
        assert!(!owed.take(sid.as_str()));
        assert!(owed.owe(sid));
        assert!(!owed.take("not a sid"));
        assert!(owed.take(sid.as_str()));
        assert!(!owed.take(sid.as_str()));
        assert!(owed.owe(sid));
        owed.forget(&sid);
        assert!(!owed.take(sid.as_str()));
    }

    #[test]
    fn a_waiting_get_pays_in_either_order() {
        let owed = OwedClosePackets::default();
        let first = Sid::random();
        assert!(owed.owe(first));
        owed.paid(first);
        assert!(!owed.take(first.as_str()));
        let second = Sid::random();
        owed.paid(second);
        assert!(!owed.owe(second), "already paid: not owed");
        assert!(!owed.take(second.as_str()));
        assert!(owed.lock().is_empty());
    }
}
