//! How long each hook's handlers take: a fixed-bucket histogram per hook, in
//! the shape Prometheus expects (cumulative buckets, a sum and a count).

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

/// The hooks that are timed (a chain run counts once, whatever its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `#[on_pre_connect]`.
    PreConnect,
    /// `#[on_authenticate]`.
    Authenticate,
    /// `#[on_authorize_publish]`.
    AuthorizePublish,
    /// `#[on_authorize_subscribe]`.
    AuthorizeSubscribe,
    /// `#[on_authorize_forward]`.
    AuthorizeForward,
    /// `#[on_published]`.
    Published,
}

impl Hook {
    /// Every timed hook.
    pub const ALL: [Hook; 6] = [
        Hook::PreConnect,
        Hook::Authenticate,
        Hook::AuthorizePublish,
        Hook::AuthorizeSubscribe,
        Hook::AuthorizeForward,
        Hook::Published,
    ];

    /// The hook's name as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Hook::PreConnect => "pre_connect",
            Hook::Authenticate => "authenticate",
            Hook::AuthorizePublish => "authorize_publish",
            Hook::AuthorizeSubscribe => "authorize_subscribe",
            Hook::AuthorizeForward => "authorize_forward",
            Hook::Published => "published",
        }
    }
}

/// Upper bounds of the buckets, in seconds (the last bucket, +Inf, is implied).
pub const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];

/// One hook's histogram.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last one is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

/// What a [`Histogram`] held when read.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per [`BUCKETS`] bound, then +Inf (= `count`).
    pub cumulative: Vec<u64>,
    /// Total time, in seconds.
    pub sum_seconds: f64,
    /// Observations.
    pub count: u64,
}

impl Histogram {
    /// Records one run.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// The counts so far.
    ///
    /// ```
    /// use pigeon::hooks::timing::Histogram;
    /// use std::time::Duration;
    /// let h = Histogram::default();
    /// h.observe(Duration::from_micros(30));
    /// h.observe(Duration::from_secs(9));
    /// let s = h.snapshot();
    /// assert_eq!((s.cumulative[0], *s.cumulative.last().unwrap(), s.count), (1, 2, 2));
    /// ```
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Relaxed);
                total
            })
            .collect();
        HistogramSnapshot {
            cumulative,
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
            count: self.count.load(Relaxed),
        }
    }
}

/// A histogram per [`Hook`].
#[derive(Default)]
pub struct HookTimings([Histogram; Hook::ALL.len()]);

impl HookTimings {
    /// The histogram of `hook`.
    pub fn of(&self, hook: Hook) -> &Histogram {
        &self.0[hook as usize]
    }
}
