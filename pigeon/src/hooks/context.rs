//! What each hook hands to its handlers. Extractors (see [`super::extract`]) pull
//! their values out of these; the macro picks the context from the attribute.

use std::{marker::PhantomData, sync::Arc};

use pigeon_codec::{Connect, Publish};

use super::{
    AuthError, AuthExchange, AuthStep, Client, Credential, Denied, Event, EventKind, HookError,
    Params, Subscription,
};

/// A hook's context: the value its handlers see and the outcome a handler produces.
pub trait Context: Send + 'static {
    /// What one handler's return value is turned into.
    type Output: Send;
}

/// `#[on_pre_connect]`: the client (default state) and the CONNECT, which handlers may change.
pub struct PreConnectCx {
    /// The client as CONNECT describes it.
    pub client: Client,
    /// The CONNECT packet; handlers may change it.
    pub connect: Connect,
}

/// `#[on_authenticate]`: the credential and, for MQTT 5.0 enhanced
/// authentication, the exchange so far.
pub struct AuthenticateCx {
    /// The connecting client.
    pub client: Client,
    /// Its user name and password.
    pub credential: Credential,
    /// The enhanced-authentication exchange (method `None` for a plain CONNECT).
    pub exchange: AuthExchange,
}

/// `#[on_authorize_publish]`: client is `None` for wills whose client is gone.
pub struct AuthorizePublishCx {
    /// The publisher; `None` for a will whose client is gone.
    pub client: Option<Client>,
    /// The message; handlers may change it.
    pub publish: Publish,
    /// The segments the handler's topic pattern captured.
    pub params: Params,
}

/// `#[on_authorize_subscribe]`: the subscription as the chain has it so far.
pub struct AuthorizeSubscribeCx {
    /// The subscriber.
    pub client: Client,
    /// The subscription; handlers may change it.
    pub subscription: Subscription,
}

/// `#[on_authorize_forward]`: one subscriber and the message on its way to it.
pub struct AuthorizeForwardCx {
    /// The subscriber the message is going to.
    pub client: Client,
    /// The message; handlers may change this subscriber's copy.
    pub publish: Publish,
    /// The segments the handler's topic pattern captured.
    pub params: Params,
}

/// `#[on_published]`.
pub struct PublishedCx {
    /// The publisher; `None` for the broker's own messages.
    pub client: Option<Client>,
    /// The accepted message.
    pub publish: Publish,
    /// The segments the handler's topic pattern captured.
    pub params: Params,
}

/// What an authorize-subscribe handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeDecision {
    /// Keep the (possibly modified through `&mut Subscription`) subscription.
    Keep,
    /// Replace it.
    Replace(Subscription),
    /// Negate it (SUBACK 0x80); stops the chain.
    Negate,
}

impl Context for PreConnectCx {
    type Output = Result<(), HookError>;
}
impl Context for AuthenticateCx {
    type Output = Result<AuthStep, AuthError>;
}
impl Context for AuthorizePublishCx {
    type Output = Result<(), Denied>;
}
impl Context for AuthorizeSubscribeCx {
    type Output = Result<SubscribeDecision, Denied>;
}
impl Context for AuthorizeForwardCx {
    /// `false` drops the message for this subscriber.
    type Output = bool;
}
impl Context for PublishedCx {
    type Output = Result<(), HookError>;
}

/// An event as its handlers see it. `K` is a marker of [`kind`], so an extractor
/// the event cannot supply is a compile error.
pub struct EventCx<K> {
    /// The event, shared by every handler of it.
    pub event: Arc<Event>,
    /// The segments the handler's topic pattern captured (publish events).
    pub params: Params,
    _kind: PhantomData<fn() -> K>,
}

impl<K> EventCx<K> {
    /// The context of `event` for one handler.
    pub fn new(event: Arc<Event>, params: Params) -> Self {
        Self {
            event,
            params,
            _kind: PhantomData,
        }
    }
}

impl<K: EventMarker> Context for EventCx<K> {
    /// `Err` carries the message of a handler that returned an error, which
    /// goes to the log and the `client_error` event.
    type Output = Result<(), String>;
}

/// Ties a marker type to its [`EventKind`].
pub trait EventMarker: Send + 'static {
    /// The event kind the marker stands for.
    const KIND: EventKind;
}

/// One marker type per event, used as `EventCx<kind::Publish>`.
pub mod kind {
    use super::{EventKind, EventMarker};

    macro_rules! markers {
        ($($name:ident),*) => {$(
            #[doc = concat!("Marker of [`EventKind::", stringify!($name), "`].")]
            pub struct $name;
            impl EventMarker for $name {
                const KIND: EventKind = EventKind::$name;
            }
        )*};
    }
    markers!(
        Client,
        ClientReady,
        ClientDisconnect,
        ClientError,
        ConnectionError,
        KeepaliveTimeout,
        Publish,
        Ack,
        Subscribe,
        Unsubscribe,
        ConnackSent,
        Closed,
        Ping
    );
}
