//! The Redis cluster messages other members publish: Node redis-adapter broadcasts,
//! requests and responses (MessagePack or JSON), python-socketio messages, and the
//! broadcast channel names. The first byte picks the decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_relay::adapter::redis::wire::Channels;
use sio_relay::adapter::redis::wire::node::{Broadcast, Request, Response, peek_relay_broadcast};
use sio_relay::adapter::redis::wire::python::PythonMessage;

fuzz_target!(|input: &[u8]| {
    let Some((&which, data)) = input.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let _ = Broadcast::decode(data);
            let _ = peek_relay_broadcast(data);
        }
        1 => {
            let _ = Request::decode(data);
        }
        2 => {
            let _ = Response::decode(data);
        }
        3 => {
            let _ = PythonMessage::decode(data);
        }
        _ => {
            if let Ok(channel) = std::str::from_utf8(data) {
                let channels = Channels::new("socket.io");
                let _ = channels.broadcast_room("/", channel);
                let _ = channels.broadcast_room("/chat", channel);
            }
        }
    }
});
