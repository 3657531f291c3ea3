//! MQTT 5.0 protocol corners checked on the bytes: a client's PUBLISH with a
//! Subscription Identifier (DISCONNECT 0x82), CONNECT with an unsupported
//! protocol level (CONNACK 0x84 in the form the client can read), a refusing
//! CONNACK within the client's Maximum Packet Size (no reason string then).

mod v5_common;

use pigeon::codec::{Packet, Protocol, QoS, ReasonCode, Will};
use pigeon_tests::{config, start, start_with, Raw, WAIT};
use tokio::io::AsyncReadExt;
use v5_common::*;

/// Every byte the broker sends until it closes the connection.
async fn bytes_until_close(raw: &mut Raw) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, raw.stream.read_to_end(&mut all))
        .await
        .expect("the broker closes in time")
        .expect("a clean close, not a reset");
    all
}

/// A CONNECT with protocol `name` and `level`, in the 5.0 layout (empty
/// properties, empty client id, clean start, keep alive 60).
fn connect_bytes(name: &[u8], level: u8) -> Vec<u8> {
    let mut body = (name.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00]);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

#[tokio::test]
async fn v5_corners_publish_with_subscription_identifier_is_a_protocol_error() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut watcher, _) = connected(addr, connect("subid-watch")).await;
    subscribe(&mut watcher, "sid/t", QoS::AtMostOnce).await;
    let (mut raw, _) = connected(addr, connect("subid-pub")).await;
    let mut publish = message("sid/t", QoS::AtLeastOnce, "x");
    publish.properties.make_mut().subscription_identifiers = vec![7];
    raw.send(Packet::Publish(publish)).await;
    assert_eq!(disconnected(&mut raw).await, ReasonCode::ProtocolError);
    assert_no_publish(&mut watcher, 200).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_corners_protocol_level_above_5_gets_connack_0x84_in_the_5_0_form() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut raw = Raw::tcp(addr).await;
    raw.send_bytes(&connect_bytes(b"MQTT", 6)).await;
    // Fixed header, remaining length 3, flags 0, reason 0x84, no properties.
    assert_eq!(
        bytes_until_close(&mut raw).await,
        [0x20, 0x03, 0x00, 0x84, 0x00]
    );
    broker.close().await;
}

#[tokio::test]
async fn v5_corners_older_unsupported_levels_get_the_3_1_1_return_code_1() {
    let broker = start().await;
    let addr = broker.local_addr();
    for (name, level) in [(&b"MQTT"[..], 3), (b"MQTT", 2), (b"MQIsdp", 4)] {
        let mut raw = Raw::tcp(addr).await;
        raw.send_bytes(&connect_bytes(name, level)).await;
        assert_eq!(
            bytes_until_close(&mut raw).await,
            [0x20, 0x02, 0x00, 0x01],
            "level {level}"
        );
    }
    broker.close().await;
}

/// A v5 CONNECT with a QoS 2 will (refused by a broker with maximum QoS 1)
/// and the client's Maximum Packet Size `limit`.
fn qos2_will_connect(limit: u32) -> Packet {
    let mut c = connect("big-connack");
    c.properties.maximum_packet_size = Some(limit);
    c.will = Some(Will {
        topic: "w".into(),
        payload: "bye".into(),
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: Default::default(),
    });
    Packet::Connect(Box::new(c))
}

#[tokio::test]
async fn v5_corners_refusing_connack_drops_its_reason_string_above_the_clients_maximum() {
    let broker = start_with(pigeon::Config {
        maximum_qos: QoS::AtLeastOnce,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    // Room enough: CONNACK 0x9B with its reason string.
    let mut raw = Raw::tcp(addr).await;
    raw.protocol = Protocol::V5;
    raw.send(qos2_will_connect(1024)).await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => {
            assert_eq!(ack.reason_code, ReasonCode::QoSNotSupported);
            assert!(ack.properties.reason_string.is_some(), "{ack:?}");
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    // 10 bytes at most: the same CONNACK, bare (5 bytes).
    let mut raw = Raw::tcp(addr).await;
    raw.protocol = Protocol::V5;
    raw.send(qos2_will_connect(10)).await;
    assert_eq!(
        bytes_until_close(&mut raw).await,
        [0x20, 0x03, 0x00, 0x9b, 0x00]
    );
    broker.close().await;
}
