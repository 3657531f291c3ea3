use crate::{AuthProperties, DisconnectProperties, ReasonCode};

/// DISCONNECT. In 3.x it has no body (reason `Success`, no properties); in 5.0
/// either side may send it with a reason code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// The reason code (3.x return codes are mapped onto these).
    pub reason_code: ReasonCode,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with a reason code and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }
}

/// AUTH (MQTT 5.0 only): one step of enhanced authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// `Success`, `ContinueAuthentication` or `ReAuthenticate`.
    pub reason_code: ReasonCode,
    /// MQTT 5.0 properties (empty for 3.x).
    pub properties: AuthProperties,
}
