//! The default in-flight window to a 3.1.1 subscriber, which has no Receive
//! Maximum of its own to say how many unacknowledged messages it takes.

use std::time::Duration;

use pigeon::codec::{Packet, PubReply, QoS, Subscribe, SubscribeFilter};
use pigeon_tests::{start, Mqtt, Raw, WAIT};

/// Polls the broker's view of `id` until it shows (in flight, queued) as
/// `want`, or [`WAIT`] has passed; returns what it showed last.
async fn window(broker: &pigeon::BrokerHandle, id: &str, want: (usize, usize)) -> (usize, usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = broker.client_info(id).expect("the client is known");
        let seen = (info.inflight, info.queue_length);
        if seen == want || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_3_1_1_subscriber_has_512_messages_in_flight_by_default() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut sub, _) = Raw::connect(addr, Raw::connect_packet("win-sub", true)).await;
    let filter = SubscribeFilter::new("win/#", QoS::AtLeastOnce);
    sub.send(Packet::Subscribe(Subscribe::new(1, vec![filter])))
        .await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));

    let publisher = Mqtt::connect(addr, "win-pub").await;
    for i in 0..600 {
        publisher
            .publish("win/t", rumqttc::QoS::AtLeastOnce, false, format!("{i}"))
            .await;
    }
    // Read without acknowledging: 512 come, in order, each with its own id.
    let mut ids = Vec::new();
    for i in 0..512 {
        match sub.recv().await {
            Some(Packet::Publish(p)) => {
                assert_eq!(&p.payload[..], format!("{i}").as_bytes());
                ids.push(p.packet_id);
            }
            other => panic!("PUBLISH {i} expected, got {other:?}"),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 512, "distinct packet ids");
    assert_eq!(window(&broker, "win-sub", (512, 88)).await, (512, 88));

    // One acknowledged: the next takes its slot.
    sub.send(Packet::PubAck(PubReply::new(ids[0]))).await;
    match sub.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"512"),
        other => panic!("PUBLISH 512 expected, got {other:?}"),
    }
    assert_eq!(window(&broker, "win-sub", (512, 87)).await, (512, 87));
    publisher.disconnect().await;
    broker.close().await;
}
