use pigeon_codec::ReasonCode;

/// A handler's refusal of a publish or subscribe.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// Why (logged, and sent as the MQTT 5.0 reason string).
    pub message: String,
    /// The MQTT 5.0 reason code to send (default 0x87 Not authorized).
    pub reason: ReasonCode,
}

impl Denied {
    /// A refusal with reason 0x87.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reason: ReasonCode::NotAuthorized,
        }
    }
}

/// An authentication failure: `reason` is the MQTT 5.0 reason code of the CONNACK;
/// MQTT 3.x clients get the matching return code 2..=5 (default 5, not
/// authorized). [`AuthError::with_return_code`] builds one from a 3.x code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// Why (logged, and sent as the MQTT 5.0 reason string).
    pub message: String,
    /// The CONNACK reason code (default 0x87 Not authorized).
    pub reason: ReasonCode,
}

impl AuthError {
    /// Not authorized (3.x return code 5, 5.0 reason 0x87).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reason: ReasonCode::NotAuthorized,
        }
    }

    /// With a 3.x CONNACK return code 2..=5 (others become 5).
    pub fn with_return_code(message: impl Into<String>, code: u8) -> Self {
        let reason = match code {
            2 => ReasonCode::ClientIdentifierNotValid,
            3 => ReasonCode::ServerUnavailable,
            4 => ReasonCode::BadUserNameOrPassword,
            _ => ReasonCode::NotAuthorized,
        };
        Self {
            message: message.into(),
            reason,
        }
    }
}

/// Any other handler failure (a handler returning an error, or panicking).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// Why [`HooksBuilder::build`](crate::hooks::HooksBuilder::build) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HooksError {
    /// Handlers that could not be registered, one message each (e.g. an invalid
    /// topic pattern, naming the handler).
    #[error("{}", .0.join("; "))]
    Handlers(Vec<String>),
    /// Event handlers exist but the hooks were built outside a tokio runtime
    /// (their dispatcher task needs one).
    #[error("event handlers need a tokio runtime at bootstrap")]
    NoRuntime,
}
