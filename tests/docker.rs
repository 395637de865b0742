//! The container image and the compose example, run for real with Docker.
//!
//! The image is built from the shipped Dockerfile with two build arguments: `RUNTIME_IMAGE`
//! names a stand-in for the distroless base made from the same Debian packages (no image
//! registry is needed), and `BINARY=prebuilt` packages the release binary that
//! `common::release` builds with the Dockerfile's own cargo command, instead of compiling it
//! again inside Docker. Everything after that is what users run:
//!
//! - `docker run` with a mounted config, on the host network: an official client connects,
//!   a `curl` push reaches it, the image's user is 65532, `HEALTHCHECK` turns healthy, then
//!   unhealthy while the relay is frozen (`SIGSTOP`: the process lives, its admin listener
//!   accepts connections but answers nothing) and healthy again once it runs; `docker stop`
//!   ends it with exit code 0 within the grace period, its clients reconnecting by themselves;
//! - `docker run IMAGE --check-config` on a broken mounted file exits non-zero, naming the key;
//! - `deploy/docker-compose.yml`: the relay and the example backend, with the backend
//!   gated on the relay's health, put a client in a room and push to it.
//!
//! Where no Docker engine can be had (not root and none running, or it cannot start), each
//! test says so on stderr and passes.

mod common;
#[path = "docker/engine.rs"]
mod engine;

use std::process::Command;
use std::time::{Duration, Instant};

use common::relay::free_port;
use common::{ClientKind, ClientOptions, TIMEOUT, TempFile};
use engine::{Docker, text};
use serde_json::{Value, json};

/// The engine, or `None` after saying on stderr why the test checks nothing.
fn engine_or_skip() -> Option<Docker> {
    match engine::engine() {
        Ok(docker) => Some(docker),
        Err(why) => {
            let thread = std::thread::current();
            eprintln!(
                "SKIPPED {}: no Docker engine: {why}",
                thread.name().unwrap_or("test")
            );
            None
        }
    }
}

/// The image's `USER`.
const IMAGE_USER: &str = "65532:65532";

/// A relay configuration on two fresh loopback ports.
fn config_on_free_ports() -> (TempFile, String, String) {
    let socketio = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let file = TempFile::new(
        "docker.toml",
        &format!("[server]\nlisten = \"{socketio}\"\n\n[admin]\nlisten = \"{admin}\"\n"),
    );
    (file, socketio, admin)
}

fn mount(file: &TempFile) -> String {
    format!("{}:/etc/sio-relay/sio-relay.toml:ro", file.arg())
}

/// Polls `url` until it answers 200; how long that took.
async fn wait_ok(url: &str, within: Duration, container: &engine::Container) -> Duration {
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        let answer = http.get(url).timeout(Duration::from_secs(2)).send().await;
        if answer.is_ok_and(|answer| answer.status() == 200) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{url} not ready within {within:?}\n{}",
            container.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_serves_reports_health_and_stops_gracefully() {
    let Some(docker) = engine_or_skip() else {
        return;
    };
    let bases = docker.bases();
    let image = docker.image(&bases);
    eprintln!(
        "image size: {} bytes",
        docker.ok(&["image", "inspect", "--format", "{{.Size}}", &image.tag])
    );

    let version = docker.run(&["run", "--rm", &image.tag, "--version"]);
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(&image.revision),
        "--version does not show the revision {}: {}",
        image.revision,
        text(&version)
    );

    // As docs/deploy.md runs it, on the host network so that the test reaches both
    // listeners on loopback. The health check's command and timeout are the image's; only
    // its schedule is quickened (the image checks every 10 s, 3 failures in a row).
    let (config, socketio, admin) = config_on_free_ports();
    let mount = mount(&config);
    let options = [
        "--network",
        "host",
        "--stop-timeout",
        "15",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "-v",
        &mount,
    ];
    let started = Instant::now();
    let container = docker.start(&options, &image.tag, &[]);
    let readyz = format!("http://{admin}/readyz");
    wait_ok(&readyz, Duration::from_secs(30), &container).await;
    eprintln!("docker run to /readyz 200: {:?}", started.elapsed());

    // The image's user, not root.
    let pid = container.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let (uid, gid) = IMAGE_USER.split_once(':').unwrap();
    for (field, id) in [("Uid:", uid), ("Gid:", gid)] {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        assert!(
            line.split_whitespace().skip(1).all(|x| x == id),
            "the relay does not run as {IMAGE_USER}: {line}"
        );
    }

    let mut client = ClientOptions::new(ClientKind::Js, format!("http://{socketio}"))
        .transports("websocket")
        .connect()
        .await;
    let sid = client.sid("/").unwrap();
    let body = json!({"to": sid, "event": "task_done", "data": {"id": 42}}).to_string();
    let push = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-d", &body])
        .arg(format!("http://{admin}/v1/emit"))
        .output()
        .expect("cannot run curl");
    assert!(push.status.success(), "curl: {}", text(&push));
    let answer: Value = serde_json::from_slice(&push.stdout).unwrap();
    assert_eq!(answer, json!({"recipients": 1}));
    let args = client.wait_event("/", "task_done").await;
    assert_eq!(args, json!([{"id": 42}]));

    let healthy = container.wait_health("healthy", Duration::from_secs(30));
    eprintln!("docker run to healthy (checks every 1 s): {:?}", healthy);

    // Frozen: alive, its admin listener accepting connections (the kernel does that) but
    // answering nothing, so each check gives up after its 2 s.
    docker.ok(&["kill", "--signal", "STOP", &container.name]);
    container.wait_health("unhealthy", Duration::from_secs(30));
    assert_eq!(container.inspect("{{.State.Status}}"), "running");
    let log = container.inspect("{{json .State.Health.Log}}");
    assert!(log.contains("no answer from the admin API"), "{log}");
    docker.ok(&["kill", "--signal", "CONT", &container.name]);
    container.wait_health("healthy", Duration::from_secs(30));

    // docker stop: SIGTERM, then up to --stop-timeout (15 s) before SIGKILL. The relay
    // takes at most server.shutdown_grace_ms (10 s).
    let stopping = Instant::now();
    docker.ok(&["stop", &container.name]);
    let stopped = stopping.elapsed();
    assert_eq!(container.inspect("{{.State.ExitCode}}"), "0");
    assert!(
        stopped < Duration::from_secs(10),
        "docker stop took {stopped:?}"
    );
    eprintln!("docker stop: {stopped:?}");
    // A lost connection ("transport close"), not a final "io server disconnect": the
    // client goes on to reconnect by itself.
    assert_eq!(client.wait_disconnect("/").await, "transport close");
    client
        .wait_for(|line| line["type"] == "reconnecting", TIMEOUT)
        .await;
}

#[test]
fn image_check_config_refuses_a_broken_mounted_file() {
    let Some(docker) = engine_or_skip() else {
        return;
    };
    let bases = docker.bases();
    let image = docker.image(&bases);

    let (good, _, _) = config_on_free_ports();
    let output = docker.run(&[
        "run",
        "--rm",
        "-v",
        &mount(&good),
        &image.tag,
        "--check-config",
    ]);
    assert!(output.status.success(), "a valid file: {}", text(&output));

    let broken = TempFile::new(
        "broken.toml",
        "[server]\nlisten = \"127.0.0.1:3000\"\nmax_payload = 10\n",
    );
    let output = docker.run(&[
        "run",
        "--rm",
        "-v",
        &mount(&broken),
        &image.tag,
        "--check-config",
    ]);
    assert!(!output.status.success(), "a broken file: {}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/etc/sio-relay/sio-relay.toml:3: server.max_payload: unknown key"),
        "{}",
        text(&output)
    );
}

/// `deploy/docker-compose.yml` with the test's images (an override file: the relay image
/// built here, the python base made here), under a project of its own; `down` when dropped.
struct Compose {
    docker: Docker,
    project: String,
    overrides: TempFile,
    port: u16,
    token: String,
}

impl Compose {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.docker.compose();
        command
            .current_dir(common::crate_dir().join("deploy"))
            .args(["-f", "docker-compose.yml", "-f"])
            .arg(self.overrides.path())
            .args(["-p", &self.project])
            .args(args)
            .env("RELAY_PORT", self.port.to_string())
            .env("RELAY_ADMIN_TOKEN", &self.token);
        command
    }

    fn ok(&self, args: &[&str], within: Duration) -> String {
        let output = engine::run_within(&mut self.command(args), within);
        assert!(
            output.status.success(),
            "compose {args:?}: {}\n{}",
            text(&output),
            self.logs()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn logs(&self) -> String {
        let output = engine::run_within(&mut self.command(&["logs", "--no-color"]), TIMEOUT);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- compose logs\n{}", self.logs());
        }
        let down = ["down", "--volumes", "--timeout", "1"];
        let _ = engine::run_within(&mut self.command(&down), Duration::from_secs(60));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_example_backend_pushes_through_the_relay() {
    let Some(docker) = engine_or_skip() else {
        return;
    };
    let bases = docker.bases();
    let image = docker.image(&bases);
    let overrides = TempFile::new(
        "compose-override.yml",
        &format!(
            "services:\n  relay:\n    image: {}\n  backend:\n    image: {}\n",
            image.tag, bases.python
        ),
    );
    let compose = Compose {
        docker: docker.clone(),
        project: format!("sio-relay-test-{}", std::process::id()),
        overrides,
        port: free_port(),
        token: format!("compose-test-token-{}", std::process::id()),
    };
    // The example's client service installs python-socketio from PyPI at every start; an
    // official client run by the test stands in for it, through the published port.
    // `up` starts the backend once the relay's HEALTHCHECK reports healthy.
    let started = Instant::now();
    compose.ok(
        &["up", "-d", "--no-build", "relay", "backend"],
        Duration::from_secs(120),
    );
    eprintln!(
        "compose up (relay healthy, backend started): {:?}",
        started.elapsed()
    );

    let url = format!("http://127.0.0.1:{}", compose.port);
    let mut client = ClientOptions::new(ClientKind::Js, url).connect().await;
    let sid = client.sid("/").unwrap();
    // What the example client does once connected: register its sid with the backend,
    // which puts it in the room "user:alice" through the relay's admin API.
    let register = format!(
        "import json, urllib.request as r; print(r.urlopen(r.Request('http://127.0.0.1:8000/register', \
         data=json.dumps({{'user': 'alice', 'sid': '{sid}'}}).encode(), \
         headers={{'Content-Type': 'application/json'}}), timeout=10).read().decode())"
    );
    let answer = compose.ok(
        &["exec", "-T", "backend", "python", "-c", &register],
        Duration::from_secs(60),
    );
    let answer: Value = serde_json::from_str(answer.trim()).unwrap();
    assert_eq!(answer, json!({"sockets": 1}));

    // The backend pushes to the room every 5 s.
    let event = client
        .wait_for(
            |line| line["type"] == "event" && line["event"] == "notification",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(event["args"][0]["text"], "hello alice", "{event}");
    let logs = compose.logs();
    assert!(
        logs.contains("push to user:alice: {'recipients': 1}"),
        "{logs}"
    );
}
