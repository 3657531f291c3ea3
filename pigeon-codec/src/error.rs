use crate::{PacketType, ReasonCode};

/// Why bytes could not be decoded. Each variant maps to the MQTT 5.0 reason code a
/// broker sends before closing the connection ([`DecodeError::reason_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge { size: usize, max: usize },
    #[error("remaining length is longer than 4 bytes")]
    MalformedRemainingLength,
    #[error("reserved packet type 0")]
    ReservedPacketType,
    #[error("invalid fixed-header flags {flags:#06b} for {packet:?}")]
    InvalidFlags { packet: PacketType, flags: u8 },
    #[error("{0:?} packet is not valid in this protocol version")]
    UnexpectedPacket(PacketType),
    #[error("packet is truncated or its lengths are inconsistent")]
    Truncated,
    #[error("{0} trailing bytes after the packet's fields")]
    TrailingBytes(usize),
    #[error("invalid protocol name {0:?}")]
    InvalidProtocolName(String),
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    #[error("reserved CONNECT flag set")]
    ReservedConnectFlag,
    #[error("will flags set without a will, or will QoS invalid")]
    InvalidWillFlags,
    #[error("password without user name (MQTT 3.x)")]
    PasswordWithoutUsername,
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    #[error("string contains U+0000")]
    NullCharacter,
    #[error("invalid topic name {0:?}")]
    InvalidTopicName(String),
    #[error("invalid topic filter {0:?}")]
    InvalidTopicFilter(String),
    #[error("packet identifier 0 where one is required")]
    ZeroPacketId,
    #[error("invalid QoS {0}")]
    InvalidQoS(u8),
    #[error("QoS 0 PUBLISH with DUP set")]
    DupWithQoS0,
    #[error("invalid reason code {code:#04x} for {packet:?}")]
    InvalidReasonCode { packet: PacketType, code: u8 },
    #[error("unknown property {0:#04x}")]
    UnknownProperty(u8),
    #[error("property {property:#04x} is not allowed on {packet:?}")]
    PropertyNotAllowed { packet: PacketType, property: u8 },
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    #[error("invalid value for property {0:#04x}")]
    InvalidPropertyValue(u8),
    #[error("variable byte integer is malformed")]
    MalformedVarInt,
    #[error("{0:?} carries no topic filters")]
    NoTopics(PacketType),
    #[error("invalid subscription options byte {0:#04x}")]
    InvalidSubscriptionOptions(u8),
    #[error("first packet must be CONNECT")]
    ExpectedConnect,
    #[error("reserved CONNACK acknowledge flags set: {0:#04x}")]
    InvalidConnAckFlags(u8),
    #[error("no-local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
}

impl DecodeError {
    /// The MQTT 5.0 reason code a broker sends (in CONNACK or DISCONNECT) for this error.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            UnsupportedProtocolLevel(_) | InvalidProtocolName(_) => {
                ReasonCode::UnsupportedProtocolVersion
            }
            InvalidTopicName(_) => ReasonCode::TopicNameInvalid,
            InvalidTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            UnexpectedPacket(_)
            | ZeroPacketId
            | DuplicateProperty(_)
            | PropertyNotAllowed { .. }
            | InvalidPropertyValue(_)
            | ExpectedConnect
            | NoTopics(_)
            | NoLocalOnSharedSubscription
            | EmptyTopicWithoutAlias
            | DupWithQoS0 => ReasonCode::ProtocolError,
            _ => ReasonCode::MalformedPacket,
        }
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge { size: usize, max: usize },
    #[error("{0:?} cannot be sent with this protocol version")]
    UnsupportedPacket(PacketType),
    #[error("string of {0} bytes is longer than 65535")]
    StringTooLong(usize),
    #[error("packet identifier 0 on a packet that needs one")]
    ZeroPacketId,
    #[error("{0:?} with no topics")]
    NoTopics(PacketType),
    #[error("value out of range: {0}")]
    OutOfRange(&'static str),
}
