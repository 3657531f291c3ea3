//! Deliveries to the client: drained from the session queue while the write
//! buffer is below its high-water mark and in-flight slots are free.

use pigeon_codec::{Packet, PlainPublish, QoS};

use super::{Connection, Exit, BATCH, HIGH_WATER};
use crate::{
    acl::Acl,
    engine::DropReason,
    model::Inflight,
    model::{Delivery, Message},
};

impl Connection {
    /// Moves queued deliveries into the write buffer.
    pub(super) async fn fill(&mut self) -> Result<(), Exit> {
        let mut batch = super::buffers::batch();
        while self.out.len() < HIGH_WATER {
            let slots = self.mqtt.window.free_slots();
            // No more than the write buffer has room for: what a client does not
            // read stays in its queue, where the limits and budget count it.
            let room = HIGH_WATER - self.out.len();
            self.session.take_batch(slots, BATCH, room, &mut batch);
            if batch.is_empty() {
                break;
            }
            // Once per batch, not per delivery (it was 2% of a fan-out
            // profile): a reloaded ACL applies from the next batch on.
            let acl = self.engine.acl();
            for delivery in batch.drain(..) {
                self.send(delivery, acl.as_deref()).await;
            }
        }
        super::buffers::give_batch(batch);
        Ok(())
    }

    /// Sends one delivery, unless it expired or is not for this client.
    async fn send(&mut self, delivery: Delivery, acl: Option<&Acl>) {
        if let Some(delivery) = self.admit(delivery, acl).await {
            self.transmit(delivery);
        }
    }

    /// The delivery as it may go to this client: `None` when it expired, the
    /// ACL keeps the client from reading it, or authorize_forward refused it
    /// (which may also rewrite it, and lower its QoS).
    async fn admit(&mut self, delivery: Delivery, acl: Option<&Acl>) -> Option<Delivery> {
        let engine = &self.engine;
        if delivery.message.is_expired() {
            // MQTT 5.0 Message Expiry: too late to deliver (queued or retained).
            engine.stats.dropped(DropReason::Expired, 1);
            return None;
        }
        if let Some(acl) = acl {
            let topic = &delivery.message.publish.topic;
            if !acl.can_read(&self.session.client_id, self.client.username(), topic) {
                return None;
            }
        }
        if engine.hooks.has_authorize_forward() {
            // Boxed: without the hook (most brokers) no step carries its state.
            return Box::pin(self.forward(delivery)).await;
        }
        Some(delivery)
    }

    /// The authorize_forward hook's verdict on a delivery (see `admit`).
    async fn forward(&mut self, mut delivery: Delivery) -> Option<Delivery> {
        let publish = delivery.to_publish(0, false);
        let hooks = &self.engine.hooks;
        let forwarded = crate::hooks::guard(hooks.authorize_forward(&self.client, publish)).await;
        let Ok(Some(publish)) = forwarded else {
            return None;
        };
        delivery.qos = publish.qos.min(delivery.qos);
        delivery.retain = publish.retain;
        let origin = delivery.message.origin.clone();
        let received_at = delivery.message.received_at;
        delivery.message = Message::received(publish, origin, received_at);
        Some(delivery)
    }

    /// Writes the PUBLISH (with a packet id and a topic alias when it has
    /// them); a QoS 1/2 delivery then waits in flight for its ack.
    fn transmit(&mut self, delivery: Delivery) {
        let packet_id = if delivery.qos == QoS::AtMostOnce {
            0
        } else {
            self.mqtt.window.allocate_id()
        };
        if !self.write_publish(&delivery, packet_id) {
            // Larger than the client's Maximum Packet Size: dropped, as if
            // delivered (MQTT-3.1.2-25), and counted.
            self.engine.stats.dropped(DropReason::TooLarge, 1);
            return;
        }
        self.engine.stats.publish_sent.add(delivery.qos);
        if delivery.qos != QoS::AtMostOnce {
            self.record_sent(Inflight {
                packet_id,
                delivery,
                released: false,
            });
        }
    }

    /// Writes the PUBLISH of a delivery; false when it is larger than the
    /// client's Maximum Packet Size.
    fn write_publish(&mut self, delivery: &Delivery, packet_id: u16) -> bool {
        let p = &delivery.message.publish;
        // Nothing of this copy's own to add (3.x gets no properties at all):
        // written from the shared message's parts, no `Publish` built.
        let plain = !self.mqtt.aliases_out.enabled()
            && (!self.mqtt.v5() || (p.properties.is_empty() && delivery.identifiers.is_empty()));
        if plain {
            let publish = PlainPublish {
                topic: &p.topic,
                payload: &p.payload,
                qos: delivery.qos,
                dup: false,
                retain: delivery.retain,
                packet_id,
            };
            self.take_out_buffer();
            return super::written(
                self.reader
                    .codec()
                    .encode_plain_publish(&publish, &mut self.out),
            );
        }
        // Forwarded with the time it waited in the broker taken off the expiry.
        let mut publish = delivery.to_publish(packet_id, false);
        let mut aliased = None;
        if self.mqtt.aliases_out.enabled() {
            let topic = publish.topic.clone();
            if self.mqtt.aliases_out.apply(&mut publish) {
                aliased = Some(topic);
            }
        }
        let written = self.write(&Packet::Publish(publish));
        if let (false, Some(topic)) = (written, aliased) {
            self.mqtt.aliases_out.forget(&topic);
        }
        written
    }

    /// The in-flight window gains a delivery just written: the one place a
    /// QoS 1/2 delivery to the client starts waiting for its ack.
    fn record_sent(&mut self, entry: Inflight) {
        // A durable store learns its packet id, to resend it after a restart.
        if let Some(key) = entry.delivery.stored {
            (self.engine.persistence).sent(&self.session.client_id, key, entry.packet_id);
        }
        self.mqtt.window.push(entry);
    }
}
