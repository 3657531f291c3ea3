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
    /// By `deadline >> BUCKET_SHIFT`; never an empty ring.
    buckets: BTreeMap<u64, Ring<V>>,
}

/// A bucket's entries, sorted by (deadline, id). A removed entry stays as a
/// gap (`None`) until it comes to the front or gaps are half the ring: taking
/// one out of the middle would move half the ring (a burst of 10,000 clients
/// that connected together leaves together, and each would move 60 KB).
struct Ring<V> {
    entries: VecDeque<(Millis, u64, Option<V>)>,
    /// How many entries are gaps; the front never is.
    gaps: usize,
}

impl<V> Ring<V> {
    fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            gaps: 0,
        }
    }

    fn insert(&mut self, ms: Millis, id: u64, value: V) {
        let key = (ms, id);
        // Deadlines are mostly armed in order: then it goes at the back.
        let at = match self.entries.back() {
            Some(&(m, i, _)) if (m, i) >= key => {
                self.entries.partition_point(|&(m, i, _)| (m, i) < key)
            }
            _ => self.entries.len(),
        };
        // One entry per key, as in a map: a key armed again (its gap, or its
        // entry) takes the new value.
        if let Some(entry) = self.entries.get_mut(at).filter(|e| (e.0, e.1) == key) {
            if entry.2.is_none() {
                self.gaps -= 1;
            }
            entry.2 = Some(value);
            return;
        }
        self.entries.insert(at, (ms, id, Some(value)));
    }

    fn remove(&mut self, ms: Millis, id: u64) -> Option<V> {
        let at = self
            .entries
            .binary_search_by(|&(m, i, _)| (m, i).cmp(&(ms, id)))
            .ok()?;
        let value = self.entries.get_mut(at)?.2.take()?;
        self.gaps += 1;
        if self.gaps * 2 > self.entries.len() {
            self.entries.retain(|(_, _, v)| v.is_some());
            self.gaps = 0;
        }
        self.close_front();
        Some(value)
    }

    /// Takes out the next entry due by `now`, if there is one.
    fn pop_due(&mut self, now: Millis) -> Option<V> {
        let (ms, _, _) = self.entries.front()?;
        if *ms > now {
            return None;
        }
        let (_, _, value) = self.entries.pop_front()?;
        self.close_front();
        value
    }

    /// Drops the gaps at the front, so that it is a live entry.
    fn close_front(&mut self) {
        while self.entries.front().is_some_and(|(_, _, v)| v.is_none()) {
            self.entries.pop_front();
            self.gaps -= 1;
        }
    }

    fn first(&self) -> Option<Millis> {
        self.entries.front().map(|&(ms, _, _)| ms)
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
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
        ring.first()
    }

    pub(super) fn insert(&mut self, ms: Millis, id: u64, value: V) {
        let ring = self
            .buckets
            .entry(ms >> BUCKET_SHIFT)
            .or_insert_with(Ring::new);
        ring.insert(ms, id, value);
    }

    /// Takes the entry of (`ms`, `id`) out, if it is there.
    pub(super) fn remove(&mut self, ms: Millis, id: u64) -> Option<V> {
        let bucket = ms >> BUCKET_SHIFT;
        let ring = self.buckets.get_mut(&bucket)?;
        let value = ring.remove(ms, id)?;
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
            while let Some(value) = ring.pop_due(now) {
                due.push(value);
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

    /// Entries held, gaps included.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buckets.values().map(|r| r.entries.len()).sum()
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

    #[test]
    fn removed_entries_do_not_pile_up() {
        let mut table = Table::new();
        for k in 0..1000u64 {
            table.insert(100 + k, k, k);
        }
        // Everything but the first and last, out of the middle.
        for k in 1..999u64 {
            assert_eq!(table.remove(100 + k, k), Some(k));
            assert!(table.held() <= 2 * (1000 - k as usize) + 2, "after {k}");
        }
        assert_eq!(table.first(), Some(100));
        assert_eq!(table.remove(100, 0), Some(0));
        assert_eq!(table.first(), Some(1099), "the gaps before it are gone");
        assert_eq!(table.held(), 1);
        assert_eq!(table.take_due(1099), vec![999]);
        assert!(table.is_empty());
    }

    #[test]
    fn a_key_armed_again_has_one_entry_with_the_new_value() {
        let mut table = Table::new();
        table.insert(50, 1, 'a');
        table.insert(60, 2, 'b');
        table.insert(60, 2, 'c');
        assert_eq!(table.held(), 2, "replaced in place");
        assert_eq!(table.remove(60, 2), Some('c'));
        table.insert(60, 2, 'd');
        assert_eq!(table.held(), 2, "its gap taken again");
        assert_eq!(table.remove(60, 2), Some('d'));
        assert_eq!(table.remove(60, 2), None);
        assert_eq!(table.take_due(100), vec!['a']);
        assert!(table.is_empty());
    }
}
