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
    fn index(self) -> usize {
        self as usize
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
    pub(crate) fn add(&self, n: u64) {
        self.0[shard()].0.fetch_add(n, Relaxed);
    }

    /// The total so far.
    pub(crate) fn sum(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

/// This thread's shard, given out round robin as threads first count.
fn shard() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Drops are logged at most once per this interval and reason, with the count.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The broker's live counters (relaxed atomics: they are statistics).
pub(crate) struct Counters {
    pub clients_connected: AtomicI64,
    pub messages_received: PerCore,
    pub messages_sent: PerCore,
    pub messages_dropped: AtomicU64,
    pub retained: AtomicI64,
    drops: [AtomicU64; REASONS],
    /// Milliseconds since `epoch` of the last log line, per reason.
    logged: [AtomicU64; REASONS],
    epoch: Instant,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            clients_connected: AtomicI64::new(0),
            messages_received: PerCore::default(),
            messages_sent: PerCore::default(),
            messages_dropped: AtomicU64::new(0),
            retained: AtomicI64::new(0),
            drops: Default::default(),
            logged: Default::default(),
            epoch: Instant::now(),
        }
    }
}

impl Counters {
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
            messages_received: self.messages_received.sum(),
            messages_sent: self.messages_sent.sum(),
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
