//! Packets from an established client: PUBLISH and its acknowledgements,
//! PINGREQ, DISCONNECT, and the protocol violations.

use std::sync::{atomic::Ordering::Relaxed, Arc};

use futures_util::FutureExt;
use tokio::time::Instant;

use pigeon_codec::{Packet, PubReply, Publish, QoS, ReasonCode};

use super::{Connection, Exit};
use crate::hooks::guard;
use crate::{
    emitter::BoxFuture,
    hooks::{Event, EventKind},
    model::Message,
};

/// Whether `topic` (a name or a filter) has more levels than `limit` (0: no limit).
pub(super) fn too_deep(topic: &str, limit: usize) -> bool {
    // Each `/` starts one more level; counting bytes avoids walking the levels.
    limit != 0 && topic.bytes().filter(|b| *b == b'/').count() >= limit
}

/// A PUBLISH whose delivery waits for room in a subscriber's queue.
pub(crate) struct Pending {
    routed: BoxFuture<'static, Arc<Message>>,
    qos: QoS,
    packet_id: u16,
}

/// Resolves when the waiting PUBLISH, if any, reached every queue.
pub(super) async fn routed(pending: &mut Option<Pending>) -> Arc<Message> {
    match pending {
        Some(p) => (&mut p.routed).await,
        None => std::future::pending().await,
    }
}

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
        self.count_publish();
        self.aliases_in.resolve(&mut publish)?;
        if too_deep(&publish.topic, engine.config.max_topic_levels) {
            return self.refuse_deep_topic(&publish);
        }
        if !publish.properties.subscription_identifiers.is_empty() {
            // Only the server sets them, when forwarding [MQTT-3.3.4-6].
            return Err(Exit::Violation(
                ReasonCode::ProtocolError,
                "PUBLISH from a client carries a subscription identifier".into(),
            ));
        }
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
        let client = self.client.clone();
        let origin = self.client_id.clone();
        let mut routed: BoxFuture<'static, Arc<Message>> = Box::pin(async move {
            let message = engine.publish(Some(origin), Some(&client), publish).await;
            if let Err(panic) | Ok(Err(crate::hooks::HookError(panic))) =
                guard(engine.hooks.published(Some(&client), &message.publish)).await
            {
                engine.event(EventKind::ClientError, || {
                    Event::ClientError(client.clone(), panic.clone())
                });
            }
            message
        });
        // Almost always done at once; otherwise a subscriber's queue is full and
        // the acknowledgement waits while the connection serves everything else.
        match (&mut routed).now_or_never() {
            Some(message) => self.acknowledge_routed(&message, qos, packet_id),
            None => {
                self.pending = Some(Pending {
                    routed,
                    qos,
                    packet_id,
                });
                Ok(())
            }
        }
    }

    /// Counts a PUBLISH against `max_publish_rate`; over it, reading pauses.
    fn count_publish(&mut self) {
        if let Some(until) = self.rate.as_mut().and_then(|r| r.take(Instant::now())) {
            self.paused_until = Some(until);
        }
    }

    /// A PUBLISH whose topic has more than `max_topic_levels` levels: MQTT 5.0
    /// QoS 1/2 get PUBACK/PUBREC 0x90 and the connection stays; QoS 0 (no
    /// ack to carry the code) and MQTT 3.x (no negative ack) are disconnected.
    fn refuse_deep_topic(&mut self, publish: &Publish) -> Result<(), Exit> {
        let limit = self.engine.config.max_topic_levels;
        let why = || format!("topic has more than {limit} levels (max_topic_levels)");
        if publish.qos == QoS::AtMostOnce || !self.protocol.is_v5() {
            return Err(Exit::Violation(ReasonCode::TopicNameInvalid, why()));
        }
        let text = self.reason_string(why);
        self.acknowledge(
            publish.qos,
            publish.packet_id,
            ReasonCode::TopicNameInvalid,
            text,
        );
        Ok(())
    }

    /// Handles a packet read from the client: while a PUBLISH waits for room,
    /// acknowledgements and pings are served (they free the client's own
    /// queue) and anything else waits its turn.
    pub(super) async fn receive(&mut self, packet: Packet) -> Result<(), Exit> {
        let serve_now = matches!(
            packet,
            Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
                | Packet::PingReq
        );
        if self.pending.is_some() && !serve_now {
            self.stash.push_back(packet);
            return Ok(());
        }
        self.handle(packet).await
    }

    /// The waiting PUBLISH reached every subscriber's queue: acknowledge it.
    pub(super) fn published(&mut self, message: Arc<Message>) -> Result<(), Exit> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        self.acknowledge_routed(&message, pending.qos, pending.packet_id)
    }

    fn acknowledge_routed(
        &mut self,
        message: &Message,
        qos: QoS,
        packet_id: u16,
    ) -> Result<(), Exit> {
        let (code, text) = if !message.was_matched() {
            (ReasonCode::NoMatchingSubscribers, None)
        } else if message.was_unqueued() {
            // Every matching session was offline with a full queue.
            if !self.protocol.is_v5() && qos != QoS::AtMostOnce {
                // MQTT 3.x has no negative acknowledgement: never say success
                // for a message nobody keeps; close without acknowledging, and
                // the client sends it again when it reconnects.
                return Err(Exit::Refused(
                    "no subscriber's queue could take the message".into(),
                ));
            }
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
    /// Only an error code (0x80 and above) takes a reason string: success and
    /// 0x10 acks stay their minimal 4 or 5 bytes, whatever a handler said.
    fn acknowledge(&mut self, qos: QoS, packet_id: u16, code: ReasonCode, text: Option<String>) {
        let code = if self.protocol.is_v5() {
            code
        } else {
            ReasonCode::Success
        };
        let mut reply = PubReply::with_reason(packet_id, code);
        reply.properties.reason_string = text.filter(|_| code.is_error());
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
