//! Differential tests against the `mqttbytes` crate (0.6), for the packets and
//! versions it knows (MQTT 3.1.1 as `v4`, 5.0 as `v5`; no AUTH, no MQTT 3.1):
//! bytes Pigeon writes decode in mqttbytes to the same meaning, and bytes
//! mqttbytes writes decode in Pigeon to the same meaning.
//!
//! Generated packets are first fitted to what mqttbytes can represent
//! (`fit_v4`/`fit_v5`): e.g. its login is a pair of `String`s where empty means
//! absent, and it cannot read a v5 DISCONNECT without properties.

mod common;

use bytes::{Bytes, BytesMut};
use mqttbytes::{v4, v5, QoS as MQoS};
use pigeon_codec::*;
use proptest::prelude::*;

const MAX: usize = 1 << 20;

fn mqos(q: QoS) -> MQoS {
    match q {
        QoS::AtMostOnce => MQoS::AtMostOnce,
        QoS::AtLeastOnce => MQoS::AtLeastOnce,
        QoS::ExactlyOnce => MQoS::ExactlyOnce,
    }
}

fn pqos(q: MQoS) -> QoS {
    match q {
        MQoS::AtMostOnce => QoS::AtMostOnce,
        MQoS::AtLeastOnce => QoS::AtLeastOnce,
        MQoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn code(c: u8) -> ReasonCode {
    ReasonCode::try_from(c).unwrap()
}

/// Credentials mqttbytes can carry: non-empty UTF-8 strings, and (in 3.1.1) a
/// password only with a user name.
fn fit_login(c: &mut Connect) {
    if let Some(u) = &c.username {
        if u.is_empty() {
            c.username = Some("user".into());
        }
    }
    if let Some(p) = &c.password {
        let text = String::from_utf8_lossy(p).into_owned();
        c.password = Some(Bytes::from(if text.is_empty() {
            "pw".into()
        } else {
            text
        }));
        if c.username.is_none() {
            c.username = Some("user".into());
        }
    }
}

// ---- MQTT 3.1.1 ------------------------------------------------------------

fn fit_v4(p: Packet) -> Option<Packet> {
    Some(match p {
        Packet::Connect(mut c) => {
            fit_login(&mut c);
            Packet::Connect(c)
        }
        Packet::Auth(_) => return None,
        other => other,
    })
}

fn to_v4(p: &Packet) -> v4::Packet {
    match p {
        Packet::Connect(c) => v4::Packet::Connect(v4::Connect {
            protocol: mqttbytes::Protocol::V4,
            keep_alive: c.keep_alive,
            client_id: c.client_id.clone(),
            clean_session: c.clean_start,
            last_will: c.will.as_ref().map(|w| v4::LastWill {
                topic: w.topic.clone(),
                message: w.payload.clone(),
                qos: mqos(w.qos),
                retain: w.retain,
            }),
            login: c.username.as_ref().map(|u| v4::Login {
                username: u.clone(),
                password: c
                    .password
                    .as_ref()
                    .map(|p| String::from_utf8(p.to_vec()).unwrap())
                    .unwrap_or_default(),
            }),
        }),
        Packet::ConnAck(a) => v4::Packet::ConnAck(v4::ConnAck {
            session_present: a.session_present,
            code: match a.reason_code {
                ReasonCode::Success => v4::ConnectReturnCode::Success,
                ReasonCode::UnsupportedProtocolVersion => {
                    v4::ConnectReturnCode::RefusedProtocolVersion
                }
                ReasonCode::ClientIdentifierNotValid => v4::ConnectReturnCode::BadClientId,
                ReasonCode::ServerUnavailable => v4::ConnectReturnCode::ServiceUnavailable,
                ReasonCode::BadUserNameOrPassword => v4::ConnectReturnCode::BadUserNamePassword,
                ReasonCode::NotAuthorized => v4::ConnectReturnCode::NotAuthorized,
                other => panic!("no 3.1.1 CONNACK code for {other:?}"),
            },
        }),
        Packet::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: mqos(p.qos),
            retain: p.retain,
            topic: p.topic.to_string(),
            pkid: p.packet_id,
            payload: p.payload.clone(),
        }),
        Packet::PubAck(r) => v4::Packet::PubAck(v4::PubAck::new(r.packet_id)),
        Packet::PubRec(r) => v4::Packet::PubRec(v4::PubRec::new(r.packet_id)),
        Packet::PubRel(r) => v4::Packet::PubRel(v4::PubRel::new(r.packet_id)),
        Packet::PubComp(r) => v4::Packet::PubComp(v4::PubComp::new(r.packet_id)),
        Packet::Subscribe(s) => v4::Packet::Subscribe(v4::Subscribe {
            pkid: s.packet_id,
            filters: s
                .filters
                .iter()
                .map(|f| v4::SubscribeFilter::new(f.filter.clone(), mqos(f.options.qos)))
                .collect(),
        }),
        Packet::SubAck(s) => v4::Packet::SubAck(v4::SubAck::new(
            s.packet_id,
            s.reason_codes
                .iter()
                .map(|c| match c {
                    ReasonCode::Success => v4::SubscribeReasonCode::Success(MQoS::AtMostOnce),
                    ReasonCode::GrantedQoS1 => v4::SubscribeReasonCode::Success(MQoS::AtLeastOnce),
                    ReasonCode::GrantedQoS2 => v4::SubscribeReasonCode::Success(MQoS::ExactlyOnce),
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        Packet::Unsubscribe(u) => v4::Packet::Unsubscribe(v4::Unsubscribe {
            pkid: u.packet_id,
            topics: u.filters.clone(),
        }),
        Packet::UnsubAck(u) => v4::Packet::UnsubAck(v4::UnsubAck { pkid: u.packet_id }),
        Packet::PingReq => v4::Packet::PingReq,
        Packet::PingResp => v4::Packet::PingResp,
        Packet::Disconnect(_) => v4::Packet::Disconnect,
        Packet::Auth(_) => unreachable!("fitted out"),
    }
}

fn from_v4(p: v4::Packet) -> Packet {
    match p {
        v4::Packet::Connect(c) => {
            let (username, password) = match c.login {
                Some(l) => (
                    Some(l.username).filter(|u| !u.is_empty()),
                    Some(l.password).filter(|p| !p.is_empty()).map(Bytes::from),
                ),
                None => (None, None),
            };
            Packet::Connect(Box::new(Connect {
                protocol: Protocol::V3_1_1,
                clean_start: c.clean_session,
                keep_alive: c.keep_alive,
                client_id: c.client_id,
                will: c.last_will.map(|w| Will {
                    topic: w.topic,
                    payload: w.message,
                    qos: pqos(w.qos),
                    retain: w.retain,
                    properties: Default::default(),
                }),
                username,
                password,
                properties: Default::default(),
            }))
        }
        v4::Packet::ConnAck(a) => Packet::ConnAck(Box::new(ConnAck::new(
            match a.code {
                v4::ConnectReturnCode::Success => ReasonCode::Success,
                v4::ConnectReturnCode::RefusedProtocolVersion => {
                    ReasonCode::UnsupportedProtocolVersion
                }
                v4::ConnectReturnCode::BadClientId => ReasonCode::ClientIdentifierNotValid,
                v4::ConnectReturnCode::ServiceUnavailable => ReasonCode::ServerUnavailable,
                v4::ConnectReturnCode::BadUserNamePassword => ReasonCode::BadUserNameOrPassword,
                v4::ConnectReturnCode::NotAuthorized => ReasonCode::NotAuthorized,
            },
            a.session_present,
        ))),
        v4::Packet::Publish(p) => Packet::Publish(Publish {
            dup: p.dup,
            qos: pqos(p.qos),
            retain: p.retain,
            topic: p.topic.into(),
            packet_id: p.pkid,
            payload: p.payload,
            properties: Default::default(),
        }),
        v4::Packet::PubAck(r) => Packet::PubAck(PubReply::new(r.pkid)),
        v4::Packet::PubRec(r) => Packet::PubRec(PubReply::new(r.pkid)),
        v4::Packet::PubRel(r) => Packet::PubRel(PubReply::new(r.pkid)),
        v4::Packet::PubComp(r) => Packet::PubComp(PubReply::new(r.pkid)),
        v4::Packet::Subscribe(s) => Packet::Subscribe(Subscribe::new(
            s.pkid,
            s.filters
                .into_iter()
                .map(|f| SubscribeFilter::new(f.path, pqos(f.qos)))
                .collect(),
        )),
        v4::Packet::SubAck(s) => Packet::SubAck(SubAck {
            packet_id: s.pkid,
            reason_codes: s
                .return_codes
                .into_iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(q) => ReasonCode::granted(pqos(q)),
                    v4::SubscribeReasonCode::Failure => ReasonCode::UnspecifiedError,
                })
                .collect(),
            properties: Default::default(),
        }),
        v4::Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            packet_id: u.pkid,
            filters: u.topics,
            properties: Default::default(),
        }),
        v4::Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
            packet_id: u.pkid,
            reason_codes: vec![],
            properties: Default::default(),
        }),
        v4::Packet::PingReq => Packet::PingReq,
        v4::Packet::PingResp => Packet::PingResp,
        v4::Packet::Disconnect => Packet::Disconnect(Disconnect::default()),
    }
}

fn write_v4(p: &v4::Packet, buf: &mut BytesMut) {
    match p {
        v4::Packet::Connect(x) => x.write(buf),
        v4::Packet::ConnAck(x) => x.write(buf),
        v4::Packet::Publish(x) => x.write(buf),
        v4::Packet::PubAck(x) => x.write(buf),
        v4::Packet::PubRec(x) => x.write(buf),
        v4::Packet::PubRel(x) => x.write(buf),
        v4::Packet::PubComp(x) => x.write(buf),
        v4::Packet::Subscribe(x) => x.write(buf),
        v4::Packet::SubAck(x) => x.write(buf),
        v4::Packet::Unsubscribe(x) => x.write(buf),
        v4::Packet::UnsubAck(x) => x.write(buf),
        v4::Packet::PingReq => v4::PingReq.write(buf),
        v4::Packet::PingResp => v4::PingResp.write(buf),
        v4::Packet::Disconnect => v4::Disconnect.write(buf),
    }
    .unwrap();
}

// ---- MQTT 5.0 --------------------------------------------------------------

fn none_if_default<T: Default + PartialEq>(t: T) -> Option<T> {
    (t != T::default()).then_some(t)
}

fn b(v: Option<bool>) -> Option<u8> {
    v.map(u8::from)
}

fn pb(v: Option<u8>) -> Option<bool> {
    v.map(|v| v == 1)
}

fn fit_v5(p: Packet) -> Option<Packet> {
    Some(match p {
        Packet::Connect(mut c) => {
            fit_login(&mut c);
            Packet::Connect(c)
        }
        // mqttbytes cannot read a v5 DISCONNECT without a property block.
        Packet::Disconnect(mut d) => {
            if d.properties == DisconnectProperties::default() {
                d.properties.reason_string = Some("r".into());
            }
            Packet::Disconnect(d)
        }
        Packet::Auth(_) => return None,
        other => other,
    })
}

fn to_v5(p: &Packet) -> v5::Packet {
    match p {
        Packet::Connect(c) => v5::Packet::Connect(v5::Connect {
            protocol: mqttbytes::Protocol::V5,
            keep_alive: c.keep_alive,
            client_id: c.client_id.clone(),
            clean_session: c.clean_start,
            last_will: c.will.as_ref().map(|w| v5::LastWill {
                topic: w.topic.clone(),
                message: w.payload.clone(),
                qos: mqos(w.qos),
                retain: w.retain,
                properties: none_if_default(w.properties.clone()).map(|p| v5::WillProperties {
                    delay_interval: p.will_delay_interval,
                    payload_format_indicator: b(p.payload_format_indicator),
                    message_expiry_interval: p.message_expiry_interval,
                    content_type: p.content_type,
                    response_topic: p.response_topic,
                    correlation_data: p.correlation_data,
                    user_properties: p.user_properties,
                }),
            }),
            login: c.username.as_ref().map(|u| v5::Login {
                username: u.clone(),
                password: c
                    .password
                    .as_ref()
                    .map(|p| String::from_utf8(p.to_vec()).unwrap())
                    .unwrap_or_default(),
            }),
            properties: none_if_default(c.properties.clone()).map(|p| v5::ConnectProperties {
                session_expiry_interval: p.session_expiry_interval,
                receive_maximum: p.receive_maximum,
                max_packet_size: p.maximum_packet_size,
                topic_alias_max: p.topic_alias_maximum,
                request_response_info: b(p.request_response_information),
                request_problem_info: b(p.request_problem_information),
                user_properties: p.user_properties,
                authentication_method: p.authentication_method,
                authentication_data: p.authentication_data,
            }),
        }),
        Packet::ConnAck(a) => {
            let p = a.properties.clone();
            v5::Packet::ConnAck(v5::ConnAck {
                session_present: a.session_present,
                code: connack_code_to_v5(a.reason_code),
                properties: none_if_default(p).map(|p| v5::ConnAckProperties {
                    session_expiry_interval: p.session_expiry_interval,
                    receive_max: p.receive_maximum,
                    max_qos: p.maximum_qos.map(u8::from),
                    retain_available: b(p.retain_available),
                    max_packet_size: p.maximum_packet_size,
                    assigned_client_identifier: p.assigned_client_identifier,
                    topic_alias_max: p.topic_alias_maximum,
                    reason_string: p.reason_string,
                    user_properties: p.user_properties,
                    wildcard_subscription_available: b(p.wildcard_subscription_available),
                    subscription_identifiers_available: b(p.subscription_identifiers_available),
                    shared_subscription_available: b(p.shared_subscription_available),
                    server_keep_alive: p.server_keep_alive,
                    response_information: p.response_information,
                    server_reference: p.server_reference,
                    authentication_method: p.authentication_method,
                    authentication_data: p.authentication_data,
                }),
            })
        }
        Packet::Publish(p) => v5::Packet::Publish(v5::Publish {
            dup: p.dup,
            qos: mqos(p.qos),
            retain: p.retain,
            topic: p.topic.to_string(),
            pkid: p.packet_id,
            payload: p.payload.clone(),
            properties: none_if_default(p.properties.get().clone()).map(|p| {
                v5::PublishProperties {
                    payload_format_indicator: b(p.payload_format_indicator),
                    message_expiry_interval: p.message_expiry_interval,
                    topic_alias: p.topic_alias,
                    response_topic: p.response_topic,
                    correlation_data: p.correlation_data,
                    user_properties: p.user_properties,
                    subscription_identifiers: p
                        .subscription_identifiers
                        .iter()
                        .map(|&i| i as usize)
                        .collect(),
                    content_type: p.content_type,
                }
            }),
        }),
        Packet::PubAck(r) => v5::Packet::PubAck(v5::PubAck {
            pkid: r.packet_id,
            reason: mb_reason::puback(r.reason_code),
            properties: none_if_default(r.properties.clone()).map(|p| v5::PubAckProperties {
                reason_string: p.reason_string,
                user_properties: p.user_properties,
            }),
        }),
        Packet::PubRec(r) => v5::Packet::PubRec(v5::PubRec {
            pkid: r.packet_id,
            reason: mb_reason::pubrec(r.reason_code),
            properties: none_if_default(r.properties.clone()).map(|p| v5::PubRecProperties {
                reason_string: p.reason_string,
                user_properties: p.user_properties,
            }),
        }),
        Packet::PubRel(r) => v5::Packet::PubRel(v5::PubRel {
            pkid: r.packet_id,
            reason: match r.reason_code {
                ReasonCode::Success => v5::PubRelReason::Success,
                _ => v5::PubRelReason::PacketIdentifierNotFound,
            },
            properties: none_if_default(r.properties.clone()).map(|p| v5::PubRelProperties {
                reason_string: p.reason_string,
                user_properties: p.user_properties,
            }),
        }),
        Packet::PubComp(r) => v5::Packet::PubComp(v5::PubComp {
            pkid: r.packet_id,
            reason: match r.reason_code {
                ReasonCode::Success => v5::PubCompReason::Success,
                _ => v5::PubCompReason::PacketIdentifierNotFound,
            },
            properties: none_if_default(r.properties.clone()).map(|p| v5::PubCompProperties {
                reason_string: p.reason_string,
                user_properties: p.user_properties,
            }),
        }),
        Packet::Subscribe(s) => v5::Packet::Subscribe(v5::Subscribe {
            pkid: s.packet_id,
            filters: s
                .filters
                .iter()
                .map(|f| v5::SubscribeFilter {
                    path: f.filter.clone(),
                    qos: mqos(f.options.qos),
                    nolocal: f.options.no_local,
                    preserve_retain: f.options.retain_as_published,
                    retain_forward_rule: match f.options.retain_handling {
                        RetainHandling::OnSubscribe => v5::RetainForwardRule::OnEverySubscribe,
                        RetainHandling::OnNewSubscribe => v5::RetainForwardRule::OnNewSubscribe,
                        RetainHandling::Never => v5::RetainForwardRule::Never,
                    },
                })
                .collect(),
            properties: none_if_default(s.properties.clone()).map(|p| v5::SubscribeProperties {
                id: p.subscription_identifier.map(|i| i as usize),
                user_properties: p.user_properties,
            }),
        }),
        Packet::SubAck(s) => v5::Packet::SubAck(v5::SubAck {
            pkid: s.packet_id,
            return_codes: s
                .reason_codes
                .iter()
                .map(|&c| v5::SubscribeReasonCode::try_from(c as u8).unwrap())
                .collect(),
            properties: none_if_default(s.properties.clone()).map(|p| v5::SubAckProperties {
                reason_string: p.reason_string,
                user_properties: p.user_properties,
            }),
        }),
        Packet::Unsubscribe(u) => v5::Packet::Unsubscribe(v5::Unsubscribe {
            pkid: u.packet_id,
            filters: u.filters.clone(),
            properties: none_if_default(u.properties.clone()).map(|p| v5::UnsubscribeProperties {
                user_properties: p.user_properties,
            }),
        }),
        Packet::UnsubAck(u) => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: u.packet_id,
            reasons: u
                .reason_codes
                .iter()
                .map(|c| mb_reason::unsuback(*c))
                .collect(),
            properties: none_if_default(u.properties.clone()).map(|p| v5::UnsubAckProperties {
                reason_string: p.reason_string,
                user_properties: p.user_properties,
            }),
        }),
        Packet::PingReq => v5::Packet::PingReq,
        Packet::PingResp => v5::Packet::PingResp,
        Packet::Disconnect(d) => v5::Packet::Disconnect(v5::Disconnect {
            reason_code: v5::DisconnectReasonCode::try_from(d.reason_code as u8).unwrap(),
            properties: none_if_default(d.properties.clone()).map(|p| v5::DisconnectProperties {
                session_expiry_interval: p.session_expiry_interval,
                reason_string: p.reason_string,
                user_properties: p.user_properties,
                server_reference: p.server_reference,
            }),
        }),
        Packet::Auth(_) => unreachable!("fitted out"),
    }
}

/// mqttbytes' reason enums have no `TryFrom<u8>`; map through the shared numbers.
mod mb_reason {
    use super::*;

    pub(crate) fn puback(c: ReasonCode) -> v5::PubAckReason {
        use v5::PubAckReason::*;
        [
            Success,
            NoMatchingSubscribers,
            UnspecifiedError,
            ImplementationSpecificError,
            NotAuthorized,
            TopicNameInvalid,
            PacketIdentifierInUse,
            QuotaExceeded,
            PayloadFormatInvalid,
        ]
        .into_iter()
        .find(|r| *r as u8 == c as u8)
        .unwrap()
    }

    pub(crate) fn pubrec(c: ReasonCode) -> v5::PubRecReason {
        use v5::PubRecReason::*;
        [
            Success,
            NoMatchingSubscribers,
            UnspecifiedError,
            ImplementationSpecificError,
            NotAuthorized,
            TopicNameInvalid,
            PacketIdentifierInUse,
            QuotaExceeded,
            PayloadFormatInvalid,
        ]
        .into_iter()
        .find(|r| *r as u8 == c as u8)
        .unwrap()
    }

    pub(crate) fn unsuback(c: ReasonCode) -> v5::UnsubAckReason {
        use v5::UnsubAckReason::*;
        [
            Success,
            NoSubscriptionExisted,
            UnspecifiedError,
            ImplementationSpecificError,
            NotAuthorized,
            TopicFilterInvalid,
            PacketIdentifierInUse,
        ]
        .into_iter()
        .find(|r| *r as u8 == c as u8)
        .unwrap()
    }

    pub(crate) fn connack(c: ReasonCode) -> v5::ConnectReturnCode {
        use v5::ConnectReturnCode::*;
        [
            Success,
            UnspecifiedError,
            MalformedPacket,
            ProtocolError,
            ImplementationSpecificError,
            UnsupportedProtocolVersion,
            ClientIdentifierNotValid,
            BadUserNamePassword,
            NotAuthorized,
            ServerUnavailable,
            ServerBusy,
            Banned,
            BadAuthenticationMethod,
            TopicNameInvalid,
            PacketTooLarge,
            QuotaExceeded,
            PayloadFormatInvalid,
            RetainNotSupported,
            QoSNotSupported,
            UseAnotherServer,
            ServerMoved,
            ConnectionRateExceeded,
        ]
        .into_iter()
        .find(|r| *r as u8 == c as u8)
        .unwrap()
    }
}

fn connack_code_to_v5(c: ReasonCode) -> v5::ConnectReturnCode {
    mb_reason::connack(c)
}

fn from_v5(p: v5::Packet) -> Packet {
    match p {
        v5::Packet::Connect(c) => {
            let (username, password) = match c.login {
                Some(l) => (
                    Some(l.username).filter(|u| !u.is_empty()),
                    Some(l.password).filter(|p| !p.is_empty()).map(Bytes::from),
                ),
                None => (None, None),
            };
            Packet::Connect(Box::new(Connect {
                protocol: Protocol::V5,
                clean_start: c.clean_session,
                keep_alive: c.keep_alive,
                client_id: c.client_id,
                will: c.last_will.map(|w| Will {
                    topic: w.topic,
                    payload: w.message,
                    qos: pqos(w.qos),
                    retain: w.retain,
                    properties: w
                        .properties
                        .map(|p| WillProperties {
                            will_delay_interval: p.delay_interval,
                            payload_format_indicator: pb(p.payload_format_indicator),
                            message_expiry_interval: p.message_expiry_interval,
                            content_type: p.content_type,
                            response_topic: p.response_topic,
                            correlation_data: p.correlation_data,
                            user_properties: p.user_properties,
                        })
                        .unwrap_or_default(),
                }),
                username,
                password,
                properties: c
                    .properties
                    .map(|p| ConnectProperties {
                        session_expiry_interval: p.session_expiry_interval,
                        receive_maximum: p.receive_maximum,
                        maximum_packet_size: p.max_packet_size,
                        topic_alias_maximum: p.topic_alias_max,
                        request_response_information: pb(p.request_response_info),
                        request_problem_information: pb(p.request_problem_info),
                        user_properties: p.user_properties,
                        authentication_method: p.authentication_method,
                        authentication_data: p.authentication_data,
                    })
                    .unwrap_or_default(),
            }))
        }
        v5::Packet::ConnAck(a) => Packet::ConnAck(Box::new(ConnAck {
            session_present: a.session_present,
            reason_code: code(a.code as u8),
            properties: a
                .properties
                .map(|p| ConnAckProperties {
                    session_expiry_interval: p.session_expiry_interval,
                    receive_maximum: p.receive_max,
                    maximum_qos: p.max_qos.map(|q| QoS::try_from(q).unwrap()),
                    retain_available: pb(p.retain_available),
                    maximum_packet_size: p.max_packet_size,
                    assigned_client_identifier: p.assigned_client_identifier,
                    topic_alias_maximum: p.topic_alias_max,
                    reason_string: p.reason_string,
                    user_properties: p.user_properties,
                    wildcard_subscription_available: pb(p.wildcard_subscription_available),
                    subscription_identifiers_available: pb(p.subscription_identifiers_available),
                    shared_subscription_available: pb(p.shared_subscription_available),
                    server_keep_alive: p.server_keep_alive,
                    response_information: p.response_information,
                    server_reference: p.server_reference,
                    authentication_method: p.authentication_method,
                    authentication_data: p.authentication_data,
                })
                .unwrap_or_default(),
        })),
        v5::Packet::Publish(p) => Packet::Publish(Publish {
            dup: p.dup,
            qos: pqos(p.qos),
            retain: p.retain,
            topic: p.topic.into(),
            packet_id: p.pkid,
            payload: p.payload,
            properties: p
                .properties
                .map(|p| PublishProperties {
                    payload_format_indicator: pb(p.payload_format_indicator),
                    message_expiry_interval: p.message_expiry_interval,
                    topic_alias: p.topic_alias,
                    response_topic: p.response_topic,
                    correlation_data: p.correlation_data,
                    user_properties: p.user_properties,
                    subscription_identifiers: p
                        .subscription_identifiers
                        .into_iter()
                        .map(|i| i as u32)
                        .collect(),
                    content_type: p.content_type,
                })
                .unwrap_or_default()
                .into(),
        }),
        v5::Packet::PubAck(r) => Packet::PubAck(reply(
            r.pkid,
            r.reason as u8,
            r.properties.map(|p| (p.reason_string, p.user_properties)),
        )),
        v5::Packet::PubRec(r) => Packet::PubRec(reply(
            r.pkid,
            r.reason as u8,
            r.properties.map(|p| (p.reason_string, p.user_properties)),
        )),
        v5::Packet::PubRel(r) => Packet::PubRel(reply(
            r.pkid,
            r.reason as u8,
            r.properties.map(|p| (p.reason_string, p.user_properties)),
        )),
        v5::Packet::PubComp(r) => Packet::PubComp(reply(
            r.pkid,
            r.reason as u8,
            r.properties.map(|p| (p.reason_string, p.user_properties)),
        )),
        v5::Packet::Subscribe(s) => Packet::Subscribe(Subscribe {
            packet_id: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| SubscribeFilter {
                    filter: f.path,
                    options: SubscriptionOptions {
                        qos: pqos(f.qos),
                        no_local: f.nolocal,
                        retain_as_published: f.preserve_retain,
                        retain_handling: match f.retain_forward_rule {
                            v5::RetainForwardRule::OnEverySubscribe => RetainHandling::OnSubscribe,
                            v5::RetainForwardRule::OnNewSubscribe => RetainHandling::OnNewSubscribe,
                            v5::RetainForwardRule::Never => RetainHandling::Never,
                        },
                    },
                })
                .collect(),
            properties: s
                .properties
                .map(|p| SubscribeProperties {
                    subscription_identifier: p.id.map(|i| i as u32),
                    user_properties: p.user_properties,
                })
                .unwrap_or_default(),
        }),
        v5::Packet::SubAck(s) => Packet::SubAck(SubAck {
            packet_id: s.pkid,
            reason_codes: s.return_codes.into_iter().map(|c| code(c as u8)).collect(),
            properties: ack_props(s.properties.map(|p| (p.reason_string, p.user_properties))),
        }),
        v5::Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            packet_id: u.pkid,
            filters: u.filters,
            properties: u
                .properties
                .map(|p| UnsubscribeProperties {
                    user_properties: p.user_properties,
                })
                .unwrap_or_default(),
        }),
        v5::Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
            packet_id: u.pkid,
            reason_codes: u.reasons.into_iter().map(|c| code(c as u8)).collect(),
            properties: ack_props(u.properties.map(|p| (p.reason_string, p.user_properties))),
        }),
        v5::Packet::PingReq => Packet::PingReq,
        v5::Packet::PingResp => Packet::PingResp,
        v5::Packet::Disconnect(d) => Packet::Disconnect(Disconnect {
            reason_code: code(d.reason_code as u8),
            properties: d
                .properties
                .map(|p| DisconnectProperties {
                    session_expiry_interval: p.session_expiry_interval,
                    reason_string: p.reason_string,
                    user_properties: p.user_properties,
                    server_reference: p.server_reference,
                })
                .unwrap_or_default(),
        }),
    }
}

type AckParts = Option<(Option<String>, Vec<(String, String)>)>;

fn ack_props(p: AckParts) -> AckProperties {
    p.map(|(reason_string, user_properties)| AckProperties {
        reason_string,
        user_properties,
    })
    .unwrap_or_default()
}

fn reply(packet_id: u16, c: u8, p: AckParts) -> PubReply {
    PubReply {
        packet_id,
        reason_code: code(c),
        properties: ack_props(p),
    }
}

fn write_v5(p: &v5::Packet, buf: &mut BytesMut) {
    match p {
        v5::Packet::Connect(x) => x.write(buf),
        v5::Packet::ConnAck(x) => x.write(buf),
        v5::Packet::Publish(x) => x.write(buf),
        v5::Packet::PubAck(x) => x.write(buf),
        v5::Packet::PubRec(x) => x.write(buf),
        v5::Packet::PubRel(x) => x.write(buf),
        v5::Packet::PubComp(x) => x.write(buf),
        v5::Packet::Subscribe(x) => x.write(buf),
        v5::Packet::SubAck(x) => x.write(buf),
        v5::Packet::Unsubscribe(x) => x.write(buf),
        v5::Packet::UnsubAck(x) => x.write(buf),
        v5::Packet::PingReq => v5::PingReq.write(buf),
        v5::Packet::PingResp => v5::PingResp.write(buf),
        v5::Packet::Disconnect(x) => x.write(buf),
    }
    .unwrap();
}

// ---- the properties --------------------------------------------------------

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn v4_pigeon_bytes_mean_the_same_in_mqttbytes(p in common::packet(Protocol::V3_1_1)) {
        let Some(p) = fit_v4(p) else { return Ok(()) };
        let mut buf = BytesMut::new();
        encode(&p, Protocol::V3_1_1, &mut buf).unwrap();
        let theirs = v4::read(&mut buf, MAX).unwrap();
        prop_assert_eq!(from_v4(theirs), p);
    }

    #[test]
    fn v4_mqttbytes_bytes_mean_the_same_in_pigeon(p in common::packet(Protocol::V3_1_1)) {
        let Some(p) = fit_v4(p) else { return Ok(()) };
        let mut buf = BytesMut::new();
        write_v4(&to_v4(&p), &mut buf);
        let ours = decode(&mut buf, Protocol::V3_1_1, MAX).unwrap();
        prop_assert_eq!(ours, Some(p));
    }

    #[test]
    fn v5_pigeon_bytes_mean_the_same_in_mqttbytes(p in common::packet(Protocol::V5)) {
        let Some(p) = fit_v5(p) else { return Ok(()) };
        let mut buf = BytesMut::new();
        encode(&p, Protocol::V5, &mut buf).unwrap();
        let theirs = v5::read(&mut buf, MAX).unwrap();
        prop_assert_eq!(from_v5(theirs), p);
    }

    #[test]
    fn v5_mqttbytes_bytes_mean_the_same_in_pigeon(p in common::packet(Protocol::V5)) {
        let Some(p) = fit_v5(p) else { return Ok(()) };
        let mut buf = BytesMut::new();
        write_v5(&to_v5(&p), &mut buf);
        let ours = decode(&mut buf, Protocol::V5, MAX).unwrap();
        prop_assert_eq!(ours, Some(p));
    }
}
