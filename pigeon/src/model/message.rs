//! What travels through the broker: a published message shared by every
//! subscriber it reaches, and one subscriber's copy of it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use pigeon_codec::{Publish, QoS};

/// A published message. It is wrapped in an `Arc` once and shared by every
/// session it is delivered to: fan-out never copies topic or payload.
#[derive(Debug)]
pub struct Message {
    /// The PUBLISH as accepted (its `qos` is the publisher's; `packet_id`, `dup`
    /// and the topic alias are cleared).
    pub publish: Publish,
    /// Client id of the publisher; `None` for the broker's own messages.
    pub origin: Option<Arc<str>>,
    /// When the broker accepted it, for MQTT 5.0 message expiry: set when it
    /// has a Message Expiry Interval, and only then (reading the clock for
    /// every message was 2% of a QoS 1 message's CPU time in the benchmark).
    pub received_at: Option<Instant>,
    /// Set once a subscription matched (MQTT 5.0 PUBACK 0x10 No matching subscribers).
    matched: AtomicBool,
    /// Set when every matching session's queue was full, or the store could
    /// not keep it (PUBACK 0x97 Quota exceeded).
    unqueued: AtomicBool,
    /// Set when a durable store was given a copy (or the retained message): the
    /// publisher's acknowledgement waits for the store's commit.
    stored: AtomicBool,
}

impl Message {
    /// Wraps an accepted PUBLISH, clearing the per-hop fields.
    ///
    /// ```
    /// use pigeon::codec::{Publish, QoS};
    /// use pigeon::model::Message;
    ///
    /// let message = Message::new(Publish::new("a/b", QoS::AtLeastOnce, "hi"), None);
    /// assert!(message.received_at.is_none()); // no expiry interval: no clock read
    /// ```
    pub fn new(publish: Publish, origin: Option<Arc<str>>) -> Arc<Self> {
        Self::received(publish, origin, None)
    }

    /// As [`Message::new`], keeping the time the original was received (a
    /// message rewritten on its way keeps its expiry clock). A message with
    /// an expiry interval and no such time is stamped now.
    pub fn received(
        mut publish: Publish,
        origin: Option<Arc<str>>,
        received_at: Option<Instant>,
    ) -> Arc<Self> {
        let expires = publish.properties.message_expiry_interval.is_some();
        let received_at = received_at.or_else(|| expires.then(Instant::now));
        publish.packet_id = 0;
        publish.dup = false;
        if let Some(properties) = publish.properties.get_mut() {
            properties.topic_alias = None;
        }
        // A message whose only property was its alias is sent as one without.
        publish.properties.shrink();
        Arc::new(Self {
            publish,
            origin,
            received_at,
            matched: AtomicBool::new(false),
            unqueued: AtomicBool::new(false),
            stored: AtomicBool::new(false),
        })
    }

    /// Records that a subscription matched.
    pub fn mark_matched(&self) {
        if !self.matched.load(Relaxed) {
            self.matched.store(true, Relaxed);
        }
    }

    /// True once a subscription matched (on this node).
    pub fn was_matched(&self) -> bool {
        self.matched.load(Relaxed)
    }

    /// Records that no matching session could queue the message (all full).
    pub fn mark_unqueued(&self) {
        self.unqueued.store(true, Relaxed);
    }

    /// True when subscriptions matched but every one's queue was full.
    pub fn was_unqueued(&self) -> bool {
        self.unqueued.load(Relaxed)
    }

    /// Records that a durable store was given a copy (see [`Message::was_stored`]).
    pub fn mark_stored(&self) {
        if !self.stored.load(Relaxed) {
            self.stored.store(true, Relaxed);
        }
    }

    /// True once a durable store holds (or is committing) a copy: the
    /// publisher may be acknowledged only after that commit.
    pub fn was_stored(&self) -> bool {
        self.stored.load(Relaxed)
    }

    /// What one queued copy of it is counted as against the queue limits: its
    /// topic and payload plus a fixed overhead for the bookkeeping.
    pub fn cost(&self) -> usize {
        const OVERHEAD: usize = 64;
        self.publish.topic.len() + self.publish.payload.len() + OVERHEAD
    }

    /// True once its MQTT 5.0 Message Expiry Interval has passed in the broker.
    pub fn is_expired(&self) -> bool {
        self.publish
            .properties
            .message_expiry_interval
            .zip(self.received_at)
            .is_some_and(|(secs, at)| at.elapsed() >= Duration::from_secs(secs.into()))
    }

    /// The expiry interval to forward: the original minus the whole seconds
    /// spent in the broker (at least 1 while not expired).
    pub fn remaining_expiry(&self) -> Option<u32> {
        let secs = self.publish.properties.message_expiry_interval?;
        let spent = self.received_at.map_or(0, |at| at.elapsed().as_secs());
        let spent = u32::try_from(spent).unwrap_or(u32::MAX);
        Some(secs.saturating_sub(spent).max(1))
    }
}

/// One subscriber's copy of a message: the shared message plus how it goes to
/// that subscriber.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// The lower of the message's QoS and the subscription's granted QoS.
    pub qos: QoS,
    /// The RETAIN flag to send (set for retained messages sent on subscribe).
    pub retain: bool,
    /// MQTT 5.0 identifiers of the subscriptions this copy is for. A boxed
    /// slice, two words, not a `Vec`'s three: a delivery is then 64 bytes,
    /// one cache line, in the session queue it is handed over through from
    /// the publisher's core to the subscriber's.
    pub identifiers: Box<[u32]>,
    /// `$share/<group>/<filter>` when delivered for a shared subscription (its
    /// unacknowledged copy goes to another member if this one leaves).
    pub share: Option<Arc<str>>,
    /// Its key in a durable store, once the store keeps it for a persistent
    /// session (acknowledging it removes that record).
    pub stored: Option<u64>,
}

impl Delivery {
    /// A copy for a subscriber with no subscription identifier.
    pub fn new(message: Arc<Message>, qos: QoS, retain: bool) -> Self {
        Self {
            message,
            qos,
            retain,
            identifiers: Box::default(),
            share: None,
            stored: None,
        }
    }

    /// The PUBLISH to write for this delivery (reference-count bumps only, plus
    /// the subscription identifiers when there are some).
    pub fn to_publish(&self, packet_id: u16, dup: bool) -> Publish {
        let p = &self.message.publish;
        let mut properties = p.properties.clone();
        // Only the copy's identifiers are sent (and nothing is allocated when
        // there are none to send or to clear).
        if !self.identifiers.is_empty() || !properties.subscription_identifiers.is_empty() {
            let sent = &mut properties.make_mut().subscription_identifiers;
            sent.clear();
            sent.extend_from_slice(&self.identifiers);
        }
        if let Some(properties) = properties.get_mut() {
            if properties.message_expiry_interval.is_some() {
                properties.message_expiry_interval = self.message.remaining_expiry();
            }
        }
        Publish {
            dup,
            qos: self.qos,
            retain: self.retain,
            topic: p.topic.clone(),
            packet_id,
            payload: p.payload.clone(),
            properties,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every copy of a message goes through a session queue from the
    /// publisher's core to the subscriber's, and waits in the in-flight
    /// window for its ack: one cache line each, not two (fan-out QoS 1
    /// delivered 2.6% more at 64 bytes than at 72).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_delivery_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Delivery>(), 64);
    }
}
