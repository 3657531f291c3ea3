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
    pub protocol: Protocol,
    /// "Clean session" in 3.x, "clean start" in 5.0.
    pub clean_start: bool,
    /// Seconds; 0 disables keep alive.
    pub keep_alive: u16,
    /// May be empty (the server then assigns one, or refuses).
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
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
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: WillProperties,
}

/// CONNACK. For 3.x the return code is carried as the equivalent [`ReasonCode`]
/// (see its docs for the mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason_code: ReasonCode,
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
