//! What an admin key may do: the scope of a `[[admin.keys]]` entry, checked by every
//! `/v1/` handler once the request is validated and before anything is done.
//!
//! A scope has namespace globs, room globs and operations. Globs match whole names, `*`
//! standing for any run of characters (`orders:*`, `/tenant-*`, `*`). A sid is a room, so
//! a scoped key reaches a single client only when one of its room globs matches that sid.
//!
//! The rules, for a call on namespace N selecting rooms T (`to`) and naming rooms R
//! (`rooms` of join and leave):
//! - the operation must be among the key's `ops` (`read` for the listings);
//! - N must match a namespace glob;
//! - each of T, and each of R, must match a room glob. `except` only narrows a call and
//!   is not checked;
//! - a call on the whole namespace (`broadcast: true`, or a `/v1/sockets` listing without
//!   `to`) is allowed only when the room globs include `"*"` itself: a glob such as
//!   `orders:*` never reaches sockets outside its rooms;
//! - `/v1/rooms` lists only the rooms the key's globs match;
//! - `/v1/stats` (whole-node numbers) needs `read` and `"*"` for namespaces and rooms.
//!
//! `admin.tokens` are full-access keys: no scope.

use crate::adapter::Target;
use crate::config::{AdminKey, AdminOp};

use super::error::ApiError;

/// The scope of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    namespaces: Vec<String>,
    rooms: Vec<String>,
    ops: Vec<AdminOp>,
}

impl Scope {
    /// The scope of a configured key.
    pub fn of(key: &AdminKey) -> Self {
        Scope {
            namespaces: key.namespaces.clone(),
            rooms: key.rooms.clone(),
            ops: key.ops.clone(),
        }
    }

    /// Whether the key may do `op` to `target` (rooms in `to`, the whole namespace when
    /// `to` is empty), naming `rooms` (join and leave).
    pub fn check(&self, op: AdminOp, target: &Target, rooms: &[String]) -> Result<(), ApiError> {
        if !self.ops.contains(&op) {
            return Err(forbidden(format!("this key may not `{}`", op.as_str())));
        }
        self.check_namespace(&target.namespace)?;
        if target.to.is_empty() && !self.everything() {
            return Err(forbidden(
                "this key may not address a whole namespace: its rooms do not include \"*\"".into(),
            ));
        }
        if let Some(room) = target
            .to
            .iter()
            .chain(rooms)
            .find(|r| !self.room_allowed(r))
        {
            return Err(forbidden(format!("this key may not address room {room:?}")));
        }
        Ok(())
    }

    /// Whether the key may read namespace `namespace`.
    pub fn check_read(&self, namespace: &str) -> Result<(), ApiError> {
        if !self.ops.contains(&AdminOp::Read) {
            return Err(forbidden("this key may not `read`".into()));
        }
        self.check_namespace(namespace)
    }

    /// Whether the key may list the sockets of `target`: `read` on its namespace, every
    /// `to` room in scope, the whole namespace (no `to`) only with `"*"`.
    pub fn check_listing(&self, target: &Target) -> Result<(), ApiError> {
        self.check_read(&target.namespace)?;
        if target.to.is_empty() && !self.everything() {
            return Err(forbidden(
                "this key may not list a whole namespace: its rooms do not include \"*\"; \
                 give `to`"
                    .into(),
            ));
        }
        if let Some(room) = target.to.iter().find(|r| !self.room_allowed(r)) {
            return Err(forbidden(format!("this key may not address room {room:?}")));
        }
        Ok(())
    }

    /// Whether the key may read the whole node's statistics (`/v1/stats`): `read`, and
    /// the globs `"*"` for both namespaces and rooms, as the numbers span all of them.
    pub fn check_node_wide(&self) -> Result<(), ApiError> {
        if !self.ops.contains(&AdminOp::Read) {
            return Err(forbidden("this key may not `read`".into()));
        }
        if !self.everything() || !self.namespaces.iter().any(|g| g == "*") {
            return Err(forbidden(
                "statistics span every namespace and room: the key needs the globs \"*\" for both"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        if self.namespaces.iter().any(|g| glob_match(g, namespace)) {
            Ok(())
        } else {
            Err(forbidden(format!(
                "this key may not address namespace {namespace:?}"
            )))
        }
    }

    /// Whether one of the room globs matches `room`.
    pub fn room_allowed(&self, room: &str) -> bool {
        self.rooms.iter().any(|g| glob_match(g, room))
    }

    /// Whether the room globs allow every room, and so whole-namespace calls.
    fn everything(&self) -> bool {
        self.rooms.iter().any(|g| g == "*")
    }
}

fn forbidden(message: String) -> ApiError {
    ApiError::Forbidden(message)
}

/// Whether `text` matches `glob`, where `*` matches any run of characters (none included)
/// and every other character itself.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole text must be the glob.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        for (glob, text, ok) in [
            ("*", "", true),
            ("*", "anything", true),
            ("orders:*", "orders:1", true),
            ("orders:*", "orders:", true),
            ("orders:*", "billing:1", false),
            ("orders:*", "xorders:1", false),
            ("orders", "orders", true),
            ("orders", "orders:1", false),
            ("*:vip", "eu:vip", true),
            ("*:vip", "eu:vip2", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("/tenant-*", "/tenant-7", true),
        ] {
            assert_eq!(glob_match(glob, text), ok, "{glob} {text}");
        }
    }

    fn scope(rooms: &[&str], ops: &[AdminOp]) -> Scope {
        Scope {
            namespaces: vec!["/".into()],
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            ops: ops.to_vec(),
        }
    }

    fn target(ns: &str, to: &[&str]) -> Target {
        Target {
            namespace: ns.into(),
            to: to.iter().map(|r| r.to_string()).collect(),
            except: vec!["billing:9".into()],
        }
    }

    #[test]
    fn scoped_calls() {
        let orders = scope(&["orders:*"], &[AdminOp::Emit, AdminOp::Join]);
        assert!(
            orders
                .check(AdminOp::Emit, &target("/", &["orders:1"]), &[])
                .is_ok()
        );
        for (op, t, rooms) in [
            (AdminOp::Emit, target("/", &["billing:1"]), vec![]),
            (
                AdminOp::Emit,
                target("/", &["orders:1", "billing:1"]),
                vec![],
            ),
            (AdminOp::Emit, target("/", &[]), vec![]),
            (AdminOp::Emit, target("/admin", &["orders:1"]), vec![]),
            (AdminOp::Disconnect, target("/", &["orders:1"]), vec![]),
            (
                AdminOp::Join,
                target("/", &["orders:1"]),
                vec!["billing:1".to_string()],
            ),
        ] {
            let error = orders.check(op, &t, &rooms).unwrap_err();
            assert_eq!(error.code(), "forbidden", "{op:?} {t:?} {rooms:?}");
        }
        assert!(orders.check_read("/").is_err());
        let all = scope(&["*"], &[AdminOp::Emit, AdminOp::Read]);
        assert!(all.check(AdminOp::Emit, &target("/", &[]), &[]).is_ok());
        assert!(all.check_read("/").is_ok());
        assert!(all.check_read("/other").is_err());
    }
}
