//! Reading and writing property blocks (spec §2.2.2). Each packet's properties
//! struct says which identifiers it accepts ([`PropertySet::read`]); an identifier
//! the spec knows but the packet may not carry is a protocol error, one the spec
//! does not know is malformed.

use crate::wire::{Counter, Reader, Sink};
use crate::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DecodeError,
    DisconnectProperties, EncodeError, PacketType, PublishProperties, QoS, SubscribeProperties,
    UnsubscribeProperties, UserProperties, WillProperties,
};

pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
pub(crate) const CONTENT_TYPE: u8 = 0x03;
pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
pub(crate) const CORRELATION_DATA: u8 = 0x09;
pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
pub(crate) const REASON_STRING: u8 = 0x1F;
pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
pub(crate) const TOPIC_ALIAS: u8 = 0x23;
pub(crate) const MAXIMUM_QOS: u8 = 0x24;
pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
pub(crate) const USER_PROPERTY: u8 = 0x26;
pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;

/// Identifiers defined by MQTT 5.0.
fn is_known(id: u8) -> bool {
    matches!(
        id,
        0x01..=0x03
            | 0x08
            | 0x09
            | 0x0B
            | 0x11..=0x13
            | 0x15..=0x19
            | 0x1A
            | 0x1C
            | 0x1F
            | 0x21..=0x2A
    )
}

/// One packet kind's properties: how to read one of them and how to write them all.
pub(crate) trait PropertySet: Default {
    /// Reads the value of property `id` into `self`; `Ok(false)` when this packet
    /// kind may not carry `id`.
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError>;
    /// Writes every property that is set, in a fixed order.
    fn emit<S: Sink>(&self, s: &mut S);
    /// Checks rules spanning several properties, after the whole block is read.
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

/// Reads a property block (length, then properties) for a packet of kind `packet`.
pub(crate) fn decode<P: PropertySet>(r: &mut Reader, packet: PacketType) -> Result<P, DecodeError> {
    let len = r.var_int()? as usize;
    let mut props = P::default();
    read_block(r.sub(len)?, packet, &mut props)?;
    Ok(props)
}

/// As [`decode`], into a box allocated only when the block is not empty (the
/// per-message PUBLISH: an empty block costs no allocation and no struct).
pub(crate) fn decode_boxed<P: PropertySet>(
    r: &mut Reader,
    packet: PacketType,
) -> Result<Option<Box<P>>, DecodeError> {
    let len = r.var_int()? as usize;
    let block = r.sub(len)?;
    if block.is_empty() {
        return Ok(None);
    }
    // Read in place: building the struct on the stack and boxing it would move it.
    let mut props = Box::<P>::default();
    read_block(block, packet, &mut *props)?;
    Ok(Some(props))
}

fn read_block<P: PropertySet>(
    mut block: Reader,
    packet: PacketType,
    props: &mut P,
) -> Result<(), DecodeError> {
    while !block.is_empty() {
        // The identifier is a variable byte integer, but every defined one fits in
        // its first byte: a continuation bit means an unknown identifier.
        let id = block.u8()?;
        if !props.read(id, &mut block)? {
            return Err(if is_known(id) {
                DecodeError::PropertyNotAllowed {
                    packet,
                    property: id,
                }
            } else {
                DecodeError::UnknownProperty(id)
            });
        }
    }
    props.validate()
}

/// Writes a property block (length, then properties).
pub(crate) fn encode<P: PropertySet, S: Sink>(props: &P, s: &mut S) {
    s.block(|s| props.emit(s));
}

// ---- reading helpers -------------------------------------------------------

/// Stores a single-valued property, refusing a second occurrence.
fn once<T>(slot: &mut Option<T>, id: u8, value: T) -> Result<bool, DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(value);
    Ok(true)
}

fn read_bool(r: &mut Reader, id: u8) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::InvalidPropertyValue(id)),
    }
}

fn read_nonzero_u16(r: &mut Reader, id: u8) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::InvalidPropertyValue(id)),
        v => Ok(v),
    }
}

fn read_nonzero_u32(r: &mut Reader, id: u8) -> Result<u32, DecodeError> {
    match r.u32()? {
        0 => Err(DecodeError::InvalidPropertyValue(id)),
        v => Ok(v),
    }
}

fn read_subscription_id(r: &mut Reader) -> Result<u32, DecodeError> {
    match r.var_int()? {
        0 => Err(DecodeError::InvalidPropertyValue(SUBSCRIPTION_IDENTIFIER)),
        v => Ok(v),
    }
}

fn read_user(r: &mut Reader, user: &mut UserProperties) -> Result<bool, DecodeError> {
    let name = r.string()?;
    let value = r.string()?;
    user.push((name, value));
    Ok(true)
}

// ---- writing helpers -------------------------------------------------------

fn w_bool<S: Sink>(s: &mut S, id: u8, v: Option<bool>) {
    if let Some(v) = v {
        s.u8(id);
        s.u8(u8::from(v));
    }
}

fn w_u16<S: Sink>(s: &mut S, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        s.u8(id);
        s.u16(v);
    }
}

fn w_u32<S: Sink>(s: &mut S, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        s.u8(id);
        s.u32(v);
    }
}

fn w_str<S: Sink>(s: &mut S, id: u8, v: &Option<String>) {
    if let Some(v) = v {
        s.u8(id);
        s.prefixed(v.as_bytes());
    }
}

fn w_bin<S: Sink>(s: &mut S, id: u8, v: &Option<bytes::Bytes>) {
    if let Some(v) = v {
        s.u8(id);
        s.prefixed(v);
    }
}

fn w_user<S: Sink>(s: &mut S, user: &UserProperties) {
    for (name, value) in user {
        s.u8(USER_PROPERTY);
        s.prefixed(name.as_bytes());
        s.prefixed(value.as_bytes());
    }
}

fn w_subscription_id<S: Sink>(s: &mut S, v: u32) {
    if v == 0 {
        s.fail(EncodeError::OutOfRange("subscription identifier 0"));
    }
    s.u8(SUBSCRIPTION_IDENTIFIER);
    s.var_int(v);
}

fn w_nonzero_u16<S: Sink>(s: &mut S, id: u8, v: Option<u16>, what: &'static str) {
    if v == Some(0) {
        s.fail(EncodeError::OutOfRange(what));
    }
    w_u16(s, id, v);
}

fn w_nonzero_u32<S: Sink>(s: &mut S, id: u8, v: Option<u32>, what: &'static str) {
    if v == Some(0) {
        s.fail(EncodeError::OutOfRange(what));
    }
    w_u32(s, id, v);
}

/// Authentication Data without an Authentication Method is a protocol error
/// (spec §3.1.2.11.10, §3.2.2.3.18, §3.15.2.2.3).
fn check_auth<T>(method: &Option<String>, data: &Option<T>) -> Result<(), DecodeError> {
    if data.is_some() && method.is_none() {
        return Err(DecodeError::InvalidPropertyValue(AUTHENTICATION_DATA));
    }
    Ok(())
}

// ---- one impl per packet kind ----------------------------------------------

impl PropertySet for ConnectProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            SESSION_EXPIRY_INTERVAL => once(&mut self.session_expiry_interval, id, r.u32()?),
            RECEIVE_MAXIMUM => once(&mut self.receive_maximum, id, read_nonzero_u16(r, id)?),
            MAXIMUM_PACKET_SIZE => {
                once(&mut self.maximum_packet_size, id, read_nonzero_u32(r, id)?)
            }
            TOPIC_ALIAS_MAXIMUM => once(&mut self.topic_alias_maximum, id, r.u16()?),
            REQUEST_RESPONSE_INFORMATION => once(
                &mut self.request_response_information,
                id,
                read_bool(r, id)?,
            ),
            REQUEST_PROBLEM_INFORMATION => {
                once(&mut self.request_problem_information, id, read_bool(r, id)?)
            }
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            AUTHENTICATION_METHOD => once(&mut self.authentication_method, id, r.string()?),
            AUTHENTICATION_DATA => once(&mut self.authentication_data, id, r.binary()?),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_u32(s, SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        w_nonzero_u16(
            s,
            RECEIVE_MAXIMUM,
            self.receive_maximum,
            "receive maximum 0",
        );
        w_nonzero_u32(
            s,
            MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size,
            "maximum packet size 0",
        );
        w_u16(s, TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        w_bool(
            s,
            REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        w_bool(
            s,
            REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        w_user(s, &self.user_properties);
        w_str(s, AUTHENTICATION_METHOD, &self.authentication_method);
        w_bin(s, AUTHENTICATION_DATA, &self.authentication_data);
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_auth(&self.authentication_method, &self.authentication_data)
    }
}

impl PropertySet for WillProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            WILL_DELAY_INTERVAL => once(&mut self.will_delay_interval, id, r.u32()?),
            PAYLOAD_FORMAT_INDICATOR => {
                once(&mut self.payload_format_indicator, id, read_bool(r, id)?)
            }
            MESSAGE_EXPIRY_INTERVAL => once(&mut self.message_expiry_interval, id, r.u32()?),
            CONTENT_TYPE => once(&mut self.content_type, id, r.string()?),
            RESPONSE_TOPIC => once(&mut self.response_topic, id, read_response_topic(r)?),
            CORRELATION_DATA => once(&mut self.correlation_data, id, r.binary()?),
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_u32(s, WILL_DELAY_INTERVAL, self.will_delay_interval);
        w_bool(s, PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        w_u32(s, MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        w_str(s, CONTENT_TYPE, &self.content_type);
        w_str(s, RESPONSE_TOPIC, &self.response_topic);
        w_bin(s, CORRELATION_DATA, &self.correlation_data);
        w_user(s, &self.user_properties);
    }
}

/// The Response Topic is a topic name: no wildcards [MQTT-3.3.2-14].
fn read_response_topic(r: &mut Reader) -> Result<String, DecodeError> {
    let topic = r.string()?;
    if !crate::topic::valid_topic_name(&topic) {
        return Err(DecodeError::InvalidTopicName(topic));
    }
    Ok(topic)
}

impl PropertySet for ConnAckProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            SESSION_EXPIRY_INTERVAL => once(&mut self.session_expiry_interval, id, r.u32()?),
            RECEIVE_MAXIMUM => once(&mut self.receive_maximum, id, read_nonzero_u16(r, id)?),
            MAXIMUM_QOS => {
                let qos = match r.u8()? {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => return Err(DecodeError::InvalidPropertyValue(id)),
                };
                once(&mut self.maximum_qos, id, qos)
            }
            RETAIN_AVAILABLE => once(&mut self.retain_available, id, read_bool(r, id)?),
            MAXIMUM_PACKET_SIZE => {
                once(&mut self.maximum_packet_size, id, read_nonzero_u32(r, id)?)
            }
            ASSIGNED_CLIENT_IDENTIFIER => {
                once(&mut self.assigned_client_identifier, id, r.string()?)
            }
            TOPIC_ALIAS_MAXIMUM => once(&mut self.topic_alias_maximum, id, r.u16()?),
            REASON_STRING => once(&mut self.reason_string, id, r.string()?),
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            WILDCARD_SUBSCRIPTION_AVAILABLE => once(
                &mut self.wildcard_subscription_available,
                id,
                read_bool(r, id)?,
            ),
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => once(
                &mut self.subscription_identifiers_available,
                id,
                read_bool(r, id)?,
            ),
            SHARED_SUBSCRIPTION_AVAILABLE => once(
                &mut self.shared_subscription_available,
                id,
                read_bool(r, id)?,
            ),
            SERVER_KEEP_ALIVE => once(&mut self.server_keep_alive, id, r.u16()?),
            RESPONSE_INFORMATION => once(&mut self.response_information, id, r.string()?),
            SERVER_REFERENCE => once(&mut self.server_reference, id, r.string()?),
            AUTHENTICATION_METHOD => once(&mut self.authentication_method, id, r.string()?),
            AUTHENTICATION_DATA => once(&mut self.authentication_data, id, r.binary()?),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_u32(s, SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        w_nonzero_u16(
            s,
            RECEIVE_MAXIMUM,
            self.receive_maximum,
            "receive maximum 0",
        );
        if let Some(qos) = self.maximum_qos {
            if qos == QoS::ExactlyOnce {
                s.fail(EncodeError::OutOfRange("maximum QoS 2 (omit the property)"));
            }
            s.u8(MAXIMUM_QOS);
            s.u8(qos.into());
        }
        w_bool(s, RETAIN_AVAILABLE, self.retain_available);
        w_nonzero_u32(
            s,
            MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size,
            "maximum packet size 0",
        );
        w_str(
            s,
            ASSIGNED_CLIENT_IDENTIFIER,
            &self.assigned_client_identifier,
        );
        w_u16(s, TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        w_str(s, REASON_STRING, &self.reason_string);
        w_user(s, &self.user_properties);
        w_bool(
            s,
            WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        w_bool(
            s,
            SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        w_bool(
            s,
            SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        w_u16(s, SERVER_KEEP_ALIVE, self.server_keep_alive);
        w_str(s, RESPONSE_INFORMATION, &self.response_information);
        w_str(s, SERVER_REFERENCE, &self.server_reference);
        w_str(s, AUTHENTICATION_METHOD, &self.authentication_method);
        w_bin(s, AUTHENTICATION_DATA, &self.authentication_data);
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_auth(&self.authentication_method, &self.authentication_data)
    }
}

impl PropertySet for PublishProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            PAYLOAD_FORMAT_INDICATOR => {
                once(&mut self.payload_format_indicator, id, read_bool(r, id)?)
            }
            MESSAGE_EXPIRY_INTERVAL => once(&mut self.message_expiry_interval, id, r.u32()?),
            TOPIC_ALIAS => once(&mut self.topic_alias, id, read_nonzero_u16(r, id)?),
            RESPONSE_TOPIC => once(&mut self.response_topic, id, read_response_topic(r)?),
            CORRELATION_DATA => once(&mut self.correlation_data, id, r.binary()?),
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            SUBSCRIPTION_IDENTIFIER => {
                // A server forwarding a message that matched several subscriptions
                // sends one identifier per subscription.
                self.subscription_identifiers.push(read_subscription_id(r)?);
                Ok(true)
            }
            CONTENT_TYPE => once(&mut self.content_type, id, r.string()?),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_bool(s, PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        w_u32(s, MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        w_nonzero_u16(s, TOPIC_ALIAS, self.topic_alias, "topic alias 0");
        w_str(s, RESPONSE_TOPIC, &self.response_topic);
        w_bin(s, CORRELATION_DATA, &self.correlation_data);
        w_user(s, &self.user_properties);
        for &id in &self.subscription_identifiers {
            w_subscription_id(s, id);
        }
        w_str(s, CONTENT_TYPE, &self.content_type);
    }
}

impl PropertySet for AckProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            REASON_STRING => once(&mut self.reason_string, id, r.string()?),
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_str(s, REASON_STRING, &self.reason_string);
        w_user(s, &self.user_properties);
    }
}

impl PropertySet for SubscribeProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            SUBSCRIPTION_IDENTIFIER => once(
                &mut self.subscription_identifier,
                id,
                read_subscription_id(r)?,
            ),
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        if let Some(id) = self.subscription_identifier {
            w_subscription_id(s, id);
        }
        w_user(s, &self.user_properties);
    }
}

impl PropertySet for UnsubscribeProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_user(s, &self.user_properties);
    }
}

impl PropertySet for DisconnectProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            SESSION_EXPIRY_INTERVAL => once(&mut self.session_expiry_interval, id, r.u32()?),
            REASON_STRING => once(&mut self.reason_string, id, r.string()?),
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            SERVER_REFERENCE => once(&mut self.server_reference, id, r.string()?),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_u32(s, SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        w_str(s, REASON_STRING, &self.reason_string);
        w_user(s, &self.user_properties);
        w_str(s, SERVER_REFERENCE, &self.server_reference);
    }
}

impl PropertySet for AuthProperties {
    fn read(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
        match id {
            AUTHENTICATION_METHOD => once(&mut self.authentication_method, id, r.string()?),
            AUTHENTICATION_DATA => once(&mut self.authentication_data, id, r.binary()?),
            REASON_STRING => once(&mut self.reason_string, id, r.string()?),
            USER_PROPERTY => read_user(r, &mut self.user_properties),
            _ => Ok(false),
        }
    }

    fn emit<S: Sink>(&self, s: &mut S) {
        w_str(s, AUTHENTICATION_METHOD, &self.authentication_method);
        w_bin(s, AUTHENTICATION_DATA, &self.authentication_data);
        w_str(s, REASON_STRING, &self.reason_string);
        w_user(s, &self.user_properties);
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_auth(&self.authentication_method, &self.authentication_data)
    }
}

/// True when a property block would be empty (so optional trailing fields may be omitted).
pub(crate) fn is_empty<P: PropertySet>(props: &P) -> bool {
    let mut counter = Counter::default();
    props.emit(&mut counter);
    counter.len == 0
}
