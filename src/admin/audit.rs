//! The audit log: one line (target `sio_relay::audit`, level info) for every mutating
//! `/v1/` call (emit, join, leave, disconnect), whatever its outcome, and for every refused
//! one (401, 403): the caller's key name, the route, what the call addressed, the status
//! and the outcome. Never a token, never an event's payload.
//!
//! Handlers say what a call addresses through the request's [`Access`], when they check
//! its scope; the edge middleware writes the line once the answer is known.

use std::sync::{Arc, Mutex, PoisonError};

use crate::adapter::Target;
use crate::config::AdminOp;

use super::auth::Caller;
use super::error::ApiError;

/// The log target of audit lines, for filtering (`sio_relay::audit=info`).
pub const TARGET: &str = "sio_relay::audit";

/// The longest description of what a call addressed that goes into a line.
const MAX_TARGET_CHARS: usize = 400;

/// The caller of a `/v1/` request and what it addressed: a request extension.
#[derive(Debug, Clone)]
pub struct Access {
    /// Who made the request.
    pub caller: Caller,
    targets: Arc<Mutex<Vec<String>>>,
}

impl Access {
    /// Access for `caller`, nothing addressed yet.
    pub fn new(caller: Caller) -> Self {
        Access {
            caller,
            targets: Arc::default(),
        }
    }

    /// Records what the call addresses and checks it against the caller's scope.
    pub fn check(&self, op: AdminOp, target: &Target, rooms: &[String]) -> Result<(), ApiError> {
        self.record(describe(target, rooms));
        match &self.caller.scope {
            Some(scope) => scope.check(op, target, rooms),
            None => Ok(()),
        }
    }

    /// Records a read of `namespace` and checks the caller may read it; `to` rooms, if
    /// any, must be in its scope too, and a listing of the whole namespace needs `"*"`.
    pub fn check_read(&self, target: &Target) -> Result<(), ApiError> {
        self.record(describe(target, &[]));
        match &self.caller.scope {
            Some(scope) => scope.check_listing(target),
            None => Ok(()),
        }
    }

    /// Checks the caller may read the whole node's statistics.
    pub fn check_node_wide(&self) -> Result<(), ApiError> {
        match &self.caller.scope {
            Some(scope) => scope.check_node_wide(),
            None => Ok(()),
        }
    }

    /// Whether the caller may see room `room` in a listing.
    pub fn may_see_room(&self, room: &str) -> bool {
        self.caller
            .scope
            .as_ref()
            .is_none_or(|scope| scope.room_allowed(room))
    }

    fn record(&self, description: String) {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(description);
    }

    /// What the call addressed, for the log line; `-` when the handler got no further
    /// than reading the body.
    pub fn described(&self) -> String {
        let targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        if targets.is_empty() {
            return "-".into();
        }
        let mut joined = targets.join("; ");
        if joined.chars().count() > MAX_TARGET_CHARS {
            joined = joined.chars().take(MAX_TARGET_CHARS).collect::<String>() + "…";
        }
        joined
    }
}

/// `namespace /: to a,b except c rooms d` or `namespace /: broadcast`.
fn describe(target: &Target, rooms: &[String]) -> String {
    let mut text = format!("namespace {}: ", target.namespace);
    if target.to.is_empty() {
        text.push_str("broadcast");
    } else {
        text.push_str("to ");
        text.push_str(&target.to.join(","));
    }
    if !target.except.is_empty() {
        text.push_str(" except ");
        text.push_str(&target.except.join(","));
    }
    if !rooms.is_empty() {
        text.push_str(" rooms ");
        text.push_str(&rooms.join(","));
    }
    text
}

/// Writes the audit line of a call.
pub fn log(key: Option<&str>, method: &str, route: &str, target: &str, status: u16, outcome: &str) {
    tracing::info!(
        target: "sio_relay::audit",
        key = key.unwrap_or("-"),
        method,
        route,
        target,
        status,
        outcome,
        "admin call"
    );
}
