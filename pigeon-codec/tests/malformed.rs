//! One test per validation rule: hand-made bad bytes and the exact error (and
//! the MQTT 5.0 reason code a broker would send for it).

use bytes::BytesMut;
use pigeon_codec::*;
use tokio_util::codec::Decoder;

use DecodeError as E;
use Protocol::{V3_1, V3_1_1, V5};

/// A whole packet: first byte, remaining length, body.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed string or binary field.
fn s(x: impl AsRef<[u8]>) -> Vec<u8> {
    let x = x.as_ref();
    let mut out = (x.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(x);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn dec(protocol: Protocol, bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decode(
        &mut BytesMut::from(bytes),
        protocol,
        DEFAULT_MAX_PACKET_SIZE,
    )
}

fn err(protocol: Protocol, bytes: &[u8]) -> DecodeError {
    match dec(protocol, bytes) {
        Err(e) => e,
        Ok(p) => panic!("{protocol:?} accepted {bytes:02x?} as {p:?}"),
    }
}

/// A v5 PUBLISH (QoS 0) to topic "t" with the given property block contents.
fn publish_v5_props(props: &[u8]) -> Vec<u8> {
    frame(
        0x30,
        &cat(&[&s("t"), &[props.len() as u8], props, b"payload"]),
    )
}

/// A v5 SUBSCRIBE (id 1) with the given property block contents and one entry.
fn subscribe_v5(props: &[u8], filter: &str, options: u8) -> Vec<u8> {
    frame(
        0x82,
        &cat(&[&[0, 1, props.len() as u8], props, &s(filter), &[options]]),
    )
}

/// A CONNECT with the given protocol name, level, flags and the rest of the body.
fn connect(name: &str, level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    frame(0x10, &cat(&[&s(name), &[level, flags, 0, 60], rest]))
}

#[test]
fn reserved_packet_type_0() {
    assert_eq!(err(V3_1_1, &[0x00, 0x00]), E::ReservedPacketType);
    assert_eq!(
        E::ReservedPacketType.reason_code(),
        ReasonCode::MalformedPacket
    );
}

#[test]
fn reserved_fixed_header_flags() {
    // PUBREL, SUBSCRIBE and UNSUBSCRIBE must carry 0b0010; the others 0.
    let cases = [
        (0x10, PacketType::Connect, 0x02),
        (0x20, PacketType::ConnAck, 0x01),
        (0x40, PacketType::PubAck, 0x02),
        (0x50, PacketType::PubRec, 0x08),
        (0x60, PacketType::PubRel, 0x00),
        (0x70, PacketType::PubComp, 0x02),
        (0x80, PacketType::Subscribe, 0x00),
        (0x90, PacketType::SubAck, 0x02),
        (0xA0, PacketType::Unsubscribe, 0x03),
        (0xB0, PacketType::UnsubAck, 0x02),
        (0xC0, PacketType::PingReq, 0x01),
        (0xD0, PacketType::PingResp, 0x04),
        (0xE0, PacketType::Disconnect, 0x02),
        (0xF0, PacketType::Auth, 0x01),
    ];
    for (kind, packet, flags) in cases {
        assert_eq!(
            err(V5, &[kind | flags, 0x00]),
            E::InvalidFlags { packet, flags },
            "{packet:?}"
        );
    }
}

#[test]
fn remaining_length_longer_than_4_bytes() {
    let e = err(V3_1_1, &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    assert_eq!(e, E::MalformedRemainingLength);
    // Refused as soon as the 4th continuation byte arrives.
    assert_eq!(
        err(V3_1_1, &[0x30, 0x80, 0x80, 0x80, 0x80]),
        E::MalformedRemainingLength
    );
    // And a non-minimal encoding (0 in two bytes) is malformed too [MQTT-1.5.5-1].
    assert_eq!(
        err(V3_1_1, &[0xC0, 0x80, 0x00]),
        E::MalformedRemainingLength
    );
}

#[test]
fn packet_too_large_is_refused_from_the_header_alone() {
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x80, 0x01][..]); // 2 MiB announced
    let e = decode(&mut buf, V3_1_1, DEFAULT_MAX_PACKET_SIZE).unwrap_err();
    assert_eq!(
        e,
        E::PacketTooLarge {
            size: 5 + 2_097_152,
            max: DEFAULT_MAX_PACKET_SIZE
        }
    );
    assert_eq!(e.reason_code(), ReasonCode::PacketTooLarge);
    // 256 MB through the connection codec, also with only the header buffered.
    let mut codec = MqttCodec::with_protocol(V5, 1024);
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(E::PacketTooLarge { .. })
    ));
    assert!(
        buf.capacity() < 4096,
        "no allocation for the announced body"
    );
    // The limit counts the fixed header: 11 bytes of body + 2 of header.
    let p = frame(0x30, &cat(&[&s("t"), b"12345678"]));
    let e = decode(&mut BytesMut::from(&p[..]), V3_1_1, 12).unwrap_err();
    assert_eq!(e, E::PacketTooLarge { size: 13, max: 12 });
    assert!(decode(&mut BytesMut::from(&p[..]), V3_1_1, 13)
        .unwrap()
        .is_some());
}

#[test]
fn truncated_fields() {
    // Topic length 5 but only 1 byte follows.
    assert_eq!(err(V3_1_1, &frame(0x30, &[0x00, 0x05, b'a'])), E::Truncated);
    // CONNACK with one byte.
    assert_eq!(err(V3_1_1, &frame(0x20, &[0x00])), E::Truncated);
    // A v5 property block longer than the packet.
    assert_eq!(
        err(V5, &frame(0x30, &cat(&[&s("t"), &[0x05, 0x01]]))),
        E::Truncated
    );
    // A property value crossing the end of its block.
    assert_eq!(
        err(
            V5,
            &frame(0x30, &cat(&[&s("t"), &[0x02, 0x02, 0x00], b"xyz"]))
        ),
        E::Truncated
    );
    // Missing packet id.
    assert_eq!(err(V3_1_1, &frame(0x40, &[0x01])), E::Truncated);
}

#[test]
fn trailing_bytes() {
    assert_eq!(err(V3_1_1, &frame(0xC0, &[0x00])), E::TrailingBytes(1));
    assert_eq!(
        err(V3_1_1, &frame(0xD0, &[0x00, 0x00])),
        E::TrailingBytes(2)
    );
    assert_eq!(err(V3_1_1, &frame(0xE0, &[0x00])), E::TrailingBytes(1));
    // 3.x acks have no reason code: a v5-style PUBACK is refused.
    assert_eq!(
        err(V3_1_1, &frame(0x40, &[0x00, 0x01, 0x10])),
        E::TrailingBytes(1)
    );
    // 3.x UNSUBACK has no payload.
    assert_eq!(
        err(V3_1, &frame(0xB0, &[0x00, 0x01, 0x00])),
        E::TrailingBytes(1)
    );
    // CONNECT with junk after the client id.
    let c = connect("MQTT", 4, 0x02, &cat(&[&s("id"), b"x"]));
    assert_eq!(err(V3_1_1, &c), E::TrailingBytes(1));
}

#[test]
fn ill_formed_utf8_and_surrogates() {
    assert_eq!(err(V3_1_1, &frame(0x30, &s([0xC3, 0x28]))), E::InvalidUtf8);
    // U+D800 encoded in UTF-8 form (CESU): a surrogate, not a scalar value.
    assert_eq!(
        err(V3_1_1, &frame(0x30, &s([0xED, 0xA0, 0x80]))),
        E::InvalidUtf8
    );
    // Overlong encoding of '/'.
    assert_eq!(err(V3_1_1, &frame(0x30, &s([0xC0, 0xAF]))), E::InvalidUtf8);
    // In a client id and in a user property too.
    let c = connect("MQTT", 4, 0x02, &s([0xFF]));
    assert_eq!(err(V3_1_1, &c), E::InvalidUtf8);
    let user = cat(&[&[0x26], &s("k"), &s([0xED, 0xBF, 0xBF])]);
    assert_eq!(err(V5, &publish_v5_props(&user)), E::InvalidUtf8);
    assert_eq!(E::InvalidUtf8.reason_code(), ReasonCode::MalformedPacket);
}

#[test]
fn null_character_in_strings() {
    assert_eq!(err(V3_1_1, &frame(0x30, &s("a\0b"))), E::NullCharacter);
    let c = connect("MQTT", 4, 0x02, &s("id\0"));
    assert_eq!(err(V3_1_1, &c), E::NullCharacter);
    let sub = frame(0x82, &cat(&[&[0, 1], &s("a/\0"), &[0]]));
    assert_eq!(err(V3_1_1, &sub), E::NullCharacter);
}

#[test]
fn control_characters_are_accepted() {
    // The spec says senders SHOULD NOT use them; refusing would break clients.
    let p = dec(V3_1_1, &frame(0x30, &cat(&[&s("a\u{1}b\u{7f}"), b"x"]))).unwrap();
    assert!(matches!(p, Some(Packet::Publish(p)) if &*p.topic == "a\u{1}b\u{7f}"));
}

#[test]
fn wildcards_in_topic_names() {
    for t in ["a/+", "#", "a/b#", "+"] {
        assert_eq!(
            err(V3_1_1, &frame(0x30, &s(t))),
            E::InvalidTopicName(t.into())
        );
    }
    // In a will topic and a response topic as well.
    let c = connect("MQTT", 4, 0x06, &cat(&[&s("id"), &s("w/#"), &s("bye")]));
    assert_eq!(err(V3_1_1, &c), E::InvalidTopicName("w/#".into()));
    let rt = cat(&[&[0x08], &s("r/+")]);
    assert_eq!(
        err(V5, &publish_v5_props(&rt)),
        E::InvalidTopicName("r/+".into())
    );
    assert_eq!(
        E::InvalidTopicName(String::new()).reason_code(),
        ReasonCode::TopicNameInvalid
    );
}

#[test]
fn too_many_topic_levels() {
    let deep = vec!["a"; topic::MAX_TOPIC_LEVELS + 1].join("/");
    assert_eq!(
        err(V3_1_1, &frame(0x30, &s(&deep))),
        E::InvalidTopicName(deep.clone())
    );
    let ok = vec!["a"; topic::MAX_TOPIC_LEVELS].join("/");
    assert!(dec(V3_1_1, &frame(0x30, &s(&ok))).unwrap().is_some());
    let deep_filter = vec!["+"; topic::MAX_TOPIC_LEVELS + 1].join("/");
    let sub = frame(0x82, &cat(&[&[0, 1], &s(&deep_filter), &[0]]));
    assert_eq!(err(V3_1_1, &sub), E::InvalidTopicFilter(deep_filter));
}

#[test]
fn empty_topic_name() {
    assert_eq!(err(V3_1_1, &frame(0x30, &s(""))), E::EmptyTopicWithoutAlias);
    let no_alias = frame(0x30, &cat(&[&s(""), &[0], b"x"]));
    assert_eq!(err(V5, &no_alias), E::EmptyTopicWithoutAlias);
    assert_eq!(
        E::EmptyTopicWithoutAlias.reason_code(),
        ReasonCode::ProtocolError
    );
    // With a topic alias, an empty topic is fine in 5.0.
    let aliased = frame(0x30, &cat(&[&s(""), &[3, 0x23, 0, 1], b"x"]));
    assert!(dec(V5, &aliased).unwrap().is_some());
}

#[test]
fn ill_formed_topic_filters() {
    for f in [
        "",
        "a/#/b",
        "a#",
        "a/b+",
        "+a",
        "$share/g",
        "$share//a",
        "$share/g+/a",
        "$share/g/",
    ] {
        let sub = frame(0x82, &cat(&[&[0, 1], &s(f), &[1]]));
        assert_eq!(
            err(V3_1_1, &sub),
            E::InvalidTopicFilter(f.into()),
            "SUBSCRIBE {f:?}"
        );
        let unsub = frame(0xA2, &cat(&[&[0, 1], &s(f)]));
        assert_eq!(
            err(V3_1_1, &unsub),
            E::InvalidTopicFilter(f.into()),
            "UNSUBSCRIBE {f:?}"
        );
    }
    assert_eq!(
        E::InvalidTopicFilter(String::new()).reason_code(),
        ReasonCode::TopicFilterInvalid
    );
}

#[test]
fn packet_identifier_zero() {
    let zero = [
        frame(0x32, &cat(&[&s("t"), &[0, 0]])),
        frame(0x34, &cat(&[&s("t"), &[0, 0]])),
        frame(0x40, &[0, 0]),
        frame(0x50, &[0, 0]),
        frame(0x62, &[0, 0]),
        frame(0x70, &[0, 0]),
        frame(0x82, &cat(&[&[0, 0], &s("a"), &[0]])),
        frame(0x90, &[0, 0, 0]),
        frame(0xA2, &cat(&[&[0, 0], &s("a")])),
        frame(0xB0, &[0, 0]),
    ];
    for p in zero {
        assert_eq!(err(V3_1_1, &p), E::ZeroPacketId, "{p:02x?}");
    }
    assert_eq!(E::ZeroPacketId.reason_code(), ReasonCode::ProtocolError);
    // QoS 0 has no packet id at all: the two bytes are payload.
    assert!(dec(V3_1_1, &frame(0x30, &cat(&[&s("t"), &[0, 0]])))
        .unwrap()
        .is_some());
}

#[test]
fn qos_3() {
    assert_eq!(
        err(V3_1_1, &frame(0x36, &cat(&[&s("t"), &[0, 1]]))),
        E::InvalidQoS(3)
    );
    let sub = frame(0x82, &cat(&[&[0, 1], &s("a"), &[3]]));
    assert_eq!(err(V3_1_1, &sub), E::InvalidQoS(3));
    assert_eq!(err(V5, &subscribe_v5(&[], "a", 3)), E::InvalidQoS(3));
    // Will QoS 3 (flags: will + qos 3).
    let c = connect("MQTT", 4, 0x1C, &cat(&[&s("id"), &s("w"), &s("x")]));
    assert_eq!(err(V3_1_1, &c), E::InvalidQoS(3));
}

#[test]
fn dup_on_qos_0() {
    assert_eq!(err(V3_1_1, &frame(0x38, &s("t"))), E::DupWithQoS0);
    assert_eq!(E::DupWithQoS0.reason_code(), ReasonCode::ProtocolError);
}

#[test]
fn property_not_allowed_on_packet() {
    // Session Expiry Interval on PUBLISH.
    let p = publish_v5_props(&[0x11, 0, 0, 0, 1]);
    assert_eq!(
        err(V5, &p),
        E::PropertyNotAllowed {
            packet: PacketType::Publish,
            property: 0x11
        }
    );
    // Topic Alias on SUBSCRIBE.
    assert_eq!(
        err(V5, &subscribe_v5(&[0x23, 0, 1], "a", 0)),
        E::PropertyNotAllowed {
            packet: PacketType::Subscribe,
            property: 0x23
        }
    );
    // Will Delay Interval among CONNECT's own properties.
    let c = connect("MQTT", 5, 0x02, &cat(&[&[5, 0x18, 0, 0, 0, 1], &s("id")]));
    assert_eq!(
        err(V5, &c),
        E::PropertyNotAllowed {
            packet: PacketType::Connect,
            property: 0x18
        }
    );
    assert_eq!(
        E::PropertyNotAllowed {
            packet: PacketType::Publish,
            property: 1
        }
        .reason_code(),
        ReasonCode::ProtocolError
    );
}

#[test]
fn unknown_property() {
    assert_eq!(
        err(V5, &publish_v5_props(&[0x7F, 0])),
        E::UnknownProperty(0x7F)
    );
    assert_eq!(
        err(V5, &publish_v5_props(&[0x04, 0])),
        E::UnknownProperty(0x04)
    );
}

#[test]
fn duplicated_single_valued_property() {
    let twice = [0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
    assert_eq!(
        err(V5, &publish_v5_props(&twice)),
        E::DuplicateProperty(0x02)
    );
    // A SUBSCRIBE carries at most one subscription identifier.
    assert_eq!(
        err(V5, &subscribe_v5(&[0x0B, 1, 0x0B, 2], "a", 0)),
        E::DuplicateProperty(0x0B)
    );
    assert_eq!(
        E::DuplicateProperty(2).reason_code(),
        ReasonCode::ProtocolError
    );
}

#[test]
fn repeatable_properties_keep_order_and_duplicates() {
    let props = cat(&[
        &[0x26],
        &s("k"),
        &s("1"),
        &[0x0B, 5],
        &[0x26],
        &s("k"),
        &s("1"),
        &[0x0B, 3],
    ]);
    let Some(Packet::Publish(p)) = dec(V5, &publish_v5_props(&props)).unwrap() else {
        panic!("not a publish");
    };
    assert_eq!(
        p.properties.user_properties,
        vec![("k".into(), "1".into()), ("k".into(), "1".into())]
    );
    assert_eq!(p.properties.subscription_identifiers, vec![5, 3]);
}

#[test]
fn invalid_property_values() {
    let cases: [(Vec<u8>, u8); 4] = [
        (publish_v5_props(&[0x0B, 0]), 0x0B), // subscription identifier 0
        (publish_v5_props(&[0x23, 0, 0]), 0x23), // topic alias 0
        (publish_v5_props(&[0x01, 2]), 0x01), // payload format indicator 2
        (subscribe_v5(&[0x0B, 0], "a", 0), 0x0B), // subscription identifier 0
    ];
    for (bytes, id) in cases {
        assert_eq!(err(V5, &bytes), E::InvalidPropertyValue(id));
    }
    // Receive Maximum 0 in CONNECT, Maximum QoS 2 in CONNACK.
    let c = connect("MQTT", 5, 0x02, &cat(&[&[3, 0x21, 0, 0], &s("id")]));
    assert_eq!(err(V5, &c), E::InvalidPropertyValue(0x21));
    assert_eq!(
        err(V5, &frame(0x20, &[0, 0, 2, 0x24, 2])),
        E::InvalidPropertyValue(0x24)
    );
    // Authentication Data without Authentication Method.
    let c = connect("MQTT", 5, 0x02, &cat(&[&[4, 0x16, 0, 1, 9], &s("id")]));
    assert_eq!(err(V5, &c), E::InvalidPropertyValue(0x16));
    assert_eq!(
        E::InvalidPropertyValue(1).reason_code(),
        ReasonCode::ProtocolError
    );
}

#[test]
fn subscribe_and_unsubscribe_without_topics() {
    assert_eq!(
        err(V3_1_1, &frame(0x82, &[0, 1])),
        E::NoTopics(PacketType::Subscribe)
    );
    assert_eq!(
        err(V3_1_1, &frame(0xA2, &[0, 1])),
        E::NoTopics(PacketType::Unsubscribe)
    );
    assert_eq!(
        err(V5, &frame(0x82, &[0, 1, 0])),
        E::NoTopics(PacketType::Subscribe)
    );
    assert_eq!(
        err(V5, &frame(0xA2, &[0, 1, 0])),
        E::NoTopics(PacketType::Unsubscribe)
    );
    assert_eq!(
        E::NoTopics(PacketType::Subscribe).reason_code(),
        ReasonCode::ProtocolError
    );
}

#[test]
fn subscription_options_reserved_bits_and_retain_handling_3() {
    assert_eq!(
        err(V5, &subscribe_v5(&[], "a", 0x40)),
        E::InvalidSubscriptionOptions(0x40)
    );
    assert_eq!(
        err(V5, &subscribe_v5(&[], "a", 0x31)),
        E::InvalidSubscriptionOptions(0x31)
    );
    // In 3.x only the QoS bits exist.
    let sub = frame(0x82, &cat(&[&[0, 1], &s("a"), &[0x04]]));
    assert_eq!(err(V3_1_1, &sub), E::InvalidSubscriptionOptions(0x04));
    // And all of them decode in 5.0.
    let Some(Packet::Subscribe(sub)) = dec(V5, &subscribe_v5(&[], "a", 0x2E)).unwrap() else {
        panic!()
    };
    let o = sub.filters[0].options;
    assert_eq!(
        (o.qos, o.no_local, o.retain_as_published, o.retain_handling),
        (QoS::ExactlyOnce, true, true, RetainHandling::Never)
    );
}

#[test]
fn no_local_on_shared_subscription() {
    assert_eq!(
        err(V5, &subscribe_v5(&[], "$share/g/a", 0x04)),
        E::NoLocalOnSharedSubscription
    );
}

#[test]
fn connect_reserved_flag() {
    let c = connect("MQTT", 4, 0x03, &s("id"));
    assert_eq!(err(V3_1_1, &c), E::ReservedConnectFlag);
}

#[test]
fn will_flag_rules() {
    // Will QoS without the will flag.
    let c = connect("MQTT", 4, 0x0A, &s("id"));
    assert_eq!(err(V3_1_1, &c), E::InvalidWillFlags);
    // Will retain without the will flag.
    let c = connect("MQTT", 4, 0x22, &s("id"));
    assert_eq!(err(V3_1_1, &c), E::InvalidWillFlags);
    // Will flag set but no will topic/payload in the payload.
    let c = connect("MQTT", 4, 0x06, &s("id"));
    assert_eq!(err(V3_1_1, &c), E::Truncated);
}

#[test]
fn password_without_username() {
    let body = cat(&[&s("id"), &s("pw")]);
    assert_eq!(
        err(V3_1_1, &connect("MQTT", 4, 0x42, &body)),
        E::PasswordWithoutUsername
    );
    // 5.0 allows a password alone, and so does 3.1.
    let v5 = connect("MQTT", 5, 0x42, &cat(&[&[0], &body]));
    assert!(
        matches!(dec(V5, &v5), Ok(Some(Packet::Connect(c))) if c.username.is_none() && c.password.is_some())
    );
    assert!(dec(V3_1, &connect("MQIsdp", 3, 0x42, &body))
        .unwrap()
        .is_some());
}

#[test]
fn auth_is_v5_only() {
    assert_eq!(
        err(V3_1_1, &[0xF0, 0x00]),
        E::UnexpectedPacket(PacketType::Auth)
    );
    assert_eq!(
        err(V3_1, &[0xF0, 0x00]),
        E::UnexpectedPacket(PacketType::Auth)
    );
    assert_eq!(
        dec(V5, &[0xF0, 0x00]),
        Ok(Some(Packet::Auth(Box::default())))
    );
}

#[test]
fn properties_are_not_read_in_3x() {
    // A v5 PUBLISH read as 3.1.1: the property length byte is payload.
    let Some(Packet::Publish(p)) = dec(V3_1_1, &publish_v5_props(&[])).unwrap() else {
        panic!()
    };
    assert_eq!(&p.payload[..], b"\0payload");
    // A v5 CONNACK (with a property block) is too long for 3.1.1.
    assert_eq!(err(V3_1_1, &frame(0x20, &[0, 0, 0])), E::TrailingBytes(1));
}

#[test]
fn reason_codes_must_be_valid_for_the_packet() {
    let cases: [(Vec<u8>, PacketType, u8); 9] = [
        (frame(0x20, &[0, 0x04, 0]), PacketType::ConnAck, 0x04),
        (frame(0x20, &[0, 0x05, 0]), PacketType::ConnAck, 0x05),
        (frame(0x40, &[0, 1, 0x92]), PacketType::PubAck, 0x92),
        (frame(0x50, &[0, 1, 0x8F]), PacketType::PubRec, 0x8F),
        (frame(0x62, &[0, 1, 0x10]), PacketType::PubRel, 0x10),
        (frame(0x70, &[0, 1, 0x80]), PacketType::PubComp, 0x80),
        (frame(0x90, &[0, 1, 0, 0x11]), PacketType::SubAck, 0x11),
        (frame(0xB0, &[0, 1, 0, 0x10]), PacketType::UnsubAck, 0x10),
        (frame(0xE0, &[0x18]), PacketType::Disconnect, 0x18),
    ];
    for (bytes, packet, code) in cases {
        assert_eq!(err(V5, &bytes), E::InvalidReasonCode { packet, code });
    }
    assert_eq!(
        err(V5, &frame(0xF0, &[0x04, 0])),
        E::InvalidReasonCode {
            packet: PacketType::Auth,
            code: 0x04
        }
    );
    // 3.x: CONNACK 0..=5 only, SUBACK 0, 1, 2, 0x80 only.
    assert_eq!(
        err(V3_1_1, &frame(0x20, &[0, 6])),
        E::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code: 6
        }
    );
    assert_eq!(
        err(V3_1_1, &frame(0x90, &[0, 1, 0x91])),
        E::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 0x91
        }
    );
    assert_eq!(
        err(V3_1, &frame(0x90, &[0, 1, 3])),
        E::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 3
        }
    );
}

#[test]
fn connack_flags_reserved_bits() {
    assert_eq!(
        err(V3_1_1, &frame(0x20, &[0x02, 0])),
        E::InvalidConnAckFlags(0x02)
    );
}

#[test]
fn three_x_return_codes_map_to_reason_codes() {
    let expected = [
        ReasonCode::Success,
        ReasonCode::UnsupportedProtocolVersion,
        ReasonCode::ClientIdentifierNotValid,
        ReasonCode::ServerUnavailable,
        ReasonCode::BadUserNameOrPassword,
        ReasonCode::NotAuthorized,
    ];
    for (code, want) in expected.into_iter().enumerate() {
        let p = dec(V3_1_1, &frame(0x20, &[0, code as u8])).unwrap();
        assert_eq!(
            p,
            Some(Packet::ConnAck(Box::new(ConnAck::new(want, false))))
        );
    }
    let p = dec(V3_1_1, &frame(0x90, &[0, 1, 0, 1, 2, 0x80])).unwrap();
    let Some(Packet::SubAck(ack)) = p else {
        panic!()
    };
    assert_eq!(
        ack.reason_codes,
        [
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError
        ]
    );
}

#[test]
fn protocol_name_and_level_must_agree() {
    let id = s("id");
    assert_eq!(
        err(V3_1_1, &connect("MQTT", 3, 2, &id)),
        E::UnsupportedProtocolLevel(3)
    );
    assert_eq!(
        err(V3_1_1, &connect("MQIsdp", 4, 2, &id)),
        E::UnsupportedProtocolLevel(4)
    );
    assert_eq!(
        err(V3_1_1, &connect("MQTT", 6, 2, &id)),
        E::UnsupportedProtocolLevel(6)
    );
    assert_eq!(
        err(V3_1_1, &connect("MQTX", 4, 2, &id)),
        E::InvalidProtocolName("MQTX".into())
    );
    assert_eq!(
        E::UnsupportedProtocolLevel(6).reason_code(),
        ReasonCode::UnsupportedProtocolVersion
    );
    // Each accepted pairing, whatever version the caller passes.
    for (name, level, want) in [("MQIsdp", 3, V3_1), ("MQTT", 4, V3_1_1), ("MQTT", 5, V5)] {
        let props: &[u8] = if level == 5 { &[0] } else { &[] };
        let bytes = connect(name, level, 2, &cat(&[props, &id]));
        for p in [V3_1, V3_1_1, V5] {
            let Some(Packet::Connect(c)) = dec(p, &bytes).unwrap() else {
                panic!()
            };
            assert_eq!(c.protocol, want);
        }
    }
}

#[test]
fn first_packet_must_be_connect() {
    let mut codec = MqttCodec::new(1024);
    let mut buf = BytesMut::from(&frame(0x30, &s("t"))[..]);
    assert_eq!(codec.decode(&mut buf), Err(E::ExpectedConnect));
    assert_eq!(E::ExpectedConnect.reason_code(), ReasonCode::ProtocolError);
}

#[test]
fn v5_short_forms_mean_success() {
    assert_eq!(
        dec(V5, &[0xE0, 0]),
        Ok(Some(Packet::Disconnect(Disconnect::default())))
    );
    assert_eq!(
        dec(V5, &frame(0xE0, &[0x8E])),
        Ok(Some(Packet::Disconnect(Disconnect::new(
            ReasonCode::SessionTakenOver
        ))))
    );
    assert_eq!(
        dec(V5, &frame(0x40, &[0, 7])),
        Ok(Some(Packet::PubAck(PubReply::new(7))))
    );
    assert_eq!(
        dec(V5, &frame(0x50, &[0, 7, 0x10])),
        Ok(Some(Packet::PubRec(PubReply::with_reason(
            7,
            ReasonCode::NoMatchingSubscribers
        ))))
    );
}

#[test]
fn malformed_var_int_in_properties() {
    // Property length encoded in 5 bytes.
    let p = frame(0x30, &cat(&[&s("t"), &[0x80, 0x80, 0x80, 0x80, 0x01]]));
    assert_eq!(err(V5, &p), E::MalformedVarInt);
}
