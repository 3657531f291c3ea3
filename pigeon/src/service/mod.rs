//! [`PigeonService`]: what handlers inject to act on the broker they run in.

use std::{
    ops::Deref,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use futures_util::Stream;
use pigeon_codec::Publish;
use tokio::sync::Notify;

use crate::broker::{BrokerHandle, Deliveries, PublishError, Stats, SubscribeError};

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

    /// Subscribes the application to `filter` (`+`, `#` and
    /// `$share/<group>/...` work as for a client) and returns its messages
    /// as a stream, in the order they were published; waits for the broker
    /// to start. Dropping the stream unsubscribes.
    ///
    /// It keeps a client session's QoS 1 promise: the stream is bounded
    /// (`max_queued_messages`, `max_queued_bytes`), and while it is full a
    /// QoS 1/2 publisher waits for room — its PUBACK with it — so an
    /// acknowledged message is never dropped and a slow consumer slows the
    /// publishers instead of growing a queue. QoS 0 copies are dropped once
    /// the consumer took nothing for a while, and a stream that takes nothing
    /// from its full queue for `drain_timeout` ends, as a client that slow
    /// would be disconnected. The retained messages that match come first.
    /// Neither the ACL nor authorize-subscribe handlers are asked.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn f(pigeon: pigeon::PigeonService) -> Result<(), pigeon::broker::SubscribeError> {
    /// let mut alerts = pigeon.subscribe("alerts/#").await?;
    /// while let Some(message) = alerts.next().await {
    ///     println!("{} from {:?}: {:?}", message.topic, message.publisher, message.payload);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, filter: &str) -> Result<MessageStream, SubscribeError> {
        let deliveries = self.handle().await.subscribe(filter).await?;
        Ok(MessageStream { deliveries })
    }

    /// Shorthand for `broker()?.stats()`.
    pub fn stats(&self) -> Result<Stats, NotStarted> {
        Ok(self.broker()?.stats())
    }
}

/// A message received by [`PigeonService::subscribe`]: the PUBLISH as a
/// subscriber gets it (its `qos` the lower of the publisher's and QoS 1, its
/// `retain` set for a retained message sent on subscribe, MQTT 5.0
/// properties kept) and who published it. Derefs to [`Publish`].
#[derive(Debug, Clone)]
pub struct Message {
    /// The message.
    pub publish: Publish,
    /// The publisher's client id; `None` for the broker's own messages.
    pub publisher: Option<String>,
}

impl Deref for Message {
    type Target = Publish;
    fn deref(&self) -> &Publish {
        &self.publish
    }
}

/// The messages of [`PigeonService::subscribe`], in order; dropping it unsubscribes.
#[derive(Debug)]
pub struct MessageStream {
    deliveries: Deliveries,
}

impl Stream for MessageStream {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.deliveries).poll_next(cx).map(|d| {
            d.map(|d| Message {
                publish: d.to_publish(0, false),
                publisher: d.message.origin.as_deref().map(str::to_owned),
            })
        })
    }
}
