//! The packet model: one type per MQTT control packet, shared by all versions.
//! Fields that exist only in MQTT 5.0 (properties, most reason codes) are left
//! at their defaults for 3.x and are not encoded there.

mod connect;
mod publish;
mod session;
mod subscribe;

pub use connect::{ConnAck, Connect, Will};
pub use publish::{PubAck, PubComp, PubRec, PubRel, PubReply, Publish};
pub use session::{Auth, Disconnect};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// The protocol level a connection speaks, fixed by its CONNECT.
///
/// ```
/// use pigeon_codec::Protocol;
/// assert_eq!(Protocol::try_from(4), Ok(Protocol::V3_1_1));
/// assert_eq!(Protocol::V3_1.name(), "MQIsdp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1 = 3,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1 = 4,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5 = 5,
}

impl Protocol {
    /// The protocol name carried in CONNECT.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V3_1 => "MQIsdp",
            Protocol::V3_1_1 | Protocol::V5 => "MQTT",
        }
    }

    /// The protocol level byte.
    pub fn level(self) -> u8 {
        self as u8
    }

    /// True for MQTT 5.0.
    pub fn is_v5(self) -> bool {
        self == Protocol::V5
    }
}

impl TryFrom<u8> for Protocol {
    type Error = u8;
    fn try_from(level: u8) -> Result<Self, u8> {
        match level {
            3 => Ok(Protocol::V3_1),
            4 => Ok(Protocol::V3_1_1),
            5 => Ok(Protocol::V5),
            other => Err(other),
        }
    }
}

/// Quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    /// 0: at most once (fire and forget).
    #[default]
    AtMostOnce = 0,
    /// 1: at least once (PUBACK).
    AtLeastOnce = 1,
    /// 2: exactly once (PUBREC, PUBREL, PUBCOMP).
    ExactlyOnce = 2,
}

impl TryFrom<u8> for QoS {
    type Error = u8;
    fn try_from(v: u8) -> Result<Self, u8> {
        match v {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            other => Err(other),
        }
    }
}

impl From<QoS> for u8 {
    fn from(q: QoS) -> u8 {
        q as u8
    }
}

/// The control packet type, from the high nibble of the fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// 1: CONNECT.
    Connect = 1,
    /// 2: CONNACK.
    ConnAck = 2,
    /// 3: PUBLISH.
    Publish = 3,
    /// 4: PUBACK.
    PubAck = 4,
    /// 5: PUBREC.
    PubRec = 5,
    /// 6: PUBREL.
    PubRel = 6,
    /// 7: PUBCOMP.
    PubComp = 7,
    /// 8: SUBSCRIBE.
    Subscribe = 8,
    /// 9: SUBACK.
    SubAck = 9,
    /// 10: UNSUBSCRIBE.
    Unsubscribe = 10,
    /// 11: UNSUBACK.
    UnsubAck = 11,
    /// 12: PINGREQ.
    PingReq = 12,
    /// 13: PINGRESP.
    PingResp = 13,
    /// 14: DISCONNECT.
    Disconnect = 14,
    /// 15: AUTH.
    Auth = 15,
}

/// Any MQTT control packet. The large kinds a connection sees once or rarely
/// (CONNECT, CONNACK, AUTH) are boxed, so that the per-message kinds (PUBLISH
/// and its acknowledgements) are not moved around at their size.
///
/// ```
/// use pigeon_codec::{ConnAck, Packet, ReasonCode};
/// let ack = Packet::ConnAck(Box::new(ConnAck::new(ReasonCode::Success, false)));
/// assert!(matches!(&ack, Packet::ConnAck(a) if !a.session_present));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A CONNECT packet.
    Connect(Box<Connect>),
    /// A CONNACK packet.
    ConnAck(Box<ConnAck>),
    /// A PUBLISH packet.
    Publish(Publish),
    /// A PUBACK packet.
    PubAck(PubAck),
    /// A PUBREC packet.
    PubRec(PubRec),
    /// A PUBREL packet.
    PubRel(PubRel),
    /// A PUBCOMP packet.
    PubComp(PubComp),
    /// A SUBSCRIBE packet.
    Subscribe(Subscribe),
    /// A SUBACK packet.
    SubAck(SubAck),
    /// An UNSUBSCRIBE packet.
    Unsubscribe(Unsubscribe),
    /// An UNSUBACK packet.
    UnsubAck(UnsubAck),
    /// A PINGREQ packet.
    PingReq,
    /// A PINGRESP packet.
    PingResp,
    /// A DISCONNECT packet.
    Disconnect(Disconnect),
    /// An AUTH packet (MQTT 5.0).
    Auth(Box<Auth>),
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}
