//! The durable store across restarts of an embedded broker: each kind of state
//! a persistent session, a retained message or a will has comes back, and
//! timers count the time the broker was down. (The kill -9 tests, on the
//! binary, are in `pigeon/tests/durable_kill.rs`.)

mod v5_common;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use pigeon::{
    codec::{Packet, QoS, Subscribe, SubscribeFilter, SubscriptionOptions, Will},
    config::Store,
    BrokerHandle, Config,
};
use pigeon_tests::{config, start_with};
use v5_common::*;

fn store(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pigeon-restart-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.redb")
}

fn durable(path: &Path) -> Config {
    Config {
        persistence: Store::Redb(path.to_owned()),
        ..config()
    }
}

/// Closes the broker and waits until its store is closed, so that the next
/// start can open the file.
async fn stop(broker: BrokerHandle) {
    broker.close().await;
    drop(broker);
}

/// Starts again on the same file (a few tries while the last one lets go).
async fn restart(path: &Path) -> BrokerHandle {
    for _ in 0..50 {
        match pigeon::Broker::start(durable(path), pigeon::hooks::Hooks::none()).await {
            Ok(broker) => return broker,
            Err(e) if e.to_string().contains("already open") => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("restart: {e}"),
        }
    }
    panic!("the store stayed open");
}

#[tokio::test]
async fn a_persistent_session_keeps_its_subscriptions_options_and_queue() {
    let path = store("session");
    let broker = start_with(durable(&path)).await;
    let mut c = connect("keeper");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(3600);
    let (mut sub, _) = connected(broker.local_addr(), c.clone()).await;
    let mut subscribe = Subscribe::new(
        3,
        vec![SubscribeFilter {
            filter: "s/+".into(),
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                ..Default::default()
            },
        }],
    );
    subscribe.properties.subscription_identifier = Some(77);
    sub.send(Packet::Subscribe(subscribe)).await;
    while !matches!(sub.recv().await, Some(Packet::SubAck(_))) {}
    drop(sub);
    // Offline: a QoS 1 message waits in the store.
    let (mut publisher, _) = connected(broker.local_addr(), connect("p1")).await;
    publish_acked(
        &mut publisher,
        message("s/a", QoS::AtLeastOnce, "while away"),
    )
    .await;
    stop(broker).await;

    let broker = restart(&path).await;
    assert_eq!(broker.stats().subscriptions, 1, "the subscription is back");
    let (mut sub, ack) = connected(broker.local_addr(), c).await;
    assert!(ack.session_present, "the session is back");
    let queued = next_publish(&mut sub).await;
    assert_eq!(&queued.payload[..], b"while away");
    assert_eq!(queued.properties.subscription_identifiers, vec![77]);
    // The options came back too: QoS 2 granted, no-local.
    let (mut publisher, _) = connected(broker.local_addr(), connect("p2")).await;
    publish_acked(&mut publisher, message("s/b", QoS::ExactlyOnce, "after")).await;
    let live = next_publish(&mut sub).await;
    assert_eq!(
        (live.qos, &live.payload[..]),
        (QoS::ExactlyOnce, &b"after"[..])
    );
    stop(broker).await;
}

#[tokio::test]
async fn retained_messages_come_back_and_their_expiry_counts_the_downtime() {
    let path = store("retained");
    let broker = start_with(durable(&path)).await;
    let (mut publisher, _) = connected(broker.local_addr(), connect("rp")).await;
    let mut kept = message("r/kept", QoS::AtLeastOnce, "kept");
    kept.retain = true;
    publish_acked(&mut publisher, kept).await;
    let mut brief = message("r/brief", QoS::AtLeastOnce, "brief");
    brief.retain = true;
    brief.packet_id = 2;
    brief.properties.make_mut().message_expiry_interval = Some(1);
    publish_acked(&mut publisher, brief).await;
    stop(broker).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let broker = restart(&path).await;
    let (mut sub, _) = connected(broker.local_addr(), connect("rs")).await;
    subscribe(&mut sub, "r/#", QoS::AtLeastOnce).await;
    let got = next_publish(&mut sub).await;
    assert_eq!((&*got.topic, got.retain), ("r/kept", true));
    assert_no_publish(&mut sub, 300).await;
    stop(broker).await;
}

#[tokio::test]
async fn a_session_expires_while_the_broker_is_down() {
    let path = store("expiry");
    let broker = start_with(durable(&path)).await;
    let mut short = connect("short");
    short.clean_start = false;
    short.properties.session_expiry_interval = Some(1);
    let mut long = connect("long");
    long.clean_start = false;
    long.properties.session_expiry_interval = Some(3600);
    for c in [&short, &long] {
        let (mut raw, _) = connected(broker.local_addr(), c.clone()).await;
        subscribe(&mut raw, "e/x", QoS::AtLeastOnce).await;
        raw.send(Packet::Disconnect(Default::default())).await;
        let _ = raw.closed().await;
    }
    stop(broker).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let broker = restart(&path).await;
    assert_eq!(broker.stats().subscriptions, 1, "only the long session's");
    let (_raw, ack) = connected(broker.local_addr(), short).await;
    assert!(!ack.session_present, "expired while the broker was down");
    let (_raw, ack) = connected(broker.local_addr(), long).await;
    assert!(ack.session_present);
    stop(broker).await;
}

#[tokio::test]
async fn a_will_whose_delay_passes_while_the_broker_is_down_is_published_on_restart() {
    let path = store("will");
    let broker = start_with(durable(&path)).await;
    let mut c = connect("dying");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(3600);
    let mut will = Will {
        topic: "w/dying".into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        // Retained, so that it can be seen after the restart that publishes it.
        retain: true,
        properties: Default::default(),
    };
    will.properties.will_delay_interval = Some(1);
    c.will = Some(will);
    let (raw, _) = connected(broker.local_addr(), c).await;
    drop(raw); // no DISCONNECT: the will is due in 1 s
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop(broker).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let broker = restart(&path).await;
    let (mut watcher, _) = connected(broker.local_addr(), connect("watcher")).await;
    subscribe(&mut watcher, "w/#", QoS::AtLeastOnce).await;
    let got = next_publish(&mut watcher).await;
    assert_eq!((&*got.topic, &got.payload[..]), ("w/dying", &b"gone"[..]));
    stop(broker).await;
}

#[tokio::test]
async fn acknowledgements_waiting_for_the_disk_keep_the_order_of_the_publishes() {
    let path = store("order");
    let broker = start_with(durable(&path)).await;
    let mut away = connect("away");
    away.clean_start = false;
    away.properties.session_expiry_interval = Some(3600);
    let (mut sub, _) = connected(broker.local_addr(), away).await;
    subscribe(&mut sub, "o/stored", QoS::AtLeastOnce).await;
    drop(sub);
    let (mut publisher, _) = connected(broker.local_addr(), connect("op")).await;
    // Stored and not stored, interleaved: all sent before any PUBACK is read.
    for id in 1..=60u16 {
        let topic = if id % 3 == 0 { "o/other" } else { "o/stored" };
        let mut p = message(topic, QoS::AtLeastOnce, "x");
        p.packet_id = id;
        publisher.send(Packet::Publish(p)).await;
    }
    let mut order = Vec::new();
    while order.len() < 60 {
        match publisher.recv().await {
            Some(Packet::PubAck(ack)) => order.push(ack.packet_id),
            Some(_) => {}
            None => panic!("closed after {order:?}"),
        }
    }
    assert_eq!(order, (1..=60).collect::<Vec<_>>());
    stop(broker).await;
}
