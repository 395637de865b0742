//! Starting the relay: in-process through the library, or as the built binary.

use std::net::{SocketAddr, TcpListener};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use sio_relay::app::Relay;
use sio_relay::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Admin, Client, ClientKind, ClientOptions, TIMEOUT};

/// The built binary.
pub const RELAY_BIN: &str = env!("CARGO_BIN_EXE_sio-relay");

/// The defaults, with both listeners on `127.0.0.1:0` and a short shutdown grace.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.shutdown_grace_ms = 3_000;
    config
}

/// Starts a relay in this process with [`test_config`] changed by `tweak`.
///
/// Panics when it does not start within [`TIMEOUT`].
pub async fn start_relay(tweak: impl FnOnce(&mut Config)) -> TestRelay {
    super::init_tracing();
    let mut config = test_config();
    tweak(&mut config);
    let relay = tokio::time::timeout(TIMEOUT, Relay::start(config.clone()))
        .await
        .expect("relay did not start in time")
        .expect("relay refused to start");
    TestRelay {
        socketio_addr: relay.socketio_addr,
        admin_addr: relay.admin_addr,
        relay: Some(relay),
        config,
    }
}

/// A relay running in this process.
pub struct TestRelay {
    relay: Option<Relay>,
    /// Where the Socket.IO listener is bound.
    pub socketio_addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
    /// The configuration it was started with.
    pub config: Config,
}

impl TestRelay {
    /// The running relay itself (its engine, adapter and metrics).
    pub fn inner(&self) -> &Relay {
        self.relay.as_ref().expect("relay already shut down")
    }

    /// `http://ip:port` of the Socket.IO listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.socketio_addr)
    }

    /// `http://ip:port` of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// An admin client whose default token is the first configured one.
    pub fn admin(&self) -> Admin {
        Admin::new(self.admin_url()).with_token(self.config.admin.tokens.first().cloned())
    }

    /// Options for a client of `kind` pointed at this relay (its URL and path).
    pub fn client(&self, kind: ClientKind) -> ClientOptions {
        ClientOptions::new(kind, self.url()).path(&self.config.server.path)
    }

    /// A client of `kind` over `transports`, connected to `/` with the library's own
    /// reconnection off; panics when it does not connect.
    pub async fn connect(&self, kind: ClientKind, transports: &str) -> Client {
        self.client(kind)
            .transports(transports)
            .no_reconnect()
            .connect()
            .await
    }

    /// Graceful shutdown; panics if it takes longer than the grace period plus 5 s.
    pub async fn shutdown(mut self) {
        let bound = Duration::from_millis(self.config.server.shutdown_grace_ms) + TIMEOUT / 2;
        if let Some(relay) = self.relay.take() {
            tokio::time::timeout(bound, relay.shutdown())
                .await
                .expect("relay shutdown took longer than its grace period");
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot find a free port")
        .port()
}

/// What a process wrote on one stream, line by line, as it arrives.
#[derive(Default)]
struct Captured {
    lines: Mutex<Vec<String>>,
    notify: Notify,
}

impl Captured {
    fn text(&self) -> String {
        let lines = self.lines.lock().unwrap();
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        text
    }

    fn find(&self, pred: &mut impl FnMut(&str) -> bool) -> Option<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| pred(l.as_str()))
            .cloned()
    }

    async fn wait_for(
        &self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if let Some(line) = self.find(&mut pred) {
                return Some(line);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.find(&mut pred);
            }
        }
    }
}

fn capture<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    into: Arc<Captured>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lines.lock().unwrap().push(line);
            into.notify.notify_waiters();
        }
        into.notify.notify_waiters();
    })
}

fn relay_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(RELAY_BIN);
    cmd.args(args);
    // Tests say exactly which SIO_RELAY_* variables the relay sees.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SIO_RELAY_") {
            cmd.env_remove(name);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.kill_on_drop(true);
    cmd
}

/// The `sio-relay` binary running as a child process (killed when dropped).
pub struct RelayProcess {
    child: Child,
    /// The Socket.IO listener, when this harness chose it.
    pub socketio_addr: Option<SocketAddr>,
    /// The admin listener, when this harness chose it.
    pub admin_addr: Option<SocketAddr>,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// Runs the binary with `args` plus `--listen`/`--admin-listen` on free loopback ports
/// (unless `args` already has them) and waits until `GET /healthz` answers 200.
///
/// Panics when the relay exits or is not healthy within [`TIMEOUT`].
pub async fn spawn_relay_process(args: &[&str], env: &[(&str, &str)]) -> RelayProcess {
    let has = |flag: &str| {
        args.iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
    };
    let mut last_error = String::new();
    // A free port can be taken between our probe and the relay's bind: try again then.
    for _ in 0..3 {
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let socketio_addr = (!has("--listen")).then(|| {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            full.extend(["--listen".to_string(), addr.to_string()]);
            addr
        });
        let admin_addr = if has("--admin-listen") {
            None
        } else {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            full.extend(["--admin-listen".to_string(), addr.to_string()]);
            Some(addr)
        };
        let full_refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let mut process = RelayProcess::spawn(&full_refs, env);
        process.socketio_addr = socketio_addr;
        process.admin_addr = admin_addr;
        let Some(admin) = admin_addr else {
            // The caller chose the admin address; it waits for it itself.
            return process;
        };
        match process.wait_healthy(admin, TIMEOUT).await {
            Ok(()) => return process,
            Err(e) => {
                let stderr = process.stderr();
                let retry = stderr.to_ascii_lowercase().contains("in use");
                last_error = format!("{e}\n--- relay stderr ---\n{stderr}");
                process.kill().await;
                if !retry {
                    break;
                }
            }
        }
    }
    panic!("relay process did not become healthy: {last_error}");
}

impl RelayProcess {
    /// Starts the binary with exactly `args` and `env` (and no inherited `SIO_RELAY_*`).
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> RelayProcess {
        let mut cmd = relay_command(args, env);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start the sio-relay binary");
        let stdout = Arc::new(Captured::default());
        let stderr = Arc::new(Captured::default());
        let readers = vec![
            capture(child.stdout.take().unwrap(), stdout.clone()),
            capture(child.stderr.take().unwrap(), stderr.clone()),
        ];
        RelayProcess {
            child,
            socketio_addr: None,
            admin_addr: None,
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    /// Polls `GET http://admin/healthz` until it answers 200; fails early if the process exits.
    pub async fn wait_healthy(
        &mut self,
        admin: SocketAddr,
        timeout: Duration,
    ) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let url = format!("http://{admin}/healthz");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Err(format!("relay exited with {status} before it was healthy"));
            }
            if let Ok(resp) = http.get(&url).send().await
                && resp.status() == 200
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("{url} did not answer 200 within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://ip:port` of the Socket.IO listener this harness chose.
    pub fn url(&self) -> String {
        format!(
            "http://{}",
            self.socketio_addr.expect("no Socket.IO address known")
        )
    }

    /// `http://ip:port` of the admin listener this harness chose.
    pub fn admin_url(&self) -> String {
        format!(
            "http://{}",
            self.admin_addr.expect("no admin address known")
        )
    }

    /// An admin client for this process, with `token` as its default token.
    pub fn admin(&self, token: Option<&str>) -> Admin {
        Admin::new(self.admin_url()).with_token(token.map(str::to_string))
    }

    /// Options for a client of `kind` pointed at this process (default path).
    pub fn client(&self, kind: ClientKind) -> ClientOptions {
        ClientOptions::new(kind, self.url())
    }

    /// A client of `kind` over `transports`, connected to `/` with the library's own
    /// reconnection off; panics when it does not connect.
    pub async fn connect(&self, kind: ClientKind, transports: &str) -> Client {
        self.client(kind)
            .transports(transports)
            .no_reconnect()
            .connect()
            .await
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: Signal) {
        let pid = self.pid().expect("the relay process has already exited");
        nix::sys::signal::kill(Pid::from_raw(pid as i32), sig).expect("cannot signal the relay");
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// Sends SIGHUP.
    pub fn sighup(&self) {
        self.signal(Signal::SIGHUP);
    }

    /// The exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits for the process to exit; panics (after killing it) if it takes over `timeout`.
    /// Once this returns, [`stdout`](Self::stdout) and [`stderr`](Self::stderr) are complete.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("cannot wait for the relay process"),
            Err(_) => {
                self.kill().await;
                panic!(
                    "relay process did not exit within {timeout:?}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
        };
        self.status = Some(status);
        self.drain_readers().await;
        status
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        if let Ok(Ok(status)) = tokio::time::timeout(TIMEOUT, self.child.wait()).await {
            self.status = Some(status);
        }
        self.drain_readers().await;
    }

    async fn drain_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }

    /// Everything written on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// Everything written on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits until a stderr line matches `pred`; returns it, or `None` after `timeout`.
    pub async fn wait_stderr(
        &self,
        pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        self.stderr.wait_for(pred, timeout).await
    }
}

/// What a short-lived run of the binary produced.
#[derive(Debug)]
pub struct CliOutput {
    /// How it exited.
    pub status: ExitStatus,
    /// Its exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs the binary to completion (`--check-config`, `--version`, `emit`, a bad config...)
/// with `args`, `env` and no stdin; panics if it runs longer than [`TIMEOUT`].
pub async fn run_relay_cli(args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut cmd = relay_command(args, env);
    cmd.stdin(Stdio::null());
    let output = tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`sio-relay {}` did not finish in time", args.join(" ")))
        .expect("cannot run the sio-relay binary");
    CliOutput {
        status: output.status,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A file in the temp directory (a config file for `--config`), removed when dropped.
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    /// Creates a file named `sio-relay-<pid>-<n>-<name>` holding `text`.
    pub fn new(name: &str, text: &str) -> TempFile {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sio-relay-{}-{n}-{name}", std::process::id()));
        let file = TempFile(path);
        file.write(text);
        file
    }

    /// Replaces the contents (e.g. before a SIGHUP reload).
    pub fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("cannot write the temp file");
    }

    /// The path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// The path as text, for a command line.
    pub fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
