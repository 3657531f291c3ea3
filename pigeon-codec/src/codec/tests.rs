//! Round trips of one full packet of each kind in each version, and the framing rules.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::*;
use crate::*;

fn user() -> UserProperties {
    vec![("k".into(), "v".into()), ("k".into(), "v2".into())]
}

/// One packet of every kind, with every field set that `protocol` can carry.
fn samples(protocol: Protocol) -> Vec<Packet> {
    let v5 = protocol.is_v5();
    let mut connect = Connect::new(protocol, "client-1");
    connect.keep_alive = 30;
    connect.clean_start = false;
    connect.username = Some("user".into());
    connect.password = Some(Bytes::from_static(b"pw"));
    connect.will = Some(Will {
        topic: "will/t".into(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: if v5 {
            WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(60),
                content_type: Some("text/plain".into()),
                response_topic: Some("r/t".into()),
                correlation_data: Some(Bytes::from_static(b"c")),
                user_properties: user(),
            }
        } else {
            Default::default()
        },
    });
    if v5 {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(100),
            receive_maximum: Some(10),
            maximum_packet_size: Some(1000),
            topic_alias_maximum: Some(5),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            user_properties: user(),
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(b"data")),
        };
    }
    let mut connack = ConnAck::new(ReasonCode::NotAuthorized, true);
    let mut publish = Publish::new("a/b", QoS::ExactlyOnce, "payload");
    publish.packet_id = 7;
    publish.dup = true;
    publish.retain = true;
    let mut reply = PubReply::new(9);
    let mut subscribe = Subscribe::new(
        3,
        vec![
            SubscribeFilter::new("a/+", QoS::AtLeastOnce),
            SubscribeFilter::new("$share/g/x/#", QoS::ExactlyOnce),
        ],
    );
    let mut suback = SubAck {
        packet_id: 3,
        reason_codes: vec![ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError],
        properties: Default::default(),
    };
    let mut unsubscribe = Unsubscribe {
        packet_id: 4,
        filters: vec!["a/+".into(), "b".into()],
        properties: Default::default(),
    };
    let mut unsuback = UnsubAck {
        packet_id: 4,
        reason_codes: vec![],
        properties: Default::default(),
    };
    let mut disconnect = Disconnect::default();
    if v5 {
        connack.properties.maximum_qos = Some(QoS::AtLeastOnce);
        connack.properties.assigned_client_identifier = Some("x".into());
        connack.properties.user_properties = user();
        connack.properties.wildcard_subscription_available = Some(false);
        publish.properties = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(3),
            topic_alias: Some(2),
            response_topic: Some("resp".into()),
            correlation_data: Some(Bytes::from_static(b"corr")),
            user_properties: user(),
            subscription_identifiers: vec![1, 268_435_455],
            content_type: Some("json".into()),
        }
        .into();
        reply.reason_code = ReasonCode::NoMatchingSubscribers;
        reply.properties.reason_string = Some("none".into());
        subscribe.filters[0].options.no_local = true;
        subscribe.filters[0].options.retain_as_published = true;
        subscribe.filters[1].options.retain_handling = RetainHandling::Never;
        subscribe.properties.subscription_identifier = Some(77);
        suback
            .reason_codes
            .push(ReasonCode::WildcardSubscriptionsNotSupported);
        suback.properties.reason_string = Some("r".into());
        unsubscribe.properties.user_properties = user();
        unsuback.reason_codes = vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted];
        disconnect.reason_code = ReasonCode::SessionTakenOver;
        disconnect.properties.reason_string = Some("bye".into());
    }
    let mut rel = reply.clone();
    if v5 {
        rel.reason_code = ReasonCode::PacketIdentifierNotFound;
    }
    let mut packets = vec![
        Packet::Connect(Box::new(connect)),
        Packet::ConnAck(Box::new(connack)),
        Packet::Publish(publish),
        Packet::PubAck(reply.clone()),
        Packet::PubRec(reply),
        Packet::PubRel(rel.clone()),
        Packet::PubComp(rel),
        Packet::Subscribe(subscribe),
        Packet::SubAck(suback),
        Packet::Unsubscribe(unsubscribe),
        Packet::UnsubAck(unsuback),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(disconnect),
    ];
    if v5 {
        packets.push(Packet::Auth(Box::new(Auth {
            reason_code: ReasonCode::ContinueAuthentication,
            properties: AuthProperties {
                authentication_method: Some("SCRAM".into()),
                authentication_data: Some(Bytes::from_static(b"x")),
                reason_string: None,
                user_properties: user(),
            },
        })));
    }
    packets
}

const ALL: [Protocol; 3] = [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5];

#[test]
fn every_packet_round_trips_in_every_version() {
    for protocol in ALL {
        for packet in samples(protocol) {
            let mut buf = BytesMut::new();
            encode(&packet, protocol, &mut buf).unwrap();
            assert_eq!(buf.len(), encoded_len(&packet, protocol).unwrap());
            let decoded = decode(&mut buf, protocol, DEFAULT_MAX_PACKET_SIZE);
            assert_eq!(decoded, Ok(Some(packet)), "{protocol:?}");
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn partial_input_waits_for_more() {
    let packet = &samples(Protocol::V5)[2];
    let mut full = BytesMut::new();
    encode(packet, Protocol::V5, &mut full).unwrap();
    for cut in 0..full.len() {
        let mut part = BytesMut::from(&full[..cut]);
        assert_eq!(
            decode(&mut part, Protocol::V5, 1 << 20),
            Ok(None),
            "cut {cut}"
        );
        assert_eq!(part.len(), cut, "nothing consumed");
    }
}

#[test]
fn codec_learns_version_from_connect() {
    let mut codec = MqttCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    // A PINGREQ before CONNECT is refused.
    buf.extend_from_slice(&[0xC0, 0x00]);
    assert_eq!(codec.decode(&mut buf), Err(DecodeError::ExpectedConnect));
    buf.clear();
    for p in samples(Protocol::V5) {
        encode(&p, Protocol::V5, &mut buf).unwrap();
    }
    let mut out = Vec::new();
    while let Some(p) = codec.decode(&mut buf).unwrap() {
        out.push(p);
    }
    assert_eq!(out, samples(Protocol::V5));
    assert_eq!(codec.protocol(), Some(Protocol::V5));
}

/// Yields `bytes`, then fails with `error` (or ends, for `None`).
struct Failing {
    bytes: Option<Vec<u8>>,
    error: Option<std::io::ErrorKind>,
}

impl tokio::io::AsyncRead for Failing {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(match (self.bytes.take(), self.error) {
            (Some(bytes), _) => {
                buf.put_slice(&bytes);
                Ok(())
            }
            (None, Some(kind)) => Err(std::io::Error::new(kind, "reset by peer")),
            (None, None) => Ok(()),
        })
    }
}

/// What a FramedRead over `stream` yields after the packets, as the connection sees it.
async fn read_to_end(stream: Failing) -> (usize, Option<DecodeError>) {
    use futures_util::StreamExt;
    let mut framed = tokio_util::codec::FramedRead::new(stream, MqttCodec::new(1 << 20));
    let mut packets = 0;
    while let Some(next) = framed.next().await {
        match next {
            Ok(_) => packets += 1,
            Err(e) => return (packets, Some(e)),
        }
    }
    (packets, None)
}

fn connect_then_half_a_publish() -> Vec<u8> {
    let mut buf = BytesMut::new();
    let connect = Packet::Connect(Box::new(Connect::new(Protocol::V5, "c")));
    encode(&connect, Protocol::V5, &mut buf).unwrap();
    let publish = Packet::Publish(Publish::new("t", QoS::AtMostOnce, "payload"));
    encode(&publish, Protocol::V5, &mut buf).unwrap();
    buf.truncate(buf.len() - 3);
    buf.to_vec()
}

#[tokio::test]
async fn a_reset_socket_is_an_io_error_not_a_malformed_packet() {
    let stream = Failing {
        bytes: Some(connect_then_half_a_publish()),
        error: Some(std::io::ErrorKind::ConnectionReset),
    };
    let (packets, error) = read_to_end(stream).await;
    assert_eq!(packets, 1, "the CONNECT before the reset");
    let error = error.expect("the reset is reported");
    assert!(error.is_io(), "{error:?}");
    assert_eq!(
        error,
        DecodeError::Io {
            kind: std::io::ErrorKind::ConnectionReset,
            message: "reset by peer".into()
        }
    );
}

#[tokio::test]
async fn a_packet_cut_by_the_end_of_the_stream_is_truncated() {
    let stream = Failing {
        bytes: Some(connect_then_half_a_publish()),
        error: None,
    };
    let (packets, error) = read_to_end(stream).await;
    assert_eq!(packets, 1);
    let error = error.expect("the partial PUBLISH is reported");
    assert_eq!(error, DecodeError::Truncated);
    assert!(!error.is_io());
    assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
}

#[tokio::test]
async fn a_clean_end_of_stream_is_no_error() {
    let mut buf = BytesMut::new();
    let connect = Packet::Connect(Box::new(Connect::new(Protocol::V5, "c")));
    encode(&connect, Protocol::V5, &mut buf).unwrap();
    let stream = Failing {
        bytes: Some(buf.to_vec()),
        error: None,
    };
    assert_eq!(read_to_end(stream).await, (1, None));
}

#[test]
fn write_errors_are_io_errors() {
    let e = EncodeError::from(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe"));
    assert!(
        matches!(
            e,
            EncodeError::Io {
                kind: std::io::ErrorKind::BrokenPipe,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn encoder_fixes_version_and_checks_size() {
    let mut codec = MqttCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    let connect = Packet::Connect(Box::new(Connect::new(Protocol::V3_1, "c")));
    codec.encode(&connect, &mut buf).unwrap();
    assert_eq!(codec.protocol(), Some(Protocol::V3_1));
    assert_eq!(
        codec.encode(&Packet::Auth(Box::default()), &mut buf),
        Err(EncodeError::UnsupportedPacket(PacketType::Auth))
    );
    codec.set_max_outgoing(10);
    let big = Packet::Publish(Publish::new("t", QoS::AtMostOnce, vec![0u8; 20]));
    assert_eq!(
        codec.encode(&big, &mut buf),
        Err(EncodeError::PacketTooLarge { size: 25, max: 10 })
    );
}

#[test]
fn huge_announced_size_fails_from_the_header() {
    // 256 MB announced, only the header present.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let err = decode(&mut buf, Protocol::V3_1_1, DEFAULT_MAX_PACKET_SIZE).unwrap_err();
    assert_eq!(
        err,
        DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: DEFAULT_MAX_PACKET_SIZE
        }
    );
    assert!(buf.capacity() < 1024);
}

#[test]
fn publish_payload_shares_the_read_buffer() {
    let mut buf = BytesMut::new();
    let p = Packet::Publish(Publish::new("t/x", QoS::AtMostOnce, vec![7u8; 64]));
    encode(&p, Protocol::V3_1_1, &mut buf).unwrap();
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let Some(Packet::Publish(decoded)) = decode(&mut buf, Protocol::V3_1_1, 1 << 20).unwrap()
    else {
        panic!("not a publish");
    };
    let payload = decoded.payload.as_ptr() as usize;
    let topic = decoded.topic.as_bytes().as_ptr() as usize;
    assert!((start..end).contains(&payload));
    assert!((start..end).contains(&topic));
}

/// A PUBLISH written from borrowed parts is byte for byte the one `encode`
/// writes, in every version, QoS and flag combination, and respects the
/// peer's Maximum Packet Size the same way.
#[test]
fn plain_publish_parts_encode_as_the_packet_does() {
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        for (qos, packet_id) in [
            (QoS::AtMostOnce, 0),
            (QoS::AtLeastOnce, 7),
            (QoS::ExactlyOnce, 65535),
        ] {
            for (dup, retain) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut publish = Publish::new("a/b/c", qos, vec![1u8, 2, 3]);
                (publish.dup, publish.retain, publish.packet_id) = (dup, retain, packet_id);
                let mut expected = BytesMut::new();
                encode(&Packet::Publish(publish.clone()), protocol, &mut expected).unwrap();
                let parts = PlainPublish {
                    topic: &publish.topic,
                    payload: &publish.payload,
                    qos,
                    dup,
                    retain,
                    packet_id,
                };
                let mut codec = MqttCodec::with_protocol(protocol, 1 << 20);
                let mut got = BytesMut::new();
                codec.encode_plain_publish(&parts, &mut got).unwrap();
                assert_eq!(
                    got, expected,
                    "{protocol:?} {qos:?} dup={dup} retain={retain}"
                );
                codec.set_max_outgoing(expected.len() - 1);
                let mut refused = BytesMut::new();
                assert!(matches!(
                    codec.encode_plain_publish(&parts, &mut refused),
                    Err(EncodeError::PacketTooLarge { .. })
                ));
                assert!(refused.is_empty(), "nothing written when too large");
            }
        }
    }
    let zero = PlainPublish {
        topic: "t",
        payload: b"",
        qos: QoS::AtLeastOnce,
        dup: false,
        retain: false,
        packet_id: 0,
    };
    let codec = MqttCodec::with_protocol(Protocol::V3_1_1, 1024);
    assert_eq!(
        codec.encode_plain_publish(&zero, &mut BytesMut::new()),
        Err(EncodeError::ZeroPacketId)
    );
}

/// A PUBLISH moves from decoder to router to queue to encoder: it stays small
/// (216 bytes before its properties became one word; `Packet` was 224
/// before CONNACK and AUTH were boxed).
#[test]
#[cfg(target_pointer_width = "64")]
fn a_publish_stays_small() {
    let publish = std::mem::size_of::<Publish>();
    assert!(publish <= 80, "Publish is {publish} bytes");
    assert_eq!(std::mem::size_of::<BoxedPublishProperties>(), 8);
    let packet = std::mem::size_of::<Packet>();
    println!("Publish {publish} bytes, Packet {packet} bytes");
    assert!(packet <= 88, "Packet is {packet} bytes");
}

#[test]
fn publish_properties_are_allocated_only_when_present() {
    let decode_one = |publish: &Publish| {
        let mut buf = BytesMut::new();
        encode(&Packet::Publish(publish.clone()), Protocol::V5, &mut buf).unwrap();
        match decode(&mut buf, Protocol::V5, 1024).unwrap() {
            Some(Packet::Publish(p)) => p,
            other => panic!("not a PUBLISH: {other:?}"),
        }
    };
    let plain = Publish::new("a/b", QoS::AtLeastOnce, "x");
    let mut plain = plain;
    plain.packet_id = 1;
    let decoded = decode_one(&plain);
    assert!(!decoded.properties.is_allocated());
    assert_eq!(decoded, plain);

    let mut rich = plain.clone();
    rich.properties.make_mut().message_expiry_interval = Some(9);
    let decoded = decode_one(&rich);
    assert!(decoded.properties.is_allocated());
    assert_eq!(decoded.properties.message_expiry_interval, Some(9));
    assert_eq!(decoded, rich);
}

#[test]
fn emptied_publish_properties_compare_as_none_and_shrink() {
    let mut props = BoxedPublishProperties::from(PublishProperties {
        topic_alias: Some(3),
        ..Default::default()
    });
    assert!(props.is_allocated() && !props.is_empty());
    if let Some(p) = props.get_mut() {
        p.topic_alias = None;
    }
    assert!(props.is_empty());
    assert_eq!(props, BoxedPublishProperties::default());
    props.shrink();
    assert!(!props.is_allocated());
    assert!(!BoxedPublishProperties::from(PublishProperties::default()).is_allocated());
}

/// The four bytes written for a bare acknowledgement are what sizing and
/// writing it field by field gives, in every version, for every code and
/// with or without properties (only the bare ones take the short way).
#[test]
fn bare_acknowledgements_are_written_as_the_general_encoder_writes_them() {
    let mut with_text = PubReply::with_reason(7, ReasonCode::Success);
    with_text.properties.reason_string = Some("why".into());
    let replies = [
        PubReply::new(1),
        PubReply::new(0xBEEF),
        PubReply::with_reason(2, ReasonCode::NoMatchingSubscribers),
        PubReply::with_reason(3, ReasonCode::QuotaExceeded),
        PubReply::with_reason(4, ReasonCode::PacketIdentifierNotFound),
        with_text,
    ];
    let wraps: [fn(PubReply) -> Packet; 4] = [
        Packet::PubAck,
        Packet::PubRec,
        Packet::PubRel,
        Packet::PubComp,
    ];
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        for wrap in wraps {
            for reply in &replies {
                let packet = wrap(reply.clone());
                let (mut fast, mut general) = (BytesMut::new(), BytesMut::new());
                let fast = encode_limited(&packet, protocol, usize::MAX, &mut fast).map(|()| fast);
                let general =
                    encode_sized(&packet, protocol, usize::MAX, &mut general).map(|()| general);
                // A code the packet cannot carry in 5.0 fails either way.
                assert_eq!(
                    format!("{fast:?}"),
                    format!("{general:?}"),
                    "{packet:?} in {protocol:?}"
                );
            }
        }
    }
    let kinds = [
        PacketType::PubAck,
        PacketType::PubRec,
        PacketType::PubRel,
        PacketType::PubComp,
    ];
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        let mut codec = MqttCodec::new(1024);
        codec.set_protocol(protocol);
        for (kind, wrap) in kinds.into_iter().zip(wraps) {
            let (mut bare, mut general) = (BytesMut::new(), BytesMut::new());
            codec.encode_bare_ack(kind, 0xBEEF, &mut bare).unwrap();
            let reply = wrap(PubReply::new(0xBEEF));
            encode_sized(&reply, protocol, usize::MAX, &mut general).unwrap();
            assert_eq!(bare, general, "{kind:?} in {protocol:?}");
        }
    }
    let codec = MqttCodec::new(1024);
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode_bare_ack(PacketType::Publish, 1, &mut out),
        Err(EncodeError::UnsupportedPacket(PacketType::Publish))
    ));
    encode(
        &Packet::PubRel(PubReply::new(0x1234)),
        Protocol::V3_1_1,
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[..], [0x62, 0x02, 0x12, 0x34]);
    let too_small = encode_limited(&Packet::PubAck(PubReply::new(1)), Protocol::V5, 3, &mut out);
    assert!(matches!(
        too_small,
        Err(EncodeError::PacketTooLarge { size: 4, max: 3 })
    ));
}
