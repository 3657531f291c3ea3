//! Exact per-stream accounting: every (stream, sequence) a subscriber expects is
//! received once, missing, or duplicated. In-order delivery costs O(1) and no
//! memory; gaps are kept as ranges.

use std::collections::BTreeMap;

/// What one subscriber has seen of one stream.
#[derive(Debug, Default, Clone)]
pub(crate) struct SeqTracker {
    /// The next sequence expected in order: everything below it was either
    /// received or is in `gaps`.
    next: u64,
    /// Holes below `next`: start → end (exclusive).
    gaps: BTreeMap<u64, u64>,
    /// Distinct sequences received.
    pub unique: u64,
    /// Sequences received more than once (each extra copy counts).
    pub duplicates: u64,
    /// Sequences that arrived after a later one (they filled a gap).
    pub reordered: u64,
}

impl SeqTracker {
    /// Records the arrival of `seq`.
    #[inline]
    pub(crate) fn record(&mut self, seq: u64) {
        if seq == self.next {
            self.next += 1;
            self.unique += 1;
        } else if seq > self.next {
            self.gaps.insert(self.next, seq);
            self.next = seq.saturating_add(1);
            self.unique += 1;
        } else {
            self.record_old(seq);
        }
    }

    #[cold]
    fn record_old(&mut self, seq: u64) {
        let hole = self.gaps.range(..=seq).next_back().map(|(&s, &e)| (s, e));
        match hole {
            Some((start, end)) if seq < end => {
                self.gaps.remove(&start);
                if start < seq {
                    self.gaps.insert(start, seq);
                }
                if seq + 1 < end {
                    self.gaps.insert(seq + 1, end);
                }
                self.unique += 1;
                self.reordered += 1;
            }
            _ => self.duplicates += 1,
        }
    }

    /// Sequences `0..published` never received.
    pub(crate) fn missing(&self, published: u64) -> u64 {
        let holes: u64 = self
            .gaps
            .iter()
            .map(|(&s, &e)| e.min(published).saturating_sub(s))
            .sum();
        holes + published.saturating_sub(self.next)
    }

    /// Distinct sequences received at or above `published` (never published: corrupt).
    pub(crate) fn beyond(&self, published: u64) -> u64 {
        if self.next <= published {
            return 0;
        }
        let span = self.next - published;
        let holes: u64 = self
            .gaps
            .iter()
            .map(|(&s, &e)| e.saturating_sub(s.max(published)))
            .sum();
        span - holes.min(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_needs_no_gaps() {
        let mut t = SeqTracker::default();
        (0..10).for_each(|i| t.record(i));
        assert_eq!((t.unique, t.duplicates, t.reordered), (10, 0, 0));
        assert!(t.gaps.is_empty());
        assert_eq!(t.missing(10), 0);
        assert_eq!(t.missing(12), 2);
        assert_eq!(t.beyond(10), 0);
    }

    #[test]
    fn gaps_duplicates_and_reordering() {
        let mut t = SeqTracker::default();
        [0, 1, 5, 6, 3, 3, 0, 9]
            .into_iter()
            .for_each(|i| t.record(i));
        // unique 0 1 3 5 6 9; duplicates 3 and 0; 3 filled a gap
        assert_eq!((t.unique, t.duplicates, t.reordered), (6, 2, 1));
        assert_eq!(t.missing(10), 4); // 2 4 7 8
        assert_eq!(t.beyond(10), 0);
        assert_eq!(t.beyond(9), 1);
        [2, 4, 7, 8].into_iter().for_each(|i| t.record(i));
        assert_eq!(t.missing(10), 0);
        assert!(t.gaps.is_empty());
    }
}
