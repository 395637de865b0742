//! The bytes on the wire, shared by both ends: the prebuilt frames, upgrade, push request and
//! response of every scenario, and where the push request names its target.

/// The Socket.IO event every delivery carries (`42["tick",{…}]`), as a server→client frame.
pub(super) const EVENT: &[u8] = br#"42["tick",{"seq":12345,"payload":"xxxxxxxxxxxxxxxx"}]"#;
/// Engine.IO open packet (sent after the 101 in the same write).
pub(super) const OPEN: &[u8] = br#"0{"sid":"AAAAAAAAAAAAAAAAAAAA","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
/// Socket.IO connect answer.
pub(super) const CONNECTED: &[u8] = br#"40{"sid":"BBBBBBBBBBBBBBBBBBBB"}"#;
pub(super) const UPGRADE_REQ: &[u8] = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\
Host: 127.0.0.1:29000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
User-Agent: sio-relay-load\r\n\r\n";
pub(super) const UPGRADE_RESP: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
/// Masked client text frame holding `40` (6-byte header, 2 bytes of payload).
pub(super) const CLIENT_CONNECT: [u8; 8] = {
    let mask = [0x12, 0x34, 0x56, 0x78];
    [
        0x81,
        0x82,
        mask[0],
        mask[1],
        mask[2],
        mask[3],
        b'4' ^ mask[0],
        b'0' ^ mask[1],
    ]
};
/// The push request; `PORT_MARK` is replaced with the target client's local port (5 digits).
const PUSH_REQ_BODY: &str = r#"{"to":"PPPPP-sid-abcdefghijk","event":"tick","data":{"seq":12345,"payload":"xxxxxxxxxxxxxxxx"}}"#;
const PORT_MARK: &[u8] = b"PPPPP";
const PUSH_RESP_BODY: &str = r#"{"recipients":1}"#;

/// An unmasked server→client text frame (payload under 126 bytes).
pub(super) fn ws_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![0x81, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

pub(super) fn push_request() -> Vec<u8> {
    format!(
        "POST /v1/emit HTTP/1.1\r\nhost: 127.0.0.1:29001\r\ncontent-type: application/json\r\n\
authorization: Bearer 0123456789abcdef0123456789abcdef\r\ncontent-length: {}\r\n\r\n{PUSH_REQ_BODY}",
        PUSH_REQ_BODY.len()
    )
    .into_bytes()
}

pub(super) fn push_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
date: Thu, 01 Jan 2026 00:00:00 GMT\r\nvary: origin\r\n\r\n{PUSH_RESP_BODY}",
        PUSH_RESP_BODY.len()
    )
    .into_bytes()
}

pub(super) fn port_offset(req: &[u8]) -> usize {
    req.windows(PORT_MARK.len())
        .position(|w| w == PORT_MARK)
        .expect("request template holds the port mark")
}
