//! Engine.IO and Socket.IO codec throughput.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sio_relay::engine::packet::{Frame, decode_payload, decode_text};
use sio_relay::socketio::packet::{Args, decode, encode_event};
use std::hint::black_box;

fn engineio(c: &mut Criterion) {
    let text = Bytes::from_static(b"42[\"task_done\",{\"id\":12345,\"status\":\"ok\"}]");
    c.bench_function("eio/decode_text", |b| {
        b.iter(|| decode_text(black_box(text.clone())).unwrap())
    });
    let payload = Bytes::from_static(b"42[\"a\",1]\x1e42[\"b\",2]\x1ebAQIDBA==\x1e3");
    c.bench_function("eio/decode_payload_4", |b| {
        b.iter(|| decode_payload(black_box(payload.clone())).unwrap())
    });
    let frames = [
        Frame::Text(text.clone()),
        Frame::Binary(Bytes::from_static(&[7u8; 64])),
    ];
    c.bench_function("eio/encode_payload_2", |b| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(256);
            for frame in black_box(&frames) {
                frame.write_to_payload(&mut out);
            }
            out
        })
    });
}

fn socketio(c: &mut Criterion) {
    c.bench_function("sio/decode_event", |b| {
        b.iter(|| {
            decode(black_box(
                "2/chat,12[\"message\",{\"text\":\"hello\",\"n\":1}]",
            ))
            .unwrap()
        })
    });
    let args = Args {
        values: vec![json!({"id": 12345, "status": "ok", "items": [1, 2, 3]})],
        attachments: vec![],
    };
    c.bench_function("sio/encode_event", |b| {
        b.iter(|| {
            encode_event(
                black_box("/"),
                black_box("task_done"),
                black_box(&args),
                None,
            )
        })
    });
    let binary = Args {
        values: vec![json!({"_placeholder": true, "num": 0})],
        attachments: vec![Bytes::from_static(&[1u8; 1024])],
    };
    c.bench_function("sio/encode_binary_event", |b| {
        b.iter(|| {
            encode_event(
                black_box("/"),
                black_box("file"),
                black_box(&binary),
                Some(1),
            )
        })
    });
}

criterion_group!(benches, engineio, socketio);
criterion_main!(benches);
