//! `$SYS/<id>/...` topics with the seed's payloads, and the ban on clients
//! publishing there.

use std::time::Duration;

use pigeon_tests::{config, start_with, Mqtt};
use rumqttc::QoS;

#[tokio::test]
async fn sys_topics_report_heartbeat_clients_and_subscriptions() {
    let broker = start_with(pigeon::Config {
        id: "pigeon-sys-test".into(),
        heartbeat_interval: Duration::from_millis(200),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut sys = Mqtt::connect(addr, "monitor").await;
    sys.subscribe("$SYS/pigeon-sys-test/heartbeat", QoS::AtMostOnce)
        .await;
    let beat = sys.recv().await;
    assert_eq!(&beat.payload[..], b"pigeon-sys-test");
    sys.client
        .unsubscribe("$SYS/pigeon-sys-test/heartbeat")
        .await
        .unwrap();
    sys.subscribe("$SYS/pigeon-sys-test/new/#", QoS::AtMostOnce)
        .await;
    sys.subscribe("$SYS/pigeon-sys-test/disconnect/#", QoS::AtMostOnce)
        .await;
    // Heartbeats may still be in flight from before the unsubscribe.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut other = Mqtt::connect(addr, "newcomer").await;
    other.subscribe("a/b", QoS::AtLeastOnce).await;
    other.client.unsubscribe("a/b").await.unwrap();
    other.next_other().await;
    other.disconnect().await;

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let m = sys.recv().await;
        // Skip heartbeats and the notices about the monitor's own subscriptions.
        if m.topic.ends_with("heartbeat") || !m.payload.windows(8).any(|w| w == b"newcomer") {
            continue;
        }
        seen.push((m.topic, String::from_utf8(m.payload.to_vec()).unwrap()));
    }
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(
        seen[0],
        ("$SYS/pigeon-sys-test/new/clients".into(), "newcomer".into())
    );
    assert_eq!(seen[1].0, "$SYS/pigeon-sys-test/new/subscribers");
    assert_eq!(
        json(&seen[1].1),
        serde_json::json!({"clientId": "newcomer", "subs": [{"topic": "a/b", "qos": 1}]})
    );
    assert_eq!(seen[2].0, "$SYS/pigeon-sys-test/new/unsubscribers");
    assert_eq!(
        json(&seen[2].1),
        serde_json::json!({"clientId": "newcomer", "subs": ["a/b"]})
    );
    assert_eq!(
        seen[3],
        (
            "$SYS/pigeon-sys-test/disconnect/clients".into(),
            "newcomer".into()
        )
    );
    broker.close().await;
}

#[tokio::test]
async fn clients_may_not_publish_to_sys() {
    let broker = start_with(pigeon::Config {
        id: "sysban".into(),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut sys = Mqtt::connect(addr, "monitor").await;
    sys.subscribe("$SYS/sysban/fake", QoS::AtLeastOnce).await;
    let mut raw =
        pigeon_tests::Raw::connect(addr, pigeon_tests::Raw::connect_packet("faker", true))
            .await
            .0;
    let mut publish =
        pigeon::codec::Publish::new("$SYS/sysban/fake", pigeon::codec::QoS::AtLeastOnce, "lies");
    publish.packet_id = 1;
    raw.send(pigeon::codec::Packet::Publish(publish)).await;
    // MQTT-3.3.5-2: the 3.1.1 client is disconnected, nothing is sent back.
    assert!(raw.closed().await.is_empty());
    sys.assert_silent(300).await;
    pigeon_tests::assert_serving(addr).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_publish_to_sys_is_refused_with_not_authorized_and_the_client_stays() {
    use pigeon::codec::{Connect, Packet, Protocol, Publish, QoS as Q, ReasonCode};
    let broker = start_with(config()).await;
    let addr = broker.local_addr();
    let (mut raw, _) =
        pigeon_tests::Raw::connect(addr, Connect::new(Protocol::V5, "v5faker")).await;
    let mut publish = Publish::new("$SYS/anything", Q::AtLeastOnce, "lies");
    publish.packet_id = 5;
    raw.send(Packet::Publish(publish)).await;
    assert!(matches!(
        raw.recv().await,
        Some(Packet::PubAck(a)) if a.packet_id == 5 && a.reason_code == ReasonCode::NotAuthorized
    ));
    raw.send(Packet::PingReq).await;
    assert!(matches!(raw.recv().await, Some(Packet::PingResp)));
    broker.close().await;
}

/// Mosquitto's `$SYS/broker/...` tree, read as its users read it: with
/// `mosquitto_sub -t '$SYS/broker/#'`.
#[tokio::test]
async fn mosquitto_style_broker_statistics_are_published_every_sys_interval() {
    let broker = start_with(pigeon::Config {
        sys_interval: Duration::from_secs(1),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let publisher = Mqtt::connect(addr, "stats-pub").await;
    for i in 0..3 {
        publisher
            .publish("stats/x", QoS::AtLeastOnce, false, format!("{i}"))
            .await;
    }
    // 29 topics: the retained set at once, then one full round a second later.
    let port = addr.port().to_string();
    let out = pigeon_tests::run_tool(
        "mosquitto_sub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "$SYS/broker/#",
            "-v",
            "-C",
            "58",
            "-W",
            "10",
        ],
        pigeon_tests::MOSQUITTO_CLIENTS,
        Duration::from_secs(15),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut latest = std::collections::HashMap::new();
    for line in text.lines() {
        // Mosquitto's one topic with a space in it; values may have spaces too.
        let spaced = "$SYS/broker/retained messages/count";
        let (topic, value) = match line.strip_prefix(spaced) {
            Some(rest) => (spaced, rest.trim_start()),
            None => line.split_once(' ').expect("topic value"),
        };
        latest.insert(topic.to_owned(), value.to_owned());
    }
    let value = |suffix: &str| -> &str {
        latest
            .get(&format!("$SYS/broker/{suffix}"))
            .unwrap_or_else(|| panic!("$SYS/broker/{suffix} missing from:\n{text}"))
    };
    let number = |suffix: &str| -> f64 { value(suffix).parse().expect("a number") };
    assert_eq!(
        value("version"),
        concat!("pigeon version ", env!("CARGO_PKG_VERSION"))
    );
    assert!(value("uptime").ends_with(" seconds"));
    // The publisher and mosquitto_sub itself.
    assert_eq!(number("clients/connected"), 2.0);
    assert!(number("clients/maximum") >= 2.0);
    assert_eq!(number("clients/total"), 2.0);
    assert!(number("messages/received") >= 3.0);
    assert!(number("bytes/received") > 0.0);
    assert_eq!(number("subscriptions/count"), 1.0);
    assert!(number("retained messages/count") >= 1.0);
    for load in [
        "messages/received",
        "messages/sent",
        "bytes/received",
        "connections",
    ] {
        for window in ["1min", "5min", "15min"] {
            assert!(number(&format!("load/{load}/{window}")) >= 0.0);
        }
    }
    assert!(number("load/messages/received/1min") > 0.0);
    publisher.disconnect().await;
    broker.close().await;
}
