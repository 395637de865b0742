//! The official Socket.IO clients, driven through `tests/clients/js_client.js` and
//! `tests/clients/py_client.py` (see `tests/clients/README.md` for their line protocol).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::{TIMEOUT, crate_dir};

/// Which client library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// socket.io-client (Node.js).
    Js,
    /// python-socketio `Client` (requests + websocket-client).
    Py,
    /// python-socketio `AsyncClient` (aiohttp).
    PyAsync,
}

impl ClientKind {
    /// Every kind, for tests that run against all of them.
    pub const ALL: [ClientKind; 3] = [ClientKind::Js, ClientKind::Py, ClientKind::PyAsync];

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Js => "js",
            ClientKind::Py => "py",
            ClientKind::PyAsync => "py-async",
        }
    }

    /// Whether this is one of the python-socketio clients.
    pub fn is_python(self) -> bool {
        matches!(self, ClientKind::Py | ClientKind::PyAsync)
    }
}

/// `tests/clients/`.
pub fn clients_dir() -> PathBuf {
    crate_dir().join("tests").join("clients")
}

/// The interpreter of the pinned Python clients.
pub fn python_bin() -> PathBuf {
    clients_dir().join(".venv").join("bin").join("python")
}

fn check_installed(kind: ClientKind) {
    let dir = clients_dir();
    let (present, what) = match kind {
        ClientKind::Js => (
            dir.join("node_modules").join("socket.io-client").is_dir(),
            "tests/clients/node_modules",
        ),
        ClientKind::Py | ClientKind::PyAsync => (python_bin().exists(), "tests/clients/.venv"),
    };
    assert!(
        present,
        "{what} is missing: run tests/run.sh once (it installs the pinned clients)"
    );
}

/// How to start a client; build with the methods, then [`spawn`](Self::spawn).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Which library.
    pub kind: ClientKind,
    /// `http://ip:port` of the server.
    pub url: String,
    /// The Engine.IO path (default `/socket.io/`).
    pub path: String,
    /// `websocket`, `polling`, or `polling,websocket` (upgrade).
    pub transports: String,
    /// Namespaces joined over the one connection (default `/`).
    pub namespaces: Vec<String>,
    /// The `auth` payload of every namespace CONNECT.
    pub auth: Option<Value>,
    /// Whether the library reconnects by itself.
    pub reconnection: bool,
    /// Answers to acknowledgement requests: event name (or `*`) → argument list.
    pub acks: Vec<(String, Value)>,
    /// Extra HTTP headers on the handshake (e.g. `Origin`).
    pub headers: Vec<(String, String)>,
    /// Use the msgpack parser instead of the JSON one.
    pub msgpack: bool,
    /// JS only: socket.io-client 2.x (Engine.IO v3) instead of 4.x.
    pub v2: bool,
    /// Extra environment variables of the client's process (e.g. a CA bundle for TLS).
    pub env: Vec<(String, String)>,
}

impl ClientOptions {
    /// A client of `kind` for the server at `url`, with the library defaults otherwise
    /// (polling then upgrade, namespace `/`, reconnection on).
    pub fn new(kind: ClientKind, url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            kind,
            url: url.into(),
            path: "/socket.io/".into(),
            transports: "polling,websocket".into(),
            namespaces: Vec::new(),
            auth: None,
            reconnection: true,
            acks: Vec::new(),
            headers: Vec::new(),
            msgpack: false,
            v2: false,
            env: Vec::new(),
        }
    }

    /// An environment variable of the client's process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The msgpack parser (socket.io-msgpack-parser; python-socketio `serializer="msgpack"`).
    pub fn msgpack(mut self) -> Self {
        self.msgpack = true;
        self
    }

    /// socket.io-client 2.x, which speaks Engine.IO v3 (JS only).
    pub fn v2(mut self) -> Self {
        assert_eq!(
            self.kind,
            ClientKind::Js,
            "only the JS driver has a 2.x client"
        );
        self.v2 = true;
        self
    }

    /// The Engine.IO path.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_string();
        self
    }

    /// `websocket`, `polling` or `polling,websocket`.
    pub fn transports(mut self, transports: &str) -> Self {
        self.transports = transports.to_string();
        self
    }

    /// Adds a namespace to join.
    pub fn ns(mut self, ns: &str) -> Self {
        self.namespaces.push(ns.to_string());
        self
    }

    /// The `auth` payload.
    pub fn auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Turns the library's own reconnection off.
    pub fn no_reconnect(mut self) -> Self {
        self.reconnection = false;
        self
    }

    /// Answers acknowledgement requests for `event` (`*`: any) with `args` (a JSON array;
    /// `{"$binary": "<base64>"}` elements are sent as binary).
    pub fn ack(mut self, event: &str, args: Value) -> Self {
        assert!(args.is_array(), "ack arguments are a JSON array");
        self.acks.push((event.to_string(), args));
        self
    }

    /// An extra handshake header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The driver's command line (program first).
    pub fn command_line(&self) -> Vec<String> {
        let dir = clients_dir();
        let mut argv: Vec<String> = match self.kind {
            ClientKind::Js => vec![
                "node".into(),
                dir.join("js_client.js").display().to_string(),
            ],
            ClientKind::Py | ClientKind::PyAsync => vec![
                python_bin().display().to_string(),
                "-u".into(),
                dir.join("py_client.py").display().to_string(),
            ],
        };
        if self.kind == ClientKind::PyAsync {
            argv.push("--async".into());
        }
        argv.extend(["--url".into(), self.url.clone()]);
        argv.extend(["--path".into(), self.path.clone()]);
        argv.extend(["--transports".into(), self.transports.clone()]);
        for ns in &self.namespaces {
            argv.extend(["--ns".into(), ns.clone()]);
        }
        if let Some(auth) = &self.auth {
            argv.extend(["--auth".into(), auth.to_string()]);
        }
        argv.push(
            if self.reconnection {
                "--reconnect"
            } else {
                "--no-reconnect"
            }
            .into(),
        );
        for (event, args) in &self.acks {
            argv.extend(["--ack".into(), format!("{event}={args}")]);
        }
        for (name, value) in &self.headers {
            argv.extend(["--header".into(), format!("{name}: {value}")]);
        }
        if self.msgpack {
            argv.extend(["--parser".into(), "msgpack".into()]);
        }
        if self.v2 {
            argv.extend(["--client".into(), "v2".into()]);
        }
        argv
    }

    /// Starts the driver. It connects by itself; wait for its `connect` lines.
    pub async fn spawn(self) -> Client {
        Client::spawn(self).await
    }

    /// Starts the driver and waits until every namespace is connected (panics otherwise;
    /// use [`spawn`](Self::spawn) when one is meant to be refused).
    pub async fn connect(self) -> Client {
        let mut client = self.spawn().await;
        client.wait_all_connected().await;
        client
    }

    /// The namespaces it joins: those named, or `/` when none is.
    pub fn joined_namespaces(&self) -> Vec<String> {
        if self.namespaces.is_empty() {
            vec!["/".to_string()]
        } else {
            self.namespaces.clone()
        }
    }
}

/// A running client driver (killed when dropped).
pub struct Client {
    /// The options it was started with.
    pub options: ClientOptions,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    history: Vec<Value>,
    sids: Arc<Mutex<HashMap<String, String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Client {
    /// Starts the driver for `options`.
    pub async fn spawn(options: ClientOptions) -> Client {
        check_installed(options.kind);
        let argv = options.command_line();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", argv[0]));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();

        let sids = Arc::new(Mutex::new(HashMap::new()));
        let (tx, lines) = mpsc::unbounded_channel();
        let sids_in = sids.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"type": "stdout", "line": line}));
                track_sid(&sids_in, &value);
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_in = stderr.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let mut text = stderr_in.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Client {
            options,
            child,
            stdin,
            lines,
            history: Vec::new(),
            sids,
            stderr,
        }
    }

    /// Which library.
    pub fn kind(&self) -> ClientKind {
        self.options.kind
    }

    /// The next line, or `None` when none comes within `timeout` (or the driver is gone).
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(Some(value)) => {
                self.history.push(value.clone());
                Some(value)
            }
            _ => None,
        }
    }

    /// Skips lines until one matches `pred`; `None` when none does within `timeout`.
    pub async fn try_wait_for(
        &mut self,
        mut pred: impl FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let value = self.next_event(left).await?;
            if pred(&value) {
                return Some(value);
            }
        }
    }

    /// Skips lines until one matches `pred`; panics (with what the driver printed) when
    /// none does within `timeout`.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        pred: impl FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Value> {
        let caller = std::panic::Location::caller();
        async move {
            match self.try_wait_for(pred, timeout).await {
                Some(value) => value,
                None => panic!(
                    "{caller}: {} client: no matching line within {timeout:?}\n{}",
                    self.kind().name(),
                    self.report()
                ),
            }
        }
    }

    /// Waits for the `connect` line of `ns`; returns its sid.
    pub async fn wait_connected(&mut self, ns: &str) -> String {
        let line = self
            .wait_for(|v| is(v, "connect") && v["ns"] == ns, TIMEOUT)
            .await;
        line["sid"]
            .as_str()
            .expect("connect line without sid")
            .to_string()
    }

    /// Waits for the `connect` line of every namespace it joins.
    pub async fn wait_all_connected(&mut self) {
        for ns in self.options.joined_namespaces() {
            self.wait_connected(&ns).await;
        }
    }

    /// Waits for an `event` line of `event` in `ns`; returns its `args`.
    pub async fn wait_event(&mut self, ns: &str, event: &str) -> Value {
        let line = self
            .wait_for(
                |v| is(v, "event") && v["ns"] == ns && v["event"] == event,
                TIMEOUT,
            )
            .await;
        line["args"].clone()
    }

    /// Waits for one `event` line of each of `events` in `ns`, in whatever order they
    /// come; returns each one's `args` by name. The Python asyncio client handles each
    /// message on a task of its own, so events that arrive together may be reported in
    /// either order.
    pub async fn wait_events(
        &mut self,
        ns: &str,
        events: &[&str],
    ) -> std::collections::HashMap<String, Value> {
        let mut seen = std::collections::HashMap::new();
        while seen.len() < events.len() {
            let line = self
                .wait_for(
                    |v| {
                        is(v, "event")
                            && v["ns"] == ns
                            && events.iter().any(|e| v["event"] == *e)
                            && !seen.contains_key(v["event"].as_str().unwrap_or_default())
                    },
                    TIMEOUT,
                )
                .await;
            let name = line["event"].as_str().unwrap_or_default().to_string();
            seen.insert(name, line["args"].clone());
        }
        seen
    }

    /// Waits for the `disconnect` line of `ns`; returns its reason.
    pub async fn wait_disconnect(&mut self, ns: &str) -> String {
        let line = self
            .wait_for(|v| is(v, "disconnect") && v["ns"] == ns, TIMEOUT)
            .await;
        line["reason"].as_str().unwrap_or_default().to_string()
    }

    /// Waits for a `connect_error` line of `ns`; returns its message.
    pub async fn wait_connect_error(&mut self, ns: &str) -> String {
        let line = self
            .wait_for(|v| is(v, "connect_error") && v["ns"] == ns, TIMEOUT)
            .await;
        line["message"].as_str().unwrap_or_default().to_string()
    }

    /// Panics if a line matching `pred` arrives within `within`.
    pub async fn expect_none(&mut self, pred: impl FnMut(&Value) -> bool, within: Duration) {
        if let Some(value) = self.try_wait_for(pred, within).await {
            panic!(
                "{} client: unexpected line {value}\n{}",
                self.kind().name(),
                self.report()
            );
        }
    }

    /// The sid of `ns` from the latest `connect` line printed (even if not read yet);
    /// `None` before it connects and after it disconnects.
    pub fn sid(&self, ns: &str) -> Option<String> {
        self.sids.lock().unwrap().get(ns).cloned()
    }

    /// Sends one command line to the driver.
    pub async fn send(&mut self, cmd: Value) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        let mut line = cmd.to_string();
        line.push('\n');
        let write = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        tokio::time::timeout(TIMEOUT, write)
            .await
            .expect("writing to the client driver timed out")
            .expect("the client driver's stdin is closed");
    }

    /// Emits `event` with `args` in `ns`, asking for no acknowledgement.
    pub async fn emit(&mut self, ns: &str, event: &str, args: Value) {
        self.send(json!({"cmd": "emit", "ns": ns, "event": event, "args": args}))
            .await;
    }

    /// Emits `event` with `args` in `ns` asking for an acknowledgement. The driver prints
    /// `{"type":"ack","id":id,...}` when it is answered, or `{"type":"ack_timeout","id":id}`
    /// after `timeout_ms` when given.
    pub async fn emit_with_ack(
        &mut self,
        ns: &str,
        event: &str,
        args: Value,
        id: u64,
        timeout_ms: Option<u64>,
    ) {
        let mut cmd =
            json!({"cmd": "emit", "ns": ns, "event": event, "args": args, "ack": true, "id": id});
        if let Some(ms) = timeout_ms {
            cmd["timeout_ms"] = json!(ms);
        }
        self.send(cmd).await;
    }

    /// Disconnects every namespace (the client stays alive, reconnection off by the library).
    pub async fn disconnect(&mut self) {
        self.send(json!({"cmd": "disconnect"})).await;
    }

    /// Asks for a `status` line (connected sids per namespace, current transport) and
    /// returns it.
    pub async fn status(&mut self) -> Value {
        self.send(json!({"cmd": "status"})).await;
        self.wait_for(|v| is(v, "status"), TIMEOUT).await
    }

    /// Every line read so far.
    pub fn history(&self) -> &[Value] {
        &self.history
    }

    /// What the driver wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The lines read so far and the driver's stderr, for failure messages.
    pub fn report(&self) -> String {
        let mut out = String::from("--- lines read ---\n");
        for line in &self.history {
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out.push_str("--- stderr ---\n");
        out.push_str(&self.stderr());
        out
    }

    /// Asks the driver to disconnect and exit; kills it if it has not within [`TIMEOUT`].
    pub async fn exit(mut self) -> Option<ExitStatus> {
        if self.stdin.is_some() {
            // The driver may already be gone; then there is nothing to tell it.
            let stdin = self.stdin.as_mut().unwrap();
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                stdin.write_all(b"{\"cmd\":\"exit\"}\n"),
            )
            .await;
            self.stdin = None;
        }
        match tokio::time::timeout(TIMEOUT, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = tokio::time::timeout(TIMEOUT, self.child.wait()).await;
                None
            }
        }
    }
}

/// Starts every client at once, then waits until each has joined its namespaces.
pub async fn connect_all(options: Vec<ClientOptions>) -> Vec<Client> {
    let mut clients = Vec::new();
    for options in options {
        clients.push(options.spawn().await);
    }
    for client in &mut clients {
        client.wait_all_connected().await;
    }
    clients
}

/// Asks every client to exit, one after the other (see [`Client::exit`]).
pub async fn exit_all(clients: Vec<Client>) {
    for client in clients {
        client.exit().await;
    }
}

/// Whether `line` is of type `kind`.
pub fn is(line: &Value, kind: &str) -> bool {
    line["type"] == kind
}

fn track_sid(sids: &Mutex<HashMap<String, String>>, line: &Value) {
    let Some(ns) = line["ns"].as_str() else {
        return;
    };
    let mut sids = sids.lock().unwrap();
    if is(line, "connect") {
        if let Some(sid) = line["sid"].as_str() {
            sids.insert(ns.to_string(), sid.to_string());
        }
    } else if is(line, "disconnect") {
        sids.remove(ns);
    }
}

/// `{"$binary": base64(bytes)}`, how the drivers and the admin API write binary.
pub fn binary(bytes: &[u8]) -> Value {
    use base64::Engine as _;
    json!({"$binary": base64::engine::general_purpose::STANDARD.encode(bytes)})
}
