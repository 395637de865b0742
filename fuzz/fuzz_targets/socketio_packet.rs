//! Socket.IO packets, as the relay reads them from an Engine.IO message: the text decoder,
//! and the Engine.IO long-polling payload decoder in front of it.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sio_relay::engine::packet::{Packet as EnginePacket, decode_payload};
use sio_relay::socketio::packet::{MAX_ATTACHMENTS, PacketType, decode};

fn check(text: &str) {
    let Ok(packet) = decode(text) else {
        return;
    };
    assert!(packet.attachments <= MAX_ATTACHMENTS);
    if !matches!(packet.kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        assert_eq!(packet.attachments, 0);
    }
    assert!(packet.namespace.starts_with('/'));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    // The polling path: a POST body split into Engine.IO packets, each message decoded.
    if let Ok(packets) = decode_payload(Bytes::copy_from_slice(data)) {
        for packet in packets {
            if let EnginePacket::Message(text) = packet {
                check(std::str::from_utf8(&text).expect("decode_payload checks UTF-8"));
            }
        }
    }
});
