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

    /// A refusal with `reason` (e.g. 0x97 Quota exceeded, 0x90 Topic name invalid).
    ///
    /// ```
    /// use pigeon::{codec::ReasonCode, hooks::Denied};
    /// let d = Denied::with_reason("too many", ReasonCode::QuotaExceeded);
    /// assert_eq!(d.reason, ReasonCode::QuotaExceeded);
    /// ```
    pub fn with_reason(message: impl Into<String>, reason: ReasonCode) -> Self {
        Self {
            message: message.into(),
            reason,
        }
    }
}

/// A handler's own failure (a file, a database) refuses what it guarded with
/// 0x80 Unspecified error, so that `?` works in a handler returning
/// `Result<_, Denied>`.
///
/// ```
/// use pigeon::hooks::Denied;
/// fn check() -> Result<(), Denied> {
///     std::fs::read("/nonexistent/acl")?;
///     Ok(())
/// }
/// assert_eq!(check().unwrap_err().reason, pigeon::codec::ReasonCode::UnspecifiedError);
/// ```
impl From<std::io::Error> for Denied {
    fn from(e: std::io::Error) -> Self {
        Self::with_reason(e.to_string(), ReasonCode::UnspecifiedError)
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

    /// Bad user name or password (3.x return code 4, 5.0 reason 0x86).
    ///
    /// ```
    /// use pigeon::{codec::ReasonCode, hooks::AuthError};
    /// assert_eq!(AuthError::bad_credentials("who are you?").reason, ReasonCode::BadUserNameOrPassword);
    /// ```
    pub fn bad_credentials(message: impl Into<String>) -> Self {
        Self::with_reason(message, ReasonCode::BadUserNameOrPassword)
    }

    /// Not authorized (3.x return code 5, 5.0 reason 0x87): the same as [`AuthError::new`].
    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(message)
    }

    /// The client identifier is refused (3.x return code 2, 5.0 reason 0x85).
    pub fn client_id_not_valid(message: impl Into<String>) -> Self {
        Self::with_reason(message, ReasonCode::ClientIdentifierNotValid)
    }

    /// The server cannot check now (3.x return code 3, 5.0 reason 0x88), e.g.
    /// the user database is down: the client should retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::with_reason(message, ReasonCode::ServerUnavailable)
    }

    /// With an MQTT 5.0 reason code; 3.x clients get the nearest return code.
    pub fn with_reason(message: impl Into<String>, reason: ReasonCode) -> Self {
        Self {
            message: message.into(),
            reason,
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

/// A handler's own failure (the user database unreachable) refuses the
/// login as "server unavailable", so that `?` works in an `#[on_authenticate]`.
///
/// ```
/// use pigeon::hooks::AuthError;
/// fn lookup() -> Result<(), AuthError> {
///     std::fs::read("/nonexistent/users")?;
///     Ok(())
/// }
/// assert_eq!(lookup().unwrap_err().reason, pigeon::codec::ReasonCode::ServerUnavailable);
/// ```
impl From<std::io::Error> for AuthError {
    fn from(e: std::io::Error) -> Self {
        Self::unavailable(e.to_string())
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
