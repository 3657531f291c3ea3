//! What one scenario measured, and the printed result row.

use std::time::Duration;

use pigeon_codec::QoS;

/// What one scenario measured.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub scenario: String,
    pub qos: QoS,
    /// Distinct expected messages received.
    pub delivered: u64,
    /// Expected messages never received.
    pub missing: u64,
    /// Extra copies of messages already received.
    pub duplicates: u64,
    /// Messages that arrived after a later one of the same stream.
    pub reordered: u64,
    /// Messages a subscriber should not have received, or with a corrupt payload.
    pub unexpected: u64,
    /// Times flow control wrote the outstanding deliveries off.
    pub stalls: u64,
    /// From the first publish to the last delivery.
    pub elapsed: Duration,
    /// Per-message latencies in microseconds (unsorted).
    pub latencies_us: Vec<u32>,
    /// Connection errors seen by publishers and subscribers.
    pub errors: Vec<String>,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            scenario: String::new(),
            qos: QoS::AtMostOnce,
            delivered: 0,
            missing: 0,
            duplicates: 0,
            reordered: 0,
            unexpected: 0,
            stalls: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl Outcome {
    /// Delivered (distinct) messages per second, first publish to last delivery.
    pub(crate) fn rate(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile of latency in milliseconds.
    fn latency_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let idx = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        self.latencies_us[idx.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }

    /// `FAIL`: a QoS 1 message was lost (or a corrupt/unexpected one arrived);
    /// `ERR`: a connection failed; `loss`: QoS 0 messages were dropped; `ok`.
    pub(crate) fn verdict(&self) -> &'static str {
        if (self.qos != QoS::AtMostOnce && self.missing > 0) || self.unexpected > 0 {
            "FAIL"
        } else if !self.errors.is_empty() {
            "ERR"
        } else if self.missing > 0 {
            "loss"
        } else {
            "ok"
        }
    }

    /// Whether the run should make pigeon-bench exit non-zero.
    pub(crate) fn failed(&self) -> bool {
        matches!(self.verdict(), "FAIL" | "ERR")
    }

    /// One line matching [`header`].
    pub(crate) fn row(&mut self, label: &str) -> String {
        let (p50, p99) = (self.latency_ms(0.5), self.latency_ms(0.99));
        format!(
            "{label:<10} {:<12} {:>10.0} {:>10} {:>9} {:>6} {:>6} {:>9.2} {:>9.2} {:>6} {:>6}",
            self.scenario,
            self.rate(),
            self.delivered,
            self.missing,
            self.duplicates,
            self.reordered,
            p50,
            p99,
            self.stalls,
            self.verdict(),
        )
    }
}

/// The header matching [`Outcome::row`].
pub(crate) fn header() -> String {
    format!(
        "{:<10} {:<12} {:>10} {:>10} {:>9} {:>6} {:>6} {:>9} {:>9} {:>6} {:>6}",
        "broker",
        "scenario",
        "msgs/s",
        "delivered",
        "missing",
        "dups",
        "reord",
        "p50 ms",
        "p99 ms",
        "stalls",
        "result"
    )
}
