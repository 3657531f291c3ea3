use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::Stats;

/// The broker's live counters (relaxed atomics: they are statistics).
#[derive(Default)]
pub struct Counters {
    pub clients_connected: AtomicI64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub retained: AtomicI64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self, subscriptions: usize) -> Stats {
        Stats {
            clients_connected: self.clients_connected.load(Relaxed).max(0) as u64,
            messages_received: self.messages_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_dropped: self.messages_dropped.load(Relaxed),
            retained: self.retained.load(Relaxed).max(0) as u64,
            subscriptions: subscriptions as u64,
        }
    }
}
