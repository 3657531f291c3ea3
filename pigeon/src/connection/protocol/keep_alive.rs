//! Keep alive: the client must send something within 1.5 × its Keep Alive
//! (MQTT-3.1.2-24), or the broker closes the connection.

use std::{num::NonZeroU32, time::Duration};

use tokio::time::Instant;

/// A timer far enough away to mean "never" (tokio cannot sleep forever).
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// The keep-alive deadline arithmetic of one connection.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    /// 1.5 × the negotiated Keep Alive, in milliseconds; `None`: no limit.
    limit_ms: Option<NonZeroU32>,
    /// When the client was last heard from (or the broker last held it up).
    last_seen: Instant,
}

impl KeepAlive {
    /// For a negotiated Keep Alive of `seconds` (0: none), starting `now`.
    pub(crate) fn new(seconds: u16, now: Instant) -> Self {
        // At most 65535 × 1500 ms, which fits in a u32.
        let limit_ms = NonZeroU32::new(u32::from(seconds) * 1500);
        Self {
            limit_ms,
            last_seen: now,
        }
    }

    /// 1.5 × the Keep Alive, if the client has one.
    pub(crate) fn limit(&self) -> Option<Duration> {
        self.limit_ms
            .map(|ms| Duration::from_millis(u64::from(ms.get())))
    }

    /// The client was heard from, or the broker made it wait (which is not
    /// the client's silence): the limit starts over.
    pub(crate) fn seen(&mut self, now: Instant) {
        self.last_seen = now;
    }

    /// The timer fired at `now`: the next deadline, or `None` when the client
    /// has been silent too long. `held`: the broker is not reading (a PUBLISH
    /// waits for room, or the client is over its publish rate), so silence
    /// now is the broker's doing and does not count.
    pub(crate) fn check(&mut self, now: Instant, held: bool) -> Option<Instant> {
        let Some(limit) = self.limit() else {
            return Some(now + FAR);
        };
        if held {
            self.last_seen = now;
        }
        let deadline = self.last_seen + limit;
        (now < deadline).then_some(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_and_a_half_times_the_keep_alive() {
        let start = Instant::now();
        let keep_alive = KeepAlive::new(10, start);
        assert_eq!(keep_alive.limit(), Some(Duration::from_secs(15)));
        let max = KeepAlive::new(u16::MAX, start);
        assert_eq!(max.limit(), Some(Duration::from_millis(65_535 * 1500)));
        let none = KeepAlive::new(0, start);
        assert_eq!(none.limit(), None);
    }

    #[test]
    fn silence_past_the_limit_expires_and_traffic_moves_the_deadline() {
        let start = Instant::now();
        let mut keep_alive = KeepAlive::new(2, start);
        let limit = Duration::from_secs(3);
        keep_alive.seen(start + Duration::from_secs(2));
        let next = keep_alive.check(start + limit, false);
        assert_eq!(next, Some(start + Duration::from_secs(5)), "heard at 2 s");
        assert_eq!(
            keep_alive.check(start + Duration::from_secs(5), false),
            None
        );
    }

    #[test]
    fn the_broker_holding_the_client_up_does_not_count() {
        let start = Instant::now();
        let mut keep_alive = KeepAlive::new(2, start);
        let late = start + Duration::from_secs(60);
        assert_eq!(
            keep_alive.check(late, true),
            Some(late + Duration::from_secs(3))
        );
        assert_eq!(keep_alive.check(late + Duration::from_secs(3), false), None);
    }

    #[test]
    fn no_keep_alive_never_expires() {
        let start = Instant::now();
        let mut keep_alive = KeepAlive::new(0, start);
        let much_later = start + Duration::from_secs(86_400);
        assert!(keep_alive.check(much_later, false).is_some());
    }
}
