//! No acknowledged message is lost to a burst: a full subscriber queue slows
//! the publishers feeding it (their PUBACKs wait) instead of dropping, at the
//! default options. The subscriber here is a raw socket so the test can stop
//! it reading for a while, as a fleet reconnecting after an outage does to a
//! broker: far more arrives than `max_queued_messages` (1000) holds.

use std::time::Duration;

use pigeon::codec::{self as codec, Packet, PubReply, Subscribe, SubscribeFilter};
use pigeon_tests::{config, start_with, Mqtt, Raw};
use rumqttc::QoS;

const PUBLISHERS: usize = 16;
const PER_PUBLISHER: u32 = 1000;
const PAYLOAD: usize = 1024;

/// 16 publishers send numbered messages to `bench/<i>` while one subscriber
/// on `bench/#` does not read for `pause`, then reads as fast as it can.
/// Returns, per publisher, the sequence numbers received in order.
async fn burst(qos: QoS, pause: Duration) -> (Vec<Vec<u32>>, pigeon::broker::Stats) {
    let broker = start_with(config()).await;
    let addr = broker.local_addr();
    let (mut sub, _) = Raw::connect(addr, Raw::connect_packet("sink", true)).await;
    let granted = match qos {
        QoS::AtMostOnce => codec::QoS::AtMostOnce,
        _ => codec::QoS::AtLeastOnce,
    };
    sub.send(Packet::Subscribe(Subscribe::new(
        1,
        vec![SubscribeFilter::new("bench/#", granted)],
    )))
    .await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));

    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let publisher = Mqtt::connect(addr, &format!("burst{p}")).await;
        publishers.push(tokio::spawn(async move {
            for seq in 0..PER_PUBLISHER {
                let mut payload = seq.to_be_bytes().to_vec();
                payload.resize(PAYLOAD, 0);
                publisher
                    .publish(&format!("bench/{p}"), qos, false, payload)
                    .await;
            }
            publisher
        }));
    }
    tokio::time::sleep(pause).await;

    let total = PUBLISHERS * PER_PUBLISHER as usize;
    let mut seen: Vec<Vec<u32>> = vec![Vec::new(); PUBLISHERS];
    let mut received = 0;
    while received < total {
        let packet = sub.recv().await;
        let Some(Packet::Publish(publish)) = packet else {
            panic!("after {received} of {total}: {packet:?}");
        };
        if publish.packet_id != 0 {
            sub.send(Packet::PubAck(PubReply::new(publish.packet_id)))
                .await;
        }
        let p: usize = publish.topic["bench/".len()..].parse().expect("bench/<i>");
        let seq = u32::from_be_bytes(publish.payload[..4].try_into().expect("4 bytes"));
        seen[p].push(seq);
        received += 1;
    }
    for task in publishers {
        task.await.expect("publisher");
    }
    let stats = broker.stats();
    broker.close().await;
    (seen, stats)
}

fn assert_complete_and_in_order(seen: &[Vec<u32>]) {
    let expected: Vec<u32> = (0..PER_PUBLISHER).collect();
    for (p, got) in seen.iter().enumerate() {
        assert_eq!(got.len(), expected.len(), "publisher {p}: count");
        assert!(got == &expected, "publisher {p}: order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos1_burst_past_the_queue_limit_loses_nothing() {
    // A whole second without reading: the queue (1000) and the socket buffers
    // fill long before, and the publishers must wait.
    let (seen, stats) = burst(QoS::AtLeastOnce, Duration::from_secs(1)).await;
    assert_complete_and_in_order(&seen);
    assert_eq!(stats.messages_dropped, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos0_burst_past_the_queue_limit_loses_nothing_while_the_subscriber_reads() {
    // A short stall (under the QoS 0 patience of 1 s at the default
    // drain_timeout) is a burst, not a subscriber that cannot keep up.
    let (seen, stats) = burst(QoS::AtMostOnce, Duration::from_millis(300)).await;
    assert_complete_and_in_order(&seen);
    assert_eq!(stats.messages_dropped, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_subscribed_to_its_own_topic_can_publish_a_burst() {
    // Its own queue fills with its own messages while it publishes: the
    // connection keeps delivering to it while its PUBLISH waits.
    let broker = start_with(config()).await;
    let addr = broker.local_addr();
    let mut echo = Mqtt::connect(addr, "echo").await;
    echo.subscribe("echo/#", QoS::AtLeastOnce).await;
    let n = 3000u32;
    let client = echo.client.clone();
    let sender = tokio::spawn(async move {
        for seq in 0..n {
            client
                .publish(
                    "echo/1",
                    QoS::AtLeastOnce,
                    false,
                    seq.to_be_bytes().to_vec(),
                )
                .await
                .expect("publish");
        }
    });
    for seq in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(20), echo.recv())
            .await
            .expect("echo keeps flowing");
        assert_eq!(&m.payload[..], seq.to_be_bytes(), "in order");
    }
    sender.await.expect("sender");
    assert_eq!(broker.stats().messages_dropped, 0);
    broker.close().await;
}
