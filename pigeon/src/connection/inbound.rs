//! Packets from an established client: PUBLISH and its acknowledgements,
//! PINGREQ, DISCONNECT, and the protocol violations.

use std::sync::atomic::Ordering::Relaxed;

use pigeon_codec::{Packet, PubReply, Publish, QoS, ReasonCode};

use super::{guard, Connection, Exit};
use crate::hooks::{Event, EventKind};

impl Connection {
    /// Handles one packet; `Err` ends the connection.
    pub(super) async fn handle(&mut self, packet: Packet) -> Result<(), Exit> {
        match packet {
            Packet::Publish(publish) => self.on_publish(publish).await,
            Packet::PubAck(ack) => {
                self.on_ack(ack.packet_id, QoS::AtLeastOnce);
                Ok(())
            }
            Packet::PubRec(rec) => {
                self.on_pubrec(rec);
                Ok(())
            }
            Packet::PubRel(rel) => {
                // PUBCOMP even for an unknown id, so the client can finish (spec 4.3.3).
                let known = self.incoming_qos2.remove(&rel.packet_id);
                let code = if known || !self.protocol.is_v5() {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                self.write(&Packet::PubComp(PubReply::with_reason(rel.packet_id, code)));
                Ok(())
            }
            Packet::PubComp(comp) => {
                self.on_ack(comp.packet_id, QoS::ExactlyOnce);
                Ok(())
            }
            Packet::Subscribe(subscribe) => {
                self.on_subscribe(subscribe).await;
                Ok(())
            }
            Packet::Unsubscribe(unsubscribe) => {
                self.on_unsubscribe(unsubscribe).await;
                Ok(())
            }
            Packet::PingReq => {
                self.write(&Packet::PingResp);
                self.engine
                    .event(EventKind::Ping, || Event::Ping(self.client.clone()));
                Ok(())
            }
            Packet::Disconnect(d) => Err(Exit::Disconnect {
                will: d.reason_code == ReasonCode::DisconnectWithWillMessage,
            }),
            Packet::Connect(_) => Err(Exit::Violation(
                ReasonCode::ProtocolError,
                "second CONNECT".into(),
            )),
            Packet::Auth(_) => Err(Exit::Violation(
                ReasonCode::ProtocolError,
                "AUTH without an authentication method".into(),
            )),
            other => Err(Exit::Violation(
                ReasonCode::ProtocolError,
                format!("{:?} is not sent by clients", other.packet_type()),
            )),
        }
    }

    async fn on_publish(&mut self, mut publish: Publish) -> Result<(), Exit> {
        let engine = self.engine.clone();
        if publish.qos > engine.config.maximum_qos {
            return Err(Exit::Violation(
                ReasonCode::QoSNotSupported,
                "QoS above the maximum".into(),
            ));
        }
        if publish.topic.is_empty() || publish.properties.topic_alias.is_some() {
            // The broker announces Topic Alias Maximum 0.
            return Err(Exit::Violation(
                ReasonCode::TopicAliasInvalid,
                "topic aliases are not accepted".into(),
            ));
        }
        if publish.retain && !engine.config.retain_available {
            return Err(Exit::Violation(
                ReasonCode::RetainNotSupported,
                "retain is not available".into(),
            ));
        }
        engine.stats.messages_received.fetch_add(1, Relaxed);
        let packet_id = publish.packet_id;
        let qos = publish.qos;
        if qos == QoS::ExactlyOnce && self.incoming_qos2.contains(&packet_id) {
            // A resend of a message already accepted: acknowledge, do not deliver again.
            self.write(&Packet::PubRec(PubReply::new(packet_id)));
            return Ok(());
        }
        if qos == QoS::ExactlyOnce
            && self.protocol.is_v5()
            && self.incoming_qos2.len() >= usize::from(engine.config.receive_maximum)
        {
            return Err(Exit::Violation(
                ReasonCode::ReceiveMaximumExceeded,
                "more unacknowledged QoS 2 PUBLISHes than Receive Maximum".into(),
            ));
        }
        if let Some(acl) = &engine.acl {
            if !acl.can_publish(&self.client_id, self.client.username(), &publish.topic) {
                // Dropped silently (Mosquitto does the same); still acknowledged so
                // the client does not resend it forever.
                tracing::debug!(topic = %publish.topic, "publish refused by the ACL");
                self.acknowledge(qos, packet_id, ReasonCode::NotAuthorized);
                return Ok(());
            }
        }
        match guard(
            engine
                .hooks
                .authorize_publish(Some(&self.client), &mut publish),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(denied)) => {
                if !self.protocol.is_v5() {
                    // Closing reports the error once, as `finish` does for every refusal.
                    return Err(Exit::Refused(denied.message));
                }
                engine.event(EventKind::ClientError, || {
                    Event::ClientError(self.client.clone(), denied.message.clone())
                });
                self.acknowledge(qos, packet_id, denied.reason);
                return Ok(());
            }
            Err(panic) => {
                if !self.protocol.is_v5() {
                    return Err(Exit::Refused(panic));
                }
                self.acknowledge(qos, packet_id, ReasonCode::UnspecifiedError);
                return Ok(());
            }
        }
        if !pigeon_codec::topic::valid_topic_name(&publish.topic) {
            return Err(Exit::Violation(
                ReasonCode::TopicNameInvalid,
                "authorize_publish produced an invalid topic".into(),
            ));
        }
        let message = engine
            .publish(Some(self.client_id.clone()), Some(&self.client), publish)
            .await;
        if let Err(panic) | Ok(Err(crate::hooks::HookError(panic))) =
            guard(engine.hooks.published(Some(&self.client), &message.publish)).await
        {
            engine.event(EventKind::ClientError, || {
                Event::ClientError(self.client.clone(), panic.clone())
            });
        }
        if qos == QoS::ExactlyOnce {
            self.incoming_qos2.insert(packet_id);
        }
        self.acknowledge(qos, packet_id, ReasonCode::Success);
        Ok(())
    }

    /// PUBACK / PUBREC for an incoming PUBLISH (3.x always carries success).
    fn acknowledge(&mut self, qos: QoS, packet_id: u16, code: ReasonCode) {
        let code = if self.protocol.is_v5() {
            code
        } else {
            ReasonCode::Success
        };
        let reply = PubReply::with_reason(packet_id, code);
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.write(&Packet::PubAck(reply)),
            QoS::ExactlyOnce => self.write(&Packet::PubRec(reply)),
        }
    }

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) from the client ends an in-flight delivery.
    fn on_ack(&mut self, packet_id: u16, qos: QoS) {
        let position = self.inflight.iter().position(|i| {
            i.packet_id == packet_id
                && i.delivery.qos == qos
                && (qos == QoS::AtLeastOnce || i.released)
        });
        let Some(entry) = position.and_then(|p| self.inflight.remove(p)) else {
            tracing::debug!(packet_id, "acknowledgement for an unknown packet id");
            return;
        };
        self.engine.event(EventKind::Ack, || {
            Event::Ack(
                self.client.clone(),
                entry.delivery.to_publish(packet_id, false),
            )
        });
    }

    fn on_pubrec(&mut self, rec: PubReply) {
        let entry = self.inflight.iter_mut().find(|i| {
            i.packet_id == rec.packet_id && i.delivery.qos == QoS::ExactlyOnce && !i.released
        });
        let code = match entry {
            Some(entry) if rec.reason_code.is_error() => {
                // MQTT 5.0: the receiver refused it; the exchange ends here.
                let id = entry.packet_id;
                self.inflight.retain(|i| i.packet_id != id);
                return;
            }
            Some(entry) => {
                entry.released = true;
                ReasonCode::Success
            }
            None if self.protocol.is_v5() => ReasonCode::PacketIdentifierNotFound,
            None => ReasonCode::Success,
        };
        self.write(&Packet::PubRel(PubReply::with_reason(rec.packet_id, code)));
    }
}
