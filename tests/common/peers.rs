//! The other members of a cluster: Node.js peers and publishers driven through
//! `tests/clients/node_peer.js` and `tests/clients/py_redis_manager.py`, and a private
//! `redis-server` that a test may stop and restart.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::TIMEOUT;
use super::clients::{clients_dir, python_bin};
use super::relay::free_port;

/// A driver script speaking JSON lines: commands on stdin, results on stdout.
pub struct Peer {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    next_id: u64,
    history: Vec<Value>,
}

impl Peer {
    /// `node_peer.js --mode server`: a Socket.IO 4 server with `@socket.io/redis-adapter`
    /// under `prefix`; returns it once it is counted by the other nodes, with its port.
    pub async fn node_server(redis_url: &str, prefix: &str) -> (Peer, u16) {
        let mut peer = Peer::node("node-server", "server", redis_url, prefix);
        let ready = peer.wait_type("ready").await;
        let port = ready["port"].as_u64().expect("ready line without a port") as u16;
        (peer, port)
    }

    /// `node_peer.js --mode emitter`: an `@socket.io/redis-emitter` under `prefix`.
    pub async fn node_emitter(redis_url: &str, prefix: &str) -> Peer {
        let mut peer = Peer::node("node-emitter", "emitter", redis_url, prefix);
        peer.wait_type("ready").await;
        peer
    }

    /// `py_redis_manager.py`: python-socketio's `AsyncRedisManager(write_only=True)`
    /// publishing on `channel`.
    pub async fn python_manager(redis_url: &str, channel: &str) -> Peer {
        let script = clients_dir().join("py_redis_manager.py");
        let mut cmd = Command::new(python_bin());
        cmd.arg("-u")
            .arg(script)
            .args(["--redis", redis_url, "--channel", channel]);
        let mut peer = Peer::spawn("python-manager", cmd);
        peer.wait_type("ready").await;
        peer
    }

    fn node(name: &'static str, mode: &str, redis_url: &str, prefix: &str) -> Peer {
        let script = clients_dir().join("node_peer.js");
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .args(["--mode", mode, "--redis", redis_url, "--key", prefix]);
        Peer::spawn(name, cmd)
    }

    fn spawn(name: &'static str, mut cmd: Command) -> Peer {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"type": "stdout", "line": line}));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Peer {
            name,
            child,
            stdin,
            lines,
            next_id: 1,
            history: Vec::new(),
        }
    }

    async fn wait_type(&mut self, kind: &str) -> Value {
        self.wait(|v| v["type"] == kind).await
    }

    /// Skips lines until one matches `pred`; panics after [`TIMEOUT`].
    pub async fn wait(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(value)) => {
                    self.history.push(value.clone());
                    if value["type"] == "error" && value["id"].is_null() {
                        panic!("{}: {value}", self.name);
                    }
                    if pred(&value) {
                        return value;
                    }
                }
                _ => panic!(
                    "{}: no matching line within {TIMEOUT:?}; read: {:?}",
                    self.name, self.history
                ),
            }
        }
    }

    /// Sends `cmd` with a fresh `id` and waits for its `done` line (panics on `error`).
    pub async fn call(&mut self, mut cmd: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        let mut line = cmd.to_string();
        line.push('\n');
        tokio::time::timeout(TIMEOUT, self.stdin.write_all(line.as_bytes()))
            .await
            .expect("writing to a peer timed out")
            .expect("the peer's stdin is closed");
        let answer = self.wait(|v| v["id"] == id).await;
        assert_eq!(
            answer["type"], "done",
            "{}: {cmd} failed: {answer}",
            self.name
        );
        answer
    }

    /// Asks the script to exit; kills it if it has not within two seconds.
    pub async fn exit(mut self) {
        let _ = self.stdin.write_all(b"{\"cmd\":\"exit\"}\n").await;
        if tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
    }
}

/// A `redis-server` of this test's own on a free loopback port, without persistence;
/// killed when dropped.
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one and waits until it answers.
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and waits until it answers PING.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start redis-server (is it installed?)");
        self.child = Some(child);
        let url = self.url();
        super::eventually("the private redis-server answers", TIMEOUT, || {
            let url = url.clone();
            async move {
                let client = redis::Client::open(url).ok()?;
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .ok()
                    .map(drop)
            }
        })
        .await;
    }

    /// Stops it (SIGKILL: every connection drops at once, as when Redis crashes).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(TIMEOUT, child.wait()).await;
        }
    }
}

/// Subscribers of `channel` (`PUBSUB NUMSUB`) on the Redis at `url`.
pub async fn numsub(url: &str, channel: &str) -> usize {
    let client = redis::Client::open(url).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("cannot connect to Redis");
    let reply: Vec<(String, usize)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .expect("PUBSUB NUMSUB failed");
    reply.first().map_or(0, |(_, n)| *n)
}
