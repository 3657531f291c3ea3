//! What MQTT 5.0 CONNACK announces and the broker then enforces: assigned
//! client identifier, server keep alive (`max_keepalive`), response
//! information, capability properties from the options, and redirection
//! with `server_reference` (3.x clients are accepted as usual: they cannot be
//! told where to go).

mod v5_common;

use pigeon::codec::{Packet, QoS, ReasonCode};
use pigeon_tests::{config, start, start_with, Mqtt, Raw};
use v5_common::*;

#[tokio::test]
async fn v5_connack_defaults_and_assigned_client_identifier() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut raw, ack) = connected(addr, connect("")).await;
    let p = &ack.properties;
    let id = p.assigned_client_identifier.clone().expect("assigned id");
    assert!(!id.is_empty());
    assert_eq!(p.receive_maximum, Some(100));
    assert_eq!(p.topic_alias_maximum, Some(10));
    assert_eq!(p.maximum_packet_size, Some(1024 * 1024));
    assert_eq!(p.maximum_qos, None, "QoS 2 is the default");
    assert_eq!(p.retain_available, None, "available is the default");
    assert_eq!(p.server_keep_alive, None, "no max_keepalive");
    assert_eq!(p.response_information, None, "not requested");
    assert!(
        broker.clients().contains(&id),
        "the broker knows it by that id"
    );
    subscribe(&mut raw, "ac/t", QoS::AtMostOnce).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_connack_server_keep_alive_is_announced_and_enforced() {
    let broker = start_with(pigeon::Config {
        max_keepalive: 1,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    for asked in [60, 0] {
        let mut c = connect("ska");
        c.keep_alive = asked;
        let (mut raw, ack) = connected(addr, c).await;
        assert_eq!(ack.properties.server_keep_alive, Some(1), "asked {asked}");
        // The broker's 1 s applies: silent for 1.5 s, the client is sent away.
        assert_eq!(disconnected(&mut raw).await, ReasonCode::KeepAliveTimeout);
    }
    let mut c = connect("ska-ok");
    c.keep_alive = 1;
    let (_, ack) = connected(addr, c).await;
    assert_eq!(ack.properties.server_keep_alive, None, "within the maximum");
    broker.close().await;
}

#[tokio::test]
async fn v5_connack_response_information_when_requested() {
    let broker = start().await;
    let mut c = connect("rr");
    c.properties.request_response_information = Some(true);
    let (_, ack) = connected(broker.local_addr(), c).await;
    assert_eq!(
        ack.properties.response_information.as_deref(),
        Some("response/rr")
    );
    broker.close().await;
}

#[tokio::test]
async fn v5_connack_capabilities_follow_the_options() {
    let broker = start_with(pigeon::Config {
        receive_maximum: 7,
        topic_alias_maximum: 0,
        max_packet_size: 4096,
        shared_subscription_available: false,
        subscription_identifiers_available: false,
        ..config()
    })
    .await;
    let (mut raw, ack) = connected(broker.local_addr(), connect("capz")).await;
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, Some(7));
    assert_eq!(
        p.topic_alias_maximum, None,
        "0: aliases off, absent means 0"
    );
    assert_eq!(p.maximum_packet_size, Some(4096));
    assert_eq!(p.shared_subscription_available, Some(false));
    assert_eq!(p.subscription_identifiers_available, Some(false));
    // With aliases off, any alias is invalid.
    let mut m = message("capz/t", QoS::AtMostOnce, "x");
    m.properties.make_mut().topic_alias = Some(1);
    raw.send(Packet::Publish(m)).await;
    assert_eq!(disconnected(&mut raw).await, ReasonCode::TopicAliasInvalid);
    broker.close().await;
}

#[tokio::test]
async fn v5_connack_server_reference_redirects_v5_and_accepts_v311() {
    let broker = start_with(pigeon::Config {
        server_reference: Some("other.example:1883".into()),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let (mut raw, ack) = Raw::connect(addr, connect("moved")).await;
    assert_eq!(ack.reason_code, ReasonCode::UseAnotherServer);
    assert_eq!(
        ack.properties.server_reference.as_deref(),
        Some("other.example:1883")
    );
    assert!(raw.closed().await.is_empty());
    let v3 = Mqtt::connect(addr, "stays").await;
    assert_eq!(v3.connack.code, rumqttc::ConnectReturnCode::Success);
    broker.close().await;
}

#[tokio::test]
async fn v5_connack_refuses_a_will_the_broker_cannot_honour() {
    let broker = start_with(pigeon::Config {
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let will = |qos, retain| pigeon::codec::Will {
        topic: "w/t".into(),
        payload: bytes::Bytes::from_static(b"bye"),
        qos,
        retain,
        properties: Default::default(),
    };
    for (w, code) in [
        (will(QoS::ExactlyOnce, false), ReasonCode::QoSNotSupported),
        (will(QoS::AtMostOnce, true), ReasonCode::RetainNotSupported),
    ] {
        let mut c = connect("will-refused");
        c.will = Some(w);
        let (mut raw, ack) = Raw::connect(addr, c).await;
        assert_eq!(ack.reason_code, code);
        assert!(ack.properties.reason_string.is_some(), "CONNACK says why");
        assert!(raw.closed().await.is_empty());
    }
    let mut c = connect("will-ok");
    c.will = Some(will(QoS::AtLeastOnce, false));
    connected(addr, c).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_connack_max_keepalive_refuses_v311_clients_it_cannot_tell() {
    let broker = start_with(pigeon::Config {
        max_keepalive: 10,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    for asked in [60, 0] {
        let mut c = Raw::connect_packet("ka3", true);
        c.keep_alive = asked;
        let (_, ack) = Raw::connect(addr, c).await;
        assert_eq!(
            ack.reason_code,
            ReasonCode::ClientIdentifierNotValid,
            "asked {asked}"
        );
    }
    let mut c = Raw::connect_packet("ka3", true);
    c.keep_alive = 10;
    let (_, ack) = Raw::connect(addr, c).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.close().await;
}
