//! Decode and encode throughput of Pigeon's codec beside `mqttbytes`, in the
//! same run: a 64-byte-payload QoS 0 PUBLISH (MQTT 3.1.1) and an MQTT 5.0
//! CONNECT with properties and a will. Run with `cargo bench -p pigeon-codec`.
//!
//! Decoding reads a buffer holding many packets back to back (as a socket read
//! would), so per-packet buffer setup is not measured; encoding appends packets
//! to a pre-reserved buffer that is cleared every batch.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqttbytes::{v4, v5};
use pigeon_codec::{
    decode, encode, Connect, ConnectProperties, Packet, Protocol, Publish, QoS, Will,
    WillProperties,
};

const BATCH: usize = 10_000;
const ROUNDS: usize = 40;
const MAX: usize = 1 << 20;

/// Best packets/second of each side over `ROUNDS` batches of `BATCH` calls. The
/// two sides alternate batch by batch so that both see the same machine load.
fn measure(mut ours: impl FnMut(), mut theirs: impl FnMut()) -> (f64, f64) {
    let (mut best_ours, mut best_theirs) = (Duration::MAX, Duration::MAX);
    ours(); // warm-up
    theirs();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        ours();
        best_ours = best_ours.min(start.elapsed());
        let start = Instant::now();
        theirs();
        best_theirs = best_theirs.min(start.elapsed());
    }
    (
        BATCH as f64 / best_ours.as_secs_f64(),
        BATCH as f64 / best_theirs.as_secs_f64(),
    )
}

fn stream(one: &[u8]) -> BytesMut {
    let mut all = BytesMut::with_capacity(one.len() * BATCH);
    for _ in 0..BATCH {
        all.extend_from_slice(one);
    }
    all
}

fn row(name: &str, pigeon: f64, mqttbytes: f64) {
    println!(
        "| {name:<28} | {:>14.0} | {:>14.0} | {:>6.2}x |",
        pigeon,
        mqttbytes,
        pigeon / mqttbytes
    );
}

/// Decode and encode throughput of `ours` (whose encoding is `one`) beside
/// mqttbytes' `read_theirs` / `write_theirs` on the same bytes.
fn compare(
    label: &str,
    ours: &Packet,
    protocol: Protocol,
    one: &[u8],
    mut read_theirs: impl FnMut(&mut BytesMut),
    mut write_theirs: impl FnMut(&mut BytesMut),
) -> [(String, f64, f64); 2] {
    let input = stream(one);
    let (decode_ours, decode_theirs) = measure(
        || {
            let mut buf = input.clone();
            for _ in 0..BATCH {
                black_box(decode(&mut buf, protocol, MAX).unwrap());
            }
        },
        || {
            let mut buf = input.clone();
            for _ in 0..BATCH {
                read_theirs(&mut buf);
            }
        },
    );
    let mut out = BytesMut::with_capacity(one.len() * BATCH);
    let mut out2 = out.clone();
    let (encode_ours, encode_theirs) = measure(
        || {
            out.clear();
            for _ in 0..BATCH {
                encode(black_box(ours), protocol, &mut out).unwrap();
            }
        },
        || {
            out2.clear();
            for _ in 0..BATCH {
                write_theirs(&mut out2);
            }
        },
    );
    [
        (format!("decode {label}"), decode_ours, decode_theirs),
        (format!("encode {label}"), encode_ours, encode_theirs),
    ]
}

fn publish_bench() -> [(String, f64, f64); 2] {
    let payload = Bytes::from(vec![0xA5u8; 64]);
    let ours = Packet::Publish(Publish::new(
        "sensors/device-42/temperature",
        QoS::AtMostOnce,
        payload.clone(),
    ));
    let theirs = v4::Publish::from_bytes(
        "sensors/device-42/temperature",
        mqttbytes::QoS::AtMostOnce,
        payload,
    );

    let mut one = BytesMut::new();
    encode(&ours, Protocol::V3_1_1, &mut one).unwrap();
    let mut check = BytesMut::new();
    theirs.write(&mut check).unwrap();
    assert_eq!(one, check, "both write the same bytes");
    compare(
        "PUBLISH QoS0 64B v3.1.1",
        &ours,
        Protocol::V3_1_1,
        &one,
        |buf| {
            black_box(v4::read(buf, MAX).unwrap());
        },
        |out| black_box(&theirs).write(out).map(drop).unwrap(),
    )
}

fn connect_bench() -> [(String, f64, f64); 2] {
    let mut ours = Connect::new(Protocol::V5, "bench-client-0001");
    ours.keep_alive = 30;
    ours.username = Some("user".into());
    ours.password = Some(Bytes::from_static(b"secret"));
    ours.properties = ConnectProperties {
        session_expiry_interval: Some(3600),
        receive_maximum: Some(100),
        maximum_packet_size: Some(1 << 20),
        topic_alias_maximum: Some(10),
        request_response_information: Some(true),
        request_problem_information: Some(true),
        user_properties: vec![
            ("region".into(), "eu-west".into()),
            ("app".into(), "bench".into()),
        ],
        authentication_method: None,
        authentication_data: None,
    };
    ours.will = Some(Will {
        topic: "clients/bench-client-0001/status".into(),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: WillProperties {
            will_delay_interval: Some(5),
            content_type: Some("text/plain".into()),
            ..Default::default()
        },
    });
    let ours = Packet::Connect(Box::new(ours));

    let mut one = BytesMut::new();
    encode(&ours, Protocol::V5, &mut one).unwrap();
    // mqttbytes' own value, obtained by decoding Pigeon's bytes (the differential
    // tests check that they mean the same).
    let theirs = match v5::read(&mut one.clone(), MAX).unwrap() {
        v5::Packet::Connect(c) => c,
        other => panic!("{other:?}"),
    };
    let mut check = BytesMut::new();
    theirs.write(&mut check).unwrap();
    assert_eq!(
        check.len(),
        one.len(),
        "both write packets of the same size"
    );
    compare(
        "CONNECT v5 + props",
        &ours,
        Protocol::V5,
        &one,
        |buf| {
            black_box(v5::read(buf, MAX).unwrap());
        },
        |out| black_box(&theirs).write(out).map(drop).unwrap(),
    )
}

fn main() {
    // `cargo test --benches` runs this binary too; keep that quick.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    println!(
        "| {:<28} | {:>14} | {:>14} | {:>7} |",
        "packets/second (best of 40)", "pigeon-codec", "mqttbytes 0.6", "ratio"
    );
    println!("|{:-<30}|{:-<16}|{:-<16}|{:-<9}|", "", "", "", "");
    for (name, ours, theirs) in publish_bench().into_iter().chain(connect_bench()) {
        row(&name, ours, theirs);
    }
}
