//! Every metric the relay exports, as typed handles in one struct.
//!
//! No other module spells a metric name. Labels are closed sets (transport, packet type,
//! direction, reason, route template): never a sid, a room or a raw path.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The relay's metrics and the registry they live in.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `sio_relay_sockets{namespace,transport}`: connected Socket.IO sockets.
    pub sockets: IntGaugeVec,
    /// `sio_relay_connections_total`: Engine.IO sessions opened.
    pub connections: IntCounter,
    /// `sio_relay_disconnections_total{reason}`: Engine.IO sessions closed.
    pub disconnections: IntCounterVec,
    /// `sio_relay_packets_total{direction,type}`: Socket.IO packets.
    pub packets: IntCounterVec,
    /// `sio_relay_bytes_total{direction}`: Engine.IO payload bytes.
    pub bytes: IntCounterVec,
    /// `sio_relay_admin_requests_total{route,status}`.
    pub admin_requests: IntCounterVec,
    /// `sio_relay_admin_request_duration_seconds{route}`.
    pub admin_request_duration: HistogramVec,
    /// `sio_relay_acks_total{outcome}`: acknowledgements awaited by admin emits.
    pub acks: IntCounterVec,
    /// `sio_relay_dropped_total{reason}`: messages not delivered.
    pub dropped: IntCounterVec,
    /// `sio_relay_pushes_total`: events accepted by this node's `POST /v1/emit` (each
    /// element of a batch counts), whatever the number of recipients.
    pub pushes: IntCounter,
    /// `sio_relay_cluster_messages_total{direction,kind}`: Redis pub/sub messages of the
    /// cluster; `kind` is `broadcast`, `request`, `response` or `python`.
    pub cluster_messages: IntCounterVec,
    /// `sio_relay_cluster_broadcasts_skipped_total`: broadcasts to a room this node has no
    /// socket in, dropped by their channel name without being decoded.
    pub cluster_broadcasts_skipped: IntCounter,
    /// `sio_relay_cluster_requests_total{kind,outcome}`: cluster-wide operations started by
    /// this node; `outcome` is `complete`, `partial` (some node did not answer in time) or
    /// `unavailable` (Redis unreachable, nothing done).
    pub cluster_requests: IntCounterVec,
    /// `sio_relay_cluster_request_duration_seconds{kind}`: how long a cluster-wide
    /// operation took, other nodes' answers included.
    pub cluster_request_duration: HistogramVec,
    /// `sio_relay_cluster_redis_connected`: 1 while connected to Redis and subscribed,
    /// 0 otherwise (always 0 with the memory adapter).
    pub cluster_redis_connected: IntGauge,
    /// `sio_relay_cluster_redis_disconnections_total`: connections to Redis lost.
    pub cluster_redis_disconnections: IntCounter,
    /// `sio_relay_recovery_buffered_bytes`: bytes of events this node keeps for connection
    /// state recovery (its memory replay logs; 0 in a cluster, whose log is in Redis).
    pub recovery_buffered_bytes: IntGauge,
    /// `sio_relay_recovery_buffered_messages`: events in those logs.
    pub recovery_buffered_messages: IntGauge,
    /// `sio_relay_recoveries_total{outcome}`: reconnecting clients that asked to recover;
    /// `outcome` is `recovered`, `unknown_session` (expired or never saved),
    /// `unknown_offset` (its last event left the log) or `unavailable` (store unreachable).
    pub recoveries: IntCounterVec,
    /// `sio_relay_idempotent_repeats_total`: emits answered from an earlier one with the
    /// same `Idempotency-Key`, sending nothing.
    pub idempotent_repeats: IntCounter,
    /// `sio_relay_hook_requests_total{type,outcome}`: requests to the backend hook; `type`
    /// is `event`, `connect` or `disconnect`; `outcome` is `ok`, `http_error` (not 2xx),
    /// `timeout`, `unreachable`, `bad_answer` (answer refused) or `emit_failed`.
    pub hook_requests: IntCounterVec,
    /// `sio_relay_hook_request_duration_seconds{type}`: how long a hook took to answer.
    pub hook_request_duration: HistogramVec,
    /// `sio_relay_hook_lifecycle_queue`: lifecycle events waiting for delivery.
    pub hook_lifecycle_queue: IntGauge,
    /// `sio_relay_refused_connections_total{reason}`: handshakes refused by `[limits]`;
    /// `reason` is `max_connections`, `max_connections_per_ip` or `rate_limited`.
    pub refused_connections: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the metrics in a fresh registry (one per relay instance, so tests that run
    /// several relays in one process do not share counters).
    pub fn new() -> Self {
        let registry = Registry::new();
        let sockets = IntGaugeVec::new(
            Opts::new("sio_relay_sockets", "Connected Socket.IO sockets."),
            &["namespace", "transport"],
        )
        .expect("valid metric");
        let connections =
            IntCounter::new("sio_relay_connections_total", "Engine.IO sessions opened.")
                .expect("valid metric");
        let disconnections = IntCounterVec::new(
            Opts::new(
                "sio_relay_disconnections_total",
                "Engine.IO sessions closed, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let packets = IntCounterVec::new(
            Opts::new(
                "sio_relay_packets_total",
                "Socket.IO packets, by direction and type.",
            ),
            &["direction", "type"],
        )
        .expect("valid metric");
        let bytes = IntCounterVec::new(
            Opts::new(
                "sio_relay_bytes_total",
                "Engine.IO payload bytes, by direction.",
            ),
            &["direction"],
        )
        .expect("valid metric");
        let admin_requests = IntCounterVec::new(
            Opts::new(
                "sio_relay_admin_requests_total",
                "Admin API requests, by route and status.",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        let admin_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "sio_relay_admin_request_duration_seconds",
                "Admin API request duration, by route.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let acks = IntCounterVec::new(
            Opts::new(
                "sio_relay_acks_total",
                "Acknowledgements awaited, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let dropped = IntCounterVec::new(
            Opts::new(
                "sio_relay_dropped_total",
                "Messages not delivered, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let pushes = IntCounter::new(
            "sio_relay_pushes_total",
            "Events accepted by this node's admin API for delivery.",
        )
        .expect("valid metric");
        let cluster_messages = IntCounterVec::new(
            Opts::new(
                "sio_relay_cluster_messages_total",
                "Cluster messages over Redis, by direction and kind.",
            ),
            &["direction", "kind"],
        )
        .expect("valid metric");
        let cluster_broadcasts_skipped = IntCounter::new(
            "sio_relay_cluster_broadcasts_skipped_total",
            "Cluster broadcasts to a room with no local socket, dropped undecoded.",
        )
        .expect("valid metric");
        let cluster_requests = IntCounterVec::new(
            Opts::new(
                "sio_relay_cluster_requests_total",
                "Cluster-wide operations started by this node, by kind and outcome.",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        let cluster_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "sio_relay_cluster_request_duration_seconds",
                "Duration of cluster-wide operations, other nodes' answers included.",
            )
            .buckets(vec![
                0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0, 30.0, 60.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let cluster_redis_connected = IntGauge::new(
            "sio_relay_cluster_redis_connected",
            "1 while connected to the cluster's Redis and subscribed.",
        )
        .expect("valid metric");
        let cluster_redis_disconnections = IntCounter::new(
            "sio_relay_cluster_redis_disconnections_total",
            "Connections to the cluster's Redis lost.",
        )
        .expect("valid metric");
        let hook_requests = IntCounterVec::new(
            Opts::new(
                "sio_relay_hook_requests_total",
                "Requests to the backend hook, by type and outcome.",
            ),
            &["type", "outcome"],
        )
        .expect("valid metric");
        let hook_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "sio_relay_hook_request_duration_seconds",
                "Time the backend hook took to answer, by type.",
            )
            .buckets(vec![
                0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0, 30.0,
            ]),
            &["type"],
        )
        .expect("valid metric");
        let hook_lifecycle_queue = IntGauge::new(
            "sio_relay_hook_lifecycle_queue",
            "Lifecycle events waiting for delivery to the backend hook.",
        )
        .expect("valid metric");
        let refused_connections = IntCounterVec::new(
            Opts::new(
                "sio_relay_refused_connections_total",
                "Handshakes refused by the connection limits, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");

        let recovery_buffered_bytes = IntGauge::new(
            "sio_relay_recovery_buffered_bytes",
            "Bytes of events kept in this node's memory for connection state recovery.",
        )
        .expect("valid metric");
        let recovery_buffered_messages = IntGauge::new(
            "sio_relay_recovery_buffered_messages",
            "Events kept in this node's memory for connection state recovery.",
        )
        .expect("valid metric");
        let recoveries = IntCounterVec::new(
            Opts::new(
                "sio_relay_recoveries_total",
                "Connection state recovery attempts, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let idempotent_repeats = IntCounter::new(
            "sio_relay_idempotent_repeats_total",
            "Emits answered from an earlier one with the same Idempotency-Key.",
        )
        .expect("valid metric");

        for collector in [
            Box::new(sockets.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(connections.clone()),
            Box::new(disconnections.clone()),
            Box::new(packets.clone()),
            Box::new(bytes.clone()),
            Box::new(admin_requests.clone()),
            Box::new(admin_request_duration.clone()),
            Box::new(acks.clone()),
            Box::new(dropped.clone()),
            Box::new(pushes.clone()),
            Box::new(cluster_messages.clone()),
            Box::new(cluster_broadcasts_skipped.clone()),
            Box::new(cluster_requests.clone()),
            Box::new(cluster_request_duration.clone()),
            Box::new(cluster_redis_connected.clone()),
            Box::new(cluster_redis_disconnections.clone()),
            Box::new(recovery_buffered_bytes.clone()),
            Box::new(recovery_buffered_messages.clone()),
            Box::new(recoveries.clone()),
            Box::new(idempotent_repeats.clone()),
            Box::new(hook_requests.clone()),
            Box::new(hook_request_duration.clone()),
            Box::new(hook_lifecycle_queue.clone()),
            Box::new(refused_connections.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registered once");

        Self {
            registry,
            sockets,
            connections,
            disconnections,
            packets,
            bytes,
            admin_requests,
            admin_request_duration,
            acks,
            dropped,
            pushes,
            cluster_messages,
            cluster_broadcasts_skipped,
            cluster_requests,
            cluster_request_duration,
            cluster_redis_connected,
            cluster_redis_disconnections,
            recovery_buffered_bytes,
            recovery_buffered_messages,
            recoveries,
            idempotent_repeats,
            hook_requests,
            hook_request_duration,
            hook_lifecycle_queue,
            refused_connections,
        }
    }

    /// The registry, for collectors other modules add (the cluster adapter's).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}
