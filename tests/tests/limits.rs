//! Limits: `max_connections` (broker-wide and per listener), `max_topic_levels`,
//! `max_subscriptions_per_client`, `max_publish_rate`, and TLS certificates
//! reloaded without dropping connections. rumqttc for well-behaved clients,
//! [`Raw`] to read the reason codes byte by byte.

use std::{
    net::SocketAddr,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use pigeon::{
    codec::{Packet, Protocol, QoS, ReasonCode, Subscribe, SubscribeFilter, Unsubscribe},
    config::Listener,
    hooks::ListenerKind,
    Config,
};
use pigeon_tests::{config, pki::Pki, raw5, start_with, Mqtt, Raw, WAIT};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};

/// The CONNACK a v5 (or 3.1.1) client gets, and whether the broker then closed.
async fn connack_then_closed(addr: SocketAddr, protocol: Protocol, id: &str) -> ReasonCode {
    let mut connect = raw5::connect_packet(id);
    connect.protocol = protocol;
    let (mut raw, ack) = Raw::connect(addr, connect).await;
    if ack.reason_code != ReasonCode::Success {
        assert!(raw.closed().await.is_empty(), "closed after the refusal");
    }
    ack.reason_code
}

/// Connects a v5 client once the broker has a free place again (a place is
/// given back when the previous connection's task ends, just after it closes).
async fn connect_when_free(addr: SocketAddr, id: &str) -> Raw {
    let deadline = Instant::now() + WAIT;
    loop {
        let (raw, ack) = Raw::connect(addr, raw5::connect_packet(id)).await;
        if ack.reason_code == ReasonCode::Success {
            return raw;
        }
        assert!(Instant::now() < deadline, "the place was never given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_with_quota_exceeded_and_frees_the_place() {
    let broker = start_with(Config {
        max_connections: 1,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut first = Mqtt::connect(addr, "first").await;
    let v5 = connack_then_closed(addr, Protocol::V5, "second-v5").await;
    assert_eq!(v5, ReasonCode::QuotaExceeded);
    let v3 = connack_then_closed(addr, Protocol::V3_1_1, "second-v3").await;
    assert_eq!(v3, ReasonCode::ServerUnavailable, "3.x return code 3");
    // Refusing others did not disturb the one connected.
    first.subscribe("lim/echo", rumqttc::QoS::AtLeastOnce).await;
    first
        .publish("lim/echo", rumqttc::QoS::AtLeastOnce, false, "still here")
        .await;
    assert_eq!(&first.recv().await.payload[..], b"still here");
    first.disconnect().await;
    // Its place is given back: one more client fits, and only one.
    let _third = connect_when_free(addr, "third").await;
    let fourth = connack_then_closed(addr, Protocol::V5, "fourth").await;
    assert_eq!(fourth, ReasonCode::QuotaExceeded);
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_gives_its_place_back() {
    let broker = start_with(Config {
        max_connections: 1,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    // Gone without DISCONNECT: the place comes back all the same.
    Mqtt::connect(addr, "crashing").await.kill();
    let _next = connect_when_free(addr, "next").await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_limit_refuses_only_on_that_listener() {
    let mut small = Listener::new(ListenerKind::Tcp, "127.0.0.1", 0);
    small.max_connections = Some(1);
    let broker = start_with(Config {
        listeners: vec![small, Listener::new(ListenerKind::Tcp, "127.0.0.1", 0)],
        ..config()
    })
    .await;
    let (small, other) = (broker.listeners()[0].addr, broker.listeners()[1].addr);
    let _one = raw5::connect(small, "one").await;
    let refused = connack_then_closed(small, Protocol::V5, "two").await;
    assert_eq!(refused, ReasonCode::QuotaExceeded);
    for id in ["three", "four"] {
        let code = connack_then_closed(other, Protocol::V5, id).await;
        assert_eq!(code, ReasonCode::Success, "the other listener has no limit");
    }
    broker.close().await;
}

fn deep_topics_broker() -> Config {
    Config {
        max_topic_levels: 3,
        ..config()
    }
}

#[tokio::test]
async fn v5_topics_deeper_than_max_topic_levels_are_refused() {
    let broker = start_with(deep_topics_broker()).await;
    let mut raw = raw5::connect(broker.local_addr(), "deep").await;
    let ack = raw
        .subscribe5(
            1,
            &[
                ("a/b/c/d", raw5::opts(QoS::AtLeastOnce)),
                ("a/+/c", raw5::opts(QoS::AtLeastOnce)),
                ("$share/g/a/b/#", raw5::opts(QoS::AtLeastOnce)),
            ],
            None,
        )
        .await;
    assert_eq!(
        ack.reason_codes,
        [
            ReasonCode::TopicFilterInvalid,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS1
        ],
        "the share group's levels do not count"
    );
    raw.publish5("a/b/c/d", QoS::AtLeastOnce, false, "deep", 7)
        .await;
    match raw.recv().await {
        Some(Packet::PubAck(ack)) => {
            assert_eq!(
                (ack.packet_id, ack.reason_code),
                (7, ReasonCode::TopicNameInvalid)
            )
        }
        other => panic!("expected PUBACK 0x90, got {other:?}"),
    }
    // The connection stays: a topic within the limit is delivered.
    raw.publish5("a/b/c", QoS::AtLeastOnce, false, "ok", 8)
        .await;
    let delivered = raw.next_publish().await;
    assert_eq!(&delivered.payload[..], b"ok");
    // QoS 0 has no ack to carry the code: DISCONNECT 0x90.
    raw.publish5("a/b/c/d", QoS::AtMostOnce, false, "deep", 0)
        .await;
    let last = raw.closed().await;
    assert!(
        last.iter().any(
            |p| matches!(p, Packet::Disconnect(d) if d.reason_code == ReasonCode::TopicNameInvalid)
        ),
        "{last:?}"
    );
    broker.close().await;
}

#[tokio::test]
async fn v3_topics_deeper_than_max_topic_levels_are_refused() {
    let broker = start_with(deep_topics_broker()).await;
    let addr = broker.local_addr();
    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("deep3", true)).await;
    raw.send(Packet::Subscribe(Subscribe::new(
        1,
        vec![
            SubscribeFilter::new("x/y/z/w", QoS::AtMostOnce),
            SubscribeFilter::new("x/y/z", QoS::AtMostOnce),
        ],
    )))
    .await;
    match raw.recv().await {
        Some(Packet::SubAck(ack)) => assert_eq!(
            ack.reason_codes,
            [ReasonCode::UnspecifiedError, ReasonCode::Success],
            "SUBACK 0x80 for the deep filter"
        ),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    // MQTT 3.x has no negative PUBACK: the connection is closed, unacknowledged.
    raw.publish5("x/y/z/w", QoS::AtLeastOnce, false, "deep", 3)
        .await;
    assert!(raw.closed().await.is_empty());
    broker.close().await;
}

#[tokio::test]
async fn subscriptions_past_max_subscriptions_per_client_get_quota_exceeded() {
    let broker = start_with(Config {
        max_subscriptions_per_client: 2,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut raw = raw5::connect(addr, "many-subs").await;
    let o = raw5::opts(QoS::AtMostOnce);
    let ack = raw
        .subscribe5(1, &[("a", o), ("b", o), ("c", o)], None)
        .await;
    assert_eq!(
        ack.reason_codes,
        [
            ReasonCode::Success,
            ReasonCode::Success,
            ReasonCode::QuotaExceeded
        ]
    );
    // Subscribing again to a filter held already replaces it: no new place needed.
    let again = raw5::opts(QoS::AtLeastOnce);
    let ack = raw.subscribe5(2, &[("a", again), ("d", o)], None).await;
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::GrantedQoS1, ReasonCode::QuotaExceeded]
    );
    // Unsubscribing frees a place.
    raw.send(Packet::Unsubscribe(Unsubscribe {
        packet_id: 3,
        filters: vec!["b".into()],
        properties: Default::default(),
    }))
    .await;
    assert!(matches!(raw.recv().await, Some(Packet::UnsubAck(_))));
    let ack = raw.subscribe5(4, &[("d", o)], None).await;
    assert_eq!(ack.reason_codes, [ReasonCode::Success]);
    assert_eq!(broker.subscriptions().len(), 2);

    // MQTT 3.1.1: 0x80 for the entries past the quota.
    let mut v3 = Mqtt::connect(addr, "many-subs-3").await;
    for (filter, expected) in [("p", true), ("q", true), ("r", false)] {
        let codes = v3.subscribe(filter, rumqttc::QoS::AtMostOnce).await;
        let granted = matches!(codes[..], [rumqttc::SubscribeReasonCode::Success(_)]);
        assert_eq!(granted, expected, "{filter}: {codes:?}");
    }
    v3.disconnect().await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_publish_rate_slows_a_publisher_but_delivers_everything() {
    const RATE: u32 = 10;
    const SENT: usize = 25;
    let broker = start_with(Config {
        max_publish_rate: RATE,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut subscriber = Mqtt::connect(addr, "rate-sub").await;
    subscriber
        .subscribe("rate/#", rumqttc::QoS::AtLeastOnce)
        .await;
    let publisher = Mqtt::connect(addr, "rate-pub").await;
    let started = Instant::now();
    for i in 0..SENT {
        publisher
            .publish("rate/t", rumqttc::QoS::AtLeastOnce, false, i.to_string())
            .await;
    }
    for i in 0..SENT {
        let message = subscriber.recv().await;
        assert_eq!(
            message.payload,
            i.to_string().as_bytes(),
            "in order, none lost"
        );
    }
    // One second's burst passes at once, the other 15 at 10/s: at least 1.5 s.
    // Only a lower bound is asserted (a slow machine may take longer).
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1400), "{elapsed:?}");
    // Other clients are not held to the publisher's rate.
    let mut other = Mqtt::connect(addr, "rate-other").await;
    other.subscribe("other/t", rumqttc::QoS::AtLeastOnce).await;
    other
        .publish("other/t", rumqttc::QoS::AtLeastOnce, false, "free")
        .await;
    assert_eq!(&other.recv().await.payload[..], b"free");
    broker.close().await;
}

fn tls_options(addr: SocketAddr, id: &str, config: Arc<rustls::ClientConfig>) -> MqttOptions {
    let mut opts = MqttOptions::new(id, "localhost", addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(config)));
    opts
}

/// Whether a TLS client trusting `config` gets a CONNACK.
async fn tls_connects(addr: SocketAddr, id: &str, config: Arc<rustls::ClientConfig>) -> bool {
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(tls_options(addr, id, config), 10);
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("connected or refused in time")
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("replace a certificate file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_reload_without_dropping_connections() {
    let old = Pki::generate("reload-old");
    let new = Pki::generate("reload-new");
    // The broker's own copies, replaced in place as an operator would.
    let dir = std::env::temp_dir().join(format!("pigeon-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("folder");
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    copy(&old.server_cert, &cert);
    copy(&old.server_key, &key);
    let broker = start_with(Config {
        listeners: vec![Listener::new(ListenerKind::Tls, "127.0.0.1", 0)],
        cert: Some(cert.clone()),
        key: Some(key.clone()),
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut connected =
        Mqtt::connect_with(tls_options(addr, "before", old.client_config(false))).await;
    connected
        .subscribe("reload/echo", rumqttc::QoS::AtLeastOnce)
        .await;

    copy(&new.server_cert, &cert);
    copy(&new.server_key, &key);
    broker.reload().expect("the new certificate loads");
    // The client connected before the reload keeps its connection.
    connected
        .publish(
            "reload/echo",
            rumqttc::QoS::AtLeastOnce,
            false,
            "same session",
        )
        .await;
    assert_eq!(&connected.recv().await.payload[..], b"same session");
    // New handshakes use the new certificate: only the new CA is trusted now.
    assert!(tls_connects(addr, "new-ca", new.client_config(false)).await);
    assert!(!tls_connects(addr, "old-ca", old.client_config(false)).await);

    // A broken file keeps the certificate in use, and the error names the file.
    std::fs::write(&cert, "not a certificate").expect("break the file");
    let error = broker
        .reload()
        .expect_err("a broken certificate is reported");
    let text = error.to_string();
    assert!(text.contains(&cert.display().to_string()), "{text}");
    assert_eq!(error.tls.len(), 1);
    assert!(tls_connects(addr, "still-new", new.client_config(false)).await);
    connected.disconnect().await;
    broker.close().await;
}
