use bytes::Bytes;

use crate::{AckProperties, BoxedPublishProperties, ByteStr, QoS, ReasonCode};

/// PUBLISH. The payload of a decoded PUBLISH is a slice of the read buffer.
///
/// ```
/// use pigeon_codec::{Publish, QoS};
/// let p = Publish::new("a/b", QoS::AtLeastOnce, "hello");
/// assert_eq!(&*p.topic, "a/b");
/// assert_eq!(p.payload, "hello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Re-delivery of an earlier attempt (QoS 1/2 only).
    pub dup: bool,
    /// Quality of service.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// May be empty only in MQTT 5.0 when a topic alias stands in for it.
    pub topic: ByteStr,
    /// 0 for QoS 0; non-zero otherwise.
    pub packet_id: u16,
    /// The application message.
    pub payload: Bytes,
    /// MQTT 5.0 properties (empty for 3.x): one word, allocated only when
    /// one is set.
    pub properties: BoxedPublishProperties,
}

impl Publish {
    /// A PUBLISH with no packet id (set one before sending at QoS 1/2), no flags, no properties.
    pub fn new(topic: impl Into<ByteStr>, qos: QoS, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id: 0,
            payload: payload.into(),
            properties: BoxedPublishProperties::default(),
        }
    }
}

/// The shape shared by PUBACK, PUBREC, PUBREL and PUBCOMP: a packet id, a
/// reason code (always `Success` on 3.x) and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubReply {
    /// The packet identifier (non-zero).
    pub packet_id: u16,
    /// The reason code (3.x return codes are mapped onto these).
    pub reason_code: ReasonCode,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: AckProperties,
}

impl PubReply {
    /// A successful reply for `packet_id`.
    pub fn new(packet_id: u16) -> Self {
        Self {
            packet_id,
            reason_code: ReasonCode::Success,
            properties: AckProperties::default(),
        }
    }

    /// A reply with a reason code.
    pub fn with_reason(packet_id: u16, reason_code: ReasonCode) -> Self {
        Self {
            packet_id,
            reason_code,
            properties: AckProperties::default(),
        }
    }
}

/// PUBACK: acknowledges a QoS 1 PUBLISH.
pub type PubAck = PubReply;
/// PUBREC: first reply to a QoS 2 PUBLISH.
pub type PubRec = PubReply;
/// PUBREL: the sender's answer to PUBREC.
pub type PubRel = PubReply;
/// PUBCOMP: completes the QoS 2 exchange.
pub type PubComp = PubReply;
