//! Handler parameters, axum-extractor style: every parameter type implements
//! [`FromEvent`] for the contexts that can supply it (or [`FromEventMut`] when it
//! is taken as `&mut T` to change the packet). Any order works.
//!
//! | extractor | available in |
//! | --- | --- |
//! | `Client` | every hook and event that always has a client |
//! | `Option<Client>` | every hook and event (`None` for wills, $SYS and broker messages, `closed`) |
//! | `&mut Connect`, `Packet<Connect>` | pre-connect |
//! | `Credential` | authenticate |
//! | `Peer`, `PeerCertificate`, `Option<PeerCertificate>` (TLS client certificate) | pre-connect, authenticate, authorize-subscribe, authorize-forward |
//! | `AuthExchange` (MQTT 5.0 enhanced auth) | authenticate |
//! | `&mut Publish`, `Packet<Publish>`, `Payload`, `Bytes`, `Topic`, `Json<T>`, `Text`, `Decoded<T>` (and your own [`Decode`] formats), `Param<T>`, `Params` | authorize-publish, authorize-forward, published, `publish` and `ack` events |
//! | `Subscription`, `&mut Subscription` | authorize-subscribe |
//! | `Subscriptions` | `subscribe` event |
//! | `Unsubscriptions` | `unsubscribe` event |
//! | `Error` | `client_error`, `connection_error` events |
//! | `Packet<ConnAck>` | `connack_sent` event |
//! | `Client` (an error answer when the broker itself published the request), `Option<Client>`, `&mut Publish`, `Packet<Publish>`, `Payload`, `Bytes`, `Topic`, `Json<T>`, `Text`, `Decoded<T>`, `Param<T>`, `Params` | `#[on_request]` |
//!
//! A payload extractor that fails (JSON that does not parse, a `Text` payload
//! that is not UTF-8, your format's decode error) keeps the handler from
//! running; the failure is logged and reported to `#[on_client_error]`, and an
//! authorize hook refuses the packet.

use std::{fmt, ops::Deref, str::FromStr};

use bytes::Bytes;
use pigeon_codec::{ByteStr, ConnAck, Connect, Publish};
use serde::de::DeserializeOwned;

use super::context::{kind, *};
use super::request::RequestCx;
use super::{AuthExchange, Client, Credential, Event, Params, Peer, PeerCertificate, Subscription};

/// Why a parameter could not be extracted (e.g. a payload that is not the JSON
/// the handler expects). The handler is not run; the failure goes to the error events.
#[derive(Debug, Clone)]
pub struct ExtractError {
    /// `(position, name)` of the parameter.
    pub param: Option<(usize, &'static str)>,
    /// What was wrong with the value.
    pub reason: String,
}

impl ExtractError {
    /// A failure not yet tied to a parameter.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            param: None,
            reason: reason.into(),
        }
    }

    /// Names the parameter that failed (called by the generated code).
    pub fn at(mut self, index: usize, name: &'static str) -> Self {
        self.param = Some((index, name));
        self
    }
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.param {
            Some((i, name)) => write!(f, "parameter #{i} `{name}`: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for ExtractError {}

/// A value a handler parameter can be built from context `C`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a parameter of this handler",
    label = "this hook/event does not supply `{Self}`",
    note = "the context is `{C}`; see the extractor table in `pigeon::hooks::extract`"
)]
pub trait FromEvent<C>: Sized {
    /// Builds the parameter, or says why it cannot.
    fn from_event(cx: &C) -> Result<Self, ExtractError>;
}

/// A part of context `C` a handler may change, taken as `&mut Self`.
#[diagnostic::on_unimplemented(
    message = "`&mut {Self}` cannot be a parameter of this handler",
    label = "this hook/event does not let handlers change `{Self}`",
    note = "the context is `{C}`; see the extractor table in `pigeon::hooks::extract`"
)]
pub trait FromEventMut<C> {
    /// The part of the context the handler changes in place.
    fn from_event_mut(cx: &mut C) -> &mut Self;
}

/// A clone of the packet of the hook or event (`Packet<Publish>`, `Packet<Connect>`, `Packet<ConnAck>`).
#[derive(Debug, Clone)]
pub struct Packet<T>(pub T);

/// The payload of a PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(pub Bytes);

/// The topic of a PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic(pub ByteStr);

/// The payload of a PUBLISH parsed as JSON.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

/// The payload of a PUBLISH as UTF-8 text. A payload that is not UTF-8 keeps
/// the handler from running (reported like a JSON parse failure).
///
/// ```
/// use pigeon::hooks::{Decode, Text};
/// let Text(s) = Text::decode(&"21.5".into()).unwrap();
/// assert_eq!(s, "21.5");
/// assert!(Text::decode(&vec![0xff, 0xfe].into()).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

/// The payload decoded by `T`'s own [`Decode`] format: implement [`Decode`]
/// for your message type and take `Decoded<Message>` as a parameter.
#[derive(Debug, Clone)]
pub struct Decoded<T>(pub T);

/// A payload format: how a handler parameter is decoded from a PUBLISH
/// payload. `Json<T>` and [`Text`] are two implementations.
///
/// Implement it on your message type and take [`Decoded<T>`] as a parameter;
/// or, for a format generic over the message (`Cbor<T>`, `Protobuf<T>`),
/// implement it on your own wrapper and make the wrapper an extractor with
/// [`decode_payload`] (two more lines):
///
/// ```
/// use bytes::Bytes;
/// use pigeon::hooks::{Decode, Decoded};
/// use pigeon::hooks::extract::{decode_payload, ExtractError, FromEvent, HasPublish};
///
/// /// `"id,celsius"`, a format of the devices.
/// struct Reading { id: u32, celsius: f32 }
///
/// impl Decode for Reading {
///     const FORMAT: &'static str = "an `id,celsius` reading";
///     type Error = String;
///     fn decode(payload: &Bytes) -> Result<Self, String> {
///         let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
///         let (id, celsius) = text.split_once(',').ok_or("no comma")?;
///         Ok(Reading {
///             id: id.parse().map_err(|e| format!("id: {e}"))?,
///             celsius: celsius.parse().map_err(|e| format!("celsius: {e}"))?,
///         })
///     }
/// }
///
/// /// One value per line, of any `FromStr` type: a format generic over its values.
/// struct Lines<T>(Vec<T>);
///
/// impl<T: std::str::FromStr> Decode for Lines<T> where T::Err: std::fmt::Display {
///     const FORMAT: &'static str = "one value per line";
///     type Error = String;
///     fn decode(payload: &Bytes) -> Result<Self, String> {
///         let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
///         text.lines().map(|l| l.parse().map_err(|e| format!("{l:?}: {e}"))).collect::<Result<_, _>>().map(Lines)
///     }
/// }
/// // `Lines<T>` is a parameter type itself, wherever `Json<T>` is one.
/// impl<C: HasPublish, T> FromEvent<C> for Lines<T> where Lines<T>: Decode {
///     fn from_event(cx: &C) -> Result<Self, ExtractError> { decode_payload(cx) }
/// }
///
/// let r = Reading::decode(&Bytes::from("7,21.5")).unwrap();
/// assert_eq!((r.id, r.celsius), (7, 21.5));
/// let Lines(v) = Lines::<u8>::decode(&Bytes::from("1\n2")).unwrap();
/// assert_eq!(v, [1, 2]);
/// // In a handler:
/// //   #[on_publish("sensors/:id")]
/// //   async fn reading(&self, Decoded(r): Decoded<Reading>, Lines(v): Lines<u8>) { .. }
/// # let _ = Decoded(r);
/// ```
pub trait Decode: Sized {
    /// What the payload should have been, for the error when it is not
    /// (`"payload is not {FORMAT}: {error}"`).
    const FORMAT: &'static str;
    /// Why a payload does not decode.
    type Error: fmt::Display;
    /// Decodes the whole payload (a cheap clone of it can be kept: `Bytes` is shared).
    fn decode(payload: &Bytes) -> Result<Self, Self::Error>;
}

impl<T: DeserializeOwned> Decode for Json<T> {
    const FORMAT: &'static str = "the expected JSON";
    type Error = serde_json::Error;
    fn decode(payload: &Bytes) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload).map(Json)
    }
}

impl Decode for Text {
    const FORMAT: &'static str = "UTF-8 text";
    type Error = std::str::Utf8Error;
    fn decode(payload: &Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(payload).map(|s| Text(s.to_owned()))
    }
}

/// The payload of the context's PUBLISH decoded as `T`: the body of a
/// [`FromEvent`] impl for a payload format of your own (see [`Decode`]).
pub fn decode_payload<C: HasPublish, T: Decode>(cx: &C) -> Result<T, ExtractError> {
    T::decode(&publish_of(cx)?.payload)
        .map_err(|e| ExtractError::new(format!("payload is not {}: {e}", T::FORMAT)))
}

/// Named segments of the handler's topic pattern: `Param<T>` for one (any
/// `FromStr`), `Param<(A, B)>` for several in pattern order.
#[derive(Debug, Clone)]
pub struct Param<T>(pub T);

/// The subscriptions of a `subscribe` event (negated ones have QoS 128 in MQTT terms).
#[derive(Debug, Clone)]
pub struct Subscriptions(pub Vec<Subscription>);

/// The topic filters of an `unsubscribe` event.
#[derive(Debug, Clone)]
pub struct Unsubscriptions(pub Vec<String>);

/// The error of a `client_error` / `connection_error` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ```
/// let topic = pigeon::hooks::Topic("a/b".into());
/// assert_eq!(format!("on {topic}"), "on a/b");
/// ```
impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `packet.topic` for `Packet<Publish>`, without `.0`.
impl<T> Deref for Packet<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Deref for Topic {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Turns the named segments into `T`.
pub trait FromParams: Sized {
    /// Converts the captured segments, or says which one does not parse.
    fn from_params(params: &Params) -> Result<Self, ExtractError>;
}

fn parse_at<T: FromStr>(params: &Params, i: usize) -> Result<T, ExtractError>
where
    T::Err: fmt::Display,
{
    let (name, value) = params
        .0
        .get(i)
        .ok_or_else(|| ExtractError::new(format!("the topic pattern has no segment #{i}")))?;
    value
        .parse()
        .map_err(|e| ExtractError::new(format!("segment `{name}` = {value:?}: {e}")))
}

macro_rules! from_str_params {
    ($($t:ty),*) => {$(
        impl FromParams for $t {
            fn from_params(params: &Params) -> Result<Self, ExtractError> {
                parse_at(params, 0)
            }
        }
    )*};
}
from_str_params!(
    String,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    bool,
    uuid::Uuid
);

macro_rules! tuple_params {
    ($(($($t:ident $i:tt),*)),*) => {$(
        impl<$($t: FromStr),*> FromParams for ($($t,)*) where $($t::Err: fmt::Display),* {
            fn from_params(params: &Params) -> Result<Self, ExtractError> {
                Ok(($(parse_at::<$t>(params, $i)?,)*))
            }
        }
    )*};
}
tuple_params!((A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3));

/// Contexts that carry a PUBLISH.
#[diagnostic::on_unimplemented(
    message = "this handler has no PUBLISH to take a payload, topic or topic parameter from",
    label = "the hook/event of this parameter carries no PUBLISH",
    note = "the context is `{Self}`; `Json<T>`, `Text`, `Bytes`, `Payload`, `Decoded<T>`, `Topic`, `Param<T>` and `Params` work in on_authorize_publish, on_authorize_forward, on_published, on_publish, on_ack and on_request"
)]
pub trait HasPublish {
    /// `None` only if an event context was built from another kind of event.
    fn publish(&self) -> Option<&Publish>;
    /// The segments the handler's topic pattern captured.
    fn params(&self) -> &Params;
}

fn publish_of<C: HasPublish>(cx: &C) -> Result<&Publish, ExtractError> {
    cx.publish()
        .ok_or_else(|| ExtractError::new("the event has no PUBLISH"))
}

impl<C: HasPublish> FromEvent<C> for Packet<Publish> {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        Ok(Packet(publish_of(cx)?.clone()))
    }
}
impl<C: HasPublish> FromEvent<C> for Payload {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        Ok(Payload(publish_of(cx)?.payload.clone()))
    }
}
impl<C: HasPublish> FromEvent<C> for Topic {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        Ok(Topic(publish_of(cx)?.topic.clone()))
    }
}
impl<C: HasPublish, T: DeserializeOwned> FromEvent<C> for Json<T> {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        decode_payload(cx)
    }
}
impl<C: HasPublish> FromEvent<C> for Text {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        decode_payload(cx)
    }
}
impl<C: HasPublish, T: Decode> FromEvent<C> for Decoded<T> {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        decode_payload(cx).map(Decoded)
    }
}
/// The raw payload, shared with the packet (no copy).
impl<C: HasPublish> FromEvent<C> for Bytes {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        Ok(publish_of(cx)?.payload.clone())
    }
}
impl<C: HasPublish, T: FromParams> FromEvent<C> for Param<T> {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        T::from_params(cx.params()).map(Param)
    }
}
impl<C: HasPublish> FromEvent<C> for Params {
    fn from_event(cx: &C) -> Result<Self, ExtractError> {
        Ok(cx.params().clone())
    }
}

macro_rules! has_publish {
    ($($cx:ty),*) => {$(
        impl HasPublish for $cx {
            fn publish(&self) -> Option<&Publish> { Some(&self.publish) }
            fn params(&self) -> &Params { &self.params }
        }
        impl FromEventMut<$cx> for Publish {
            fn from_event_mut(cx: &mut $cx) -> &mut Publish { &mut cx.publish }
        }
    )*};
}
has_publish!(
    AuthorizePublishCx,
    AuthorizeForwardCx,
    PublishedCx,
    RequestCx
);

macro_rules! event_publish {
    ($($k:ident),*) => {$(
        impl HasPublish for EventCx<kind::$k> {
            fn publish(&self) -> Option<&Publish> {
                match &*self.event {
                    Event::Publish(_, p) | Event::Ack(_, p) => Some(p),
                    _ => None,
                }
            }
            fn params(&self) -> &Params { &self.params }
        }
    )*};
}
event_publish!(Publish, Ack);

/// A client that is always there.
macro_rules! client {
    ($($cx:ty),*) => {$(
        impl FromEvent<$cx> for Client {
            fn from_event(cx: &$cx) -> Result<Self, ExtractError> { Ok(cx.client.clone()) }
        }
        impl FromEvent<$cx> for Option<Client> {
            fn from_event(cx: &$cx) -> Result<Self, ExtractError> { Ok(Some(cx.client.clone())) }
        }
        impl FromEvent<$cx> for Peer {
            fn from_event(cx: &$cx) -> Result<Self, ExtractError> { Ok(cx.client.peer().clone()) }
        }
        impl FromEvent<$cx> for Option<PeerCertificate> {
            fn from_event(cx: &$cx) -> Result<Self, ExtractError> {
                Ok(cx.client.peer().certificate().cloned())
            }
        }
        impl FromEvent<$cx> for PeerCertificate {
            fn from_event(cx: &$cx) -> Result<Self, ExtractError> {
                cx.client.peer().certificate().cloned().ok_or_else(|| {
                    ExtractError::new("the client sent no TLS client certificate")
                })
            }
        }
    )*};
}
client!(
    PreConnectCx,
    AuthenticateCx,
    AuthorizeSubscribeCx,
    AuthorizeForwardCx
);

macro_rules! optional_client {
    ($($cx:ty),*) => {$(
        impl FromEvent<$cx> for Option<Client> {
            fn from_event(cx: &$cx) -> Result<Self, ExtractError> { Ok(cx.client.clone()) }
        }
    )*};
}
optional_client!(AuthorizePublishCx, PublishedCx, RequestCx);

impl FromEventMut<PreConnectCx> for Connect {
    fn from_event_mut(cx: &mut PreConnectCx) -> &mut Connect {
        &mut cx.connect
    }
}
impl FromEvent<PreConnectCx> for Packet<Connect> {
    fn from_event(cx: &PreConnectCx) -> Result<Self, ExtractError> {
        Ok(Packet(cx.connect.clone()))
    }
}
impl FromEvent<AuthenticateCx> for AuthExchange {
    fn from_event(cx: &AuthenticateCx) -> Result<Self, ExtractError> {
        Ok(cx.exchange.clone())
    }
}
impl FromEvent<AuthenticateCx> for Credential {
    fn from_event(cx: &AuthenticateCx) -> Result<Self, ExtractError> {
        Ok(cx.credential.clone())
    }
}
impl FromEvent<AuthorizeSubscribeCx> for Subscription {
    fn from_event(cx: &AuthorizeSubscribeCx) -> Result<Self, ExtractError> {
        Ok(cx.subscription.clone())
    }
}
impl FromEventMut<AuthorizeSubscribeCx> for Subscription {
    fn from_event_mut(cx: &mut AuthorizeSubscribeCx) -> &mut Subscription {
        &mut cx.subscription
    }
}

impl Event {
    /// The client of the event, if it has one.
    pub fn client(&self) -> Option<&Client> {
        match self {
            Event::Client(c)
            | Event::ClientReady(c)
            | Event::ClientDisconnect(c)
            | Event::ClientError(c, _)
            | Event::ConnectionError(c, _)
            | Event::KeepaliveTimeout(c)
            | Event::Ack(c, _)
            | Event::Subscribe(c, _)
            | Event::Unsubscribe(c, _)
            | Event::ConnackSent(c, _)
            | Event::Ping(c) => Some(c),
            Event::Publish(c, _) => c.as_ref(),
            Event::Closed => None,
        }
    }
}

macro_rules! event_client {
    ($($k:ident),*) => {$(
        impl FromEvent<EventCx<kind::$k>> for Client {
            fn from_event(cx: &EventCx<kind::$k>) -> Result<Self, ExtractError> {
                cx.event.client().cloned().ok_or_else(|| ExtractError::new("the event has no client"))
            }
        }
    )*};
}
event_client!(
    Client,
    ClientReady,
    ClientDisconnect,
    ClientError,
    ConnectionError,
    KeepaliveTimeout,
    Ack,
    Subscribe,
    Unsubscribe,
    ConnackSent,
    Ping
);

impl<K> FromEvent<EventCx<K>> for Option<Client> {
    fn from_event(cx: &EventCx<K>) -> Result<Self, ExtractError> {
        Ok(cx.event.client().cloned())
    }
}

macro_rules! event_error {
    ($($k:ident),*) => {$(
        impl FromEvent<EventCx<kind::$k>> for Error {
            fn from_event(cx: &EventCx<kind::$k>) -> Result<Self, ExtractError> {
                match &*cx.event {
                    Event::ClientError(_, e) | Event::ConnectionError(_, e) => Ok(Error(e.clone())),
                    _ => Err(ExtractError::new("the event has no error")),
                }
            }
        }
    )*};
}
event_error!(ClientError, ConnectionError);

impl FromEvent<EventCx<kind::Subscribe>> for Subscriptions {
    fn from_event(cx: &EventCx<kind::Subscribe>) -> Result<Self, ExtractError> {
        match &*cx.event {
            Event::Subscribe(_, subs) => Ok(Subscriptions(subs.clone())),
            _ => Err(ExtractError::new("the event has no subscriptions")),
        }
    }
}
impl FromEvent<EventCx<kind::Unsubscribe>> for Unsubscriptions {
    fn from_event(cx: &EventCx<kind::Unsubscribe>) -> Result<Self, ExtractError> {
        match &*cx.event {
            Event::Unsubscribe(_, topics) => Ok(Unsubscriptions(topics.clone())),
            _ => Err(ExtractError::new("the event has no unsubscriptions")),
        }
    }
}
impl FromEvent<EventCx<kind::ConnackSent>> for Packet<ConnAck> {
    fn from_event(cx: &EventCx<kind::ConnackSent>) -> Result<Self, ExtractError> {
        match &*cx.event {
            Event::ConnackSent(_, ack) => Ok(Packet(ack.clone())),
            _ => Err(ExtractError::new("the event has no CONNACK")),
        }
    }
}
