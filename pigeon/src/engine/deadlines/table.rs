//! The armed deadlines, in order: buckets of about a second, each a sorted
//! ring of entries, instead of one B-tree of every entry.
//!
//! Why not a `BTreeMap` of the entries: its nodes (280 and 376 bytes, about
//! six entries a leaf when deadlines are armed in order) are made as
//! clients connect, beside their 320-byte `Connection` boxes, in the same
//! allocator size class. A connection that parks frees its box; the node
//! stays, and keeps the whole slab of boxes around it from being returned.
//! At 10,000 idle clients, 1,637 leaves held 203 slabs of 20 KiB: 4.1 MB of
//! RSS, 410 bytes a client (`bench/connections.sh`). A bucket's ring grows
//! by doubling (24 bytes an entry), so its blocks are never in those
//! classes, and a big one is whole pages.

use std::collections::{BTreeMap, VecDeque};

/// A deadline, in milliseconds since the watch's origin.
pub(super) type Millis = u64;

/// Milliseconds in a bucket, as a shift: 1024 ms.
const BUCKET_SHIFT: u32 = 10;

/// Deadlines with a value each, keyed by (deadline, id); ids are unique.
pub(super) struct Table<V> {
    /// By `deadline >> BUCKET_SHIFT`; each ring sorted by (deadline, id) and
    /// never empty.
    buckets: BTreeMap<u64, VecDeque<(Millis, u64, V)>>,
}

impl<V> Table<V> {
    pub(super) fn new() -> Self {
        Self {
            buckets: BTreeMap::new(),
        }
    }

    /// The earliest deadline.
    pub(super) fn first(&self) -> Option<Millis> {
        let (_, ring) = self.buckets.first_key_value()?;
        ring.front().map(|&(ms, _, _)| ms)
    }

    pub(super) fn insert(&mut self, ms: Millis, id: u64, value: V) {
        let ring = self.buckets.entry(ms >> BUCKET_SHIFT).or_default();
        // Deadlines are mostly armed in order: the search ends at the back.
        let at = ring.partition_point(|&(m, i, _)| (m, i) < (ms, id));
        ring.insert(at, (ms, id, value));
    }

    /// Takes the entry of (`ms`, `id`) out, if it is there.
    pub(super) fn remove(&mut self, ms: Millis, id: u64) -> Option<V> {
        let bucket = ms >> BUCKET_SHIFT;
        let ring = self.buckets.get_mut(&bucket)?;
        let at = ring
            .binary_search_by(|&(m, i, _)| (m, i).cmp(&(ms, id)))
            .ok()?;
        let (_, _, value) = ring.remove(at)?;
        if ring.is_empty() {
            self.buckets.remove(&bucket);
        }
        Some(value)
    }

    /// Takes out every entry due by `now` (its deadline ≤ `now`), earliest
    /// first.
    pub(super) fn take_due(&mut self, now: Millis) -> Vec<V> {
        let mut due = Vec::new();
        while let Some(mut first) = self.buckets.first_entry() {
            let ring = first.get_mut();
            while ring.front().is_some_and(|&(ms, _, _)| ms <= now) {
                if let Some((_, _, value)) = ring.pop_front() {
                    due.push(value);
                }
            }
            if !ring.is_empty() {
                break;
            }
            first.remove();
        }
        due
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_by_deadline_then_id_across_buckets() {
        let mut table = Table::new();
        for (ms, id) in [
            (5000, 2),
            (10, 1),
            (5000, 1),
            (1023, 9),
            (1024, 3),
            (99_999, 4),
        ] {
            table.insert(ms, id, (ms, id));
        }
        assert_eq!(table.first(), Some(10));
        assert_eq!(table.take_due(9), vec![]);
        assert_eq!(table.take_due(1024), vec![(10, 1), (1023, 9), (1024, 3)]);
        assert_eq!(table.first(), Some(5000));
        assert_eq!(table.take_due(6000), vec![(5000, 1), (5000, 2)]);
        assert_eq!(table.take_due(u64::MAX), vec![(99_999, 4)]);
        assert!(table.is_empty() && table.first().is_none());
    }

    #[test]
    fn a_removed_entry_is_gone_and_its_empty_bucket_too() {
        let mut table = Table::new();
        table.insert(3000, 1, 'a');
        table.insert(3000, 2, 'b');
        table.insert(70, 3, 'c');
        assert_eq!(table.remove(3000, 1), Some('a'));
        assert_eq!(table.remove(3000, 1), None, "only once");
        assert_eq!(table.remove(3001, 2), None, "another deadline");
        assert_eq!(table.remove(70, 3), Some('c'));
        assert_eq!(table.first(), Some(3000), "its bucket is gone");
        assert_eq!(table.remove(3000, 2), Some('b'));
        assert!(table.is_empty());
    }

    #[test]
    fn out_of_order_inserts_are_kept_sorted() {
        let mut table = Table::new();
        let mut expected = Vec::new();
        // A fixed, scrambled order of deadlines within and across buckets.
        for k in 0..500u64 {
            let ms = (k * 7919) % 4099;
            table.insert(ms, k, (ms, k));
            expected.push((ms, k));
        }
        expected.sort();
        let (gone, kept): (Vec<_>, Vec<_>) = expected.iter().partition(|(_, k)| k % 3 == 0);
        for &(ms, k) in &gone {
            assert_eq!(table.remove(ms, k), Some((ms, k)));
        }
        assert_eq!(table.take_due(u64::MAX), kept);
    }
}
