//! The keep-alive deadlines of every connection, watched by one task for the
//! whole broker instead of a timer per connection: an idle client holds only
//! its deadline (and an entry here), not a boxed `Sleep` in the runtime's
//! timer wheel.
//!
//! A connection arms its deadline once per keep-alive period, not per packet:
//! traffic only moves its `last_seen`, and when the deadline comes the
//! connection checks it and arms the next one (as a timer that is reset only
//! when it fires). The task sleeps until the earliest deadline, then publishes
//! how far it got ([`Deadlines::passed`]) and wakes the sessions whose deadline
//! that was, through the same flag deliveries use ([`Session::wake`]); a woken
//! connection compares its own deadline with `passed`, one relaxed load.

mod table;

use std::{
    num::NonZeroU64,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard, Once, Weak,
    },
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use super::Session;
use table::{Millis, Table};

/// An armed deadline, as a connection keeps it: never 0, so that an
/// `Option` of it is one word.
pub(crate) type Due = NonZeroU64;

/// The deadlines of the connections with a keep alive, and the task that
/// wakes them.
pub(crate) struct Deadlines {
    /// What the milliseconds count from.
    origin: Instant,
    /// By deadline, then connection id (unique, so each connection's entry is
    /// its own and it can take it back).
    armed: Mutex<Table<Weak<Session>>>,
    /// Every deadline up to this one has been woken.
    passed: AtomicU64,
    /// An earlier deadline than the one the task sleeps until was armed.
    sooner: Notify,
    /// The task starts with the first deadline (a broker whose clients have
    /// no keep alive, or a test's engine, runs none).
    started: Once,
    shutdown: CancellationToken,
}

impl Deadlines {
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        Self {
            origin: Instant::now(),
            armed: Mutex::new(Table::new()),
            passed: AtomicU64::new(0),
            sooner: Notify::new(),
            started: Once::new(),
            shutdown,
        }
    }

    fn armed(&self) -> MutexGuard<'_, Table<Weak<Session>>> {
        // A map of plain entries stays consistent if a holder panicked.
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes `session` at `deadline` (or just after: rounded up to the next
    /// millisecond, never before); what to compare with [`Deadlines::passed`]
    /// and to [`Deadlines::disarm`] with.
    pub(crate) fn arm(
        self: &std::sync::Arc<Self>,
        session: &std::sync::Arc<Session>,
        conn_id: u64,
        deadline: Instant,
    ) -> Due {
        self.started.call_once(|| {
            tokio::spawn(self.clone().watch());
        });
        let since = deadline.saturating_duration_since(self.origin);
        let ms = u64::try_from(since.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u64::MAX)
            .max(1);
        let mut armed = self.armed();
        let earliest = armed.first().is_none_or(|first| ms < first);
        armed.insert(ms, conn_id, std::sync::Arc::downgrade(session));
        drop(armed);
        if earliest {
            // A permit if the task is not waiting yet: it looks again.
            self.sooner.notify_one();
        }
        Due::new(ms).unwrap_or(Due::MIN)
    }

    /// Takes back a deadline that has not come (a connection that ends).
    pub(crate) fn disarm(&self, deadline: Due, conn_id: u64) {
        self.armed().remove(deadline.get(), conn_id);
    }

    /// Whether `deadline` has come (its session was woken, or is being).
    pub(crate) fn passed(&self, deadline: Due) -> bool {
        deadline.get() <= self.passed.load(Ordering::Acquire)
    }

    /// Sleeps until the earliest deadline, wakes what is due, until shutdown.
    async fn watch(self: std::sync::Arc<Self>) {
        loop {
            let next = self.armed().first();
            let wait = async {
                match next {
                    Some(ms) => tokio::time::sleep_until(self.at(ms)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = self.sooner.notified() => continue,
                _ = wait => {}
            }
            self.wake_due();
        }
    }

    fn at(&self, ms: Millis) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    /// Wakes the sessions whose deadline has come; `passed` first, so that a
    /// woken connection sees its deadline passed.
    fn wake_due(&self) {
        let now = self.now();
        let due = self.armed().take_due(now);
        self.passed.fetch_max(now, Ordering::AcqRel);
        for session in due.into_iter().filter_map(|s| s.upgrade()) {
            session.wake();
        }
    }

    /// Milliseconds since the origin, rounded down: every deadline up to it
    /// has come.
    fn now(&self) -> Millis {
        let since = Instant::now().saturating_duration_since(self.origin);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::Arc,
        task::{Context, Poll},
    };

    use super::*;
    use crate::{
        engine::{budget::QueuePolicy, session::Link},
        model::QueueLimits,
    };

    fn session(id: &str, conn_id: u64) -> Arc<Session> {
        let limits = QueueLimits {
            messages: 10,
            bytes: 1 << 20,
            drain_timeout: Duration::from_secs(5),
        };
        let policy = Arc::new(QueuePolicy::new(limits, 1 << 20));
        let session = Arc::new(Session::new(Arc::from(id), policy));
        session.attach(Link::bare(conn_id), false);
        session
    }

    fn woken(session: &Session) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(session.poll_woken(&mut cx), Poll::Ready(()))
    }

    /// Lets the watch task run at the paused clock's present.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// 24 bytes an entry, so a ring's blocks (4, 8, 16… entries) are 96,
    /// 192, 384… bytes: never the 256- and 320-byte classes that parking
    /// frees (see `table`).
    #[test]
    fn an_entry_is_three_words() {
        assert_eq!(
            std::mem::size_of::<(Millis, u64, Option<Weak<Session>>)>(),
            24
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_session_is_woken_at_its_deadline_and_not_before() {
        let deadlines = Arc::new(Deadlines::new(CancellationToken::new()));
        let (a, b) = (session("a", 1), session("b", 2));
        let start = Instant::now();
        let late = deadlines.arm(&b, 2, start + Duration::from_millis(3000));
        let soon = deadlines.arm(&a, 1, start + Duration::from_millis(1500));
        settle().await;
        assert!(!woken(&a) && !woken(&b) && !deadlines.passed(soon));

        tokio::time::sleep_until(start + Duration::from_millis(1499)).await;
        settle().await;
        assert!(!woken(&a), "a millisecond early");
        tokio::time::sleep_until(start + Duration::from_millis(1500)).await;
        settle().await;
        assert!(woken(&a) && deadlines.passed(soon), "at its deadline");
        assert!(!woken(&b) && !deadlines.passed(late), "b's is later");

        tokio::time::sleep_until(start + Duration::from_millis(3000)).await;
        settle().await;
        assert!(woken(&b) && deadlines.passed(late));
        assert!(!woken(&a), "once per arming");
    }

    #[tokio::test(start_paused = true)]
    async fn a_disarmed_deadline_wakes_nobody() {
        let deadlines = Arc::new(Deadlines::new(CancellationToken::new()));
        let a = session("a", 1);
        let start = Instant::now();
        let ms = deadlines.arm(&a, 1, start + Duration::from_secs(2));
        deadlines.disarm(ms, 1);
        tokio::time::sleep_until(start + Duration::from_secs(3)).await;
        settle().await;
        assert!(!woken(&a));
        assert!(deadlines.armed().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_armed_later_is_not_missed() {
        let deadlines = Arc::new(Deadlines::new(CancellationToken::new()));
        let (a, b) = (session("a", 1), session("b", 2));
        let start = Instant::now();
        deadlines.arm(&a, 1, start + Duration::from_secs(60));
        settle().await; // the task sleeps until a's deadline
        deadlines.arm(&b, 2, start + Duration::from_secs(1));
        tokio::time::sleep_until(start + Duration::from_secs(1)).await;
        settle().await;
        assert!(woken(&b) && !woken(&a));
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_ends_at_shutdown() {
        let shutdown = CancellationToken::new();
        let deadlines = Arc::new(Deadlines::new(shutdown.clone()));
        let a = session("a", 1);
        deadlines.arm(&a, 1, Instant::now() + Duration::from_secs(1));
        settle().await;
        assert_eq!(Arc::strong_count(&deadlines), 2, "the task holds it");
        shutdown.cancel();
        settle().await;
        assert_eq!(Arc::strong_count(&deadlines), 1, "the task ended");
    }
}
