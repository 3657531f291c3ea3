//! SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (spec §3.8 to §3.11).

use super::publish::{emit_packet_id, packet_id};
use super::reasons;
use crate::properties::codec as props;
use crate::wire::{Reader, Sink};
use crate::{
    DecodeError, EncodeError, PacketType, Protocol, QoS, RetainHandling, SubAck, Subscribe,
    SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// Reads a topic filter and checks it.
fn read_filter(r: &mut Reader) -> Result<String, DecodeError> {
    let filter = r.string()?;
    if !crate::topic::valid_topic_filter(&filter) {
        return Err(DecodeError::InvalidTopicFilter(filter));
    }
    Ok(filter)
}

/// The subscription options byte (spec §3.8.3.1). In 3.x only the QoS bits exist
/// and the other six are reserved.
fn read_options(byte: u8, protocol: Protocol) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if protocol.is_v5() {
        0b1100_0000
    } else {
        0b1111_1100
    };
    if byte & reserved != 0 {
        return Err(DecodeError::InvalidSubscriptionOptions(byte));
    }
    let qos = QoS::try_from(byte & 0b11).map_err(DecodeError::InvalidQoS)?;
    let retain_handling = match (byte >> 4) & 0b11 {
        0 => RetainHandling::OnSubscribe,
        1 => RetainHandling::OnNewSubscribe,
        2 => RetainHandling::Never,
        _ => return Err(DecodeError::InvalidSubscriptionOptions(byte)),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0b0100 != 0,
        retain_as_published: byte & 0b1000 != 0,
        retain_handling,
    })
}

fn options_byte(o: &SubscriptionOptions, protocol: Protocol) -> u8 {
    let qos = u8::from(o.qos);
    if !protocol.is_v5() {
        return qos;
    }
    qos | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

pub(super) fn decode_subscribe(
    r: &mut Reader,
    protocol: Protocol,
) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if protocol.is_v5() {
        props::decode(r, PacketType::Subscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = read_filter(r)?;
        let options = read_options(r.u8()?, protocol)?;
        // [MQTT-3.8.3-4]: a client cannot receive its own messages back through a
        // shared subscription's group, so no-local makes no sense there.
        if options.no_local && crate::topic::parse_shared(&filter).is_some() {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopics(PacketType::Subscribe));
    }
    Ok(Subscribe {
        packet_id,
        filters,
        properties,
    })
}

pub(super) fn emit_subscribe<S: Sink>(p: &Subscribe, protocol: Protocol, s: &mut S) {
    emit_packet_id(p.packet_id, s);
    if protocol.is_v5() {
        props::encode(&p.properties, s);
    }
    if p.filters.is_empty() {
        s.fail(EncodeError::NoTopics(PacketType::Subscribe));
    }
    for f in &p.filters {
        s.prefixed(f.filter.as_bytes());
        s.u8(options_byte(&f.options, protocol));
    }
}

pub(super) fn decode_suback(r: &mut Reader, protocol: Protocol) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if protocol.is_v5() {
        props::decode(r, PacketType::SubAck)?
    } else {
        Default::default()
    };
    let mut reason_codes = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let code = r.u8()?;
        reason_codes.push(if protocol.is_v5() {
            reasons::decode_v5(PacketType::SubAck, code)?
        } else {
            reasons::decode_suback_v3(code)?
        });
    }
    if reason_codes.is_empty() {
        return Err(DecodeError::NoTopics(PacketType::SubAck));
    }
    Ok(SubAck {
        packet_id,
        reason_codes,
        properties,
    })
}

pub(super) fn emit_suback<S: Sink>(p: &SubAck, protocol: Protocol, s: &mut S) {
    emit_packet_id(p.packet_id, s);
    if p.reason_codes.is_empty() {
        s.fail(EncodeError::NoTopics(PacketType::SubAck));
    }
    if protocol.is_v5() {
        props::encode(&p.properties, s);
        for &code in &p.reason_codes {
            reasons::emit_v5(PacketType::SubAck, code, s);
        }
    } else {
        for &code in &p.reason_codes {
            match reasons::suback_v3(code) {
                Some(code) => s.u8(code),
                None => {
                    s.fail(EncodeError::OutOfRange(
                        "reason code has no MQTT 3.x SUBACK equivalent",
                    ));
                    s.u8(0x80);
                }
            }
        }
    }
}

pub(super) fn decode_unsubscribe(
    r: &mut Reader,
    protocol: Protocol,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if protocol.is_v5() {
        props::decode(r, PacketType::Unsubscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(read_filter(r)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopics(PacketType::Unsubscribe));
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

pub(super) fn emit_unsubscribe<S: Sink>(p: &Unsubscribe, protocol: Protocol, s: &mut S) {
    emit_packet_id(p.packet_id, s);
    if protocol.is_v5() {
        props::encode(&p.properties, s);
    }
    if p.filters.is_empty() {
        s.fail(EncodeError::NoTopics(PacketType::Unsubscribe));
    }
    for f in &p.filters {
        s.prefixed(f.as_bytes());
    }
}

/// In 3.x UNSUBACK is just the packet identifier; in 5.0 it has one reason
/// code per filter.
pub(super) fn decode_unsuback(r: &mut Reader, protocol: Protocol) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut ack = UnsubAck {
        packet_id,
        reason_codes: Vec::new(),
        properties: Default::default(),
    };
    if protocol.is_v5() {
        ack.properties = props::decode(r, PacketType::UnsubAck)?;
        ack.reason_codes.reserve(r.remaining());
        while !r.is_empty() {
            ack.reason_codes
                .push(reasons::decode_v5(PacketType::UnsubAck, r.u8()?)?);
        }
        if ack.reason_codes.is_empty() {
            return Err(DecodeError::NoTopics(PacketType::UnsubAck));
        }
    }
    r.finish()?;
    Ok(ack)
}

pub(super) fn emit_unsuback<S: Sink>(p: &UnsubAck, protocol: Protocol, s: &mut S) {
    emit_packet_id(p.packet_id, s);
    if protocol.is_v5() {
        if p.reason_codes.is_empty() {
            s.fail(EncodeError::NoTopics(PacketType::UnsubAck));
        }
        props::encode(&p.properties, s);
        for &code in &p.reason_codes {
            reasons::emit_v5(PacketType::UnsubAck, code, s);
        }
    }
}
