use crate::{PacketType, ReasonCode};

/// Why bytes could not be decoded. Each variant maps to the MQTT 5.0 reason code a
/// broker sends before closing the connection ([`DecodeError::reason_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The fixed header announces a packet larger than the limit (checked before buffering).
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// The packet size in bytes, fixed header included.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The remaining length is longer than 4 bytes or not minimally encoded.
    #[error("remaining length is longer than 4 bytes")]
    MalformedRemainingLength,
    /// Packet type 0 is reserved.
    #[error("reserved packet type 0")]
    ReservedPacketType,
    /// Reserved flag bits of the fixed header are wrong for the packet type.
    #[error("invalid fixed-header flags {flags:#06b} for {packet:?}")]
    InvalidFlags {
        /// The packet type.
        packet: PacketType,
        /// The flag bits received.
        flags: u8,
    },
    /// The packet does not exist in this version (AUTH before MQTT 5.0).
    #[error("{0:?} packet is not valid in this protocol version")]
    UnexpectedPacket(PacketType),
    /// A field runs past the end of the packet.
    #[error("packet is truncated or its lengths are inconsistent")]
    Truncated,
    /// Bytes are left over after the packet's last field.
    #[error("{0} trailing bytes after the packet's fields")]
    TrailingBytes(usize),
    /// CONNECT names a protocol other than `MQTT` / `MQIsdp`.
    #[error("invalid protocol name {0:?}")]
    InvalidProtocolName(String),
    /// CONNECT's protocol level does not match its name (3 for `MQIsdp`, 4 or 5 for `MQTT`).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// Bit 0 of the CONNECT flags is set.
    #[error("reserved CONNECT flag set")]
    ReservedConnectFlag,
    /// Will QoS or will retain set without the will flag.
    #[error("will flags set without a will, or will QoS invalid")]
    InvalidWillFlags,
    /// MQTT 3.1.1 forbids a password without a user name.
    #[error("password without user name (MQTT 3.x)")]
    PasswordWithoutUsername,
    /// A string is not well-formed UTF-8 (surrogates and overlong forms included).
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    /// A string contains U+0000.
    #[error("string contains U+0000")]
    NullCharacter,
    /// A topic name has a wildcard or too many levels.
    #[error("invalid topic name {0:?}")]
    InvalidTopicName(String),
    /// A topic filter is empty, misuses `#`/`+`, is a bad `$share`, or has too many levels.
    #[error("invalid topic filter {0:?}")]
    InvalidTopicFilter(String),
    /// Packet identifier 0 on a packet that needs one.
    #[error("packet identifier 0 where one is required")]
    ZeroPacketId,
    /// QoS 3 (in PUBLISH, a will, or subscription options).
    #[error("invalid QoS {0}")]
    InvalidQoS(u8),
    /// DUP set on a QoS 0 PUBLISH.
    #[error("QoS 0 PUBLISH with DUP set")]
    DupWithQoS0,
    /// A reason / return code that this packet (in this version) may not carry.
    #[error("invalid reason code {code:#04x} for {packet:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code received.
        code: u8,
    },
    /// A property identifier MQTT 5.0 does not define.
    #[error("unknown property {0:#04x}")]
    UnknownProperty(u8),
    /// A property the spec does not allow on this packet.
    #[error("property {property:#04x} is not allowed on {packet:?}")]
    PropertyNotAllowed {
        /// The packet type.
        packet: PacketType,
        /// The property identifier.
        property: u8,
    },
    /// A single-valued property appears twice.
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    /// A property value out of range (0 where forbidden, a boolean above 1, data without method…).
    #[error("invalid value for property {0:#04x}")]
    InvalidPropertyValue(u8),
    /// A variable byte integer inside the packet is longer than 4 bytes or not minimal.
    #[error("variable byte integer is malformed")]
    MalformedVarInt,
    /// SUBSCRIBE / UNSUBSCRIBE (or their acks) without any entry.
    #[error("{0:?} carries no topic filters")]
    NoTopics(PacketType),
    /// Reserved bits of the subscription options, or retain handling 3.
    #[error("invalid subscription options byte {0:#04x}")]
    InvalidSubscriptionOptions(u8),
    /// A connection's first packet is not CONNECT.
    #[error("first packet must be CONNECT")]
    ExpectedConnect,
    /// Reserved bits of CONNACK's acknowledge flags are set.
    #[error("reserved CONNACK acknowledge flags set: {0:#04x}")]
    InvalidConnAckFlags(u8),
    /// No-local on a `$share/` subscription [MQTT-3.8.3-4].
    #[error("no-local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// An empty PUBLISH topic without a topic alias to stand for it.
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
    /// Reading the stream failed (reset, broken pipe…): the connection is gone, no
    /// byte was malformed, so there is nobody to send a reason code to. Kept as kind
    /// and message so that `DecodeError` stays `Clone + Eq`.
    ///
    /// ```
    /// use pigeon_codec::DecodeError;
    /// use std::io::{Error, ErrorKind};
    /// let e = DecodeError::from(Error::new(ErrorKind::ConnectionReset, "reset by peer"));
    /// assert!(e.is_io());
    /// assert_eq!(e.to_string(), "I/O error: reset by peer");
    /// ```
    #[error("I/O error: {message}")]
    Io {
        /// What failed.
        kind: std::io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
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
            // Topic Alias 0 (property 0x23): 0x94, as Mosquitto answers.
            InvalidPropertyValue(0x23) => ReasonCode::TopicAliasInvalid,
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
            // Never sent: the socket failed, there is no one to tell.
            Io { .. } => ReasonCode::UnspecifiedError,
            _ => ReasonCode::MalformedPacket,
        }
    }

    /// Whether the stream failed ([`DecodeError::Io`]) rather than the peer sending
    /// bytes that break the protocol: a closed connection, not a violation.
    pub fn is_io(&self) -> bool {
        matches!(self, DecodeError::Io { .. })
    }
}

// tokio-util's Decoder requires `From<io::Error>`; FramedRead uses it for read errors.
impl From<std::io::Error> for DecodeError {
    fn from(e: std::io::Error) -> Self {
        DecodeError::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet is larger than the peer accepts (or than MQTT can frame).
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// The packet size in bytes, fixed header included.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The packet does not exist in this version (AUTH before MQTT 5.0).
    #[error("{0:?} cannot be sent with this protocol version")]
    UnsupportedPacket(PacketType),
    /// A string or binary field longer than 65535 bytes.
    #[error("string of {0} bytes is longer than 65535")]
    StringTooLong(usize),
    /// Packet identifier 0 on a packet that needs one.
    #[error("packet identifier 0 on a packet that needs one")]
    ZeroPacketId,
    /// SUBSCRIBE / UNSUBSCRIBE / SUBACK / UNSUBACK (5.0) with no entries.
    #[error("{0:?} with no topics")]
    NoTopics(PacketType),
    /// A value the wire format or this version cannot carry.
    #[error("value out of range: {0}")]
    OutOfRange(&'static str),
    /// Writing the stream failed (as [`DecodeError::Io`], kept as kind and message).
    #[error("I/O error: {message}")]
    Io {
        /// What failed.
        kind: std::io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
}

// tokio-util's Encoder requires `From<io::Error>`; FramedWrite uses it for write errors.
impl From<std::io::Error> for EncodeError {
    fn from(e: std::io::Error) -> Self {
        EncodeError::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
