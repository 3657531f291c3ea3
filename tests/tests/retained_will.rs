//! Retained messages, wills and keep alive.

use std::time::{Duration, Instant};

use pigeon::codec::{self as codec, Packet, Will};
use pigeon_tests::{options, start, Mqtt, Raw};
use rumqttc::{LastWill, QoS};

#[tokio::test]
async fn retained_message_is_sent_on_subscribe_and_cleared_by_empty_payload() {
    let broker = start().await;
    let addr = broker.local_addr();
    let publisher = Mqtt::connect(addr, "pub").await;
    publisher
        .publish("r/state", QoS::AtLeastOnce, true, "on")
        .await;
    publisher
        .publish("r/other", QoS::AtMostOnce, true, "zero")
        .await;
    // Wait until both are stored.
    let t0 = Instant::now();
    while broker.stats().retained < 2 {
        assert!(t0.elapsed() < Duration::from_secs(5), "retained not stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut sub = Mqtt::connect(addr, "late").await;
    sub.subscribe("r/state", QoS::AtLeastOnce).await;
    let m = sub.recv().await;
    assert_eq!(
        (m.retain, &m.payload[..], m.qos),
        (true, &b"on"[..], QoS::AtLeastOnce)
    );

    // A live message on an existing subscription carries retain = 0.
    publisher
        .publish("r/state", QoS::AtLeastOnce, true, "off")
        .await;
    let m = sub.recv().await;
    assert_eq!((m.retain, &m.payload[..]), (false, &b"off"[..]));

    // Clearing: empty payload, retained.
    publisher
        .publish("r/state", QoS::AtLeastOnce, true, "")
        .await;
    assert!(sub.recv().await.payload.is_empty());
    let t0 = Instant::now();
    while broker.stats().retained != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "retained not cleared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut later = Mqtt::connect(addr, "later").await;
    later.subscribe("r/#", QoS::AtLeastOnce).await;
    let m = later.recv().await;
    assert_eq!(
        (m.topic.as_str(), m.retain, m.qos),
        ("r/other", true, QoS::AtMostOnce)
    );
    later.assert_silent(300).await;
    broker.close().await;
}

fn with_will(addr: std::net::SocketAddr, id: &str, topic: &str) -> rumqttc::MqttOptions {
    let mut opts = options(addr, id);
    opts.set_last_will(LastWill::new(topic, "gone", QoS::AtLeastOnce, false));
    opts
}

#[tokio::test]
async fn will_is_published_on_abnormal_disconnect_only() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut watcher = Mqtt::connect(addr, "watcher").await;
    watcher.subscribe("wills/#", QoS::AtLeastOnce).await;

    let polite = Mqtt::connect_with(with_will(addr, "polite", "wills/polite")).await;
    polite.disconnect().await;
    let crashed = Mqtt::connect_with(with_will(addr, "crashed", "wills/crashed")).await;
    crashed.kill();

    let m = watcher.recv().await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("wills/crashed", &b"gone"[..])
    );
    watcher.assert_silent(300).await;
    broker.close().await;
}

#[tokio::test]
async fn keepalive_timeout_closes_the_connection_and_publishes_the_will() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut watcher = Mqtt::connect(addr, "watcher").await;
    watcher.subscribe("ka/#", QoS::AtLeastOnce).await;

    let mut connect = Raw::connect_packet("sleepy", true);
    connect.keep_alive = 1;
    connect.will = Some(Will {
        topic: "ka/sleepy".into(),
        payload: "timed out".into(),
        qos: codec::QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let started = Instant::now();
    let (mut raw, _) = Raw::connect(addr, connect).await;
    assert!(raw.closed().await.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_millis(4000),
        "closed after {waited:?}, expected about 1.5 s"
    );
    assert_eq!(watcher.recv().await.payload, "timed out");

    // A client that pings in time stays connected past 1.5 x keep alive.
    let mut connect = Raw::connect_packet("awake", true);
    connect.keep_alive = 1;
    let (mut raw, _) = Raw::connect(addr, connect).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        raw.send(Packet::PingReq).await;
        assert!(matches!(raw.recv().await, Some(Packet::PingResp)));
    }
    broker.close().await;
}
