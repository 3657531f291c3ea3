//! Deliveries to the client: drained from the session queue while the write
//! buffer is below its high-water mark and in-flight slots are free.

use std::sync::atomic::Ordering::Relaxed;

use pigeon_codec::{Packet, QoS};

use super::{Connection, Exit, BATCH, HIGH_WATER};
use crate::{
    engine::DropReason,
    model::Inflight,
    model::{Delivery, Message},
};

impl Connection {
    /// Moves queued deliveries into the write buffer.
    pub(super) async fn fill(&mut self) -> Result<(), Exit> {
        while self.out.len() < HIGH_WATER {
            let slots = self.max_inflight.saturating_sub(self.inflight.len());
            let mut batch = std::mem::take(&mut self.batch);
            // No more than the write buffer has room for: what a client does not
            // read stays in its queue, where the limits and budget count it.
            let room = HIGH_WATER - self.out.len();
            self.session.take_batch(slots, BATCH, room, &mut batch);
            if batch.is_empty() {
                self.batch = batch;
                return Ok(());
            }
            for delivery in batch.drain(..) {
                self.send(delivery).await;
            }
            self.batch = batch;
        }
        Ok(())
    }

    async fn send(&mut self, mut delivery: Delivery) {
        let engine = self.engine.clone();
        if delivery.message.is_expired() {
            // MQTT 5.0 Message Expiry: too late to deliver (queued or retained).
            engine.stats.dropped(DropReason::Expired, 1);
            return;
        }
        if let Some(acl) = engine.acl.load().as_deref() {
            let topic = &delivery.message.publish.topic;
            if !acl.can_read(&self.client_id, self.client.username(), topic) {
                return;
            }
        }
        if engine.hooks.has_authorize_forward() {
            let publish = delivery.to_publish(0, false);
            let forwarded =
                crate::hooks::guard(engine.hooks.authorize_forward(&self.client, publish)).await;
            match forwarded {
                Ok(Some(publish)) => {
                    delivery.qos = publish.qos.min(delivery.qos);
                    delivery.retain = publish.retain;
                    let origin = delivery.message.origin.clone();
                    let received_at = delivery.message.received_at;
                    delivery.message = Message::received(publish, origin, received_at);
                }
                _ => return,
            }
        }
        let packet_id = if delivery.qos == QoS::AtMostOnce {
            0
        } else {
            self.allocate_packet_id()
        };
        // Forwarded with the time it waited in the broker taken off the expiry.
        let mut publish = delivery.to_publish(packet_id, false);
        let mut aliased = None;
        if self.aliases_out.enabled() {
            let topic = publish.topic.clone();
            if self.aliases_out.apply(&mut publish) {
                aliased = Some(topic);
            }
        }
        if !self.write(&Packet::Publish(publish)) {
            // Larger than the client's Maximum Packet Size: dropped, as if
            // delivered (MQTT-3.1.2-25), and counted.
            if let Some(topic) = aliased {
                self.aliases_out.forget(&topic);
            }
            engine.stats.dropped(DropReason::TooLarge, 1);
            return;
        }
        engine.stats.messages_sent.fetch_add(1, Relaxed);
        if delivery.qos != QoS::AtMostOnce {
            self.inflight.push_back(Inflight {
                packet_id,
                delivery,
                released: false,
            });
        }
    }

    /// The next packet id not in flight (the window is far below 65535).
    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            let id = self.next_packet_id;
            if !self.inflight.iter().any(|i| i.packet_id == id) {
                return id;
            }
        }
    }
}
