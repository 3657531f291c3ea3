//! DISCONNECT (spec §3.14) and AUTH (spec §3.15).

use super::reasons;
use crate::properties::codec as props;
use crate::wire::{Reader, Sink};
use crate::{Auth, DecodeError, Disconnect, PacketType, Protocol, ReasonCode};

/// In 5.0 a remaining length of 0 means Success with no properties, and 1 means
/// a reason code with no properties. In 3.x DISCONNECT has no body.
pub(super) fn decode_disconnect(
    r: &mut Reader,
    protocol: Protocol,
) -> Result<Disconnect, DecodeError> {
    let mut d = Disconnect::default();
    if protocol.is_v5() {
        if !r.is_empty() {
            d.reason_code = reasons::decode_v5(PacketType::Disconnect, r.u8()?)?;
        }
        if !r.is_empty() {
            d.properties = props::decode(r, PacketType::Disconnect)?;
        }
    }
    r.finish()?;
    Ok(d)
}

pub(super) fn emit_disconnect<S: Sink>(d: &Disconnect, protocol: Protocol, s: &mut S) {
    if !protocol.is_v5() {
        return;
    }
    let no_props = props::is_empty(&d.properties);
    if d.reason_code == ReasonCode::Success && no_props {
        return;
    }
    reasons::emit_v5(PacketType::Disconnect, d.reason_code, s);
    if !no_props {
        props::encode(&d.properties, s);
    }
}

/// AUTH exists only in 5.0 (the header parser refuses it in 3.x). A remaining
/// length of 0 means Success with no properties.
pub(super) fn decode_auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let mut a = Auth::default();
    if !r.is_empty() {
        a.reason_code = reasons::decode_v5(PacketType::Auth, r.u8()?)?;
    }
    // As for DISCONNECT, a missing property length means no properties.
    if !r.is_empty() {
        a.properties = props::decode(r, PacketType::Auth)?;
    }
    r.finish()?;
    Ok(a)
}

pub(super) fn emit_auth<S: Sink>(a: &Auth, s: &mut S) {
    if a.reason_code == ReasonCode::Success && props::is_empty(&a.properties) {
        return;
    }
    reasons::emit_v5(PacketType::Auth, a.reason_code, s);
    props::encode(&a.properties, s);
}
