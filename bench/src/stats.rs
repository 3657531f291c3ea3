//! Latency samples and the printed result row.

use std::time::Duration;

/// What one scenario measured.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub scenario: String,
    pub expected: u64,
    pub delivered: u64,
    pub elapsed: Duration,
    /// Per-message latencies in microseconds (unsorted).
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    /// Delivered messages per second over the whole run.
    pub(crate) fn rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q`-quantile of latency in milliseconds.
    pub(crate) fn latency_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let idx = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        self.latencies_us[idx.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }

    /// One line: `label scenario rate p50 p99 delivered/expected`.
    pub(crate) fn row(&mut self, label: &str) -> String {
        let (p50, p99) = (self.latency_ms(0.5), self.latency_ms(0.99));
        format!(
            "{label:<10} {:<14} {:>12.0} {:>9.2} {:>9.2} {:>10}/{:<10} {:>6.2}%",
            self.scenario,
            self.rate(),
            p50,
            p99,
            self.delivered,
            self.expected,
            100.0 * self.delivered as f64 / self.expected.max(1) as f64,
        )
    }
}

/// The header matching [`Outcome::row`].
pub(crate) fn header() -> String {
    format!(
        "{:<10} {:<14} {:>12} {:>9} {:>9} {:>21} {:>7}",
        "broker", "scenario", "msgs/s", "p50 ms", "p99 ms", "delivered/expected", "ratio"
    )
}
