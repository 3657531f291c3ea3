/// Every MQTT 5.0 reason code (spec §2.4). MQTT 3.x return codes map onto these:
/// CONNACK 1..5 are `UnsupportedProtocolVersion`, `ClientIdentifierNotValid`,
/// `ServerUnavailable`, `BadUserNameOrPassword`, `NotAuthorized`; SUBACK 0x80 is
/// `UnspecifiedError`; the codec converts both ways for the connection's version.
///
/// ```
/// use pigeon_codec::ReasonCode;
/// assert_eq!(ReasonCode::try_from(0x87), Ok(ReasonCode::NotAuthorized));
/// assert!(ReasonCode::PacketTooLarge.is_error());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum ReasonCode {
    /// 0x00: Success / Normal disconnection / Granted QoS 0.
    #[default]
    Success = 0x00,
    /// 0x01: Granted QoS 1.
    GrantedQoS1 = 0x01,
    /// 0x02: Granted QoS 2.
    GrantedQoS2 = 0x02,
    /// 0x04: Disconnect With Will Message.
    DisconnectWithWillMessage = 0x04,
    /// 0x10: No Matching Subscribers.
    NoMatchingSubscribers = 0x10,
    /// 0x11: No Subscription Existed.
    NoSubscriptionExisted = 0x11,
    /// 0x18: Continue Authentication.
    ContinueAuthentication = 0x18,
    /// 0x19: Re-authenticate.
    ReAuthenticate = 0x19,
    /// 0x80: Unspecified Error.
    UnspecifiedError = 0x80,
    /// 0x81: Malformed Packet.
    MalformedPacket = 0x81,
    /// 0x82: Protocol Error.
    ProtocolError = 0x82,
    /// 0x83: Implementation Specific Error.
    ImplementationSpecificError = 0x83,
    /// 0x84: Unsupported Protocol Version.
    UnsupportedProtocolVersion = 0x84,
    /// 0x85: Client Identifier Not Valid.
    ClientIdentifierNotValid = 0x85,
    /// 0x86: Bad User Name Or Password.
    BadUserNameOrPassword = 0x86,
    /// 0x87: Not Authorized.
    NotAuthorized = 0x87,
    /// 0x88: Server Unavailable.
    ServerUnavailable = 0x88,
    /// 0x89: Server Busy.
    ServerBusy = 0x89,
    /// 0x8A: Banned.
    Banned = 0x8A,
    /// 0x8B: Server Shutting Down.
    ServerShuttingDown = 0x8B,
    /// 0x8C: Bad Authentication Method.
    BadAuthenticationMethod = 0x8C,
    /// 0x8D: Keep Alive Timeout.
    KeepAliveTimeout = 0x8D,
    /// 0x8E: Session Taken Over.
    SessionTakenOver = 0x8E,
    /// 0x8F: Topic Filter Invalid.
    TopicFilterInvalid = 0x8F,
    /// 0x90: Topic Name Invalid.
    TopicNameInvalid = 0x90,
    /// 0x91: Packet Identifier In Use.
    PacketIdentifierInUse = 0x91,
    /// 0x92: Packet Identifier Not Found.
    PacketIdentifierNotFound = 0x92,
    /// 0x93: Receive Maximum Exceeded.
    ReceiveMaximumExceeded = 0x93,
    /// 0x94: Topic Alias Invalid.
    TopicAliasInvalid = 0x94,
    /// 0x95: Packet Too Large.
    PacketTooLarge = 0x95,
    /// 0x96: Message Rate Too High.
    MessageRateTooHigh = 0x96,
    /// 0x97: Quota Exceeded.
    QuotaExceeded = 0x97,
    /// 0x98: Administrative Action.
    AdministrativeAction = 0x98,
    /// 0x99: Payload Format Invalid.
    PayloadFormatInvalid = 0x99,
    /// 0x9A: Retain Not Supported.
    RetainNotSupported = 0x9A,
    /// 0x9B: QoS Not Supported.
    QoSNotSupported = 0x9B,
    /// 0x9C: Use Another Server.
    UseAnotherServer = 0x9C,
    /// 0x9D: Server Moved.
    ServerMoved = 0x9D,
    /// 0x9E: Shared Subscriptions Not Supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// 0x9F: Connection Rate Exceeded.
    ConnectionRateExceeded = 0x9F,
    /// 0xA0: Maximum Connect Time.
    MaximumConnectTime = 0xA0,
    /// 0xA1: Subscription Identifiers Not Supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// 0xA2: Wildcard Subscriptions Not Supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// Codes of 0x80 and above report a failure.
    pub fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// The granted-QoS code for a SUBACK.
    pub fn granted(qos: crate::QoS) -> Self {
        match qos {
            crate::QoS::AtMostOnce => Self::Success,
            crate::QoS::AtLeastOnce => Self::GrantedQoS1,
            crate::QoS::ExactlyOnce => Self::GrantedQoS2,
        }
    }
}

impl From<ReasonCode> for u8 {
    fn from(code: ReasonCode) -> u8 {
        code as u8
    }
}

impl TryFrom<u8> for ReasonCode {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, u8> {
        use ReasonCode::*;
        Ok(match value {
            0x00 => Success,
            0x01 => GrantedQoS1,
            0x02 => GrantedQoS2,
            0x04 => DisconnectWithWillMessage,
            0x10 => NoMatchingSubscribers,
            0x11 => NoSubscriptionExisted,
            0x18 => ContinueAuthentication,
            0x19 => ReAuthenticate,
            0x80 => UnspecifiedError,
            0x81 => MalformedPacket,
            0x82 => ProtocolError,
            0x83 => ImplementationSpecificError,
            0x84 => UnsupportedProtocolVersion,
            0x85 => ClientIdentifierNotValid,
            0x86 => BadUserNameOrPassword,
            0x87 => NotAuthorized,
            0x88 => ServerUnavailable,
            0x89 => ServerBusy,
            0x8A => Banned,
            0x8B => ServerShuttingDown,
            0x8C => BadAuthenticationMethod,
            0x8D => KeepAliveTimeout,
            0x8E => SessionTakenOver,
            0x8F => TopicFilterInvalid,
            0x90 => TopicNameInvalid,
            0x91 => PacketIdentifierInUse,
            0x92 => PacketIdentifierNotFound,
            0x93 => ReceiveMaximumExceeded,
            0x94 => TopicAliasInvalid,
            0x95 => PacketTooLarge,
            0x96 => MessageRateTooHigh,
            0x97 => QuotaExceeded,
            0x98 => AdministrativeAction,
            0x99 => PayloadFormatInvalid,
            0x9A => RetainNotSupported,
            0x9B => QoSNotSupported,
            0x9C => UseAnotherServer,
            0x9D => ServerMoved,
            0x9E => SharedSubscriptionsNotSupported,
            0x9F => ConnectionRateExceeded,
            0xA0 => MaximumConnectTime,
            0xA1 => SubscriptionIdentifiersNotSupported,
            0xA2 => WildcardSubscriptionsNotSupported,
            other => return Err(other),
        })
    }
}
