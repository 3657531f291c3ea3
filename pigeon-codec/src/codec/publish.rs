//! PUBLISH (spec §3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP
//! (spec §3.4 to §3.7).

use bytes::BytesMut;

use super::{header, reasons};
use crate::properties::codec as props;
use crate::wire::{var_int_len, Reader, Sink, MAX_VAR_INT};
use crate::{
    ByteStr, DecodeError, EncodeError, PacketType, Protocol, PubReply, Publish, PublishProperties,
    QoS, ReasonCode,
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
    let properties: PublishProperties = if protocol.is_v5() {
        props::decode(r, PacketType::Publish)?
    } else {
        PublishProperties::default()
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

/// The remaining length of a PUBLISH without properties to write (every 3.x
/// PUBLISH and most 5.0 ones), computed directly: this is the broker's hot path,
/// and it must agree with [`emit_publish`] (the round-trip tests check both).
pub(super) fn plain_len(p: &Publish, protocol: Protocol) -> Option<Result<usize, EncodeError>> {
    let v5 = protocol.is_v5();
    if v5 && !p.properties.is_empty() {
        return None;
    }
    // Through the bytes: `str` deref would re-validate UTF-8.
    let topic = p.topic.as_bytes().len();
    if topic > usize::from(u16::MAX) {
        return Some(Err(EncodeError::StringTooLong(topic)));
    }
    let id = if p.qos == QoS::AtMostOnce {
        0
    } else if p.packet_id == 0 {
        return Some(Err(EncodeError::ZeroPacketId));
    } else {
        2
    };
    Some(Ok(2 + topic + id + usize::from(v5) + p.payload.len()))
}

/// Writes a PUBLISH whose body length `plain_len` computed: straight into the
/// buffer, no layout pass (the broker's hot path).
pub(super) fn write_plain(
    p: &Publish,
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
    let (mut head, mut n) = header::fixed_header(header::first_byte_publish(p), body as u32);
    // plain_len refused topics longer than u16::MAX.
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
    dst.extend_from_slice(&p.payload);
    Ok(())
}

pub(super) fn emit_publish<S: Sink>(p: &Publish, protocol: Protocol, s: &mut S) {
    s.prefixed(p.topic.as_bytes());
    if p.qos != QoS::AtMostOnce {
        emit_packet_id(p.packet_id, s);
    }
    if protocol.is_v5() {
        props::encode(&p.properties, s);
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
