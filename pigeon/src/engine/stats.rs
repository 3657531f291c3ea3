use std::{
    sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

use super::{Drops, Stats};

/// Why a message copy was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// QoS 0 to a subscriber that took nothing from its full queue for a while.
    SlowSubscriber,
    /// An offline session's stored queue was full.
    QueueFull,
    /// QoS 0 while the broker-wide queue budget was exhausted.
    MemoryBudget,
    /// Its MQTT 5.0 Message Expiry Interval passed before it could be sent.
    Expired,
    /// Larger than the subscriber's Maximum Packet Size.
    TooLarge,
}

const REASONS: usize = 5;

impl DropReason {
    /// Every reason, in the order of [`Drops`]' fields.
    pub const ALL: [DropReason; REASONS] = [
        DropReason::SlowSubscriber,
        DropReason::QueueFull,
        DropReason::MemoryBudget,
        DropReason::Expired,
        DropReason::TooLarge,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The reason as a metric label (`slow_subscriber`, `queue_full`, ...).
    pub fn label(self) -> &'static str {
        match self {
            DropReason::SlowSubscriber => "slow_subscriber",
            DropReason::QueueFull => "queue_full",
            DropReason::MemoryBudget => "memory_budget",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
        }
    }

    fn name(self) -> &'static str {
        match self {
            DropReason::SlowSubscriber => "slow subscriber",
            DropReason::QueueFull => "offline queue full",
            DropReason::MemoryBudget => "queue memory budget exhausted",
            DropReason::Expired => "message expired",
            DropReason::TooLarge => "larger than the client's maximum packet size",
        }
    }
}

/// Shards of a [`PerCore`] counter: at least the worker threads of a small
/// machine, each on its own cache line.
const SHARDS: usize = 16;

/// One shard, alone on its cache line (128 bytes: adjacent-line prefetch).
#[repr(align(128))]
#[derive(Default)]
struct Shard(AtomicU64);

/// A counter bumped on every message: each thread adds to its own shard, so
/// cores never pass one cache line back and forth; reading sums the shards.
pub(crate) struct PerCore([Shard; SHARDS]);

impl Default for PerCore {
    fn default() -> Self {
        Self(std::array::from_fn(|_| Shard::default()))
    }
}

impl PerCore {
    /// Adds `n` (one relaxed atomic add, on this thread's shard).
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0[shard()].0.fetch_add(n, Relaxed);
    }

    /// The total so far.
    pub(crate) fn sum(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

/// This thread's shard, given out round robin as threads first count.
/// A `const` thread-local (no lazy-init check or destructor registration on
/// each access), filled on a thread's first count.
#[inline]
fn shard() -> usize {
    use std::{cell::Cell, sync::atomic::AtomicUsize};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| match s.get() {
        usize::MAX => {
            let mine = NEXT.fetch_add(1, Relaxed) % SHARDS;
            s.set(mine);
            mine
        }
        mine => mine,
    })
}

/// A counter per QoS level (0, 1, 2).
#[derive(Default)]
pub(crate) struct ByQos([PerCore; 3]);

impl ByQos {
    /// Counts one packet of `qos`.
    #[inline]
    pub(crate) fn add(&self, qos: pigeon_codec::QoS) {
        self.0[qos as usize].add(1);
    }

    /// The count of each level.
    pub(crate) fn each(&self) -> [u64; 3] {
        std::array::from_fn(|i| self.0[i].sum())
    }

    /// All levels together.
    pub(crate) fn sum(&self) -> u64 {
        self.each().iter().sum()
    }
}

/// Allowed and denied decisions of one check.
#[derive(Default)]
pub(crate) struct Verdicts {
    pub allow: PerCore,
    pub deny: AtomicU64,
}

impl Verdicts {
    /// Counts one decision.
    #[inline]
    pub(crate) fn count(&self, allowed: bool) {
        if allowed {
            self.allow.add(1);
        } else {
            self.deny.fetch_add(1, Relaxed);
        }
    }
}

/// Drops are logged at most once per this interval and reason, with the count.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The broker's live counters (relaxed atomics: they are statistics).
pub(crate) struct Counters {
    pub clients_connected: AtomicI64,
    /// Connected clients parked off the runtime while idle (`park_idle_after`).
    pub clients_parked: AtomicI64,
    /// The most clients connected at once since start.
    pub clients_maximum: AtomicI64,
    /// Connections established since start (CONNACK accepted).
    pub connections_total: AtomicU64,
    /// PUBLISH packets received from clients, by QoS.
    pub publish_received: ByQos,
    /// PUBLISH packets written to clients, by QoS.
    pub publish_sent: ByQos,
    pub bytes_received: PerCore,
    pub bytes_sent: PerCore,
    /// Messages that matched no subscription.
    pub no_subscribers: PerCore,
    pub messages_dropped: AtomicU64,
    pub retained: AtomicI64,
    /// CONNECTs accepted / refused by authentication.
    pub authentication: Verdicts,
    /// PUBLISH and SUBSCRIBE checks (ACL and handlers) allowed / denied.
    pub authorization: Verdicts,
    /// Connections by listener name (a lock per connect, never per message).
    listeners: std::sync::Mutex<std::collections::BTreeMap<String, i64>>,
    drops: [AtomicU64; REASONS],
    /// Milliseconds since `epoch` of the last log line, per reason.
    logged: [AtomicU64; REASONS],
    epoch: Instant,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            clients_connected: AtomicI64::new(0),
            clients_parked: AtomicI64::new(0),
            clients_maximum: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            publish_received: ByQos::default(),
            publish_sent: ByQos::default(),
            bytes_received: PerCore::default(),
            bytes_sent: PerCore::default(),
            no_subscribers: PerCore::default(),
            messages_dropped: AtomicU64::new(0),
            retained: AtomicI64::new(0),
            authentication: Verdicts::default(),
            authorization: Verdicts::default(),
            listeners: Default::default(),
            drops: Default::default(),
            logged: Default::default(),
            epoch: Instant::now(),
        }
    }
}

impl Counters {
    /// A client is connected through `listener`.
    pub(crate) fn connected(&self, listener: &str) {
        let now = self.clients_connected.fetch_add(1, Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        *listeners.entry(listener.to_owned()).or_default() += 1;
    }

    /// A client connected through `listener` is gone.
    pub(crate) fn disconnected(&self, listener: &str) {
        self.clients_connected.fetch_sub(1, Relaxed);
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = listeners.get_mut(listener) {
            *n -= 1;
        }
    }

    /// Connected clients by listener name.
    pub(crate) fn by_listener(&self) -> Vec<(String, u64)> {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners
            .iter()
            .map(|(name, n)| (name.clone(), (*n).max(0) as u64))
            .collect()
    }

    /// Copies not delivered for `reason` so far.
    pub(crate) fn drops_of(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Relaxed)
    }

    /// Counts `n` dropped copies and logs the reason, rate-limited.
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        self.messages_dropped.fetch_add(n, Relaxed);
        let total = self.drops[reason.index()].fetch_add(n, Relaxed) + n;
        let now = self.epoch.elapsed().as_millis() as u64 + LOG_EVERY.as_millis() as u64;
        let last = &self.logged[reason.index()];
        let previous = last.load(Relaxed);
        if now >= previous + LOG_EVERY.as_millis() as u64
            && last
                .compare_exchange(previous, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(reason = reason.name(), total, "messages dropped");
        }
    }

    pub(crate) fn snapshot(&self, subscriptions: usize, queued_bytes: usize) -> Stats {
        let drop = |r: DropReason| self.drops[r.index()].load(Relaxed);
        Stats {
            clients_connected: self.clients_connected.load(Relaxed).max(0) as u64,
            clients_parked: self.clients_parked.load(Relaxed).max(0) as u64,
            messages_received: self.publish_received.sum(),
            messages_sent: self.publish_sent.sum(),
            messages_dropped: self.messages_dropped.load(Relaxed),
            drops: Drops {
                slow_subscriber: drop(DropReason::SlowSubscriber),
                queue_full: drop(DropReason::QueueFull),
                memory_budget: drop(DropReason::MemoryBudget),
                expired: drop(DropReason::Expired),
                too_large: drop(DropReason::TooLarge),
            },
            queued_bytes: queued_bytes as u64,
            retained: self.retained.load(Relaxed).max(0) as u64,
            subscriptions: subscriptions as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PerCore;

    /// Adds from many threads land in one total.
    #[test]
    fn adds_from_every_thread_sum_up() {
        let counter = std::sync::Arc::new(PerCore::default());
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.add(1)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counter.sum(), 20_000);
    }
}
