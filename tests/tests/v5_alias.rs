//! MQTT 5.0 topic aliases, byte-level: inbound within the broker's Topic
//! Alias Maximum (announced in CONNACK) with the protocol errors for bad
//! aliases; outbound within the client's maximum, never for 3.x.

mod v5_common;

use pigeon::codec::{ByteStr, Packet, Publish, QoS, ReasonCode};
use pigeon_tests::{start, Mqtt};
use v5_common::*;

fn aliased(topic: &str, alias: u16, payload: &'static str) -> Publish {
    let mut p = Publish::new(topic, QoS::AtMostOnce, payload);
    p.properties.make_mut().topic_alias = Some(alias);
    p
}

#[tokio::test]
async fn v5_alias_inbound_aliases_resolve_to_their_topic() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut sub, _) = connected(addr, connect("al-sub")).await;
    subscribe(&mut sub, "al/#", QoS::AtMostOnce).await;
    let (mut publisher, ack) = connected(addr, connect("al-pub")).await;
    assert_eq!(
        ack.properties.topic_alias_maximum,
        Some(10),
        "default maximum"
    );
    publisher
        .send(Packet::Publish(aliased("al/a", 3, "one")))
        .await;
    publisher.send(Packet::Publish(aliased("", 3, "two"))).await;
    // Re-pointing an alias is allowed.
    publisher
        .send(Packet::Publish(aliased("al/b", 3, "three")))
        .await;
    publisher
        .send(Packet::Publish(aliased("", 3, "four")))
        .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let p = next_publish(&mut sub).await;
        assert_eq!(p.properties.topic_alias, None, "sub asked for no aliases");
        got.push(format!(
            "{}={}",
            &*p.topic,
            String::from_utf8_lossy(&p.payload)
        ));
    }
    assert_eq!(got, ["al/a=one", "al/a=two", "al/b=three", "al/b=four"]);
    broker.close().await;
}

#[tokio::test]
async fn v5_alias_zero_above_maximum_or_unknown_closes_the_connection() {
    let broker = start().await;
    let addr = broker.local_addr();
    // Alias 0 by hand: the codec refuses to encode it.
    let (mut raw, _) = connected(addr, connect("al-zero")).await;
    raw.send_bytes(&[0x30, 11, 0, 4, b'a', b'l', b'/', b'x', 3, 0x23, 0, 0, b'x'])
        .await;
    assert_eq!(disconnected(&mut raw).await, ReasonCode::TopicAliasInvalid);
    for (alias, topic, code) in [
        (11, "al/x", ReasonCode::TopicAliasInvalid),
        (4, "", ReasonCode::ProtocolError),
    ] {
        let (mut raw, _) = connected(addr, connect("al-bad")).await;
        raw.send(Packet::Publish(aliased(topic, alias, "x"))).await;
        assert_eq!(
            disconnected(&mut raw).await,
            code,
            "alias {alias} {topic:?}"
        );
    }
    broker.close().await;
}

#[tokio::test]
async fn v5_alias_outbound_within_the_clients_maximum_and_never_for_v311() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut c = connect("al-out");
    c.properties.topic_alias_maximum = Some(2);
    let (mut sub, _) = connected(addr, c).await;
    subscribe(&mut sub, "ao/#", QoS::AtLeastOnce).await;
    let mut v3 = Mqtt::connect(addr, "al-v3").await;
    v3.subscribe("ao/#", rumqttc::QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(addr, connect("al-out-pub")).await;
    for topic in ["ao/a", "ao/a", "ao/b", "ao/c", "ao/b", "ao/c"] {
        publisher
            .send(Packet::Publish(Publish::new(topic, QoS::AtMostOnce, "m")))
            .await;
    }
    let mut got: Vec<(ByteStr, Option<u16>)> = Vec::new();
    for _ in 0..6 {
        let p = next_publish(&mut sub).await;
        got.push((p.topic, p.properties.topic_alias));
    }
    let expect: Vec<(ByteStr, Option<u16>)> = vec![
        ("ao/a".into(), Some(1)),
        ("".into(), Some(1)),
        ("ao/b".into(), Some(2)),
        ("ao/c".into(), None), // both aliases in use
        ("".into(), Some(2)),
        ("ao/c".into(), None),
    ];
    assert_eq!(got, expect);
    for topic in ["ao/a", "ao/a", "ao/b", "ao/c", "ao/b", "ao/c"] {
        assert_eq!(v3.recv().await.topic, topic, "3.1.1 always gets the topic");
    }
    broker.close().await;
}
