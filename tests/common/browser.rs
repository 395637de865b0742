//! socket.io-client's browser bundle in headless Chromium, driven by
//! `tests/clients/browser_client.js` (playwright-core and Debian's `/usr/bin/chromium`):
//! the lines its page prints.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::clients::clients_dir;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium starts slowly on a loaded machine: the bound for its first line.
pub const BROWSER_START: Duration = Duration::from_secs(60);

/// True when Chromium is installed; otherwise says on stderr that the test is skipped.
pub fn available() -> bool {
    let there = Path::new(CHROMIUM).exists();
    if !there {
        let thread = std::thread::current();
        eprintln!(
            "SKIPPED {}: {CHROMIUM} is missing (tests/run.sh installs it as root)",
            thread.name().unwrap_or("test")
        );
    }
    there
}

/// A page with one socket.io-client; the driver's options as JSON (see the script).
pub struct Browser {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    profile: PathBuf,
    /// Every line read so far, in order.
    pub seen: Vec<Value>,
}

impl Browser {
    /// Starts Chromium on a page that connects to `url`; `options` are added to the
    /// driver's (`parser`, `transports`, `ack`, `reconnection_delay_ms`).
    pub async fn open(url: &str, options: Value) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "sio-relay-browser-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut all = json!({"url": url, "profile": profile});
        if let Value::Object(extra) = options {
            all.as_object_mut().unwrap().extend(extra);
        }
        let mut child = Command::new("node")
            .arg(clients_dir().join("browser_client.js"))
            .arg(all.to_string())
            .current_dir(clients_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start node");
        let stdout = child.stdout.take().unwrap();
        Browser {
            child,
            lines: BufReader::new(stdout).lines(),
            profile,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one of type `kind` (for `event` lines, named `event` when given);
    /// panics after `timeout` or when the page failed.
    pub async fn next(&mut self, kind: &str, event: Option<&str>, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {kind} line in time; saw {:?}", self.seen))
                .expect("cannot read the browser driver")
                .unwrap_or_else(|| panic!("the browser driver ended; saw {:?}", self.seen));
            let value: Value = serde_json::from_str(&line).unwrap_or(json!({"line": line}));
            assert_ne!(value["type"], "failed", "{value}");
            self.seen.push(value.clone());
            if value["type"] == kind && event.is_none_or(|e| value["event"] == e) {
                return value;
            }
        }
    }

    /// The arguments of every event `name` seen so far, in order.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|v| v["type"] == "event" && v["event"] == name)
            .map(|v| v["args"].clone())
            .collect()
    }

    /// Closes the page and Chromium, and removes the profile.
    pub async fn close(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        let _ = self.child.kill().await;
        // Chromium may still be writing its profile as it exits.
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
