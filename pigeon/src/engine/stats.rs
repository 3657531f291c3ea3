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

/// Drops are logged at most once per this interval and reason, with the count.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The broker's live counters (relaxed atomics: they are statistics).
pub(crate) struct Counters {
    pub clients_connected: AtomicI64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
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
            messages_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
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
            messages_received: self.messages_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
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
