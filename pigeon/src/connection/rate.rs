//! `max_publish_rate`: a token bucket per connection. A client over the rate
//! is not dropped: the connection stops reading for as long as it takes the
//! bucket to refill one token, so TCP pushes back on the client.

use std::time::Duration;

use tokio::time::Instant;

/// Tokens are PUBLISH packets; the bucket holds one second's worth, so a
/// client may burst up to the rate and is then held to it.
#[derive(Debug)]
pub(super) struct Bucket {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket for `per_second` messages; `None` when 0 (no limit).
    pub(super) fn new(per_second: u32, now: Instant) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            tokens: f64::from(per_second),
            last: now,
        })
    }

    /// Counts one PUBLISH read at `now`; `Some(t)`: read nothing more before `t`.
    pub(super) fn take(&mut self, now: Instant) -> Option<Instant> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second) - 1.0;
        if self.tokens >= 1.0 {
            return None;
        }
        // The wait until one whole token is back.
        let wait = (1.0 - self.tokens) / self.per_second;
        Some(now + Duration::from_secs_f64(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `n` messages as fast as the bucket lets them in; returns the
    /// time the last one was read at, from the start.
    fn read_all(bucket: &mut Bucket, start: Instant, n: usize) -> Duration {
        let mut now = start;
        for _ in 0..n {
            if let Some(until) = bucket.take(now) {
                now = until;
            }
        }
        now - start
    }

    #[test]
    fn zero_is_no_limit() {
        assert!(Bucket::new(0, Instant::now()).is_none());
    }

    #[test]
    fn a_burst_of_the_rate_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut bucket = Bucket::new(10, start).expect("limited");
        // The first 9 leave a whole token: no pause yet.
        for _ in 0..9 {
            assert_eq!(bucket.take(start), None);
        }
        // The 10th empties the bucket: the next read waits 100 ms.
        let until = bucket.take(start).expect("paused");
        assert_eq!(until - start, Duration::from_millis(100));
        // 10 more after the burst: one every 100 ms.
        let mut bucket = Bucket::new(10, start).expect("limited");
        let took = read_all(&mut bucket, start, 20);
        assert!(took >= Duration::from_millis(999), "{took:?}");
        assert!(took <= Duration::from_millis(1100), "{took:?}");
    }

    #[test]
    fn an_idle_client_gets_its_burst_back_but_no_more() {
        let start = Instant::now();
        let mut bucket = Bucket::new(5, start).expect("limited");
        read_all(&mut bucket, start, 5);
        let later = start + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(bucket.take(later), None);
        }
        assert!(
            bucket.take(later).is_some(),
            "a minute idle is still one second's burst"
        );
    }
}
