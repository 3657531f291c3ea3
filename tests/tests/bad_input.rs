//! Bad input affects only the connection that sends it: it is closed (with the
//! MQTT 5.0 reason code where there is one) and the broker keeps serving.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use pigeon::codec::{self as codec, Connect, Packet, Protocol, ReasonCode};
use pigeon_tests::{assert_serving, config, start, start_with, Mqtt, Raw};
use rumqttc::QoS;

/// A fixed header + body with the given bytes, for packets the codec refuses to encode.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first, body.len() as u8];
    v.extend_from_slice(body);
    v
}

fn publish_bytes(topic: &str) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(b"x");
    frame(0x30, &body)
}

#[tokio::test]
async fn garbage_bytes_close_only_that_connection() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut bystander = Mqtt::connect(addr, "bystander").await;
    bystander.subscribe("still/here", QoS::AtLeastOnce).await;

    let mut raw = Raw::tcp(addr).await;
    raw.send_bytes(b"GET / HTTP/1.1\r\nHost: pigeon\r\n\r\n")
        .await;
    assert!(raw.closed().await.is_empty());

    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("garbler", true)).await;
    raw.send_bytes(&[0x00, 0x00, 0xde, 0xad, 0xbe, 0xef]).await;
    assert!(raw.closed().await.is_empty());

    let publisher = Mqtt::connect(addr, "pub").await;
    publisher
        .publish("still/here", QoS::AtLeastOnce, false, "yes")
        .await;
    assert_eq!(bystander.recv().await.payload, "yes");
    assert_serving(addr).await;
    broker.close().await;
}

#[tokio::test]
async fn remaining_length_claiming_gigabytes_is_refused_before_buffering() {
    let broker = start().await;
    let addr = broker.local_addr();
    // Before CONNECT.
    let mut raw = Raw::tcp(addr).await;
    raw.send_bytes(&[0x10, 0xff, 0xff, 0xff, 0x7f]).await;
    assert!(raw.closed().await.is_empty());
    // After a 3.1.1 CONNECT.
    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("huge", true)).await;
    raw.send_bytes(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0x00]).await;
    assert!(raw.closed().await.is_empty());
    // After a 5.0 CONNECT: DISCONNECT 0x95 Packet too large.
    let (mut raw, _) = Raw::connect(addr, Connect::new(Protocol::V5, "huge5")).await;
    raw.send_bytes(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0x00]).await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::PacketTooLarge),
        "{seen:?}"
    );
    assert_serving(addr).await;
    broker.close().await;
}

#[tokio::test]
async fn packet_before_connect_and_second_connect_are_protocol_violations() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut raw = Raw::tcp(addr).await;
    raw.send(Packet::PingReq).await;
    assert!(raw.closed().await.is_empty());

    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("twice", true)).await;
    raw.send(Packet::Connect(Box::new(Raw::connect_packet(
        "twice", true,
    ))))
    .await;
    assert!(raw.closed().await.is_empty());

    let (mut raw, _) = Raw::connect(addr, Connect::new(Protocol::V5, "twice5")).await;
    raw.send(Packet::Connect(Box::new(Connect::new(
        Protocol::V5,
        "twice5",
    ))))
    .await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::ProtocolError),
        "{seen:?}"
    );
    assert_serving(addr).await;
    broker.close().await;
}

#[tokio::test]
async fn invalid_topics_close_the_connection() {
    let broker = start().await;
    let addr = broker.local_addr();
    for topic in ["a/+/b", "a/#", ""] {
        let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("badtopic", true)).await;
        raw.send_bytes(&publish_bytes(topic)).await;
        assert!(
            raw.closed().await.is_empty(),
            "PUBLISH to {topic:?} must close"
        );
    }
    // A topic with absurdly many levels is refused, not a crash.
    let deep = vec!["l"; 5000].join("/");
    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("deep", true)).await;
    let mut body = (deep.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(deep.as_bytes());
    let mut bytes = vec![0x30];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        bytes.push(b);
        if len == 0 {
            break;
        }
    }
    bytes.extend_from_slice(&body);
    raw.send_bytes(&bytes).await;
    assert!(raw.closed().await.is_empty());
    // SUBSCRIBE with a malformed filter.
    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("badfilter", true)).await;
    let filter = b"a/#/b";
    let mut body = vec![0x00, 0x01, 0x00, filter.len() as u8];
    body.extend_from_slice(filter);
    body.push(0x01);
    raw.send_bytes(&frame(0x82, &body)).await;
    assert!(raw.closed().await.is_empty());
    assert_serving(addr).await;
    broker.close().await;
}

#[tokio::test]
async fn silent_client_is_closed_after_connect_timeout() {
    let broker = start_with(pigeon::Config {
        connect_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let started = Instant::now();
    let mut raw = Raw::tcp(addr).await;
    assert!(raw.closed().await.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    assert_serving(addr).await;
    broker.close().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_memory_stays_bounded() {
    let budget = 4 << 20;
    let broker = start_with(pigeon::Config {
        max_queued_messages: 500,
        max_queued_bytes: 1 << 20,
        max_queued_bytes_total: budget,
        drain_timeout: Duration::from_millis(500),
        // What is in flight is written to the socket at once: 100 messages of
        // 4 KiB fit in loopback's socket buffers with the DISCONNECT after
        // them; the default 512 (2 MiB) do not, and a client that reads
        // nothing cannot be told anything once its buffers are full.
        max_inflight: 100,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    // The stuck subscriber (MQTT 5.0): subscribes, then reads nothing until the end.
    let mut stuck = pigeon_tests::raw5::connect(addr, "stuck").await;
    let opts = pigeon_tests::raw5::opts;
    stuck
        .subscribe5(
            1,
            &[
                ("flood/0", opts(codec::QoS::AtMostOnce)),
                ("flood/1", opts(codec::QoS::AtLeastOnce)),
            ],
            None,
        )
        .await;

    let mut healthy = Mqtt::connect(addr, "healthy").await;
    healthy.subscribe("flood/1", QoS::AtLeastOnce).await;

    // The broker's own accounting of queued bytes, sampled throughout.
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (broker, peak) = (broker.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                let queued = broker.stats().queued_bytes as usize;
                peak.fetch_max(queued, Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let publisher = Mqtt::connect(addr, "flooder").await;
    let payload = vec![b'x'; 4096];
    let n = 2000;
    let healthy_task = tokio::spawn(async move {
        let mut qos1 = 0;
        while qos1 < n {
            let m = healthy.recv().await;
            assert_eq!(m.payload.len(), 4096);
            if m.qos == QoS::AtLeastOnce {
                qos1 += 1;
            }
        }
        healthy
    });
    let started = Instant::now();
    for i in 0..n {
        let topic = if i % 2 == 0 { "flood/0" } else { "flood/1" };
        publisher
            .publish(topic, QoS::AtMostOnce, false, payload.clone())
            .await;
        publisher
            .publish("flood/1", QoS::AtLeastOnce, false, payload.clone())
            .await;
    }
    // Every QoS 1 message reaches the healthy subscriber: the stuck one held
    // the publisher back for drain_timeout at most, then was sent away.
    let _ = tokio::time::timeout(Duration::from_secs(30), healthy_task)
        .await
        .expect("healthy subscriber gets everything")
        .unwrap();
    let took = started.elapsed();
    // The stuck client finds DISCONNECT 0x97 after what it was sent.
    let seen = stuck.closed().await;
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code == ReasonCode::QuotaExceeded),
        "stuck subscriber told why ({} packets, last {:?})",
        seen.len(),
        seen.last()
    );
    sampler.abort();
    let peak = peak.load(Relaxed);
    assert!(peak <= budget, "queued {peak} bytes, budget {budget}");
    assert!(peak > 0, "the sampler saw queues in use");
    eprintln!("flood of {n} done in {took:?}; peak queued {peak} bytes");
    assert_serving(addr).await;
    broker.close().await;
}
