//! What to answer to acknowledgements and to the PUBLISHes that need one:
//! the decisions of the QoS 1/2 flows, with the spec's answers to unknown
//! packet ids. The connection writes the packets these return.

use pigeon_codec::{Packet, PacketType, PubReply, QoS, ReasonCode};

use super::State;
use crate::model::Inflight;

/// The answer to a PUBREC from the client.
#[derive(Debug)]
pub(crate) enum PubRecAnswer {
    /// The delivery is released: send PUBREL (success); PUBCOMP is awaited.
    Release,
    /// MQTT 5.0: the client refused the message; the exchange ends here, the
    /// entry is out of the window and nothing is sent.
    Refused(Inflight),
    /// No delivery awaits this PUBREC: send PUBREL with this code anyway, so
    /// that the client can finish (0x92 for MQTT 5.0, success for 3.x).
    Unknown(ReasonCode),
}

impl State {
    /// The code that answers an ack for a packet id the broker does not know.
    fn not_found(&self) -> ReasonCode {
        if self.version.is_v5() {
            ReasonCode::PacketIdentifierNotFound
        } else {
            ReasonCode::Success
        }
    }

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) from the client: the delivery it
    /// ends, out of the window; `None` for an unknown id, which is ignored
    /// (nothing answers an ack).
    pub(crate) fn on_completion(&mut self, packet_id: u16, qos: QoS) -> Option<Inflight> {
        self.window.complete(packet_id, qos)
    }

    /// PUBREC from the client for a QoS 2 delivery.
    pub(crate) fn on_pubrec(&mut self, packet_id: u16, code: ReasonCode) -> PubRecAnswer {
        if !self.window.awaits_pubrec(packet_id) {
            return PubRecAnswer::Unknown(self.not_found());
        }
        if code.is_error() {
            return match self.window.remove(packet_id) {
                Some(entry) => PubRecAnswer::Refused(entry),
                None => PubRecAnswer::Unknown(self.not_found()),
            };
        }
        self.window.release(packet_id);
        PubRecAnswer::Release
    }

    /// PUBREL from the client: the PUBCOMP to send, even for an id the broker
    /// does not know, so the client can finish (spec 4.3.3).
    pub(crate) fn on_pubrel(&mut self, packet_id: u16) -> PubReply {
        let code = if self.incoming.release(packet_id) {
            ReasonCode::Success
        } else {
            self.not_found()
        };
        PubReply::with_reason(packet_id, code)
    }

    /// The kind of the PUBACK / PUBREC for an incoming PUBLISH of `qos` when
    /// it carries nothing but its packet id (every 3.x one, and success in
    /// 5.0, whose reason string is dropped), for the codec to write without a
    /// packet built; none for QoS 0, or for an ack [`State::publish_ack`]
    /// must build.
    pub(crate) fn bare_publish_ack(&self, qos: QoS, code: ReasonCode) -> Option<PacketType> {
        if self.version.is_v5() && code != ReasonCode::Success {
            return None;
        }
        match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(PacketType::PubAck),
            QoS::ExactlyOnce => Some(PacketType::PubRec),
        }
    }

    /// The PUBACK / PUBREC for an incoming PUBLISH of `qos` (none for QoS 0).
    /// MQTT 3.x always carries success; only an error code (0x80 and above)
    /// takes the reason string: success and 0x10 acks stay their minimal 4 or
    /// 5 bytes, whatever a handler said.
    pub(crate) fn publish_ack(
        &self,
        qos: QoS,
        packet_id: u16,
        code: ReasonCode,
        text: Option<String>,
    ) -> Option<Packet> {
        let code = if self.version.is_v5() {
            code
        } else {
            ReasonCode::Success
        };
        let mut reply = PubReply::with_reason(packet_id, code);
        reply.properties.reason_string = text.filter(|_| code.is_error());
        match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Packet::PubAck(reply)),
            QoS::ExactlyOnce => Some(Packet::PubRec(reply)),
        }
    }

    /// A reason string for an ack, if the client did not opt out of them
    /// (Request Problem Information); never for MQTT 3.x.
    pub(crate) fn reason_string(&self, text: impl FnOnce() -> String) -> Option<String> {
        (self.version.is_v5() && self.problem_info).then(text)
    }
}

/// The same PUBACK / PUBREC without its properties, for a client whose
/// Maximum Packet Size cannot take the reason string.
pub(crate) fn bare_ack(packet: &Packet) -> Option<Packet> {
    match packet {
        Packet::PubAck(r) => Some(Packet::PubAck(PubReply::with_reason(
            r.packet_id,
            r.reason_code,
        ))),
        Packet::PubRec(r) => Some(Packet::PubRec(PubReply::with_reason(
            r.packet_id,
            r.reason_code,
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use pigeon_codec::Protocol;

    use super::super::window::tests::entry;
    use super::*;

    fn state(version: Protocol) -> State {
        let terms = super::super::Terms {
            version,
            problem_info: true,
            keep_alive: 0,
            max_inflight: 10,
            alias_in_max: 0,
            alias_out_max: 0,
        };
        State::new(terms, Vec::new(), tokio::time::Instant::now())
    }

    #[test]
    fn puback_and_pubcomp_end_their_own_deliveries_only() {
        let mut s = state(Protocol::V5);
        s.window.push(entry(1, QoS::AtLeastOnce));
        s.window.push(entry(2, QoS::ExactlyOnce));
        assert!(s.on_completion(9, QoS::AtLeastOnce).is_none(), "unknown id");
        assert!(
            s.on_completion(2, QoS::AtLeastOnce).is_none(),
            "PUBACK for QoS 2"
        );
        assert!(
            s.on_completion(2, QoS::ExactlyOnce).is_none(),
            "PUBCOMP before PUBREC"
        );
        assert_eq!(
            s.on_completion(1, QoS::AtLeastOnce).map(|e| e.packet_id),
            Some(1)
        );
        assert!(s.on_completion(1, QoS::AtLeastOnce).is_none(), "acked once");
        assert_eq!(s.window.len(), 1);
    }

    #[test]
    fn pubrec_releases_then_pubcomp_completes() {
        let mut s = state(Protocol::V5);
        s.window.push(entry(5, QoS::ExactlyOnce));
        assert!(matches!(
            s.on_pubrec(5, ReasonCode::Success),
            PubRecAnswer::Release
        ));
        assert!(
            matches!(
                s.on_pubrec(5, ReasonCode::Success),
                PubRecAnswer::Unknown(ReasonCode::PacketIdentifierNotFound)
            ),
            "a second PUBREC finds nothing awaiting it"
        );
        assert!(s.on_completion(5, QoS::ExactlyOnce).is_some());
        assert_eq!(s.window.len(), 0);
    }

    #[test]
    fn a_refusing_pubrec_ends_the_exchange_without_pubrel() {
        let mut s = state(Protocol::V5);
        s.window.push(entry(5, QoS::ExactlyOnce));
        let answer = s.on_pubrec(5, ReasonCode::QuotaExceeded);
        assert!(matches!(answer, PubRecAnswer::Refused(e) if e.packet_id == 5));
        assert_eq!(s.window.len(), 0);
    }

    #[test]
    fn unknown_ids_get_0x92_on_v5_and_success_on_3x() {
        let mut v5 = state(Protocol::V5);
        v5.window.push(entry(1, QoS::AtLeastOnce));
        assert!(
            matches!(
                v5.on_pubrec(1, ReasonCode::Success),
                PubRecAnswer::Unknown(ReasonCode::PacketIdentifierNotFound)
            ),
            "PUBREC for a QoS 1 delivery"
        );
        assert_eq!(
            v5.on_pubrel(3).reason_code,
            ReasonCode::PacketIdentifierNotFound
        );
        let mut v3 = state(Protocol::V3_1_1);
        assert!(matches!(
            v3.on_pubrec(1, ReasonCode::Success),
            PubRecAnswer::Unknown(ReasonCode::Success)
        ));
        assert_eq!(v3.on_pubrel(3).reason_code, ReasonCode::Success);
    }

    #[test]
    fn pubrel_closes_an_open_exchange_once() {
        let mut s = state(Protocol::V5);
        s.incoming
            .accept(QoS::ExactlyOnce, 4, ReasonCode::Success, true);
        assert_eq!(s.on_pubrel(4).reason_code, ReasonCode::Success);
        assert_eq!(
            s.on_pubrel(4).reason_code,
            ReasonCode::PacketIdentifierNotFound
        );
    }

    #[test]
    fn bare_publish_acks_are_the_ones_with_only_a_packet_id() {
        let (v5, v3) = (state(Protocol::V5), state(Protocol::V3_1_1));
        let (ok, none) = (ReasonCode::Success, ReasonCode::NoMatchingSubscribers);
        assert_eq!(
            v5.bare_publish_ack(QoS::AtLeastOnce, ok),
            Some(PacketType::PubAck)
        );
        assert_eq!(
            v5.bare_publish_ack(QoS::ExactlyOnce, ok),
            Some(PacketType::PubRec)
        );
        assert_eq!(v5.bare_publish_ack(QoS::AtLeastOnce, none), None);
        assert_eq!(v5.bare_publish_ack(QoS::AtMostOnce, ok), None);
        // 3.x has no codes: every ack is bare.
        let quota = ReasonCode::QuotaExceeded;
        assert_eq!(
            v3.bare_publish_ack(QoS::AtLeastOnce, quota),
            Some(PacketType::PubAck)
        );
    }

    #[test]
    fn publish_acks_by_qos_with_reason_strings_on_errors_only() {
        let v5 = state(Protocol::V5);
        let text = || Some("why".to_owned());
        assert!(v5
            .publish_ack(QoS::AtMostOnce, 0, ReasonCode::Success, text())
            .is_none());
        let Some(Packet::PubAck(ack)) =
            v5.publish_ack(QoS::AtLeastOnce, 1, ReasonCode::NotAuthorized, text())
        else {
            panic!("PUBACK");
        };
        assert_eq!(
            (ack.reason_code, ack.properties.reason_string.as_deref()),
            (ReasonCode::NotAuthorized, Some("why"))
        );
        let Some(Packet::PubRec(rec)) = v5.publish_ack(
            QoS::ExactlyOnce,
            2,
            ReasonCode::NoMatchingSubscribers,
            text(),
        ) else {
            panic!("PUBREC");
        };
        assert_eq!(rec.properties.reason_string, None, "0x10 is no error");
        let v3 = state(Protocol::V3_1_1);
        let Some(Packet::PubAck(ack)) =
            v3.publish_ack(QoS::AtLeastOnce, 1, ReasonCode::NotAuthorized, text())
        else {
            panic!("PUBACK");
        };
        assert_eq!(
            (ack.reason_code, ack.properties.reason_string),
            (ReasonCode::Success, None)
        );
        let Some(Packet::PubAck(bare)) = bare_ack(&Packet::PubAck({
            let mut r = PubReply::with_reason(1, ReasonCode::NotAuthorized);
            r.properties.reason_string = text();
            r
        })) else {
            panic!("PUBACK");
        };
        assert_eq!(
            (bare.reason_code, bare.properties.reason_string),
            (ReasonCode::NotAuthorized, None)
        );
    }

    #[test]
    fn reason_strings_only_for_v5_clients_that_want_them() {
        let text = || "x".to_owned();
        assert!(state(Protocol::V5).reason_string(text).is_some());
        assert!(state(Protocol::V3_1_1).reason_string(text).is_none());
        let mut quiet = state(Protocol::V5);
        quiet.problem_info = false;
        assert!(quiet.reason_string(text).is_none());
    }
}
