//! Byte-exact vectors, written by hand from the specification, for every packet
//! kind in every version: Pigeon must encode the value to exactly these bytes
//! and decode the bytes to exactly this value.

use bytes::{Bytes, BytesMut};
use pigeon_codec::*;
use Protocol::{V3_1, V3_1_1, V5};

fn check(protocol: Protocol, packet: Packet, bytes: &[u8]) {
    let mut buf = BytesMut::new();
    encode(&packet, protocol, &mut buf).unwrap();
    assert_eq!(&buf[..], bytes, "{protocol:?} encode {packet:?}");
    assert_eq!(encoded_len(&packet, protocol), Ok(bytes.len()));
    let mut input = BytesMut::from(bytes);
    assert_eq!(
        decode(&mut input, protocol, 1 << 20),
        Ok(Some(packet)),
        "{protocol:?} decode {bytes:02x?}"
    );
    assert!(input.is_empty());
}

#[test]
fn connect_3_1() {
    let mut c = Connect::new(V3_1, "abc");
    c.keep_alive = 10;
    check(
        V3_1,
        Packet::Connect(Box::new(c)),
        &[
            0x10,
            17,
            0,
            6,
            b'M',
            b'Q',
            b'I',
            b's',
            b'd',
            b'p',
            3,
            0b0000_0010,
            0,
            10,
            0,
            3,
            b'a',
            b'b',
            b'c',
        ],
    );
}

#[test]
fn connect_3_1_1_with_will_and_credentials() {
    let c = Connect {
        protocol: V3_1_1,
        clean_start: false,
        keep_alive: 0x0102,
        client_id: "c".into(),
        will: Some(Will {
            topic: "w".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Default::default(),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Default::default(),
    };
    check(
        V3_1_1,
        Packet::Connect(Box::new(c)),
        &[
            0x10,
            25,
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            4,
            0b1111_0100,
            1,
            2,
            0,
            1,
            b'c',
            0,
            1,
            b'w',
            0,
            1,
            b'x',
            0,
            1,
            b'u',
            0,
            1,
            b'p',
        ],
    );
}

#[test]
fn connect_5_with_properties_and_will_properties() {
    let mut c = Connect::new(V5, "c");
    c.keep_alive = 60;
    c.properties.session_expiry_interval = Some(10);
    c.properties.user_properties = vec![("a".into(), "b".into())];
    c.will = Some(Will {
        topic: "w".into(),
        payload: Bytes::new(),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(1),
            ..Default::default()
        },
    });
    check(
        V5,
        Packet::Connect(Box::new(c)),
        &[
            0x10,
            37,
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            5,
            0b0000_0110,
            0,
            60, // header
            12,
            0x11,
            0,
            0,
            0,
            10,
            0x26,
            0,
            1,
            b'a',
            0,
            1,
            b'b', // properties
            0,
            1,
            b'c', // client id
            5,
            0x18,
            0,
            0,
            0,
            1, // will properties
            0,
            1,
            b'w',
            0,
            0, // will topic, payload
        ],
    );
}

#[test]
fn connack() {
    check(
        V3_1,
        Packet::ConnAck(Box::new(ConnAck::new(ReasonCode::Success, false))),
        &[0x20, 2, 0, 0],
    );
    check(
        V3_1_1,
        Packet::ConnAck(Box::new(ConnAck::new(
            ReasonCode::BadUserNameOrPassword,
            true,
        ))),
        &[0x20, 2, 1, 4],
    );
    let mut ack = ConnAck::new(ReasonCode::Banned, false);
    ack.properties.maximum_qos = Some(QoS::AtLeastOnce);
    ack.properties.assigned_client_identifier = Some("id".into());
    check(
        V5,
        Packet::ConnAck(Box::new(ack)),
        &[0x20, 10, 0, 0x8A, 7, 0x24, 1, 0x12, 0, 2, b'i', b'd'],
    );
}

#[test]
fn connack_v5_codes_fall_back_to_3x_equivalents() {
    // A broker refusing with a 5.0 code still sends a valid 3.x CONNACK.
    let mut buf = BytesMut::new();
    encode(
        &Packet::ConnAck(Box::new(ConnAck::new(ReasonCode::Banned, false))),
        V3_1_1,
        &mut buf,
    )
    .unwrap();
    assert_eq!(&buf[..], [0x20, 2, 0, 5]);
    buf.clear();
    encode(
        &Packet::ConnAck(Box::new(ConnAck::new(ReasonCode::ServerBusy, false))),
        V3_1_1,
        &mut buf,
    )
    .unwrap();
    assert_eq!(&buf[..], [0x20, 2, 0, 3]);
}

#[test]
fn publish() {
    for p in [V3_1, V3_1_1] {
        check(
            p,
            Packet::Publish(Publish::new("a/b", QoS::AtMostOnce, "hi")),
            &[0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'],
        );
    }
    let mut q2 = Publish::new("t", QoS::ExactlyOnce, "x");
    q2.packet_id = 10;
    q2.dup = true;
    q2.retain = true;
    check(
        V3_1_1,
        Packet::Publish(q2.clone()),
        &[0x3D, 6, 0, 1, b't', 0, 10, b'x'],
    );
    q2.properties.make_mut().topic_alias = Some(1);
    q2.properties.make_mut().subscription_identifiers = vec![1, 128];
    check(
        V5,
        Packet::Publish(q2),
        &[
            0x3D, 15, 0, 1, b't', 0, 10, 8, 0x23, 0, 1, 0x0B, 1, 0x0B, 0x80, 1, b'x',
        ],
    );
    check(
        V5,
        Packet::Publish(Publish::new("t", QoS::AtMostOnce, "")),
        &[0x30, 4, 0, 1, b't', 0],
    );
}

#[test]
fn publish_remaining_length_uses_two_bytes_past_127() {
    let p = Publish::new("t", QoS::AtMostOnce, vec![0u8; 200]);
    let mut expected = vec![0x30, 0xCB, 0x01, 0, 1, b't'];
    expected.extend(std::iter::repeat_n(0, 200));
    check(V3_1_1, Packet::Publish(p), &expected);
}

#[test]
fn pub_replies() {
    type Make = fn(PubReply) -> Packet;
    let kinds: [(Make, u8); 4] = [
        (Packet::PubAck, 0x40),
        (Packet::PubRec, 0x50),
        (Packet::PubRel, 0x62),
        (Packet::PubComp, 0x70),
    ];
    for (make, first) in kinds {
        for p in [V3_1, V3_1_1, V5] {
            check(p, make(PubReply::new(0x1234)), &[first, 2, 0x12, 0x34]);
        }
    }
    check(
        V5,
        Packet::PubAck(PubReply::with_reason(5, ReasonCode::QuotaExceeded)),
        &[0x40, 3, 0, 5, 0x97],
    );
    let mut rel = PubReply::with_reason(5, ReasonCode::PacketIdentifierNotFound);
    rel.properties.reason_string = Some("no".into());
    check(
        V5,
        Packet::PubRel(rel),
        &[0x62, 9, 0, 5, 0x92, 5, 0x1F, 0, 2, b'n', b'o'],
    );
    // Success with properties keeps the reason code byte.
    let mut comp = PubReply::new(5);
    comp.properties.user_properties = vec![("k".into(), "v".into())];
    check(
        V5,
        Packet::PubComp(comp),
        &[0x70, 11, 0, 5, 0, 7, 0x26, 0, 1, b'k', 0, 1, b'v'],
    );
}

#[test]
fn subscribe() {
    let sub = Subscribe::new(
        1,
        vec![
            SubscribeFilter::new("a/+", QoS::AtLeastOnce),
            SubscribeFilter::new("#", QoS::ExactlyOnce),
        ],
    );
    for p in [V3_1, V3_1_1] {
        check(
            p,
            Packet::Subscribe(sub.clone()),
            &[0x82, 12, 0, 1, 0, 3, b'a', b'/', b'+', 1, 0, 1, b'#', 2],
        );
    }
    let mut sub5 = sub;
    sub5.filters[0].options.no_local = true;
    sub5.filters[0].options.retain_as_published = true;
    sub5.filters[1].options.retain_handling = RetainHandling::OnNewSubscribe;
    sub5.properties.subscription_identifier = Some(300);
    check(
        V5,
        Packet::Subscribe(sub5),
        &[
            0x82, 16, 0, 1, 3, 0x0B, 0xAC, 0x02, 0, 3, b'a', b'/', b'+', 0x0D, 0, 1, b'#', 0x12,
        ],
    );
}

#[test]
fn suback() {
    let ack = SubAck {
        packet_id: 2,
        reason_codes: vec![ReasonCode::GrantedQoS2, ReasonCode::UnspecifiedError],
        properties: Default::default(),
    };
    for p in [V3_1, V3_1_1] {
        check(p, Packet::SubAck(ack.clone()), &[0x90, 4, 0, 2, 2, 0x80]);
    }
    let mut ack5 = ack;
    ack5.reason_codes
        .push(ReasonCode::SharedSubscriptionsNotSupported);
    check(V5, Packet::SubAck(ack5), &[0x90, 6, 0, 2, 0, 2, 0x80, 0x9E]);
}

#[test]
fn unsubscribe() {
    let unsub = Unsubscribe {
        packet_id: 3,
        filters: vec!["a".into(), "b/#".into()],
        properties: Default::default(),
    };
    for p in [V3_1, V3_1_1] {
        check(
            p,
            Packet::Unsubscribe(unsub.clone()),
            &[0xA2, 10, 0, 3, 0, 1, b'a', 0, 3, b'b', b'/', b'#'],
        );
    }
    check(
        V5,
        Packet::Unsubscribe(unsub),
        &[0xA2, 11, 0, 3, 0, 0, 1, b'a', 0, 3, b'b', b'/', b'#'],
    );
}

#[test]
fn unsuback() {
    let ack = UnsubAck {
        packet_id: 3,
        reason_codes: vec![],
        properties: Default::default(),
    };
    for p in [V3_1, V3_1_1] {
        check(p, Packet::UnsubAck(ack.clone()), &[0xB0, 2, 0, 3]);
    }
    let ack5 = UnsubAck {
        reason_codes: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        ..ack
    };
    check(V5, Packet::UnsubAck(ack5), &[0xB0, 5, 0, 3, 0, 0x00, 0x11]);
}

#[test]
fn ping_and_disconnect() {
    for p in [V3_1, V3_1_1, V5] {
        check(p, Packet::PingReq, &[0xC0, 0]);
        check(p, Packet::PingResp, &[0xD0, 0]);
        check(p, Packet::Disconnect(Disconnect::default()), &[0xE0, 0]);
    }
    check(
        V5,
        Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
        &[0xE0, 1, 0x04],
    );
    let mut d = Disconnect::new(ReasonCode::Success);
    d.properties.session_expiry_interval = Some(0);
    check(
        V5,
        Packet::Disconnect(d),
        &[0xE0, 7, 0, 5, 0x11, 0, 0, 0, 0],
    );
}

#[test]
fn auth() {
    check(V5, Packet::Auth(Box::default()), &[0xF0, 0]);
    let a = Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some("M".into()),
            authentication_data: Some(Bytes::from_static(&[9])),
            ..Default::default()
        },
    };
    check(
        V5,
        Packet::Auth(Box::new(a)),
        &[0xF0, 10, 0x18, 8, 0x15, 0, 1, b'M', 0x16, 0, 1, 9],
    );
}

#[test]
fn v5_fields_are_not_written_in_3x() {
    let mut p = Publish::new("t", QoS::AtMostOnce, "x");
    p.properties.make_mut().message_expiry_interval = Some(5);
    let mut buf = BytesMut::new();
    encode(&Packet::Publish(p), V3_1_1, &mut buf).unwrap();
    assert_eq!(&buf[..], [0x30, 4, 0, 1, b't', b'x']);
    buf.clear();
    let d = Disconnect::new(ReasonCode::ServerShuttingDown);
    encode(&Packet::Disconnect(d), V3_1_1, &mut buf).unwrap();
    assert_eq!(&buf[..], [0xE0, 0]);
}

#[test]
fn encode_refuses_what_cannot_be_sent() {
    let mut buf = BytesMut::new();
    let e = |p: Packet, v: Protocol| encode(&p, v, &mut BytesMut::new()).unwrap_err();
    assert_eq!(
        e(Packet::Auth(Box::default()), V3_1_1),
        EncodeError::UnsupportedPacket(PacketType::Auth)
    );
    assert_eq!(
        e(Packet::Publish(Publish::new("t", QoS::AtLeastOnce, "")), V5),
        EncodeError::ZeroPacketId
    );
    assert_eq!(
        e(Packet::Subscribe(Subscribe::new(1, vec![])), V5),
        EncodeError::NoTopics(PacketType::Subscribe)
    );
    let long = "x".repeat(70_000);
    assert_eq!(
        e(
            Packet::Publish(Publish::new(long.as_str(), QoS::AtMostOnce, "")),
            V5
        ),
        EncodeError::StringTooLong(70_000)
    );
    let mut c = Connect::new(V3_1_1, "c");
    c.password = Some(Bytes::from_static(b"p"));
    assert!(matches!(
        e(Packet::Connect(Box::new(c)), V3_1_1),
        EncodeError::OutOfRange(_)
    ));
    // Nothing is written on failure.
    let _ = encode(&Packet::Auth(Box::default()), V3_1, &mut buf);
    assert!(buf.is_empty());
}
