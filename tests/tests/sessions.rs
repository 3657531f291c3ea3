//! Clean and persistent sessions, client identifiers, takeover, in-flight
//! resend and the QoS 2 exactly-once flow.

use pigeon::codec::{
    self as codec, Packet, Protocol, PubReply, Publish, ReasonCode, Subscribe, SubscribeFilter,
};
use pigeon_tests::{config, options, start, start_with, Mqtt, Raw};
use rumqttc::QoS;

async fn persistent(addr: std::net::SocketAddr, id: &str) -> Mqtt {
    let mut opts = options(addr, id);
    opts.set_clean_session(false);
    Mqtt::connect_with(opts).await
}

#[tokio::test]
async fn persistent_session_keeps_subscriptions_and_queues_qos1_in_order() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = persistent(addr, "keeper").await;
    assert!(!sub.connack.session_present);
    sub.subscribe("q/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let publisher = Mqtt::connect(addr, "pub").await;
    for i in 0..5 {
        publisher
            .publish("q/a", QoS::AtLeastOnce, false, format!("m{i}"))
            .await;
    }
    publisher
        .publish("q/a", QoS::AtMostOnce, false, "qos0 is not queued")
        .await;
    publisher.disconnect().await;

    let mut sub = persistent(addr, "keeper").await;
    assert!(
        sub.connack.session_present,
        "session present after reconnect"
    );
    for i in 0..5 {
        assert_eq!(sub.recv().await.payload, format!("m{i}"));
    }
    sub.assert_silent(300).await;
    broker.close().await;
}

#[tokio::test]
async fn clean_session_discards_the_previous_one() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = persistent(addr, "cleaner").await;
    sub.subscribe("c/1", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    assert_eq!(broker.subscriptions().len(), 1, "kept while offline");

    let mut clean = Mqtt::connect(addr, "cleaner").await;
    assert!(!clean.connack.session_present);
    assert!(broker.subscriptions().is_empty());
    let publisher = Mqtt::connect(addr, "pub").await;
    publisher.publish("c/1", QoS::AtLeastOnce, false, "x").await;
    clean.assert_silent(300).await;
    clean.disconnect().await;

    let again = persistent(addr, "cleaner").await;
    assert!(
        !again.connack.session_present,
        "a clean session is not kept"
    );
    broker.close().await;
}

#[tokio::test]
async fn offline_queue_is_bounded_and_a_3x_publisher_is_never_told_success_for_a_drop() {
    let broker = start_with(pigeon::Config {
        max_queued_messages: 3,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut sub = persistent(addr, "bounded").await;
    sub.subscribe("b", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let (mut publisher, _) = Raw::connect(addr, Raw::connect_packet("pub", true)).await;
    for i in 0..3u16 {
        let mut publish = Publish::new("b", codec::QoS::AtLeastOnce, format!("{i}"));
        publish.packet_id = i + 1;
        publisher.send(Packet::Publish(publish)).await;
        assert!(
            matches!(publisher.recv().await, Some(Packet::PubAck(a)) if a.packet_id == i + 1),
            "stored messages are acknowledged"
        );
    }
    // The fourth finds the offline queue full: MQTT 3.1.1 has no negative
    // PUBACK, so the broker closes without acknowledging it.
    let mut publish = Publish::new("b", codec::QoS::AtLeastOnce, "3");
    publish.packet_id = 4;
    publisher.send(Packet::Publish(publish)).await;
    let after = publisher.closed().await;
    assert!(
        !after.iter().any(|p| matches!(p, Packet::PubAck(_))),
        "no PUBACK for a message nobody keeps: {after:?}"
    );
    let mut sub = persistent(addr, "bounded").await;
    for i in 0..3 {
        assert_eq!(sub.recv().await.payload, format!("{i}"));
    }
    sub.assert_silent(300).await;
    let stats = broker.stats();
    assert_eq!(stats.drops.queue_full, 1, "{stats:?}");
    broker.close().await;
}

#[tokio::test]
async fn new_connection_with_same_id_takes_over() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut first, ack) = Raw::connect(addr, Raw::connect_packet("twin", false)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    first
        .send(Packet::Subscribe(Subscribe::new(
            1,
            vec![SubscribeFilter::new("twin/t", codec::QoS::AtLeastOnce)],
        )))
        .await;
    assert!(matches!(first.recv().await, Some(Packet::SubAck(_))));

    let (mut second, ack) = Raw::connect(addr, Raw::connect_packet("twin", false)).await;
    assert!(
        ack.session_present,
        "the session moved to the new connection"
    );
    assert!(first.closed().await.is_empty(), "old connection closed");

    let publisher = Mqtt::connect(addr, "pub").await;
    publisher
        .publish("twin/t", QoS::AtLeastOnce, false, "to the new one")
        .await;
    match second.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(p.payload, "to the new one"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    assert_eq!(broker.clients().len(), 2);
    broker.close().await;
}

#[tokio::test]
async fn v5_takeover_sends_disconnect_session_taken_over() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut first, _) = Raw::connect(addr, codec::Connect::new(Protocol::V5, "v5twin")).await;
    let (_second, ack) = Raw::connect(addr, codec::Connect::new(Protocol::V5, "v5twin")).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    let seen = first.closed().await;
    assert!(
        matches!(seen.as_slice(), [Packet::Disconnect(d)] if d.reason_code == ReasonCode::SessionTakenOver),
        "{seen:?}"
    );
    broker.close().await;
}

#[tokio::test]
async fn client_identifier_rules() {
    let broker = start().await;
    let addr = broker.local_addr();
    // Empty id + clean session: an id is assigned.
    let (_raw, ack) = Raw::connect(addr, Raw::connect_packet("", true)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    // Empty id + persistent session on 3.1.1: identifier rejected (return code 2).
    let (mut raw, ack) = Raw::connect(addr, Raw::connect_packet("", false)).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    assert!(raw.closed().await.is_empty());
    // MQTT 3.1: ids longer than max_clients_id_length (23) are rejected.
    let long = "x".repeat(24);
    let (_raw, ack) = Raw::connect(addr, codec::Connect::new(Protocol::V3_1, long.clone())).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    let (_raw, ack) = Raw::connect(addr, codec::Connect::new(Protocol::V3_1, "x".repeat(23))).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.close().await;

    let broker = start_with(pigeon::Config {
        max_clients_id_length: 30,
        ..config()
    })
    .await;
    let (_raw, ack) = Raw::connect(
        broker.local_addr(),
        codec::Connect::new(Protocol::V3_1, long),
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.close().await;
}

#[tokio::test]
async fn unacknowledged_messages_are_resent_with_dup_on_reconnect() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("forgetful", false)).await;
    raw.send(Packet::Subscribe(Subscribe::new(
        1,
        vec![
            SubscribeFilter::new("r/1", codec::QoS::AtLeastOnce),
            SubscribeFilter::new("r/2", codec::QoS::ExactlyOnce),
        ],
    )))
    .await;
    assert!(matches!(raw.recv().await, Some(Packet::SubAck(_))));
    broker
        .publish(Publish::new("r/1", codec::QoS::AtLeastOnce, "one"))
        .await
        .unwrap();
    broker
        .publish(Publish::new("r/2", codec::QoS::ExactlyOnce, "two"))
        .await
        .unwrap();
    let Some(Packet::Publish(p1)) = raw.recv().await else {
        panic!("expected PUBLISH")
    };
    let Some(Packet::Publish(p2)) = raw.recv().await else {
        panic!("expected PUBLISH")
    };
    assert!(!p1.dup && !p2.dup);
    // Acknowledge neither; vanish.
    drop(raw);

    let (mut raw, ack) = Raw::connect(addr, Raw::connect_packet("forgetful", false)).await;
    assert!(ack.session_present);
    let Some(Packet::Publish(r1)) = raw.recv().await else {
        panic!("expected resend")
    };
    let Some(Packet::Publish(r2)) = raw.recv().await else {
        panic!("expected resend")
    };
    assert!(r1.dup && r2.dup);
    assert_eq!(
        (r1.packet_id, r1.payload.clone()),
        (p1.packet_id, p1.payload)
    );
    assert_eq!(
        (r2.packet_id, r2.payload.clone()),
        (p2.packet_id, p2.payload)
    );

    // Finish QoS 2 half-way (PUBREC), vanish again: PUBREL is resent, not the PUBLISH.
    raw.send(Packet::PubAck(PubReply::new(r1.packet_id))).await;
    raw.send(Packet::PubRec(PubReply::new(r2.packet_id))).await;
    assert!(matches!(raw.recv().await, Some(Packet::PubRel(r)) if r.packet_id == r2.packet_id));
    drop(raw);
    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("forgetful", false)).await;
    assert!(matches!(raw.recv().await, Some(Packet::PubRel(r)) if r.packet_id == r2.packet_id));
    raw.send(Packet::PubComp(PubReply::new(r2.packet_id))).await;
    raw.send(Packet::PingReq).await;
    assert!(
        matches!(raw.recv().await, Some(Packet::PingResp)),
        "nothing else is pending"
    );
    broker.close().await;
}

#[tokio::test]
async fn qos2_inbound_is_delivered_exactly_once_despite_dup_resend() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = Mqtt::connect(addr, "once").await;
    sub.subscribe("x2", QoS::ExactlyOnce).await;

    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("sender", true)).await;
    let mut publish = Publish::new("x2", codec::QoS::ExactlyOnce, "exactly");
    publish.packet_id = 7;
    raw.send(Packet::Publish(publish.clone())).await;
    assert!(matches!(raw.recv().await, Some(Packet::PubRec(r)) if r.packet_id == 7));
    publish.dup = true;
    raw.send(Packet::Publish(publish)).await;
    assert!(matches!(raw.recv().await, Some(Packet::PubRec(r)) if r.packet_id == 7));
    raw.send(Packet::PubRel(PubReply::new(7))).await;
    assert!(matches!(raw.recv().await, Some(Packet::PubComp(r)) if r.packet_id == 7));
    // PUBREL for an id the broker does not know still gets PUBCOMP.
    raw.send(Packet::PubRel(PubReply::new(99))).await;
    assert!(matches!(raw.recv().await, Some(Packet::PubComp(r)) if r.packet_id == 99));

    assert_eq!(sub.recv().await.payload, "exactly");
    sub.assert_silent(300).await;
    broker.close().await;
}

#[tokio::test]
async fn a_broker_restarted_on_the_same_persistence_resumes_persistent_sessions() {
    use std::sync::Arc;

    use pigeon::{broker::Backends, hooks::Hooks, persistence::MemoryPersistence, Broker};
    let persistence: Arc<MemoryPersistence> = Arc::new(MemoryPersistence::new());
    let backends = || Backends {
        persistence: persistence.clone(),
        emitter: Arc::new(pigeon::emitter::LocalEmitter::new()),
    };
    let first = Broker::start_with(config(), Hooks::none(), backends())
        .await
        .unwrap();
    let mut sub = persistent(first.local_addr(), "survivor").await;
    sub.subscribe("restart/#", QoS::AtLeastOnce).await;
    sub.kill();
    // Whether the broker sees the dead socket or the shutdown first, it parks the session.
    first.close().await;

    let second = Broker::start_with(config(), Hooks::none(), backends())
        .await
        .unwrap();
    assert_eq!(
        second.subscriptions().len(),
        1,
        "subscription restored from persistence"
    );
    let publisher = Mqtt::connect(second.local_addr(), "pub").await;
    publisher
        .publish("restart/a", QoS::AtLeastOnce, false, "while you were away")
        .await;
    publisher.disconnect().await;
    let mut sub = persistent(second.local_addr(), "survivor").await;
    assert!(sub.connack.session_present);
    assert_eq!(sub.recv().await.payload, "while you were away");
    second.close().await;
}
