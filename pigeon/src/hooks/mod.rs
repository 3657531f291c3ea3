//! The seam between the engine and user code: handlers the engine awaits in a
//! packet's path, and events it emits without waiting.
//!
//! CONTRACT (engine side): the engine holds an `Arc<Hooks>` and calls exactly
//! these methods at the named points. `Hooks::default()` has no handlers and
//! behaves as the broker's defaults (allow everything except client publishes
//! to `$SYS/`).
//!
//! Framework side: `#[handlers]` registers each `#[on_*]` method (see
//! [`registry`](HooksBuilder)); bootstrap builds a `Hooks` holding one chain per
//! handler, sorted by `order`, module provider order, then declaration order.
//! A chain stops at the first refusal; an extractor failure or a panic is a
//! refusal too (authenticate: "server unavailable") and is reported to the
//! error events. Events go through a bounded queue to one dispatcher task
//! ([`dispatch`](Hooks::emit)), which runs every listener of each event in order.

mod auth;
mod client;
pub mod context;
// Edited in a parallel branch; see the note on `broker` in lib.rs.
#[allow(unreachable_pub)]
mod dispatch;
mod errors;
mod event;
pub mod extract;
mod guard;
mod pattern;
mod peer;
mod registry;
pub mod request;
pub mod returns;
pub mod timing;

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures_util::FutureExt;

pub use auth::{AuthExchange, AuthStep};
pub use client::{Client, Credential, Subscription};
pub use context::SubscribeDecision;
pub use errors::{AuthError, Denied, HookError, HooksError};
pub use event::{Event, EventKind};
pub use extract::{Decode, Decoded, Text};
pub use extract::{
    Error, ExtractError, FromEvent, FromEventMut, Json, Packet, Param, Payload, Subscriptions,
    Topic, Unsubscriptions,
};
pub(crate) use guard::guard;
pub use pattern::{Params, TopicPattern};
pub use peer::{ListenerKind, Peer, PeerCertificate};
#[doc(hidden)]
pub use registry::Entry;
pub use registry::{BoxFuture, HandlerFn, HandlerSet, HooksBuilder, Meta, Register};
pub use request::{IntoReply, Reply, ReplyKind, RequestCx, RequestLimits};

use context::*;
use registry::Chains;

use pigeon_codec::{Connect, Publish, QoS, ReasonCode};

/// The handlers and event listeners of one broker.
#[derive(Default)]
pub struct Hooks {
    /// When true, clients may publish to `$SYS/` topics; when false (the default)
    /// such a PUBLISH is refused before any authorize-publish handler runs.
    pub allow_sys_publish: bool,
    chains: Chains,
    /// The `#[on_request]` handlers, each served by its own subscriber (see `broker`).
    requests: Vec<request::RequestHandler>,
    events: Option<dispatch::EventQueue>,
    /// [`EventKind::bit`] set when a listener exists.
    wanted: event::KindSet,
    /// How long each hook's handlers take (only hooks with handlers are timed).
    timings: timing::HookTimings,
}

/// Why one handler of a chain did not produce an outcome.
enum Failure {
    Extract(String),
    Panic(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Extract(m) | Failure::Panic(m) => m,
        }
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Runs one handler, turning extractor errors and panics into a [`Failure`].
async fn run<C: Context>(entry: &Entry<C>, cx: &mut C) -> Result<C::Output, Failure> {
    match AssertUnwindSafe((entry.call)(cx)).catch_unwind().await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(Failure::Extract(format!("{}: {e}", entry.name))),
        Err(panic) => Err(Failure::Panic(format!(
            "{} panicked: {}",
            entry.name,
            panic_message(&panic)
        ))),
    }
}

/// Runs `entry` only when its pattern (if any) matches the context's topic.
fn pattern_params(entry_pattern: &Option<TopicPattern>, topic: &str) -> Option<Params> {
    match entry_pattern {
        None => Some(Params::default()),
        Some(p) => p.matches(topic),
    }
}

/// A stand-in left in the engine's packet while handlers own it (no allocation).
fn placeholder_publish() -> Publish {
    Publish::new("", QoS::AtMostOnce, bytes::Bytes::new())
}

impl Hooks {
    /// A builder to register handlers on.
    pub fn builder() -> HooksBuilder {
        HooksBuilder::new()
    }

    /// How long each hook's handlers took so far.
    pub fn timings(&self) -> &timing::HookTimings {
        &self.timings
    }

    /// Runs one handler of `hook`, timing it.
    async fn timed<T>(&self, hook: timing::Hook, run: impl std::future::Future<Output = T>) -> T {
        let start = std::time::Instant::now();
        let out = run.await;
        self.timings.of(hook).observe(start.elapsed());
        out
    }

    /// Events dropped because the event queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.events.as_ref().map_or(0, |q| q.dropped())
    }

    /// Waits until every event emitted so far was handled (at most `timeout`).
    pub async fn flush_events(&self, timeout: Duration) {
        if let Some(q) = &self.events {
            q.flush(timeout).await;
        }
    }

    fn report(&self, event: Event) {
        if self.wants(event.kind()) {
            self.emit(event);
        }
    }

    /// True when at least one listener wants events of `kind`. The engine checks
    /// this before building an event, so an unobserved event costs nothing.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.wanted & kind.bit() != 0
    }

    /// Emits an event to its listeners without waiting for them (bounded queue;
    /// overflow is counted and logged, never blocks the caller).
    pub fn emit(&self, event: Event) {
        if let Some(q) = &self.events {
            if self.wants(event.kind()) {
                q.emit(event);
            }
        }
    }

    /// Called when a valid CONNECT arrives, before authentication. May rewrite the
    /// CONNECT. An error refuses the connection (raised as `connectionError`).
    pub async fn pre_connect(
        &self,
        client: &Client,
        connect: &mut Connect,
    ) -> Result<(), HookError> {
        if self.chains.pre_connect.is_empty() {
            return Ok(());
        }
        let placeholder = Connect::new(connect.protocol, String::new());
        let mut cx = PreConnectCx {
            client: client.clone(),
            connect: std::mem::replace(connect, placeholder),
        };
        let mut result = Ok(());
        for entry in &self.chains.pre_connect {
            match self
                .timed(timing::Hook::PreConnect, run(entry, &mut cx))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    result = Err(e);
                    break;
                }
                Err(f) => {
                    result = Err(HookError(f.message().to_owned()));
                    break;
                }
            }
        }
        *connect = cx.connect;
        result
    }

    /// Called after `pre_connect`. An error refuses the connection with the
    /// CONNACK code it carries. A handler that panics or cannot extract its
    /// parameters refuses with "server unavailable" and goes to `connection_error`.
    pub async fn authenticate(
        &self,
        client: &Client,
        credential: &Credential,
    ) -> Result<(), AuthError> {
        match self
            .authenticate_step(client, credential, AuthExchange::default())
            .await?
        {
            AuthStep::Pass | AuthStep::Success(_) => Ok(()),
            AuthStep::Continue(_) => Err(AuthError {
                message: "authentication continued without an authentication method".into(),
                reason: ReasonCode::UnspecifiedError,
            }),
        }
    }

    /// One step of the authenticate chain for an MQTT 5.0 exchange: handlers
    /// run in order; the first `Continue` or error ends the step; otherwise a
    /// `Success` from any handler (its data, the last one's) or `Pass`.
    pub async fn authenticate_step(
        &self,
        client: &Client,
        credential: &Credential,
        exchange: AuthExchange,
    ) -> Result<AuthStep, AuthError> {
        if self.chains.authenticate.is_empty() {
            return Ok(AuthStep::Pass);
        }
        let mut cx = AuthenticateCx {
            client: client.clone(),
            credential: credential.clone(),
            exchange,
        };
        let mut outcome = AuthStep::Pass;
        for entry in &self.chains.authenticate {
            match self
                .timed(timing::Hook::Authenticate, run(entry, &mut cx))
                .await
            {
                Ok(Ok(AuthStep::Pass)) => {}
                Ok(Ok(AuthStep::Success(data))) => outcome = AuthStep::Success(data),
                Ok(Ok(step @ AuthStep::Continue(_))) => return Ok(step),
                Ok(Err(e)) => return Err(e),
                Err(f) => {
                    tracing::error!(client = client.id(), "authenticate failed: {}", f.message());
                    self.report(Event::ConnectionError(
                        client.clone(),
                        f.message().to_owned(),
                    ));
                    // 0x80 for v5; the codec sends it to 3.x clients as 3 "server unavailable".
                    return Err(AuthError {
                        message: f.message().to_owned(),
                        reason: ReasonCode::UnspecifiedError,
                    });
                }
            }
        }
        Ok(outcome)
    }

    /// Called for every PUBLISH a client sends and for every will the broker is
    /// about to publish (`client` is `None` when the will's client is gone). May
    /// rewrite topic or payload. Refusal: 3.1.1 disconnects silently
    /// (MQTT-3.3.5-2); 5.0 answers 0x87.
    pub async fn authorize_publish(
        &self,
        client: Option<&Client>,
        publish: &mut Publish,
    ) -> Result<(), Denied> {
        if self.refuses_sys(&publish.topic) {
            return Err(Denied::new("$SYS/ topic is reserved"));
        }
        if self.chains.authorize_publish.is_empty() {
            return Ok(());
        }
        let mut cx = AuthorizePublishCx {
            client: client.cloned(),
            publish: std::mem::replace(publish, placeholder_publish()),
            params: Params::default(),
        };
        let mut result = Ok(());
        for entry in &self.chains.authorize_publish {
            let Some(params) = pattern_params(&entry.pattern, &cx.publish.topic) else {
                continue;
            };
            cx.params = params;
            match self
                .timed(timing::Hook::AuthorizePublish, run(entry, &mut cx))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    result = Err(e);
                    break;
                }
                Err(f) => {
                    self.log_failure(client, &f);
                    result = Err(Denied {
                        message: f.message().to_owned(),
                        reason: ReasonCode::UnspecifiedError,
                    });
                    break;
                }
            }
        }
        *publish = cx.publish;
        result
    }

    /// Logs a failure whose refusal the engine reports as a client error
    /// itself (authorize-publish, authorize-subscribe, published): reporting
    /// it here as well would give `#[on_client_error]` each failure twice.
    fn log_failure(&self, client: Option<&Client>, f: &Failure) {
        tracing::error!(client = client.map(Client::id), "{}", f.message());
    }

    /// Logs and reports a failure the engine does not see (authorize-forward).
    fn report_failure(&self, client: Option<&Client>, f: &Failure) {
        self.log_failure(client, f);
        if let Some(c) = client {
            self.report(Event::ClientError(c.clone(), f.message().to_owned()));
        }
    }

    /// Called for every SUBSCRIBE entry and again when a persistent session's
    /// subscriptions are restored. `Ok(None)` negates it (SUBACK 0x80);
    /// `Ok(Some(s))` may rewrite it.
    pub async fn authorize_subscribe(
        &self,
        client: &Client,
        sub: Subscription,
    ) -> Result<Option<Subscription>, Denied> {
        if self.chains.authorize_subscribe.is_empty() {
            return Ok(Some(sub));
        }
        let mut cx = AuthorizeSubscribeCx {
            client: client.clone(),
            subscription: sub,
        };
        for entry in &self.chains.authorize_subscribe {
            match self
                .timed(timing::Hook::AuthorizeSubscribe, run(entry, &mut cx))
                .await
            {
                Ok(Ok(SubscribeDecision::Keep)) => {}
                Ok(Ok(SubscribeDecision::Replace(s))) => cx.subscription = s,
                Ok(Ok(SubscribeDecision::Negate)) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Err(f) => {
                    self.log_failure(Some(client), &f);
                    return Err(Denied {
                        message: f.message().to_owned(),
                        reason: ReasonCode::UnspecifiedError,
                    });
                }
            }
        }
        Ok(Some(cx.subscription))
    }

    /// Called per subscriber before a message is forwarded to it: `None` drops
    /// it for that client, `Some` may be rewritten. Only called when a handler exists.
    pub async fn authorize_forward(&self, client: &Client, publish: Publish) -> Option<Publish> {
        let mut cx = AuthorizeForwardCx {
            client: client.clone(),
            publish,
            params: Params::default(),
        };
        for entry in &self.chains.authorize_forward {
            let Some(params) = pattern_params(&entry.pattern, &cx.publish.topic) else {
                continue;
            };
            cx.params = params;
            match self
                .timed(timing::Hook::AuthorizeForward, run(entry, &mut cx))
                .await
            {
                Ok(true) => {}
                Ok(false) => return None,
                Err(f) => {
                    self.report_failure(Some(client), &f);
                    return None;
                }
            }
        }
        Some(cx.publish)
    }

    /// True when [`Hooks::authorize_publish`] would allow a PUBLISH to `topic`
    /// without calling anything (no handler, and not a refused `$SYS/` topic).
    pub fn allows_publish_outright(&self, topic: &str) -> bool {
        self.chains.authorize_publish.is_empty() && !self.refuses_sys(topic)
    }

    /// Whether a client's PUBLISH to `topic` is refused as a `$SYS/` topic.
    fn refuses_sys(&self, topic: &str) -> bool {
        !self.allow_sys_publish && topic.starts_with("$SYS/")
    }

    /// True when a `published` handler exists (the engine skips the call otherwise).
    pub fn has_published(&self) -> bool {
        !self.chains.published.is_empty()
    }

    /// True when an `authorize_forward` handler exists (the engine skips the call otherwise).
    pub fn has_authorize_forward(&self) -> bool {
        !self.chains.authorize_forward.is_empty()
    }

    /// Awaited in order after a client's PUBLISH was authorized and before the next
    /// packet of that client is handled (backpressure).
    pub async fn published(
        &self,
        client: Option<&Client>,
        publish: &Publish,
    ) -> Result<(), HookError> {
        if self.chains.published.is_empty() {
            return Ok(());
        }
        let mut cx = PublishedCx {
            client: client.cloned(),
            publish: publish.clone(),
            params: Params::default(),
        };
        for entry in &self.chains.published {
            let Some(params) = pattern_params(&entry.pattern, &cx.publish.topic) else {
                continue;
            };
            cx.params = params;
            match self
                .timed(timing::Hook::Published, run(entry, &mut cx))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // The engine reports it as a client error; named here,
                    // where the handler is known.
                    let message = format!("{} returned an error: {e}", entry.name);
                    tracing::error!(
                        handler = entry.name,
                        client = client.map(Client::id),
                        "{message}"
                    );
                    return Err(HookError(message));
                }
                Err(f) => {
                    self.log_failure(client, &f);
                    return Err(HookError(f.message().to_owned()));
                }
            }
        }
        Ok(())
    }

    /// A shareable empty set of hooks.
    pub fn none() -> Arc<Self> {
        Arc::new(Self::default())
    }
}
