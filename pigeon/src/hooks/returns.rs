//! The return types a handler may have, per hook. Anything else is a compile
//! error on the handler's return type.

use std::fmt::Display;

use super::context::*;
use super::{AuthError, AuthStep, Denied, HookError, Subscription};

/// A handler return type accepted by the hook whose context is `C`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for this handler",
    label = "wrong return type for this hook",
    note = "the context is `{C}`; each hook takes:",
    note = "pre_connect: Result<(), HookError> | bool | ()",
    note = "authenticate: Result<(), AuthError> | bool | Result<AuthStep, AuthError> | AuthStep",
    note = "authorize_publish: Result<(), Denied> | bool",
    note = "authorize_subscribe: Result<Option<Subscription>, Denied> | Result<(), Denied> | Option<Subscription>",
    note = "authorize_forward: bool | Result<(), Denied> | ()",
    note = "published: () | Result<(), E: Display>",
    note = "request: Result<A, E> | A, with A: Json<T> | String | &'static str | Bytes | Vec<u8> | () and E: Display or Json<E> (E: Serialize)",
    note = "events: () | Result<(), E: Display>"
)]
pub trait HandlerReturn<C: Context> {
    /// The hook's outcome for this return value.
    fn into_outcome(self) -> C::Output;
}

impl HandlerReturn<PreConnectCx> for Result<(), HookError> {
    fn into_outcome(self) -> Result<(), HookError> {
        self
    }
}
impl HandlerReturn<PreConnectCx> for bool {
    fn into_outcome(self) -> Result<(), HookError> {
        self.then_some(())
            .ok_or_else(|| HookError("refused by pre-connect".into()))
    }
}
impl HandlerReturn<PreConnectCx> for () {
    fn into_outcome(self) -> Result<(), HookError> {
        Ok(())
    }
}

impl HandlerReturn<AuthenticateCx> for Result<(), AuthError> {
    fn into_outcome(self) -> Result<AuthStep, AuthError> {
        self.map(|()| AuthStep::Pass)
    }
}
impl HandlerReturn<AuthenticateCx> for bool {
    fn into_outcome(self) -> Result<AuthStep, AuthError> {
        self.then_some(AuthStep::Pass)
            .ok_or_else(|| AuthError::new("not authorized"))
    }
}
impl HandlerReturn<AuthenticateCx> for Result<AuthStep, AuthError> {
    fn into_outcome(self) -> Result<AuthStep, AuthError> {
        self
    }
}
impl HandlerReturn<AuthenticateCx> for AuthStep {
    fn into_outcome(self) -> Result<AuthStep, AuthError> {
        Ok(self)
    }
}

impl HandlerReturn<AuthorizePublishCx> for Result<(), Denied> {
    fn into_outcome(self) -> Result<(), Denied> {
        self
    }
}
impl HandlerReturn<AuthorizePublishCx> for bool {
    fn into_outcome(self) -> Result<(), Denied> {
        self.then_some(())
            .ok_or_else(|| Denied::new("publish denied"))
    }
}

impl HandlerReturn<AuthorizeSubscribeCx> for Result<Option<Subscription>, Denied> {
    fn into_outcome(self) -> Result<SubscribeDecision, Denied> {
        self.map(|s| s.map_or(SubscribeDecision::Negate, SubscribeDecision::Replace))
    }
}
impl HandlerReturn<AuthorizeSubscribeCx> for Result<(), Denied> {
    fn into_outcome(self) -> Result<SubscribeDecision, Denied> {
        self.map(|()| SubscribeDecision::Keep)
    }
}
impl HandlerReturn<AuthorizeSubscribeCx> for Option<Subscription> {
    fn into_outcome(self) -> Result<SubscribeDecision, Denied> {
        Ok(self.map_or(SubscribeDecision::Negate, SubscribeDecision::Replace))
    }
}

impl HandlerReturn<AuthorizeForwardCx> for bool {
    fn into_outcome(self) -> bool {
        self
    }
}
impl HandlerReturn<AuthorizeForwardCx> for Result<(), Denied> {
    fn into_outcome(self) -> bool {
        self.is_ok()
    }
}
impl HandlerReturn<AuthorizeForwardCx> for () {
    fn into_outcome(self) -> bool {
        true
    }
}

impl HandlerReturn<PublishedCx> for () {
    fn into_outcome(self) -> Result<(), HookError> {
        Ok(())
    }
}
/// An error (any `Display`: `HookError`, `std::io::Error`, `anyhow::Error`)
/// is logged with the handler's name and reported as a `client_error` event.
impl<E: Display> HandlerReturn<PublishedCx> for Result<(), E> {
    fn into_outcome(self) -> Result<(), HookError> {
        self.map_err(|e| HookError(e.to_string()))
    }
}

impl<K: EventMarker> HandlerReturn<EventCx<K>> for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}
/// An error is logged with the handler's name and client id and reported as
/// a `client_error` event (not for a failing `client_error` or
/// `connection_error` listener itself, which would loop).
impl<K: EventMarker, E: Display> HandlerReturn<EventCx<K>> for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}
