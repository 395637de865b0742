//! Backend hooks (`[hooks]`): client events and socket lifecycle events go to the backend
//! as signed JSON POSTs, and the backend's answers come back as acknowledgements and
//! emits.
//!
//! [`Hooks`] is the Socket.IO layer's [`SocketObserver`]. It only queues work on the
//! transport tasks; requests run on their own tasks.
//!
//! - **Client events** whose name matches `hooks.events` are sent at most once. The events
//!   of one socket reach the hook one after the other, in order ([`serial`]); sockets run
//!   concurrently. The answer's emits go out before its ack. A failure, a timeout or a
//!   refused answer means no ack (the client's own timeout fires), counted once. Beyond
//!   `hooks.max_in_flight` events accepted and not yet answered, new events are dropped
//!   and counted (`dropped_total{reason="hook_busy"}`): a slow hook never makes the relay
//!   hold an unbounded backlog, and the client learns by its ack timeout.
//! - **Lifecycle events** ([`lifecycle`]) are sent at least once: retried with backoff from
//!   a bounded queue, and one socket's disconnect never before its connect.
//!
//! The settings are swapped whole on reload; each request reads them once.

mod answer;
mod lifecycle;
mod request;
mod serial;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::IntCounter;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use self::answer::Answer;
use self::lifecycle::LifecycleJob;
use self::request::{Post, Posted};
use self::serial::SerialQueues;
use crate::adapter::{Adapter, EmitRequest};
use crate::admin::binary;
use crate::config::{HooksConfig, LifecycleEvent};
use crate::glob;
use crate::metrics::Metrics;
use crate::signing;
use crate::socketio::observer::{ClientEvent, DisconnectReason, SocketObserver};
use crate::socketio::socket::Socket;

/// Lifecycle requests sent at once, at most: a mass disconnect does not open thousands of
/// connections to the backend.
const LIFECYCLE_CONCURRENCY: usize = 64;

/// The settings in force.
struct Live {
    config: HooksConfig,
    /// `admin.max_body_bytes`: a hook's answer carries emit bodies, as the admin API does.
    max_answer_bytes: u64,
}

impl Live {
    fn post<'a>(&'a self, delivery: &'a str, body: Bytes) -> Post<'a> {
        Post {
            url: &self.config.url,
            secret: self.config.secret.as_bytes(),
            timeout: Duration::from_millis(self.config.timeout_ms),
            max_answer_bytes: self.max_answer_bytes,
            delivery,
            body,
        }
    }

    fn forwards(&self, event: &str) -> bool {
        self.config.enabled() && self.config.events.iter().any(|g| glob::matches(g, event))
    }

    fn sends(&self, kind: LifecycleEvent) -> bool {
        self.config.enabled() && self.config.lifecycle.contains(&kind)
    }
}

/// The backend hooks. Cheap to clone.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    live: RwLock<Arc<Live>>,
    http: reqwest::Client,
    adapter: Arc<Adapter>,
    /// `auth.user_room_prefix`: the `user` selector of an answer's emits names these rooms.
    user_room_prefix: String,
    metrics: Metrics,
    busy: IntCounter,
    queue_full: IntCounter,
    gave_up: IntCounter,
    /// Client events accepted and not yet finished, bounded by `max_in_flight`.
    events_in_flight: AtomicU64,
    events: SerialQueues<EventJob>,
    lifecycle: SerialQueues<LifecycleJob>,
    lifecycle_pending: AtomicU64,
    lifecycle_slots: Semaphore,
}

/// One client event on its way to the hook.
struct EventJob {
    socket: Arc<Socket>,
    event: ClientEvent,
}

impl Hooks {
    /// Hooks with `config`, answers read up to `max_answer_bytes`, emits through `adapter`;
    /// user rooms are named `user_room_prefix` + user, as in the admin API.
    pub fn new(
        config: &HooksConfig,
        max_answer_bytes: u64,
        user_room_prefix: &str,
        adapter: Arc<Adapter>,
        metrics: Metrics,
    ) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("sio-relay/", env!("CARGO_PKG_VERSION")))
            // A redirected POST would become a GET elsewhere; the URL is configured, not found.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("the hook HTTP client builds with static settings");
        let dropped = |reason| metrics.dropped.with_label_values(&[reason]);
        let inner = Inner {
            live: RwLock::new(Arc::new(Live {
                config: config.clone(),
                max_answer_bytes,
            })),
            http,
            adapter,
            user_room_prefix: user_room_prefix.to_owned(),
            busy: dropped("hook_busy"),
            queue_full: dropped("hook_queue_full"),
            gave_up: dropped("hook_gave_up"),
            metrics,
            events_in_flight: AtomicU64::new(0),
            events: SerialQueues::new(),
            lifecycle: SerialQueues::new(),
            lifecycle_pending: AtomicU64::new(0),
            lifecycle_slots: Semaphore::new(LIFECYCLE_CONCURRENCY),
        };
        Hooks {
            inner: Arc::new(inner),
        }
    }

    /// Applies reloaded settings to the requests started from now on.
    pub fn reload(&self, config: &HooksConfig, max_answer_bytes: u64) {
        *self
            .inner
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Live {
            config: config.clone(),
            max_answer_bytes,
        });
    }

    /// Lifecycle events not yet delivered (or given up).
    pub fn lifecycle_pending(&self) -> u64 {
        self.inner.lifecycle_pending.load(Ordering::Acquire)
    }
}

impl Inner {
    fn live(&self) -> Arc<Live> {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self, kind: &str, outcome: &str, started: Instant) {
        self.metrics
            .hook_requests
            .with_label_values(&[kind, outcome])
            .inc();
        self.metrics
            .hook_request_duration
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Sends the answer's emits in order; `false` when one could not be sent (the cluster
    /// is unavailable), after which the rest are not tried.
    async fn emit_all(&self, emits: Vec<EmitRequest>) -> bool {
        for emit in emits {
            if let Err(error) = self.adapter.emit(emit).await {
                tracing::warn!(%error, "an emit of a hook's answer could not be sent");
                return false;
            }
        }
        true
    }

    async fn run_events(self: Arc<Self>, mut job: EventJob) {
        loop {
            let sid = job.socket.sid;
            self.send_event(job).await;
            self.events_in_flight.fetch_sub(1, Ordering::AcqRel);
            match self.events.next(&sid) {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    async fn send_event(&self, job: EventJob) {
        let EventJob { socket, event } = job;
        let live = self.live();
        if !live.config.enabled() {
            return;
        }
        let (user, _data) = identity(&socket);
        let body = json!({
            "type": "event",
            "namespace": &*socket.namespace,
            "sid": socket.sid.as_str(),
            "user": user,
            "event": event.event,
            "args": binary::from_args(event.args),
            "ack": event.ack_id.is_some(),
        });
        let body = Bytes::from(serde_json::to_vec(&body).expect("JSON values serialize"));
        let delivery = signing::delivery_id();
        let started = Instant::now();
        let posted = request::post(&self.http, live.post(&delivery, body)).await;
        let outcome = match &posted {
            Posted::Answered(bytes) => {
                let about = answer::About {
                    namespace: &socket.namespace,
                    sid: socket.sid.as_str(),
                    user_room_prefix: &self.user_room_prefix,
                };
                match answer::parse(bytes, true, &about) {
                    Ok(Answer { ack, emits }) => {
                        if !self.emit_all(emits).await {
                            "emit_failed"
                        } else {
                            if let (Some(id), Some(args)) = (event.ack_id, ack) {
                                socket.send_ack(id, &args);
                            }
                            "ok"
                        }
                    }
                    Err(reason) => {
                        tracing::warn!(%delivery, %reason, "hook answer to a client event refused");
                        "bad_answer"
                    }
                }
            }
            Posted::TooLarge(_) => {
                tracing::warn!(%delivery, reason = %posted, "hook answer to a client event refused");
                posted.failure_label()
            }
            failed => {
                tracing::debug!(%delivery, reason = %failed, "hook request for a client event failed");
                failed.failure_label()
            }
        };
        self.count("event", outcome, started);
    }
}

impl SocketObserver for Hooks {
    fn on_connect(&self, socket: &Arc<Socket>) {
        if self.inner.live().sends(LifecycleEvent::Connect) {
            self.inner
                .enqueue_lifecycle(LifecycleJob::connect(&self.inner, socket));
        }
    }

    fn on_event(&self, socket: &Arc<Socket>, event: ClientEvent) -> bool {
        let live = self.inner.live();
        if !live.forwards(&event.event) {
            return false;
        }
        let inner = &self.inner;
        let admitted = inner
            .events_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < live.config.max_in_flight).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            inner.busy.inc();
            return true;
        }
        let job = EventJob {
            socket: socket.clone(),
            event,
        };
        if let Some(job) = inner.events.push(socket.sid, job) {
            tokio::spawn(inner.clone().run_events(job));
        }
        true
    }

    fn on_disconnect(&self, socket: &Arc<Socket>, reason: DisconnectReason) {
        if self.inner.live().sends(LifecycleEvent::Disconnect) {
            self.inner
                .enqueue_lifecycle(LifecycleJob::disconnect(socket, reason));
        }
    }
}

/// The socket's user and data, as `[auth]` established them; `null` when it gave none.
fn identity(socket: &Socket) -> (Value, Value) {
    (
        socket
            .user()
            .map_or(Value::Null, |u| Value::String(u.to_owned())),
        socket.data().cloned().unwrap_or(Value::Null),
    )
}
