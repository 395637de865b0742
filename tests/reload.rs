//! Reloading the configuration on SIGHUP, against the built binary: what changes live
//! (admin tokens, allowed origins), what needs a restart (listen addresses), and that a
//! bad file changes nothing. Connected clients (socket.io-client over WebSocket,
//! python-socketio over long-polling) stay connected through every reload.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::clients::is;
use common::relay::free_port;
use common::{
    Client, ClientKind, HttpResponse, QUIET, RawPolling, RelayProcess, TIMEOUT, TempFile,
    eventually, spawn_relay_process,
};
use reqwest::Method;
use serde_json::json;

const RELOADED: &str = "configuration reloaded";
const REFUSED: &str = "reload refused";

fn tokens_file(tokens: &str) -> String {
    format!("[admin]\ntokens = [{tokens}]\n")
}

/// How many stderr lines of the relay contain `text`.
fn count(relay: &RelayProcess, text: &str) -> usize {
    relay.stderr().lines().filter(|l| l.contains(text)).count()
}

/// Sends SIGHUP and waits for one more log line containing `outcome` ([`RELOADED`] or
/// [`REFUSED`]); returns the stderr written since the signal.
async fn sighup(relay: &RelayProcess, outcome: &str) -> String {
    let before_len = relay.stderr().len();
    let before = count(relay, outcome);
    relay.sighup();
    eventually(&format!("a new {outcome:?} log line"), TIMEOUT, || async {
        (count(relay, outcome) > before).then_some(())
    })
    .await;
    relay.stderr()[before_len..].to_string()
}

/// `POST /v1/emit` of `event` to everyone, with `token`.
async fn emit(relay: &RelayProcess, token: &str, event: &str) -> HttpResponse {
    relay
        .admin(None)
        .post_json(
            "/v1/emit",
            &json!({"broadcast": true, "event": event, "data": {"via": token}}),
            Some(token),
        )
        .await
}

/// A socket.io-client over WebSocket and a python-socketio client over long-polling,
/// both connected to `/`.
async fn connect_clients(relay: &RelayProcess) -> [(Client, String); 2] {
    let mut out = Vec::new();
    for (kind, transports) in [(ClientKind::Js, "websocket"), (ClientKind::Py, "polling")] {
        let client = relay.connect(kind, transports).await;
        let sid = client.sid("/").expect("connected without a sid");
        out.push((client, sid));
    }
    out.try_into().ok().unwrap()
}

/// Each client is still connected with the sid it had, and receives `event`.
async fn assert_still_connected(clients: &mut [(Client, String)], event: &str) {
    for (client, sid) in clients.iter_mut() {
        let args = client.wait_event("/", event).await;
        assert_eq!(args.as_array().map(Vec::len), Some(1), "{args}");
        assert!(
            !client.history().iter().any(|v| is(v, "disconnect")),
            "{} client was disconnected\n{}",
            client.kind().name(),
            client.report()
        );
        assert_eq!(
            client.sid("/").as_deref(),
            Some(sid.as_str()),
            "{} client has a new sid\n{}",
            client.kind().name(),
            client.report()
        );
    }
}

fn assert_serving(relay: &mut RelayProcess) {
    assert!(
        relay.try_status().is_none(),
        "the relay exited\n{}",
        relay.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_token_applies_and_clients_stay() {
    let file = TempFile::new("reload-rotate.toml", &tokens_file("\"old\""));
    let mut relay = spawn_relay_process(&["--config", &file.arg()], &[]).await;
    let mut clients = connect_clients(&relay).await;

    emit(&relay, "old", "before").await.expect_status(200);
    emit(&relay, "new", "refused").await.expect_status(401);
    assert_still_connected(&mut clients, "before").await;

    file.write(&tokens_file("\"new\""));
    let log = sighup(&relay, RELOADED).await;
    assert!(!log.contains("restart"), "nothing needing a restart: {log}");

    let accepted = emit(&relay, "new", "after").await;
    let body = accepted.expect_status(200);
    assert_eq!(body["recipients"], 2, "{body}");
    let refused = emit(&relay, "old", "refused").await;
    refused.expect_status(401);
    assert_still_connected(&mut clients, "after").await;
    for (client, _) in clients.iter_mut() {
        client
            .expect_none(|v| is(v, "event") && v["event"] == "refused", QUIET)
            .await;
    }
    // Transports unchanged: the WebSocket was not reopened, polling did not upgrade.
    for ((client, _), transport) in clients.iter_mut().zip(["websocket", "polling"]) {
        let status = client.status().await;
        assert_eq!(status["transport"], transport, "{status}");
    }
    assert_serving(&mut relay);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_file_changes_nothing() {
    let file = TempFile::new("reload-broken.toml", &tokens_file("\"old\""));
    let mut relay = spawn_relay_process(&["--config", &file.arg()], &[]).await;
    let mut clients = connect_clients(&relay).await;

    // A TOML syntax error.
    file.write("[admin\ntokens = [\"new\"]\n");
    let log = sighup(&relay, REFUSED).await;
    assert!(!log.contains(RELOADED), "{log}");
    relay
        .wait_stderr(
            |l| l.contains(&file.arg()) && l.contains("not valid TOML"),
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|| panic!("no reason logged for the syntax error\n{}", relay.stderr()));
    emit(&relay, "old", "after_syntax").await.expect_status(200);
    emit(&relay, "new", "refused").await.expect_status(401);
    assert_still_connected(&mut clients, "after_syntax").await;
    assert_serving(&mut relay);

    // Valid TOML with an unknown key, next to a token change that must not apply either.
    file.write("[admin]\ntokens = [\"new\"]\ntokenz = [\"typo\"]\n");
    let log = sighup(&relay, REFUSED).await;
    assert!(!log.contains(RELOADED), "{log}");
    relay
        .wait_stderr(|l| l.contains("admin.tokenz: unknown key"), TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("no reason logged for the unknown key\n{}", relay.stderr()));
    emit(&relay, "old", "after_unknown")
        .await
        .expect_status(200);
    emit(&relay, "new", "refused").await.expect_status(401);
    emit(&relay, "typo", "refused").await.expect_status(401);
    assert_still_connected(&mut clients, "after_unknown").await;
    assert_serving(&mut relay);

    // Fixed: the next reload applies.
    file.write(&tokens_file("\"new\""));
    sighup(&relay, RELOADED).await;
    emit(&relay, "new", "fixed").await.expect_status(200);
    emit(&relay, "old", "refused").await.expect_status(401);
    assert_still_connected(&mut clients, "fixed").await;
    for (client, _) in clients.iter_mut() {
        client
            .expect_none(|v| is(v, "event") && v["event"] == "refused", QUIET)
            .await;
    }
}

fn listen_file(socketio: SocketAddr, admin: SocketAddr, token: &str) -> String {
    format!(
        "[server]\nlisten = \"{socketio}\"\n\n[admin]\nlisten = \"{admin}\"\ntokens = [\"{token}\"]\n"
    )
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_changes_need_a_restart() {
    // The listen addresses come from the file here (no --listen flags, which would win).
    let (socketio, admin) = (loopback(free_port()), loopback(free_port()));
    let file = TempFile::new("reload-listen.toml", &listen_file(socketio, admin, "old"));
    let mut relay = RelayProcess::spawn(&["--config", &file.arg()], &[]);
    relay.socketio_addr = Some(socketio);
    relay.admin_addr = Some(admin);
    relay
        .wait_healthy(admin, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", relay.stderr()));
    let mut clients = connect_clients(&relay).await;

    let (socketio2, admin2) = (loopback(free_port()), loopback(free_port()));
    file.write(&listen_file(socketio2, admin2, "new"));
    let log = sighup(&relay, RELOADED).await;
    for key in ["server.listen", "admin.listen"] {
        assert!(
            log.lines()
                .any(|l| l.contains(key) && l.contains("restart")),
            "{key} logged as needing a restart: {log}"
        );
    }

    // The listeners stay where they were; the rest of the file applied.
    for addr in [socketio2, admin2] {
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "something listens on {addr} after the reload"
        );
    }
    relay
        .wait_healthy(admin, TIMEOUT)
        .await
        .expect("the admin listener moved");
    RawPolling::handshake(socketio).await;
    emit(&relay, "new", "moved").await.expect_status(200);
    emit(&relay, "old", "refused").await.expect_status(401);
    assert_still_connected(&mut clients, "moved").await;

    // The running addresses are what the next reload compares against: still logged.
    let log = sighup(&relay, RELOADED).await;
    assert!(
        log.contains("server.listen") && log.contains("admin.listen"),
        "{log}"
    );
    assert_serving(&mut relay);
}

fn origins_file(origins: &str) -> String {
    format!("[server]\nallowed_origins = [{origins}]\n")
}

/// A polling handshake with `Origin: origin`; its status.
async fn handshake_status(relay: &RelayProcess, origin: &str) -> u16 {
    let endpoint = format!("{}/socket.io/", relay.url());
    RawPolling::request(
        &endpoint,
        Method::GET,
        "EIO=4&transport=polling",
        &[("origin", origin)],
        None,
    )
    .await
    .status
}

/// A raw polling session opened from `origin`: its Engine.IO sid.
async fn raw_session_from(relay: &RelayProcess, origin: &str) -> String {
    let endpoint = format!("{}/socket.io/", relay.url());
    let query = "EIO=4&transport=polling";
    let resp =
        RawPolling::request(&endpoint, Method::GET, query, &[("origin", origin)], None).await;
    resp.expect_status(200);
    let open = common::raw::parse_open(&common::raw::split_payload(&resp.body)[0]);
    open["sid"].as_str().unwrap().to_string()
}

/// A request of the raw session `sid` with `Origin: origin`.
async fn session_request(
    relay: &RelayProcess,
    sid: &str,
    method: Method,
    origin: &str,
    body: Option<&str>,
) -> HttpResponse {
    let endpoint = format!("{}/socket.io/", relay.url());
    let query = format!("EIO=4&transport=polling&sid={sid}");
    let headers = [
        ("origin", origin),
        ("content-type", "text/plain;charset=UTF-8"),
    ];
    RawPolling::request(&endpoint, method, &query, &headers, body.map(Into::into)).await
}

/// Removing an origin refuses new handshakes from it; sessions opened from it before
/// keep being served, from that origin only.
#[tokio::test(flavor = "multi_thread")]
async fn allowed_origins_apply_to_new_handshakes() {
    let (a, b, c) = (
        "https://a.example",
        "https://b.example",
        "https://c.example",
    );
    let file = TempFile::new("reload-origins.toml", &origins_file(&format!("\"{a}\"")));
    let mut relay = spawn_relay_process(&["--config", &file.arg()], &[]).await;
    let mut clients = connect_clients(&relay).await;
    // A python-socketio client over long-polling whose requests all carry `Origin: a`.
    let from_a = relay
        .client(ClientKind::Py)
        .transports("polling")
        .header("Origin", a)
        .connect()
        .await;
    let from_a_sid = from_a.sid("/").unwrap();
    clients[1] = (from_a, from_a_sid);
    let raw = raw_session_from(&relay, a).await;
    assert_eq!(handshake_status(&relay, a).await, 200);
    assert_eq!(handshake_status(&relay, b).await, 403);

    file.write(&origins_file(&format!("\"{b}\"")));
    sighup(&relay, RELOADED).await;
    assert_eq!(handshake_status(&relay, a).await, 403);
    assert_eq!(handshake_status(&relay, b).await, 200);

    // The session opened from `a` is still served from `a`, with CORS for it...
    let resp = session_request(&relay, &raw, Method::POST, a, Some("40")).await;
    resp.expect_status(200);
    assert_eq!(resp.header("access-control-allow-origin"), Some(a));
    let resp = session_request(&relay, &raw, Method::GET, a, None).await;
    resp.expect_status(200);
    assert!(resp.body.starts_with("40{\"sid\":"), "{}", resp.body);
    assert_eq!(resp.header("access-control-allow-origin"), Some(a));
    // ...but not from another origin that is not allowed.
    let resp = session_request(&relay, &raw, Method::GET, c, None).await;
    assert_eq!(resp.status, 403, "{}", resp.body);

    // No token configured: the admin API is open. Two emits, a poll cycle apart, so the
    // polling clients make several requests after the reload.
    emit(&relay, "any", "origins").await.expect_status(200);
    assert_still_connected(&mut clients, "origins").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    emit(&relay, "any", "origins_again")
        .await
        .expect_status(200);
    assert_still_connected(&mut clients, "origins_again").await;
    assert_serving(&mut relay);
}
