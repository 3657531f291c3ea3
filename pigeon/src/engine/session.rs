//! A session: the state one client id keeps across connections, shared by the
//! connection that owns it and by every publisher delivering to it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use pigeon_codec::{QoS, SubscriptionOptions};
use tokio::{
    sync::{mpsc, Notify},
    time::Instant,
};

use super::{budget::QueuePolicy, stats::DropReason};
use crate::model::{BoxFuture, Delivery};

/// Why the engine asks a connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctrl {
    /// Another connection with the same client id takes the session over.
    TakenOver,
    /// The client took nothing from its full queue for `drain_timeout`.
    TooSlow,
}

/// The owning connection's control channel.
pub(crate) struct Link {
    /// The owning connection's id (unique per broker).
    pub conn_id: u64,
    /// Where to tell it to end.
    pub ctrl: mpsc::UnboundedSender<Ctrl>,
}

/// What happened to a delivery offered to a session.
pub(crate) enum Offer {
    /// Queued for the connection.
    Queued,
    /// Dropped, for this reason (QoS 0 only, or a full offline queue).
    Dropped(DropReason),
    /// Not for this session now (QoS 0 while offline, or a removed session).
    Skipped,
    /// The session is offline: the message goes to persistence (`false`: its
    /// stored queue is full).
    Offline(BoxFuture<'static, bool>),
    /// The queue (or the broker-wide budget) is full: the publisher waits for
    /// room (see [`Session::room`]) and offers again, at `recheck` at the latest.
    Full {
        /// The delivery to offer again.
        delivery: Delivery,
        /// When to offer again even without a wake-up.
        recheck: Instant,
    },
}

/// One client id's session.
pub(crate) struct Session {
    /// The client identifier this session belongs to.
    pub client_id: Arc<str>,
    inner: Mutex<Inner>,
    notify: Notify,
    /// Wakes publishers waiting for room in the queue.
    room: Notify,
    /// Wakes the timers armed at detach (session expiry, will delay) when a
    /// connection attaches, so they end early instead of sleeping on.
    attached: Notify,
    /// Held by the connection owning the session for its whole life, so a
    /// taking-over connection waits until the old one has saved its state.
    pub(crate) owner: Arc<tokio::sync::Mutex<()>>,
    policy: Arc<QueuePolicy>,
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
    /// What the queued copies weigh ([`Message::cost`]).
    bytes: usize,
    /// Bytes reserved from the broker-wide budget: `bytes` and up to two
    /// [`CREDIT`]s ahead.
    reserved: usize,
    /// When the connection last took from the queue.
    last_take: Option<Instant>,
    /// When an offer first found the queue full since the last take.
    full_since: Option<Instant>,
    /// Publishers wait for room.
    waiters: bool,
    /// The connection was told to end for not keeping up.
    kicked: bool,
    subscriptions: HashMap<String, SubscriptionOptions>,
    identifiers: HashMap<String, u32>,
}

/// Budget reserved ahead per session, so the broker-wide counter (shared by
/// every core) is touched once per this many bytes rather than per message.
const CREDIT: usize = 16 * 1024;

impl Session {
    /// A fresh, offline session held to `policy`.
    pub(crate) fn new(client_id: Arc<str>, policy: Arc<QueuePolicy>) -> Self {
        Self {
            client_id,
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            room: Notify::new(),
            attached: Notify::new(),
            owner: Arc::new(tokio::sync::Mutex::new(())),
            policy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent even if a holder panicked (no invariants span
        // an unwind), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Session::offer_journaled`] with no durable store.
    #[cfg(test)]
    pub(crate) fn offer(
        &self,
        delivery: Delivery,
        offline: impl FnOnce(Delivery) -> BoxFuture<'static, bool>,
    ) -> Offer {
        self.offer_journaled(delivery, |_| None, offline)
    }

    /// Offers a delivery. Online: queued while the queue is under its limits
    /// and the broker-wide budget has room; otherwise the publisher is asked to
    /// wait ([`Offer::Full`]), except for QoS 0 to a subscriber that took
    /// nothing for a while (dropped). A subscriber that took nothing from its
    /// full queue for `drain_timeout` is told to go. Offline: QoS 0 is skipped
    /// and QoS 1/2 handed to `offline`, called under the session lock so that a
    /// reconnecting connection sees it in persistence.
    ///
    /// A QoS 1/2 copy queued for a persistent online session is first given
    /// to `journal` (a durable store's record of it, whose key it keeps).
    /// Called under the session's lock, so the record is made before the copy
    /// can be sent, and so before it is acknowledged.
    pub(crate) fn offer_journaled(
        &self,
        mut delivery: Delivery,
        journal: impl FnOnce(&Delivery) -> Option<u64>,
        offline: impl FnOnce(Delivery) -> BoxFuture<'static, bool>,
    ) -> Offer {
        let limits = &self.policy.limits;
        let mut inner = self.lock();
        if inner.link.is_none() {
            if delivery.qos == QoS::AtMostOnce || !inner.persistent || inner.removed {
                return Offer::Skipped;
            }
            return Offer::Offline(offline(delivery));
        }
        let size = delivery.message.cost();
        // A message larger than the byte limit still goes to an empty queue.
        let full = !inner.queue.is_empty()
            && (inner.queue.len() >= limits.messages || inner.bytes + size > limits.bytes);
        if !full && self.reserve(&mut inner, size, false) {
            if inner.persistent && delivery.qos != QoS::AtMostOnce && delivery.stored.is_none() {
                delivery.stored = journal(&delivery);
            }
            inner.bytes += size;
            inner.queue.push_back(delivery);
            drop(inner);
            self.notify.notify_one();
            return Offer::Queued;
        }
        let qos0 = delivery.qos == QoS::AtMostOnce;
        let now = Instant::now();
        if !full {
            // Over the broker-wide budget: QoS 0 goes first, QoS 1/2 wait.
            if qos0 {
                return Offer::Dropped(DropReason::MemoryBudget);
            }
            inner.waiters = true;
            let recheck = now + limits.drain_timeout;
            return Offer::Full { delivery, recheck };
        }
        let since = *inner.full_since.get_or_insert(now);
        let since = inner.last_take.map_or(since, |t| t.max(since));
        let stalled = now.saturating_duration_since(since);
        if stalled >= limits.drain_timeout {
            self.kick_slow(&mut inner);
        }
        if qos0 && stalled >= limits.qos0_patience() {
            return Offer::Dropped(DropReason::SlowSubscriber);
        }
        inner.waiters = true;
        let patience = if qos0 {
            limits.qos0_patience()
        } else {
            limits.drain_timeout
        };
        let recheck = if stalled >= patience {
            // Told to go: the detach wakes the waiters.
            now + patience
        } else {
            since + patience
        };
        Offer::Full { delivery, recheck }
    }

    /// Makes sure `size` more bytes are covered by the session's reservation,
    /// reserving a credit ahead when the budget allows. `force`: reserve
    /// whatever the budget says (messages already accepted).
    fn reserve(&self, inner: &mut Inner, size: usize, force: bool) -> bool {
        let need = (inner.bytes + size).saturating_sub(inner.reserved);
        if need == 0 {
            return true;
        }
        let budget = &self.policy.budget;
        if force {
            budget.force(need + CREDIT);
            inner.reserved += need + CREDIT;
            return true;
        }
        if budget.try_reserve_within(need + CREDIT) {
            inner.reserved += need + CREDIT;
            return true;
        }
        if budget.try_reserve(need) {
            inner.reserved += need;
            return true;
        }
        false
    }

    fn kick_slow(&self, inner: &mut Inner) {
        if inner.kicked {
            return;
        }
        if let Some(link) = &inner.link {
            inner.kicked = true;
            let _ = link.ctrl.send(Ctrl::TooSlow);
        }
    }

    /// Resolves when room may have appeared in the queue (register it before
    /// offering, as with [`Notify::notified`]).
    pub(crate) fn room(&self) -> tokio::sync::futures::Notified<'_> {
        self.room.notified()
    }

    /// Queues deliveries ahead of the queue regardless of limits (restored
    /// messages on reconnect).
    pub(crate) fn push_front_all(&self, deliveries: VecDeque<Delivery>) {
        let mut inner = self.lock();
        let bytes: usize = deliveries.iter().map(|d| d.message.cost()).sum();
        self.reserve(&mut inner, bytes, true);
        inner.bytes += bytes;
        let newer = std::mem::replace(&mut inner.queue, deliveries);
        inner.queue.extend(newer);
        drop(inner);
        self.notify.notify_one();
    }

    /// Appends a delivery regardless of limits (retained messages on subscribe).
    pub(crate) fn push(&self, delivery: Delivery) {
        let mut inner = self.lock();
        let bytes = delivery.message.cost();
        self.reserve(&mut inner, bytes, true);
        inner.bytes += bytes;
        inner.queue.push_back(delivery);
        drop(inner);
        self.notify.notify_one();
    }

    /// Moves up to `max` queued deliveries weighing about `max_bytes` (at least
    /// one) into `out`, taking QoS 1/2 ones only while `slots` (free in-flight
    /// slots) last; stops at the first QoS 1/2 delivery that has no slot, to
    /// keep order.
    pub(crate) fn take_batch(
        &self,
        mut slots: usize,
        max: usize,
        max_bytes: usize,
        out: &mut Vec<Delivery>,
    ) {
        let mut inner = self.lock();
        let mut taken = 0;
        let start = out.len();
        while out.len() < max && (taken < max_bytes || out.len() == start) {
            let Some(front) = inner.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce {
                if slots == 0 {
                    break;
                }
                slots -= 1;
            }
            if let Some(d) = inner.queue.pop_front() {
                taken += d.message.cost();
                out.push(d);
            }
        }
        if out.len() == start {
            return;
        }
        inner.bytes -= taken;
        inner.last_take = Some(Instant::now());
        inner.full_since = None;
        // Waiting publishers are woken once a quarter of the queue is free, not
        // at every take: each then queues a run of messages instead of one, and
        // a full queue costs a wake-up per many messages rather than per message.
        let limits = &self.policy.limits;
        let low = inner.queue.len() <= limits.messages - limits.messages / 4
            && inner.bytes <= limits.bytes - limits.bytes / 4;
        let wake = inner.waiters && low;
        if wake {
            inner.waiters = false;
        }
        let extra = inner.reserved.saturating_sub(inner.bytes + 2 * CREDIT);
        if extra > 0 {
            // Keep one credit ahead; give the rest back.
            let give = extra + CREDIT;
            inner.reserved -= give;
            self.policy.budget.release(give);
        }
        drop(inner);
        if wake {
            self.room.notify_waiters();
        }
    }

    /// Empties the queue, giving its bytes back to the budget and waking the
    /// publishers waiting for room (they offer again and find the session gone).
    fn drain_queue(&self, inner: &mut Inner) -> VecDeque<Delivery> {
        inner.bytes = 0;
        self.policy
            .budget
            .release(std::mem::take(&mut inner.reserved));
        inner.full_since = None;
        inner.waiters = false;
        std::mem::take(&mut inner.queue)
    }

    /// Resolves when a delivery was queued since the last call.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await
    }

    /// Marks the session online, owned by `link`.
    pub(crate) fn attach(&self, link: Link, persistent: bool) {
        let mut inner = self.lock();
        inner.link = Some(link);
        inner.kicked = false;
        inner.last_take = Some(Instant::now());
        inner.epoch += 1;
        inner.persistent = persistent;
        drop(inner);
        self.attached.notify_waiters();
    }

    /// Resolves at the next attach (only for futures created before it).
    pub(crate) fn reattached(&self) -> tokio::sync::futures::Notified<'_> {
        self.attached.notified()
    }

    /// The attach count (see [`Session::attach`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// True when no connection attached since `epoch` was read and none owns it now.
    pub(crate) fn offline_since(&self, epoch: u64) -> bool {
        let inner = self.lock();
        inner.link.is_none() && inner.epoch == epoch && !inner.removed
    }

    /// Marks the session offline if `conn_id` still owns it; returns the queue.
    pub(crate) fn detach(&self, conn_id: u64) -> VecDeque<Delivery> {
        let mut inner = self.lock();
        if inner.link.as_ref().is_some_and(|l| l.conn_id == conn_id) {
            inner.link = None;
        }
        let queue = self.drain_queue(&mut inner);
        drop(inner);
        self.room.notify_waiters();
        queue
    }

    /// Asks the owning connection (if any) to end because of a takeover.
    pub(crate) fn kick(&self) {
        if let Some(link) = &self.lock().link {
            let _ = link.ctrl.send(Ctrl::TakenOver);
        }
    }

    /// True while online with room for another message (a shared
    /// subscription prefers such members).
    pub(crate) fn has_room(&self) -> bool {
        let limits = &self.policy.limits;
        let inner = self.lock();
        inner.link.is_some() && inner.queue.len() < limits.messages && inner.bytes < limits.bytes
    }

    /// True while a connection owns the session.
    pub(crate) fn is_online(&self) -> bool {
        self.lock().link.is_some()
    }

    /// True when the previous connection asked for a persistent session.
    pub(crate) fn is_persistent(&self) -> bool {
        self.lock().persistent
    }

    /// Marks an offline session as persistent (restored from persistence at startup).
    pub(crate) fn mark_persistent(&self) {
        self.lock().persistent = true;
    }

    /// Marks the session as removed from the registry (a waiting connection must
    /// look it up again).
    pub(crate) fn mark_removed(&self) {
        let mut inner = self.lock();
        inner.removed = true;
        self.drain_queue(&mut inner);
        drop(inner);
        self.room.notify_waiters();
    }

    /// True once removed from the registry.
    pub(crate) fn is_removed(&self) -> bool {
        self.lock().removed
    }

    /// Records a granted subscription. True when it is new.
    pub(crate) fn add_subscription(&self, filter: &str, options: SubscriptionOptions) -> bool {
        self.lock()
            .subscriptions
            .insert(filter.to_owned(), options)
            .is_none()
    }

    /// Records (or clears) the MQTT 5.0 identifier of a subscription.
    pub(crate) fn set_subscription_identifier(&self, filter: &str, identifier: Option<u32>) {
        let mut inner = self.lock();
        match identifier {
            Some(id) => inner.identifiers.insert(filter.to_owned(), id),
            None => inner.identifiers.remove(filter),
        };
    }

    /// The MQTT 5.0 identifier of a subscription, if it has one.
    pub(crate) fn subscription_identifier(&self, filter: &str) -> Option<u32> {
        self.lock().identifiers.get(filter).copied()
    }

    /// Forgets a subscription. True when it existed.
    pub(crate) fn remove_subscription(&self, filter: &str) -> bool {
        let mut inner = self.lock();
        inner.identifiers.remove(filter);
        inner.subscriptions.remove(filter).is_some()
    }

    /// Takes every subscription (the session is being cleaned).
    pub(crate) fn take_subscriptions(&self) -> Vec<(String, SubscriptionOptions)> {
        let mut inner = self.lock();
        inner.identifiers.clear();
        inner.subscriptions.drain().collect()
    }

    /// How many subscriptions the session holds.
    pub(crate) fn subscription_count(&self) -> usize {
        self.lock().subscriptions.len()
    }

    /// Whether the session holds a subscription to exactly `filter`.
    pub(crate) fn has_subscription(&self, filter: &str) -> bool {
        self.lock().subscriptions.contains_key(filter)
    }

    /// The session's subscriptions.
    pub(crate) fn subscriptions(&self) -> Vec<(String, SubscriptionOptions)> {
        self.lock()
            .subscriptions
            .iter()
            .map(|(f, o)| (f.clone(), *o))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pigeon_codec::Publish;

    use super::*;
    use crate::model::{Message, QueueLimits};

    const DRAIN: Duration = Duration::from_secs(5);

    fn online(messages: usize) -> (Arc<Session>, mpsc::UnboundedReceiver<Ctrl>) {
        online_with_budget(messages, 1 << 20)
    }

    /// An online session of `messages` places counting against a broker-wide
    /// budget of `budget` bytes.
    fn online_with_budget(
        messages: usize,
        budget: usize,
    ) -> (Arc<Session>, mpsc::UnboundedReceiver<Ctrl>) {
        let limits = QueueLimits {
            messages,
            bytes: 1 << 20,
            drain_timeout: DRAIN,
        };
        let policy = Arc::new(QueuePolicy::new(limits, budget));
        let session = Arc::new(Session::new(Arc::from("s"), policy));
        let (ctrl, rx) = mpsc::unbounded_channel();
        session.attach(Link { conn_id: 1, ctrl }, false);
        (session, rx)
    }

    fn delivery(qos: QoS) -> Delivery {
        Delivery::new(Message::new(Publish::new("t", qos, "x"), None), qos, false)
    }

    fn offer(session: &Session, qos: QoS) -> Offer {
        session.offer(delivery(qos), |_| unreachable!("online"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_makes_publishers_wait_and_a_take_wakes_them() {
        let (session, _ctrl) = online(8);
        for _ in 0..8 {
            assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
        }
        assert!(matches!(
            offer(&session, QoS::AtLeastOnce),
            Offer::Full { .. }
        ));
        assert!(matches!(
            offer(&session, QoS::AtMostOnce),
            Offer::Full { .. }
        ));
        let room = session.room();
        tokio::pin!(room);
        room.as_mut().enable();
        let mut out = Vec::new();
        session.take_batch(10, 1, usize::MAX, &mut out);
        assert!(
            tokio::time::timeout(Duration::from_millis(1), room.as_mut())
                .await
                .is_err(),
            "one free place of eight: the publishers sleep on"
        );
        session.take_batch(10, 2, usize::MAX, &mut out);
        tokio::time::timeout(Duration::from_millis(1), room)
            .await
            .expect("a quarter free wakes the waiting publishers");
        assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
    }

    #[tokio::test(start_paused = true)]
    async fn qos0_is_dropped_for_a_stalled_subscriber_and_it_is_sent_away_at_drain_timeout() {
        let (session, mut ctrl) = online(1);
        assert!(matches!(offer(&session, QoS::AtMostOnce), Offer::Queued));
        assert!(matches!(
            offer(&session, QoS::AtMostOnce),
            Offer::Full { .. }
        ));
        tokio::time::advance(Duration::from_millis(1100)).await;
        assert!(matches!(
            offer(&session, QoS::AtMostOnce),
            Offer::Dropped(DropReason::SlowSubscriber)
        ));
        assert!(matches!(
            offer(&session, QoS::AtLeastOnce),
            Offer::Full { .. }
        ));
        assert!(ctrl.try_recv().is_err(), "not yet: it may still catch up");
        tokio::time::advance(DRAIN).await;
        assert!(matches!(
            offer(&session, QoS::AtLeastOnce),
            Offer::Full { .. }
        ));
        assert_eq!(ctrl.try_recv(), Ok(Ctrl::TooSlow));
        assert!(ctrl.try_recv().is_err(), "told once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_that_keeps_taking_is_never_judged_slow() {
        let (session, mut ctrl) = online(1);
        let mut out = Vec::new();
        for _ in 0..20 {
            assert!(matches!(offer(&session, QoS::AtMostOnce), Offer::Queued));
            assert!(matches!(
                offer(&session, QoS::AtMostOnce),
                Offer::Full { .. }
            ));
            tokio::time::advance(Duration::from_millis(900)).await;
            session.take_batch(10, usize::MAX, usize::MAX, &mut out);
        }
        assert_eq!(out.len(), 20, "every message was taken, none dropped");
        assert!(ctrl.try_recv().is_err());
    }

    #[tokio::test]
    async fn bytes_go_back_to_the_budget_when_taken_or_detached() {
        let (session, _ctrl) = online(10);
        for _ in 0..3 {
            assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
        }
        let cost = delivery(QoS::AtLeastOnce).message.cost();
        let used = session.policy.budget.used();
        assert!((3 * cost..=3 * cost + 2 * CREDIT).contains(&used), "{used}");
        let mut out = Vec::new();
        session.take_batch(1, 10, usize::MAX, &mut out);
        assert_eq!(out.len(), 1, "one in-flight slot");
        assert!(session.policy.budget.used() <= 2 * cost + 2 * CREDIT);
        assert_eq!(session.detach(1).len(), 2);
        assert_eq!(session.policy.budget.used(), 0);
    }

    #[tokio::test]
    async fn a_nearly_spent_budget_is_used_to_the_byte_then_refuses() {
        let cost = delivery(QoS::AtLeastOnce).message.cost();
        // Room for two copies and no credit ahead.
        let (session, _ctrl) = online_with_budget(100, 2 * cost);
        assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
        assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
        assert!(matches!(
            offer(&session, QoS::AtLeastOnce),
            Offer::Full { .. }
        ));
        assert!(matches!(
            offer(&session, QoS::AtMostOnce),
            Offer::Dropped(DropReason::MemoryBudget)
        ));
        assert_eq!(session.policy.budget.used(), 2 * cost);
    }

    #[tokio::test]
    async fn the_write_buffer_takes_no_more_than_its_room() {
        let (session, _ctrl) = online(10);
        for _ in 0..5 {
            assert!(matches!(offer(&session, QoS::AtMostOnce), Offer::Queued));
        }
        let cost = delivery(QoS::AtMostOnce).message.cost();
        let mut out = Vec::new();
        session.take_batch(0, 64, 2 * cost, &mut out);
        assert_eq!(out.len(), 2);
        out.clear();
        session.take_batch(0, 64, 1, &mut out);
        assert_eq!(out.len(), 1, "at least one, however little room");
    }
}
