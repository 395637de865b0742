//! Service-manager notifications: the systemd `sd_notify` datagram protocol.
//!
//! With `Type=notify` systemd starts the daemon with `NOTIFY_SOCKET` set to a Unix datagram
//! socket (a path, or an abstract name written `@name`) and waits for `READY=1` before it
//! considers the service started, so units ordered after it start only once both listeners
//! accept connections. The daemon sends:
//!
//! - [`Notifier::ready`] once both listeners are bound, and again when a reload is done;
//! - [`Notifier::reloading`] when a reload (SIGHUP) begins, with `MONOTONIC_USEC` as
//!   `Type=notify-reload` requires;
//! - [`Notifier::stopping`] when a graceful shutdown begins.
//!
//! Each message is one datagram of `KEY=VALUE` lines. Outside systemd (no `NOTIFY_SOCKET`)
//! the notifier is disabled and every call is a no-op.
//!
//! The socket address is passed in rather than read here, so that environment handling stays
//! in `main.rs` and tests never touch process state:
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use sio_relay::notify::Notifier;
//!
//! let notifier = Notifier::new(std::env::var_os("NOTIFY_SOCKET").as_deref())?;
//! // ... bind both listeners ...
//! notifier.ready()?;
//! # Ok(())
//! # }
//! ```
//!
//! Sending never blocks: the socket is non-blocking, and a message the service manager has
//! no room for fails with `WouldBlock` instead of stalling the runtime. Errors are for the
//! caller to log; the daemon keeps running without notifications.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends state changes to the service manager, or does nothing when there is none.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
}

/// An unbound datagram socket and where to send.
#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// A notifier for the `NOTIFY_SOCKET` value `socket`: an absolute path, or `@name` for
    /// an abstract socket. `None` or an empty value gives a disabled notifier.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a value that is neither (systemd's `vsock:` addresses are not
    /// supported), or the error of creating the socket.
    pub fn new(socket: Option<&OsStr>) -> io::Result<Notifier> {
        let Some(value) = socket.filter(|value| !value.is_empty()) else {
            return Ok(Notifier::disabled());
        };
        let addr = parse_addr(value)?;
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            target: Some(Target { socket, addr }),
        })
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`: startup (or a reload) is complete; both listeners accept connections.
    ///
    /// # Errors
    ///
    /// The error of sending the datagram.
    pub fn ready(&self) -> io::Result<()> {
        self.send("READY=1")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`: a configuration reload has begun. Send
    /// [`ready`](Self::ready) when it is over, whether it succeeded or not.
    ///
    /// # Errors
    ///
    /// The error of sending the datagram.
    pub fn reloading(&self) -> io::Result<()> {
        self.send(&reloading_message(monotonic_usec()))
    }

    /// `STOPPING=1`: a graceful shutdown has begun.
    ///
    /// # Errors
    ///
    /// The error of sending the datagram.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    /// `STATUS=...`: a one-line status shown by `systemctl status`. Line breaks in `text`
    /// are replaced by spaces, since each line of a message is one assignment.
    ///
    /// # Errors
    ///
    /// The error of sending the datagram.
    pub fn status(&self, text: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", text.replace(['\n', '\r'], " ")))
    }

    /// Sends `message` (newline-separated `KEY=VALUE` lines) as one datagram.
    ///
    /// # Errors
    ///
    /// The error of sending the datagram, or `WriteZero` if it was cut short.
    pub fn send(&self, message: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let sent = target
            .socket
            .send_to_addr(message.as_bytes(), &target.addr)?;
        if sent != message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification datagram truncated",
            ));
        }
        Ok(())
    }
}

/// The socket address named by a `NOTIFY_SOCKET` value.
fn parse_addr(value: &OsStr) -> io::Result<SocketAddr> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(value),
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "NOTIFY_SOCKET must be an absolute path or an @abstract name, not {:?}",
                value
            ),
        )),
    }
}

/// The `RELOADING=1` message for a reload that began at `usec` on `CLOCK_MONOTONIC`.
fn reloading_message(usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// Microseconds on `CLOCK_MONOTONIC`, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A datagram socket bound at a fresh path, as systemd's would be.
    fn listener() -> (UnixDatagram, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "sio-relay-notify-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (socket, path)
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn disabled_without_socket() {
        for value in [None, Some(OsStr::new(""))] {
            let notifier = Notifier::new(value).unwrap();
            assert!(!notifier.is_enabled());
            notifier.ready().unwrap();
            notifier.reloading().unwrap();
            notifier.stopping().unwrap();
        }
    }

    #[test]
    fn relative_or_other_addresses_are_refused() {
        for value in ["notify.sock", "vsock:2:1234"] {
            let err = Notifier::new(Some(OsStr::new(value))).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{value}");
        }
    }

    #[test]
    fn sends_each_state_to_a_path_socket() {
        let (socket, path) = listener();
        let notifier = Notifier::new(Some(path.as_os_str())).unwrap();
        assert!(notifier.is_enabled());

        notifier.ready().unwrap();
        assert_eq!(recv(&socket), "READY=1");

        let before = monotonic_usec();
        notifier.reloading().unwrap();
        let message = recv(&socket);
        let after = monotonic_usec();
        let (first, second) = message.split_once('\n').unwrap();
        assert_eq!(first, "RELOADING=1");
        let usec: u64 = second
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            before <= usec && usec <= after,
            "{before} <= {usec} <= {after}"
        );

        notifier.stopping().unwrap();
        assert_eq!(recv(&socket), "STOPPING=1");

        notifier.status("serving\n2 listeners").unwrap();
        assert_eq!(recv(&socket), "STATUS=serving 2 listeners");

        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!(
            "sio-relay-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();

        let notifier = Notifier::new(Some(OsStr::new(&format!("@{name}")))).unwrap();
        notifier.ready().unwrap();
        assert_eq!(recv(&socket), "READY=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let notifier = Notifier::new(Some(OsStr::new("/nonexistent/sio-relay/notify"))).unwrap();
        assert!(notifier.ready().is_err());
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_usec();
        std::thread::sleep(Duration::from_millis(2));
        let b = monotonic_usec();
        assert!(b >= a + 1_000, "{a} -> {b}");
        assert!(reloading_message(42).ends_with("MONOTONIC_USEC=42"));
    }
}
