//! Lifecycle events (`connect`, `disconnect`): at least once, from a bounded queue.
//!
//! Each event is serialized once, with one delivery id kept across retries. A socket's
//! lifecycle events run one after the other ([`SerialQueues`](super::serial)), so its
//! disconnect is sent only once its connect was delivered or given up. A failed request
//! (no answer, timeout, 5xx, 408, 429) is sent again after a backoff of 250 ms doubling
//! up to 30 s (with jitter), `hooks.retries` times at most; then it is given up and
//! counted (`dropped_total{reason="hook_gave_up"}`). Other 4xx answers are final. At most
//! [`LIFECYCLE_CONCURRENCY`](super::LIFECYCLE_CONCURRENCY) requests run at once; the
//! others wait, up to `hooks.lifecycle_queue` events, beyond which new ones are dropped and
//! counted (`dropped_total{reason="hook_queue_full"}`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use super::request::{self, Posted};
use super::{Inner, Live, answer, identity};
use crate::adapter::Target;
use crate::config::LifecycleEvent;
use crate::engine::sid::Sid;
use crate::signing;
use crate::socketio::observer::DisconnectReason;
use crate::socketio::socket::Socket;

/// First retry delay; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One lifecycle event, ready to send.
pub(super) struct LifecycleJob {
    kind: LifecycleEvent,
    namespace: Arc<str>,
    sid: Sid,
    body: Bytes,
    delivery: String,
}

impl LifecycleJob {
    pub(super) fn connect(inner: &Inner, socket: &Socket) -> Self {
        let target = Target {
            namespace: socket.namespace.to_string(),
            to: vec![socket.sid.as_str().to_owned()],
            except: Vec::new(),
        };
        let rooms = inner
            .adapter
            .local()
            .sockets(&target)
            .items
            .pop()
            .map(|info| info.rooms)
            .unwrap_or_default();
        let (user, data) = identity(socket);
        let body = json!({
            "type": "connect",
            "namespace": &*socket.namespace,
            "sid": socket.sid.as_str(),
            "user": user,
            "address": socket.address().to_string(),
            "rooms": rooms,
            "data": data,
        });
        Self::new(LifecycleEvent::Connect, socket, &body)
    }

    pub(super) fn disconnect(socket: &Socket, reason: DisconnectReason) -> Self {
        let (user, _data) = identity(socket);
        let body = json!({
            "type": "disconnect",
            "namespace": &*socket.namespace,
            "sid": socket.sid.as_str(),
            "user": user,
            "reason": reason.as_str(),
        });
        Self::new(LifecycleEvent::Disconnect, socket, &body)
    }

    fn new(kind: LifecycleEvent, socket: &Socket, body: &serde_json::Value) -> Self {
        Self {
            kind,
            namespace: socket.namespace.clone(),
            sid: socket.sid,
            body: Bytes::from(serde_json::to_vec(body).expect("JSON values serialize")),
            delivery: signing::delivery_id(),
        }
    }

    fn label(&self) -> &'static str {
        match self.kind {
            LifecycleEvent::Connect => "connect",
            LifecycleEvent::Disconnect => "disconnect",
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    // Between half and all of it, so that many events failing together do not retry together.
    full.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

impl Inner {
    pub(super) fn enqueue_lifecycle(self: &Arc<Self>, job: LifecycleJob) {
        let limit = self.live().config.lifecycle_queue;
        let admitted = self
            .lifecycle_pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.queue_full.inc();
            tracing::warn!(sid = %job.sid, kind = job.label(), "hook lifecycle queue full; event dropped");
            return;
        }
        self.metrics.hook_lifecycle_queue.inc();
        if let Some(job) = self.lifecycle.push(job.sid, job) {
            tokio::spawn(self.clone().run_lifecycle(job));
        }
    }

    async fn run_lifecycle(self: Arc<Self>, mut job: LifecycleJob) {
        loop {
            let sid = job.sid;
            self.deliver(&job).await;
            self.lifecycle_pending.fetch_sub(1, Ordering::AcqRel);
            self.metrics.hook_lifecycle_queue.dec();
            match self.lifecycle.next(&sid) {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Sends `job` until it is delivered, refused for good, or out of retries.
    async fn deliver(&self, job: &LifecycleJob) {
        let kind = job.label();
        let mut attempt = 0;
        loop {
            let live = self.live();
            if !live.config.enabled() {
                return;
            }
            let posted = {
                let _slot = self
                    .lifecycle_slots
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                // Boxed: the request's state is large, and a connection storm leaves
                // thousands of jobs waiting for a slot.
                Box::pin(self.send_once(job, &live)).await
            };
            if !posted.retryable() {
                if let Posted::Status(status) = posted {
                    tracing::warn!(delivery = %job.delivery, kind, %status, "hook refused a lifecycle event; not retried");
                }
                return;
            }
            if attempt >= live.config.retries {
                self.gave_up.inc();
                tracing::warn!(delivery = %job.delivery, kind, attempts = attempt + 1, reason = %posted, "hook lifecycle event given up");
                return;
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// One request for `job`, counted by outcome; a successful answer's emits are sent.
    async fn send_once(&self, job: &LifecycleJob, live: &Live) -> Posted {
        let kind = job.label();
        let started = Instant::now();
        let posted = request::post(&self.http, live.post(&job.delivery, job.body.clone())).await;
        let outcome = match &posted {
            Posted::Answered(bytes) => {
                let about = answer::About {
                    namespace: &job.namespace,
                    sid: job.sid.as_str(),
                    user_room_prefix: &self.user_room_prefix,
                };
                match answer::parse(bytes, false, &about) {
                    Ok(answer) => {
                        if self.emit_all(answer.emits).await {
                            "ok"
                        } else {
                            "emit_failed"
                        }
                    }
                    Err(reason) => {
                        tracing::warn!(delivery = %job.delivery, kind, %reason, "hook answer to a lifecycle event refused");
                        "bad_answer"
                    }
                }
            }
            failed => {
                tracing::debug!(delivery = %job.delivery, kind, reason = %failed, "hook lifecycle request failed");
                failed.failure_label()
            }
        };
        self.count(kind, outcome, started);
        posted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            let full = FIRST_BACKOFF
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_BACKOFF);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }
}
