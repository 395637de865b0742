//! Per-socket serial queues: the jobs of one socket run one after the other, in the order
//! they were pushed, while different sockets' jobs run concurrently. A socket with nothing
//! pending costs nothing: its entry exists only while one of its jobs is running.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::engine::sid::Sid;

/// Below this many entries a table is not worth shrinking.
const MIN_CAPACITY: usize = 64;

/// Jobs waiting, per socket. The lock is held only to push or pop, never across an await.
pub(super) struct SerialQueues<J> {
    waiting: Mutex<HashMap<Sid, VecDeque<J>>>,
}

impl<J> SerialQueues<J> {
    pub(super) fn new() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `job` behind the running job of `sid`; returns it when none runs, and the
    /// caller must then start a worker for `sid` that runs it and then calls [`next`].
    ///
    /// [`next`]: Self::next
    pub(super) fn push(&self, sid: Sid, job: J) -> Option<J> {
        let mut waiting = self.waiting.lock().expect("queue lock poisoned");
        match waiting.get_mut(&sid) {
            Some(queue) => {
                queue.push_back(job);
                None
            }
            None => {
                waiting.insert(sid, VecDeque::new());
                Some(job)
            }
        }
    }

    /// The worker of `sid` finished a job: its next one, or `None` and the worker ends.
    pub(super) fn next(&self, sid: &Sid) -> Option<J> {
        let mut waiting = self.waiting.lock().expect("queue lock poisoned");
        let next = waiting.get_mut(sid).and_then(VecDeque::pop_front);
        if next.is_none() {
            waiting.remove(sid);
            // A connection storm grows the table to thousands of sockets; a table keeps
            // its size once emptied, so give the room back when it is mostly unused.
            let (len, capacity) = (waiting.len(), waiting.capacity());
            if capacity > MIN_CAPACITY && len * 4 < capacity {
                waiting.shrink_to(len * 2);
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_per_socket_in_order() {
        let queues = SerialQueues::new();
        let (a, b) = (Sid::random(), Sid::random());
        assert_eq!(queues.push(a, 1), Some(1));
        assert_eq!(queues.push(a, 2), None);
        assert_eq!(queues.push(b, 10), Some(10));
        assert_eq!(queues.push(a, 3), None);
        assert_eq!(queues.next(&a), Some(2));
        assert_eq!(queues.next(&a), Some(3));
        assert_eq!(queues.next(&a), None);
        // The worker ended: the next push starts a new one.
        assert_eq!(queues.push(a, 4), Some(4));
        assert_eq!(queues.next(&b), None);
    }

    #[test]
    fn gives_memory_back_after_a_storm() {
        let queues = SerialQueues::new();
        let sids: Vec<Sid> = (0..10_000).map(|_| Sid::random()).collect();
        for sid in &sids {
            assert_eq!(queues.push(*sid, ()), Some(()));
        }
        for sid in &sids {
            assert_eq!(queues.next(sid), None);
        }
        let capacity = queues.waiting.lock().unwrap().capacity();
        assert!(capacity <= MIN_CAPACITY, "capacity {capacity} kept");
    }
}
