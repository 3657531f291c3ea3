//! Which reason codes each packet may carry (spec §2.4 and each packet's
//! section), and the MQTT 3.x return codes they stand for.

use crate::wire::Sink;
use crate::{DecodeError, EncodeError, PacketType, ReasonCode};

/// The MQTT 5.0 reason codes valid on a packet kind.
fn allowed(packet: PacketType, code: u8) -> bool {
    match packet {
        PacketType::ConnAck => matches!(
            code,
            0x00 | 0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F
        ),
        PacketType::PubAck | PacketType::PubRec => {
            matches!(
                code,
                0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
            )
        }
        PacketType::PubRel | PacketType::PubComp => matches!(code, 0x00 | 0x92),
        PacketType::SubAck => matches!(
            code,
            0x00..=0x02 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2
        ),
        PacketType::UnsubAck => matches!(code, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91),
        PacketType::Disconnect => matches!(
            code,
            0x00 | 0x04 | 0x80..=0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2
        ),
        PacketType::Auth => matches!(code, 0x00 | 0x18 | 0x19),
        _ => false,
    }
}

/// Reads an MQTT 5.0 reason code valid for `packet`.
pub(crate) fn decode_v5(packet: PacketType, code: u8) -> Result<ReasonCode, DecodeError> {
    if !allowed(packet, code) {
        return Err(DecodeError::InvalidReasonCode { packet, code });
    }
    ReasonCode::try_from(code).map_err(|code| DecodeError::InvalidReasonCode { packet, code })
}

/// Writes an MQTT 5.0 reason code, refusing one the packet may not carry.
pub(crate) fn emit_v5<S: Sink>(packet: PacketType, code: ReasonCode, s: &mut S) {
    if !allowed(packet, code as u8) {
        s.fail(EncodeError::OutOfRange(
            "reason code not valid for this packet",
        ));
    }
    s.u8(code as u8);
}

/// Reads an MQTT 3.x CONNACK return code.
pub(crate) fn decode_connack_v3(code: u8) -> Result<ReasonCode, DecodeError> {
    Ok(match code {
        0 => ReasonCode::Success,
        1 => ReasonCode::UnsupportedProtocolVersion,
        2 => ReasonCode::ClientIdentifierNotValid,
        3 => ReasonCode::ServerUnavailable,
        4 => ReasonCode::BadUserNameOrPassword,
        5 => ReasonCode::NotAuthorized,
        code => {
            return Err(DecodeError::InvalidReasonCode {
                packet: PacketType::ConnAck,
                code,
            })
        }
    })
}

/// The MQTT 3.x CONNACK return code for a reason code. The five 3.x codes map
/// one to one; the other 5.0 refusals fall back to their closest 3.x meaning
/// (credentials → 4, authorization → 5, anything else → 3 "server unavailable"),
/// so a broker can refuse with one code whatever the client's version.
pub(crate) fn connack_v3(code: ReasonCode) -> Option<u8> {
    use ReasonCode::*;
    Some(match code {
        Success => 0,
        UnsupportedProtocolVersion => 1,
        ClientIdentifierNotValid => 2,
        BadUserNameOrPassword | BadAuthenticationMethod => 4,
        NotAuthorized | Banned => 5,
        code if code.is_error() => 3,
        _ => return None,
    })
}

/// Reads an MQTT 3.x SUBACK return code (granted QoS or 0x80 failure).
pub(crate) fn decode_suback_v3(code: u8) -> Result<ReasonCode, DecodeError> {
    Ok(match code {
        0 => ReasonCode::Success,
        1 => ReasonCode::GrantedQoS1,
        2 => ReasonCode::GrantedQoS2,
        0x80 => ReasonCode::UnspecifiedError,
        code => {
            return Err(DecodeError::InvalidReasonCode {
                packet: PacketType::SubAck,
                code,
            })
        }
    })
}

/// The MQTT 3.x SUBACK return code: any 5.0 failure becomes 0x80.
pub(crate) fn suback_v3(code: ReasonCode) -> Option<u8> {
    match code {
        ReasonCode::Success => Some(0),
        ReasonCode::GrantedQoS1 => Some(1),
        ReasonCode::GrantedQoS2 => Some(2),
        code if code.is_error() => Some(0x80),
        _ => None,
    }
}
