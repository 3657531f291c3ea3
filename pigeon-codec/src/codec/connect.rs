//! CONNECT (spec §3.1) and CONNACK (spec §3.2).

use super::reasons;
use crate::properties::codec as props;
use crate::wire::{Reader, Sink};
use crate::{ConnAck, Connect, DecodeError, EncodeError, PacketType, Protocol, QoS, Will};

const RESERVED: u8 = 0b0000_0001;
const CLEAN_START: u8 = 0b0000_0010;
const WILL: u8 = 0b0000_0100;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0b0010_0000;
const PASSWORD: u8 = 0b0100_0000;
const USERNAME: u8 = 0b1000_0000;

/// The protocol a CONNECT announces: name and level must agree.
fn read_protocol(r: &mut Reader) -> Result<Protocol, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    match (&name[..], level) {
        (b"MQIsdp", 3) => Ok(Protocol::V3_1),
        (b"MQTT", 4) => Ok(Protocol::V3_1_1),
        (b"MQTT", 5) => Ok(Protocol::V5),
        (b"MQIsdp", _) | (b"MQTT", _) => Err(DecodeError::UnsupportedProtocolLevel(level)),
        _ => Err(DecodeError::InvalidProtocolName(
            String::from_utf8_lossy(&name).into_owned(),
        )),
    }
}

pub(super) fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let protocol = read_protocol(r)?;
    let flags = r.u8()?;
    if flags & RESERVED != 0 {
        return Err(DecodeError::ReservedConnectFlag);
    }
    let has_will = flags & WILL != 0;
    let will_qos = (flags >> WILL_QOS_SHIFT) & 0b11;
    let will_retain = flags & WILL_RETAIN != 0;
    if !has_will && (will_qos != 0 || will_retain) {
        return Err(DecodeError::InvalidWillFlags);
    }
    let will_qos = QoS::try_from(will_qos).map_err(DecodeError::InvalidQoS)?;
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    if protocol == Protocol::V3_1_1 && has_password && !has_username {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16()?;
    let properties = if protocol.is_v5() {
        props::decode(r, PacketType::Connect)?
    } else {
        Default::default()
    };
    let client_id = r.string()?;
    let will = if has_will {
        let properties = if protocol.is_v5() {
            props::decode(r, PacketType::Connect)?
        } else {
            Default::default()
        };
        let topic = r.string()?;
        if !crate::topic::valid_topic_name(&topic) {
            return Err(DecodeError::InvalidTopicName(topic));
        }
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish()?;
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

pub(super) fn emit_connect<S: Sink>(c: &Connect, s: &mut S) {
    let v5 = c.protocol.is_v5();
    s.prefixed(c.protocol.name().as_bytes());
    s.u8(c.protocol.level());
    let mut flags = 0;
    if c.clean_start {
        flags |= CLEAN_START;
    }
    if let Some(will) = &c.will {
        flags |= WILL | (u8::from(will.qos) << WILL_QOS_SHIFT);
        if will.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
        if c.username.is_none() && c.protocol == Protocol::V3_1_1 {
            s.fail(EncodeError::OutOfRange(
                "password without user name in MQTT 3.1.1",
            ));
        }
    }
    s.u8(flags);
    s.u16(c.keep_alive);
    if v5 {
        props::encode(&c.properties, s);
    }
    s.prefixed(c.client_id.as_bytes());
    if let Some(will) = &c.will {
        if v5 {
            props::encode(&will.properties, s);
        }
        s.prefixed(will.topic.as_bytes());
        s.prefixed(&will.payload);
    }
    if let Some(username) = &c.username {
        s.prefixed(username.as_bytes());
    }
    if let Some(password) = &c.password {
        s.prefixed(password);
    }
}

pub(super) fn decode_connack(r: &mut Reader, protocol: Protocol) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & !1 != 0 {
        return Err(DecodeError::InvalidConnAckFlags(flags));
    }
    let code = r.u8()?;
    let (reason_code, properties) = if protocol.is_v5() {
        (
            reasons::decode_v5(PacketType::ConnAck, code)?,
            props::decode(r, PacketType::ConnAck)?,
        )
    } else {
        (reasons::decode_connack_v3(code)?, Default::default())
    };
    r.finish()?;
    Ok(ConnAck {
        session_present: flags & 1 != 0,
        reason_code,
        properties,
    })
}

pub(super) fn emit_connack<S: Sink>(c: &ConnAck, protocol: Protocol, s: &mut S) {
    s.u8(u8::from(c.session_present));
    if protocol.is_v5() {
        reasons::emit_v5(PacketType::ConnAck, c.reason_code, s);
        props::encode(&c.properties, s);
    } else {
        match reasons::connack_v3(c.reason_code) {
            Some(code) => s.u8(code),
            None => {
                s.fail(EncodeError::OutOfRange(
                    "reason code has no MQTT 3.x CONNACK equivalent",
                ));
                s.u8(0);
            }
        }
    }
}
