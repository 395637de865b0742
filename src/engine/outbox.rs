//! A session's outbox: the bounded queue of items waiting for the transport, used when an
//! item cannot be written at once (a long-polling session, or a WebSocket that is busy).
//!
//! A `VecDeque` behind a mutex rather than a channel: an idle session then holds no heap
//! memory for its queue (a tokio channel allocates its padded state and a first block of
//! slots up front, most of a kilobyte), and the lock is only taken on this queued path,
//! for a push or a pop. One transport at a time drains the outbox, through [`Drain`].
//!
//! The bound is in bytes (`limits.max_queued_bytes`): each item counts what it puts on the
//! wire plus [`ITEM_OVERHEAD`], so that a flood of tiny packets is bounded too. An item
//! reaching an empty outbox is always accepted, however large, so one big packet can
//! always go out.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::session::Outbound;

/// What a queued item costs besides its bytes: its queue slot and shared allocation.
pub(super) const ITEM_OVERHEAD: usize = 64;

#[derive(Default)]
struct Queue {
    items: VecDeque<Outbound>,
    /// The sum of the items' costs.
    bytes: usize,
}

fn cost(item: &Outbound) -> usize {
    item.frames().iter().map(|f| f.len()).sum::<usize>() + ITEM_OVERHEAD
}

/// The bounded queue of one session.
pub(super) struct Outbox {
    items: Mutex<Queue>,
    /// Most bytes queued at once.
    capacity: usize,
    pushed: Notify,
    /// Held by the transport draining the outbox.
    drainer: tokio::sync::Mutex<()>,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` bytes (and at least one item).
    pub(super) fn new(capacity: usize) -> Self {
        Outbox {
            items: Mutex::new(Queue::default()),
            capacity,
            pushed: Notify::new(),
            drainer: tokio::sync::Mutex::new(()),
        }
    }

    /// Queues `item`, or gives it back when the outbox is full.
    pub(super) fn push(&self, item: Outbound) -> Result<(), Outbound> {
        {
            let mut queue = self.items.lock().expect("outbox lock poisoned");
            let cost = cost(&item);
            if !queue.items.is_empty() && queue.bytes + cost > self.capacity {
                return Err(item);
            }
            queue.bytes += cost;
            queue.items.push_back(item);
        }
        self.pushed.notify_one();
        Ok(())
    }

    /// The right to drain, unless another transport holds it.
    pub(super) fn try_drain(&self) -> Option<Drain<'_>> {
        let guard = self.drainer.try_lock().ok()?;
        Some(Drain {
            outbox: self,
            _guard: guard,
        })
    }

    /// The right to drain, once the transport holding it lets go.
    pub(super) async fn drain(&self) -> Drain<'_> {
        let guard = self.drainer.lock().await;
        Drain {
            outbox: self,
            _guard: guard,
        }
    }
}

/// The right to take items from an outbox; one holder at a time.
pub(super) struct Drain<'a> {
    outbox: &'a Outbox,
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

impl Drain<'_> {
    /// The oldest item, if any.
    pub(super) fn try_pop(&mut self) -> Option<Outbound> {
        let mut queue = self.outbox.items.lock().expect("outbox lock poisoned");
        let item = queue.items.pop_front();
        if let Some(item) = &item {
            queue.bytes -= cost(item);
        }
        if queue.items.is_empty() && queue.items.capacity() > 64 {
            // Give back what a burst made the queue grow to.
            queue.items.shrink_to(8);
        }
        item
    }

    /// Waits for the oldest item.
    ///
    /// # Cancel safety
    /// Cancel safe: an item is only taken when the future completes.
    pub(super) async fn pop(&mut self) -> Outbound {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.outbox.pushed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::packet::Frame;
    use bytes::Bytes;

    fn item(text: &'static str) -> Outbound {
        Outbound::frame(Frame::Text(Bytes::from_static(text.as_bytes())))
    }

    #[tokio::test]
    async fn keeps_order_and_bound_and_one_drainer() {
        // Room for two one-byte items, not three.
        let outbox = Outbox::new(2 * (1 + ITEM_OVERHEAD) + 1);
        assert!(outbox.push(item("a")).is_ok());
        assert!(outbox.push(item("b")).is_ok());
        assert!(outbox.push(item("c")).is_err());
        let mut drain = outbox.try_drain().expect("free");
        assert!(outbox.try_drain().is_none());
        assert_eq!(drain.pop().await.frames(), item("a").frames());
        assert_eq!(drain.try_pop().unwrap().frames(), item("b").frames());
        assert!(drain.try_pop().is_none());
        // Popping gave the bytes back.
        assert!(outbox.push(item("d")).is_ok());
    }

    #[test]
    fn an_item_larger_than_the_bound_reaches_an_empty_outbox() {
        let outbox = Outbox::new(10);
        assert!(outbox.push(item("larger than ten bytes")).is_ok());
        assert!(outbox.push(item("x")).is_err());
    }

    #[tokio::test]
    async fn pop_wakes_on_push() {
        let outbox = std::sync::Arc::new(Outbox::new(4));
        let pusher = outbox.clone();
        let waiter = tokio::spawn(async move {
            let mut drain = outbox.drain().await;
            drain.pop().await
        });
        tokio::task::yield_now().await;
        pusher.push(item("x")).unwrap();
        assert_eq!(waiter.await.unwrap().frames(), item("x").frames());
    }
}
