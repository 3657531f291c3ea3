//! 1,000 concurrent clients publishing and subscribing at QoS 1, every message
//! accounted for: each client gets exactly its predecessor's messages, in
//! order, every PUBLISH is acknowledged, and a wildcard subscriber sees all.

use std::{sync::Arc, time::Duration};

use pigeon::codec::{Packet, PubReply, Publish, QoS, Subscribe, SubscribeFilter};
use pigeon_tests::{config, start_with, Mqtt, Raw};
use tokio::sync::Barrier;

const CLIENTS: usize = 1000;
const PER_CLIENT: u16 = 5;

async fn client(addr: std::net::SocketAddr, i: usize, ready: Arc<Barrier>) -> (usize, Vec<String>) {
    let (mut raw, ack) = Raw::connect(addr, Raw::connect_packet(&format!("load-{i}"), true)).await;
    assert!(!ack.reason_code.is_error());
    raw.send(Packet::Subscribe(Subscribe::new(
        1,
        vec![SubscribeFilter::new(format!("load/{i}"), QoS::AtLeastOnce)],
    )))
    .await;
    assert!(matches!(raw.recv().await, Some(Packet::SubAck(_))));
    ready.wait().await;
    let target = (i + 1) % CLIENTS;
    for n in 1..=PER_CLIENT {
        let mut p = Publish::new(
            format!("load/{target}"),
            QoS::AtLeastOnce,
            format!("{i}:{n}"),
        );
        p.packet_id = n;
        raw.send(Packet::Publish(p)).await;
    }
    let mut acked = 0;
    let mut received = Vec::new();
    while acked < usize::from(PER_CLIENT) || received.len() < usize::from(PER_CLIENT) {
        match raw.recv().await {
            Some(Packet::PubAck(_)) => acked += 1,
            Some(Packet::Publish(p)) => {
                raw.send(Packet::PubAck(PubReply::new(p.packet_id))).await;
                received.push(String::from_utf8(p.payload.to_vec()).unwrap());
            }
            other => panic!("client {i}: unexpected {other:?}"),
        }
    }
    (i, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_with_every_qos1_message_accounted_for() {
    // The observer receives all 5,000 messages in one burst: its queue must hold them.
    let broker = start_with(pigeon::Config {
        max_queued_messages: CLIENTS * usize::from(PER_CLIENT),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut all = Mqtt::connect(addr, "observer").await;
    all.subscribe("load/+", rumqttc::QoS::AtLeastOnce).await;

    let ready = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(addr, i, ready.clone())))
        .collect();
    let observed = tokio::spawn(async move {
        let mut n = 0;
        while n < CLIENTS * usize::from(PER_CLIENT) {
            all.recv().await;
            n += 1;
        }
        all.assert_silent(200).await;
        n
    });
    let results = tokio::time::timeout(Duration::from_secs(60), async {
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("client task"));
        }
        results
    })
    .await
    .expect("all clients finish");
    for (i, received) in results {
        let from = (i + CLIENTS - 1) % CLIENTS;
        let expected: Vec<String> = (1..=PER_CLIENT).map(|n| format!("{from}:{n}")).collect();
        assert_eq!(received, expected, "client {i}");
    }
    assert_eq!(observed.await.unwrap(), CLIENTS * usize::from(PER_CLIENT));
    let stats = broker.stats();
    assert_eq!(stats.messages_dropped, 0, "{stats:?}");
    assert!(stats.messages_received >= (CLIENTS * usize::from(PER_CLIENT)) as u64);
    broker.close().await;
}
