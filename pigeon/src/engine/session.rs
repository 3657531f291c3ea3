//! A session: the state one client id keeps across connections, shared by the
//! connection that owns it and by every publisher delivering to it.

use std::{
    collections::{BTreeMap, VecDeque},
    num::NonZeroU64,
    sync::atomic::{AtomicBool, Ordering},
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use futures_util::task::AtomicWaker;
use pigeon_codec::{QoS, SubscriptionOptions};
use tokio::{
    sync::{futures::OwnedNotified, Notify},
    time::Instant,
};

use super::{
    budget::{QueuePolicy, Stamp},
    stats::DropReason,
};
use crate::model::{BoxFuture, Delivery};

/// Why the engine asks a connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctrl {
    /// Another connection with the same client id takes the session over.
    TakenOver,
    /// The client took nothing from its full queue for `drain_timeout`.
    TooSlow,
    /// An operator disconnected it (the admin API).
    Kicked,
}

/// The owning connection.
pub(crate) struct Link {
    /// The owning connection's id (unique per broker; never 0, so that an
    /// `Option<Link>` needs no tag of its own).
    conn_id: NonZeroU64,
    /// The client as the hooks see it (for the admin API's client details).
    pub client: Option<crate::hooks::Client>,
    /// The keep alive granted, in seconds.
    pub keep_alive: u16,
    /// When it connected, in seconds since the Unix epoch (a `u32` lasts
    /// until 2106).
    connected_at: u32,
}

impl Link {
    /// The link of connection `conn_id` (from [`super::Engine::next_conn_id`],
    /// which counts from 1), connected at `connected_at` (Unix seconds).
    pub(crate) fn new(
        conn_id: u64,
        client: Option<crate::hooks::Client>,
        keep_alive: u16,
        connected_at: u64,
    ) -> Self {
        debug_assert_ne!(conn_id, 0, "connection ids count from 1");
        Self {
            conn_id: NonZeroU64::new(conn_id).unwrap_or(NonZeroU64::MAX),
            client,
            keep_alive,
            connected_at: u32::try_from(connected_at).unwrap_or(u32::MAX),
        }
    }

    /// A link with nothing known but the connection id (tests).
    #[cfg(test)]
    pub(crate) fn bare(conn_id: u64) -> Self {
        Self::new(conn_id, None, 0, 0)
    }

    /// The owning connection's id.
    pub(crate) fn conn_id(&self) -> u64 {
        self.conn_id.get()
    }
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
    /// room and offers again, at `recheck` at the latest.
    Full {
        /// The delivery to offer again.
        delivery: Delivery,
        /// When to offer again even without a wake-up.
        recheck: Instant,
        /// Resolves when room may have appeared in the queue. Made under the
        /// lock that found the queue full, so no wake-up falls between.
        room: OwnedNotified,
    },
}

/// One client id's session.
pub(crate) struct Session {
    /// The client identifier this session belongs to.
    pub client_id: Arc<str>,
    inner: Mutex<Inner>,
    /// Wakes the owning connection: deliveries were queued, or it was told
    /// to go. A flag and a waker, not a channel or a `Notify`: waking costs no
    /// lock, and an idle connection holds no allocation for it.
    woken: AtomicBool,
    waker: AtomicWaker,
    /// Set once the connection was told to go ([`Session::told`]).
    telling: AtomicBool,
    /// Messages the owning connection has in flight (written, not yet
    /// acknowledged), as it last said: for the admin API.
    inflight: std::sync::atomic::AtomicU32,
    /// The lock held by the connection owning the session for its whole
    /// life ([`Owner`]), so a taking-over connection waits until the old one
    /// has saved its state. A flag, with waiters parked on `Inner::signal`:
    /// not a semaphore (40 bytes in every session) nor an `Arc<Mutex<()>>`
    /// (an allocation per client).
    owned: AtomicBool,
    policy: Arc<QueuePolicy>,
}

/// The session's owner lock, held ([`Session::lock_owner`]); released when
/// dropped, waking every waiter to try for it again (no queue: a takeover
/// is rare, and its waiter gives up and retries on its own schedule anyway).
pub(crate) struct Owner(Arc<Session>);

impl Drop for Owner {
    fn drop(&mut self) {
        // Released before the signal is taken: a waiter that registers after
        // the take tries again after registering and finds it free.
        self.0.owned.store(false, Ordering::SeqCst);
        self.0.signal();
    }
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
    last_take: Option<Stamp>,
    /// When an offer first found the queue full since the last take.
    full_since: Option<Stamp>,
    /// Publishers wait for room.
    waiters: bool,
    /// Wakes publishers waiting for room and connections waiting for the
    /// owner lock. Made by the first waiter and taken by the wake-up: a
    /// session nobody waits on holds none (two inline `Notify`-like fields
    /// cost every session 72 bytes). Waking both kinds at either event is
    /// harmless: each waiter checks again what it waits for.
    signal: Option<Arc<Notify>>,
    /// What the owning connection was told (takeover, too slow), once.
    told: Option<Ctrl>,
    /// Wakes the timers armed at detach (session expiry, will delay) when a
    /// connection attaches, so they end early instead of sleeping on. Made
    /// by the first timer and dropped at the attach that wakes it: an online
    /// session holds none.
    attached: Option<Arc<Notify>>,
    /// An in-process subscriber that ends when too slow: no connection task
    /// would wake to let go of the session, so being told detaches it at once.
    unattended: bool,
    /// Each filter's options and MQTT 5.0 subscription identifier (one map,
    /// not two; a B-tree, not a hash map: an empty one costs every session
    /// three words instead of six, and a client's few filters are as quickly
    /// found by comparison as by hashing).
    subscriptions: BTreeMap<String, (SubscriptionOptions, Option<u32>)>,
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
            woken: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            telling: AtomicBool::new(false),
            inflight: std::sync::atomic::AtomicU32::new(0),
            owned: AtomicBool::new(false),
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
            self.wake_queued();
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
            let room = Self::waiter(&mut inner);
            return Offer::Full {
                delivery,
                recheck,
                room,
            };
        }
        let since = *inner
            .full_since
            .get_or_insert_with(|| self.policy.stamp(now));
        let since = self
            .policy
            .instant(inner.last_take.map_or(since, |t| t.max(since)));
        let stalled = now.saturating_duration_since(since);
        if stalled >= limits.drain_timeout {
            self.kick_slow(&mut inner);
            if inner.link.is_none() {
                return Offer::Skipped;
            }
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
        let room = Self::waiter(&mut inner);
        Offer::Full {
            delivery,
            recheck,
            room,
        }
    }

    /// A future woken by the next [`Session::signal`].
    fn waiter(inner: &mut Inner) -> OwnedNotified {
        let signal = inner.signal.get_or_insert_with(Default::default);
        signal.clone().notified_owned()
    }

    /// Wakes everyone waiting for room or for the owner lock.
    fn signal(&self) {
        let signal = self.lock().signal.take();
        if let Some(signal) = signal {
            signal.notify_waiters();
        }
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
        // Told once: anything told already ends the connection.
        if inner.link.is_some() && inner.told.is_none() {
            self.tell(inner, Ctrl::TooSlow);
            if inner.unattended {
                inner.link = None;
                self.drain_queue(inner);
                if let Some(signal) = inner.signal.take() {
                    signal.notify_waiters();
                }
            }
        }
    }

    /// Marks an in-process subscriber's session: told it is too slow, it goes
    /// offline at once (see `Inner::unattended`).
    pub(crate) fn mark_unattended(&self) {
        self.lock().unattended = true;
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
        self.wake_queued();
    }

    /// Appends a delivery regardless of limits (retained messages on subscribe).
    pub(crate) fn push(&self, delivery: Delivery) {
        let mut inner = self.lock();
        let bytes = delivery.message.cost();
        self.reserve(&mut inner, bytes, true);
        inner.bytes += bytes;
        inner.queue.push_back(delivery);
        drop(inner);
        self.wake_queued();
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
        // Reserved here, not kept by the idle connection between batches.
        out.reserve(inner.queue.len().min(max));
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
        inner.last_take = Some(self.policy.stamp(Instant::now()));
        inner.full_since = None;
        // Waiting publishers are woken once a quarter of the queue is free, not
        // at every take: each then queues a run of messages instead of one, and
        // a full queue costs a wake-up per many messages rather than per message.
        let limits = &self.policy.limits;
        let low = inner.queue.len() <= limits.messages - limits.messages / 4
            && inner.bytes <= limits.bytes - limits.bytes / 4;
        let wake = if inner.waiters && low {
            inner.waiters = false;
            inner.signal.take()
        } else {
            None
        };
        let extra = inner.reserved.saturating_sub(inner.bytes + 2 * CREDIT);
        if extra > 0 {
            // Keep one credit ahead; give the rest back.
            let give = extra + CREDIT;
            inner.reserved -= give;
            self.policy.budget.release(give);
        }
        drop(inner);
        if let Some(signal) = wake {
            signal.notify_waiters();
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

    /// Wakes the owning connection after a delivery was queued under the
    /// session's lock. Most offers in a burst find the connection already
    /// woken and not yet running: a plain load then, instead of an atomic
    /// swap on a line the connection's core keeps taking back (that swap was
    /// most of an offer's cost in a fan-out profile). A `true` read here is
    /// one the connection has not consumed yet: its consuming swap would be
    /// ordered before this load by the lock, and this load would see it.
    fn wake_queued(&self) {
        if !self.woken.load(Ordering::Acquire) {
            self.wake();
        }
    }

    /// Wakes the owning connection (see [`Session::poll_woken`]).
    pub(crate) fn wake(&self) {
        // Only the first wake-up since the last poll needs the waker.
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Ready once a delivery was queued, or the connection was told something,
    /// since the last `Ready`.
    pub(crate) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake-up between the check and the registration found no waker.
        if self.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Wakes `waker` from now on instead of the one the last poll left
    /// (a connection parking: see `connection/park.rs`); whether a wake-up
    /// came that no poll has consumed yet.
    pub(crate) fn watch_with(&self, waker: &std::task::Waker) -> bool {
        self.waker.register(waker);
        self.woken.load(Ordering::Acquire)
    }

    /// Tells the owning connection to go, and wakes it.
    fn tell(&self, inner: &mut Inner, ctrl: Ctrl) {
        inner.told = Some(ctrl);
        self.telling.store(true, Ordering::Release);
        self.wake();
    }

    /// What connection `conn_id` was told, if anything: a connection that no
    /// longer owns the session was taken over. Cheap when nothing was told.
    pub(crate) fn told(&self, conn_id: u64) -> Option<Ctrl> {
        if !self.telling.load(Ordering::Acquire) {
            return None;
        }
        let inner = self.lock();
        match &inner.link {
            Some(link) if link.conn_id() == conn_id => inner.told,
            _ => Some(Ctrl::TakenOver),
        }
    }

    /// Marks the session online, owned by `link`.
    pub(crate) fn attach(&self, link: Link, persistent: bool) {
        let mut inner = self.lock();
        inner.link = Some(link);
        inner.told = None;
        self.telling.store(false, Ordering::Release);
        inner.last_take = Some(self.policy.stamp(Instant::now()));
        inner.epoch += 1;
        inner.persistent = persistent;
        let attached = inner.attached.take();
        drop(inner);
        if let Some(attached) = attached {
            attached.notify_waiters();
        }
    }

    /// Resolves at the next attach (only for futures created before it).
    pub(crate) fn reattached(&self) -> tokio::sync::futures::OwnedNotified {
        let mut inner = self.lock();
        let attached = inner.attached.get_or_insert_with(Default::default);
        attached.clone().notified_owned()
    }

    /// Waits until this session's owner lock is free, and takes it.
    pub(crate) async fn lock_owner(self: &Arc<Self>) -> Owner {
        loop {
            if let Some(owner) = self.try_lock_owner() {
                return owner;
            }
            let released = Self::waiter(&mut self.lock());
            // Released between the first try and the registration: no
            // wake-up comes for that release, so try again now.
            if let Some(owner) = self.try_lock_owner() {
                return owner;
            }
            released.await;
        }
    }

    /// The owner lock if it is free now.
    pub(crate) fn try_lock_owner(self: &Arc<Self>) -> Option<Owner> {
        self.owned
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        Some(Owner(self.clone()))
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
        if inner.link.as_ref().is_some_and(|l| l.conn_id() == conn_id) {
            inner.link = None;
        }
        let queue = self.drain_queue(&mut inner);
        let signal = inner.signal.take();
        drop(inner);
        if let Some(signal) = signal {
            signal.notify_waiters();
        }
        queue
    }

    /// Records how many messages the owning connection has in flight (a plain
    /// load when unchanged, so a connection's every step costs no write).
    pub(crate) fn note_inflight(&self, n: usize) {
        let n = n as u32;
        if self.inflight.load(Ordering::Relaxed) != n {
            self.inflight.store(n, Ordering::Relaxed);
        }
    }

    /// Asks the owning connection to end (the admin API). False when offline.
    pub(crate) fn kick_out(&self) -> bool {
        let mut inner = self.lock();
        if inner.link.is_none() {
            return false;
        }
        self.tell(&mut inner, Ctrl::Kicked);
        true
    }

    /// What the admin API shows of this session.
    pub(crate) fn info(&self) -> super::inspect::ClientInfo {
        let inner = self.lock();
        let link = inner.link.as_ref();
        let client = link.and_then(|l| l.client.as_ref());
        let mut subscriptions: Vec<_> = inner
            .subscriptions
            .iter()
            .map(|(filter, (options, _))| (filter.clone(), options.qos))
            .collect();
        subscriptions.sort();
        super::inspect::ClientInfo {
            client_id: self.client_id.to_string(),
            username: client.and_then(|c| c.username().map(str::to_owned)),
            connected: link.is_some(),
            protocol: client.map(|c| c.protocol()),
            address: client.map(|c| c.addr()),
            listener: client.map(|c| c.peer().listener().to_owned()),
            keep_alive: link.map(|l| l.keep_alive),
            connected_at: link.map(|l| u64::from(l.connected_at)),
            persistent: inner.persistent,
            subscriptions,
            queue_length: inner.queue.len(),
            inflight: if link.is_some() {
                self.inflight.load(Ordering::Relaxed) as usize
            } else {
                0
            },
        }
    }

    /// The connected client, as the hooks see it.
    pub(crate) fn client(&self) -> Option<crate::hooks::Client> {
        self.lock().link.as_ref().and_then(|l| l.client.clone())
    }

    /// Deliveries waiting in the queue.
    pub(crate) fn queue_len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Asks the owning connection (if any) to end because of a takeover.
    pub(crate) fn kick(&self) {
        let mut inner = self.lock();
        if inner.link.is_some() {
            self.tell(&mut inner, Ctrl::TakenOver);
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
        let signal = inner.signal.take();
        drop(inner);
        if let Some(signal) = signal {
            signal.notify_waiters();
        }
    }

    /// True once removed from the registry.
    pub(crate) fn is_removed(&self) -> bool {
        self.lock().removed
    }

    /// Records a granted subscription and its MQTT 5.0 identifier, if any.
    /// True when it is new.
    pub(crate) fn add_subscription(
        &self,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> bool {
        self.lock()
            .subscriptions
            .insert(filter.to_owned(), (options, identifier))
            .is_none()
    }

    /// The MQTT 5.0 identifier of a subscription, if it has one.
    pub(crate) fn subscription_identifier(&self, filter: &str) -> Option<u32> {
        self.lock().subscriptions.get(filter).and_then(|s| s.1)
    }

    /// Forgets a subscription. True when it existed.
    pub(crate) fn remove_subscription(&self, filter: &str) -> bool {
        self.lock().subscriptions.remove(filter).is_some()
    }

    /// Takes every subscription (the session is being cleaned).
    pub(crate) fn take_subscriptions(&self) -> Vec<(String, SubscriptionOptions)> {
        let mut inner = self.lock();
        std::mem::take(&mut inner.subscriptions)
            .into_iter()
            .map(|(f, (o, _))| (f, o))
            .collect()
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
            .map(|(f, (o, _))| (f.clone(), *o))
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

    /// Every client pays for its session: it must not grow (240 bytes while
    /// its two times were `Option<Instant>`s and its link needed a tag; 304
    /// with an inline `Notify` for room and a semaphore for the owner lock; 320,
    /// and a 56-byte allocation for the owner lock, before the lock came
    /// inline and the attach notification on demand; 328 before the
    /// subscriptions went into a B-tree). With the `Arc`'s two counts it
    /// must fit the allocator's 224-byte class.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_session_does_not_grow() {
        let size = std::mem::size_of::<Session>();
        assert!(size <= 208, "Session is {size} bytes");
    }

    #[tokio::test]
    async fn the_owner_lock_goes_to_one_waiter_at_a_time() {
        let session = online(1);
        let owner = session.lock_owner().await;
        let held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (session, held) = (session.clone(), held.clone());
                tokio::spawn(async move {
                    let owner = session.lock_owner().await;
                    assert_eq!(held.fetch_add(1, Ordering::SeqCst), 0, "one owner");
                    tokio::task::yield_now().await;
                    held.fetch_sub(1, Ordering::SeqCst);
                    drop(owner);
                })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(waiters.iter().all(|w| !w.is_finished()), "all wait");
        drop(owner);
        for waiter in waiters {
            waiter.await.expect("each gets the lock in the end");
        }
        assert!(session.lock().signal.is_none(), "nobody waits: no signal");
        assert!(session.try_lock_owner().is_some(), "free again");
    }

    #[tokio::test]
    async fn the_owner_lock_is_held_until_the_owner_is_dropped() {
        let session = online(1);
        let owner = session.lock_owner().await;
        assert!(session.try_lock_owner().is_none(), "held");
        let waiting = tokio::spawn({
            let session = session.clone();
            async move { session.lock_owner().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a second owner waits");
        drop(owner);
        let second = waiting.await.expect("the waiter gets the lock");
        assert!(session.try_lock_owner().is_none(), "held by the second");
        drop(second);
        assert!(session.try_lock_owner().is_some(), "free again");
    }

    #[tokio::test(start_paused = true)]
    async fn an_attach_wakes_the_timers_armed_before_it() {
        let session = online(1);
        session.detach(1);
        let reattached = session.reattached();
        let later = tokio::time::sleep(Duration::from_secs(60));
        session.attach(Link::bare(2), false);
        tokio::select! {
            _ = reattached => {}
            _ = later => panic!("not woken by the attach"),
        }
        assert!(
            session.lock().attached.is_none(),
            "an online session holds none"
        );
    }

    fn online(messages: usize) -> Arc<Session> {
        online_with_budget(messages, 1 << 20)
    }

    /// An online session of `messages` places counting against a broker-wide
    /// budget of `budget` bytes.
    fn online_with_budget(messages: usize, budget: usize) -> Arc<Session> {
        let limits = QueueLimits {
            messages,
            bytes: 1 << 20,
            drain_timeout: DRAIN,
        };
        let policy = Arc::new(QueuePolicy::new(limits, budget));
        let session = Arc::new(Session::new(Arc::from("s"), policy));
        session.attach(Link::bare(1), false);
        session
    }

    fn delivery(qos: QoS) -> Delivery {
        Delivery::new(Message::new(Publish::new("t", qos, "x"), None), qos, false)
    }

    fn offer(session: &Session, qos: QoS) -> Offer {
        session.offer(delivery(qos), |_| unreachable!("online"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_makes_publishers_wait_and_a_take_wakes_them() {
        let session = online(8);
        for _ in 0..8 {
            assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
        }
        assert!(matches!(
            offer(&session, QoS::AtLeastOnce),
            Offer::Full { .. }
        ));
        let Offer::Full { room, .. } = offer(&session, QoS::AtMostOnce) else {
            panic!("a full queue");
        };
        tokio::pin!(room);
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
        let session = online(1);
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
        assert_eq!(session.told(1), None, "not yet: it may still catch up");
        tokio::time::advance(DRAIN).await;
        assert!(matches!(
            offer(&session, QoS::AtLeastOnce),
            Offer::Full { .. }
        ));
        assert_eq!(session.told(1), Some(Ctrl::TooSlow));
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(
            session.poll_woken(&mut cx).is_ready(),
            "and woken to see it"
        );
        assert_eq!(session.told(2), Some(Ctrl::TakenOver), "another connection");
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_that_keeps_taking_is_never_judged_slow() {
        let session = online(1);
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
        assert_eq!(session.told(1), None);
    }

    #[test]
    fn a_wake_up_is_kept_until_polled_and_seen_once() {
        let session = online(10);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(session.poll_woken(&mut cx).is_pending());
        assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
        assert!(matches!(offer(&session, QoS::AtLeastOnce), Offer::Queued));
        assert!(session.poll_woken(&mut cx).is_ready());
        assert!(
            session.poll_woken(&mut cx).is_pending(),
            "two offers, one wake-up"
        );
        session.kick();
        assert!(session.poll_woken(&mut cx).is_ready());
        assert_eq!(session.told(1), Some(Ctrl::TakenOver));
        session.attach(Link::bare(2), false);
        assert_eq!(session.told(2), None, "the new owner starts untold");
    }

    #[tokio::test]
    async fn bytes_go_back_to_the_budget_when_taken_or_detached() {
        let session = online(10);
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
        let session = online_with_budget(100, 2 * cost);
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
        let session = online(10);
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
