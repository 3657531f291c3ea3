//! What a test client's operation reports when it fails.

use std::{fmt, io, time::Duration};

use pigeon_codec::ReasonCode;

/// A failed operation of a [`TestClient`](super::TestClient): the message
/// names the client, the operation and what the broker did instead.
///
/// `Debug` prints the same text as `Display`, so that `.unwrap()` in a test
/// reads `connect of `c1` refused: 0x86 bad user name or password (who are you?)`.
///
/// ```
/// use pigeon::{codec::ReasonCode, testing::ClientError};
/// let err = ClientError::Refused {
///     op: "connect of `c1`".into(),
///     code: ReasonCode::BadUserNameOrPassword,
///     reason: Some("who are you?".into()),
/// };
/// assert_eq!(
///     err.to_string(),
///     "connect of `c1` refused: 0x86 bad user name or password (who are you?)"
/// );
/// assert_eq!(err.code(), Some(ReasonCode::BadUserNameOrPassword));
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The broker answered with a failure code (CONNACK, SUBACK, PUBACK, PUBREC).
    #[error("{op} refused: {}", describe(*.code, .reason.as_deref()))]
    Refused {
        /// The operation, naming the client (`subscribe of `c1` to `a/#``).
        op: String,
        /// The broker's reason code (3.x return codes mapped as the codec does).
        code: ReasonCode,
        /// The MQTT 5 reason string, when the broker sent one.
        reason: Option<String>,
    },
    /// No answer from the broker in time.
    #[error("{op}: no {awaited} within {timeout:?}")]
    Timeout {
        /// The operation, naming the client.
        op: String,
        /// The packet waited for (`CONNACK`, `PUBACK`, ...).
        awaited: &'static str,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The connection ended before the operation completed.
    #[error("{op}: {closed}")]
    Closed {
        /// The operation, naming the client.
        op: String,
        /// How the connection ended.
        closed: Closed,
    },
    /// The socket failed (e.g. nothing listens on the address).
    #[error("{op}: {source}")]
    Io {
        /// The operation, naming the client.
        op: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The broker sent something the client cannot accept, or the client was
    /// asked to send what the codec cannot encode.
    #[error("{op}: {detail}")]
    Protocol {
        /// The operation, naming the client.
        op: String,
        /// What was wrong.
        detail: String,
    },
    /// An MQTT 5 feature (properties) asked of a client speaking MQTT 3.x.
    #[error("{op}: {what} need MQTT 5, and this client speaks MQTT 3.1.1 (build it with `.v5()`)")]
    NeedsV5 {
        /// The operation, naming the client.
        op: String,
        /// The MQTT 5 feature asked for.
        what: &'static str,
    },
}

impl ClientError {
    /// The broker's reason code: of the refusal, or of the DISCONNECT that
    /// ended the connection.
    pub fn code(&self) -> Option<ReasonCode> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            Self::Closed { closed, .. } => closed.code,
            _ => None,
        }
    }
}

impl fmt::Debug for ClientError {
    // The message is what a failing test should show, not the enum's fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How a test client's connection ended.
///
/// ```
/// use pigeon::{codec::ReasonCode, testing::Closed};
/// let closed = Closed { code: Some(ReasonCode::SessionTakenOver), reason: None };
/// assert_eq!(
///     closed.to_string(),
///     "the broker disconnected the client: DISCONNECT 0x8E session taken over"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The code of the broker's DISCONNECT (MQTT 5); `None` when the broker
    /// closed the socket without one (always so for MQTT 3.x).
    pub code: Option<ReasonCode>,
    /// The DISCONNECT's reason string, or what broke the connection.
    pub reason: Option<String>,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, &self.reason) {
            (Some(code), reason) => write!(
                f,
                "the broker disconnected the client: DISCONNECT {}",
                describe(code, reason.as_deref())
            ),
            (None, Some(reason)) => write!(f, "the connection was lost: {reason}"),
            (None, None) => f.write_str("the broker closed the connection"),
        }
    }
}

/// `0x86 bad user name or password (reason string)`.
pub(super) fn describe(code: ReasonCode, reason: Option<&str>) -> String {
    let mut text = format!("0x{:02X} {}", u8::from(code), name(code));
    if let Some(reason) = reason {
        text.push_str(&format!(" ({reason})"));
    }
    text
}

/// The spec's name of a reason code, in lower case.
fn name(code: ReasonCode) -> &'static str {
    use ReasonCode::*;
    match code {
        Success => "success",
        GrantedQoS1 => "granted QoS 1",
        GrantedQoS2 => "granted QoS 2",
        DisconnectWithWillMessage => "disconnect with will message",
        NoMatchingSubscribers => "no matching subscribers",
        NoSubscriptionExisted => "no subscription existed",
        ContinueAuthentication => "continue authentication",
        ReAuthenticate => "re-authenticate",
        UnspecifiedError => "unspecified error",
        MalformedPacket => "malformed packet",
        ProtocolError => "protocol error",
        ImplementationSpecificError => "implementation specific error",
        UnsupportedProtocolVersion => "unsupported protocol version",
        ClientIdentifierNotValid => "client identifier not valid",
        BadUserNameOrPassword => "bad user name or password",
        NotAuthorized => "not authorized",
        ServerUnavailable => "server unavailable",
        ServerBusy => "server busy",
        Banned => "banned",
        ServerShuttingDown => "server shutting down",
        BadAuthenticationMethod => "bad authentication method",
        KeepAliveTimeout => "keep alive timeout",
        SessionTakenOver => "session taken over",
        TopicFilterInvalid => "topic filter invalid",
        TopicNameInvalid => "topic name invalid",
        PacketIdentifierInUse => "packet identifier in use",
        PacketIdentifierNotFound => "packet identifier not found",
        ReceiveMaximumExceeded => "receive maximum exceeded",
        TopicAliasInvalid => "topic alias invalid",
        PacketTooLarge => "packet too large",
        MessageRateTooHigh => "message rate too high",
        QuotaExceeded => "quota exceeded",
        AdministrativeAction => "administrative action",
        PayloadFormatInvalid => "payload format invalid",
        RetainNotSupported => "retain not supported",
        QoSNotSupported => "QoS not supported",
        UseAnotherServer => "use another server",
        ServerMoved => "server moved",
        SharedSubscriptionsNotSupported => "shared subscriptions not supported",
        ConnectionRateExceeded => "connection rate exceeded",
        MaximumConnectTime => "maximum connect time",
        SubscriptionIdentifiersNotSupported => "subscription identifiers not supported",
        WildcardSubscriptionsNotSupported => "wildcard subscriptions not supported",
    }
}
