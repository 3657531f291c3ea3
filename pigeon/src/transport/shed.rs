//! Keeping a listener alive under pressure: connections over `max_connections`
//! and accept errors (typically out of file descriptors) are shed, with a
//! backoff and a log line per interval rather than one per attempt.

use std::{
    fs::File,
    time::{Duration, Instant},
};

/// How often a repeated warning is logged at most.
pub(super) const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Lets one log line through per interval and counts the ones held back.
#[derive(Debug)]
pub(super) struct LogThrottle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were held
    /// back since the last one; `None` to stay quiet.
    pub(super) fn allow(&mut self, now: Instant) -> Option<u64> {
        let due = match self.last {
            None => true,
            Some(last) => now.saturating_duration_since(last) >= self.interval,
        };
        if !due {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The pause after a failed accept: doubling from `MIN` up to `MAX`, back to
/// `MIN` after a success, so that a lasting shortage does not spin the loop
/// and a brief one costs little.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: u32,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// The pause after one more failure.
    pub(super) fn next_delay(&mut self) -> Duration {
        let delay = Self::MIN.saturating_mul(1 << self.failures.min(10));
        self.failures = self.failures.saturating_add(1);
        delay.min(Self::MAX)
    }

    /// An accept succeeded.
    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Whether an accept error means the process (EMFILE) or the system (ENFILE)
/// is out of file descriptors.
pub(super) fn out_of_descriptors(error: &std::io::Error) -> bool {
    // Linux and the BSDs agree on these two numbers.
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(error.raw_os_error(), Some(ENFILE | EMFILE))
}

/// One file descriptor held in reserve: given up when descriptors run out,
/// it lets the listener accept the waiting connection and close it at once,
/// so that the backlog drains instead of holding clients for the kernel's
/// retry (the trick of libevent, nginx and others).
#[derive(Debug)]
pub(super) struct Spare(Option<File>);

impl Spare {
    pub(super) fn new() -> Self {
        Self(open_spare())
    }

    /// Frees the reserved descriptor for one accept.
    pub(super) fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes a descriptor back into reserve (may fail while none are free;
    /// the next shortage then only backs off).
    pub(super) fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = open_spare();
        }
    }
}

fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let mut log = LogThrottle::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(log.allow(t0), Some(0));
        // A failure every 50 ms for just under the interval: all quiet.
        for i in 1..100 {
            assert_eq!(log.allow(t0 + Duration::from_millis(50 * i)), None);
        }
        assert_eq!(log.allow(t0 + Duration::from_secs(5)), Some(99));
        assert_eq!(log.allow(t0 + Duration::from_secs(6)), None);
        assert_eq!(log.allow(t0 + Duration::from_secs(10)), Some(1));
    }

    #[test]
    fn backoff_doubles_up_to_a_second_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(1));
        }
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(10));
    }

    #[test]
    fn descriptor_shortage_is_recognised_by_errno() {
        assert!(out_of_descriptors(&std::io::Error::from_raw_os_error(24)));
        assert!(out_of_descriptors(&std::io::Error::from_raw_os_error(23)));
        assert!(!out_of_descriptors(&std::io::Error::from_raw_os_error(104)));
    }

    #[test]
    fn the_spare_descriptor_is_released_and_restored() {
        let mut spare = Spare::new();
        assert!(spare.release());
        assert!(!spare.release(), "released once until restored");
        spare.restore();
        assert!(spare.release());
    }
}
