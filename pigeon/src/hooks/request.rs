//! Request/response handlers: `#[on_request("rpc/:service/:method")]`.
//!
//! A request is a PUBLISH to a topic the handler's pattern matches. Its
//! answer goes to the topic the requester named:
//!
//! - MQTT 5.0: the request's Response Topic property. The response carries the
//!   request's Correlation Data, QoS and a Content Type (`application/json`
//!   for `Json<T>`, `text/plain; charset=utf-8` for `String`, none for
//!   bytes). An error response has the error's message as its payload
//!   (`text/plain; charset=utf-8`) and the user property `error` = message;
//!   a typed error, `Err(Json(e))`, has `e` as JSON instead (`application/json`,
//!   and the same JSON text in the `error` property).
//! - Without a Response Topic (MQTT 3.1.1 has no properties): a JSON envelope
//!   payload `{"response_topic": "...", "correlation_data": <any JSON>,
//!   "payload": <any JSON>}`; the handler sees `payload` (as JSON text) as the
//!   request's payload, and the answer is the envelope `{"correlation_data":
//!   ..., "payload": <the answer as JSON>}` or `{"correlation_data": ...,
//!   "error": "message"}` (`"error": <e as JSON>` for `Err(Json(e))`; an
//!   answer in bytes goes as a JSON string, so it must be UTF-8).
//!
//! A request with neither is not answered: a `client_error` event says why.
//! So is a response topic that is not a valid topic name, a `$` topic, or
//! one the ACL does not let the requester publish to.
//!
//! ```no_run
//! use pigeon::prelude::*;
//!
//! #[injectable]
//! pub struct Echo;
//!
//! #[handlers]
//! impl Echo {
//!     // `mosquitto_rr -V 5 -t rpc/echo -e replies/me -m hi` prints `hi`.
//!     #[on_request("rpc/echo", timeout = 1000)]
//!     async fn echo(&self, payload: Payload) -> Result<Vec<u8>, String> {
//!         Ok(payload.0.to_vec())
//!     }
//! }
//! ```

use std::{fmt, time::Duration};

use bytes::Bytes;
use pigeon_codec::{Publish, QoS};
use serde::Serialize;

use super::context::Context;
use super::extract::{ExtractError, FromEvent, Json};
use super::registry::Entry;
use super::returns::HandlerReturn;
use super::{pattern_params, run, Client, Event, Hooks, Params};

/// `#[on_request]`: the request, its requester and the pattern's segments.
pub struct RequestCx {
    /// The requester; `None` for a request the broker itself published
    /// (`PigeonService::publish`).
    pub client: Option<Client>,
    /// The request (for an envelope, its `payload` as the payload).
    pub publish: Publish,
    /// The segments the handler's topic pattern captured.
    pub params: Params,
}

impl Context for RequestCx {
    type Output = Reply;
}

impl FromEvent<RequestCx> for Client {
    fn from_event(cx: &RequestCx) -> Result<Self, ExtractError> {
        cx.client.clone().ok_or_else(|| {
            ExtractError::new("the request was published by the broker itself: it has no client (take `Option<Client>`)")
        })
    }
}

/// `timeout = ms, concurrency = n` of `#[on_request]`.
///
/// ```
/// use pigeon::hooks::RequestLimits;
/// let limits = RequestLimits::new(Some(500), None);
/// assert_eq!(limits.timeout, std::time::Duration::from_millis(500));
/// assert_eq!(limits.concurrency, RequestLimits::DEFAULT.concurrency);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// How long one call may take before it is answered with a timeout error.
    pub timeout: Duration,
    /// Calls running at once; further requests wait in the handler's queue.
    pub concurrency: usize,
}

impl RequestLimits {
    /// 10 s, 16 calls at once.
    pub const DEFAULT: RequestLimits = RequestLimits {
        timeout: Duration::from_secs(10),
        concurrency: 16,
    };

    /// The limits `#[on_request(timeout = .., concurrency = ..)]` asked for
    /// (`None`: the default); called by the generated code.
    pub const fn new(timeout_ms: Option<u64>, concurrency: Option<usize>) -> Self {
        RequestLimits {
            timeout: match timeout_ms {
                Some(ms) => Duration::from_millis(ms),
                None => Self::DEFAULT.timeout,
            },
            concurrency: match concurrency {
                Some(n) => n,
                None => Self::DEFAULT.concurrency,
            },
        }
    }
}

/// What a request handler answered, before it becomes a PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A successful answer.
    Ok {
        /// The payload.
        body: Bytes,
        /// How it is encoded.
        kind: ReplyKind,
    },
    /// An error, with the message the requester gets.
    Err(String),
    /// A typed error (`Err(Json(e))`): `e` written as JSON, which the
    /// requester gets as the error.
    ErrJson(Bytes),
}

/// How a [`Reply`]'s body is encoded (its Content Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// `application/json`.
    Json,
    /// `text/plain; charset=utf-8`.
    Text,
    /// Bytes, no content type.
    Bytes,
}

/// A successful answer of a request handler: `Json<T>`, `String`, `&'static str`,
/// `Bytes`, `Vec<u8>` or `()` (an empty payload).
///
/// ```
/// use pigeon::hooks::{IntoReply, Json, Reply, ReplyKind};
/// let reply = Json(serde_json::json!({"ok": true})).into_reply();
/// assert_eq!(reply, Reply::Ok { body: r#"{"ok":true}"#.into(), kind: ReplyKind::Json });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the answer of an `#[on_request]` handler",
    label = "not an answer type",
    note = "an #[on_request] handler returns Result<A, E> or A, where A is Json<T> (T: Serialize), String, &'static str, Bytes, Vec<u8> or (), and E: Display (a message) or Json<E> with E: Serialize (a typed error)"
)]
pub trait IntoReply {
    /// The answer as a [`Reply`].
    fn into_reply(self) -> Reply;
}

impl<T: Serialize> IntoReply for Json<T> {
    fn into_reply(self) -> Reply {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Reply::Ok {
                body: body.into(),
                kind: ReplyKind::Json,
            },
            Err(e) => Reply::Err(format!("the answer could not be written as JSON: {e}")),
        }
    }
}
impl IntoReply for String {
    fn into_reply(self) -> Reply {
        Reply::Ok {
            body: self.into(),
            kind: ReplyKind::Text,
        }
    }
}
impl IntoReply for &'static str {
    fn into_reply(self) -> Reply {
        Reply::Ok {
            body: Bytes::from_static(self.as_bytes()),
            kind: ReplyKind::Text,
        }
    }
}
impl IntoReply for Bytes {
    fn into_reply(self) -> Reply {
        Reply::Ok {
            body: self,
            kind: ReplyKind::Bytes,
        }
    }
}
impl IntoReply for Vec<u8> {
    fn into_reply(self) -> Reply {
        Bytes::from(self).into_reply()
    }
}
impl IntoReply for () {
    fn into_reply(self) -> Reply {
        Bytes::new().into_reply()
    }
}

impl<A: IntoReply, E: fmt::Display> HandlerReturn<RequestCx> for Result<A, E> {
    fn into_outcome(self) -> Reply {
        match self {
            Ok(answer) => answer.into_reply(),
            Err(e) => Reply::Err(e.to_string()),
        }
    }
}

/// A typed error: the requester gets `E` as JSON, not a message.
///
/// ```
/// use pigeon::hooks::{returns::HandlerReturn, Json, Reply};
/// #[derive(serde::Serialize)]
/// struct NotFound { device: String }
/// let answer: Result<Json<u32>, Json<NotFound>> = Err(Json(NotFound { device: "d1".into() }));
/// assert_eq!(answer.into_outcome(), Reply::ErrJson(r#"{"device":"d1"}"#.into()));
/// ```
impl<A: IntoReply, E: Serialize> HandlerReturn<RequestCx> for Result<A, Json<E>> {
    fn into_outcome(self) -> Reply {
        match self {
            Ok(answer) => answer.into_reply(),
            Err(Json(e)) => match serde_json::to_vec(&e) {
                Ok(body) => Reply::ErrJson(body.into()),
                Err(e) => Reply::Err(format!("the error could not be written as JSON: {e}")),
            },
        }
    }
}

/// `A` alone: a handler that cannot fail. One impl per type, as a blanket
/// one would overlap the `Result` impl above.
macro_rules! infallible {
    ($($t:ty),*) => {$(
        impl HandlerReturn<RequestCx> for $t {
            fn into_outcome(self) -> Reply {
                self.into_reply()
            }
        }
    )*};
}
infallible!(String, &'static str, Bytes, Vec<u8>, ());

impl<T: Serialize> HandlerReturn<RequestCx> for Json<T> {
    fn into_outcome(self) -> Reply {
        self.into_reply()
    }
}

/// One `#[on_request]` handler.
pub(crate) struct RequestHandler {
    pub(crate) entry: Entry<RequestCx>,
    /// The pattern as written (`rpc/:service/:method`).
    pub(crate) pattern: &'static str,
    pub(crate) limits: RequestLimits,
}

/// Where and how the answer goes.
enum Route {
    /// MQTT 5.0 Response Topic and Correlation Data.
    Properties {
        topic: String,
        correlation: Option<Bytes>,
    },
    /// The JSON envelope convention.
    Envelope {
        topic: String,
        correlation: Option<serde_json::Value>,
    },
}

impl Route {
    fn topic(&self) -> &str {
        match self {
            Route::Properties { topic, .. } | Route::Envelope { topic, .. } => topic,
        }
    }
}

#[derive(serde::Deserialize)]
struct Envelope {
    response_topic: String,
    #[serde(default)]
    correlation_data: Option<serde_json::Value>,
    #[serde(default)]
    payload: serde_json::Value,
}

/// A request ready for its handler (see [`RequestHandler::accept`]).
pub(crate) struct Accepted {
    route: Route,
    cx: RequestCx,
}

impl Accepted {
    /// The topic the answer goes to.
    pub(crate) fn response_topic(&self) -> &str {
        self.route.topic()
    }

    /// The requester, if a client.
    pub(crate) fn client(&self) -> Option<&Client> {
        self.cx.client.as_ref()
    }
}

impl RequestHandler {
    /// The MQTT filter of the pattern: each `:name` becomes `+`.
    pub(crate) fn filter(&self) -> String {
        self.pattern
            .split('/')
            .map(|s| if s.starts_with(':') { "+" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The handler's name (`Type::method`).
    pub(crate) fn name(&self) -> &'static str {
        self.entry.name
    }

    /// Finds where the answer to `publish` goes; `Err` (the reason, for the
    /// requester's `client_error` event) when it has nowhere to go.
    pub(crate) fn accept(
        &self,
        client: Option<Client>,
        mut publish: Publish,
    ) -> Result<Accepted, String> {
        let props = publish.properties.get_mut();
        let route = match props.and_then(|p| p.response_topic.take()) {
            Some(topic) => Route::Properties {
                topic,
                correlation: publish
                    .properties
                    .get_mut()
                    .and_then(|p| p.correlation_data.take()),
            },
            None => match serde_json::from_slice::<Envelope>(&publish.payload) {
                Ok(envelope) => {
                    publish.payload = serde_json::to_vec(&envelope.payload)
                        .map(Bytes::from)
                        .unwrap_or_default();
                    Route::Envelope {
                        topic: envelope.response_topic,
                        correlation: envelope.correlation_data,
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "request to {:?} for {} has no Response Topic (MQTT 5.0) and is not a JSON envelope {{\"response_topic\": ..., \"payload\": ...}}: not answered",
                        &*publish.topic,
                        self.entry.name
                    ))
                }
            },
        };
        let topic = route.topic();
        if !pigeon_codec::topic::valid_topic_name(topic) || topic.starts_with('$') {
            return Err(format!(
                "request to {:?} for {}: the response topic {topic:?} is not a topic the broker may publish to: not answered",
                &*publish.topic, self.entry.name
            ));
        }
        let params = pattern_params(&self.entry.pattern, &publish.topic).unwrap_or_default();
        Ok(Accepted {
            route,
            cx: RequestCx {
                client,
                publish,
                params,
            },
        })
    }

    /// Runs the handler on an accepted request (within its timeout) and
    /// returns the answer to publish.
    pub(crate) async fn answer(&self, hooks: &Hooks, accepted: Accepted) -> Publish {
        let Accepted { route, mut cx } = accepted;
        let qos = cx.publish.qos;
        let timeout = self.limits.timeout;
        let reply = match tokio::time::timeout(timeout, run(&self.entry, &mut cx)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(failure)) => {
                hooks.report_failure(cx.client.as_ref(), &failure);
                Reply::Err(failure.message().to_owned())
            }
            Err(_) => {
                let message = format!(
                    "{} timed out after {} ms",
                    self.entry.name,
                    timeout.as_millis()
                );
                tracing::warn!(client = cx.client.as_ref().map(Client::id), "{message}");
                Reply::Err(message)
            }
        };
        if let Reply::Err(message) = &reply {
            tracing::debug!(
                handler = self.entry.name,
                "request answered with an error: {message}"
            );
        }
        if let Reply::ErrJson(body) = &reply {
            tracing::debug!(
                handler = self.entry.name,
                "request answered with an error: {}",
                String::from_utf8_lossy(body)
            );
        }
        response(route, qos, reply)
    }
}

impl Hooks {
    /// The `#[on_request]` handlers.
    pub(crate) fn requests(&self) -> &[RequestHandler] {
        &self.requests
    }

    /// Logs why a request is not answered and tells its client's `client_error` listeners.
    pub(crate) fn refuse_request(&self, client: Option<&Client>, reason: String) {
        tracing::warn!(client = client.map(Client::id), "{reason}");
        if let Some(c) = client {
            self.report(Event::ClientError(c.clone(), reason));
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// The PUBLISH that answers a request (see the module's documentation).
fn response(route: Route, qos: QoS, reply: Reply) -> Publish {
    match route {
        Route::Properties { topic, correlation } => {
            let mut p = match reply {
                Reply::Ok { body, kind } => {
                    let mut p = Publish::new(topic, qos, body);
                    let props = p.properties.make_mut();
                    props.content_type = match kind {
                        ReplyKind::Json => Some(JSON.to_owned()),
                        ReplyKind::Text => Some(TEXT.to_owned()),
                        ReplyKind::Bytes => None,
                    };
                    props.payload_format_indicator = (kind != ReplyKind::Bytes).then_some(true);
                    p
                }
                Reply::Err(message) => {
                    let mut p = Publish::new(topic, qos, Bytes::from(message.clone()));
                    let props = p.properties.make_mut();
                    props.content_type = Some(TEXT.to_owned());
                    props.payload_format_indicator = Some(true);
                    props.user_properties = vec![("error".to_owned(), message)];
                    p
                }
                Reply::ErrJson(body) => {
                    // serde_json writes UTF-8.
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let mut p = Publish::new(topic, qos, body);
                    let props = p.properties.make_mut();
                    props.content_type = Some(JSON.to_owned());
                    props.payload_format_indicator = Some(true);
                    props.user_properties = vec![("error".to_owned(), text)];
                    p
                }
            };
            if correlation.is_some() {
                p.properties.make_mut().correlation_data = correlation;
            }
            p
        }
        Route::Envelope { topic, correlation } => {
            let mut body = serde_json::Map::new();
            if let Some(c) = correlation {
                body.insert("correlation_data".into(), c);
            }
            match envelope_value(reply) {
                Ok(value) => body.insert("payload".into(), value),
                Err(error) => body.insert("error".into(), error),
            };
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let mut p = Publish::new(topic, qos, bytes);
            p.properties.make_mut().content_type = Some(JSON.to_owned());
            p
        }
    }
}

/// The answer as the envelope's `payload`, or its `error`: a message, or
/// a typed error's JSON.
fn envelope_value(reply: Reply) -> Result<serde_json::Value, serde_json::Value> {
    let message = |m: String| serde_json::Value::String(m);
    match reply {
        Reply::Ok {
            body,
            kind: ReplyKind::Json,
        } => serde_json::from_slice(&body).map_err(|e| message(e.to_string())),
        Reply::Ok { body, .. } => String::from_utf8(body.to_vec())
            .map(serde_json::Value::String)
            .map_err(|_| {
                message("the answer is not UTF-8, so it cannot go in a JSON envelope".into())
            }),
        Reply::Err(m) => Err(message(m)),
        Reply::ErrJson(body) => {
            Err(serde_json::from_slice(&body).unwrap_or_else(|e| message(e.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_response_has_the_message_as_payload_and_error_property() {
        let route = Route::Properties {
            topic: "r/1".into(),
            correlation: Some(Bytes::from_static(b"c1")),
        };
        let p = response(route, QoS::AtLeastOnce, Reply::Err("no such method".into()));
        assert_eq!(&p.payload[..], b"no such method");
        assert_eq!(
            p.properties.user_properties,
            vec![("error".to_owned(), "no such method".to_owned())]
        );
        assert_eq!(p.properties.correlation_data.as_deref(), Some(&b"c1"[..]));
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }

    #[test]
    fn an_envelope_answer_keeps_the_correlation_and_nests_the_json() {
        let route = Route::Envelope {
            topic: "r/1".into(),
            correlation: Some(serde_json::json!("abc")),
        };
        let reply = Json(serde_json::json!({"sum": 3})).into_reply();
        let p = response(route, QoS::AtMostOnce, reply);
        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"correlation_data": "abc", "payload": {"sum": 3}})
        );
    }
}
