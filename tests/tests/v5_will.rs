//! MQTT 5.0 wills: delay interval (cancelled by a reconnection in time, cut
//! short by the session's end, including a clean-start takeover), will
//! properties passed through, and
//! DISCONNECT 0x04 asking for the will.

mod v5_common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use pigeon::codec::{Connect, Disconnect, Packet, QoS, ReasonCode, Will};
use pigeon_tests::start;
use v5_common::*;

fn with_will(id: &str, topic: &str, delay: u32, session_expiry: u32) -> Connect {
    let mut c = connect(id);
    c.properties.session_expiry_interval = Some(session_expiry);
    let mut will = Will {
        topic: topic.into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    will.properties.will_delay_interval = Some(delay);
    c.will = Some(will);
    c
}

#[tokio::test]
async fn v5_will_waits_for_its_delay() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut watcher, _) = connected(addr, connect("wd-watch")).await;
    subscribe(&mut watcher, "wd/+", QoS::AtLeastOnce).await;
    let (dying, _) = connected(addr, with_will("wd-1", "wd/1", 1, 60)).await;
    let dropped = Instant::now();
    drop(dying);
    let will = next_publish(&mut watcher).await;
    assert_eq!((&*will.topic, &will.payload[..]), ("wd/1", &b"gone"[..]));
    assert!(
        dropped.elapsed() >= Duration::from_millis(900),
        "published after the 1 s delay, not at once: {:?}",
        dropped.elapsed()
    );
    broker.close().await;
}

#[tokio::test]
async fn v5_will_is_cancelled_by_a_reconnection_in_time() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut watcher, _) = connected(addr, connect("wc-watch")).await;
    subscribe(&mut watcher, "wc/+", QoS::AtLeastOnce).await;
    let mut c = with_will("wc-1", "wc/1", 1, 60);
    let (dying, _) = connected(addr, c.clone()).await;
    drop(dying);
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.clean_start = false;
    c.will = None;
    let (_back, ack) = connected(addr, c).await;
    assert!(ack.session_present);
    assert_no_publish(&mut watcher, 1500).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_will_goes_at_session_end_when_sooner_than_its_delay() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut watcher, _) = connected(addr, connect("we-watch")).await;
    subscribe(&mut watcher, "we/+", QoS::AtLeastOnce).await;
    // Session expiry 0: the session ends with the connection, so the will goes now.
    let (dying, _) = connected(addr, with_will("we-1", "we/1", 3600, 0)).await;
    drop(dying);
    let will = next_publish(&mut watcher).await;
    assert_eq!(&*will.topic, "we/1");
    broker.close().await;
}

#[tokio::test]
async fn v5_will_goes_at_once_when_a_clean_start_ends_the_session() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut watcher, _) = connected(addr, connect("wt-watch")).await;
    subscribe(&mut watcher, "wt/+", QoS::AtLeastOnce).await;

    // Offline with its will waiting 60 s: a clean start ends the session.
    let (dying, _) = connected(addr, with_will("wt-1", "wt/1", 60, 120)).await;
    drop(dying);
    for _ in 0..500 {
        if !broker.clients().iter().any(|c| c == "wt-1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_fresh, ack) = connected(addr, connect("wt-1")).await;
    assert!(!ack.session_present);
    let will = next_publish(&mut watcher).await;
    assert_eq!((&*will.topic, &will.payload[..]), ("wt/1", &b"gone"[..]));

    // Online and taken over by a clean start: the will goes too.
    let (mut online, _) = connected(addr, with_will("wt-2", "wt/2", 60, 120)).await;
    let (_new, _) = connected(addr, connect("wt-2")).await;
    assert_eq!(
        disconnected(&mut online).await,
        ReasonCode::SessionTakenOver
    );
    assert_eq!(&*next_publish(&mut watcher).await.topic, "wt/2");
    // Once each.
    assert_no_publish(&mut watcher, 300).await;
    broker.close().await;
}

#[tokio::test]
async fn v5_will_properties_pass_through_and_disconnect_0x04_sends_it() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut watcher, _) = connected(addr, connect("wp-watch")).await;
    subscribe(&mut watcher, "wp/+", QoS::AtLeastOnce).await;
    let mut c = with_will("wp-1", "wp/1", 0, 0);
    if let Some(w) = &mut c.will {
        let p = &mut w.properties;
        p.content_type = Some("text/plain".into());
        p.response_topic = Some("wp/reply".into());
        p.correlation_data = Some(Bytes::from_static(b"c1"));
        p.payload_format_indicator = Some(true);
        p.message_expiry_interval = Some(120);
        p.user_properties = vec![("k".into(), "1".into()), ("k".into(), "2".into())];
    }
    let (mut leaving, _) = connected(addr, c).await;
    leaving
        .send(Packet::Disconnect(Disconnect::new(
            ReasonCode::DisconnectWithWillMessage,
        )))
        .await;
    let will = next_publish(&mut watcher).await;
    let p = &will.properties;
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.response_topic.as_deref(), Some("wp/reply"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"c1"[..]));
    assert_eq!(p.payload_format_indicator, Some(true));
    assert_eq!(p.message_expiry_interval, Some(120));
    assert_eq!(
        p.user_properties,
        [
            ("k".to_owned(), "1".to_owned()),
            ("k".to_owned(), "2".to_owned())
        ]
    );

    // A client's error code on DISCONNECT keeps the will too (MQTT-3.1.2-10).
    let (mut failing, _) = connected(addr, with_will("wp-3", "wp/3", 0, 0)).await;
    failing
        .send(Packet::Disconnect(Disconnect::new(
            ReasonCode::UnspecifiedError,
        )))
        .await;
    assert_eq!(&*next_publish(&mut watcher).await.topic, "wp/3");

    // A normal DISCONNECT discards the will.
    let (mut polite, _) = connected(addr, with_will("wp-2", "wp/2", 0, 0)).await;
    polite.send(Packet::Disconnect(Disconnect::default())).await;
    assert_no_publish(&mut watcher, 300).await;
    broker.close().await;
}
