//! The last ten minutes of throughput and connections, one sample a second,
//! so that the dashboard plots history as soon as it opens.

use std::{
    collections::VecDeque,
    sync::{atomic::Ordering::Relaxed, Arc, Mutex},
    time::{Duration, SystemTime},
};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Http;

/// Samples kept: ten minutes.
const KEPT: usize = 600;

/// One second of the broker.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Sample {
    /// Unix time in milliseconds.
    at: u64,
    /// PUBLISH packets received per second over the last second.
    messages_in: f64,
    /// PUBLISH packets sent per second over the last second.
    messages_out: f64,
    connections: i64,
}

/// The kept samples, oldest first.
#[derive(Default)]
pub(super) struct History(Mutex<VecDeque<Sample>>);

impl History {
    pub(super) fn samples(&self) -> Vec<Sample> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().copied().collect()
    }

    fn push(&self, sample: Sample) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(sample);
    }
}

/// Takes a sample every second until shutdown.
pub(super) async fn sample(http: Arc<Http>, shutdown: CancellationToken) {
    let stats = &http.engine.stats;
    let totals = || (stats.publish_received.sum(), stats.publish_sent.sum());
    let mut last = totals();
    let mut last_at = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = totals();
        let elapsed = last_at.elapsed().as_secs_f64().max(1e-3);
        last_at = tokio::time::Instant::now();
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        http.history.push(Sample {
            at,
            messages_in: (now.0 - last.0) as f64 / elapsed,
            messages_out: (now.1 - last.1) as f64 / elapsed,
            connections: stats.clients_connected.load(Relaxed).max(0),
        });
        last = now;
    }
}
