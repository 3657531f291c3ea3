//! Decodes arbitrary bytes in every protocol version, then checks that every
//! decoded packet re-encodes, decodes to the same value, and re-encodes to the
//! same bytes. Also runs the topic helpers on the input read as text.
//!
//! Run from `pigeon-codec/` (only stable Rust is needed; cargo-fuzz's nightly
//! flags are accepted with RUSTC_BOOTSTRAP):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -O decode -- -max_total_time=600`

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pigeon_codec::{decode, encode, encoded_len, topic, MqttCodec, Packet, Protocol};
use tokio_util::codec::Decoder;

const MAX: usize = 64 * 1024;

fn check_stable(packet: &Packet, protocol: Protocol) {
    let mut first = BytesMut::new();
    encode(packet, protocol, &mut first).expect("a decoded packet must encode");
    assert_eq!(first.len(), encoded_len(packet, protocol).expect("length"));
    let bytes = first.clone();
    let again = decode(&mut first, protocol, usize::MAX)
        .expect("re-encoded bytes must decode")
        .expect("re-encoded bytes are a whole packet");
    assert!(first.is_empty(), "one packet, no leftovers");
    assert_eq!(&again, packet, "decode(encode(p)) == p");
    let mut second = BytesMut::new();
    encode(&again, protocol, &mut second).expect("encode again");
    assert_eq!(bytes, second, "encoding is stable");
}

/// Feeds `data` to a fresh connection codec (version unknown until CONNECT)
/// and checks each packet it yields.
fn drain(data: &[u8]) {
    let mut codec = MqttCodec::new(MAX);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = codec.decode(&mut buf) {
        let protocol = codec.protocol().expect("CONNECT fixes the version");
        check_stable(&packet, protocol);
    }
}

fuzz_target!(|data: &[u8]| {
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        let mut buf = BytesMut::from(data);
        loop {
            match decode(&mut buf, protocol, MAX) {
                Ok(Some(packet)) => check_stable(&packet, protocol),
                Ok(None) => break,
                Err(e) => {
                    let _ = e.reason_code();
                    break;
                }
            }
        }
    }
    drain(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let (filter, name) = text.split_once('\n').unwrap_or((text, text));
        let _ = topic::valid_topic_name(name);
        let _ = topic::parse_shared(filter);
        if topic::valid_topic_filter(filter) && topic::valid_topic_name(name) {
            let _ = topic::matches(filter, name);
        }
    }
});
