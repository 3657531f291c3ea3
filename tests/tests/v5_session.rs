//! MQTT 5.0 session expiry and clean start, byte-level: a session outlives its
//! connection for its expiry interval (capped by the broker), then goes with
//! its subscriptions and queue; DISCONNECT may change the interval but not
//! from 0; clean start discards a session.

mod v5_common;

use std::time::Duration;

use pigeon::codec::{Disconnect, Packet, QoS, ReasonCode};
use pigeon_tests::{config, start, start_with};
use v5_common::*;

#[tokio::test]
async fn v5_session_survives_its_expiry_interval_then_is_removed() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut c = connect("se-sub");
    c.properties.session_expiry_interval = Some(1);
    let (mut sub, ack) = connected(addr, c.clone()).await;
    assert!(!ack.session_present);
    assert_eq!(
        ack.properties.session_expiry_interval, None,
        "granted as asked"
    );
    subscribe(&mut sub, "se/t", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(Disconnect::default())).await;
    sub.closed().await;

    // Offline: a QoS 1 message is queued for the session.
    let (mut publisher, _) = connected(addr, connect("se-pub")).await;
    let ack = publish_acked(&mut publisher, message("se/t", QoS::AtLeastOnce, "kept")).await;
    assert_eq!(
        ack.reason_code,
        ReasonCode::Success,
        "the offline session matches"
    );

    c.clean_start = false;
    let (mut sub, ack) = connected(addr, c.clone()).await;
    assert!(ack.session_present, "resumed within the interval");
    assert_eq!(next_publish(&mut sub).await.payload, "kept");
    sub.send(Packet::Disconnect(Disconnect::default())).await;
    sub.closed().await;

    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(
        !broker
            .subscriptions()
            .iter()
            .any(|(id, _, _)| id == "se-sub"),
        "expired session's subscriptions are gone"
    );
    let ack = publish_acked(&mut publisher, message("se/t", QoS::AtLeastOnce, "lost")).await;
    assert_eq!(ack.reason_code, ReasonCode::NoMatchingSubscribers);
    let (_, ack) = connected(addr, c).await;
    assert!(!ack.session_present, "expired");
    broker.close().await;
}

#[tokio::test]
async fn v5_session_clean_start_discards_and_zero_expiry_ends_at_disconnect() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut c = connect("cs-sub");
    c.properties.session_expiry_interval = Some(300);
    let (mut sub, _) = connected(addr, c.clone()).await;
    subscribe(&mut sub, "cs/t", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(Disconnect::default())).await;
    sub.closed().await;
    // Clean start: the stored session is discarded.
    let (mut sub, ack) = connected(addr, c.clone()).await;
    assert!(!ack.session_present);
    let (mut publisher, _) = connected(addr, connect("cs-pub")).await;
    let ack = publish_acked(&mut publisher, message("cs/t", QoS::AtLeastOnce, "x")).await;
    assert_eq!(ack.reason_code, ReasonCode::NoMatchingSubscribers);

    // DISCONNECT with expiry 0 ends a 300 s session at once.
    subscribe(&mut sub, "cs/t", QoS::AtLeastOnce).await;
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(0);
    sub.send(Packet::Disconnect(d)).await;
    sub.closed().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.clean_start = false;
    let (_, ack) = connected(addr, c).await;
    assert!(!ack.session_present, "ended by DISCONNECT");
    broker.close().await;
}

#[tokio::test]
async fn v5_session_expiry_set_on_disconnect_after_zero_is_a_protocol_error() {
    let broker = start().await;
    let (mut raw, _) = connected(broker.local_addr(), connect("zero")).await;
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(30);
    raw.send(Packet::Disconnect(d)).await;
    assert_eq!(disconnected(&mut raw).await, ReasonCode::ProtocolError);
    broker.close().await;
}

#[tokio::test]
async fn v5_session_expiry_is_capped_by_the_broker_and_announced() {
    let broker = start_with(pigeon::Config {
        max_session_expiry_interval: 1,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut c = connect("capped");
    c.properties.session_expiry_interval = Some(3600);
    let (mut raw, ack) = connected(addr, c.clone()).await;
    assert_eq!(ack.properties.session_expiry_interval, Some(1));
    subscribe(&mut raw, "cap/t", QoS::AtLeastOnce).await;
    raw.send(Packet::Disconnect(Disconnect::default())).await;
    raw.closed().await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    c.clean_start = false;
    let (_, ack) = connected(addr, c).await;
    assert!(
        !ack.session_present,
        "expired after the broker's 1 s, not 3600 s"
    );
    broker.close().await;
}
