//! Property tests: every generated packet of every kind and version survives
//! encode → decode unchanged, and a byte stream decodes the same however it is
//! split into reads.

mod common;

use bytes::BytesMut;
use pigeon_codec::*;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    }
}

fn packet_and_protocol() -> impl Strategy<Value = (Protocol, Packet)> {
    common::protocol().prop_flat_map(|p| (Just(p), common::packet(p)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn encode_then_decode_is_identity((protocol, packet) in packet_and_protocol()) {
        let mut buf = BytesMut::new();
        encode(&packet, protocol, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), encoded_len(&packet, protocol).unwrap());
        let bytes = buf.clone().freeze();
        let decoded = decode(&mut buf, protocol, usize::MAX).unwrap();
        prop_assert_eq!(decoded.as_ref(), Some(&packet));
        prop_assert!(buf.is_empty());
        // And the decoded value encodes to the very same bytes.
        let mut again = BytesMut::new();
        encode(decoded.as_ref().unwrap(), protocol, &mut again).unwrap();
        prop_assert_eq!(again.freeze(), bytes);
    }

    #[test]
    fn any_split_of_a_stream_decodes_the_same(
        (protocol, connect, packets) in common::protocol().prop_flat_map(|p| (
            Just(p),
            common::connect(p),
            proptest::collection::vec(common::packet(p), 0..8),
        )),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut all = vec![Packet::Connect(Box::new(connect))];
        all.extend(packets);
        let mut sender = MqttCodec::new(usize::MAX);
        let mut stream = BytesMut::new();
        for p in &all {
            sender.encode(p, &mut stream).unwrap();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();

        let mut receiver = MqttCodec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut start = 0;
        for cut in cuts {
            buf.extend_from_slice(&stream[start..cut]);
            start = cut;
            while let Some(p) = receiver.decode(&mut buf).unwrap() {
                decoded.push(p);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, all);
        prop_assert_eq!(receiver.protocol(), Some(protocol));
    }

    #[test]
    fn topic_helpers_agree_with_generated_values(filter in common::filter(), topic in common::topic()) {
        prop_assert!(topic::valid_topic_filter(&filter));
        prop_assert!(topic::valid_topic_name(&topic));
        // A topic always matches itself as a filter, and "#" matches all non-$ topics.
        prop_assert!(topic::matches(&topic, &topic));
        prop_assert_eq!(topic::matches("#", &topic), !topic.starts_with('$'));
    }
}
