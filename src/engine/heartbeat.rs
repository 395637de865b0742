//! A session's heartbeat and connect timeout: when to ping the client, when its silence
//! ends the session, and when a session that never connected a namespace is closed.
//!
//! [`Heartbeat`] holds only the deadlines; whoever supervises the session keeps one timer
//! beside it and, in the `select!` it waits in, hands it the timer firing
//! ([`Heartbeat::on_timer`]) and the session's `pong` signal ([`Heartbeat::on_client`]).
//! Those are arms of that `select!` rather than a future of their own, which would add to
//! the size of every idle session's task. A polling session is supervised by a task of its
//! own ([`Engine::supervise`](super::Engine)); a session born on WebSocket by its
//! transport task, so that it costs one task instead of two.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::Session;
use super::packet::{PING, Version};
use super::session::{CloseReason, Outbound};
use crate::config::ServerConfig;

/// The deadlines of one session.
pub(super) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    connect_deadline: Option<Instant>,
    next_ping: Instant,
    /// Set while the client owes a sign of life (v4: a pong to our ping; v3: any packet).
    pong_deadline: Option<Instant>,
    /// v3: the client pings and the server only answers.
    client_pings: bool,
}

impl Heartbeat {
    /// The deadlines of a session opening now with `settings`.
    pub(super) fn new(settings: &ServerConfig, version: Version) -> Self {
        let now = Instant::now();
        let interval = Duration::from_millis(settings.ping_interval_ms);
        let timeout = Duration::from_millis(settings.ping_timeout_ms);
        // In v3 the session ends when the client has been silent for a ping interval and a
        // ping timeout, the reference server's rule.
        let client_pings = version == Version::V3;
        Heartbeat {
            interval,
            timeout,
            connect_deadline: Some(now + Duration::from_millis(settings.connect_timeout_ms)),
            next_ping: now + interval,
            pong_deadline: client_pings.then(|| now + interval + timeout),
            client_pings,
        }
    }

    /// A timer for [`deadline`](Self::deadline), to keep pinned beside the heartbeat.
    pub(super) fn timer(&self) -> Sleep {
        tokio::time::sleep_until(self.deadline())
    }

    /// When the timer must fire next: one timer for all deadlines, since every timer held
    /// across a long-lived session adds to its memory.
    fn deadline(&self) -> Instant {
        let heartbeat = self.pong_deadline.unwrap_or(self.next_ping);
        match self.connect_deadline {
            Some(connect) => heartbeat.min(connect),
            None => heartbeat,
        }
    }

    /// Moves `timer` to the next deadline if it changed.
    fn rearm(&self, timer: Pin<&mut Sleep>) {
        let deadline = self.deadline();
        if timer.deadline() != deadline {
            timer.reset(deadline);
        }
    }

    /// Whether the client owes a sign of life: only then is `session.pong` worth waiting on.
    pub(super) fn awaits_client(&self) -> bool {
        self.pong_deadline.is_some()
    }

    /// `session.pong` fired: a pong (v4) or any packet (v3) arrived.
    pub(super) fn on_client(&mut self, timer: Pin<&mut Sleep>) {
        let now = Instant::now();
        if self.client_pings {
            self.pong_deadline = Some(now + self.interval + self.timeout);
        } else {
            self.pong_deadline = None;
            self.next_ping = now + self.interval;
        }
        self.rearm(timer);
    }

    /// `timer` fired: closes the session if it never connected in time or the client went
    /// silent, or sends the next ping.
    pub(super) fn on_timer<D>(&mut self, session: &Session<D>, timer: Pin<&mut Sleep>) {
        let now = Instant::now();
        if self
            .connect_deadline
            .is_some_and(|deadline| now >= deadline)
        {
            self.connect_deadline = None;
            if !session.is_established() {
                session.close(CloseReason::ConnectTimeout);
            }
        }
        match self.pong_deadline {
            Some(deadline) if now >= deadline => session.close(CloseReason::PingTimeout),
            None if now >= self.next_ping => {
                if session.send(Outbound::frame(PING)).is_ok() {
                    self.pong_deadline = Some(now + self.timeout);
                } else {
                    // With the drop policy a full queue keeps the session: try later.
                    self.next_ping = now + self.interval;
                }
            }
            _ => {}
        }
        self.rearm(timer);
    }

    /// How long a client that has stopped polling can still come back: a ping interval
    /// and a ping timeout.
    pub(super) fn patience(&self) -> Duration {
        self.interval + self.timeout
    }
}
