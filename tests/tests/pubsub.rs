//! Publish/subscribe at every QoS, wildcards, the `$` rule, overlapping
//! subscriptions and unsubscribe, with rumqttc v3.1.1 clients.

use pigeon_tests::{start, Mqtt};
use rumqttc::{QoS, SubscribeReasonCode};

#[tokio::test]
async fn qos0_qos1_qos2_are_delivered_at_the_granted_qos() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = Mqtt::connect(addr, "sub").await;
    let codes = sub.subscribe("t/0", QoS::AtMostOnce).await;
    assert_eq!(codes, vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    sub.subscribe("t/1", QoS::AtLeastOnce).await;
    sub.subscribe("t/2", QoS::ExactlyOnce).await;
    let publisher = Mqtt::connect(addr, "pub").await;
    publisher
        .publish("t/0", QoS::AtMostOnce, false, "zero")
        .await;
    publisher
        .publish("t/1", QoS::AtLeastOnce, false, "one")
        .await;
    publisher
        .publish("t/2", QoS::ExactlyOnce, false, "two")
        .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = sub.recv().await;
        got.push((m.topic.clone(), m.qos as u8, m.payload.to_vec()));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("t/0".into(), 0, b"zero".to_vec()),
            ("t/1".into(), 1, b"one".to_vec()),
            ("t/2".into(), 2, b"two".to_vec()),
        ]
    );
    // Downgrade: a QoS 2 message to a QoS 0 subscription arrives at QoS 0.
    publisher
        .publish("t/0", QoS::ExactlyOnce, false, "down")
        .await;
    let m = sub.recv().await;
    assert_eq!((m.qos, &m.payload[..]), (QoS::AtMostOnce, &b"down"[..]));
    let stats = broker.stats();
    assert!(stats.messages_received >= 4, "{stats:?}");
    assert_eq!(stats.clients_connected, 2);
    broker.close().await;
}

#[tokio::test]
async fn wildcards_match_and_dollar_topics_are_not_matched_by_them() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut plus = Mqtt::connect(addr, "plus").await;
    plus.subscribe("sport/+/player1", QoS::AtLeastOnce).await;
    let mut hash = Mqtt::connect(addr, "hash").await;
    hash.subscribe("sport/#", QoS::AtLeastOnce).await;
    let mut all = Mqtt::connect(addr, "all").await;
    all.subscribe("#", QoS::AtLeastOnce).await;
    let publisher = Mqtt::connect(addr, "pub").await;

    publisher
        .publish("sport/tennis/player1", QoS::AtLeastOnce, false, "a")
        .await;
    assert_eq!(plus.recv().await.topic, "sport/tennis/player1");
    assert_eq!(hash.recv().await.topic, "sport/tennis/player1");
    assert_eq!(all.recv().await.topic, "sport/tennis/player1");

    // "sport/#" matches its parent level too; "+" does not match two levels.
    publisher
        .publish("sport", QoS::AtLeastOnce, false, "b")
        .await;
    assert_eq!(hash.recv().await.topic, "sport");
    publisher
        .publish("sport/tennis/x/player1", QoS::AtLeastOnce, false, "c")
        .await;
    assert_eq!(hash.recv().await.topic, "sport/tennis/x/player1");

    // A "$" topic is not matched by a filter starting with a wildcard (broker publish bypasses the $SYS rule).
    broker
        .publish(pigeon::codec::Publish::new(
            "$internal/x",
            pigeon::codec::QoS::AtLeastOnce,
            "d",
        ))
        .await
        .unwrap();
    publisher
        .publish("after", QoS::AtLeastOnce, false, "e")
        .await;
    let next = all.recv().await;
    assert_eq!(next.topic, "sport", "# saw the parent-level message first");
    assert_eq!(all.recv().await.topic, "sport/tennis/x/player1");
    assert_eq!(
        all.recv().await.topic,
        "after",
        "$internal/x must not reach #"
    );
    plus.assert_silent(200).await;
    broker.close().await;
}

#[tokio::test]
async fn overlapping_subscriptions_give_one_copy_at_the_highest_qos() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = Mqtt::connect(addr, "overlap").await;
    sub.subscribe("a/+", QoS::AtMostOnce).await;
    sub.subscribe("a/#", QoS::ExactlyOnce).await;
    sub.subscribe("a/b", QoS::AtLeastOnce).await;
    let publisher = Mqtt::connect(addr, "pub").await;
    publisher.publish("a/b", QoS::ExactlyOnce, false, "x").await;
    let m = sub.recv().await;
    assert_eq!((m.topic.as_str(), m.qos), ("a/b", QoS::ExactlyOnce));
    sub.assert_silent(300).await;
    broker.close().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_resubscribe_replaces_qos() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = Mqtt::connect(addr, "unsub").await;
    sub.subscribe("u/1", QoS::AtLeastOnce).await;
    sub.subscribe("u/1", QoS::AtMostOnce).await;
    assert_eq!(
        broker.subscriptions(),
        vec![("unsub".into(), "u/1".into(), pigeon::codec::QoS::AtMostOnce)]
    );
    sub.client.unsubscribe("u/1").await.unwrap();
    loop {
        if let rumqttc::Packet::UnsubAck(_) = sub.next_other().await {
            break;
        }
    }
    assert!(broker.subscriptions().is_empty());
    let publisher = Mqtt::connect(addr, "pub").await;
    publisher
        .publish("u/1", QoS::AtLeastOnce, false, "gone")
        .await;
    sub.assert_silent(300).await;
    broker.close().await;
}

#[tokio::test]
async fn broker_publish_reaches_subscribers_and_clients_are_listed() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = Mqtt::connect(addr, "listener").await;
    sub.subscribe("news", QoS::AtLeastOnce).await;
    assert_eq!(broker.clients(), vec!["listener".to_string()]);
    broker
        .publish(pigeon::codec::Publish::new(
            "news",
            pigeon::codec::QoS::AtLeastOnce,
            "hello",
        ))
        .await
        .unwrap();
    let m = sub.recv().await;
    assert_eq!(&m.payload[..], b"hello");
    assert!(broker
        .publish(pigeon::codec::Publish::new(
            "bad/#",
            pigeon::codec::QoS::AtMostOnce,
            ""
        ))
        .await
        .is_err());
    broker.close().await;
}
