//! What this node sends to Redis: publishing requests and broadcasts, counting
//! subscribers (`PUBSUB NUMSUB`), subscribing namespaces on demand, publishing the
//! responses it owes other nodes, and the metrics of all of it.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::conn::Connections;
use super::{Inner, Kind, Readiness};
use crate::adapter::AdapterError;
use crate::metrics::Metrics;

impl Inner {
    /// Counts one cluster-wide operation (`Ok(partial)`, or refused) and its duration.
    pub(super) fn observe(
        &self,
        kind: &'static str,
        started: Instant,
        outcome: Result<bool, &AdapterError>,
    ) {
        let outcome = match outcome {
            Ok(false) => "complete",
            Ok(true) => "partial",
            Err(_) => "unavailable",
        };
        self.metrics
            .cluster_requests
            .with_label_values(&[kind, outcome])
            .inc();
        if outcome != "unavailable" {
            self.metrics
                .cluster_request_duration
                .with_label_values(&[kind])
                .observe(started.elapsed().as_secs_f64());
        }
    }

    pub(super) fn count_message(&self, direction: &'static str, kind: Kind) {
        self.metrics
            .cluster_messages
            .with_label_values(&[direction, kind.as_str()])
            .inc();
    }

    pub(super) fn check_up(&self) -> Result<(), AdapterError> {
        match &*self.readiness.borrow() {
            Readiness::Up => Ok(()),
            Readiness::Down(reason) => Err(AdapterError::ClusterUnavailable(reason.clone())),
        }
    }

    /// Subscribes `nsp` if it is not yet, waiting for Redis to confirm: the node counts
    /// itself in `NUMSUB` only once subscribed. A namespace that the namespace hook asked
    /// for a moment ago is waited for too.
    pub(super) async fn ensure_namespace(&self, nsp: &str) -> Result<(), AdapterError> {
        self.check_up()?;
        if self.conns.is_subscribed(nsp) {
            return Ok(());
        }
        self.conns
            .namespaces
            .lock()
            .expect("namespaces lock poisoned")
            .insert(nsp.to_owned());
        // Subscribing twice is harmless: Redis keeps one subscription per channel.
        let (done, confirmed) = oneshot::channel();
        let _ = self.subscribe_tx.send((nsp.to_owned(), done));
        match tokio::time::timeout(self.request_timeout, confirmed).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(AdapterError::ClusterUnavailable("cannot subscribe".into())),
        }
    }

    pub(super) async fn publish(
        &self,
        channel: &str,
        kind: Kind,
        payload: Vec<u8>,
    ) -> Result<(), AdapterError> {
        let mut publisher = self
            .conns
            .publisher()
            .ok_or_else(|| AdapterError::ClusterUnavailable("not connected to Redis".into()))?;
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut publisher)
            .await
            .map_err(|err| AdapterError::ClusterUnavailable(err.to_string()))?;
        self.count_message("out", kind);
        Ok(())
    }

    /// `PUBSUB NUMSUB count_channels...` and `PUBLISH channel payload` in one round trip
    /// (a pipeline: Redis runs them back to back); the subscriber counts.
    pub(super) async fn count_and_publish<const N: usize>(
        &self,
        count_channels: [String; N],
        channel: &str,
        payload: Vec<u8>,
    ) -> Result<[usize; N], AdapterError> {
        self.check_up()?;
        let mut publisher = self
            .conns
            .publisher()
            .ok_or_else(|| AdapterError::ClusterUnavailable("not connected to Redis".into()))?;
        let (reply, _receivers): (Vec<(String, usize)>, i64) = redis::pipe()
            .cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&count_channels[..])
            .cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut publisher)
            .await
            .map_err(|err| AdapterError::ClusterUnavailable(err.to_string()))?;
        self.count_message("out", Kind::Broadcast);
        let mut counts = [0; N];
        for (count, (_, n)) in counts.iter_mut().zip(reply) {
            *count = n;
        }
        Ok(counts)
    }

    /// Subscriber counts of `channels`.
    pub(super) async fn numsub<const N: usize>(
        &self,
        channels: [String; N],
    ) -> Result<[usize; N], AdapterError> {
        self.check_up()?;
        let mut publisher = self
            .conns
            .publisher()
            .ok_or_else(|| AdapterError::ClusterUnavailable("not connected to Redis".into()))?;
        let reply: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channels[..])
            .query_async(&mut publisher)
            .await
            .map_err(|err| AdapterError::ClusterUnavailable(err.to_string()))?;
        let mut counts = [0; N];
        for (count, (_, n)) in counts.iter_mut().zip(reply) {
            *count = n;
        }
        Ok(counts)
    }
}

/// Publishes the responses this node owes other nodes, in the order they were queued,
/// pipelining whatever has queued up meanwhile. The inbound handler only queues them: it
/// never waits for Redis to acknowledge a response before handling the next message.
/// Ends when the cluster is dropped. Responses queued while Redis is down are dropped
/// (their requesters time out, as they would have).
pub(super) async fn send_responses(
    conns: Arc<Connections>,
    mut rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    metrics: Metrics,
) {
    const MAX_BATCH: usize = 256;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Some(mut publisher) = conns.publisher() else {
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        match pipe.query_async::<()>(&mut publisher).await {
            Ok(()) => metrics
                .cluster_messages
                .with_label_values(&["out", Kind::Response.as_str()])
                .inc_by(batch.len() as u64),
            Err(err) => tracing::debug!(%err, "cluster: responses not published"),
        }
        batch.clear();
    }
}
