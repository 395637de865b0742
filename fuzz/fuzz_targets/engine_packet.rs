//! Engine.IO packets: one text packet (a WebSocket text frame) and a long-polling POST body.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sio_relay::engine::packet::{Packet, RECORD_SEPARATOR, decode_payload, decode_text};

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    let _ = decode_text(raw.clone());
    if let Ok(packets) = decode_payload(raw) {
        // Every record is a packet, so there is one more than there are separators.
        let records = data.iter().filter(|b| **b == RECORD_SEPARATOR).count() + 1;
        assert_eq!(packets.len(), records);
        for packet in packets {
            if let Packet::Message(text) = packet {
                assert!(std::str::from_utf8(&text).is_ok());
            }
        }
    }
});
