//! MQTT 5.0 subscription identifiers: stored per subscription, every matching
//! identifier on the one copy a client gets, and DISCONNECT 0xA1 when they are
//! switched off.

use pigeon_codec::{Packet, QoS, ReasonCode};
use pigeon_tests::{
    config,
    raw5::{connect, opts},
    start, start_with, Raw,
};

#[tokio::test]
async fn one_copy_carries_every_matching_identifier() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = connect(addr, "ids").await;
    sub.subscribe5(1, &[("a/+", opts(QoS::AtMostOnce))], Some(1))
        .await;
    sub.subscribe5(2, &[("a/#", opts(QoS::AtLeastOnce))], Some(2))
        .await;
    sub.subscribe5(3, &[("$share/g/a/b", opts(QoS::AtMostOnce))], Some(3))
        .await;
    sub.subscribe5(4, &[("other", opts(QoS::AtMostOnce))], None)
        .await;
    let mut publisher = connect(addr, "ids-pub").await;
    publisher
        .publish5("a/b", QoS::AtLeastOnce, false, "m", 1)
        .await;

    let mut copies = Vec::new();
    while let Some(p) = sub.next_publish_within(400).await {
        copies.push((p.qos, p.properties.get().subscription_identifiers.clone()));
    }
    copies.sort();
    // The plain copy: highest QoS of its matches, both identifiers; the shared copy apart.
    assert_eq!(
        copies,
        vec![(QoS::AtMostOnce, vec![3]), (QoS::AtLeastOnce, vec![1, 2])]
    );

    // No identifier on a subscription without one; replacing a subscription
    // without an identifier drops the old one.
    publisher
        .publish5("other", QoS::AtMostOnce, false, "o", 0)
        .await;
    assert!(sub
        .next_publish()
        .await
        .properties
        .subscription_identifiers
        .is_empty());
    sub.subscribe5(5, &[("a/#", opts(QoS::AtLeastOnce))], None)
        .await;
    publisher
        .publish5("a", QoS::AtMostOnce, false, "m2", 0)
        .await;
    assert!(sub
        .next_publish()
        .await
        .properties
        .subscription_identifiers
        .is_empty());
}

#[tokio::test]
async fn retained_messages_on_subscribe_carry_the_identifier() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut publisher = connect(addr, "rid-pub").await;
    publisher
        .publish5("r/1", QoS::AtLeastOnce, true, "kept", 1)
        .await;
    assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    let mut sub = connect(addr, "rid").await;
    sub.subscribe5(1, &[("r/+", opts(QoS::AtLeastOnce))], Some(42))
        .await;
    let p = sub.next_publish().await;
    assert!(p.retain);
    assert_eq!(p.properties.subscription_identifiers, vec![42]);
}

#[tokio::test]
async fn identifiers_switched_off_are_a_disconnect_0xa1() {
    let mut cfg = config();
    cfg.subscription_identifiers_available = false;
    let broker = start_with(cfg).await;
    let (mut raw, ack) = Raw::connect(
        broker.local_addr(),
        pigeon_tests::raw5::connect_packet("noids"),
    )
    .await;
    assert_eq!(
        ack.properties.subscription_identifiers_available,
        Some(false)
    );
    let mut subscribe = pigeon_codec::Subscribe::new(
        1,
        vec![pigeon_codec::SubscribeFilter::new("t", QoS::AtMostOnce)],
    );
    subscribe.properties.subscription_identifier = Some(9);
    raw.send(Packet::Subscribe(subscribe)).await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d))
            if d.reason_code == ReasonCode::SubscriptionIdentifiersNotSupported),
        "{seen:?}"
    );
}
