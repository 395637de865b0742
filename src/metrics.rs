//! Every metric the relay exports, as typed handles in one struct.
//!
//! No other module spells a metric name. Labels are closed sets (transport, packet type,
//! direction, reason, route template): never a sid, a room or a raw path.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
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
