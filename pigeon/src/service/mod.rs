//! [`PigeonService`]: what handlers inject to act on the broker they run in.

use std::sync::{Arc, OnceLock};

use pigeon_codec::Publish;
use tokio::sync::Notify;

use crate::broker::{BrokerHandle, PublishError, Stats};

/// A cheap, clonable handle on the module's broker, injectable into providers.
///
/// Providers are created before the broker starts, so the handle is filled in
/// when it does; `publish` and `close` wait for that, `broker()` reports it.
///
/// ```
/// let service = pigeon::PigeonService::detached();
/// assert!(service.broker().is_err());
/// ```
#[derive(Clone, Default)]
pub struct PigeonService {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    handle: OnceLock<BrokerHandle>,
    started: Notify,
}

/// The broker of a [`PigeonService`] has not started (yet).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the broker is not started")]
pub struct NotStarted;

impl PigeonService {
    /// A service not yet attached to a broker.
    pub fn detached() -> Self {
        Self::default()
    }

    /// Attaches the running broker (done by bootstrap).
    pub fn attach(&self, handle: BrokerHandle) {
        if self.inner.handle.set(handle).is_ok() {
            self.inner.started.notify_waiters();
        }
    }

    async fn handle(&self) -> &BrokerHandle {
        loop {
            let notified = self.inner.started.notified();
            if let Some(h) = self.inner.handle.get() {
                return h;
            }
            notified.await;
        }
    }

    /// Delivers `publish` to the matching subscribers on behalf of the broker
    /// (bypasses authorize-publish) and resolves once it was handed to them.
    ///
    /// ```no_run
    /// # async fn f(pigeon: pigeon::PigeonService) -> Result<(), pigeon::broker::PublishError> {
    /// use pigeon::codec::{Publish, QoS};
    /// pigeon.publish(Publish::new("test2", QoS::AtMostOnce, "pong")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, publish: Publish) -> Result<(), PublishError> {
        self.handle().await.publish(publish).await
    }

    /// Disconnects every client, stops the broker and fires `closed`.
    pub async fn close(&self) {
        self.handle().await.close().await
    }

    /// The running broker: its clients, subscriptions and counters.
    pub fn broker(&self) -> Result<&BrokerHandle, NotStarted> {
        self.inner.handle.get().ok_or(NotStarted)
    }

    /// Shorthand for `broker()?.stats()`.
    pub fn stats(&self) -> Result<Stats, NotStarted> {
        Ok(self.broker()?.stats())
    }
}
