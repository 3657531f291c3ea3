//! Deliveries to the client: drained from the session queue while the write
//! buffer is below its high-water mark and in-flight slots are free.

use std::sync::atomic::Ordering::Relaxed;

use pigeon_codec::{Packet, QoS};

use super::{Connection, Exit, BATCH, HIGH_WATER};
use crate::{
    broker::{Delivery, Message},
    persistence::Inflight,
};

impl Connection {
    /// Moves queued deliveries into the write buffer.
    pub(super) async fn fill(&mut self) -> Result<(), Exit> {
        while self.out.len() < HIGH_WATER {
            let slots = self.max_inflight.saturating_sub(self.inflight.len());
            let mut batch = std::mem::take(&mut self.batch);
            self.session.take_batch(slots, BATCH, &mut batch);
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
            return;
        }
        if let Some(acl) = &engine.acl {
            let topic = &delivery.message.publish.topic;
            if !acl.can_read(&self.client_id, self.client.username(), topic) {
                return;
            }
        }
        if engine.hooks.has_authorize_forward() {
            let publish = delivery.to_publish(0, false);
            let forwarded =
                super::guard(engine.hooks.authorize_forward(&self.client, publish)).await;
            match forwarded {
                Ok(Some(publish)) => {
                    delivery.qos = publish.qos.min(delivery.qos);
                    delivery.retain = publish.retain;
                    let origin = delivery.message.origin.clone();
                    delivery.message = Message::new(publish, origin);
                }
                _ => return,
            }
        }
        let packet_id = if delivery.qos == QoS::AtMostOnce {
            0
        } else {
            self.allocate_packet_id()
        };
        let packet = Packet::Publish(delivery.to_publish(packet_id, false));
        if self.max_outgoing < usize::MAX {
            let size = pigeon_codec::encoded_len(&packet, self.protocol).unwrap_or(usize::MAX);
            if size > self.max_outgoing {
                // MQTT 5.0: a packet larger than the client's Maximum Packet Size is
                // discarded as if it had been delivered.
                engine.stats.messages_dropped.fetch_add(1, Relaxed);
                tracing::debug!(
                    size,
                    max = self.max_outgoing,
                    "message larger than the client accepts, dropped"
                );
                return;
            }
        }
        engine.stats.messages_sent.fetch_add(1, Relaxed);
        self.write(&packet);
        if delivery.qos == QoS::AtMostOnce {
            return;
        }
        self.inflight.push_back(Inflight {
            packet_id,
            delivery,
            released: false,
        });
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
