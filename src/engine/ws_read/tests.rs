//! Tests of the frame reader: lengths, fragmentation, limits, protocol errors, the end
//! of the stream, cancel safety, and that an idle reader holds no buffer.

use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Yields its data at most `chunk` bytes per read, each read first returning
/// `Pending` once, to exercise partial reads and cancellation.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    stall: bool,
}

impl Trickle {
    fn new(data: Vec<u8>, chunk: usize) -> Self {
        Self {
            data,
            pos: 0,
            chunk,
            stall: true,
        }
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stall {
            self.stall = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.stall = true;
        let n = self
            .chunk
            .min(buf.remaining())
            .min(self.data.len() - self.pos);
        let pos = self.pos;
        buf.put_slice(&self.data[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

async fn read_all(data: Vec<u8>, chunk: usize, max: u64) -> Vec<Result<Message, String>> {
    let mut reader = FrameReader::new(Trickle::new(data, chunk), max);
    let mut out = Vec::new();
    loop {
        match reader.next_frame().await {
            Ok(message) => out.push(Ok(message)),
            Err(ReadError::Eof) => return out,
            Err(error) => {
                out.push(Err(error.to_string()));
                return out;
            }
        }
    }
}

/// Reads `data` whole, a byte at a time, and in odd chunks: all must agree.
async fn read(data: Vec<u8>, max: u64) -> Vec<Result<Message, String>> {
    let whole = read_all(data.clone(), usize::MAX, max).await;
    for chunk in [1, 3, 7] {
        assert_eq!(
            read_all(data.clone(), chunk, max).await,
            whole,
            "chunk {chunk}"
        );
    }
    whole
}

fn text(s: &str) -> Result<Message, String> {
    Ok(Message::Text(Bytes::copy_from_slice(s.as_bytes())))
}

#[tokio::test]
async fn masked_text_and_binary() {
    let mut data = frame(true, 1, b"4hello");
    data.extend(frame(true, 2, &[0, 1, 2, 255]));
    data.extend(frame(true, 1, b""));
    assert_eq!(
        read(data, 1000).await,
        vec![
            text("4hello"),
            Ok(Message::Binary(Bytes::from_static(&[0, 1, 2, 255]))),
            text(""),
        ]
    );
}

#[tokio::test]
async fn extended_lengths() {
    let medium = "m".repeat(300);
    let large = "L".repeat(70_000);
    let mut data = frame(true, 1, medium.as_bytes());
    data.extend(frame(true, 1, large.as_bytes()));
    assert_eq!(data[1], 0x80 | 126);
    assert_eq!(read(data, 100_000).await, vec![text(&medium), text(&large)]);
}

#[tokio::test]
async fn sixty_four_bit_length_for_a_small_payload() {
    // A minimal-length encoding is not required: 127 with a small 64-bit length.
    let mut data = vec![0x81, 0x80 | 127];
    data.extend_from_slice(&3u64.to_be_bytes());
    data.extend_from_slice(&MASK);
    data.extend(b"abc".iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    assert_eq!(read(data, 10).await, vec![text("abc")]);
}

#[tokio::test]
async fn fragments_with_control_frames_between() {
    let mut data = frame(false, 1, b"4he");
    data.extend(frame(true, 9, b"ping!"));
    data.extend(frame(false, 0, b"ll"));
    data.extend(frame(true, 10, b""));
    data.extend(frame(true, 0, b"o"));
    data.extend(frame(true, 8, &[0x03, 0xe8]));
    assert_eq!(
        read(data, 1000).await,
        vec![
            Ok(Message::Ping(Bytes::from_static(b"ping!"))),
            Ok(Message::Pong(Bytes::new())),
            text("4hello"),
            Ok(Message::Close(Bytes::from_static(&[0x03, 0xe8]))),
        ]
    );
}

#[tokio::test]
async fn message_size_limit() {
    // Exactly the limit is fine; one more is refused, also across fragments.
    assert_eq!(read(frame(true, 2, &[7; 10]), 10).await.len(), 1);
    let too_large = "message larger than 10 bytes".to_string();
    assert_eq!(
        read(frame(true, 2, &[7; 11]), 10).await,
        vec![Err(too_large.clone())]
    );
    let mut data = frame(false, 1, b"123456");
    data.extend(frame(true, 0, b"12345"));
    assert_eq!(read(data, 10).await, vec![Err(too_large.clone())]);
}

#[tokio::test]
async fn oversized_refused_from_the_header() {
    // Only the header of a 2^62-byte frame arrives: refused without reading on
    // (or allocating).
    let mut data = vec![0x82, 0x80 | 127];
    data.extend_from_slice(&(1u64 << 62).to_be_bytes());
    data.extend_from_slice(&MASK);
    assert_eq!(
        read(data.clone(), 1_000_000).await,
        vec![Err("message larger than 1000000 bytes".into())]
    );
    data[2] = 0x80; // Most significant bit set.
    assert_eq!(
        read(data, u64::MAX).await,
        vec![Err(
            "protocol error: 64-bit length with the top bit set".into()
        )]
    );
}

#[tokio::test]
async fn protocol_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0x81, 0x03, b'a', b'b', b'c'], "unmasked client frame"),
        (
            {
                let mut f = frame(true, 1, b"x");
                f[0] |= 0x40;
                f
            },
            "reserved bits set",
        ),
        (frame(true, 3, b"x"), "reserved opcode"),
        (frame(true, 0xB, b"x"), "reserved opcode"),
        (frame(false, 9, b"x"), "fragmented control frame"),
        (
            frame(true, 9, &[0; 126]),
            "control frame longer than 125 bytes",
        ),
        (frame(true, 0, b"x"), "continuation without a message"),
        (
            [frame(false, 1, b"a"), frame(true, 1, b"b")].concat(),
            "expected a continuation",
        ),
    ];
    for (data, expected) in cases {
        assert_eq!(
            read(data, 1000).await,
            vec![Err(format!("protocol error: {expected}"))],
            "{expected}"
        );
    }
}

#[tokio::test]
async fn invalid_utf8_text() {
    let mut data = frame(false, 1, &[0xE2, 0x82]);
    data.extend(frame(true, 0, &[0xAC])); // "€" split across fragments: fine.
    data.extend(frame(true, 1, &[0xFF]));
    assert_eq!(
        read(data, 100).await,
        vec![text("€"), Err("text message is not UTF-8".into())]
    );
}

#[tokio::test]
async fn eof() {
    assert_eq!(read(Vec::new(), 100).await, vec![]);
    let data = frame(true, 1, b"hello");
    for cut in 1..data.len() {
        assert_eq!(
            read(data[..cut].to_vec(), 100).await,
            vec![Err("connection closed inside a frame".into())],
            "cut at {cut}"
        );
    }
    // Between the fragments of a message.
    assert_eq!(
        read(frame(false, 1, b"he"), 100).await,
        vec![Err("connection closed inside a frame".into())]
    );
}

#[tokio::test]
async fn cancel_safe() {
    // Start `next_frame` and drop it after every poll: nothing is lost.
    let mut data = frame(false, 1, b"4he");
    data.extend(frame(true, 9, b"p"));
    data.extend(frame(true, 0, &"l".repeat(200).into_bytes()));
    let mut reader = FrameReader::new(Trickle::new(data, 1), 1000);
    let mut got = Vec::new();
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    for _ in 0..10_000 {
        let mut next = std::pin::pin!(reader.next_frame());
        match next.as_mut().poll(&mut cx) {
            Poll::Ready(Err(ReadError::Eof)) => break,
            Poll::Ready(result) => got.push(result.unwrap()),
            Poll::Pending => {}
        }
    }
    assert_eq!(
        got,
        vec![
            Message::Ping(Bytes::from_static(b"p")),
            Message::Text(Bytes::from(format!("4he{}", "l".repeat(200)))),
        ]
    );
}

#[tokio::test]
async fn no_buffer_while_idle() {
    let mut data = frame(false, 1, b"abc");
    data.extend(frame(true, 0, b"def"));
    let mut reader = FrameReader::new(Trickle::new(data, usize::MAX), 1000);
    assert_eq!(
        reader.next_frame().await.unwrap(),
        Message::Text(Bytes::from_static(b"abcdef"))
    );
    assert_eq!(reader.message.capacity(), 0);
    assert_eq!(reader.control.capacity(), 0);
}
