//! MQTT 5.0 byte-level helpers on [`Raw`] for features client libraries hide
//! (manual acknowledgements, subscription options and identifiers, AUTH).

use std::net::SocketAddr;

use pigeon_codec::{
    Connect, Packet, Protocol, PubReply, Publish, QoS, ReasonCode, SubAck, Subscribe,
    SubscribeFilter, SubscriptionOptions,
};

use crate::Raw;

/// A v5 CONNECT (clean start) for `id`.
pub fn connect_packet(id: &str) -> Connect {
    Connect::new(Protocol::V5, id)
}

/// Connects a v5 client; panics unless CONNACK is success.
pub async fn connect(addr: SocketAddr, id: &str) -> Raw {
    let (raw, ack) = Raw::connect(addr, connect_packet(id)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success, "{id}: {ack:?}");
    raw
}

/// Filter options with `qos`, everything else default.
pub fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..Default::default()
    }
}

impl Raw {
    /// Sends SUBSCRIBE with the filters (and identifier) and returns the SUBACK.
    pub async fn subscribe5(
        &mut self,
        packet_id: u16,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<u32>,
    ) -> SubAck {
        let filters = filters
            .iter()
            .map(|(f, o)| SubscribeFilter {
                filter: (*f).to_owned(),
                options: *o,
            })
            .collect();
        let mut subscribe = Subscribe::new(packet_id, filters);
        subscribe.properties.subscription_identifier = identifier;
        self.send(Packet::Subscribe(subscribe)).await;
        loop {
            match self.recv().await {
                Some(Packet::SubAck(ack)) => return ack,
                Some(_) => continue,
                None => panic!("closed while waiting for SUBACK"),
            }
        }
    }

    /// Publishes (QoS 1/2 with `packet_id`); does not wait for the ack.
    pub async fn publish5(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: &str,
        packet_id: u16,
    ) {
        let mut publish = Publish::new(topic, qos, payload.to_owned());
        publish.retain = retain;
        publish.packet_id = if qos == QoS::AtMostOnce { 0 } else { packet_id };
        self.send(Packet::Publish(publish)).await;
    }

    /// The next PUBLISH, skipping other packets; `None` if nothing comes within `ms`.
    pub async fn next_publish_within(&mut self, ms: u64) -> Option<Publish> {
        let wait = std::time::Duration::from_millis(ms);
        tokio::time::timeout(wait, async {
            loop {
                match self.recv().await {
                    Some(Packet::Publish(p)) => return Some(p),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next PUBLISH (panics after [`crate::WAIT`]).
    pub async fn next_publish(&mut self) -> Publish {
        self.next_publish_within(crate::WAIT.as_millis() as u64)
            .await
            .expect("a PUBLISH in time")
    }

    /// Acknowledges a received QoS 1 PUBLISH.
    pub async fn puback(&mut self, packet_id: u16) {
        self.send(Packet::PubAck(PubReply::new(packet_id))).await;
    }
}
