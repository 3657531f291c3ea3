//! The outbound in-flight window: QoS 1/2 deliveries sent and not yet
//! acknowledged, found by packet id in O(1) and kept in send order (a resumed
//! session resends them in that order, with DUP).
//!
//! Packet ids are allocated one after another, so what is in flight is mostly
//! a run of consecutive ids. The run lives in a ring indexed by an id's
//! distance from the oldest id in it: a push, a lookup and an ack are a
//! subtraction and an index, no hashing (the hash map with send-order links
//! this replaces was some 7% of a QoS 1 fan-out profile). An ack leaves a hole
//! until the holes before it are gone. What does not fit the run (entries
//! restored with ids out of sequence, or an old entry the client leaves
//! unacknowledged while the run moves on) goes to `spill`: older than all of
//! the ring, in send order, found by a scan, and no larger than the window.

use std::collections::VecDeque;

use pigeon_codec::QoS;

use crate::model::Inflight;

/// Packet ids run from 1 to 65535: 0 is not one.
const IDS: usize = u16::MAX as usize;
/// The ring never spans more ids than this, so two of its slots can never
/// stand for one id (the ids wrap at 65535).
const MAX_SPAN: usize = IDS / 2;
/// Holes a ring may hold beyond as many as its entries before the oldest
/// entries move to `spill` (memory stays proportional to what is in flight).
const SLACK: usize = 16;

/// The deliveries in flight to one client.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Slot `i` holds the entry of id `first + i` (wrapping past 0), if in flight.
    ring: VecDeque<Option<Inflight>>,
    /// The id of the ring's first slot (always an entry, unless it is empty).
    first: u16,
    /// Entries in the ring (at most one per packet id: a `u16` holds them,
    /// and keeps the window, which every connection holds, a word smaller).
    live: u16,
    /// Entries sent before every entry of the ring, oldest first. Boxed and
    /// made on first use: most windows never spill, and every connection
    /// pays for this struct (one word instead of three).
    #[allow(clippy::box_collection)] // the box is the point: one word, not three
    spill: Option<Box<Vec<Inflight>>>,
    /// Entries the client lets the broker have in flight (its Receive Maximum,
    /// capped by `max_inflight`).
    max: u16,
    /// The packet id allocated last.
    last_id: u16,
}

impl Window {
    /// An empty window of `max` entries (at least 1).
    pub(crate) fn new(max: u16) -> Self {
        Self {
            max: max.max(1),
            ..Self::default()
        }
    }

    /// The spilled entries, oldest first.
    fn spilled(&self) -> &[Inflight] {
        self.spill.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Entries in flight.
    pub(crate) fn len(&self) -> usize {
        self.live as usize + self.spilled().len()
    }

    /// Deliveries that may be sent before the window is full (a resumed
    /// session may hold more than the client now allows: none then).
    pub(crate) fn free_slots(&self) -> usize {
        usize::from(self.max).saturating_sub(self.len())
    }

    /// The next packet id after the last one that is not in flight. The
    /// window is far smaller than the 65535 ids, so this ends after a few
    /// lookups at most.
    pub(crate) fn allocate_id(&mut self) -> u16 {
        debug_assert!(self.len() < IDS, "every id in flight");
        loop {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            if self.get(self.last_id).is_none() {
                return self.last_id;
            }
        }
    }

    /// Appends an entry (a delivery just sent, or one a resumed session
    /// had in flight). An entry already under its id is replaced, which only
    /// state restored from elsewhere could cause: ids in flight are unique.
    pub(crate) fn push(&mut self, entry: Inflight) {
        let id = entry.packet_id;
        if self.get(id).is_some() {
            tracing::debug!(
                packet_id = id,
                "two in-flight entries with one id; kept the last"
            );
            self.remove(id);
        }
        if self.ring.is_empty() {
            self.first = id;
        }
        let at = self.offset(id);
        // Ahead of the run, with no more holes than the ring may keep: the
        // usual case is `at == len` (the id allocated right after the last).
        if at < self.ring.len() || at > self.ring.len() + self.live as usize + SLACK {
            // Out of sequence: everything in the ring was sent before it.
            self.spill_all();
            self.first = id;
            self.ring.push_back(Some(entry));
        } else {
            if at > self.ring.len() {
                // Holes for ids skipped (in flight in `spill`, say).
                self.ring.resize_with(at, || None);
            }
            self.ring.push_back(Some(entry));
        }
        self.live += 1;
        self.compact();
    }

    /// The ring's slot for `id` when it holds that entry. The id is compared
    /// too: only 0, which is no packet id (restored from a bad record), could
    /// share a slot with another id (65535).
    fn slot(&self, id: u16) -> Option<usize> {
        let at = self.offset(id);
        let held = self.ring.get(at)?.as_ref()?;
        (held.packet_id == id).then_some(at)
    }

    /// The entry under `id`, if any.
    pub(crate) fn get(&self, id: u16) -> Option<&Inflight> {
        match self.slot(id) {
            Some(at) => self.ring.get(at)?.as_ref(),
            None => self.spilled().iter().find(|e| e.packet_id == id),
        }
    }

    fn get_mut(&mut self, id: u16) -> Option<&mut Inflight> {
        match self.slot(id) {
            Some(at) => self.ring.get_mut(at)?.as_mut(),
            None => (self.spill.as_deref_mut()?.iter_mut()).find(|e| e.packet_id == id),
        }
    }

    /// Takes the entry under `id` out of the window.
    pub(crate) fn remove(&mut self, id: u16) -> Option<Inflight> {
        if let Some(at) = self.slot(id) {
            let entry = self.ring.get_mut(at).and_then(Option::take);
            self.live -= 1;
            self.trim();
            return entry;
        }
        let spill = self.spill.as_deref_mut()?;
        let at = spill.iter().position(|e| e.packet_id == id)?;
        Some(spill.remove(at))
    }

    /// Removes the entry a PUBACK (QoS 1) or PUBCOMP (QoS 2) for `id` ends:
    /// a QoS 1 delivery, or a QoS 2 one already released (PUBREL sent).
    pub(crate) fn complete(&mut self, id: u16, qos: QoS) -> Option<Inflight> {
        let entry = self.get(id)?;
        let ends = entry.delivery.qos == qos && (qos == QoS::AtLeastOnce || entry.released);
        if ends {
            self.remove(id)
        } else {
            None
        }
    }

    /// Whether `id` is a QoS 2 delivery waiting for its PUBREC.
    pub(crate) fn awaits_pubrec(&self, id: u16) -> bool {
        self.get(id)
            .is_some_and(|e| e.delivery.qos == QoS::ExactlyOnce && !e.released)
    }

    /// Marks `id` released: PUBREL is sent, PUBCOMP is awaited.
    pub(crate) fn release(&mut self, id: u16) {
        if let Some(entry) = self.get_mut(id) {
            entry.released = true;
        }
    }

    /// The entries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Inflight> + '_ {
        self.spilled().iter().chain(self.ring.iter().flatten())
    }

    /// Empties the window, oldest first (the packet-id counter stays).
    pub(crate) fn take_all(&mut self) -> Vec<Inflight> {
        let mut all = self.spill.take().map_or_else(Vec::new, |spill| *spill);
        all.extend(self.ring.drain(..).flatten());
        self.live = 0;
        all
    }

    /// How far `id` is from the ring's first id, counting up and wrapping
    /// from 65535 to 1.
    fn offset(&self, id: u16) -> usize {
        let (id, first) = (usize::from(id), usize::from(self.first));
        (id + IDS - first) % IDS
    }

    /// Drops the holes at both ends of the ring (usually the one an ack of
    /// the oldest entry just left). Popped one by one: `drain` of the front
    /// cost more instructions per ack in a fan-out under callgrind.
    fn trim(&mut self) {
        while self.ring.front().is_some_and(Option::is_none) {
            self.ring.pop_front();
            self.first = self.first.checked_add(1).unwrap_or(1);
        }
        while self.ring.back().is_some_and(Option::is_none) {
            self.ring.pop_back();
        }
    }

    /// Moves the oldest entries to `spill` while the ring is mostly holes
    /// (an entry the client does not acknowledge, with many sent after it)
    /// or spans too many ids.
    fn compact(&mut self) {
        while self.ring.len() > 2 * self.live as usize + SLACK || self.ring.len() > MAX_SPAN {
            if let Some(Some(entry)) = self.ring.pop_front() {
                self.live -= 1;
                self.spill.get_or_insert_with(Default::default).push(entry);
            }
            self.first = self.first.checked_add(1).unwrap_or(1);
            self.trim();
        }
    }

    /// Moves every entry of the ring to `spill`, in order.
    fn spill_all(&mut self) {
        if self.live == 0 {
            // Holes only: nothing to move, no box to make.
            self.ring.clear();
        } else {
            let spill = self.spill.get_or_insert_with(Default::default);
            spill.extend(self.ring.drain(..).flatten());
        }
        self.live = 0;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use pigeon_codec::Publish;

    use super::*;
    use crate::model::{Delivery, Message};

    pub(crate) fn entry(packet_id: u16, qos: QoS) -> Inflight {
        let message = Message::new(Publish::new("t", qos, "x"), None);
        Inflight {
            packet_id,
            delivery: Delivery::new(message, qos, false),
            released: false,
        }
    }

    fn ids(window: &Window) -> Vec<u16> {
        window.iter().map(|e| e.packet_id).collect()
    }

    #[test]
    fn keeps_send_order_through_removals_anywhere() {
        let mut w = Window::new(10);
        for id in 1..=5 {
            w.push(entry(id, QoS::AtLeastOnce));
        }
        assert_eq!(w.remove(3).map(|e| e.packet_id), Some(3), "middle");
        assert_eq!(w.remove(1).map(|e| e.packet_id), Some(1), "head");
        assert_eq!(w.remove(5).map(|e| e.packet_id), Some(5), "tail");
        assert!(w.remove(5).is_none(), "gone");
        assert_eq!(ids(&w), [2, 4]);
        w.push(entry(9, QoS::AtLeastOnce));
        assert_eq!(ids(&w), [2, 4, 9]);
        assert_eq!(
            w.take_all().iter().map(|e| e.packet_id).collect::<Vec<_>>(),
            [2, 4, 9]
        );
        assert_eq!((w.len(), w.ring.len(), w.spilled().len()), (0, 0, 0));
    }

    #[test]
    fn a_duplicate_id_replaces_the_older_entry() {
        let mut w = Window::new(10);
        w.push(entry(1, QoS::AtLeastOnce));
        w.push(entry(2, QoS::AtLeastOnce));
        w.push(entry(1, QoS::ExactlyOnce));
        assert_eq!(ids(&w), [2, 1]);
        assert_eq!(w.get(1).map(|e| e.delivery.qos), Some(QoS::ExactlyOnce));
    }

    #[test]
    fn allocation_skips_ids_in_flight_and_zero() {
        let mut w = Window::new(10);
        w.push(entry(1, QoS::AtLeastOnce));
        w.push(entry(2, QoS::AtLeastOnce));
        assert_eq!(w.allocate_id(), 3);
        w.last_id = u16::MAX - 1;
        assert_eq!(w.allocate_id(), u16::MAX);
        assert_eq!(w.allocate_id(), 3, "wraps past 0 and the ids in flight");
    }

    #[test]
    fn free_slots_count_down_to_zero_and_no_further() {
        let mut w = Window::new(2);
        assert_eq!(w.free_slots(), 2);
        for id in 1..=3 {
            w.push(entry(id, QoS::AtLeastOnce)); // a resumed session may hold more
        }
        assert_eq!(w.free_slots(), 0);
        assert_eq!(Window::new(0).free_slots(), 1, "at least one");
    }

    #[test]
    fn completion_matches_qos_and_release() {
        let mut w = Window::new(10);
        w.push(entry(1, QoS::AtLeastOnce));
        w.push(entry(2, QoS::ExactlyOnce));
        assert!(
            w.complete(1, QoS::ExactlyOnce).is_none(),
            "PUBCOMP for QoS 1"
        );
        assert!(
            w.complete(2, QoS::ExactlyOnce).is_none(),
            "PUBCOMP before PUBREL"
        );
        assert!(
            w.complete(2, QoS::AtLeastOnce).is_none(),
            "PUBACK for QoS 2"
        );
        assert!(w.awaits_pubrec(2));
        w.release(2);
        assert!(!w.awaits_pubrec(2));
        assert!(w.complete(2, QoS::ExactlyOnce).is_some());
        assert!(w.complete(1, QoS::AtLeastOnce).is_some());
        assert_eq!(w.len(), 0);
    }

    /// Sends one delivery with the next id, as the connection does.
    fn send(w: &mut Window) -> u16 {
        let id = w.allocate_id();
        w.push(entry(id, QoS::AtLeastOnce));
        id
    }

    #[test]
    fn an_entry_left_unacknowledged_moves_aside_and_keeps_its_place() {
        let mut w = Window::new(10);
        let stuck = send(&mut w);
        for _ in 0..500 {
            let id = send(&mut w);
            assert!(w.complete(id, QoS::AtLeastOnce).is_some());
            assert!(
                w.ring.len() <= 2 * w.live as usize + SLACK,
                "holes stay bounded"
            );
        }
        let next = send(&mut w);
        assert_eq!(w.spilled().len(), 1, "the old entry left the ring");
        assert_eq!(ids(&w), [stuck, next], "still the oldest");
        assert!(w.get(stuck).is_some() && w.get(next).is_some());
        assert!(w.complete(stuck, QoS::AtLeastOnce).is_some());
        assert_eq!(ids(&w), [next]);
    }

    #[test]
    fn restored_ids_out_of_sequence_keep_their_order() {
        let mut w = Window::new(10);
        for id in [500, 3, 70, 4, 65535, 1] {
            w.push(entry(id, QoS::AtLeastOnce));
        }
        assert_eq!(ids(&w), [500, 3, 70, 4, 65535, 1]);
        for id in [500, 3, 70, 4, 65535, 1] {
            assert_eq!(w.get(id).map(|e| e.packet_id), Some(id));
        }
        assert!(w.get(2).is_none() && w.get(71).is_none());
        let new = send(&mut w);
        assert_eq!(
            new, 2,
            "after the last allocated (0), skipping ids in flight"
        );
        assert_eq!(w.remove(70).map(|e| e.packet_id), Some(70));
        assert_eq!(ids(&w), [500, 3, 4, 65535, 1, 2]);
    }

    #[test]
    fn ids_wrap_past_65535_to_1() {
        let mut w = Window::new(10);
        w.last_id = u16::MAX - 3;
        let sent: Vec<u16> = (0..8).map(|_| send(&mut w)).collect();
        assert_eq!(sent, [65533, 65534, 65535, 1, 2, 3, 4, 5]);
        assert_eq!(w.spilled().len(), 0, "one run across the wrap");
        assert!(w.complete(65535, QoS::AtLeastOnce).is_some());
        assert!(w.complete(1, QoS::AtLeastOnce).is_some());
        assert_eq!(ids(&w), [65533, 65534, 2, 3, 4, 5]);
        for id in [65533, 65534, 2, 3, 4, 5] {
            assert!(w.complete(id, QoS::AtLeastOnce).is_some(), "{id}");
        }
        assert_eq!((w.len(), w.ring.len()), (0, 0));
    }

    /// The window against a plain list in send order, through a long
    /// deterministic mix of sends, acks in any order, unknown acks and
    /// restored entries.
    #[test]
    fn behaves_as_a_list_in_send_order() {
        let mut w = Window::new(64);
        let mut model: Vec<u16> = Vec::new();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..20_000 {
            let roll = next() % 100;
            if roll < 50 && model.len() < 64 {
                model.push(send(&mut w));
            } else if roll < 90 && !model.is_empty() {
                // Mostly the oldest, as clients do; sometimes any.
                let at = if next() % 4 == 0 {
                    next() as usize % model.len()
                } else {
                    0
                };
                let id = model.remove(at);
                assert_eq!(
                    w.complete(id, QoS::AtLeastOnce).map(|e| e.packet_id),
                    Some(id)
                );
            } else if roll < 95 {
                let id = (next() % 65535 + 1) as u16;
                let known = model.contains(&id);
                assert_eq!(w.remove(id).is_some(), known, "step {step}: id {id}");
                model.retain(|m| *m != id);
            } else if model.len() < 64 {
                let id = (next() % 65535 + 1) as u16;
                model.retain(|m| *m != id);
                model.push(id);
                w.push(entry(id, QoS::AtLeastOnce));
            }
            assert_eq!(ids(&w), model, "step {step}");
            assert_eq!(w.len(), model.len());
            assert!(w.ring.len() <= 2 * w.live as usize + SLACK);
        }
    }

    #[test]
    fn id_0_from_a_bad_record_is_not_taken_for_65535() {
        let mut w = Window::new(10);
        w.push(entry(65535, QoS::AtLeastOnce));
        w.push(entry(0, QoS::ExactlyOnce));
        assert_eq!(ids(&w), [65535, 0]);
        assert_eq!(w.get(65535).map(|e| e.delivery.qos), Some(QoS::AtLeastOnce));
        assert_eq!(w.get(0).map(|e| e.delivery.qos), Some(QoS::ExactlyOnce));
        assert!(w.remove(0).is_some() && w.remove(65535).is_some());
        assert_eq!(w.len(), 0);
    }
}
