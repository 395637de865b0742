//! The msgpack parser's decoder, on the bytes of one binary Engine.IO message: whatever
//! decodes encodes back to something that decodes to the same type, namespace and id.
//! (Not the same attachments: a client's own `{"_placeholder": true, "num": 0}` map is
//! indistinguishable from a placeholder, with the JSON parser as with this one.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_relay::socketio::msgpack::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Ok((packet, attachments)) = decode(data) else {
        return;
    };
    assert_eq!(packet.attachments, 0);
    let encoded = encode(
        packet.kind,
        &packet.namespace,
        packet.data.as_ref(),
        &attachments,
        packet.id,
    );
    let (again, _) = decode(&encoded).expect("our own encoding decodes");
    assert_eq!(again.kind, packet.kind);
    assert_eq!(again.namespace, packet.namespace);
    assert_eq!(again.id, packet.id);
});
