//! Live statistics of this node: `GET /v1/stats` (one snapshot) and `GET /v1/stats/stream`
//! (a snapshot every `interval_ms`, as Server-Sent Events), what the admin web page draws.
//!
//! A snapshot is read from the relay's own metrics, so it always agrees with `/metrics`:
//! connected sockets by namespace and transport, and running totals (pushes, deliveries,
//! drops, acknowledgement outcomes). Totals only ever grow; a reader turns two snapshots
//! into rates, which keeps the stream stateless and lets a reader that missed events
//! still compute exact averages. Both routes are `/v1/`, so they need a token when tokens
//! are set, like every other call.
//!
//! A stream ends when the relay shuts down ([`AdminState::close_streams`]), so an open
//! page never holds the admin listener's graceful shutdown.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::Uri;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures_util::Stream;
use prometheus::core::Collector;
use serde::Serialize;

use super::AdminState;
use super::audit::Access;
use super::error::ApiError;
use super::selector;
use crate::metrics::Metrics;

/// The default time between two events of a stream.
const DEFAULT_INTERVAL_MS: u64 = 1000;
/// The shortest and longest `interval_ms` a stream accepts.
const INTERVAL_RANGE_MS: std::ops::RangeInclusive<u64> = 250..=60_000;

/// One snapshot of this node's statistics.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// When it was taken, RFC 3339 with milliseconds.
    time: String,
    /// Whether `/readyz` would answer 200 (listeners up, cluster engine reachable).
    ready: bool,
    /// Connected sockets, by namespace and transport; only non-zero counts.
    sockets: Vec<SocketCount>,
    /// Running totals since the relay started.
    totals: Totals,
}

#[derive(Debug, Serialize)]
struct SocketCount {
    /// The namespace as `sio_relay_sockets` labels it (the matching pattern for
    /// namespaces allowed by a wildcard).
    namespace: String,
    transport: String,
    count: u64,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    /// Engine.IO sessions opened.
    connections: u64,
    /// Engine.IO sessions closed.
    disconnections: u64,
    /// Events accepted by `POST /v1/emit` on this node.
    pushes: u64,
    /// Events (plain and binary) written to this node's clients.
    deliveries: u64,
    /// Messages not delivered, all reasons.
    dropped: u64,
    /// Acknowledgements received in time.
    acks_answered: u64,
    /// Acknowledgements that timed out.
    acks_timed_out: u64,
}

impl Snapshot {
    fn take(state: &AdminState) -> Self {
        let metrics = state.metrics();
        Snapshot {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            ready: state.is_ready(),
            sockets: socket_counts(metrics),
            totals: totals(metrics),
        }
    }
}

fn socket_counts(metrics: &Metrics) -> Vec<SocketCount> {
    let mut counts: Vec<SocketCount> = metrics
        .sockets
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter_map(|metric| {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|pair| pair.name() == name)
                    .map(|pair| pair.value().to_owned())
                    .unwrap_or_default()
            };
            let count = metric.get_gauge().value();
            (count >= 1.0).then(|| SocketCount {
                namespace: label("namespace"),
                transport: label("transport"),
                count: count as u64,
            })
        })
        .collect();
    counts.sort_by(|a, b| (&a.namespace, &a.transport).cmp(&(&b.namespace, &b.transport)));
    counts
}

/// The sum of every series of a counter vector.
fn sum(collector: &impl Collector) -> u64 {
    collector
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|metric| metric.get_counter().value() as u64)
        .sum()
}

fn totals(metrics: &Metrics) -> Totals {
    let packets_out = |kind: &str| metrics.packets.with_label_values(&["out", kind]).get();
    let acks = |outcome: &str| metrics.acks.with_label_values(&[outcome]).get();
    Totals {
        connections: metrics.connections.get(),
        disconnections: sum(&metrics.disconnections),
        pushes: metrics.pushes.get(),
        deliveries: packets_out("event") + packets_out("binary_event"),
        dropped: sum(&metrics.dropped),
        acks_answered: acks("answered"),
        acks_timed_out: acks("timed_out"),
    }
}

/// `GET /v1/stats`.
pub async fn snapshot(
    State(state): State<AdminState>,
    Extension(access): Extension<Access>,
    uri: Uri,
) -> Result<Json<Snapshot>, ApiError> {
    selector::query_pairs(uri.query(), &[])?;
    access.check_node_wide()?;
    Ok(Json(Snapshot::take(&state)))
}

/// The `interval_ms` of a stream request.
fn interval(uri: &Uri) -> Result<Duration, ApiError> {
    let pairs = selector::query_pairs(uri.query(), &["interval_ms"])?;
    let Some((_, value)) = pairs.first() else {
        return Ok(Duration::from_millis(DEFAULT_INTERVAL_MS));
    };
    if pairs.len() > 1 {
        return Err(ApiError::field("`interval_ms` may be given once"));
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|ms| INTERVAL_RANGE_MS.contains(ms))
        .ok_or_else(|| {
            ApiError::field(format!(
                "`interval_ms` must be an integer from {} to {}, got {value:?}",
                INTERVAL_RANGE_MS.start(),
                INTERVAL_RANGE_MS.end()
            ))
        })
        .map(Duration::from_millis)
}

/// `GET /v1/stats/stream?interval_ms=…`: a `stats` event at once, then one every interval,
/// until the client goes away or the relay shuts down.
pub async fn stream(
    State(state): State<AdminState>,
    Extension(access): Extension<Access>,
    uri: Uri,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let every = interval(&uri)?;
    access.check_node_wide()?;
    let closing = state.closing();
    let mut ticks = tokio::time::interval(every);
    // A reader that fell behind gets the current numbers, not a burst of stale ones.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let events = futures_util::stream::unfold(
        (state, ticks, closing),
        |(state, mut ticks, closing)| async move {
            tokio::select! {
                _ = closing.cancelled() => None,
                _ = ticks.tick() => {
                    let snapshot = Snapshot::take(&state);
                    let event = Event::default()
                        .event("stats")
                        .json_data(&snapshot)
                        .expect("a snapshot serializes");
                    Some((Ok(event), (state, ticks, closing)))
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_intervals() {
        let uri = |q: &str| q.parse::<Uri>().unwrap();
        assert_eq!(interval(&uri("/s")).unwrap(), Duration::from_secs(1));
        assert_eq!(
            interval(&uri("/s?interval_ms=250")).unwrap(),
            Duration::from_millis(250)
        );
        for bad in [
            "/s?interval_ms=249",
            "/s?interval_ms=60001",
            "/s?interval_ms=x",
        ] {
            assert_eq!(
                interval(&uri(bad)).unwrap_err().code(),
                "invalid_field",
                "{bad}"
            );
        }
        assert_eq!(
            interval(&uri("/s?every=1")).unwrap_err().code(),
            "unknown_field"
        );
    }

    #[test]
    fn totals_follow_the_metrics() {
        let metrics = Metrics::new();
        metrics.pushes.inc();
        metrics
            .packets
            .with_label_values(&["out", "event"])
            .inc_by(3);
        metrics
            .packets
            .with_label_values(&["out", "binary_event"])
            .inc();
        metrics.packets.with_label_values(&["out", "connect"]).inc();
        metrics.dropped.with_label_values(&["queue_full"]).inc();
        metrics
            .dropped
            .with_label_values(&["client_event"])
            .inc_by(2);
        metrics.acks.with_label_values(&["timed_out"]).inc();
        metrics
            .sockets
            .with_label_values(&["/", "websocket"])
            .set(2);
        metrics.sockets.with_label_values(&["/", "polling"]).set(0);
        let totals = totals(&metrics);
        assert_eq!(
            (totals.pushes, totals.deliveries, totals.dropped),
            (1, 4, 3)
        );
        assert_eq!((totals.acks_answered, totals.acks_timed_out), (0, 1));
        let sockets = socket_counts(&metrics);
        assert_eq!(sockets.len(), 1);
        assert_eq!(
            (
                sockets[0].namespace.as_str(),
                sockets[0].transport.as_str(),
                sockets[0].count
            ),
            ("/", "websocket", 2)
        );
    }
}
