//! MQTT 5.0 enhanced authentication as the authenticate handlers see it.
//!
//! A CONNECT carrying an Authentication Method starts an exchange: the
//! authenticate chain runs with an [`AuthExchange`] (method, the client's data,
//! a step counter). A handler answers with an [`AuthStep`]:
//! [`AuthStep::Continue`] sends AUTH 0x18 with its data and the chain runs again
//! on the client's reply (step + 1); [`AuthStep::Success`] ends it with CONNACK 0
//! (or AUTH 0x00 when re-authenticating); an [`AuthError`](super::AuthError)
//! refuses (CONNACK with its reason code, or DISCONNECT on re-authentication).
//! A method no handler answers for is refused with 0x8C Bad authentication method.
//!
//! ```
//! use pigeon::prelude::*;
//! use pigeon::hooks::{AuthExchange, AuthStep};
//!
//! #[injectable]
//! pub struct Tokens;
//!
//! #[handlers]
//! impl Tokens {
//!     #[on_authenticate]
//!     async fn token(&self, auth: AuthExchange) -> Result<AuthStep, AuthError> {
//!         match (auth.method.as_deref(), auth.step) {
//!             (Some("TOKEN"), 0) => Ok(AuthStep::Continue("send token".into())),
//!             (Some("TOKEN"), _) if auth.data.as_deref() == Some(b"secret") => {
//!                 Ok(AuthStep::success())
//!             }
//!             (Some("TOKEN"), _) => Err(AuthError::new("bad token")),
//!             _ => Ok(AuthStep::Pass), // not ours: plain CONNECTs, other methods
//!         }
//!     }
//! }
//! ```

use bytes::Bytes;

/// The enhanced authentication exchange so far (the `AuthExchange` extractor of
/// `#[on_authenticate]` handlers). For a CONNECT without an Authentication
/// Method, `method` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthExchange {
    /// The Authentication Method of CONNECT (and of every AUTH after it).
    pub method: Option<String>,
    /// The Authentication Data of the packet being answered.
    pub data: Option<Bytes>,
    /// 0 for CONNECT (or the AUTH 0x19 starting a re-authentication), then
    /// 1, 2, … for each AUTH 0x18 the client sends.
    pub step: u32,
    /// True while re-authenticating an established connection.
    pub reauthenticate: bool,
}

/// An authenticate handler's answer in an enhanced exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// No opinion: the next handler decides (what `Ok(())` means).
    Pass,
    /// Authenticated; the data (if any) goes in CONNACK / AUTH 0x00.
    Success(Option<Bytes>),
    /// Send AUTH 0x18 Continue authentication with this data and wait for the
    /// client's answer (the chain runs again with `step + 1`).
    Continue(Bytes),
}

impl AuthStep {
    /// Success with no data.
    pub fn success() -> Self {
        AuthStep::Success(None)
    }

    /// Success with data for the client (e.g. a server signature).
    pub fn success_with(data: impl Into<Bytes>) -> Self {
        AuthStep::Success(Some(data.into()))
    }

    /// Continue with a challenge for the client.
    pub fn continue_with(data: impl Into<Bytes>) -> Self {
        AuthStep::Continue(data.into())
    }
}
