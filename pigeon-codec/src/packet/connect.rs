use bytes::Bytes;

use crate::{ConnAckProperties, ConnectProperties, Protocol, QoS, ReasonCode, WillProperties};

/// CONNECT: the first packet of every connection.
///
/// ```
/// use pigeon_codec::{Connect, Protocol};
/// let connect = Connect::new(Protocol::V5, "my-device");
/// assert!(connect.clean_start);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version, from the protocol name and level.
    pub protocol: Protocol,
    /// "Clean session" in 3.x, "clean start" in 5.0.
    pub clean_start: bool,
    /// Seconds; 0 disables keep alive.
    pub keep_alive: u16,
    /// May be empty (the server then assigns one, or refuses).
    pub client_id: String,
    /// The last-will message, if any.
    pub will: Option<Will>,
    /// User name, if the user-name flag is set.
    pub username: Option<String>,
    /// Password, if the password flag is set (binary data).
    pub password: Option<Bytes>,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: ConnectProperties,
}

impl Connect {
    /// A clean-start CONNECT with no credentials, no will and keep alive 60 s.
    pub fn new(protocol: Protocol, client_id: impl Into<String>) -> Self {
        Self {
            protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }
}

/// The last-will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// The topic name.
    pub topic: String,
    /// The application message.
    pub payload: Bytes,
    /// Quality of service.
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: WillProperties,
}

/// CONNACK. For 3.x the return code is carried as the equivalent [`ReasonCode`]
/// (see its docs for the mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// The server resumed a stored session.
    pub session_present: bool,
    /// The reason code (3.x return codes are mapped onto these).
    pub reason_code: ReasonCode,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: ConnAckProperties,
}

impl ConnAck {
    /// A CONNACK with the given code and no properties.
    pub fn new(reason_code: ReasonCode, session_present: bool) -> Self {
        Self {
            session_present,
            reason_code,
            properties: ConnAckProperties::default(),
        }
    }
}
