//! The admin web page (`GET /ui`) and the stats it draws (`GET /v1/stats`,
//! `GET /v1/stats/stream`).
//!
//! - The page is served without a token, holds no data and is locked down (CSP).
//! - The stats stream needs the token, reports the sockets of a real client and counts a
//!   push and its delivery, and ends when the relay shuts down.
//! - In headless Chromium (Debian's `chromium`, driven by playwright-core through
//!   `tests/clients/ui_check.js`): a wrong token is refused, the page lists a connected
//!   socket.io-client and its room, and its emit form reaches that client. With
//!   `UPDATE_UI_SCREENSHOT=1` it saves `docs/ui.png`, the screenshot in the README. Without
//!   `/usr/bin/chromium` that test says so on stderr and passes (`tests/run.sh` installs it
//!   when it runs as root).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::clients::clients_dir;
use common::{ClientKind, TIMEOUT, TestRelay, crate_dir, start_relay};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const TOKEN: &str = "ui-test-token";
const CHROMIUM: &str = "/usr/bin/chromium";

fn skip(why: &str) {
    let thread = std::thread::current();
    eprintln!("SKIPPED {}: {why}", thread.name().unwrap_or("test"));
}

async fn relay_with_token() -> TestRelay {
    start_relay(|config| config.admin.tokens = vec![TOKEN.into()]).await
}

#[tokio::test]
async fn page_is_served_without_a_token_and_locked_down() {
    let relay = relay_with_token().await;
    let open = common::Admin::new(relay.admin_url());
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let resp = open.get(path).await;
        assert_eq!(resp.status, 200, "{path}");
        let content_type = resp.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let policy = resp.header("content-security-policy").unwrap_or_default();
        assert!(
            policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
            "{path}: {policy}"
        );
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    }
    // Nothing from another origin, no inline script.
    let page = open.get("/ui").await.body;
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(!page.contains("<script>"), "inline script in the page");
    // The data behind it needs the token.
    for path in ["/v1/stats", "/v1/stats/stream"] {
        assert_eq!(
            open.get(path).await.error_code(),
            Some("unauthorized"),
            "{path}"
        );
    }
    relay.shutdown().await;
}

/// Reads Server-Sent Events from a streaming response: the JSON data of `stats` events.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(relay: &TestRelay, query: &str) -> Events {
        let response = common::admin::http_client()
            .get(format!("{}/v1/stats/stream{query}", relay.admin_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("stats stream request failed");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next `stats` event, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if event == "stats" {
                    return Some(serde_json::from_str(&data).expect("stats data is JSON"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(TIMEOUT, self.response.chunk())
                .await
                .expect("no stats event in time")
                .expect("stats stream failed")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

fn websocket_count(stats: &Value) -> u64 {
    stats["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["namespace"] == "/" && c["transport"] == "websocket")
        .map(|c| c["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn stats_stream_counts_sockets_pushes_and_deliveries() {
    let relay = relay_with_token().await;
    let admin = relay.admin();
    let mut client = relay.connect(ClientKind::Js, "websocket").await;
    let sid = client.sid("/").unwrap();

    let mut events = Events::open(&relay, "?interval_ms=250").await;
    let first = events.next().await.unwrap();
    assert_eq!(first["ready"], true);
    assert_eq!(websocket_count(&first), 1, "{first}");
    assert!(humantime::parse_rfc3339(first["time"].as_str().unwrap()).is_ok());

    let resp = admin
        .emit(&json!({"to": sid, "event": "counted", "data": 1}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"recipients": 1}));
    client.wait_event("/", "counted").await;
    // Totals only grow; this push and its delivery show up in a later event.
    let total = |stats: &Value, key: &str| stats["totals"][key].as_u64().unwrap();
    let later = loop {
        let stats = events.next().await.unwrap();
        if total(&stats, "deliveries") > total(&first, "deliveries") {
            break stats;
        }
    };
    assert_eq!(total(&later, "pushes"), total(&first, "pushes") + 1);
    assert_eq!(total(&later, "deliveries"), total(&first, "deliveries") + 1);
    // The one-shot snapshot agrees.
    let snapshot = admin.get("/v1/stats").await;
    assert_eq!(total(snapshot.expect_status(200), "pushes"), 1);

    // Bad parameters are refused like any other call's.
    assert_eq!(
        admin
            .get("/v1/stats/stream?interval_ms=10")
            .await
            .error_code(),
        Some("invalid_field")
    );
    assert_eq!(
        admin.get("/v1/stats?x=1").await.error_code(),
        Some("unknown_field")
    );

    // An open stream does not hold shutdown up: it ends, and the relay stops well within
    // its grace period (`TestRelay::shutdown` panics past it).
    client.exit().await;
    let started = tokio::time::Instant::now();
    relay.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let ended = tokio::time::timeout(TIMEOUT, async { while events.next().await.is_some() {} });
    ended
        .await
        .expect("the stats stream did not end on shutdown");
}

#[tokio::test]
async fn page_in_chromium_lists_a_client_and_emits_to_it() {
    if !Path::new(CHROMIUM).exists() {
        skip(&format!(
            "{CHROMIUM} is missing (apt-get install chromium; tests/run.sh does it as root)"
        ));
        return;
    }
    let driver = clients_dir().join("node_modules").join("playwright-core");
    assert!(
        driver.exists(),
        "{} is missing: run tests/run.sh once (it installs the pinned clients)",
        driver.display()
    );
    let relay = relay_with_token().await;
    let admin = relay.admin();
    let mut client = relay.connect(ClientKind::Js, "websocket").await;
    let sid = client.sid("/").unwrap();
    // A second client, over polling, in the same room: deliveries outnumber pushes.
    let other = relay.connect(ClientKind::Js, "polling").await;
    let other_sid = other.sid("/").unwrap();
    let resp = admin
        .join(&json!({"to": [&sid, &other_sid], "rooms": ["lobby"]}))
        .await;
    assert_eq!(resp.expect_status(200), &json!({"sockets": 2}));

    let profile = tempdir("ui-profile");
    // `UPDATE_UI_SCREENSHOT=1` refreshes the README's picture; otherwise it goes to a
    // temporary file, so a test run leaves the tree as it was.
    let screenshot = if std::env::var_os("UPDATE_UI_SCREENSHOT").is_some() {
        crate_dir().join("docs").join("ui.png")
    } else {
        profile.join("ui.png")
    };
    let options = json!({
        "admin": relay.admin_url(),
        "token": TOKEN,
        "wrong_token": "not-the-token",
        "sid": sid,
        "room": "lobby",
        "event": "from_ui",
        "data": {"hello": "from the admin page"},
        "screenshot": screenshot,
        "profile": profile,
        "chart_ms": 8000,
    });
    let mut child = Command::new("node")
        .arg(clients_dir().join("ui_check.js"))
        .arg(options.to_string())
        .current_dir(clients_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Chromium starts slowly on a loaded machine: a generous bound for each step.
    let mut step = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
            .await
            .expect("the page driver said nothing in time")
            .expect("cannot read the page driver")
            .expect("the page driver ended early");
        let value: Value = serde_json::from_str(&line).unwrap_or(json!({"line": line}));
        assert_ne!(value["step"], "failed", "{value}");
        value
    };

    assert_eq!(step().await["step"], "refused");
    let listed = step().await;
    assert_eq!(listed["step"], "listed");
    assert_eq!(listed["total"], "2");
    assert_eq!(step().await["step"], "emitted");
    let args = client.wait_event("/", "from_ui").await;
    assert_eq!(args, json!([{"hello": "from the admin page"}]));

    // Traffic for the chart, at a changing rate, while the driver waits for it.
    let pushes = async {
        for n in 0..100 {
            for _ in 0..1 + (n / 10) % 3 {
                admin
                    .emit(&json!({"to": "lobby", "event": "tick", "data": n}))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (charted, ()) = tokio::join!(step(), pushes);
    assert_eq!(charted["step"], "charted");
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("the page driver did not exit")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(screenshot.exists());
    // Chromium may still be writing its profile as it exits.
    let _ = std::fs::remove_dir_all(&profile);

    // The page's own calls carried the token; the wrong one was refused and counted.
    let metrics = admin.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "sio_relay_admin_requests_total{route=\"/v1/stats/stream\",status=\"401\"}"
        )),
        "the wrong token was not refused on the stream"
    );
    client.exit().await;
    other.exit().await;
    relay.shutdown().await;
}

/// A fresh directory under the system's temporary directory.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sio-relay-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
