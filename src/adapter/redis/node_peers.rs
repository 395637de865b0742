//! The recipients of an emit on Node.js peers. Node's adapter protocol carries no count
//! for a broadcast without acks, so when the cluster has Node.js Socket.IO servers the
//! emit asks them: a fetch-sockets request (type 5) for the broadcast's selector, which
//! each Node server answers with the sockets it holds there. sio-relay nodes skip that
//! request (`relaySkip`): they answer the broadcast itself with their count.
//!
//! Whether there are Node.js peers is learnt in the emit's own round trip: `PUBSUB
//! NUMSUB` of the request channel (every node) and of the relay channel (sio-relay nodes
//! only), pipelined with the `PUBLISH`. A cluster of sio-relay nodes alone never sends
//! the request.

use std::time::Instant;

use super::wire::Selector;
use super::wire::node::{Request, RequestKind, Response};
use super::{Inner, Kind, encode};

impl Inner {
    /// How many of `selector`'s sockets in `nsp` the `peers` Node.js peers hold, and
    /// whether one of them did not answer within the request timeout. Sent after the
    /// broadcast on the same connection, so each peer answers once it has delivered it.
    ///
    /// The broadcast is out by then: a failure here makes the count partial, never the
    /// call an error.
    pub(super) async fn count_on_node_peers(
        &self,
        nsp: &str,
        selector: Selector,
        peers: usize,
    ) -> (usize, bool) {
        let (id, mut rx, _guard) = self.register();
        let request = Request {
            uid: Some(self.conns.uid.clone()),
            kind: RequestKind::FetchSockets {
                request_id: id,
                selector,
                relay_skip: true,
            },
        };
        let channel = self.conns.channels.request(nsp);
        let sent = match encode(request.encode()) {
            Ok(payload) => self.publish(&channel, Kind::Request, payload).await,
            Err(err) => Err(err),
        };
        if let Err(err) = sent {
            tracing::debug!(nsp, %err, "cluster: Node.js peers not asked for their count");
            return (0, true);
        }
        let deadline = Instant::now() + self.request_timeout;
        let (mut total, mut answers) = (0, 0);
        while answers < peers {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(Response::Sockets { sockets, .. })) => {
                    total += sockets.len();
                    answers += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        (total, answers < peers)
    }
}
