//! [`BrokerHandle::subscribe`]: the application's own subscriptions.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::Stream;
use pigeon_codec::QoS;

use super::{BrokerHandle, SubscribeError};
use crate::{
    engine::{LocalSubscription, Subscriber},
    model::Delivery,
};

/// The copies an in-process subscription receives, in order (see
/// [`BrokerHandle::subscribe`]). Dropping it unsubscribes.
pub struct Deliveries {
    subscriber: Subscriber,
}

impl Stream for Deliveries {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.subscriber.poll_next(cx)
    }
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries").finish_non_exhaustive()
    }
}

impl BrokerHandle {
    /// Subscribes the application itself to `filter` (a plain filter or
    /// `$share/<group>/<filter>`), as a client session would at QoS 1: the
    /// retained messages that match come first, then every message
    /// published to a matching topic, in order. The stream is bounded by
    /// the session queue limits (`max_queued_messages`, `max_queued_bytes`):
    /// while it is full, QoS 1/2 publishers wait (their PUBACK with them)
    /// and no acknowledged message is dropped; QoS 0 copies are dropped only
    /// once it took nothing for a while, as for a slow client. A stream that
    /// takes nothing from its full queue for `drain_timeout` ends (a client
    /// would be disconnected), as it does when the broker closes. Dropping
    /// the stream unsubscribes. Neither the ACL nor the authorize-subscribe
    /// handlers are asked: this is the broker's own subscription.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn run(broker: pigeon::BrokerHandle) -> Result<(), pigeon::broker::SubscribeError> {
    /// let mut temps = broker.subscribe("sensors/+/temp").await?;
    /// while let Some(delivery) = temps.next().await {
    ///     println!("{}: {:?}", delivery.message.publish.topic, delivery.message.publish.payload);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, filter: &str) -> Result<Deliveries, SubscribeError> {
        if !pigeon_codec::topic::valid_topic_filter(filter) {
            return Err(SubscribeError::InvalidFilter(filter.to_owned()));
        }
        if self.engine.is_shutting_down() {
            return Err(SubscribeError::Closed);
        }
        let sub = LocalSubscription {
            filter,
            qos: QoS::AtLeastOnce,
            retained: true,
            end_when_slow: true,
        };
        let subscriber = self.engine.subscribe_local(sub).await;
        Ok(Deliveries { subscriber })
    }
}
