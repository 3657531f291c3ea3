//! MQTT 5.0 reason codes and reason strings the broker sends: PUBACK/PUBREC
//! 0x10 and 0x99, UNSUBACK 0x11, SUBACK 0xA2, DISCONNECT 0x8D, 0x8E, 0x9A,
//! 0x9B, 0x99; reason strings only when Request Problem Information allows.

mod v5_common;

use pigeon::codec::{Packet, PubReply, QoS, ReasonCode, Unsubscribe};
use pigeon_tests::{config, start, start_with};
use v5_common::*;

#[tokio::test]
async fn v5_reasons_no_matching_subscribers_on_puback_and_pubrec() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut raw, _) = connected(addr, connect("nm")).await;
    let ack = publish_acked(&mut raw, message("nm/t", QoS::AtLeastOnce, "x")).await;
    assert_eq!(ack.reason_code, ReasonCode::NoMatchingSubscribers);
    let rec = publish_acked(&mut raw, message("nm/t", QoS::ExactlyOnce, "x")).await;
    assert_eq!(rec.reason_code, ReasonCode::NoMatchingSubscribers);
    // 0x10 is not an error: the QoS 2 exchange goes on.
    raw.send(Packet::PubRel(PubReply::new(rec.packet_id))).await;
    match raw.recv().await {
        Some(Packet::PubComp(c)) => assert_eq!(c.reason_code, ReasonCode::Success),
        other => panic!("{other:?}"),
    }
    subscribe(&mut raw, "nm/t", QoS::AtMostOnce).await;
    let mut m = message("nm/t", QoS::AtLeastOnce, "y");
    m.packet_id = 2;
    let ack = publish_acked(&mut raw, m).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.close().await;
}

#[tokio::test]
async fn v5_reasons_payload_format_invalid_with_reason_string_when_allowed() {
    let broker = start().await;
    let addr = broker.local_addr();
    let bad = |qos| {
        let mut p = message("pf/t", qos, "\u{0}");
        p.payload = bytes::Bytes::from_static(&[0xff, 0xfe]);
        p.properties.make_mut().payload_format_indicator = Some(true);
        p
    };
    let (mut raw, _) = connected(addr, connect("pf")).await;
    let ack = publish_acked(&mut raw, bad(QoS::AtLeastOnce)).await;
    assert_eq!(ack.reason_code, ReasonCode::PayloadFormatInvalid);
    assert!(
        ack.properties.reason_string.is_some(),
        "problem info on by default"
    );
    // Valid UTF-8 with the indicator passes.
    let mut good = message("pf/t", QoS::AtLeastOnce, "héllo");
    good.properties.make_mut().payload_format_indicator = Some(true);
    good.packet_id = 2;
    assert!(!publish_acked(&mut raw, good).await.reason_code.is_error());

    let mut c = connect("pf-quiet");
    c.properties.request_problem_information = Some(false);
    let (mut quiet, _) = connected(addr, c).await;
    let ack = publish_acked(&mut quiet, bad(QoS::AtLeastOnce)).await;
    assert_eq!(ack.reason_code, ReasonCode::PayloadFormatInvalid);
    assert_eq!(ack.properties.reason_string, None, "client opted out");

    // QoS 0 has no ack to carry it: DISCONNECT 0x99.
    raw.send(Packet::Publish(bad(QoS::AtMostOnce))).await;
    assert_eq!(
        disconnected(&mut raw).await,
        ReasonCode::PayloadFormatInvalid
    );
    broker.close().await;
}

#[tokio::test]
async fn v5_reasons_unsuback_no_subscription_existed() {
    let broker = start().await;
    let (mut raw, _) = connected(broker.local_addr(), connect("us")).await;
    subscribe(&mut raw, "us/a", QoS::AtMostOnce).await;
    let unsub = Unsubscribe {
        packet_id: 9,
        filters: vec!["us/a".into(), "us/none".into()],
        properties: Default::default(),
    };
    raw.send(Packet::Unsubscribe(unsub)).await;
    match raw.recv().await {
        Some(Packet::UnsubAck(ack)) => {
            assert_eq!(
                ack.reason_codes,
                [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
            );
            assert_eq!(
                ack.properties.reason_string.as_deref(),
                Some("nothing removed for us/none (NoSubscriptionExisted)")
            );
        }
        other => panic!("{other:?}"),
    }
    // Every filter removed: nothing to explain.
    subscribe(&mut raw, "us/b", QoS::AtMostOnce).await;
    raw.send(Packet::Unsubscribe(unsubscribe(10, "us/b"))).await;
    match raw.recv().await {
        Some(Packet::UnsubAck(ack)) => assert_eq!(ack.properties.reason_string, None),
        other => panic!("{other:?}"),
    }
    broker.close().await;
}

fn unsubscribe(packet_id: u16, filter: &str) -> Unsubscribe {
    Unsubscribe {
        packet_id,
        filters: vec![filter.into()],
        properties: Default::default(),
    }
}

#[tokio::test]
async fn v5_reasons_unsuback_without_reason_string_when_problem_information_is_0() {
    let broker = start().await;
    let mut c = connect("us-quiet");
    c.properties.request_problem_information = Some(false);
    let (mut raw, _) = connected(broker.local_addr(), c).await;
    raw.send(Packet::Unsubscribe(unsubscribe(3, "us/none")))
        .await;
    match raw.recv().await {
        Some(Packet::UnsubAck(ack)) => {
            assert_eq!(ack.reason_codes, [ReasonCode::NoSubscriptionExisted]);
            assert_eq!(ack.properties.reason_string, None);
        }
        other => panic!("{other:?}"),
    }
    broker.close().await;
}

#[tokio::test]
async fn v5_reasons_keep_alive_timeout_and_session_taken_over() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut c = connect("ka");
    c.keep_alive = 1;
    let (mut idle, _) = connected(addr, c).await;
    let started = std::time::Instant::now();
    assert_eq!(disconnected(&mut idle).await, ReasonCode::KeepAliveTimeout);
    assert!(started.elapsed() >= std::time::Duration::from_millis(1400));

    let (mut first, _) = connected(addr, connect("taken")).await;
    let (_second, _) = connected(addr, connect("taken")).await;
    assert_eq!(disconnected(&mut first).await, ReasonCode::SessionTakenOver);
    broker.close().await;
}

#[tokio::test]
async fn v5_reasons_capabilities_refused_as_announced() {
    let broker = start_with(pigeon::Config {
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        wildcard_subscription_available: false,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let (mut raw, ack) = connected(addr, connect("caps")).await;
    let p = &ack.properties;
    assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce));
    assert_eq!(p.retain_available, Some(false));
    assert_eq!(p.wildcard_subscription_available, Some(false));
    let ack = subscribe(&mut raw, "caps/#", QoS::AtMostOnce).await;
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::WildcardSubscriptionsNotSupported]
    );
    let why = ack.properties.reason_string.unwrap_or_default();
    assert!(
        why.contains("caps/#"),
        "reason string names the filter: {why:?}"
    );
    let mut retained = message("caps/t", QoS::AtMostOnce, "r");
    retained.retain = true;
    raw.send(Packet::Publish(retained)).await;
    assert_eq!(disconnected(&mut raw).await, ReasonCode::RetainNotSupported);
    let (mut raw, _) = connected(addr, connect("caps2")).await;
    raw.send(Packet::Publish(message("caps/t", QoS::ExactlyOnce, "2")))
        .await;
    assert_eq!(disconnected(&mut raw).await, ReasonCode::QoSNotSupported);
    broker.close().await;
}

#[tokio::test]
async fn v5_reasons_quota_exceeded_when_every_subscribers_queue_is_full() {
    let broker = start_with(pigeon::Config {
        max_queued_messages: 1,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut c = connect("quota-sub");
    c.properties.session_expiry_interval = Some(60);
    let (mut sub, _) = connected(addr, c).await;
    subscribe(&mut sub, "quota/t", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(Default::default())).await;
    sub.closed().await;
    let (mut publisher, _) = connected(addr, connect("quota-pub")).await;
    let first = publish_acked(&mut publisher, message("quota/t", QoS::AtLeastOnce, "1")).await;
    assert_eq!(first.reason_code, ReasonCode::Success, "queued offline");
    let mut m = message("quota/t", QoS::AtLeastOnce, "2");
    m.packet_id = 2;
    let second = publish_acked(&mut publisher, m).await;
    assert_eq!(
        second.reason_code,
        ReasonCode::QuotaExceeded,
        "queue of 1 is full"
    );
    assert!(second.properties.reason_string.is_some());
    broker.close().await;
}
