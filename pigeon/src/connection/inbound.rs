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
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe).await,
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
            Packet::Disconnect(d) => {
                if let Some(interval) = d.properties.session_expiry_interval {
                    if self.session_expiry == 0 && interval != 0 {
                        // MQTT-3.14.2-2.
                        return Err(Exit::Violation(
                            ReasonCode::ProtocolError,
                            "session expiry set on DISCONNECT after 0 on CONNECT".into(),
                        ));
                    }
                    self.session_expiry =
                        interval.min(self.engine.config.max_session_expiry_interval);
                }
                Err(Exit::Disconnect {
                    // Only a normal disconnection (0x00) discards the will
                    // (MQTT-3.1.2-10): 0x04 and the client's error codes keep it.
                    will: d.reason_code != ReasonCode::Success,
                })
            }
            Packet::Connect(_) => Err(Exit::Violation(
                ReasonCode::ProtocolError,
                "second CONNECT".into(),
            )),
            Packet::Auth(auth) => self.on_auth(auth).await,
            other => Err(Exit::Violation(
                ReasonCode::ProtocolError,
                format!("{:?} is not sent by clients", other.packet_type()),
            )),
        }
    }

    async fn on_publish(&mut self, mut publish: Publish) -> Result<(), Exit> {
        let engine = self.engine.clone();
        self.aliases_in.resolve(&mut publish)?;
        if publish.qos > engine.config.maximum_qos {
            return Err(Exit::Violation(
                ReasonCode::QoSNotSupported,
                "QoS above the maximum".into(),
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
            && self.incoming_qos2.len() >= self.receive_maximum
        {
            // QoS 1 is acknowledged before the next packet is read, so only QoS 2
            // exchanges awaiting PUBREL count against the broker's Receive Maximum.
            return Err(Exit::Violation(
                ReasonCode::ReceiveMaximumExceeded,
                format!(
                    "more than {} QoS 2 messages unacknowledged",
                    self.receive_maximum
                ),
            ));
        }
        if publish.properties.payload_format_indicator == Some(true)
            && std::str::from_utf8(&publish.payload).is_err()
        {
            // MQTT-3.3.2-4 lets the receiver answer with a negative ack or close:
            // QoS 1/2 get PUBACK/PUBREC 0x99 (the connection stays up), QoS 0,
            // which has no ack, gets DISCONNECT 0x99.
            if qos == QoS::AtMostOnce {
                return Err(Exit::Violation(
                    ReasonCode::PayloadFormatInvalid,
                    "payload is not UTF-8 though its format indicator says so".into(),
                ));
            }
            let text = self.reason_string(|| "payload is not valid UTF-8".into());
            self.acknowledge(qos, packet_id, ReasonCode::PayloadFormatInvalid, text);
            return Ok(());
        }
        if let Some(acl) = engine.acl.load().as_deref() {
            if !acl.can_publish(&self.client_id, self.client.username(), &publish.topic) {
                // Dropped silently (Mosquitto does the same); still acknowledged so
                // the client does not resend it forever.
                tracing::debug!(topic = %publish.topic, "publish refused by the ACL");
                let text = self.reason_string(|| "refused by the ACL".into());
                self.acknowledge(qos, packet_id, ReasonCode::NotAuthorized, text);
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
                let text = self.reason_string(|| denied.message.clone());
                self.acknowledge(qos, packet_id, denied.reason, text);
                return Ok(());
            }
            Err(panic) => {
                if !self.protocol.is_v5() {
                    return Err(Exit::Refused(panic));
                }
                self.acknowledge(qos, packet_id, ReasonCode::UnspecifiedError, None);
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
        let (code, text) = if !message.was_matched() {
            (ReasonCode::NoMatchingSubscribers, None)
        } else if message.was_unqueued() {
            // Every subscriber's queue (max_queued_messages) was full.
            let text = self.reason_string(|| "subscribers' queues are full".into());
            (ReasonCode::QuotaExceeded, text)
        } else {
            (ReasonCode::Success, None)
        };
        if qos == QoS::ExactlyOnce && !(self.protocol.is_v5() && code.is_error()) {
            // A refusing PUBREC ends the exchange: no PUBREL will come.
            self.incoming_qos2.insert(packet_id);
        }
        self.acknowledge(qos, packet_id, code, text);
        Ok(())
    }

    /// PUBACK / PUBREC for an incoming PUBLISH (3.x always carries success).
    fn acknowledge(&mut self, qos: QoS, packet_id: u16, code: ReasonCode, text: Option<String>) {
        let code = if self.protocol.is_v5() {
            code
        } else {
            ReasonCode::Success
        };
        let mut reply = PubReply::with_reason(packet_id, code);
        reply.properties.reason_string = text;
        let packet = match qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => Packet::PubAck(reply),
            QoS::ExactlyOnce => Packet::PubRec(reply),
        };
        if !self.write(&packet) {
            // Too large for the client with the reason string: send it bare.
            if let Packet::PubAck(r) | Packet::PubRec(r) = &packet {
                let bare = PubReply::with_reason(r.packet_id, r.reason_code);
                let bare = match qos {
                    QoS::AtLeastOnce => Packet::PubAck(bare),
                    _ => Packet::PubRec(bare),
                };
                self.write(&bare);
            }
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
