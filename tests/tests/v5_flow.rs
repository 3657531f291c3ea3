//! MQTT 5.0 flow control and size limits, byte-level: Receive Maximum and
//! Maximum Packet Size in both directions.

mod v5_common;

use pigeon::codec::{Packet, PubReply, Publish, QoS, ReasonCode};
use pigeon_tests::{config, start, start_with};
use v5_common::*;

#[tokio::test]
async fn v5_flow_broker_respects_the_clients_receive_maximum() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut c = connect("rm-sub");
    c.properties.receive_maximum = Some(2);
    let (mut sub, _) = connected(addr, c).await;
    subscribe(&mut sub, "rm/t", QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(addr, connect("rm-pub")).await;
    for i in 1..=5u16 {
        let mut p = Publish::new("rm/t", QoS::AtLeastOnce, format!("{i}"));
        p.packet_id = i;
        publisher.send(Packet::Publish(p)).await;
    }
    // Read without acknowledging: only two may be in flight.
    let mut held = Vec::new();
    for _ in 0..2 {
        match sub.recv().await {
            Some(Packet::Publish(p)) => held.push(p),
            other => panic!("{other:?}"),
        }
    }
    assert_no_publish(&mut sub, 300).await;
    sub.send(Packet::PubAck(PubReply::new(held[0].packet_id)))
        .await;
    let third = match sub.recv().await {
        Some(Packet::Publish(p)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(third.payload, "3", "one more after one ack");
    assert_no_publish(&mut sub, 200).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_flow_client_exceeding_the_brokers_receive_maximum_is_disconnected() {
    let broker = start_with(pigeon::Config {
        receive_maximum: 2,
        ..config()
    })
    .await;
    let (mut raw, ack) = connected(broker.local_addr(), connect("rm-over")).await;
    assert_eq!(ack.properties.receive_maximum, Some(2));
    for i in 1..=3u16 {
        let mut p = Publish::new("rm/over", QoS::ExactlyOnce, "x");
        p.packet_id = i;
        raw.send(Packet::Publish(p)).await;
    }
    let seen = raw.closed().await;
    let recs = seen
        .iter()
        .filter(|p| matches!(p, Packet::PubRec(_)))
        .count();
    assert_eq!(recs, 2, "{seen:?}");
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ReceiveMaximumExceeded),
        "{seen:?}"
    );
    broker.close().await;
}

#[tokio::test]
async fn v5_flow_packet_larger_than_the_brokers_maximum_is_refused() {
    let broker = start_with(pigeon::Config {
        max_packet_size: 128,
        ..config()
    })
    .await;
    let (mut raw, ack) = connected(broker.local_addr(), connect("big-in")).await;
    assert_eq!(ack.properties.maximum_packet_size, Some(128));
    let fits = Publish::new("mp/t", QoS::AtLeastOnce, vec![b'x'; 64]);
    let fits = Publish {
        packet_id: 1,
        ..fits
    };
    assert_eq!(publish_acked(&mut raw, fits).await.packet_id, 1);
    let big = Publish::new("mp/t", QoS::AtMostOnce, vec![b'x'; 4000]);
    raw.send(Packet::Publish(big)).await;
    assert_eq!(disconnected(&mut raw).await, ReasonCode::PacketTooLarge);
    pigeon_tests::assert_serving(broker.local_addr()).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_flow_message_larger_than_the_clients_maximum_is_dropped_and_counted() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut c = connect("big-out");
    c.properties.maximum_packet_size = Some(100);
    let (mut sub, _) = connected(addr, c).await;
    subscribe(&mut sub, "mo/t", QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(addr, connect("big-out-pub")).await;
    let dropped_before = broker.stats().messages_dropped;
    for (i, size) in [(1u16, 10usize), (2, 500), (3, 20)] {
        let mut p = Publish::new("mo/t", QoS::AtLeastOnce, vec![b'x'; size]);
        p.packet_id = i;
        publish_acked(&mut publisher, p).await;
    }
    assert_eq!(next_publish(&mut sub).await.payload.len(), 10);
    assert_eq!(
        next_publish(&mut sub).await.payload.len(),
        20,
        "500 skipped"
    );
    assert_eq!(broker.stats().messages_dropped, dropped_before + 1);
    broker.close().await;
}
