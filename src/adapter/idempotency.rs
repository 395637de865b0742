//! `Idempotency-Key` of `/v1/emit`: which keys were used within the window, and the answer
//! each got, so that a repeat sends nothing and gets the same bytes back.
//!
//! On one node the keys are in memory; in a cluster they are Redis keys set with `NX` and
//! an expiry (see `redis::idempotency`), so a repeat through any node is recognised. A key
//! is claimed before the emit and holds its answer after; an emit that fails releases it,
//! so the backend may retry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: the caller emits, then calls `finish`.
    First,
    /// The key was used within the window: its answer, to send as it is.
    Repeat(Bytes),
    /// The first request with this key has not answered yet.
    Pending,
}

/// A key's state as stored: pending, or done with its answer.
#[derive(Debug, Clone)]
enum State {
    Pending,
    Done(Bytes),
}

/// The keys of a single node.
#[derive(Default)]
pub struct MemoryKeys {
    keys: Mutex<HashMap<String, (Instant, State)>>,
}

impl MemoryKeys {
    /// Claims `key` for `window`.
    pub fn claim(&self, key: &str, window: Duration) -> Claim {
        let now = Instant::now();
        let mut keys = self.keys.lock().expect("keys lock poisoned");
        if let Some((until, state)) = keys.get(key)
            && *until > now
        {
            return match state {
                State::Pending => Claim::Pending,
                State::Done(answer) => Claim::Repeat(answer.clone()),
            };
        }
        // Expired keys go as new ones come, so the map holds one window's keys at most.
        if keys.len() >= 1024 && keys.len().is_power_of_two() {
            keys.retain(|_, (until, _)| *until > now);
        }
        keys.insert(key.to_owned(), (now + window, State::Pending));
        Claim::First
    }

    /// Stores the answer of `key` for `window` from now; `None` releases the key.
    pub fn finish(&self, key: &str, answer: Option<Bytes>, window: Duration) {
        let mut keys = self.keys.lock().expect("keys lock poisoned");
        match answer {
            Some(answer) => {
                keys.insert(
                    key.to_owned(),
                    (Instant::now() + window, State::Done(answer)),
                );
            }
            None => {
                keys.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_answers_as_first_until_its_window_ends() {
        let keys = MemoryKeys::default();
        let window = Duration::from_millis(50);
        assert_eq!(keys.claim("k", window), Claim::First);
        assert_eq!(keys.claim("k", window), Claim::Pending);
        keys.finish("k", Some(Bytes::from_static(b"{}")), window);
        assert_eq!(
            keys.claim("k", window),
            Claim::Repeat(Bytes::from_static(b"{}"))
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(keys.claim("k", window), Claim::First);
        keys.finish("k", None, window);
        assert_eq!(keys.claim("k", window), Claim::First);
    }
}
