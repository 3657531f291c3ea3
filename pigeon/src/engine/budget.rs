//! Limits on what waits in session queues: per session by count and bytes,
//! and broker-wide by a byte budget, so memory stays bounded by construction.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use std::{num::NonZeroU64, time::Duration};

use tokio::{sync::Notify, time::Instant};

use crate::model::QueueLimits;

/// What every session's queue is held to: the per-session limits and the
/// broker-wide budget, shared by all sessions.
pub(crate) struct QueuePolicy {
    /// Per-session limits.
    pub limits: QueueLimits,
    /// The broker-wide byte budget.
    pub budget: Budget,
    /// What the sessions' times count from ([`Stamp`]): one origin per
    /// engine, made in its runtime (a process-wide one could be later than
    /// a paused test clock's now).
    origin: Instant,
}

/// A time a session keeps (when it was last drained, when its queue filled):
/// milliseconds after its policy's origin, plus one. A word, where an
/// `Option<Instant>` is two, in every session.
pub(crate) type Stamp = NonZeroU64;

impl QueuePolicy {
    pub(crate) fn new(limits: QueueLimits, total_bytes: usize) -> Self {
        Self {
            limits,
            budget: Budget::new(total_bytes),
            origin: Instant::now(),
        }
    }

    /// `at`, as sessions keep it (to the millisecond below).
    pub(crate) fn stamp(&self, at: Instant) -> Stamp {
        let ms = at.saturating_duration_since(self.origin).as_millis();
        Stamp::MIN.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// The time `stamp` stands for.
    pub(crate) fn instant(&self, stamp: Stamp) -> Instant {
        self.origin + Duration::from_millis(stamp.get() - 1)
    }
}

/// The broker-wide byte budget of queued messages (`max_queued_bytes_total`).
/// Each queued copy counts at its full size, an upper bound of what it holds
/// (copies of one message share its payload).
pub(crate) struct Budget {
    used: AtomicUsize,
    limit: usize,
    /// Woken when usage falls back under three quarters of the limit.
    room: Notify,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
            room: Notify::new(),
        }
    }

    /// Reserves `n` bytes; false (nothing reserved) when over the budget. An
    /// empty budget takes one message larger than the whole budget.
    pub(crate) fn try_reserve(&self, n: usize) -> bool {
        self.try_reserve_within(n) || self.used.compare_exchange(0, n, Relaxed, Relaxed).is_ok()
    }

    /// Reserves `n` bytes only if they fit under the limit (reservations made
    /// ahead of need never overshoot).
    pub(crate) fn try_reserve_within(&self, n: usize) -> bool {
        let before = self.used.fetch_add(n, Relaxed);
        if before + n > self.limit {
            self.release(n);
            return false;
        }
        true
    }

    /// Reserves `n` bytes whatever the budget (messages already accepted, such
    /// as a reconnecting session's stored queue).
    pub(crate) fn force(&self, n: usize) {
        self.used.fetch_add(n, Relaxed);
    }

    /// Gives back `n` reserved bytes.
    pub(crate) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.used.fetch_sub(n, Relaxed);
        let low = self.limit / 4 * 3;
        if before >= low && before - n < low {
            self.room.notify_waiters();
        }
    }

    /// Bytes reserved now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Relaxed)
    }

    /// Resolves when usage falls back under three quarters of the limit
    /// (register before checking, as with [`Notify::notified`]).
    pub(crate) fn room(&self) -> tokio::sync::futures::Notified<'_> {
        self.room.notified()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    /// A policy of `messages` per session, no byte limit worth speaking of.
    pub(crate) fn policy(messages: usize) -> Arc<QueuePolicy> {
        let limits = QueueLimits {
            messages,
            bytes: 1 << 30,
            drain_timeout: Duration::from_secs(5),
        };
        Arc::new(QueuePolicy::new(limits, 1 << 30))
    }

    #[test]
    fn reserves_within_the_limit_and_refuses_beyond() {
        let budget = Budget::new(100);
        assert!(budget.try_reserve(60));
        assert!(!budget.try_reserve(50), "60 + 50 is over 100");
        assert_eq!(budget.used(), 60);
        assert!(budget.try_reserve(40));
        assert!(!budget.try_reserve(1), "exactly full");
        budget.release(100);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn one_message_larger_than_the_budget_still_fits_an_empty_budget() {
        let budget = Budget::new(10);
        assert!(budget.try_reserve(50));
        assert!(!budget.try_reserve(1));
    }
}
