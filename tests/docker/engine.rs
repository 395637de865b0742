//! A Docker engine for the image tests, and the images they run.
//!
//! - [`engine`]: a Docker CLI that builds with BuildKit, and a running daemon: Debian's
//!   `docker.io` is installed when missing (as root), and `dockerd` started when not
//!   running (overlay2 storage, else vfs). It is left running for later runs.
//! - [`Docker::bases`]: stand-ins for the Dockerfile's and the compose file's public base
//!   images, made from Debian's packages by `tests/docker/local-bases.sh` (no image registry
//!   is needed), once per machine.
//! - [`Docker::image`]: the image, built from the Dockerfile with its `prebuilt` binary
//!   stage fed the release binary of [`release_build`] (compiling inside Docker would take
//!   a Rust base image and another fat-LTO build).
//!
//! Machine-wide steps (install, daemon, bases) take turns through a lock file, as test
//! processes and other checkouts may run them at once; images and containers are named per
//! checkout and per process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::crate_dir;
use crate::common::release::{copy_context, release_build};

/// Serialises the machine-wide steps between processes.
const MACHINE_LOCK: &str = "/tmp/sio-relay-tests-docker.lock";
/// Where a `dockerd` started here logs; it outlives the test.
const DOCKERD_LOG: &str = "/tmp/sio-relay-tests-dockerd.log";
/// How long a starting `dockerd` may take to answer.
const DOCKERD_START: Duration = Duration::from_secs(60);

/// A Docker CLI talking to a running daemon.
#[derive(Clone)]
pub struct Docker {
    cli: PathBuf,
    /// `docker compose` (v2) or `docker-compose` (v1), as an argv prefix.
    compose: Vec<String>,
}

/// The local stand-ins for public base images.
pub struct Bases {
    /// For `gcr.io/distroless/cc-debian12:nonroot` (the Dockerfile's `RUNTIME_IMAGE`).
    pub runtime: String,
    /// For `python:3.12-slim` (the compose example's backend).
    pub python: String,
}

/// The image built from this checkout.
pub struct Image {
    pub tag: String,
    /// What `sio-relay --version` shows in it.
    pub revision: String,
}

/// The stdout, stderr and exit code of `output`, for failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"))
}

/// Holds [`MACHINE_LOCK`] until dropped.
fn machine_lock() -> File {
    let file = File::create(MACHINE_LOCK).unwrap();
    file.lock().unwrap();
    file
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
}

/// FNV-1a: a stable short hash for image tags.
pub fn short_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", hash >> 16)
}

/// A CLI that can build with BuildKit: one with the buildx plugin, or a classic CLI older
/// than 23 (BuildKit built in, with `DOCKER_BUILDKIT=1`). The `docker` on PATH may be a
/// bare client of another origin; `/usr/bin/docker` is Debian's.
fn pick_cli() -> Option<PathBuf> {
    ["docker", "/usr/bin/docker"].into_iter().find_map(|cli| {
        let version = Command::new(cli).arg("--version").output().ok()?;
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        let major: u32 = version
            .strip_prefix("Docker version ")?
            .split('.')
            .next()?
            .parse()
            .ok()?;
        let buildx = Command::new(cli)
            .args(["buildx", "version"])
            .output()
            .is_ok_and(|output| output.status.success());
        (buildx || major < 23).then(|| PathBuf::from(cli))
    })
}

fn daemon_answers(cli: &Path) -> bool {
    Command::new(cli)
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|output| output.status.success())
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// `apt-get install`s `packages`, updating the package lists first if that fails.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(["-o", "DPkg::Lock::Timeout=300"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().status.success() {
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-q"]));
    let output = install();
    match output.status.success() {
        true => Ok(()),
        false => Err(format!("apt-get install {packages:?}: {}", text(&output))),
    }
}

/// A Docker engine to use, started (and installed) if need be; `Err` says why none can be
/// had on this machine.
pub fn engine() -> Result<Docker, String> {
    let _lock = machine_lock();
    // What the image and compose tests use besides the engine.
    let mut missing: Vec<&str> = Vec::new();
    let engine_missing = match pick_cli() {
        Some(cli) => !daemon_answers(&cli) && !installed("dockerd"),
        None => true,
    };
    if engine_missing {
        missing.push("docker.io");
    }
    let v2_compose = pick_cli().is_some_and(|cli| {
        Command::new(cli)
            .args(["compose", "version"])
            .output()
            .is_ok_and(|output| output.status.success())
    });
    if !v2_compose && !installed("docker-compose") {
        missing.push("docker-compose");
    }
    if !installed("mmdebstrap") {
        missing.push("mmdebstrap");
    }
    if !missing.is_empty() {
        // Without the tools, the tests that need them fail, saying which; without an
        // engine, every test here is skipped.
        let installed = match is_root() {
            true => apt_install(&missing),
            false => Err(format!("not root, so {missing:?} cannot be installed")),
        };
        if let Err(why) = installed
            && missing.contains(&"docker.io")
        {
            return Err(why);
        }
    }
    let cli = pick_cli().ok_or("no Docker CLI able to build with BuildKit")?;
    if !daemon_answers(&cli) {
        start_dockerd(&cli)?;
    }
    let compose = if v2_compose {
        vec![cli.to_string_lossy().into_owned(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    };
    Ok(Docker { cli, compose })
}

/// Starts `dockerd` in its own process group (it outlives this test), with overlay2
/// storage, else vfs (slower, works on any file system).
fn start_dockerd(cli: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    if !is_root() {
        return Err("the Docker daemon is not running, and only root can start it".into());
    }
    for driver in ["overlay2", "vfs"] {
        let log = File::create(DOCKERD_LOG).map_err(|error| error.to_string())?;
        let mut child = Command::new("dockerd")
            .args(["--storage-driver", driver])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|error| format!("cannot start dockerd: {error}"))?;
        let deadline = Instant::now() + DOCKERD_START;
        while Instant::now() < deadline {
            if daemon_answers(cli) {
                eprintln!("started dockerd ({driver} storage), logging to {DOCKERD_LOG}");
                return Ok(());
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = std::fs::read_to_string(DOCKERD_LOG).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(15).collect();
    Err(format!(
        "dockerd did not start with overlay2 or vfs storage; the end of its log:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

impl Docker {
    /// A `docker` command (with BuildKit on, for CLIs where it is not the default).
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.cli);
        command.env("DOCKER_BUILDKIT", "1");
        command
    }

    /// Runs `docker ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        run(self.command().args(args))
    }

    /// Runs `docker ARGS`, panics unless it succeeds; its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A `docker compose` / `docker-compose` command.
    pub fn compose(&self) -> Command {
        let mut command = Command::new(&self.compose[0]);
        command.args(&self.compose[1..]).stdin(Stdio::null());
        command
    }

    /// The local base images, made if missing.
    pub fn bases(&self) -> Bases {
        let script = crate_dir().join("tests/docker/local-bases.sh");
        let hash = short_hash(&std::fs::read(&script).unwrap());
        let bases = Bases {
            runtime: format!("sio-relay-test/cc-debian12:{hash}"),
            python: format!("sio-relay-test/python3:{hash}"),
        };
        let _lock = machine_lock();
        let output = run(Command::new(&script)
            .args([&bases.runtime, &bases.python])
            .env("DOCKER", &self.cli));
        assert!(
            output.status.success(),
            "tests/docker/local-bases.sh: {}",
            text(&output)
        );
        bases
    }

    /// Builds the image of this checkout (one tag per checkout; a build whose inputs did
    /// not change is BuildKit's cache, seconds).
    pub fn image(&self, bases: &Bases) -> Image {
        let release = release_build();
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let lock = File::create(tmp.join("docker-image.lock")).unwrap();
        lock.lock().unwrap();

        let context = tmp.join("docker-context");
        let _ = std::fs::remove_dir_all(&context);
        std::fs::create_dir_all(context.join("dist")).unwrap();
        copy_context(&context);
        std::fs::copy(&release.binary, context.join("dist/sio-relay")).unwrap();

        let tag = format!(
            "sio-relay-test/relay:{}",
            short_hash(crate_dir().as_os_str().as_encoded_bytes())
        );
        let before = self.run(&["image", "inspect", "--format", "{{.Id}}", &tag]);
        let started = Instant::now();
        let revision_arg = format!("GIT_REVISION={}", release.revision);
        let runtime_arg = format!("RUNTIME_IMAGE={}", bases.runtime);
        let build = [
            "build",
            "--build-arg",
            "BINARY=prebuilt",
            "--build-arg",
            &runtime_arg,
            "--build-arg",
            &revision_arg,
            "--tag",
            &tag,
        ];
        let output = run(self.command().args(build).arg(&context));
        assert!(output.status.success(), "docker build: {}", text(&output));
        eprintln!("docker build: {:?}", started.elapsed());

        // The previous build of this checkout, unless it is the same image or in use.
        let id = self.ok(&["image", "inspect", "--format", "{{.Id}}", &tag]);
        let old = String::from_utf8_lossy(&before.stdout).trim().to_owned();
        if before.status.success() && old != id {
            let _ = self.run(&["image", "rm", &old]);
        }
        Image {
            tag,
            revision: release.revision,
        }
    }

    /// `docker run -d` with `options`, removed (with `docker rm -f`) when dropped.
    pub fn start(&self, options: &[&str], image: &str, args: &[&str]) -> Container {
        let name = format!(
            "sio-relay-test-{}-{}",
            std::process::id(),
            NEXT_NAME.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut argv = vec!["run", "-d", "--name", &name];
        argv.extend_from_slice(options);
        argv.push(image);
        argv.extend_from_slice(args);
        self.ok(&argv);
        Container {
            docker: self.clone(),
            name,
        }
    }
}

static NEXT_NAME: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A container, removed when dropped; its logs are printed if the test is failing.
pub struct Container {
    docker: Docker,
    pub name: String,
}

impl Container {
    /// `docker inspect --format FORMAT` of this container.
    pub fn inspect(&self, format: &str) -> String {
        self.docker.ok(&["inspect", "--format", format, &self.name])
    }

    /// The last lines it logged.
    pub fn logs(&self) -> String {
        text(&self.docker.run(&["logs", "--tail", "40", &self.name]))
    }

    /// Waits until Docker reports the health `status`; panics after `within`.
    pub fn wait_health(&self, status: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let now = self.inspect("{{.State.Health.Status}}");
            if now == status {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "health still {now:?}, not {status:?}, after {within:?}: {}\n{}",
                self.inspect("{{json .State.Health.Log}}"),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- container {} logs\n{}", self.name, self.logs());
        }
        let _ = self.docker.run(&["rm", "-f", &self.name]);
    }
}

/// Runs `command` to completion, killing it after `within`.
pub fn run_within(command: &mut Command, within: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    // Read both pipes while waiting, so that a chatty command cannot block on a full pipe.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let (stdout, stderr) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{command:?} still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
