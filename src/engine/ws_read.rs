//! The server side of WebSocket reading: RFC 6455 frames from a client, reassembled into
//! messages.
//!
//! fastwebsockets still does the HTTP upgrade and writes our frames, but we read frames
//! ourselves, for two reasons:
//!
//! - **Memory.** fastwebsockets' read half keeps an 8 KiB buffer per connection for its
//!   whole life, the largest part of what an idle client costs. [`FrameReader`] holds no
//!   buffer while idle: a frame header goes into a 14-byte inline array, and a payload
//!   buffer is allocated only once its length is known, exactly that size.
//! - **Cancel safety.** [`FrameReader::next_frame`] keeps all its progress in the reader,
//!   so it can be raced in `select!` against other work without losing data.
//!
//! What it checks: client frames must be masked; reserved bits and reserved opcodes are
//! refused; control frames (Close, Ping, Pong) are at most 125 bytes and never fragmented,
//! but may arrive between the fragments of a message; a message larger than the limit is
//! refused from its header, before anything is allocated; text must be UTF-8. Close, Ping
//! and Pong are handed to the caller, which answers them (or not) itself.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

/// The longest frame header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// The largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;

/// One message or control frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, all fragments joined; valid UTF-8.
    Text(Bytes),
    /// A binary message, all fragments joined.
    Binary(Bytes),
    /// A Close frame, with its payload (status code and reason, if any).
    Close(Bytes),
    /// A Ping frame; the caller answers with a Pong carrying the same payload.
    Ping(Bytes),
    /// A Pong frame.
    Pong(Bytes),
}

impl Message {
    /// The message's payload, whatever its kind.
    pub fn payload(&self) -> &Bytes {
        match self {
            Self::Text(data)
            | Self::Binary(data)
            | Self::Close(data)
            | Self::Ping(data)
            | Self::Pong(data) => data,
        }
    }
}

/// Why reading failed. After an error the reader must not be used again.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The connection ended between frames.
    #[error("connection closed")]
    Eof,
    /// The connection ended inside a frame.
    #[error("connection closed inside a frame")]
    UnexpectedEof,
    /// A message is larger than the limit.
    #[error("message larger than {0} bytes")]
    TooLarge(u64),
    /// The client broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message is not UTF-8.
    #[error("text message is not UTF-8")]
    InvalidUtf8,
    /// Reading from the connection failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Result<Self, ReadError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return Err(ReadError::Protocol("reserved opcode")),
        })
    }

    fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    len: u64,
}

/// The payload of the frame being read.
struct Pending {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    /// Where the payload starts in its buffer (the message so far, or the control buffer).
    offset: usize,
    len: usize,
    filled: usize,
}

/// Reads client frames from `R` and reassembles fragmented messages.
///
/// Holds no heap memory between messages; see the module documentation.
pub struct FrameReader<R> {
    io: R,
    max_message: u64,
    /// Bytes read past the last header: `ahead[start..end]` is unread.
    ahead: [u8; MAX_HEADER],
    start: u8,
    end: u8,
    /// The frame whose payload is being read, once its header is in.
    pending: Option<Pending>,
    /// The opcode of a fragmented message in progress (Text or Binary).
    message_opcode: Option<OpCode>,
    /// The message in progress: the payloads of its fragments so far.
    message: Vec<u8>,
    /// The payload of a control frame being read.
    control: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of client frames from `io`, refusing messages larger than `max_message`
    /// bytes (all fragments together).
    pub fn new(io: R, max_message: u64) -> Self {
        Self {
            io,
            max_message,
            ahead: [0; MAX_HEADER],
            start: 0,
            end: 0,
            pending: None,
            message_opcode: None,
            message: Vec::new(),
            control: Vec::new(),
        }
    }

    /// The next message or control frame.
    ///
    /// Control frames between the fragments of a message are returned as they come; the
    /// message follows once its last fragment is in.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. Everything read so far (a partial header, a partial
    /// payload, earlier fragments) is kept in the reader, so dropping the future and
    /// calling `next_frame` again continues where it stopped, without losing data. It can
    /// therefore be used as a branch of `tokio::select!` in a loop.
    pub async fn next_frame(&mut self) -> Result<Message, ReadError> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, ReadError>> {
        loop {
            if self.pending.is_none() {
                let header = ready!(self.poll_header(cx))?;
                self.begin(header)?;
            }
            ready!(self.poll_payload(cx))?;
            if let Some(message) = self.finish()? {
                return Poll::Ready(Ok(message));
            }
        }
    }

    /// Reads one frame header, refusing what breaks the rules as soon as its first two
    /// bytes are in.
    fn poll_header(&mut self, cx: &mut Context<'_>) -> Poll<Result<Header, ReadError>> {
        loop {
            let unread = &self.ahead[self.start as usize..self.end as usize];
            if let Some((opcode, needed)) = check_start(unread)?
                && unread.len() >= needed
            {
                let header = parse_header(opcode, &unread[..needed])?;
                self.start += needed as u8;
                return Poll::Ready(Ok(header));
            }
            // Need more: move the unread bytes to the front (at most 13 of them, so there
            // is room for at least one more) and read.
            let (start, end) = (self.start as usize, self.end as usize);
            self.ahead.copy_within(start..end, 0);
            self.end -= self.start;
            self.start = 0;
            let mut buf = ReadBuf::new(&mut self.ahead[self.end as usize..]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
            let n = buf.filled().len();
            if n == 0 {
                let mid_frame = self.end > 0 || self.message_opcode.is_some();
                return Poll::Ready(Err(if mid_frame {
                    ReadError::UnexpectedEof
                } else {
                    ReadError::Eof
                }));
            }
            self.end += n as u8;
        }
    }

    /// Checks a header against the message in progress and the limit, then makes room
    /// for its payload.
    fn begin(&mut self, header: Header) -> Result<(), ReadError> {
        let max = self.max_message;
        let too_large = move || ReadError::TooLarge(max);
        let len = usize::try_from(header.len).map_err(|_| too_large())?;
        let offset = if header.opcode.is_control() {
            // `check_start` limited it to 125.
            self.control = vec![0; len];
            0
        } else {
            let so_far = match (header.opcode, self.message_opcode) {
                (OpCode::Continuation, Some(_)) => self.message.len() as u64,
                (OpCode::Continuation, None) => {
                    return Err(ReadError::Protocol("continuation without a message"));
                }
                (_, Some(_)) => return Err(ReadError::Protocol("expected a continuation")),
                (opcode, None) => {
                    self.message_opcode = Some(opcode);
                    0
                }
            };
            // `so_far` is within the limit: the earlier fragments passed this check.
            if header.len > max - so_far {
                return Err(too_large());
            }
            let offset = self.message.len();
            if offset == 0 {
                self.message = vec![0; len];
            } else {
                self.message.reserve_exact(len);
                self.message.resize(offset + len, 0);
            }
            offset
        };
        self.pending = Some(Pending {
            fin: header.fin,
            opcode: header.opcode,
            mask: header.mask,
            offset,
            len,
            filled: 0,
        });
        Ok(())
    }

    /// Reads the pending frame's payload into its buffer, then unmasks it.
    fn poll_payload(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ReadError>> {
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let buf = if pending.opcode.is_control() {
            &mut self.control
        } else {
            &mut self.message
        };
        let payload = &mut buf[pending.offset..pending.offset + pending.len];
        while pending.filled < pending.len {
            let unread = &self.ahead[self.start as usize..self.end as usize];
            if !unread.is_empty() {
                let n = unread.len().min(pending.len - pending.filled);
                payload[pending.filled..pending.filled + n].copy_from_slice(&unread[..n]);
                pending.filled += n;
                self.start += n as u8;
                continue;
            }
            let mut read = ReadBuf::new(&mut payload[pending.filled..]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                return Poll::Ready(Err(ReadError::UnexpectedEof));
            }
            pending.filled += n;
        }
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= pending.mask[i % 4];
        }
        Poll::Ready(Ok(()))
    }

    /// Ends the frame just read: a control frame or the last fragment makes a message.
    fn finish(&mut self) -> Result<Option<Message>, ReadError> {
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let message = match pending.opcode {
            OpCode::Close => Message::Close(Bytes::from(std::mem::take(&mut self.control))),
            OpCode::Ping => Message::Ping(Bytes::from(std::mem::take(&mut self.control))),
            OpCode::Pong => Message::Pong(Bytes::from(std::mem::take(&mut self.control))),
            _ if !pending.fin => return Ok(None),
            _ => {
                let data = std::mem::take(&mut self.message);
                match self.message_opcode.take() {
                    Some(OpCode::Text) => {
                        if std::str::from_utf8(&data).is_err() {
                            return Err(ReadError::InvalidUtf8);
                        }
                        Message::Text(Bytes::from(data))
                    }
                    _ => Message::Binary(Bytes::from(data)),
                }
            }
        };
        Ok(Some(message))
    }
}

/// Checks the first two bytes of a header, once they are in: the opcode and the length of
/// the whole header, or `None` if fewer than two bytes are in.
fn check_start(bytes: &[u8]) -> Result<Option<(OpCode, usize)>, ReadError> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(ReadError::Protocol("reserved bits set"));
    }
    let opcode = OpCode::from_bits(first & 0x0F)?;
    if second & 0x80 == 0 {
        return Err(ReadError::Protocol("unmasked client frame"));
    }
    let len = second & 0x7F;
    if opcode.is_control() {
        if first & 0x80 == 0 {
            return Err(ReadError::Protocol("fragmented control frame"));
        }
        if len as usize > MAX_CONTROL {
            return Err(ReadError::Protocol("control frame longer than 125 bytes"));
        }
    }
    let extended = match len {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    Ok(Some((opcode, 2 + extended + 4)))
}

/// Parses a whole header that `check_start` accepted.
fn parse_header(opcode: OpCode, bytes: &[u8]) -> Result<Header, ReadError> {
    let fin = bytes[0] & 0x80 != 0;
    let (len, rest) = match bytes[1] & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            &bytes[4..],
        ),
        127 => {
            let mut len = [0; 8];
            len.copy_from_slice(&bytes[2..10]);
            (u64::from_be_bytes(len), &bytes[10..])
        }
        len => (u64::from(len), &bytes[2..]),
    };
    if len >> 63 != 0 {
        return Err(ReadError::Protocol("64-bit length with the top bit set"));
    }
    let mut mask = [0; 4];
    mask.copy_from_slice(rest);
    Ok(Header {
        fin,
        opcode,
        mask,
        len,
    })
}

#[cfg(test)]
mod tests;
