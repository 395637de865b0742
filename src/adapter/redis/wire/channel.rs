//! Channel names of the classic Node protocol under a key prefix (default `socket.io`):
//!
//! | channel | carries |
//! | --- | --- |
//! | `<prefix>#<nsp>#` | broadcasts to the whole namespace or to two rooms or more |
//! | `<prefix>#<nsp>#<room>#` | broadcasts to exactly one room (a socket id is a room) |
//! | `<prefix>-request#<nsp>#` | requests; its `PUBSUB NUMSUB` count is the number of nodes |
//! | `<prefix>-response#<nsp>#` | responses |
//! | `<prefix>-response#<nsp>#<uid>#` | responses addressed to one node |
//!
//! Nodes `PSUBSCRIBE` to `<prefix>#<nsp>#*` and learn the room of a broadcast from the
//! channel, so a node with no socket in that room drops the message without decoding it
//! ([`Channels::broadcast_room`]). Delivery itself follows the message's options, never
//! the channel.

/// Channel names for one key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    prefix: String,
}

/// Where a message seen on a namespace's broadcast pattern was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastChannel<'a> {
    /// The namespace's base channel: decode it.
    Namespace,
    /// A room's channel: only a node with a socket in that room needs to decode it.
    Room(&'a str),
}

impl Default for Channels {
    fn default() -> Self {
        Channels::new("socket.io")
    }
}

impl Channels {
    /// Channel names under `prefix` (Node's `key` option).
    pub fn new(prefix: impl Into<String>) -> Self {
        Channels {
            prefix: prefix.into(),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>#<nsp>#`: broadcasts to the whole namespace.
    pub fn broadcast(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.prefix)
    }

    /// `<prefix>#<nsp>#<room>#`: broadcasts to one room.
    pub fn room(&self, nsp: &str, room: &str) -> String {
        format!("{}#{nsp}#{room}#", self.prefix)
    }

    /// The channel Node publishes a broadcast on: the room's channel when the broadcast
    /// selects exactly one room, the namespace's otherwise.
    pub fn broadcast_for(&self, nsp: &str, rooms: &[String]) -> String {
        match rooms {
            [room] => self.room(nsp, room),
            _ => self.broadcast(nsp),
        }
    }

    /// The `PSUBSCRIBE` pattern matching every broadcast channel of `nsp`, with glob
    /// characters of the prefix and namespace escaped so that they match literally.
    pub fn broadcast_pattern(&self, nsp: &str) -> String {
        let mut pattern = String::new();
        for c in self.broadcast(nsp).chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// `<prefix>-request#<nsp>#`.
    pub fn request(&self, nsp: &str) -> String {
        format!("{}-request#{nsp}#", self.prefix)
    }

    /// `<prefix>-response#<nsp>#`: where responses go by default.
    pub fn response(&self, nsp: &str) -> String {
        format!("{}-response#{nsp}#", self.prefix)
    }

    /// `<prefix>-response#<nsp>#<uid>#`: responses addressed to the node `uid`.
    pub fn specific_response(&self, nsp: &str, uid: &str) -> String {
        format!("{}-response#{nsp}#{uid}#", self.prefix)
    }

    /// Which broadcast channel of `nsp` the `channel` is, or `None` when it is not one of
    /// them. A node drops a [`BroadcastChannel::Room`] message undecoded when it has no
    /// socket in that room, as Node does.
    pub fn broadcast_room<'a>(&self, nsp: &str, channel: &'a str) -> Option<BroadcastChannel<'a>> {
        let rest = channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('#')?
            .strip_prefix(nsp)?
            .strip_prefix('#')?;
        match rest {
            "" => Some(BroadcastChannel::Namespace),
            _ => rest.strip_suffix('#').map(BroadcastChannel::Room),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_node_adapter() {
        let c = Channels::default();
        assert_eq!(c.broadcast("/"), "socket.io#/#");
        assert_eq!(c.room("/admin", "room1"), "socket.io#/admin#room1#");
        assert_eq!(c.request("/"), "socket.io-request#/#");
        assert_eq!(c.response("/"), "socket.io-response#/#");
        assert_eq!(
            c.specific_response("/", "pSNYkW"),
            "socket.io-response#/#pSNYkW#"
        );
        assert_eq!(c.broadcast_pattern("/"), "socket.io#/#*");
        assert_eq!(
            Channels::new("a*b").broadcast_pattern("/[x]"),
            "a\\*b#/\\[x\\]#*"
        );
    }

    #[test]
    fn broadcast_channel_follows_the_room_count() {
        let c = Channels::new("app");
        assert_eq!(c.broadcast_for("/", &[]), "app#/#");
        assert_eq!(c.broadcast_for("/", &["r".into()]), "app#/#r#");
        assert_eq!(c.broadcast_for("/", &["r".into(), "s".into()]), "app#/#");
    }

    #[test]
    fn room_is_read_from_the_channel() {
        let c = Channels::default();
        assert_eq!(
            c.broadcast_room("/", "socket.io#/#"),
            Some(BroadcastChannel::Namespace)
        );
        assert_eq!(
            c.broadcast_room("/", "socket.io#/#room1#"),
            Some(BroadcastChannel::Room("room1"))
        );
        assert_eq!(c.broadcast_room("/admin", "socket.io#/#room1#"), None);
        assert_eq!(c.broadcast_room("/", "socket.io#/#room1"), None);
        assert_eq!(c.broadcast_room("/", "other#/#"), None);
        assert_eq!(c.broadcast_room("/", "socket.io-request#/#"), None);
    }
}
