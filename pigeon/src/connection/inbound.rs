//! Packets from an established client: PUBLISH and its acknowledgements,
//! PINGREQ, DISCONNECT, and the protocol violations.

use std::{
    collections::VecDeque,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::FutureExt;
use tokio::time::Instant;

use pigeon_codec::{Disconnect, Packet, PubReply, Publish, QoS, ReasonCode};

use super::{
    protocol::{acks::bare_ack, PubRecAnswer},
    Connection, Exit,
};
use crate::hooks::guard;
use crate::{
    emitter::BoxFuture,
    engine::Routed,
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

/// A routed PUBLISH whose acknowledgement waits for the store's commit
/// (`None`: only for the ones before it).
pub(crate) struct AwaitingCommit {
    message: Arc<Message>,
    qos: QoS,
    packet_id: u16,
    commit: Option<BoxFuture<'static, bool>>,
}

/// Acknowledgements waiting for the store, oldest first. Boxed so that a
/// connection that never has any (most) pays one pointer for it, not the
/// four words of a `VecDeque`: per-connection memory is what counts here.
#[allow(clippy::box_collection)]
pub(crate) type AckQueue = Box<VecDeque<AwaitingCommit>>;

/// Ready with the result of the oldest commit awaited, if any.
pub(super) fn poll_committed(acks: &mut Option<AckQueue>, cx: &mut Context<'_>) -> Poll<bool> {
    match acks.as_mut().and_then(|q| q.front_mut()) {
        Some(AwaitingCommit {
            commit: Some(f), ..
        }) => f.as_mut().poll(cx),
        Some(_) => Poll::Ready(true),
        None => Poll::Pending,
    }
}

/// Ready when the waiting PUBLISH, if any, reached every queue.
pub(super) fn poll_routed(
    pending: &mut Option<Box<Pending>>,
    cx: &mut Context<'_>,
) -> Poll<Arc<Message>> {
    match pending {
        Some(p) => p.routed.as_mut().poll(cx),
        None => Poll::Pending,
    }
}

/// An acknowledged refusal of a PUBLISH: the PUBACK / PUBREC code and its
/// reason string.
type Refusal = (ReasonCode, Option<String>);

impl Connection {
    /// Handles one packet; `Err` ends the connection.
    pub(super) async fn handle(&mut self, packet: Packet) -> Result<(), Exit> {
        match packet {
            Packet::Publish(publish) => return self.on_publish(publish).await,
            Packet::PubAck(ack) => self.on_ack(ack.packet_id, QoS::AtLeastOnce),
            Packet::PubRec(rec) => self.on_pubrec(rec),
            Packet::PubRel(rel) => self.on_pubrel(rel),
            Packet::PubComp(comp) => self.on_ack(comp.packet_id, QoS::ExactlyOnce),
            // Boxed, as AUTH: rare next to PUBLISH and acks, and inline their
            // state would grow the allocation of every step.
            Packet::Subscribe(subscribe) => return Box::pin(self.on_subscribe(subscribe)).await,
            Packet::Unsubscribe(unsubscribe) => Box::pin(self.on_unsubscribe(unsubscribe)).await,
            Packet::PingReq => {
                self.write(&Packet::PingResp);
                self.engine
                    .event(EventKind::Ping, || Event::Ping(self.client.clone()));
            }
            Packet::Disconnect(d) => return Err(self.on_disconnect(&d)),
            Packet::Connect(_) => {
                // Decoding it set the codec's version: what is written back
                // (DISCONNECT) stays in the client's first one.
                self.reader.codec().set_protocol(self.mqtt.version);
                return Err(Exit::Violation(
                    ReasonCode::ProtocolError,
                    "second CONNECT".into(),
                ));
            }
            Packet::Auth(auth) => return Box::pin(self.on_auth(*auth)).await,
            other => {
                return Err(Exit::Violation(
                    ReasonCode::ProtocolError,
                    format!("{:?} is not sent by clients", other.packet_type()),
                ))
            }
        }
        Ok(())
    }

    /// DISCONNECT from the client: how the connection ends. It may change
    /// the session expiry, but not from 0 (MQTT-3.14.2-2).
    fn on_disconnect(&mut self, d: &Disconnect) -> Exit {
        if let Some(interval) = d.properties.session_expiry_interval {
            if self.session_expiry == 0 && interval != 0 {
                return Exit::Violation(
                    ReasonCode::ProtocolError,
                    "session expiry set on DISCONNECT after 0 on CONNECT".into(),
                );
            }
            self.session_expiry = interval.min(self.engine.config.max_session_expiry_interval);
        }
        Exit::Disconnect {
            // Only a normal disconnection (0x00) discards the will
            // (MQTT-3.1.2-10): 0x04 and the client's error codes keep it.
            will: d.reason_code != ReasonCode::Success,
        }
    }

    /// PUBLISH from the client: checked, screened (payload format, ACL,
    /// authorize_publish), routed, and acknowledged once routed.
    async fn on_publish(&mut self, mut publish: Publish) -> Result<(), Exit> {
        self.count_publish();
        self.mqtt.aliases_in.resolve(&mut publish)?;
        if too_deep(&publish.topic, self.engine.config.max_topic_levels) {
            return self.refuse_deep_topic(&publish);
        }
        self.check_publish(&publish)?;
        self.engine.stats.publish_received.add(publish.qos);
        let (qos, packet_id) = (publish.qos, publish.packet_id);
        if self.mqtt.incoming.is_resend(qos, packet_id) {
            // A resend of a message already accepted: acknowledge, do not deliver again.
            self.acknowledge(qos, packet_id, ReasonCode::Success, None);
            return Ok(());
        }
        self.mqtt
            .incoming
            .check_room(qos, self.mqtt.v5(), self.engine.config.receive_maximum)?;
        if let Some((code, text)) = self.screen(&mut publish).await? {
            self.acknowledge(qos, packet_id, code, text);
            return Ok(());
        }
        self.route(publish)
    }

    /// The protocol errors of a PUBLISH that end the connection.
    fn check_publish(&self, publish: &Publish) -> Result<(), Exit> {
        let config = &self.engine.config;
        let violation = |code, why: &str| Err(Exit::Violation(code, why.into()));
        if !publish.properties.subscription_identifiers.is_empty() {
            // Only the server sets them, when forwarding [MQTT-3.3.4-6].
            return violation(
                ReasonCode::ProtocolError,
                "PUBLISH from a client carries a subscription identifier",
            );
        }
        if publish.qos > config.maximum_qos {
            return violation(ReasonCode::QoSNotSupported, "QoS above the maximum");
        }
        if publish.retain && !config.retain_available {
            return violation(ReasonCode::RetainNotSupported, "retain is not available");
        }
        Ok(())
    }

    /// The refusals a PUBLISH is acknowledged with (the connection stays):
    /// `Ok(None)` lets it through, maybe rewritten by authorize_publish.
    async fn screen(&mut self, publish: &mut Publish) -> Result<Option<Refusal>, Exit> {
        if let Some(refusal) = self.check_payload_format(publish)? {
            return Ok(Some(refusal));
        }
        if let Some(refusal) = self.check_acl(publish) {
            self.engine.stats.authorization.count(false);
            return Ok(Some(refusal));
        }
        if self.engine.hooks.allows_publish_outright(&publish.topic) {
            self.engine.stats.authorization.count(true);
            return Ok(None);
        }
        // Boxed: without handlers (the common case) no PUBLISH carries its state.
        let decision = Box::pin(self.authorize_publish(publish)).await;
        let allowed = matches!(decision, Ok(None));
        self.engine.stats.authorization.count(allowed);
        // Checked here, not for every PUBLISH: the decoder refused invalid
        // names, and only a handler can have rewritten this one since.
        if allowed && !pigeon_codec::topic::valid_topic_name(&publish.topic) {
            return Err(Exit::Violation(
                ReasonCode::TopicNameInvalid,
                "authorize_publish produced an invalid topic".into(),
            ));
        }
        decision
    }

    /// MQTT-3.3.2-4 lets the receiver answer a payload that is not the UTF-8
    /// its format indicator says with a negative ack or close: QoS 1/2 get
    /// PUBACK/PUBREC 0x99 (the connection stays up), QoS 0, which has no ack,
    /// gets DISCONNECT 0x99.
    fn check_payload_format(&self, publish: &Publish) -> Result<Option<Refusal>, Exit> {
        if publish.properties.payload_format_indicator != Some(true)
            || std::str::from_utf8(&publish.payload).is_ok()
        {
            return Ok(None);
        }
        if publish.qos == QoS::AtMostOnce {
            return Err(Exit::Violation(
                ReasonCode::PayloadFormatInvalid,
                "payload is not UTF-8 though its format indicator says so".into(),
            ));
        }
        let text = self
            .mqtt
            .reason_string(|| "payload is not valid UTF-8".into());
        Ok(Some((ReasonCode::PayloadFormatInvalid, text)))
    }

    /// A PUBLISH the ACL refuses is dropped silently (Mosquitto does the
    /// same), yet acknowledged so that the client does not resend it forever.
    fn check_acl(&self, publish: &Publish) -> Option<Refusal> {
        let (client_id, username) = (&self.session.client_id, self.client.username());
        if self
            .engine
            .acl_allows(|acl| acl.can_publish(client_id, username, &publish.topic))
        {
            return None;
        }
        tracing::info!(client_id = %self.session.client_id, topic = %publish.topic, "publish refused by the ACL");
        let text = self.mqtt.reason_string(|| "refused by the ACL".into());
        Some((ReasonCode::NotAuthorized, text))
    }

    /// The authorize_publish handlers' decision. MQTT 3.x has no negative
    /// ack: a refusal closes the connection instead.
    async fn authorize_publish(&mut self, publish: &mut Publish) -> Result<Option<Refusal>, Exit> {
        let hooks = &self.engine.hooks;
        match guard(hooks.authorize_publish(Some(&self.client), publish)).await {
            Ok(Ok(())) => Ok(None),
            Ok(Err(denied)) if !self.mqtt.v5() => {
                tracing::info!(client_id = %self.session.client_id, topic = %publish.topic, %denied, "publish refused; closing (MQTT 3.x has no negative ack)");
                // Closing reports the error once, as `finish` does for every refusal.
                Err(Exit::Refused(denied.message))
            }
            Ok(Err(denied)) => {
                tracing::info!(client_id = %self.session.client_id, topic = %publish.topic, %denied, "publish refused");
                self.engine.event(EventKind::ClientError, || {
                    Event::ClientError(self.client.clone(), denied.message.clone())
                });
                let text = self.mqtt.reason_string(|| denied.message.clone());
                Ok(Some((denied.reason, text)))
            }
            Err(panic) if !self.mqtt.v5() => Err(Exit::Refused(panic)),
            Err(_) => Ok(Some((ReasonCode::UnspecifiedError, None))),
        }
    }

    /// Hands the PUBLISH to the engine. Almost always done at once; otherwise
    /// a subscriber's queue is full and the acknowledgement waits while the
    /// connection serves everything else.
    fn route(&mut self, publish: Publish) -> Result<(), Exit> {
        let (qos, packet_id) = (publish.qos, publish.packet_id);
        if qos == QoS::ExactlyOnce && self.persistent {
            // Recorded before the message, so the commit the PUBREC waits for
            // covers it: a resent PUBLISH after a restart is known, not
            // delivered twice.
            (self.engine.persistence).incoming_qos2(&self.session.client_id, packet_id, true);
        }
        let origin = self.session.client_id.clone();
        let routed = self
            .engine
            .route_now(Some(origin), Some(&self.client), publish);
        match routed {
            // The common case: routed at once, with no future to box.
            Routed::Done(message) if !self.engine.hooks.has_published() => {
                self.settle_routed(message, qos, packet_id)
            }
            routed => self.route_rest(routed, qos, packet_id),
        }
    }

    /// What is left of routing a PUBLISH (the store, a queue with no room, the
    /// `published` handlers), in a future: settled at once if it is done.
    fn route_rest(&mut self, routed: Routed, qos: QoS, packet_id: u16) -> Result<(), Exit> {
        let engine = self.engine.clone();
        let client = self.client.clone();
        let origin = self.session.client_id.clone();
        let mut routed: BoxFuture<'static, Arc<Message>> = Box::pin(async move {
            let message = match routed {
                Routed::Done(message) => message,
                Routed::Waiting(message, waiting) => {
                    engine.handed_over(waiting).await;
                    message
                }
                Routed::Retained(publish) => {
                    engine.route(Some(origin), Some(&client), publish).await
                }
            };
            if engine.hooks.has_published() {
                // In its own box: every PUBLISH that gets here allocates this future, and
                // past 1 KiB an allocation leaves the allocator's fast path.
                let published = guard(engine.hooks.published(Some(&client), &message.publish));
                if let Err(panic) | Ok(Err(crate::hooks::HookError(panic))) =
                    Box::pin(published).await
                {
                    engine.event(EventKind::ClientError, || {
                        Event::ClientError(client.clone(), panic.clone())
                    });
                }
            }
            message
        });
        match (&mut routed).now_or_never() {
            Some(message) => self.settle_routed(message, qos, packet_id),
            None => {
                self.pending = Some(Box::new(Pending {
                    routed,
                    qos,
                    packet_id,
                }));
                Ok(())
            }
        }
    }

    /// Counts a PUBLISH against `max_publish_rate`; over it, reading pauses.
    fn count_publish(&mut self) {
        let rate = self.rare.as_mut().and_then(|r| r.rate.as_mut());
        if let Some(until) = rate.and_then(|r| r.take(Instant::now())) {
            self.rare().pause = Some(Box::pin(tokio::time::sleep_until(until)));
        }
    }

    /// A PUBLISH whose topic has more than `max_topic_levels` levels: MQTT 5.0
    /// QoS 1/2 get PUBACK/PUBREC 0x90 and the connection stays; QoS 0 (no
    /// ack to carry the code) and MQTT 3.x (no negative ack) are disconnected.
    fn refuse_deep_topic(&mut self, publish: &Publish) -> Result<(), Exit> {
        let limit = self.engine.config.max_topic_levels;
        let why = || format!("topic has more than {limit} levels (max_topic_levels)");
        if publish.qos == QoS::AtMostOnce || !self.mqtt.v5() {
            return Err(Exit::Violation(ReasonCode::TopicNameInvalid, why()));
        }
        let text = self.mqtt.reason_string(why);
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
            self.rare().stash.push_back(packet);
            return Ok(());
        }
        self.handle(packet).await
    }

    /// The waiting PUBLISH reached every subscriber's queue: acknowledge it.
    pub(super) fn published(&mut self, message: Arc<Message>) -> Result<(), Exit> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        self.settle_routed(message, pending.qos, pending.packet_id)
    }

    /// A routed PUBLISH: acknowledged now, or once the store's commit that
    /// covers it is done — or, to keep acknowledgements in the order the
    /// PUBLISHes came (MQTT-4.6.0-2), once those before it are.
    fn settle_routed(
        &mut self,
        message: Arc<Message>,
        qos: QoS,
        packet_id: u16,
    ) -> Result<(), Exit> {
        let engine = &self.engine;
        let stored = qos != QoS::AtMostOnce && message.was_stored() && engine.persistence.durable();
        let behind = self.acks.as_ref().is_some_and(|q| !q.is_empty());
        if !stored && !behind {
            return self.acknowledge_routed(&message, qos, packet_id);
        }
        let commit = stored.then(|| engine.persistence.commit());
        let awaiting = AwaitingCommit {
            message,
            qos,
            packet_id,
            commit,
        };
        self.acks
            .get_or_insert_with(Default::default)
            .push_back(awaiting);
        Ok(())
    }

    /// The front commit finished (`ok`: written): acknowledges it, and every
    /// one after it that is done too.
    pub(super) fn on_committed(&mut self, mut ok: bool) -> Result<(), Exit> {
        while let Some(front) = self.acks.as_mut().and_then(|q| q.pop_front()) {
            if !ok {
                // Not on disk: refused, as when no queue could keep it.
                front.message.mark_unqueued();
            }
            self.acknowledge_routed(&front.message, front.qos, front.packet_id)?;
            let next = self.acks.as_mut().and_then(|q| q.front_mut());
            match next.map(|n| n.commit.as_mut().map_or(Some(true), |f| f.now_or_never())) {
                Some(Some(done)) => ok = done,
                _ => break,
            }
        }
        if self.acks.as_ref().is_some_and(|q| q.is_empty()) {
            self.acks = None;
        }
        Ok(())
    }

    /// The code a routed PUBLISH is acknowledged with.
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
            if !self.mqtt.v5() && qos != QoS::AtMostOnce {
                // MQTT 3.x has no negative acknowledgement: never say success
                // for a message nobody keeps; close without acknowledging, and
                // the client sends it again when it reconnects.
                if qos == QoS::ExactlyOnce && self.persistent {
                    (self.engine.persistence).incoming_qos2(
                        &self.session.client_id,
                        packet_id,
                        false,
                    );
                }
                return Err(Exit::Refused(
                    "no subscriber's queue could take the message".into(),
                ));
            }
            let text = self
                .mqtt
                .reason_string(|| "subscribers' queues are full".into());
            (ReasonCode::QuotaExceeded, text)
        } else {
            (ReasonCode::Success, None)
        };
        let v5 = self.mqtt.v5();
        if qos == QoS::ExactlyOnce && self.persistent && v5 && code.is_error() {
            // A refusing PUBREC opens no exchange.
            (self.engine.persistence).incoming_qos2(&self.session.client_id, packet_id, false);
        }
        self.mqtt.incoming.accept(qos, packet_id, code, v5);
        self.acknowledge(qos, packet_id, code, text);
        Ok(())
    }

    /// The one place PUBACK / PUBREC for an incoming PUBLISH is written,
    /// whatever decided it (routed, refused, or a QoS 2 resend): an ack that
    /// must wait for something (e.g. a disk commit) waits here.
    fn acknowledge(&mut self, qos: QoS, packet_id: u16, code: ReasonCode, text: Option<String>) {
        if let Some(kind) = self.mqtt.bare_publish_ack(qos, code) {
            self.take_out_buffer();
            let codec = self.reader.codec();
            super::written(codec.encode_bare_ack(kind, packet_id, &mut self.out));
            return;
        }
        let Some(packet) = self.mqtt.publish_ack(qos, packet_id, code, text) else {
            return;
        };
        if !self.write(&packet) {
            // Too large for the client with the reason string: send it bare.
            if let Some(bare) = bare_ack(&packet) {
                self.write(&bare);
            }
        }
    }

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) from the client: the one place an
    /// ack takes a delivery out of the in-flight window.
    fn on_ack(&mut self, packet_id: u16, qos: QoS) {
        let Some(entry) = self.mqtt.on_completion(packet_id, qos) else {
            tracing::debug!(packet_id, "acknowledgement for an unknown packet id");
            return;
        };
        if let Some(key) = entry.delivery.stored {
            self.engine.persistence.forget(&self.session.client_id, key);
        }
        self.engine.event(EventKind::Ack, || {
            Event::Ack(
                self.client.clone(),
                entry.delivery.to_publish(packet_id, false),
            )
        });
    }

    /// PUBREC from the client: the one place a QoS 2 delivery is released
    /// (PUBREL sent, the window entry now awaits PUBCOMP) or, refused by an
    /// MQTT 5.0 client, leaves the window.
    fn on_pubrec(&mut self, rec: PubReply) {
        let code = match self.mqtt.on_pubrec(rec.packet_id, rec.reason_code) {
            PubRecAnswer::Release => {
                let stored = self.mqtt.window.get(rec.packet_id);
                if let Some(key) = stored.and_then(|e| e.delivery.stored) {
                    self.engine
                        .persistence
                        .released(&self.session.client_id, key);
                }
                ReasonCode::Success
            }
            PubRecAnswer::Refused(entry) => {
                tracing::debug!(packet_id = entry.packet_id, "the client refused a delivery");
                if let Some(key) = entry.delivery.stored {
                    self.engine.persistence.forget(&self.session.client_id, key);
                }
                return;
            }
            PubRecAnswer::Unknown(code) => code,
        };
        self.write(&Packet::PubRel(PubReply::with_reason(rec.packet_id, code)));
    }

    /// PUBREL from the client: the one place an incoming QoS 2 exchange
    /// closes; PUBCOMP answers it.
    fn on_pubrel(&mut self, rel: PubReply) {
        if self.persistent {
            (self.engine.persistence).incoming_qos2(&self.session.client_id, rel.packet_id, false);
        }
        let comp = self.mqtt.on_pubrel(rel.packet_id);
        self.write(&Packet::PubComp(comp));
    }
}
