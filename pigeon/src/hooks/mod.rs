//! The seam between the engine and user code: handlers the engine awaits in a
//! packet's path, and events it emits without waiting.
//!
//! CONTRACT (engine side): the engine holds an `Arc<Hooks>` and calls exactly
//! these methods at the named points. `Hooks::default()` has no handlers and
//! behaves as the broker's defaults (allow everything except client publishes
//! to `$SYS/`). The macros' runtime (registration, extractors, DI) lives in the
//! submodules and only changes how a `Hooks` is built, not this interface.

mod client;
mod errors;
mod event;

use std::sync::Arc;

pub use client::{Client, Credential, Subscription};
pub use errors::{AuthError, Denied, HookError};
pub use event::{Event, EventKind};

use pigeon_codec::{Connect, Publish};

/// The handlers and event listeners of one broker.
#[derive(Default)]
pub struct Hooks {
    /// When false, clients may publish to `$SYS/` topics (default: denied).
    pub allow_sys_publish: bool,
}

impl Hooks {
    /// True when at least one listener wants events of `kind`. The engine checks
    /// this before building an event, so an unobserved event costs nothing.
    pub fn wants(&self, kind: EventKind) -> bool {
        let _ = kind;
        false
    }

    /// Emits an event to its listeners without waiting for them (bounded queue;
    /// overflow is counted and logged, never blocks the caller).
    pub fn emit(&self, event: Event) {
        let _ = event;
    }

    /// Called when a valid CONNECT arrives, before authentication. May rewrite the
    /// CONNECT. An error refuses the connection (raised as `connectionError`).
    pub async fn pre_connect(
        &self,
        client: &Client,
        connect: &mut Connect,
    ) -> Result<(), HookError> {
        let _ = (client, connect);
        Ok(())
    }

    /// Called after `pre_connect`. An error refuses the connection with the
    /// CONNACK code it carries.
    pub async fn authenticate(
        &self,
        client: &Client,
        credential: &Credential,
    ) -> Result<(), AuthError> {
        let _ = (client, credential);
        Ok(())
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
        let _ = client;
        if !self.allow_sys_publish && publish.topic.starts_with("$SYS/") {
            return Err(Denied::new("$SYS/ topic is reserved"));
        }
        Ok(())
    }

    /// Called for every SUBSCRIBE entry and again when a persistent session's
    /// subscriptions are restored. `Ok(None)` negates it (SUBACK 0x80);
    /// `Ok(Some(s))` may rewrite it.
    pub async fn authorize_subscribe(
        &self,
        client: &Client,
        sub: Subscription,
    ) -> Result<Option<Subscription>, Denied> {
        let _ = client;
        Ok(Some(sub))
    }

    /// Called per subscriber before a message is forwarded to it: `None` drops
    /// it for that client, `Some` may be rewritten. Only called when a handler exists.
    pub async fn authorize_forward(&self, client: &Client, publish: Publish) -> Option<Publish> {
        let _ = client;
        Some(publish)
    }

    /// True when an `authorize_forward` handler exists (the engine skips the call otherwise).
    pub fn has_authorize_forward(&self) -> bool {
        false
    }

    /// Awaited in order after a client's PUBLISH was authorized and before the next
    /// packet of that client is handled (backpressure).
    pub async fn published(
        &self,
        client: Option<&Client>,
        publish: &Publish,
    ) -> Result<(), HookError> {
        let _ = (client, publish);
        Ok(())
    }

    /// A shareable empty set of hooks.
    pub fn none() -> Arc<Self> {
        Arc::new(Self::default())
    }
}
