//! How much a session may hold for a subscriber that is slow or away.

use std::time::Duration;

/// Per-session queue limits and the patience for a subscriber that stops
/// taking messages.
///
/// ```
/// let limits = pigeon::broker::QueueLimits {
///     messages: 1000,
///     bytes: 16 << 20,
///     drain_timeout: std::time::Duration::from_secs(5),
/// };
/// assert!(limits.messages > 0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Messages queued per session (`max_queued_messages`).
    pub messages: usize,
    /// Bytes queued per session (`max_queued_bytes`).
    pub bytes: usize,
    /// How long a full queue may go without the subscriber taking anything
    /// before the subscriber is disconnected (`drain_timeout`).
    pub drain_timeout: Duration,
}

impl QueueLimits {
    /// How long QoS 0 publishers wait on a full queue before its QoS 0 copies
    /// are dropped: a subscriber that took nothing for this long is judged not
    /// to be keeping up, while a momentary burst (the subscriber is reading,
    /// just behind) is absorbed by backpressure.
    pub(crate) fn qos0_patience(&self) -> Duration {
        (self.drain_timeout / 5).min(Duration::from_secs(1))
    }
}
