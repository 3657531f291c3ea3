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
