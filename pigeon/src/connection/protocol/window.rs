//! The outbound in-flight window: QoS 1/2 deliveries sent and not yet
//! acknowledged, found by packet id in O(1) and kept in send order (a resumed
//! session resends them in that order, with DUP).
//!
//! The entries live in a map keyed by packet id, linked to each other in send
//! order: an ack removes its entry from the middle of the order without a
//! scan, and packet-id allocation asks the map, not the whole window.

use pigeon_codec::QoS;

use super::ids::IdMap;
use crate::model::Inflight;

/// An entry and its neighbours in send order.
#[derive(Debug)]
struct Node {
    entry: Inflight,
    prev: Option<u16>,
    next: Option<u16>,
}

/// The deliveries in flight to one client.
#[derive(Debug, Default)]
pub(crate) struct Window {
    nodes: IdMap<Node>,
    /// The oldest and the newest entry.
    head: Option<u16>,
    tail: Option<u16>,
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

    /// Entries in flight.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Deliveries that may be sent before the window is full (a resumed
    /// session may hold more than the client now allows: none then).
    pub(crate) fn free_slots(&self) -> usize {
        usize::from(self.max).saturating_sub(self.len())
    }

    /// The next packet id after the last one that is not in flight. The
    /// window is far smaller than the 65535 ids, so this ends after a few
    /// map lookups at most.
    pub(crate) fn allocate_id(&mut self) -> u16 {
        debug_assert!(self.len() < usize::from(u16::MAX), "every id in flight");
        loop {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            if !self.nodes.contains_key(&self.last_id) {
                return self.last_id;
            }
        }
    }

    /// Appends an entry (a delivery just sent, or one a resumed session
    /// had in flight). An entry already under its id is replaced, which only
    /// state restored from elsewhere could cause: ids in flight are unique.
    pub(crate) fn push(&mut self, entry: Inflight) {
        let id = entry.packet_id;
        if self.nodes.contains_key(&id) {
            tracing::debug!(
                packet_id = id,
                "two in-flight entries with one id; kept the last"
            );
            self.remove(id);
        }
        if let Some(tail) = self.tail.and_then(|t| self.nodes.get_mut(&t)) {
            tail.next = Some(id);
        }
        let node = Node {
            entry,
            prev: self.tail,
            next: None,
        };
        self.nodes.insert(id, node);
        self.head = self.head.or(Some(id));
        self.tail = Some(id);
    }

    /// The entry under `id`, if any.
    pub(crate) fn get(&self, id: u16) -> Option<&Inflight> {
        self.nodes.get(&id).map(|n| &n.entry)
    }

    /// Takes the entry under `id` out of the window.
    pub(crate) fn remove(&mut self, id: u16) -> Option<Inflight> {
        let node = self.nodes.remove(&id)?;
        match node.prev.and_then(|p| self.nodes.get_mut(&p)) {
            Some(prev) => prev.next = node.next,
            None => self.head = node.next,
        }
        match node.next.and_then(|n| self.nodes.get_mut(&n)) {
            Some(next) => next.prev = node.prev,
            None => self.tail = node.prev,
        }
        Some(node.entry)
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
        if let Some(node) = self.nodes.get_mut(&id) {
            node.entry.released = true;
        }
    }

    /// The entries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Inflight> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(&at?)?;
            at = node.next;
            Some(&node.entry)
        })
    }

    /// Empties the window, oldest first (the packet-id counter stays).
    pub(crate) fn take_all(&mut self) -> Vec<Inflight> {
        let mut all = Vec::with_capacity(self.len());
        while let Some(entry) = self.head.and_then(|id| self.remove(id)) {
            all.push(entry);
        }
        all
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
        assert_eq!((w.len(), w.head, w.tail), (0, None, None));
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
}
