//! The write side of a WebSocket session: server frames (unmasked, RFC 6455) written
//! straight to the socket.
//!
//! Whoever sends to a session may write its frame to the socket at once, from its own
//! task ([`WsOut::try_write_now`]): a unicast push or a fan-out then costs one `writev`
//! per recipient and no task wake-up. That is allowed only while nothing is queued for
//! the session and nobody else is writing, so frames never overtake each other or
//! interleave; otherwise the item goes to the session's outbox and the session's own task
//! writes it ([`WsOut::acquire`], [`WsOut::write_item`]).
//!
//! One flag, `writing`, says who may write. It is taken with a compare-and-swap and never
//! waited on by producers: a producer that finds it taken queues instead. When the socket
//! takes only part of a direct write, the producer keeps the flag and leaves the rest to
//! the session's task, which writes it before anything else.

use std::io::{self, IoSlice};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use prometheus::IntCounter;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use super::packet::{Frame, Version};
use super::session::Outbound;
use super::stream::WriteHalf;
use super::v3::BINARY_MESSAGE;

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PONG: u8 = 0xA;

/// The longest server frame header: 2 bytes and a 64-bit length (no mask), and room for
/// the Engine.IO v3 type byte in front of binary data.
const MAX_HEADER: usize = 11;

/// The head of a final frame of `opcode`: its header for `prefix` and `len` more bytes,
/// then `prefix` (at most one byte).
fn head(opcode: u8, prefix: &[u8], len: usize) -> ([u8; MAX_HEADER], usize) {
    let (mut header, used) = header(opcode, prefix.len() + len);
    header[used..used + prefix.len()].copy_from_slice(prefix);
    (header, used + prefix.len())
}

/// A frame header for a final frame of `opcode` carrying `len` bytes.
fn header(opcode: u8, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0; MAX_HEADER];
    header[0] = 0x80 | opcode;
    let used = if len < 126 {
        header[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, used)
}

/// The WebSocket frames an item puts on the wire: opcode, prefix and payload of each. In
/// Engine.IO v3 binary data follows a type byte.
pub(super) fn wire_frames(
    item: &Outbound,
    version: Version,
) -> impl Iterator<Item = (u8, &'static [u8], &[u8])> {
    let binary_prefix: &'static [u8] = match version {
        Version::V3 => &[BINARY_MESSAGE],
        Version::V4 => &[],
    };
    let pong = item.as_ws_pong().map(|data| (OP_PONG, &[][..], &data[..]));
    let frames = item.frames().iter().map(move |frame| match frame {
        Frame::Text(text) => (OP_TEXT, &[][..], &text[..]),
        Frame::Binary(bytes) => (OP_BINARY, binary_prefix, &bytes[..]),
    });
    pong.into_iter().chain(frames)
}

/// What [`WsOut::try_write_now`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Direct {
    /// The item is on its way (written, or its rest left to the session's task).
    Written,
    /// Not written: queue it.
    NotNow,
    /// The connection failed.
    Failed,
}

/// The socket's write half, shared by the session's task and everyone who sends to the
/// session.
pub(super) struct WsOut {
    half: WriteHalf,
    /// Held by whoever is writing to the socket; see the module documentation.
    writing: AtomicBool,
    /// Wakes the session's task: a direct write ended while items wait, or left a rest.
    released: Notify,
    /// The unwritten end of a direct write the socket took only part of. Set, with
    /// `writing` still held, only on that rare path; the session's task takes it.
    rest: Mutex<Option<Bytes>>,
    bytes_out: IntCounter,
    version: Version,
}

impl WsOut {
    pub(super) fn new(half: WriteHalf, bytes_out: IntCounter, version: Version) -> Self {
        WsOut {
            half,
            writing: AtomicBool::new(false),
            released: Notify::new(),
            rest: Mutex::new(None),
            bytes_out,
            version,
        }
    }

    /// Writes a one-frame item now, from the caller's task, if nothing is queued
    /// (`queued` is the session's count of items not yet written) and nobody is writing.
    /// Never waits. Over TLS never: the session's task writes everything.
    pub(super) fn try_write_now(&self, item: &Outbound, queued: &AtomicUsize) -> Direct {
        let WriteHalf::Tcp(half) = &self.half else {
            return Direct::NotNow;
        };
        let mut frames = wire_frames(item, self.version);
        let (Some((opcode, prefix, payload)), None) = (frames.next(), frames.next()) else {
            return Direct::NotNow;
        };
        if !self.try_take() {
            return Direct::NotNow;
        }
        // Checked again with the flag held: an item queued before we took it goes first.
        if queued.load(Ordering::SeqCst) > 0 {
            self.release(queued);
            return Direct::NotNow;
        }
        let (header, used) = head(opcode, prefix, payload.len());
        let slices = [IoSlice::new(&header[..used]), IoSlice::new(payload)];
        match half.try_write_vectored(&slices) {
            Ok(n) if n == used + payload.len() => {
                self.bytes_out.inc_by(payload.len() as u64);
                self.release(queued);
                Direct::Written
            }
            Ok(n) => {
                // Keep the flag: the rest must go out before anything else.
                let mut rest = Vec::with_capacity(used + payload.len() - n);
                if n < used {
                    rest.extend_from_slice(&header[n..used]);
                    rest.extend_from_slice(payload);
                } else {
                    rest.extend_from_slice(&payload[n - used..]);
                }
                *self.rest.lock().expect("rest lock poisoned") = Some(rest.into());
                self.bytes_out.inc_by(payload.len() as u64);
                self.released.notify_one();
                Direct::Written
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                self.release(queued);
                Direct::NotNow
            }
            Err(_) => {
                self.release(queued);
                Direct::Failed
            }
        }
    }

    fn try_take(&self) -> bool {
        self.writing
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives up the right to write; wakes the session's task if items wait for it.
    pub(super) fn release(&self, queued: &AtomicUsize) {
        self.writing.store(false, Ordering::SeqCst);
        if queued.load(Ordering::SeqCst) > 0 {
            self.released.notify_one();
        }
    }

    /// Takes the right to write for the session's task, waiting for a direct write in
    /// progress; first writes the rest a partial direct write left.
    ///
    /// # Cancel safety
    /// Cancel safe only in that nothing is lost while waiting; a rest being written may be
    /// cut short, which only happens when the session ends.
    pub(super) async fn acquire(&self) -> io::Result<()> {
        loop {
            if self.try_take() {
                return Ok(());
            }
            if self.finish_rest().await? {
                return Ok(());
            }
            self.released.notified().await;
        }
    }

    /// Waits until a direct write leaves a rest for the session's task (or a stale
    /// wake-up arrives).
    pub(super) async fn released(&self) {
        self.released.notified().await
    }

    /// Writes the rest of a partial direct write, if one is waiting; `true` if it did,
    /// in which case the caller holds the right to write.
    pub(super) async fn finish_rest(&self) -> io::Result<bool> {
        let rest = self.rest.lock().expect("rest lock poisoned").take();
        match rest {
            Some(rest) => self.write_all(&rest, &[]).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Writes every frame of `item`; the caller holds the right to write.
    pub(super) async fn write_item(&self, item: &Outbound) -> io::Result<()> {
        for (opcode, prefix, payload) in wire_frames(item, self.version) {
            self.write_frame(&[], opcode, prefix, payload).await?;
        }
        Ok(())
    }

    /// Writes `preamble` (raw bytes, such as the upgrade's answer; may be empty) and one
    /// text frame, in one system call when the socket takes it all; nobody else can write
    /// yet.
    pub(super) async fn write_text(&self, preamble: &[u8], text: &[u8]) -> io::Result<()> {
        self.write_frame(preamble, OP_TEXT, &[], text).await
    }

    async fn write_frame(
        &self,
        preamble: &[u8],
        opcode: u8,
        prefix: &[u8],
        payload: &[u8],
    ) -> io::Result<()> {
        let (header, used) = head(opcode, prefix, payload.len());
        if preamble.is_empty() {
            self.write_all(&header[..used], payload).await?;
        } else {
            let first = [preamble, &header[..used]].concat();
            self.write_all(&first, payload).await?;
        }
        if opcode != OP_PONG {
            self.bytes_out.inc_by(payload.len() as u64);
        }
        Ok(())
    }

    /// Writes `first` then `second`, in as few system calls as the socket allows.
    async fn write_all(&self, mut first: &[u8], mut second: &[u8]) -> io::Result<()> {
        let half = match &self.half {
            WriteHalf::Tcp(half) => half,
            WriteHalf::Tls { half, .. } => {
                // One TLS record stream: whoever holds the write flag is the only writer.
                let mut half = half.lock().await;
                half.write_all(first).await?;
                half.write_all(second).await?;
                return half.flush().await;
            }
        };
        while !first.is_empty() || !second.is_empty() {
            half.writable().await?;
            let slices = [IoSlice::new(first), IoSlice::new(second)];
            match half.try_write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if n < first.len() => first = &first[n..],
                Ok(n) => {
                    second = &second[n - first.len()..];
                    first = &[];
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Ends the connection: a Close frame (1000) if it can be written at once, then a
    /// shutdown of both directions. Direct writes fail from then on.
    pub(super) fn close(&self) {
        if let WriteHalf::Tcp(half) = &self.half
            && self.try_take()
        {
            let frame = [0x80 | OP_CLOSE, 2, 0x03, 0xE8];
            let _ = half.try_write(&frame);
        }
        self.half.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    fn text(data: Vec<u8>) -> Outbound {
        Outbound::frame(Frame::Text(Bytes::from(data)))
    }

    /// A direct write the socket takes only part of leaves the rest to the session's
    /// task, and nothing overtakes it: the client reads the whole first frame, then the
    /// next one.
    #[tokio::test]
    async fn a_partial_direct_write_is_finished_first() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = super::super::stream::split_tcp(server);
        let out = WsOut::new(
            write,
            IntCounter::new("bytes", "bytes").unwrap(),
            Version::V4,
        );
        let queued = AtomicUsize::new(0);

        // Far more than the socket buffers hold while the client reads nothing.
        let big = vec![b'a'; 8 << 20];
        assert_eq!(
            out.try_write_now(&text(big.clone()), &queued),
            Direct::Written
        );
        assert!(
            out.rest.lock().unwrap().is_some(),
            "the socket took only part"
        );
        // The flag is still held: the next item must be queued.
        assert_eq!(
            out.try_write_now(&text(b"next".to_vec()), &queued),
            Direct::NotNow
        );
        queued.fetch_add(1, Ordering::SeqCst);

        let reader = tokio::spawn(async move {
            let mut received = vec![0; 10 + big.len() + 2 + 4];
            client.read_exact(&mut received).await.unwrap();
            received
        });
        // What the session's task does with the queued item.
        out.acquire().await.unwrap();
        out.write_item(&text(b"next".to_vec())).await.unwrap();
        queued.fetch_sub(1, Ordering::SeqCst);
        out.release(&queued);

        let received = reader.await.unwrap();
        assert_eq!(received[..2], [0x81, 127]);
        assert!(received[10..10 + (8 << 20)].iter().all(|&b| b == b'a'));
        assert_eq!(received[10 + (8 << 20)..], *b"\x81\x04next");
    }

    #[test]
    fn v3_binary_frames_carry_the_type_byte() {
        let item = Outbound::frame(Frame::Binary(Bytes::from_static(&[1, 2])));
        let (opcode, prefix, payload) = wire_frames(&item, Version::V3).next().unwrap();
        let (h, used) = head(opcode, prefix, payload.len());
        assert_eq!(&h[..used], &[0x82, 3, 4]);
        let (_, prefix, _) = wire_frames(&item, Version::V4).next().unwrap();
        assert!(prefix.is_empty());
    }

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        assert_eq!(header(OP_TEXT, 5).0[..2], [0x81, 5]);
        assert_eq!(header(OP_TEXT, 125).1, 2);
        let (h, used) = header(OP_BINARY, 126);
        assert_eq!((&h[..used], used), (&[0x82, 126, 0, 126][..], 4));
        let (h, used) = header(OP_TEXT, 65_536);
        assert_eq!(used, 10);
        assert_eq!(h[..10], [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
