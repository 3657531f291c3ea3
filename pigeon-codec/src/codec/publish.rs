//! PUBLISH (spec §3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP
//! (spec §3.4 to §3.7).

use bytes::BytesMut;

use super::{header, reasons};
use crate::properties::codec as props;
use crate::wire::{var_int_len, Reader, Sink, MAX_VAR_INT};
use crate::{
    BoxedPublishProperties, ByteStr, DecodeError, EncodeError, PacketType, Protocol, PubReply,
    Publish, PublishProperties, QoS, ReasonCode,
};

/// Reads a packet identifier that must not be 0.
pub(super) fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::ZeroPacketId),
        id => Ok(id),
    }
}

/// Writes a packet identifier, refusing 0.
pub(super) fn emit_packet_id<S: Sink>(id: u16, s: &mut S) {
    if id == 0 {
        s.fail(EncodeError::ZeroPacketId);
    }
    s.u16(id);
}

#[inline]
pub(super) fn decode_publish(
    flags: u8,
    r: &mut Reader,
    protocol: Protocol,
) -> Result<Publish, DecodeError> {
    // The header parser already refused QoS 3 and DUP at QoS 0.
    let qos = QoS::try_from((flags >> 1) & 0b11).map_err(DecodeError::InvalidQoS)?;
    let raw_topic = r.binary()?;
    let scan = crate::topic::scan(&raw_topic);
    let topic = ByteStr::from_utf8(raw_topic).map_err(|_| DecodeError::InvalidUtf8)?;
    let packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        packet_id(r)?
    };
    let properties = if protocol.is_v5() {
        props::decode_boxed::<PublishProperties>(r, PacketType::Publish)?.map_or_else(
            BoxedPublishProperties::default,
            BoxedPublishProperties::from_box,
        )
    } else {
        BoxedPublishProperties::default()
    };
    let raw_topic = topic.as_bytes();
    if raw_topic.is_empty() {
        // Only a topic alias may stand in for the topic name (MQTT 5.0).
        if properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicWithoutAlias);
        }
    } else if scan.forbidden || !crate::topic::levels_within_limit(raw_topic) {
        if raw_topic.contains(&0) {
            return Err(DecodeError::NullCharacter);
        }
        return Err(DecodeError::InvalidTopicName(topic.to_string()));
    }
    Ok(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 1 != 0,
        topic,
        packet_id,
        payload: r.rest(),
        properties,
    })
}

/// A PUBLISH without MQTT 5.0 properties, by borrowed parts: what a broker
/// writes to each subscriber of a message without building a [`Publish`]
/// (and touching the reference counts of its topic and payload) per copy.
///
/// ```
/// use bytes::BytesMut;
/// use pigeon_codec::{MqttCodec, PlainPublish, Protocol, QoS};
/// let codec = MqttCodec::with_protocol(Protocol::V3_1_1, 1024);
/// let mut out = BytesMut::new();
/// let publish = PlainPublish { topic: "a/b", payload: b"hi", qos: QoS::AtMostOnce, dup: false, retain: false, packet_id: 0 };
/// codec.encode_plain_publish(&publish, &mut out).unwrap();
/// assert_eq!(&out[..], b"\x30\x07\x00\x03a/bhi");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainPublish<'a> {
    /// The topic name.
    pub topic: &'a str,
    /// The application message.
    pub payload: &'a [u8],
    /// The QoS of this copy.
    pub qos: QoS,
    /// The DUP flag (ignored at QoS 0).
    pub dup: bool,
    /// The RETAIN flag of this copy.
    pub retain: bool,
    /// The packet identifier (QoS 1 and 2; not 0).
    pub packet_id: u16,
}

impl<'a> PlainPublish<'a> {
    fn of(p: &'a Publish) -> Self {
        Self {
            topic: &p.topic,
            payload: &p.payload,
            qos: p.qos,
            dup: p.dup,
            retain: p.retain,
            packet_id: p.packet_id,
        }
    }

    fn first_byte(&self) -> u8 {
        let qos = u8::from(self.qos);
        // DUP is meaningless (and forbidden) at QoS 0.
        let dup = self.dup && qos > 0;
        ((PacketType::Publish as u8) << 4)
            | (u8::from(dup) << 3)
            | (qos << 1)
            | u8::from(self.retain)
    }

    /// The remaining length, or why it cannot be encoded.
    fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        // Through the bytes: `str` deref would re-validate UTF-8.
        let topic = self.topic.len();
        if topic > usize::from(u16::MAX) {
            return Err(EncodeError::StringTooLong(topic));
        }
        let id = if self.qos == QoS::AtMostOnce {
            0
        } else if self.packet_id == 0 {
            return Err(EncodeError::ZeroPacketId);
        } else {
            2
        };
        Ok(2 + topic + id + usize::from(protocol.is_v5()) + self.payload.len())
    }

    /// Appends the packet to `dst` if it is at most `max` bytes long.
    pub(crate) fn write(
        &self,
        protocol: Protocol,
        max: usize,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        write_plain(self, protocol, self.body_len(protocol)?, max, dst)
    }
}

/// The body length of a PUBLISH without MQTT 5.0 properties; `None` when it
/// has some (and takes the general path).
pub(super) fn plain_len(p: &Publish, protocol: Protocol) -> Option<Result<usize, EncodeError>> {
    if protocol.is_v5() && !p.properties.is_empty() {
        return None;
    }
    Some(PlainPublish::of(p).body_len(protocol))
}

/// Writes a PUBLISH whose body length `plain_len` computed: straight into the
/// buffer, no layout pass (the broker's hot path).
pub(super) fn write_plain_publish(
    p: &Publish,
    protocol: Protocol,
    body: usize,
    max: usize,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    write_plain(&PlainPublish::of(p), protocol, body, max, dst)
}

fn write_plain(
    p: &PlainPublish<'_>,
    protocol: Protocol,
    body: usize,
    max: usize,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    if body > MAX_VAR_INT as usize {
        return Err(EncodeError::PacketTooLarge {
            size: body,
            max: MAX_VAR_INT as usize,
        });
    }
    let total = 1 + var_int_len(body) + body;
    if total > max {
        return Err(EncodeError::PacketTooLarge { size: total, max });
    }
    dst.reserve(total);
    let topic = p.topic.as_bytes();
    // Fixed header, topic length: one small copy instead of a call per field.
    let (mut head, mut n) = header::fixed_header(p.first_byte(), body as u32);
    // body_len refused topics longer than u16::MAX.
    for byte in (topic.len() as u16).to_be_bytes() {
        if let Some(slot) = head.get_mut(n) {
            *slot = byte;
        }
        n += 1;
    }
    dst.extend_from_slice(head.get(..n).unwrap_or(&head));
    dst.extend_from_slice(topic);
    if p.qos != QoS::AtMostOnce {
        dst.extend_from_slice(&p.packet_id.to_be_bytes());
    }
    if protocol.is_v5() {
        dst.extend_from_slice(&[0]); // empty property block
    }
    dst.extend_from_slice(p.payload);
    Ok(())
}

pub(super) fn emit_publish<S: Sink>(p: &Publish, protocol: Protocol, s: &mut S) {
    s.prefixed(p.topic.as_bytes());
    if p.qos != QoS::AtMostOnce {
        emit_packet_id(p.packet_id, s);
    }
    if protocol.is_v5() {
        props::encode(p.properties.get(), s);
    }
    s.raw(&p.payload);
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP. In 5.0 the reason code may be omitted when
/// it is Success with no properties, and the properties when there are none.
pub(super) fn decode_reply(
    packet: PacketType,
    r: &mut Reader,
    protocol: Protocol,
) -> Result<PubReply, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut reply = PubReply::new(packet_id);
    if protocol.is_v5() {
        if !r.is_empty() {
            reply.reason_code = reasons::decode_v5(packet, r.u8()?)?;
        }
        if !r.is_empty() {
            reply.properties = props::decode(r, packet)?;
        }
    }
    r.finish()?;
    Ok(reply)
}

pub(super) fn emit_reply<S: Sink>(packet: PacketType, p: &PubReply, protocol: Protocol, s: &mut S) {
    emit_packet_id(p.packet_id, s);
    if !protocol.is_v5() {
        return;
    }
    let no_props = p.properties.is_empty();
    if p.reason_code == ReasonCode::Success && no_props {
        return;
    }
    reasons::emit_v5(packet, p.reason_code, s);
    if !no_props {
        props::encode(&p.properties, s);
    }
}
