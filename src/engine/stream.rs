//! A client connection's two halves, over plain TCP or TLS, for the WebSocket transport.
//!
//! Over TCP the halves are tokio's owned halves: the write half can be written without
//! waiting (`try_write_vectored`), which lets producers write a frame from their own task
//! (see [`ws_write`](super::ws_write)). Over TLS the record layer needs `&mut` access, so
//! the write half sits behind an async mutex and frames always go through the session's
//! task; the mutex is never contended, as only the holder of the write flag writes.
//!
//! A TLS connection also keeps a duplicate of its socket's descriptor, so that ending a
//! session can shut the socket down at once from any task, as over TCP, even while a
//! write is stuck on a client that stopped reading.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A client connection wrapped in TLS.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The read half of a client connection.
pub(super) enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream>),
}

/// The write half of a client connection.
pub(super) enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls {
        half: tokio::sync::Mutex<tokio::io::WriteHalf<TlsStream>>,
        /// The same socket, to shut it down without the mutex.
        socket: OwnedFd,
    },
}

/// Splits a TCP connection.
pub(super) fn split_tcp(stream: TcpStream) -> (ReadHalf, WriteHalf) {
    let (read, write) = stream.into_split();
    (ReadHalf::Tcp(read), WriteHalf::Tcp(write))
}

/// Splits a TLS connection; fails only when the descriptor cannot be duplicated (out of
/// descriptors).
pub(super) fn split_tls(stream: TlsStream) -> io::Result<(ReadHalf, WriteHalf)> {
    let socket = stream.get_ref().0.as_fd().try_clone_to_owned()?;
    let (read, write) = tokio::io::split(stream);
    Ok((
        ReadHalf::Tls(read),
        WriteHalf::Tls {
            half: tokio::sync::Mutex::new(write),
            socket,
        },
    ))
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(half) => Pin::new(half).poll_read(cx, buf),
            ReadHalf::Tls(half) => Pin::new(half).poll_read(cx, buf),
        }
    }
}

impl WriteHalf {
    /// Shuts both directions of the socket down: the peer sees the end, and reads and
    /// writes in progress on it fail.
    pub(super) fn shutdown(&self) {
        let socket = match self {
            WriteHalf::Tcp(half) => socket2::SockRef::from(half.as_ref()),
            WriteHalf::Tls { socket, .. } => socket2::SockRef::from(socket),
        };
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
}
