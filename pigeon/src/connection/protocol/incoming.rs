//! Incoming QoS 2: the packet ids of PUBLISHes accepted (PUBREC sent) whose
//! PUBREL has not come yet, and the broker's Receive Maximum over them.

use pigeon_codec::{QoS, ReasonCode};

use super::ids::IdSet;
use crate::connection::Exit;

/// The QoS 2 exchanges a client has open with the broker.
#[derive(Debug, Default)]
pub(crate) struct Incoming {
    /// Made on the first QoS 2 PUBLISH and kept (most clients send none:
    /// one word instead of the set's four in every connection).
    ids: Option<Box<IdSet>>,
}

impl Incoming {
    /// `open`: the ids a resumed session still awaits PUBREL for.
    pub(crate) fn new(open: impl IntoIterator<Item = u16>) -> Self {
        Self {
            ids: Some(Box::new(open.into_iter().collect::<IdSet>())).filter(|ids| !ids.is_empty()),
        }
    }

    /// Whether this PUBLISH is a resend of a QoS 2 message already accepted:
    /// it is acknowledged again, not delivered again.
    pub(crate) fn is_resend(&self, qos: QoS, packet_id: u16) -> bool {
        qos == QoS::ExactlyOnce
            && self
                .ids
                .as_ref()
                .is_some_and(|ids| ids.contains(&packet_id))
    }

    /// `Err` when a new MQTT 5.0 QoS 2 PUBLISH exceeds the broker's Receive
    /// Maximum, `max` (announced in CONNACK: the broker's setting, so each
    /// connection need not keep it).
    /// QoS 1 is acknowledged before the next packet is read, so only QoS 2
    /// exchanges awaiting PUBREL count against it (3.x has no such limit).
    pub(crate) fn check_room(&self, qos: QoS, v5: bool, max: u16) -> Result<(), Exit> {
        if qos == QoS::ExactlyOnce && v5 && self.open() >= usize::from(max) {
            return Err(Exit::Violation(
                ReasonCode::ReceiveMaximumExceeded,
                format!("more than {max} QoS 2 messages unacknowledged"),
            ));
        }
        Ok(())
    }

    /// A routed PUBLISH is acknowledged with `code`: a QoS 2 one opens an
    /// exchange, unless an MQTT 5.0 refusing PUBREC ends it (no PUBREL comes).
    pub(crate) fn accept(&mut self, qos: QoS, packet_id: u16, code: ReasonCode, v5: bool) {
        if qos == QoS::ExactlyOnce && !(v5 && code.is_error()) {
            self.ids
                .get_or_insert_with(Default::default)
                .insert(packet_id);
        }
    }

    /// PUBREL for `packet_id` closes its exchange; false when none was open.
    pub(crate) fn release(&mut self, packet_id: u16) -> bool {
        self.ids.as_mut().is_some_and(|ids| ids.remove(&packet_id))
    }

    /// The open exchanges, for a session that outlives the connection.
    pub(crate) fn take_all(&mut self) -> Vec<u16> {
        self.ids
            .as_mut()
            .map_or_else(Vec::new, |ids| ids.drain().collect())
    }

    /// Exchanges open.
    fn open(&self) -> usize {
        self.ids.as_ref().map_or(0, |ids| ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<(), Exit>) -> Option<ReasonCode> {
        match result {
            Ok(()) => None,
            Err(Exit::Violation(code, _)) => Some(code),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn receive_maximum_counts_open_qos2_exchanges_only() {
        let mut incoming = Incoming::new([7]);
        assert!(incoming.is_resend(QoS::ExactlyOnce, 7), "restored");
        assert!(
            !incoming.is_resend(QoS::AtLeastOnce, 7),
            "QoS 1 is never a resend"
        );
        incoming.accept(QoS::ExactlyOnce, 8, ReasonCode::Success, true);
        assert_eq!(
            code(incoming.check_room(QoS::ExactlyOnce, true, 2)),
            Some(ReasonCode::ReceiveMaximumExceeded)
        );
        assert_eq!(code(incoming.check_room(QoS::AtLeastOnce, true, 2)), None);
        assert_eq!(
            code(incoming.check_room(QoS::ExactlyOnce, false, 2)),
            None,
            "3.x"
        );
        assert!(incoming.release(7));
        assert!(!incoming.release(7), "closed once");
        assert_eq!(code(incoming.check_room(QoS::ExactlyOnce, true, 2)), None);
    }

    #[test]
    fn a_refusing_pubrec_opens_no_exchange_but_on_3x() {
        let mut incoming = Incoming::new([]);
        incoming.accept(QoS::ExactlyOnce, 1, ReasonCode::QuotaExceeded, true);
        assert!(!incoming.is_resend(QoS::ExactlyOnce, 1));
        incoming.accept(QoS::ExactlyOnce, 2, ReasonCode::NoMatchingSubscribers, true);
        assert!(incoming.is_resend(QoS::ExactlyOnce, 2), "0x10 is no error");
        incoming.accept(QoS::ExactlyOnce, 3, ReasonCode::QuotaExceeded, false);
        assert!(
            incoming.is_resend(QoS::ExactlyOnce, 3),
            "3.x PUBREC is success"
        );
        incoming.accept(QoS::AtLeastOnce, 4, ReasonCode::Success, true);
        assert!(!incoming.release(4), "QoS 1 opens nothing");
        let mut open = incoming.take_all();
        open.sort_unstable();
        assert_eq!(open, [2, 3]);
    }
}
