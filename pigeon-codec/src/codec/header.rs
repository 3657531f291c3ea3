//! The fixed header (spec §2.1): packet type, flags and remaining length.

use crate::wire::{parse_var_int, VarInt};
use crate::{DecodeError, Packet, PacketType, Protocol};

/// A parsed fixed header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) packet_type: PacketType,
    /// The low nibble of the first byte.
    pub(crate) flags: u8,
    /// Bytes taken by the fixed header itself (2 to 5).
    pub(crate) header_len: usize,
    pub(crate) remaining_len: usize,
}

impl PacketType {
    fn from_nibble(n: u8) -> Option<Self> {
        Some(match n {
            1 => PacketType::Connect,
            2 => PacketType::ConnAck,
            3 => PacketType::Publish,
            4 => PacketType::PubAck,
            5 => PacketType::PubRec,
            6 => PacketType::PubRel,
            7 => PacketType::PubComp,
            8 => PacketType::Subscribe,
            9 => PacketType::SubAck,
            10 => PacketType::Unsubscribe,
            11 => PacketType::UnsubAck,
            12 => PacketType::PingReq,
            13 => PacketType::PingResp,
            14 => PacketType::Disconnect,
            15 => PacketType::Auth,
            _ => return None,
        })
    }
}

/// Parses the fixed header at the start of `buf` without consuming it.
///
/// Everything that can be judged from the header is judged here, as soon as its
/// bytes arrive: the type, the flags, the remaining length's encoding and the
/// packet's total size against `max_packet_size`. `Ok(None)` means the header
/// itself is not complete yet.
pub(crate) fn parse_header(
    buf: &[u8],
    protocol: Protocol,
    max_packet_size: usize,
) -> Result<Option<Header>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = PacketType::from_nibble(first >> 4).ok_or(DecodeError::ReservedPacketType)?;
    let flags = first & 0x0F;
    check_flags(packet_type, flags)?;
    if packet_type == PacketType::Auth && !protocol.is_v5() {
        return Err(DecodeError::UnexpectedPacket(PacketType::Auth));
    }
    let (remaining_len, len_len) = match parse_var_int(buf.get(1..).unwrap_or_default()) {
        VarInt::Value { value, len } => (value as usize, len),
        VarInt::Incomplete => return Ok(None),
        VarInt::Malformed => return Err(DecodeError::MalformedRemainingLength),
    };
    let header_len = 1 + len_len;
    let size = header_len + remaining_len;
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    Ok(Some(Header {
        packet_type,
        flags,
        header_len,
        remaining_len,
    }))
}

/// Reserved flag bits (spec §2.1.3): PUBREL, SUBSCRIBE and UNSUBSCRIBE carry
/// 0b0010, PUBLISH carries DUP/QoS/RETAIN, every other packet 0.
fn check_flags(packet_type: PacketType, flags: u8) -> Result<(), DecodeError> {
    let expected = match packet_type {
        PacketType::Publish => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(DecodeError::InvalidQoS(3));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(DecodeError::DupWithQoS0);
            }
            return Ok(());
        }
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
        _ => 0,
    };
    if flags != expected {
        return Err(DecodeError::InvalidFlags {
            packet: packet_type,
            flags,
        });
    }
    Ok(())
}

/// The first byte of the fixed header for `packet`.
pub(crate) fn first_byte(packet: &Packet) -> u8 {
    let kind = packet.packet_type() as u8;
    let flags = match packet {
        Packet::Publish(p) => return first_byte_publish(p),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    (kind << 4) | flags
}

/// The first byte of a PUBLISH: type, DUP, QoS, RETAIN.
pub(crate) fn first_byte_publish(p: &crate::Publish) -> u8 {
    let qos = u8::from(p.qos);
    // DUP is meaningless (and forbidden) at QoS 0.
    let dup = p.dup && qos > 0;
    ((PacketType::Publish as u8) << 4) | (u8::from(dup) << 3) | (qos << 1) | u8::from(p.retain)
}

/// The fixed header for a body of `remaining` bytes (at most `MAX_VAR_INT`), in
/// a buffer with room for two more bytes; returns the buffer and the bytes used.
pub(crate) fn fixed_header(first: u8, remaining: u32) -> ([u8; 7], usize) {
    let mut out = [first, 0, 0, 0, 0, 0, 0];
    let mut n = 1;
    let mut v = remaining;
    loop {
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        if let Some(slot) = out.get_mut(n) {
            *slot = byte;
        }
        n += 1;
        if v == 0 || n == 5 {
            return (out, n);
        }
    }
}
