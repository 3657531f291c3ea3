//! MQTT 5.0 message expiry: expired messages are not delivered (queued for an
//! offline session or retained), and forwarded ones carry the interval minus
//! the time they waited in the broker.

mod v5_common;

use std::time::Duration;

use pigeon::codec::{Disconnect, Packet, Publish, QoS};
use pigeon_tests::start;
use v5_common::*;

fn expiring(topic: &str, qos: QoS, seconds: u32, payload: &'static str) -> Publish {
    let mut p = message(topic, qos, payload);
    p.properties.make_mut().message_expiry_interval = Some(seconds);
    p
}

#[tokio::test]
async fn v5_expiry_queued_messages_expire_and_the_rest_count_down() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut c = connect("me-sub");
    c.properties.session_expiry_interval = Some(60);
    let (mut sub, _) = connected(addr, c.clone()).await;
    subscribe(&mut sub, "me/t", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(Disconnect::default())).await;
    sub.closed().await;

    let (mut publisher, _) = connected(addr, connect("me-pub")).await;
    publish_acked(
        &mut publisher,
        expiring("me/t", QoS::AtLeastOnce, 1, "short"),
    )
    .await;
    publish_acked(
        &mut publisher,
        expiring("me/t", QoS::AtLeastOnce, 100, "long"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    c.clean_start = false;
    let (mut sub, _) = connected(addr, c).await;
    let got = next_publish(&mut sub).await;
    assert_eq!(got.payload, "long", "the 1 s message expired while queued");
    let left = got
        .properties
        .message_expiry_interval
        .expect("interval kept");
    assert!((97..=98).contains(&left), "100 s minus ~2 s waited: {left}");
    assert_no_publish(&mut sub, 200).await;

    // Live delivery: forwarded with the interval (nothing waited).
    publish_acked(
        &mut publisher,
        expiring("me/t", QoS::AtLeastOnce, 30, "live"),
    )
    .await;
    let got = next_publish(&mut sub).await;
    assert_eq!(got.properties.message_expiry_interval, Some(30));
    broker.close().await;
}

#[tokio::test]
async fn v5_expiry_retained_messages_expire() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut publisher, _) = connected(addr, connect("mr-pub")).await;
    let mut short = expiring("mr/short", QoS::AtLeastOnce, 1, "short");
    short.retain = true;
    publish_acked(&mut publisher, short).await;
    let mut long = expiring("mr/long", QoS::AtLeastOnce, 60, "long");
    long.retain = true;
    publish_acked(&mut publisher, long).await;

    let (mut early, _) = connected(addr, connect("mr-early")).await;
    subscribe(&mut early, "mr/short", QoS::AtLeastOnce).await;
    let got = next_publish(&mut early).await;
    assert!(got.retain && got.payload == "short");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (mut late, _) = connected(addr, connect("mr-late")).await;
    subscribe(&mut late, "mr/#", QoS::AtLeastOnce).await;
    let got = next_publish(&mut late).await;
    assert_eq!(got.payload, "long", "only the unexpired retained message");
    let left = got
        .properties
        .message_expiry_interval
        .expect("interval kept");
    assert!((57..=58).contains(&left), "{left}");
    assert_no_publish(&mut late, 200).await;
    broker.close().await;
}
