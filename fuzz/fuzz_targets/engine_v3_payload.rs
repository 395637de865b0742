//! Engine.IO v3 framing: a long-polling POST body (text `<length>:<packet>` or the binary
//! framing), a text WebSocket record and a binary WebSocket message. Whatever decodes must
//! encode back to a payload that decodes to the same packets.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sio_relay::engine::packet::{Frame, Packet};
use sio_relay::engine::v3::{Framing, decode_binary_message, decode_payload, decode_record};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let _ = decode_record(bytes.clone());
    let _ = decode_binary_message(bytes.clone());
    let Ok(packets) = decode_payload(bytes) else {
        return;
    };
    // Messages and binary data survive a round trip in both framings.
    let frames: Vec<Frame> = packets
        .iter()
        .filter_map(|packet| match packet {
            Packet::Message(text) => {
                let mut full = b"4".to_vec();
                full.extend_from_slice(text);
                Some(Frame::Text(Bytes::from(full)))
            }
            Packet::Binary(data) => Some(Frame::Binary(data.clone())),
            _ => None,
        })
        .collect();
    for framing in [Framing::Text, Framing::Binary] {
        let mut payload = BytesMut::new();
        for frame in &frames {
            framing.write(frame, &mut payload);
        }
        if frames.is_empty() {
            continue;
        }
        let again = decode_payload(payload.freeze()).expect("our own payload decodes");
        assert_eq!(again.len(), frames.len());
    }
});
