//! The framing layer: fixed header, maximum size, version tracking. The bodies of
//! each packet kind live in the sibling modules.

mod connect;
mod framed;
mod header;
mod publish;
mod reasons;
mod session;
mod subscribe;

use bytes::{Buf, BytesMut};

use crate::wire::{var_int_len, Counter, Reader, Sink, Writer};
use crate::{DecodeError, EncodeError, Packet, PacketType, Protocol};

pub use framed::MqttCodec;
pub(crate) use header::{parse_header, Header};
pub use publish::PlainPublish;

/// The default largest packet accepted: 1 MiB.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1024 * 1024;

/// Decodes one packet from the front of `buf` for a connection speaking `protocol`.
///
/// Returns `Ok(None)` when more bytes are needed. The size limit (whole packet,
/// fixed header included) is checked from the fixed header, before the body is
/// buffered. A CONNECT is decoded in whatever version it announces.
///
/// On success the packet's bytes are removed from `buf`; the topic and payload
/// of a PUBLISH point into them (no copy). After an error the connection is
/// expected to close: `buf` may or may not still hold the bad packet.
pub fn decode(
    buf: &mut BytesMut,
    protocol: Protocol,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = parse_header(buf, protocol, max_packet_size)? else {
        return Ok(None);
    };
    let total = header.header_len + header.remaining_len;
    if buf.len() < total {
        // The size was checked against the limit above, so this reservation is bounded.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if header.remaining_len == 2 {
        if let Some(reply) = bare_reply(&header, buf)? {
            return Ok(Some(reply));
        }
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(header.header_len);
    decode_body(&header, Reader::new(frame), protocol)
}

/// An acknowledgement of a PUBLISH that holds only its packet id (every
/// 3.x one, and a successful 5.0 one without properties), read in place:
/// a QoS 1 subscriber sends one per delivery, and the frame other packets
/// get (`split_to`, `freeze`) cost more than the rest of its decoding.
fn bare_reply(header: &Header, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
    if !matches!(
        header.packet_type,
        PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp
    ) {
        return Ok(None);
    }
    let at = header.header_len;
    let Some(&[high, low]) = buf.get(at..at + 2) else {
        return Ok(None);
    };
    let packet_id = u16::from_be_bytes([high, low]);
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketId);
    }
    buf.advance(at + 2);
    let reply = crate::PubReply::new(packet_id);
    // A match, not a `fn` pointer to the variant: called through a pointer,
    // the constructor was not inlined, and built the whole `Packet` out of line.
    Ok(Some(match header.packet_type {
        PacketType::PubAck => Packet::PubAck(reply),
        PacketType::PubRec => Packet::PubRec(reply),
        PacketType::PubRel => Packet::PubRel(reply),
        _ => Packet::PubComp(reply),
    }))
}

#[inline]
fn decode_body(
    header: &Header,
    mut r: Reader,
    protocol: Protocol,
) -> Result<Option<Packet>, DecodeError> {
    let packet = match header.packet_type {
        PacketType::Connect => Packet::Connect(Box::new(connect::decode_connect(&mut r)?)),
        PacketType::ConnAck => {
            Packet::ConnAck(Box::new(connect::decode_connack(&mut r, protocol)?))
        }
        PacketType::Publish => {
            Packet::Publish(publish::decode_publish(header.flags, &mut r, protocol)?)
        }
        PacketType::PubAck => {
            Packet::PubAck(publish::decode_reply(PacketType::PubAck, &mut r, protocol)?)
        }
        PacketType::PubRec => {
            Packet::PubRec(publish::decode_reply(PacketType::PubRec, &mut r, protocol)?)
        }
        PacketType::PubRel => {
            Packet::PubRel(publish::decode_reply(PacketType::PubRel, &mut r, protocol)?)
        }
        PacketType::PubComp => Packet::PubComp(publish::decode_reply(
            PacketType::PubComp,
            &mut r,
            protocol,
        )?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode_subscribe(&mut r, protocol)?),
        PacketType::SubAck => Packet::SubAck(subscribe::decode_suback(&mut r, protocol)?),
        PacketType::Unsubscribe => {
            Packet::Unsubscribe(subscribe::decode_unsubscribe(&mut r, protocol)?)
        }
        PacketType::UnsubAck => Packet::UnsubAck(subscribe::decode_unsuback(&mut r, protocol)?),
        PacketType::PingReq => {
            r.finish()?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            r.finish()?;
            Packet::PingResp
        }
        PacketType::Disconnect => Packet::Disconnect(session::decode_disconnect(&mut r, protocol)?),
        PacketType::Auth => Packet::Auth(Box::new(session::decode_auth(&mut r)?)),
    };
    Ok(Some(packet))
}

/// The version a packet is written in: a CONNECT always uses its own.
fn effective_protocol(packet: &Packet, protocol: Protocol) -> Protocol {
    match packet {
        Packet::Connect(c) => c.protocol,
        _ => protocol,
    }
}

/// Appends the encoding of `packet` for `protocol` to `dst`, reserving the
/// exact size first so it is written once. A CONNECT is encoded in the version
/// it names. MQTT 5.0 properties are not written for 3.x.
pub fn encode(packet: &Packet, protocol: Protocol, dst: &mut BytesMut) -> Result<(), EncodeError> {
    encode_limited(packet, protocol, usize::MAX, dst)
}

pub(crate) fn encode_limited(
    packet: &Packet,
    protocol: Protocol,
    max: usize,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    if let Packet::Publish(p) = packet {
        if let Some(body) = publish::plain_len(p, protocol) {
            return publish::write_plain_publish(p, protocol, body?, max, dst);
        }
    }
    if let Some(bare) = bare_reply_bytes(packet, protocol) {
        return put_bare_ack(bare, max, dst);
    }
    encode_sized(packet, protocol, max, dst)
}

/// Any packet, sized first (two passes over its fields), then written.
fn encode_sized(
    packet: &Packet,
    protocol: Protocol,
    max: usize,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let protocol = effective_protocol(packet, protocol);
    if matches!(packet, Packet::Auth(_)) && !protocol.is_v5() {
        return Err(EncodeError::UnsupportedPacket(PacketType::Auth));
    }
    let mut counter = Counter::default();
    emit_body(packet, protocol, &mut counter);
    let body = checked_body_len(counter.result()?)?;
    let total = 1 + var_int_len(body) + body;
    if total > max {
        return Err(EncodeError::PacketTooLarge { size: total, max });
    }
    dst.reserve(total);
    let mut w = Writer::new(dst, &counter);
    w.u8(header::first_byte(packet));
    // checked_body_len refused anything above the variable byte integer range.
    w.var_int(body as u32);
    emit_body(packet, protocol, &mut w);
    Ok(())
}

/// The four bytes of an acknowledgement that holds only its packet id (every
/// 3.x one, and a successful 5.0 one without properties), as `emit_body`
/// would write them: the broker sends one per QoS 1 message it receives, and
/// sizing it first, as other packets are, cost more than the rest of sending it.
fn bare_reply_bytes(packet: &Packet, protocol: Protocol) -> Option<[u8; 4]> {
    let reply = match packet {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => r,
        _ => return None,
    };
    let bare = !protocol.is_v5()
        || (reply.reason_code == crate::ReasonCode::Success && reply.properties.is_empty());
    if !bare {
        return None;
    }
    bare_ack_bytes(packet.packet_type(), reply.packet_id)
}

/// The four bytes of an acknowledgement of `kind` that holds only
/// `packet_id`; none for a packet type that is no acknowledgement.
pub(crate) fn bare_ack_bytes(kind: PacketType, packet_id: u16) -> Option<[u8; 4]> {
    let flags = match kind {
        PacketType::PubAck | PacketType::PubRec | PacketType::PubComp => 0,
        PacketType::PubRel => 0b0010,
        _ => return None,
    };
    let [high, low] = packet_id.to_be_bytes();
    Some([((kind as u8) << 4) | flags, 2, high, low])
}

/// Appends the bytes of a bare acknowledgement within the peer's `max`.
pub(crate) fn put_bare_ack(
    bytes: [u8; 4],
    max: usize,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    if bytes.len() > max {
        return Err(EncodeError::PacketTooLarge {
            size: bytes.len(),
            max,
        });
    }
    dst.extend_from_slice(&bytes);
    Ok(())
}

/// The exact number of bytes `encode` writes for `packet`, fixed header included.
/// Fails for the same reasons `encode` does.
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let protocol = effective_protocol(packet, protocol);
    let body = body_len(packet, protocol)?;
    Ok(1 + var_int_len(body) + body)
}

/// The remaining length, after checking that the packet can be encoded at all.
fn body_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let len = match packet {
        Packet::Publish(p) => match publish::plain_len(p, protocol) {
            Some(len) => len?,
            None => counted_len(packet, protocol)?,
        },
        Packet::Auth(_) if !protocol.is_v5() => {
            return Err(EncodeError::UnsupportedPacket(PacketType::Auth))
        }
        _ => counted_len(packet, protocol)?,
    };
    checked_body_len(len)
}

/// A remaining length must fit a variable byte integer.
fn checked_body_len(len: usize) -> Result<usize, EncodeError> {
    if len > crate::wire::MAX_VAR_INT as usize {
        return Err(EncodeError::PacketTooLarge {
            size: len,
            max: crate::wire::MAX_VAR_INT as usize,
        });
    }
    Ok(len)
}

/// The body length by a counting pass over the packet's layout, which also
/// validates what the writing pass will then write without checks.
fn counted_len(packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
    let mut counter = Counter::default();
    emit_body(packet, protocol, &mut counter);
    counter.result()
}

/// Describes the variable header and payload of `packet` to `s`.
fn emit_body<S: Sink>(packet: &Packet, protocol: Protocol, s: &mut S) {
    match packet {
        Packet::Connect(c) => connect::emit_connect(c, s),
        Packet::ConnAck(c) => connect::emit_connack(c, protocol, s),
        Packet::Publish(p) => publish::emit_publish(p, protocol, s),
        Packet::PubAck(p) => publish::emit_reply(PacketType::PubAck, p, protocol, s),
        Packet::PubRec(p) => publish::emit_reply(PacketType::PubRec, p, protocol, s),
        Packet::PubRel(p) => publish::emit_reply(PacketType::PubRel, p, protocol, s),
        Packet::PubComp(p) => publish::emit_reply(PacketType::PubComp, p, protocol, s),
        Packet::Subscribe(p) => subscribe::emit_subscribe(p, protocol, s),
        Packet::SubAck(p) => subscribe::emit_suback(p, protocol, s),
        Packet::Unsubscribe(p) => subscribe::emit_unsubscribe(p, protocol, s),
        Packet::UnsubAck(p) => subscribe::emit_unsuback(p, protocol, s),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => session::emit_disconnect(d, protocol, s),
        Packet::Auth(a) => session::emit_auth(a, s),
    }
}

#[cfg(test)]
mod tests;
