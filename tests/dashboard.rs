//! The Grafana dashboard `deploy/grafana/sio-relay.json`: valid JSON of the shape Grafana
//! imports, and every metric it queries is one the relay exports. The relay is a real
//! cluster member (Redis on 127.0.0.1:6379, a key prefix of its own) with a real client,
//! driven until every metric family has a series (Prometheus' text format leaves out a
//! labelled family that has none yet).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{ClientKind, crate_dir, start_relay};
use serde_json::{Value, json};
use sio_relay::config::AdapterKind;

fn dashboard() -> Value {
    let path = crate_dir()
        .join("deploy")
        .join("grafana")
        .join("sio-relay.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"))
}

/// Every PromQL expression of the dashboard's panels (and template variables).
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert!(
            panel["title"].is_string(),
            "a panel without a title: {panel}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}: queries another data source than the dashboard's variable",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}: no query", panel["title"]);
        for target in targets {
            found.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["definition"].as_str() {
            found.push(query.to_owned());
        }
    }
    found
}

/// The `sio_relay_*` names in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find("sio_relay_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The series names a `/metrics` page can be queried by: each family's name, and for
/// histograms its `_bucket`, `_sum` and `_count` series.
fn exported(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            names.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

#[test]
fn dashboard_is_grafana_json() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "sio-relay");
    assert!(dashboard["title"].is_string());
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "instance"]);
    // Panel ids are unique, and panels do not overlap on one row.
    let ids: Vec<u64> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
    assert!(!expressions(&dashboard).is_empty());
}

#[tokio::test]
async fn dashboard_queries_only_metrics_the_relay_exports() {
    let queried: BTreeSet<String> = expressions(&dashboard())
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    // What the contract asks a dashboard of this relay to show.
    for wanted in [
        "sio_relay_sockets",
        "sio_relay_pushes_total",
        "sio_relay_packets_total",
        "sio_relay_acks_total",
        "sio_relay_dropped_total",
        "sio_relay_admin_request_duration_seconds_bucket",
        "sio_relay_cluster_redis_connected",
    ] {
        assert!(
            queried.contains(wanted),
            "the dashboard does not query {wanted}"
        );
    }

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let relay = start_relay(|config| {
        config.cluster.adapter = AdapterKind::Redis;
        config.cluster.redis_url = "redis://127.0.0.1:6379".into();
        config.cluster.key_prefix = format!("sio-relay-test-dashboard-{nanos}");
        // One session at most, so that a second handshake is refused (and counted).
        config.limits.max_connections = 1;
    })
    .await;
    common::eventually("/readyz 200", common::TIMEOUT, || async {
        (relay.admin().get("/readyz").await.status == 200).then_some(())
    })
    .await;
    let admin = relay.admin();
    let mut client = relay
        .client(ClientKind::Js)
        .transports("websocket")
        .no_reconnect()
        .ack("answer_me", json!(["ok"]))
        .connect()
        .await;
    let sid = client.sid("/").unwrap();
    let refused = common::admin::http_client()
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            relay.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    // An answered ack, a timed-out one, a dropped client event, a cluster request.
    let answered = admin
        .emit(&json!({"to": sid, "event": "answer_me", "ack_timeout_ms": 5000}))
        .await;
    assert_eq!(
        answered.expect_status(200)["acks"][0]["args"],
        json!(["ok"])
    );
    let timed_out = admin
        .emit(&json!({"to": sid, "event": "ignore_me", "ack_timeout_ms": 200}))
        .await;
    assert_eq!(timed_out.expect_status(200)["timeouts"], json!([sid]));
    client.emit("/", "unhandled", json!([1])).await;
    admin.sockets("").await.expect_status(200);
    client.exit().await;

    // The disconnection is counted once the relay notices the client left.
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    let missing = loop {
        let exported = exported(&admin.metrics().await);
        let missing: Vec<String> = queried.difference(&exported).cloned().collect();
        if missing.is_empty() || tokio::time::Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(missing.is_empty(), "queried, not exported: {missing:?}");
    relay.shutdown().await;
}
