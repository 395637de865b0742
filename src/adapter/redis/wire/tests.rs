//! The captured vectors of `tests/vectors/cluster/`: each decodes to the structure its
//! capture documents, and re-encodes to the same bytes where the format is deterministic.

use bytes::Bytes;
use serde_json::{Value, json};

use super::node::{Broadcast, RelayAck, RemoteSocket, Request, RequestKind, Response};
use super::python::{PythonEmit, PythonKind, PythonMessage};
use super::{BroadcastOpts, Channels, EventPacket, Flags, Selector, WireError};
use crate::socketio::packet::Args;

const ADAPTER: &str =
    include_str!("../../../../tests/vectors/cluster/node-redis-adapter-8.3.0.decoded.json");
const EMITTER: &str =
    include_str!("../../../../tests/vectors/cluster/node-redis-emitter-5.1.0.decoded.json");
const PYTHON: &str =
    include_str!("../../../../tests/vectors/cluster/python-socketio-5.18.1.decoded.json");
const PICKLE: &str =
    include_str!("../../../../tests/vectors/cluster/python-socketio-5.13.0-pickle.jsonl");
const SOCKETIOXIDE: &str =
    include_str!("../../../../tests/vectors/cluster/socketioxide-redis-0.4.4.jsonl");
const STREAMS: &str =
    include_str!("../../../../tests/vectors/cluster/node-redis-streams-adapter-0.3.1.jsonl");

struct Vector {
    call: String,
    channel: String,
    bytes: Vec<u8>,
    decoded: Value,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vector(record: &Value) -> Option<Vector> {
    Some(Vector {
        call: record["call"].as_str()?.to_owned(),
        channel: record["channel"].as_str()?.to_owned(),
        bytes: hex(record["hex"].as_str()?),
        decoded: record.get("decoded").cloned().unwrap_or(Value::Null),
    })
}

fn decoded_file(text: &str) -> Vec<Vector> {
    let records: Vec<Value> = serde_json::from_str(text).unwrap();
    records.iter().filter_map(vector).collect()
}

fn jsonl_file(text: &str) -> Vec<Vector> {
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter_map(|record| vector(&record))
        .collect()
}

fn find<'a>(vectors: &'a [Vector], label: &str) -> &'a Vector {
    vectors.iter().find(|v| v.call.starts_with(label)).unwrap()
}

/// The capture's notation (`{"$bin": hex}`, `{"$date": iso}`) as relay arguments.
fn capture_args(values: &[Value]) -> Args {
    fn convert(value: &Value, attachments: &mut Vec<Bytes>) -> Value {
        match value {
            Value::Object(map) if map.len() == 1 && map.contains_key("$bin") => {
                attachments.push(Bytes::from(hex(map["$bin"].as_str().unwrap())));
                json!({"_placeholder": true, "num": attachments.len() - 1})
            }
            Value::Object(map) if map.len() == 1 && map.contains_key("$date") => {
                map["$date"].clone()
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), convert(v, attachments)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| convert(v, attachments)).collect())
            }
            other => other.clone(),
        }
    }
    let mut attachments = Vec::new();
    let values = values
        .iter()
        .map(|v| convert(v, &mut attachments))
        .collect();
    Args {
        values,
        attachments,
    }
}

fn capture_packet(packet: &Value) -> EventPacket {
    let data = packet["data"].as_array().unwrap();
    EventPacket {
        nsp: packet["nsp"].as_str().unwrap_or("/").to_owned(),
        event: data[0].as_str().unwrap().to_owned(),
        args: capture_args(&data[1..]),
    }
}

fn capture_opts(opts: &Value) -> BroadcastOpts {
    BroadcastOpts {
        selector: serde_json::from_value(opts.clone()).unwrap(),
        flags: serde_json::from_value(opts["flags"].clone()).unwrap(),
    }
}

fn capture_broadcast(decoded: &Value) -> Broadcast {
    Broadcast {
        uid: decoded[0].as_str().unwrap().to_owned(),
        packet: capture_packet(&decoded[1]),
        opts: capture_opts(&decoded[2]),
        request_id: None,
    }
}

fn is_broadcast_channel(channel: &str) -> bool {
    channel.starts_with("socket.io#")
}

/// Every broadcast decodes to the captured structure; the adapter's re-encode to the same
/// bytes (the emitter writes `opts` keys in another order, which carries no meaning).
fn check_broadcasts(vectors: &[Vector], byte_exact: bool) -> usize {
    let mut checked = 0;
    for v in vectors.iter().filter(|v| is_broadcast_channel(&v.channel)) {
        let decoded = Broadcast::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.call));
        assert_eq!(decoded, capture_broadcast(&v.decoded), "{}", v.call);
        let encoded = decoded.encode().unwrap();
        let has_date = v.decoded.to_string().contains("$date");
        if byte_exact && !has_date {
            assert_eq!(encoded, v.bytes, "{}", v.call);
        }
        assert_eq!(Broadcast::decode(&encoded).unwrap(), decoded, "{}", v.call);
        checked += 1;
    }
    checked
}

#[test]
fn adapter_broadcasts_decode_and_reencode_byte_for_byte() {
    let vectors = decoded_file(ADAPTER);
    assert_eq!(check_broadcasts(&vectors, true), 8);

    let a08 = Broadcast::decode(&find(&vectors, "A08").bytes).unwrap();
    assert_eq!(a08.packet.event, "bin");
    assert_eq!(
        a08.packet.args.values,
        vec![json!({"_placeholder": true, "num": 0})]
    );
    assert_eq!(
        a08.packet.args.attachments,
        vec![Bytes::from_static(&[1, 2, 3])]
    );

    let a06 = Broadcast::decode(&find(&vectors, "A06").bytes).unwrap();
    assert_eq!(
        a06.opts.flags,
        Flags {
            volatile: Some(true),
            compress: Some(false),
            ..Flags::default()
        }
    );
    let a16 = Broadcast::decode(&find(&vectors, "A16").bytes).unwrap();
    assert_eq!(a16.packet.nsp, "/admin");
    assert_eq!(a16.opts.selector.rooms, vec!["room1".to_owned()]);
    assert_eq!(
        Channels::default().broadcast_for("/admin", &a16.opts.selector.rooms),
        find(&vectors, "A16").channel
    );
}

#[test]
fn emitter_broadcasts_decode_with_binary_and_dates() {
    let vectors = decoded_file(EMITTER);
    assert_eq!(check_broadcasts(&vectors, false), 12);

    let e12 = Broadcast::decode(&find(&vectors, "E12").bytes).unwrap();
    assert_eq!(e12.uid, super::node::EMITTER_UID);
    assert_eq!(
        e12.packet.args.values,
        vec![json!("1970-01-01T00:00:00.000Z")]
    );
    let e05 = Broadcast::decode(&find(&vectors, "E05").bytes).unwrap();
    assert_eq!(
        e05.opts.selector,
        Selector {
            rooms: vec![],
            except: vec!["room2".into()]
        }
    );
}

#[test]
fn requests_and_responses_decode_and_reencode() {
    let mut vectors = decoded_file(ADAPTER);
    vectors.extend(decoded_file(EMITTER));
    let mut count = 0;
    for v in vectors.iter().filter(|v| !is_broadcast_channel(&v.channel)) {
        let encoded = if v.channel.starts_with("socket.io-request#") {
            let request = Request::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.call));
            request.encode().unwrap()
        } else {
            let response = Response::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.call));
            assert_eq!(
                Response::decode(&response.encode().unwrap()).unwrap(),
                response,
                "{}",
                v.call
            );
            response.encode().unwrap()
        };
        if v.call.starts_with("A12") && v.channel.starts_with("socket.io-response#") {
            // JSON object keys of the passed-through handshake come back sorted.
            let again: Value = serde_json::from_slice(&encoded).unwrap();
            assert_eq!(again, v.decoded, "{}", v.call);
        } else {
            assert_eq!(encoded, v.bytes, "{}", v.call);
        }
        count += 1;
    }
    assert_eq!(count, 14 + 7);
}

#[test]
fn request_structures_match_the_captures() {
    let adapter = decoded_file(ADAPTER);
    let emitter = decoded_file(EMITTER);
    let req = |vs: &[Vector], label: &str| Request::decode(&find(vs, label).bytes).unwrap();

    let a09 = req(&adapter, "A09");
    assert_eq!(a09.uid.as_deref(), Some("pSNYkW"));
    let RequestKind::Broadcast {
        request_id,
        packet,
        opts,
    } = a09.kind
    else {
        panic!("A09 is a broadcast with acks")
    };
    assert_eq!(request_id, "1Fq09j");
    assert_eq!(
        packet,
        capture_packet(&json!({"data": ["ask", "q?"], "nsp": "/"}))
    );
    assert_eq!(opts.flags.timeout, Some(1000));

    assert_eq!(
        req(&adapter, "A11").kind,
        RequestKind::Leave {
            request_id: None,
            selector: Selector {
                rooms: vec!["room1".into()],
                except: vec!["room3".into()]
            },
            rooms: vec!["room2".into()],
        }
    );
    assert_eq!(
        req(&adapter, "A12").kind,
        RequestKind::FetchSockets {
            request_id: "Cl4tm0".into(),
            selector: Selector::default(),
            relay_skip: false,
        }
    );
    assert_eq!(
        req(&adapter, "A15").kind,
        RequestKind::AllRooms {
            request_id: "f9q9tN".into()
        }
    );
    assert_eq!(
        req(&adapter, "A17").kind,
        RequestKind::Disconnect {
            request_id: None,
            selector: Selector {
                rooms: vec!["N49BuKez2lVaOb4PAAAB".into()],
                except: vec![]
            },
            close: true,
        }
    );
    let RequestKind::ServerSideEmit { request_id, data } = req(&adapter, "A14").kind else {
        panic!("A14 is a server-side emit")
    };
    assert_eq!(
        (request_id.as_deref(), data.values),
        (Some("g3euz4"), vec![json!("ping-ack"), json!(1)])
    );

    let e13 = req(&emitter, "E13");
    assert_eq!(e13.uid, None);
    assert_eq!(
        e13.kind,
        RequestKind::Join {
            request_id: None,
            selector: Selector::default(),
            rooms: vec!["room3".into()]
        }
    );
    assert_eq!(req(&emitter, "E18").uid.as_deref(), Some("emitter"));
}

#[test]
fn response_structures_match_the_captures() {
    let adapter = decoded_file(ADAPTER);
    let responses: Vec<Response> = adapter
        .iter()
        .filter(|v| v.channel.starts_with("socket.io-response#"))
        .map(|v| Response::decode(&v.bytes).unwrap())
        .collect();
    assert_eq!(
        responses[0],
        Response::ClientCount {
            request_id: "1Fq09j".into(),
            client_count: 1,
            sids: None
        }
    );
    assert_eq!(
        responses[1],
        Response::Ack {
            request_id: "1Fq09j".into(),
            packet: Some(Args {
                values: vec![json!("answer-from-clientB")],
                attachments: vec![]
            }),
            relay: None,
        }
    );
    let Response::Sockets {
        request_id,
        sockets,
    } = &responses[2]
    else {
        panic!("A12 answers with sockets")
    };
    assert_eq!(request_id, "Cl4tm0");
    assert_eq!(sockets[0].id, "N49BuKez2lVaOb4PAAAB");
    assert_eq!(
        sockets[0].rooms,
        vec!["N49BuKez2lVaOb4PAAAB".to_owned(), "room1".to_owned()]
    );
    assert_eq!(sockets[0].address().as_deref(), Some("127.0.0.1"));
    assert_eq!(
        sockets[0].connected_at().as_deref(),
        Some("2026-11-26T00:17:06.346Z")
    );
    assert_eq!(sockets[0].transport(), None);
    assert_eq!(sockets[0].data, json!({"user": "bob"}));
    assert_eq!(
        responses[3],
        Response::ServerSideEmitAck {
            request_id: "g3euz4".into(),
            data: Args {
                values: vec![json!("pong-from-B")],
                attachments: vec![]
            }
        }
    );
    assert_eq!(
        responses[4],
        Response::Rooms {
            request_id: "f9q9tN".into(),
            rooms: vec!["N49BuKez2lVaOb4PAAAB".into(), "room1".into()]
        }
    );
}

#[test]
fn relay_extensions_ride_along_and_node_reads_the_rest() {
    let args = Args {
        values: vec![json!({"f": {"_placeholder": true, "num": 0}}), json!(2)],
        attachments: vec![Bytes::from_static(b"xy")],
    };
    let ack = Response::ack("r1".into(), "sid1".into(), args.clone()).unwrap();
    let bytes = ack.encode().unwrap();
    assert_eq!(Response::decode(&bytes).unwrap(), ack);
    let Response::Ack { packet, relay, .. } = ack else {
        unreachable!()
    };
    assert_eq!(
        packet.unwrap().values,
        vec![json!({"f": {"_placeholder": true, "num": 0}})]
    );
    assert_eq!(
        relay,
        Some(RelayAck {
            sid: "sid1".into(),
            args
        })
    );

    // An ack with no argument carries no `packet`, as notepack skips undefined values.
    let empty = Response::ack("r2".into(), "s".into(), Args::default()).unwrap();
    assert!(matches!(
        Response::decode(&empty.encode().unwrap()).unwrap(),
        Response::Ack { packet: None, .. }
    ));

    let count = Response::ClientCount {
        request_id: "r1".into(),
        client_count: 2,
        sids: Some(vec!["a".into(), "b".into()]),
    };
    assert_eq!(
        count.encode().unwrap(),
        br#"{"type":8,"requestId":"r1","clientCount":2,"sids":["a","b"]}"#
    );

    let socket = RemoteSocket::relay(
        "AAAAAAAAAAAAAAAAAAAA".into(),
        vec!["AAAAAAAAAAAAAAAAAAAA".into(), "room1".into()],
        super::node::RelaySocket {
            transport: "websocket".into(),
            address: "10.0.0.1:5555".into(),
            connected_at: "2026-11-26T00:17:06.346Z".into(),
            user: Some("u1".into()),
            parser: Some("msgpack".into()),
            eio: Some(3),
        },
        1_795_652_226_346,
    );
    assert_eq!(socket.handshake["address"], "10.0.0.1");
    assert_eq!(socket.handshake["issued"], 1_795_652_226_346i64);
    let response = Response::Sockets {
        request_id: "r3".into(),
        sockets: vec![socket.clone()],
    };
    let decoded = Response::decode(&response.encode().unwrap()).unwrap();
    assert_eq!(decoded, response);
    assert_eq!(socket.address().as_deref(), Some("10.0.0.1:5555"));
    assert_eq!(socket.transport(), Some("websocket"));
    let relay = socket.relay.as_ref().unwrap();
    assert_eq!(
        (relay.parser.as_deref(), relay.eio),
        (Some("msgpack"), Some(3))
    );
}

#[test]
fn counted_requests_stay_readable_by_node() {
    let join = Request {
        uid: Some("abcdef".into()),
        kind: RequestKind::Join {
            request_id: Some("q1".into()),
            selector: Selector::default(),
            rooms: vec!["r".into()],
        },
    };
    let bytes = join.encode().unwrap();
    assert_eq!(
        bytes,
        br#"{"uid":"abcdef","requestId":"q1","type":2,"opts":{"rooms":[],"except":[]},"rooms":["r"]}"#
    );
    assert_eq!(Request::decode(&bytes).unwrap(), join);
    // Node reads `opts` of a fetch and ignores `relaySkip`.
    let fetch = Request {
        uid: Some("abcdef".into()),
        kind: RequestKind::FetchSockets {
            request_id: "q3".into(),
            selector: Selector {
                rooms: vec!["r".into()],
                except: vec![],
            },
            relay_skip: true,
        },
    };
    let bytes = fetch.encode().unwrap();
    assert_eq!(
        bytes,
        br#"{"uid":"abcdef","requestId":"q3","type":5,"opts":{"rooms":["r"],"except":[]},"relaySkip":true}"#
    );
    assert_eq!(Request::decode(&bytes).unwrap(), fetch);
    let count = Response::Count {
        request_id: "q1".into(),
        count: 3,
    };
    assert_eq!(count.encode().unwrap(), br#"{"requestId":"q1","count":3}"#);
    assert_eq!(Response::decode(&count.encode().unwrap()).unwrap(), count);
    // A fourth element, which Node's `const [uid, packet, opts] = ...` ignores.
    let broadcast = Broadcast {
        uid: "abcdef".into(),
        packet: EventPacket {
            nsp: "/".into(),
            event: "e".into(),
            args: Args::default(),
        },
        opts: BroadcastOpts::default(),
        request_id: Some("q2".into()),
    };
    let bytes = broadcast.encode().unwrap();
    assert_eq!(bytes[0], 0x94);
    assert_eq!(Broadcast::decode(&bytes).unwrap(), broadcast);
}

#[test]
fn lenient_where_node_is() {
    // V08: no nsp, no except, no flags.
    let mut w = super::value::Writer::default();
    w.array(3);
    w.str("x");
    w.map(2);
    w.str("data");
    w.array(2);
    w.str("minimal");
    w.uint(1);
    w.str("type");
    w.uint(2);
    w.map(1);
    w.str("rooms");
    w.array(0);
    let minimal = Broadcast::decode(&w.buf).unwrap();
    assert_eq!(minimal.packet.nsp, "/");
    assert_eq!(minimal.opts, BroadcastOpts::default());
    // A msgpack REMOTE_DISCONNECT (V12) and numeric room names.
    let mut w = super::value::Writer::default();
    w.map(3);
    w.str("type");
    w.uint(4);
    w.str("opts");
    w.json(&json!({"rooms": [42]}), &[]).unwrap();
    w.str("close");
    w.bool(true);
    assert_eq!(
        Request::decode(&w.buf).unwrap().kind,
        RequestKind::Disconnect {
            request_id: None,
            selector: Selector {
                rooms: vec!["42".into()],
                except: vec![]
            },
            close: true
        }
    );
    // The pre-8.0 form of join.
    let legacy =
        Request::decode(br#"{"uid":"u","requestId":"q","type":2,"sid":"s","room":"r"}"#).unwrap();
    assert_eq!(
        legacy.kind,
        RequestKind::LegacyJoin {
            request_id: Some("q".into()),
            sid: "s".into(),
            room: "r".into()
        }
    );
    assert_eq!(
        legacy.encode().unwrap(),
        br#"{"uid":"u","requestId":"q","type":2,"sid":"s","room":"r"}"#
    );
}

#[test]
fn garbage_and_foreign_formats_are_errors() {
    for v in jsonl_file(SOCKETIOXIDE) {
        if v.channel.starts_with("socket.io-request#") {
            assert!(Request::decode(&v.bytes).is_err(), "{}", v.call);
        } else {
            assert!(Response::decode(&v.bytes).is_err(), "{}", v.call);
        }
    }
    let streams = jsonl_file(STREAMS);
    assert!(!streams.is_empty());
    for v in &streams {
        assert!(Broadcast::decode(&v.bytes).is_err(), "{}", v.call);
    }
    let garbage: &[&[u8]] = &[
        b"",
        b"{",
        b"{}",
        b"[]",
        b"{\"type\":99,\"requestId\":\"x\"}",
        b"{\"type\":\"2\"}",
        b"{\"type\":5}",
        b"{\"type\":7,\"requestId\":\"x\",\"packet\":{\"type\":2,\"data\":[]}}",
        b"\x93\xa1u\x83\xa4type\x03\xa4data\x91\xa1e\xa3nsp\xa1/\x80",
        b"\x93\x01\x80\x80",
        b"\x92\xa1u\x82\xa4type\x02\xa4data\x91\x01",
        b"\xff\xff",
    ];
    for bytes in garbage {
        assert!(Broadcast::decode(bytes).is_err(), "{bytes:?}");
        assert!(Request::decode(bytes).is_err(), "{bytes:?}");
        assert!(PythonMessage::decode(bytes).is_err(), "{bytes:?}");
    }
    assert!(matches!(
        Request::decode(b"{\"type\":99}"),
        Err(WireError::UnknownType(99))
    ));
}

#[test]
fn python_messages_decode_and_reencode_byte_for_byte() {
    let vectors = decoded_file(PYTHON);
    assert_eq!(vectors.len(), 17);
    for v in &vectors {
        let message = PythonMessage::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.call));
        assert_eq!(message.encode().unwrap(), v.bytes, "{}", v.call);
    }
    let decode = |label: &str| PythonMessage::decode(&find(&vectors, label).bytes).unwrap();
    let host = Some("b46abb6a74a54c2cac6359219ceb8918".to_owned());
    let emit = |event: &str, values: Vec<Value>, rooms: Option<Vec<&str>>| PythonEmit {
        namespace: "/".into(),
        event: event.into(),
        args: Args {
            values,
            attachments: vec![],
        },
        rooms: rooms.map(|r| r.into_iter().map(str::to_owned).collect()),
        skip_sids: vec![],
        callback: None,
    };
    assert_eq!(
        decode("P01"),
        PythonMessage {
            host_id: host.clone(),
            kind: PythonKind::Emit(emit(
                "hello",
                vec![json!("world")],
                Some(vec!["Nv3Z6n_y3C7yQ0gPAAAB"])
            ))
        }
    );
    assert_eq!(
        decode("P03").kind,
        PythonKind::Emit(emit("hello", vec![json!("world")], None))
    );
    assert_eq!(
        decode("P04").kind,
        PythonKind::Emit(emit(
            "multi",
            vec![json!(1), json!(2.5), json!("three")],
            None
        ))
    );
    let PythonKind::Emit(p05) = decode("P05").kind else {
        panic!()
    };
    assert_eq!(p05.skip_sids, vec!["Nv3Z6n_y3C7yQ0gPAAAB".to_owned()]);
    let PythonKind::Emit(p06) = decode("P06").kind else {
        panic!()
    };
    assert_eq!(p06.rooms, Some(vec!["room1".into(), "room2".into()]));
    let PythonKind::Emit(p07) = decode("P07").kind else {
        panic!()
    };
    assert_eq!(p07.namespace, "/admin");
    let PythonKind::Emit(p09) = decode("P09").kind else {
        panic!()
    };
    assert_eq!(
        p09.args.values,
        vec![json!({"file": {"_placeholder": true, "num": 0}, "name": "x"})]
    );
    assert_eq!(p09.args.attachments, vec![Bytes::from_static(&[1, 2])]);
    let PythonKind::Emit(p08) = decode("P08").kind else {
        panic!()
    };
    assert_eq!(p08.args.attachments, vec![Bytes::from_static(&[1, 2, 3])]);
    assert_eq!(
        decode("P10").kind,
        PythonKind::EnterRoom {
            namespace: "/".into(),
            sid: "Nv3Z6n_y3C7yQ0gPAAAB".into(),
            room: "room3".into()
        }
    );
    assert_eq!(
        decode("P12").kind,
        PythonKind::CloseRoom {
            namespace: "/".into(),
            room: "room1".into()
        }
    );
    assert_eq!(
        decode("P14").kind,
        PythonKind::Disconnect {
            namespace: "/".into(),
            sid: "Nv3Z6n_y3C7yQ0gPAAAB".into()
        }
    );
    let PythonKind::Emit(p15) = decode("P15").kind else {
        panic!()
    };
    assert_eq!(
        p15.callback,
        Some(("Nv3Z6n_y3C7yQ0gPAAAB".into(), "/".into(), json!(1)))
    );
    assert!(matches!(decode("P16").kind, PythonKind::Callback { .. }));
}

#[test]
fn python_older_shapes_are_understood() {
    // 5.14.0-5.15.0 sent one argument bare.
    let bare =
        PythonMessage::decode(br#"{"method": "emit", "event": "e", "data": {"a": 1}}"#).unwrap();
    let PythonKind::Emit(emit) = bare.kind else {
        panic!()
    };
    assert_eq!(emit.args.values, vec![json!({"a": 1})]);
    assert_eq!(
        (emit.namespace.as_str(), emit.rooms, bare.host_id),
        ("/", None, None)
    );
    assert!(matches!(
        PythonMessage::decode(
            br#"{"method": "emit", "event": "e", "data": [[], "%%"], "binary": true}"#
        ),
        Err(WireError::Shape(_))
    ));
    assert!(matches!(
        PythonMessage::decode(br#"{"method": "rpc"}"#),
        Err(WireError::UnknownMethod(_))
    ));
}

#[test]
fn pickled_python_messages_are_refused_undecoded() {
    let vectors = jsonl_file(PICKLE);
    assert_eq!(vectors.len(), 13);
    for v in vectors {
        assert_eq!(
            PythonMessage::decode(&v.bytes),
            Err(WireError::Pickle),
            "{}",
            v.call
        );
    }
}

#[test]
fn relay_broadcasts_show_uid_and_request_id_without_decoding() {
    let mut broadcast = Broadcast {
        uid: "AbC123".into(),
        packet: EventPacket {
            nsp: "/".into(),
            event: "ev".into(),
            args: Args {
                values: vec![json!({"x": "y"}), json!({"_placeholder": true, "num": 0})],
                attachments: vec![Bytes::from_static(&[0xac, 0x94])],
            },
        },
        opts: BroadcastOpts {
            selector: Selector {
                rooms: vec!["Nv3Z6n_y3C7yQ0gPAAAB".into()],
                except: vec![],
            },
            flags: Flags::default(),
        },
        request_id: Some("0123456789ab".into()),
    };
    let bytes = broadcast.encode().unwrap();
    assert_eq!(
        super::node::peek_relay_broadcast(&bytes),
        Some(("AbC123", "0123456789ab"))
    );
    // Node's and the emitter's three-element broadcasts carry no request id.
    broadcast.request_id = None;
    assert_eq!(
        super::node::peek_relay_broadcast(&broadcast.encode().unwrap()),
        None
    );
    let emitter = hex(
        "93a7656d697474657283a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f83a5726f6f6d7391b44e76335a366e5f79334337795130675041414142a5666c61677380a665786365707490",
    );
    assert_eq!(super::node::peek_relay_broadcast(&emitter), None);
    // Truncated or odd input is never read past its end.
    for len in 0..bytes.len() {
        let _ = super::node::peek_relay_broadcast(&bytes[..len]);
    }
    assert_eq!(super::node::peek_relay_broadcast(&[0x94, 0xbf]), None);
}
