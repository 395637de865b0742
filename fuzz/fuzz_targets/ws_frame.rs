//! WebSocket frames from a client: the input is a script of chunk sizes followed by the
//! bytes of the connection, fed to `FrameReader` through an `AsyncRead` that returns at
//! most one chunk per read (and sometimes `Pending` first), until an error or the end.
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use sio_relay::engine::ws_read::{FrameReader, Message, ReadError};
use tokio::io::{AsyncRead, ReadBuf};

const MAX_MESSAGE: u64 = 64 * 1024;

/// One runtime for every input.
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// Returns `data` in reads of at most the next size from `chunks` (cycled); a size of 0
/// makes the read return `Pending` once (waking itself) before giving data.
struct Chunked<'a> {
    data: &'a [u8],
    chunks: &'a [u8],
    next: usize,
    pending_done: bool,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut size = usize::MAX;
        if !this.chunks.is_empty() {
            let chunk = this.chunks[this.next % this.chunks.len()];
            if chunk == 0 && !this.pending_done {
                this.pending_done = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.pending_done = false;
            this.next += 1;
            size = usize::from(chunk.max(1));
        }
        let n = size.min(buf.remaining()).min(this.data.len());
        buf.put_slice(&this.data[..n]);
        this.data = &this.data[n..];
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many chunk sizes follow (at most 15).
    let Some((&head, rest)) = input.split_first() else {
        return;
    };
    let count = usize::from(head & 0x0F).min(rest.len());
    let (chunks, data) = rest.split_at(count);
    let io = Chunked {
        data,
        chunks,
        next: 0,
        pending_done: false,
    };
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
        })
        .block_on(async {
            let mut reader = FrameReader::new(io, MAX_MESSAGE);
            loop {
                match reader.next_frame().await {
                    Ok(message) => {
                        let payload = message.payload();
                        match &message {
                            Message::Text(text) => {
                                assert!(std::str::from_utf8(text).is_ok());
                                assert!(payload.len() as u64 <= MAX_MESSAGE);
                            }
                            Message::Binary(_) => assert!(payload.len() as u64 <= MAX_MESSAGE),
                            Message::Close(_) | Message::Ping(_) | Message::Pong(_) => {
                                assert!(payload.len() <= 125)
                            }
                        }
                    }
                    Err(ReadError::Io(error)) => panic!("the reader never fails: {error}"),
                    Err(_) => break,
                }
            }
        });
});
