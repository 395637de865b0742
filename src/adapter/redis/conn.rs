//! Connections to Redis: one subscriber, one publisher, the readiness state, and the
//! supervisor task that connects them, resubscribes, notices when Redis goes away and
//! reconnects with backoff.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::Readiness;
use super::wire::Channels;
use crate::metrics::Metrics;

/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts (the node must be ready again within 10 s
/// of Redis coming back).
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the subscriber connection is checked with a PING.
const PING_EVERY: Duration = Duration::from_secs(1);
/// A PING or a command unanswered for this long means Redis is unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A request to subscribe one more namespace, answered once subscribed (or dropped when
/// the connection is down: it is subscribed on reconnection).
pub(super) type Subscribe = (String, oneshot::Sender<()>);

/// The channels a namespace needs.
pub(super) fn namespace_channels(
    channels: &Channels,
    nsp: &str,
    uid: &str,
) -> (String, Vec<String>) {
    (
        channels.broadcast_pattern(nsp),
        vec![
            channels.request(nsp),
            channels.response(nsp),
            channels.specific_response(nsp, uid),
            relay_channel(channels, nsp),
        ],
    )
}

/// `<prefix>-relay#<nsp>#`: subscribed by sio-relay nodes only, so that its `NUMSUB`
/// counts the sio-relay nodes among all nodes (nothing is published on it).
pub(super) fn relay_channel(channels: &Channels, nsp: &str) -> String {
    format!("{}-relay#{nsp}#", channels.prefix())
}

/// The connections and what they are subscribed to.
pub(super) struct Connections {
    pub client: redis::Client,
    pub channels: Channels,
    pub uid: String,
    pub python_channel: Option<String>,
    /// Namespaces to subscribe, kept across reconnections.
    pub namespaces: Mutex<BTreeSet<String>>,
    /// Namespaces whose channels Redis confirmed on the current connection.
    pub subscribed: Mutex<HashSet<String>>,
    /// The publisher while connected. A `MultiplexedConnection` is a cheap handle: it is
    /// cloned out, never used under the lock.
    pub publisher: Mutex<Option<MultiplexedConnection>>,
    pub readiness: watch::Sender<Readiness>,
    pub metrics: Metrics,
}

impl Connections {
    pub fn publisher(&self) -> Option<MultiplexedConnection> {
        self.publisher
            .lock()
            .expect("publisher lock poisoned")
            .clone()
    }

    /// Whether `nsp`'s channels are subscribed on the current connection.
    pub fn is_subscribed(&self, nsp: &str) -> bool {
        self.subscribed
            .lock()
            .expect("subscribed lock poisoned")
            .contains(nsp)
    }

    fn set(&self, readiness: Readiness) {
        self.readiness.send_if_modified(|current| {
            let changed = *current != readiness;
            if changed {
                match &readiness {
                    Readiness::Up => {
                        tracing::info!("cluster: connected to Redis");
                        self.metrics.cluster_redis_connected.set(1);
                    }
                    Readiness::Down(reason) => {
                        tracing::warn!(%reason, "cluster: Redis unavailable");
                        if *current == Readiness::Up {
                            self.metrics.cluster_redis_disconnections.inc();
                        }
                        self.metrics.cluster_redis_connected.set(0);
                    }
                }
                *current = readiness;
            }
            changed
        });
    }

    async fn connect(
        &self,
    ) -> redis::RedisResult<(PubSubSink, PubSubStream, MultiplexedConnection)> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let publisher = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let pubsub = tokio::time::timeout(RESPONSE_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| timeout_error())??;
        let (mut sink, stream) = pubsub.split();
        self.subscribed
            .lock()
            .expect("subscribed lock poisoned")
            .clear();
        let namespaces: Vec<String> = self
            .namespaces
            .lock()
            .expect("namespaces lock poisoned")
            .iter()
            .cloned()
            .collect();
        for nsp in &namespaces {
            self.subscribe(&mut sink, nsp).await?;
        }
        if let Some(channel) = &self.python_channel {
            with_timeout(sink.subscribe(channel)).await?;
        }
        Ok((sink, stream, publisher))
    }

    async fn subscribe(&self, sink: &mut PubSubSink, nsp: &str) -> redis::RedisResult<()> {
        let (pattern, channels) = namespace_channels(&self.channels, nsp, &self.uid);
        with_timeout(sink.psubscribe(pattern)).await?;
        with_timeout(sink.subscribe(channels)).await?;
        self.subscribed
            .lock()
            .expect("subscribed lock poisoned")
            .insert(nsp.to_owned());
        Ok(())
    }
}

fn timeout_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer in time",
    ))
}

async fn with_timeout<T>(f: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    tokio::time::timeout(RESPONSE_TIMEOUT, f)
        .await
        .map_err(|_| timeout_error())?
}

/// Keeps the connections up until `shutdown`; hands every pub/sub message to `on_message`
/// in arrival order.
pub(super) async fn supervise<F, Fut>(
    conns: Arc<Connections>,
    mut subscribe_rx: mpsc::UnboundedReceiver<Subscribe>,
    shutdown: CancellationToken,
    on_message: F,
) where
    F: Fn(redis::Msg) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = MIN_BACKOFF;
    loop {
        let reason = match conns.connect().await {
            Ok((sink, stream, publisher)) => {
                *conns.publisher.lock().expect("publisher lock poisoned") = Some(publisher);
                conns.set(Readiness::Up);
                backoff = MIN_BACKOFF;
                let reason = run(
                    &conns,
                    sink,
                    stream,
                    &mut subscribe_rx,
                    &shutdown,
                    &on_message,
                )
                .await;
                *conns.publisher.lock().expect("publisher lock poisoned") = None;
                reason
            }
            Err(err) => err.to_string(),
        };
        if shutdown.is_cancelled() {
            conns.set(Readiness::Down("shutting down".into()));
            return;
        }
        conns.set(Readiness::Down(reason));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Serves one connected session; returns why it ended.
async fn run<F, Fut>(
    conns: &Connections,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    subscribe_rx: &mut mpsc::UnboundedReceiver<Subscribe>,
    shutdown: &CancellationToken,
    on_message: &F,
) -> String
where
    F: Fn(redis::Msg) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return "shutting down".into(),
            message = stream.next() => match message {
                Some(message) => on_message(message).await,
                None => return "the connection to Redis was lost".into(),
            },
            Some((nsp, done)) = subscribe_rx.recv() => {
                if let Err(err) = conns.subscribe(&mut sink, &nsp).await {
                    return err.to_string();
                }
                let _ = done.send(());
            }
            _ = ping.tick() => {
                if let Err(err) = with_timeout(sink.ping::<redis::Value>()).await {
                    return format!("Redis does not answer: {err}");
                }
            }
        }
    }
}
