//! PUBLISH (spec §3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP
//! (spec §3.4 to §3.7).

use super::reasons;
use crate::properties::codec as props;
use crate::wire::{Reader, Sink};
use crate::{
    DecodeError, EncodeError, PacketType, Protocol, PubReply, Publish, PublishProperties, QoS,
    ReasonCode,
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

pub(super) fn decode_publish(
    flags: u8,
    r: &mut Reader,
    protocol: Protocol,
) -> Result<Publish, DecodeError> {
    // The header parser already refused QoS 3 and DUP at QoS 0.
    let qos = QoS::try_from((flags >> 1) & 0b11).map_err(DecodeError::InvalidQoS)?;
    let topic = r.byte_str()?;
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
    if topic.is_empty() {
        // Only a topic alias may stand in for the topic name (MQTT 5.0).
        if properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicWithoutAlias);
        }
    } else if !crate::topic::valid_topic_name(&topic) {
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
