//! End-to-end flow control, the rule of the reference harness (`../shared/bench`):
//! publishers pause while more than `cap` expected deliveries are outstanding
//! (published but not yet received by the subscribers they match). When nothing
//! at all is delivered for `stall` while publishers wait, the outstanding count
//! is written off (a "stall"), so a broker that drops messages slows the run but
//! cannot deadlock it. `cap == 0` is pure open loop: TCP backpressure only.

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// How often a waiting publisher re-checks for a stall even without a wake-up.
const POLL: Duration = Duration::from_millis(5);

#[derive(Debug)]
pub(crate) struct Flow {
    cap: u64,
    stall: Duration,
    base: Instant,
    issued: AtomicU64,
    received: AtomicU64,
    written_off: AtomicU64,
    /// Times the outstanding count was written off.
    pub stalls: AtomicU64,
    /// Times a publisher had to wait.
    pub waits: AtomicU64,
    waiting: AtomicUsize,
    /// Microseconds after `base` of the last write-off.
    last_write_off_us: AtomicU64,
    room: Notify,
}

impl Flow {
    pub(crate) fn new(cap: u64, stall: Duration) -> Self {
        Self {
            cap,
            stall: stall.max(Duration::from_millis(1)),
            base: Instant::now(),
            issued: AtomicU64::new(0),
            received: AtomicU64::new(0),
            written_off: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            last_write_off_us: AtomicU64::new(0),
            room: Notify::new(),
        }
    }

    fn outstanding(&self) -> i64 {
        self.issued.load(Relaxed) as i64
            - self.received.load(Relaxed) as i64
            - self.written_off.load(Relaxed) as i64
    }

    /// Whether a publisher must wait before sending more.
    #[inline]
    pub(crate) fn blocked(&self) -> bool {
        self.cap != 0 && self.outstanding() > self.cap as i64
    }

    /// A publisher is about to send messages that `deliveries` subscriptions expect.
    #[inline]
    pub(crate) fn issue(&self, deliveries: u64) {
        self.issued.fetch_add(deliveries, Relaxed);
    }

    /// Subscribers received `n` more messages.
    #[inline]
    pub(crate) fn received(&self, n: u64) {
        self.received.fetch_add(n, Relaxed);
        if self.waiting.load(Relaxed) > 0 && !self.blocked() {
            self.room.notify_waiters();
        }
    }

    /// Every message received so far, duplicates included.
    pub(crate) fn total_received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// Waits until at most `cap` deliveries are outstanding, or `deadline`.
    pub(crate) async fn wait(&self, deadline: Instant) {
        if !self.blocked() {
            return;
        }
        self.waits.fetch_add(1, Relaxed);
        self.waiting.fetch_add(1, Relaxed);
        let mut last = self.received.load(Relaxed);
        let mut since = Instant::now();
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.blocked() || Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout(POLL, notified).await;
            let now = self.received.load(Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= self.stall {
                self.write_off();
                since = Instant::now();
            }
        }
        self.waiting.fetch_sub(1, Relaxed);
    }

    /// Nothing was delivered for `stall`: forget what is outstanding (at most once
    /// per `stall`, however many publishers noticed).
    fn write_off(&self) {
        let now = self.base.elapsed().as_micros() as u64;
        let last = self.last_write_off_us.load(Relaxed);
        let stall = self.stall.as_micros() as u64;
        if now.saturating_sub(last) < stall
            || self
                .last_write_off_us
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        let out = self.outstanding();
        if out > 0 {
            self.written_off.fetch_add(out as u64, Relaxed);
        }
        self.stalls.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_room_then_writes_off_a_stall() {
        let flow = Flow::new(10, Duration::from_millis(50));
        flow.issue(10);
        assert!(!flow.blocked());
        flow.issue(5);
        assert!(flow.blocked());
        flow.received(5);
        assert!(!flow.blocked());
        flow.issue(5);
        let t = Instant::now();
        flow.wait(t + Duration::from_secs(5)).await;
        assert!(!flow.blocked());
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!(flow.stalls.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn zero_cap_never_blocks() {
        let flow = Flow::new(0, Duration::from_millis(50));
        flow.issue(1_000_000);
        assert!(!flow.blocked());
    }
}
