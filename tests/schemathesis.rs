//! The admin API fuzzed from its own OpenAPI document (`GET /v1/openapi.json`) with
//! schemathesis, pinned in `tests/clients/requirements.txt`: every response must match
//! the document (status, content type, headers, body schema), no 5xx, invalid input
//! refused, valid input accepted, the token enforced.
//!
//! Clients are connected and answer every acknowledgement, so broadcasts and ack-waits
//! that schemathesis generates have recipients. `/v1/disconnect` runs last, on its own,
//! since a generated broadcast disconnects everyone.
//!
//! Bounded: a fixed number of examples per operation, a fixed seed (so a failure can be
//! reproduced with the same command line), and a wall-clock limit on each run. The stats
//! stream (`/v1/stats/stream`), which never ends by itself, is left to `tests/ui.rs`.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::clients::{clients_dir, connect_all, exit_all};
use common::{ClientKind, TestRelay, start_relay};
use serde_json::json;
use tokio::process::Command;

const TOKEN: &str = "schemathesis-token";
const SEED: &str = "20261126";
/// A run taking longer than this fails the test (one takes under 10 s on a quiet machine).
const RUN_LIMIT: Duration = Duration::from_secs(150);

fn schemathesis_bin() -> std::path::PathBuf {
    clients_dir().join(".venv").join("bin").join("schemathesis")
}

/// Runs schemathesis against the relay's document with `extra` arguments; panics with
/// its output unless it finds no issue.
async fn run_schemathesis(relay: &TestRelay, max_examples: u32, extra: &[&str]) {
    let bin = schemathesis_bin();
    assert!(
        bin.exists(),
        "{} is missing: run tests/run.sh once (it installs the pinned clients)",
        bin.display()
    );
    let workdir =
        std::env::temp_dir().join(format!("sio-relay-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).unwrap();
    let max_examples = max_examples.to_string();
    let mut args = vec![
        "run".to_string(),
        format!("{}/v1/openapi.json", relay.admin_url()),
        "--header".into(),
        format!("Authorization: Bearer {TOKEN}"),
        "--checks".into(),
        "all".into(),
        "--max-examples".into(),
        max_examples,
        "--seed".into(),
        SEED.into(),
        // One worker: hypothesis parses lambda sources with `ast`, which is not thread
        // safe on Python 3.11 ("AST constructor recursion depth mismatch").
        "--workers".into(),
        "1".into(),
        "--request-timeout".into(),
        "10".into(),
        "--generation-database".into(),
        "none".into(),
        "--no-color".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let started = Instant::now();
    let child = Command::new(&bin)
        .args(&args)
        .current_dir(&workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start schemathesis");
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis {args:?} ran longer than {RUN_LIMIT:?}"))
        .expect("cannot wait for schemathesis");
    let _ = std::fs::remove_dir_all(&workdir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found issues ({}; reproduce with `schemathesis {}`):\n{stdout}\n{stderr}",
        output.status,
        args.join(" ")
    );
    assert!(
        stdout.contains("No issues found"),
        "unexpected schemathesis summary:\n{stdout}\n{stderr}"
    );
    let cases = stdout
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_default()
        .trim();
    eprintln!(
        "schemathesis {}: {cases} in {:?}",
        extra.join(" "),
        started.elapsed()
    );
}

async fn assert_no_server_errors(relay: &TestRelay) {
    let metrics = relay.admin().metrics().await;
    let errors: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("sio_relay_admin_requests_total{") && l.contains("status=\"5"))
        .collect();
    assert!(errors.is_empty(), "5xx answers: {errors:?}");
}

#[tokio::test]
async fn admin_api_matches_its_openapi_document_under_fuzzing() {
    let relay = start_relay(|config| {
        config.admin.tokens = vec![TOKEN.into()];
        config.server.namespaces = vec!["*".into()];
    })
    .await;
    // Recipients that answer every acknowledgement at once, over both transports.
    let mut options = Vec::new();
    for (kind, transports) in [
        (ClientKind::Js, "websocket"),
        (ClientKind::Py, "polling"),
        (ClientKind::PyAsync, "websocket"),
    ] {
        options.push(
            relay
                .client(kind)
                .transports(transports)
                .ack("*", json!(["ok"])),
        );
    }
    let clients = connect_all(options).await;

    // The stats stream never ends by itself, so it cannot be checked response by response;
    // tests/ui.rs covers it.
    run_schemathesis(
        &relay,
        20,
        &[
            "--exclude-path",
            "/v1/disconnect",
            "--exclude-path",
            "/v1/stats/stream",
        ],
    )
    .await;
    assert_no_server_errors(&relay).await;
    // The clients were there all along: fuzzing moved them between rooms, nothing more.
    let listed = relay.admin().sockets("").await;
    assert_eq!(
        listed.expect_status(200)["sockets"]
            .as_array()
            .map(Vec::len),
        Some(clients.len()),
        "{}",
        listed.body
    );

    run_schemathesis(&relay, 10, &["--include-path", "/v1/disconnect"]).await;
    assert_no_server_errors(&relay).await;
    assert_eq!(relay.admin().get("/healthz").await.status, 200);

    exit_all(clients).await;
    relay.shutdown().await;
}
