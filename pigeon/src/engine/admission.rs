//! Connections open at once against `max_connections` (broker-wide and per
//! listener), counted by RAII slots so that every exit path releases its count.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

/// A counter of open connections with a limit (0 = none).
#[derive(Debug)]
pub(crate) struct ConnectionCount {
    open: AtomicUsize,
    limit: usize,
}

/// One counted connection; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct Slot(Arc<ConnectionCount>);

impl ConnectionCount {
    /// A counter allowing `limit` connections (0: any number).
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            limit,
        })
    }

    /// A slot, or `None` when `limit` connections are already open.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let limit = self.limit;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (limit == 0 || open < limit).then_some(open + 1)
            })
            .ok()?;
        Some(Slot(self.clone()))
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The limit (0: none).
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_refused_at_the_limit_and_given_back_on_drop() {
        let count = ConnectionCount::new(2);
        let a = count.try_acquire().expect("first");
        let b = count.try_acquire().expect("second");
        assert!(count.try_acquire().is_none());
        drop(a);
        assert_eq!(count.open(), 1);
        let c = count.try_acquire().expect("a released place is free again");
        drop((b, c));
        assert_eq!(count.open(), 0);
    }

    #[test]
    fn zero_means_no_limit() {
        let count = ConnectionCount::new(0);
        let slots: Vec<_> = (0..1000).filter_map(|_| count.try_acquire()).collect();
        assert_eq!(slots.len(), 1000);
    }
}
