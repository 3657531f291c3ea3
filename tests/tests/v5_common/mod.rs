//! Helpers for the MQTT 5.0 end-to-end tests: a byte-level v5 client on
//! pigeon-codec ([`pigeon_tests::Raw`]) with the few exchanges the tests repeat.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use pigeon::codec::{
    ConnAck, Connect, Packet, Protocol, PubReply, Publish, QoS, ReasonCode, SubAck, Subscribe,
    SubscribeFilter,
};
use pigeon_tests::Raw;

/// A v5 CONNECT for `id` (clean start, keep alive 60).
pub(crate) fn connect(id: &str) -> Connect {
    Connect::new(Protocol::V5, id)
}

/// Connects and asserts the CONNACK is a success.
pub(crate) async fn connected(addr: SocketAddr, connect: Connect) -> (Raw, ConnAck) {
    let (raw, ack) = Raw::connect(addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success, "{ack:?}");
    (raw, ack)
}

/// Subscribes to `filter` and returns the SUBACK.
pub(crate) async fn subscribe(raw: &mut Raw, filter: &str, qos: QoS) -> SubAck {
    let sub = Subscribe::new(7, vec![SubscribeFilter::new(filter, qos)]);
    raw.send(Packet::Subscribe(sub)).await;
    loop {
        match raw.recv().await {
            Some(Packet::SubAck(ack)) => return ack,
            Some(_) => continue,
            None => panic!("closed while waiting for SUBACK"),
        }
    }
}

/// A PUBLISH (packet id 1 for QoS 1/2).
pub(crate) fn message(topic: &str, qos: QoS, payload: &'static str) -> Publish {
    let mut p = Publish::new(topic, qos, payload);
    if qos != QoS::AtMostOnce {
        p.packet_id = 1;
    }
    p
}

/// Sends a QoS 1 PUBLISH and returns its PUBACK.
pub(crate) async fn publish_acked(raw: &mut Raw, publish: Publish) -> PubReply {
    let id = publish.packet_id;
    raw.send(Packet::Publish(publish)).await;
    loop {
        match raw.recv().await {
            Some(Packet::PubAck(ack)) | Some(Packet::PubRec(ack)) if ack.packet_id == id => {
                return ack
            }
            Some(_) => continue,
            None => panic!("closed while waiting for PUBACK"),
        }
    }
}

/// The next PUBLISH (acknowledging QoS 1 ones), skipping other packets.
pub(crate) async fn next_publish(raw: &mut Raw) -> Publish {
    loop {
        match raw.recv().await {
            Some(Packet::Publish(p)) => {
                if p.qos == QoS::AtLeastOnce {
                    raw.send(Packet::PubAck(PubReply::new(p.packet_id))).await;
                }
                return p;
            }
            Some(_) => continue,
            None => panic!("closed while waiting for PUBLISH"),
        }
    }
}

/// Asserts no PUBLISH arrives within `ms` milliseconds.
pub(crate) async fn assert_no_publish(raw: &mut Raw, ms: u64) {
    let waited = tokio::time::timeout(Duration::from_millis(ms), async {
        loop {
            match raw.recv().await {
                Some(Packet::Publish(p)) => return p,
                Some(_) => continue,
                None => std::future::pending().await,
            }
        }
    })
    .await;
    if let Ok(p) = waited {
        panic!("unexpected PUBLISH {p:?}");
    }
}

/// Waits for the broker's DISCONNECT and the close; returns its reason code.
pub(crate) async fn disconnected(raw: &mut Raw) -> ReasonCode {
    let seen = raw.closed().await;
    match seen.iter().rev().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    }) {
        Some(code) => code,
        None => panic!("closed without DISCONNECT: {seen:?}"),
    }
}
