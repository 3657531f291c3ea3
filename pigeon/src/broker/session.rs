//! A session: the state one client id keeps across connections, shared by the
//! connection that owns it and by every publisher delivering to it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use pigeon_codec::{QoS, SubscriptionOptions};
use tokio::sync::{mpsc, Notify};

use super::Delivery;
use crate::emitter::BoxFuture;

/// Why the engine asks a connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctrl {
    /// Another connection with the same client id takes the session over.
    TakenOver,
}

/// The owning connection's control channel.
pub struct Link {
    /// The owning connection's id (unique per broker).
    pub conn_id: u64,
    /// Where to tell it to end.
    pub ctrl: mpsc::UnboundedSender<Ctrl>,
}

/// What happened to a delivery offered to a session.
pub enum Offer<'a> {
    /// Queued for the connection.
    Queued,
    /// Dropped: the queue is full.
    Dropped,
    /// Not for this session now (QoS 0 while offline, or a removed session).
    Skipped,
    /// The session is offline: the message goes to persistence.
    Offline(BoxFuture<'a, bool>),
}

/// One client id's session.
pub struct Session {
    /// The client identifier this session belongs to.
    pub client_id: Arc<str>,
    inner: Mutex<Inner>,
    notify: Notify,
    /// Wakes the timers armed at detach (session expiry, will delay) when a
    /// connection attaches, so they end early instead of sleeping on.
    attached: Notify,
    /// Held by the connection owning the session for its whole life, so a
    /// taking-over connection waits until the old one has saved its state.
    pub(crate) owner: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Inner {
    link: Option<Link>,
    /// Bumped on every attach: a timer armed at detach (session expiry, will
    /// delay) knows from it whether the client came back meanwhile.
    epoch: u64,
    persistent: bool,
    removed: bool,
    queue: VecDeque<Delivery>,
    qos0_queued: usize,
    dropped: u64,
    subscriptions: HashMap<String, SubscriptionOptions>,
    identifiers: HashMap<String, u32>,
}

impl Session {
    /// A fresh, offline session.
    pub fn new(client_id: Arc<str>) -> Self {
        Self {
            client_id,
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            attached: Notify::new(),
            owner: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent even if a holder panicked (no invariants span
        // an unwind), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a delivery. Online: queued (QoS 0 beyond `limit` queued QoS 0
    /// messages is dropped; QoS 1/2 beyond `limit` too). Offline: QoS 0 is
    /// dropped and QoS 1/2 handed to `offline`, called under the session lock so
    /// that a reconnecting connection sees it in persistence.
    pub fn offer<'p>(
        &self,
        delivery: Delivery,
        limit: usize,
        offline: impl FnOnce(Delivery) -> BoxFuture<'p, bool>,
    ) -> Offer<'p> {
        let mut inner = self.lock();
        if inner.link.is_none() {
            if delivery.qos == QoS::AtMostOnce || !inner.persistent || inner.removed {
                return Offer::Skipped;
            }
            return Offer::Offline(offline(delivery));
        }
        let qos0 = delivery.qos == QoS::AtMostOnce;
        let queued = if qos0 {
            inner.qos0_queued
        } else {
            inner.queue.len() - inner.qos0_queued
        };
        if queued >= limit {
            inner.dropped += 1;
            let dropped = inner.dropped;
            drop(inner);
            // Rate-limited: the first drop and every 1000th after it.
            if dropped % 1000 == 1 {
                tracing::debug!(client_id = %self.client_id, dropped, "session queue full, message dropped");
            }
            return Offer::Dropped;
        }
        if qos0 {
            inner.qos0_queued += 1;
        }
        inner.queue.push_back(delivery);
        drop(inner);
        self.notify.notify_one();
        Offer::Queued
    }

    /// Queues a delivery for the owning connection regardless of limits (retained
    /// messages on subscribe, restored messages on reconnect).
    pub fn push_front_all(&self, deliveries: VecDeque<Delivery>) {
        let mut inner = self.lock();
        let qos0 = deliveries
            .iter()
            .filter(|d| d.qos == QoS::AtMostOnce)
            .count();
        inner.qos0_queued += qos0;
        let newer = std::mem::replace(&mut inner.queue, deliveries);
        inner.queue.extend(newer);
        drop(inner);
        self.notify.notify_one();
    }

    /// Appends a delivery regardless of limits (retained messages on subscribe).
    pub fn push(&self, delivery: Delivery) {
        let mut inner = self.lock();
        if delivery.qos == QoS::AtMostOnce {
            inner.qos0_queued += 1;
        }
        inner.queue.push_back(delivery);
        drop(inner);
        self.notify.notify_one();
    }

    /// Moves up to `max` queued deliveries into `out`, taking QoS 1/2 ones only
    /// while `slots` (free in-flight slots) last; stops at the first QoS 1/2
    /// delivery that has no slot, to keep order.
    pub fn take_batch(&self, mut slots: usize, max: usize, out: &mut Vec<Delivery>) {
        let mut inner = self.lock();
        while out.len() < max {
            let Some(front) = inner.queue.front() else {
                break;
            };
            if front.qos == QoS::AtMostOnce {
                inner.qos0_queued -= 1;
            } else if slots == 0 {
                break;
            } else {
                slots -= 1;
            }
            if let Some(d) = inner.queue.pop_front() {
                out.push(d);
            }
        }
    }

    /// Resolves when a delivery was queued since the last call.
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Marks the session online, owned by `link`.
    pub fn attach(&self, link: Link, persistent: bool) {
        let mut inner = self.lock();
        inner.link = Some(link);
        inner.epoch += 1;
        inner.persistent = persistent;
        drop(inner);
        self.attached.notify_waiters();
    }

    /// Resolves at the next attach (only for futures created before it).
    pub fn reattached(&self) -> tokio::sync::futures::Notified<'_> {
        self.attached.notified()
    }

    /// The attach count (see [`Session::attach`]).
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// True when no connection attached since `epoch` was read and none owns it now.
    pub fn offline_since(&self, epoch: u64) -> bool {
        let inner = self.lock();
        inner.link.is_none() && inner.epoch == epoch && !inner.removed
    }

    /// Marks the session offline if `conn_id` still owns it; returns the queue.
    pub fn detach(&self, conn_id: u64) -> VecDeque<Delivery> {
        let mut inner = self.lock();
        if inner.link.as_ref().is_some_and(|l| l.conn_id == conn_id) {
            inner.link = None;
        }
        inner.qos0_queued = 0;
        std::mem::take(&mut inner.queue)
    }

    /// Asks the owning connection (if any) to end because of a takeover.
    pub fn kick(&self) {
        if let Some(link) = &self.lock().link {
            let _ = link.ctrl.send(Ctrl::TakenOver);
        }
    }

    /// True while online with room for another QoS 1/2 message (a shared
    /// subscription prefers such members).
    pub fn has_room(&self, limit: usize) -> bool {
        let inner = self.lock();
        inner.link.is_some() && inner.queue.len() - inner.qos0_queued < limit
    }

    /// True while a connection owns the session.
    pub fn is_online(&self) -> bool {
        self.lock().link.is_some()
    }

    /// True when the previous connection asked for a persistent session.
    pub fn is_persistent(&self) -> bool {
        self.lock().persistent
    }

    /// Marks an offline session as persistent (restored from persistence at startup).
    pub fn mark_persistent(&self) {
        self.lock().persistent = true;
    }

    /// Marks the session as removed from the registry (a waiting connection must
    /// look it up again).
    pub fn mark_removed(&self) {
        let mut inner = self.lock();
        inner.removed = true;
        inner.queue.clear();
        inner.qos0_queued = 0;
    }

    /// True once removed from the registry.
    pub fn is_removed(&self) -> bool {
        self.lock().removed
    }

    /// Records a granted subscription. True when it is new.
    pub fn add_subscription(&self, filter: &str, options: SubscriptionOptions) -> bool {
        self.lock()
            .subscriptions
            .insert(filter.to_owned(), options)
            .is_none()
    }

    /// Records (or clears) the MQTT 5.0 identifier of a subscription.
    pub fn set_subscription_identifier(&self, filter: &str, identifier: Option<u32>) {
        let mut inner = self.lock();
        match identifier {
            Some(id) => inner.identifiers.insert(filter.to_owned(), id),
            None => inner.identifiers.remove(filter),
        };
    }

    /// The MQTT 5.0 identifier of a subscription, if it has one.
    pub fn subscription_identifier(&self, filter: &str) -> Option<u32> {
        self.lock().identifiers.get(filter).copied()
    }

    /// Forgets a subscription. True when it existed.
    pub fn remove_subscription(&self, filter: &str) -> bool {
        let mut inner = self.lock();
        inner.identifiers.remove(filter);
        inner.subscriptions.remove(filter).is_some()
    }

    /// Takes every subscription (the session is being cleaned).
    pub fn take_subscriptions(&self) -> Vec<(String, SubscriptionOptions)> {
        let mut inner = self.lock();
        inner.identifiers.clear();
        inner.subscriptions.drain().collect()
    }

    /// The session's subscriptions.
    pub fn subscriptions(&self) -> Vec<(String, SubscriptionOptions)> {
        self.lock()
            .subscriptions
            .iter()
            .map(|(f, o)| (f.clone(), *o))
            .collect()
    }
}
