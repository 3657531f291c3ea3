//! proptest strategies for every packet of every version, shared by the test files.
#![allow(dead_code)]

use bytes::Bytes;
use pigeon_codec::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

pub(crate) const ALL: [Protocol; 3] = [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5];

/// Any UTF-8 text the spec allows (printable, so no U+0000), short.
pub(crate) fn text() -> impl Strategy<Value = String> {
    "\\PC{0,6}"
}

pub(crate) fn topic() -> impl Strategy<Value = String> {
    "[a-z0-9é$ ]{0,3}(/[a-z0-9é ]{0,3}){0,3}".prop_filter("non-empty", |t| !t.is_empty())
}

pub(crate) fn filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("+".to_string()), "[a-z0-9é]{0,3}"];
    (
        vec(level, 1..4),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some("g")), Just(Some("grp-1"))],
    )
        .prop_map(|(levels, hash, share)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str(if f.is_empty() { "#" } else { "/#" });
            }
            if f.is_empty() {
                f.push('+');
            }
            match share {
                Some(g) => format!("$share/{g}/{f}"),
                None => f,
            }
        })
}

pub(crate) fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..12).prop_map(Bytes::from)
}

pub(crate) fn user() -> impl Strategy<Value = UserProperties> {
    vec((text(), text()), 0..3)
}

pub(crate) fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub(crate) fn packet_id() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

/// A reason code from a list of valid ones.
fn code(list: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    proptest::sample::select(list).prop_map(|c| ReasonCode::try_from(c).unwrap())
}

pub(crate) const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
pub(crate) const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
pub(crate) const PUBREL_CODES: &[u8] = &[0x00, 0x92];
pub(crate) const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
pub(crate) const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
pub(crate) const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
pub(crate) const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn auth_pair() -> impl Strategy<Value = (Option<String>, Option<Bytes>)> {
    (of(text()), of(binary())).prop_map(|(m, d)| match (m, d) {
        (None, Some(d)) => (Some("m".into()), Some(d)),
        other => other,
    })
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(1..=u32::MAX),
        of(any::<u16>()),
        of(any::<bool>()),
        of(any::<bool>()),
        user(),
        auth_pair(),
    )
        .prop_map(|(se, rm, mps, tam, rri, rpi, user_properties, (am, ad))| {
            ConnectProperties {
                session_expiry_interval: se,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties,
                authentication_method: am,
                authentication_data: ad,
            }
        })
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        of(any::<u32>()),
        of(any::<bool>()),
        of(any::<u32>()),
        of(text()),
        of(topic()),
        of(binary()),
        user(),
    )
        .prop_map(
            |(wd, pfi, mei, ct, rt, cd, user_properties)| WillProperties {
                will_delay_interval: wd,
                payload_format_indicator: pfi,
                message_expiry_interval: mei,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd,
                user_properties,
            },
        )
}

fn will(protocol: Protocol) -> impl Strategy<Value = Will> {
    (topic(), binary(), qos(), any::<bool>(), will_properties()).prop_map(
        move |(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties: if protocol.is_v5() {
                properties
            } else {
                Default::default()
            },
        },
    )
}

pub(crate) fn connect(protocol: Protocol) -> impl Strategy<Value = Connect> {
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        of(will(protocol)),
        of(text()),
        of(binary()),
        connect_properties(),
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive,
                client_id,
                will,
                mut username,
                password,
                properties,
            )| {
                if protocol == Protocol::V3_1_1 && password.is_some() && username.is_none() {
                    username = Some("u".into());
                }
                Connect {
                    protocol,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties: if protocol.is_v5() {
                        properties
                    } else {
                        Default::default()
                    },
                }
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    (
        (
            of(any::<u32>()),
            of(1..=u16::MAX),
            of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
            of(any::<bool>()),
            of(1..=u32::MAX),
            of(text()),
            of(any::<u16>()),
            of(text()),
            user(),
        ),
        (
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<u16>()),
            of(text()),
            of(text()),
            auth_pair(),
        ),
    )
        .prop_map(
            |(
                (se, rm, mq, ra, mps, aci, tam, rs, user_properties),
                (wsa, sia, ssa, ska, ri, sr, (am, ad)),
            )| {
                ConnAckProperties {
                    session_expiry_interval: se,
                    receive_maximum: rm,
                    maximum_qos: mq,
                    retain_available: ra,
                    maximum_packet_size: mps,
                    assigned_client_identifier: aci,
                    topic_alias_maximum: tam,
                    reason_string: rs,
                    user_properties,
                    wildcard_subscription_available: wsa,
                    subscription_identifiers_available: sia,
                    shared_subscription_available: ssa,
                    server_keep_alive: ska,
                    response_information: ri,
                    server_reference: sr,
                    authentication_method: am,
                    authentication_data: ad,
                }
            },
        )
}

pub(crate) fn connack(protocol: Protocol) -> BoxedStrategy<ConnAck> {
    if protocol.is_v5() {
        (any::<bool>(), code(CONNACK_CODES), connack_properties())
            .prop_map(|(session_present, reason_code, properties)| ConnAck {
                session_present,
                reason_code,
                properties,
            })
            .boxed()
    } else {
        (any::<bool>(), code(&[0x00, 0x84, 0x85, 0x88, 0x86, 0x87]))
            .prop_map(|(sp, rc)| ConnAck::new(rc, sp))
            .boxed()
    }
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        of(any::<bool>()),
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(topic()),
        of(binary()),
        user(),
        vec(1..=268_435_455u32, 0..3),
        of(text()),
    )
        .prop_map(
            |(pfi, mei, ta, rt, cd, user_properties, ids, ct)| PublishProperties {
                payload_format_indicator: pfi,
                message_expiry_interval: mei,
                topic_alias: ta,
                response_topic: rt,
                correlation_data: cd,
                user_properties,
                subscription_identifiers: ids,
                content_type: ct,
            },
        )
}

pub(crate) fn publish(protocol: Protocol) -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic(),
        packet_id(),
        vec(any::<u8>(), 0..100),
        publish_properties(),
        any::<bool>(),
    )
        .prop_map(
            move |(dup, qos, retain, topic, id, payload, properties, aliased)| {
                let v5 = protocol.is_v5();
                // In 5.0 a topic alias may replace the topic name.
                let topic = if v5 && aliased && properties.topic_alias.is_some() {
                    String::new()
                } else {
                    topic
                };
                Publish {
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    topic: topic.into(),
                    packet_id: if qos == QoS::AtMostOnce { 0 } else { id },
                    payload: payload.into(),
                    properties: if v5 {
                        properties.into()
                    } else {
                        Default::default()
                    },
                }
            },
        )
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (of(text()), user()).prop_map(|(reason_string, user_properties)| AckProperties {
        reason_string,
        user_properties,
    })
}

pub(crate) fn reply(protocol: Protocol, codes: &'static [u8]) -> BoxedStrategy<PubReply> {
    if protocol.is_v5() {
        (packet_id(), code(codes), ack_properties())
            .prop_map(|(packet_id, reason_code, properties)| PubReply {
                packet_id,
                reason_code,
                properties,
            })
            .boxed()
    } else {
        packet_id().prop_map(PubReply::new).boxed()
    }
}

pub(crate) fn subscribe(protocol: Protocol) -> impl Strategy<Value = Subscribe> {
    let option = (
        filter(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(RetainHandling::OnSubscribe),
            Just(RetainHandling::OnNewSubscribe),
            Just(RetainHandling::Never)
        ],
    )
        .prop_map(move |(filter, qos, nl, rap, rh)| {
            let v5 = protocol.is_v5();
            let shared = filter.starts_with("$share/");
            SubscribeFilter {
                options: SubscriptionOptions {
                    qos,
                    no_local: v5 && nl && !shared,
                    retain_as_published: v5 && rap,
                    retain_handling: if v5 { rh } else { RetainHandling::OnSubscribe },
                },
                filter,
            }
        });
    (
        packet_id(),
        vec(option, 1..4),
        of(1..=268_435_455u32),
        user(),
    )
        .prop_map(move |(packet_id, filters, id, user_properties)| Subscribe {
            packet_id,
            filters,
            properties: if protocol.is_v5() {
                SubscribeProperties {
                    subscription_identifier: id,
                    user_properties,
                }
            } else {
                Default::default()
            },
        })
}

pub(crate) fn suback(protocol: Protocol) -> impl Strategy<Value = SubAck> {
    let v5 = protocol.is_v5();
    let codes = if v5 {
        SUBACK_CODES
    } else {
        &[0x00, 0x01, 0x02, 0x80]
    };
    (packet_id(), vec(code(codes), 1..4), ack_properties()).prop_map(
        move |(packet_id, reason_codes, properties)| SubAck {
            packet_id,
            reason_codes,
            properties: if v5 { properties } else { Default::default() },
        },
    )
}

pub(crate) fn unsubscribe(protocol: Protocol) -> impl Strategy<Value = Unsubscribe> {
    (packet_id(), vec(filter(), 1..4), user()).prop_map(
        move |(packet_id, filters, user_properties)| Unsubscribe {
            packet_id,
            filters,
            properties: if protocol.is_v5() {
                UnsubscribeProperties { user_properties }
            } else {
                Default::default()
            },
        },
    )
}

pub(crate) fn unsuback(protocol: Protocol) -> impl Strategy<Value = UnsubAck> {
    let v5 = protocol.is_v5();
    (
        packet_id(),
        vec(code(UNSUBACK_CODES), 1..4),
        ack_properties(),
    )
        .prop_map(move |(packet_id, reason_codes, properties)| UnsubAck {
            packet_id,
            reason_codes: if v5 { reason_codes } else { vec![] },
            properties: if v5 { properties } else { Default::default() },
        })
}

pub(crate) fn disconnect(protocol: Protocol) -> BoxedStrategy<Disconnect> {
    if !protocol.is_v5() {
        return Just(Disconnect::default()).boxed();
    }
    (
        code(DISCONNECT_CODES),
        of(any::<u32>()),
        of(text()),
        user(),
        of(text()),
    )
        .prop_map(|(reason_code, se, rs, user_properties, sr)| Disconnect {
            reason_code,
            properties: DisconnectProperties {
                session_expiry_interval: se,
                reason_string: rs,
                user_properties,
                server_reference: sr,
            },
        })
        .boxed()
}

pub(crate) fn auth() -> impl Strategy<Value = Auth> {
    (code(AUTH_CODES), auth_pair(), of(text()), user()).prop_map(
        |(reason_code, (am, ad), rs, user_properties)| Auth {
            reason_code,
            properties: AuthProperties {
                authentication_method: am,
                authentication_data: ad,
                reason_string: rs,
                user_properties,
            },
        },
    )
}

/// Any packet valid in `protocol` (CONNECT included).
pub(crate) fn packet(protocol: Protocol) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(protocol).prop_map(|c| Packet::Connect(Box::new(c))),
        connack(protocol).prop_map(|c| Packet::ConnAck(Box::new(c))),
        publish(protocol).prop_map(Packet::Publish),
        reply(protocol, PUBACK_CODES).prop_map(Packet::PubAck),
        reply(protocol, PUBACK_CODES).prop_map(Packet::PubRec),
        reply(protocol, PUBREL_CODES).prop_map(Packet::PubRel),
        reply(protocol, PUBREL_CODES).prop_map(Packet::PubComp),
        subscribe(protocol).prop_map(Packet::Subscribe),
        suback(protocol).prop_map(Packet::SubAck),
        unsubscribe(protocol).prop_map(Packet::Unsubscribe),
        unsuback(protocol).prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(protocol).prop_map(Packet::Disconnect),
    ];
    if protocol.is_v5() {
        prop_oneof![14 => common, 1 => auth().prop_map(|a| Packet::Auth(Box::new(a)))].boxed()
    } else {
        common.boxed()
    }
}

/// A protocol version.
pub(crate) fn protocol() -> impl Strategy<Value = Protocol> {
    proptest::sample::select(&ALL[..])
}
