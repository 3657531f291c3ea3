//! Basic MQTT 5.0 over the engine: a rumqttc v5 client and a v3.1.1 client talk
//! to each other, properties pass through, and closing the broker sends v5
//! clients DISCONNECT 0x8B (checked byte-level: rumqttc reports it as an error).

use std::time::Duration;

use bytes::Bytes;
use pigeon_tests::{start, Mqtt, WAIT};
use rumqttc::v5::{
    mqttbytes::{
        v5::{Packet, PublishProperties},
        QoS,
    },
    AsyncClient, Event, EventLoop, MqttOptions,
};

async fn v5_client(addr: std::net::SocketAddr, id: &str) -> (AsyncClient, EventLoop) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack,
                Ok(_) => {}
                Err(e) => panic!("v5 connect failed: {e}"),
            }
        }
    })
    .await
    .expect("CONNACK");
    (client, eventloop)
}

/// Polls until `pick` returns something.
async fn next<T>(eventloop: &mut EventLoop, mut pick: impl FnMut(Packet) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    if let Some(t) = pick(p) {
                        return t;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("v5 connection failed: {e}"),
            }
        }
    })
    .await
    .expect("in time")
}

#[tokio::test]
async fn v5_and_v311_clients_talk_through_pigeon_with_properties_intact() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (v5, mut v5_loop) = v5_client(addr, "five").await;
    v5.subscribe("mixed/#", QoS::AtLeastOnce).await.unwrap();
    next(&mut v5_loop, |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;
    let mut v3 = Mqtt::connect(addr, "three").await;
    v3.subscribe("mixed/#", rumqttc::QoS::AtLeastOnce).await;

    // v3.1.1 -> both.
    v3.publish("mixed/from3", rumqttc::QoS::AtLeastOnce, false, "hi five")
        .await;
    let got = next(&mut v5_loop, |p| match p {
        Packet::Publish(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        (&b"mixed/from3"[..], &b"hi five"[..])
    );
    assert_eq!(v3.recv().await.payload, "hi five");

    // v5 with properties -> v5 keeps them, v3 gets the message.
    let props = PublishProperties {
        content_type: Some("text/plain".into()),
        response_topic: Some("mixed/reply".into()),
        correlation_data: Some(Bytes::from_static(b"42")),
        user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        ..Default::default()
    };
    v5.publish_with_properties(
        "mixed/from5",
        QoS::AtLeastOnce,
        false,
        "hi three",
        props.clone(),
    )
    .await
    .unwrap();
    let got = next(&mut v5_loop, |p| match p {
        Packet::Publish(p) => Some(p),
        _ => None,
    })
    .await;
    let got_props = got.properties.expect("properties forwarded");
    assert_eq!(got_props.content_type, props.content_type);
    assert_eq!(got_props.response_topic, props.response_topic);
    assert_eq!(got_props.correlation_data, props.correlation_data);
    assert_eq!(got_props.user_properties, props.user_properties);
    let m = v3.recv().await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("mixed/from5", &b"hi three"[..])
    );
    broker.close().await;
}

#[tokio::test]
async fn close_disconnects_everyone_with_server_shutting_down_and_stops_listening() {
    use pigeon::codec::{Connect, Packet as P, Protocol, ReasonCode};
    let broker = start().await;
    let addr = broker.local_addr();
    let (mut v5, _) = pigeon_tests::Raw::connect(addr, Connect::new(Protocol::V5, "five")).await;
    let (mut v3, _) =
        pigeon_tests::Raw::connect(addr, pigeon_tests::Raw::connect_packet("three", true)).await;
    let waiter = {
        let broker = broker.clone();
        tokio::spawn(async move { broker.closed().await })
    };
    broker.close().await;
    let seen = v5.closed().await;
    assert!(
        matches!(seen.as_slice(), [P::Disconnect(d)] if d.reason_code == ReasonCode::ServerShuttingDown),
        "{seen:?}"
    );
    assert!(v3.closed().await.is_empty());
    tokio::time::timeout(WAIT, waiter)
        .await
        .expect("closed() resolves")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

mod limits {
    use std::time::Duration;

    use pigeon::codec::{
        Connect, Packet, Protocol, PubReply, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter,
    };
    use pigeon_tests::{config, start, start_with, Raw};

    async fn v5(addr: std::net::SocketAddr, id: &str, max_packet: Option<u32>) -> Raw {
        let mut connect = Connect::new(Protocol::V5, id);
        connect.properties.maximum_packet_size = max_packet;
        let (raw, ack) = Raw::connect(addr, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::Success);
        raw
    }

    async fn subscribe(raw: &mut Raw, filter: &str) {
        raw.send(Packet::Subscribe(Subscribe::new(
            1,
            vec![SubscribeFilter::new(filter, QoS::AtLeastOnce)],
        )))
        .await;
        assert!(matches!(raw.recv().await, Some(Packet::SubAck(_))));
    }

    #[tokio::test]
    async fn messages_larger_than_the_clients_maximum_packet_size_are_not_sent() {
        let broker = start().await;
        let addr = broker.local_addr();
        let mut raw = v5(addr, "small", Some(100)).await;
        subscribe(&mut raw, "sized").await;
        let handle = broker.clone();
        handle
            .publish(Publish::new("sized", QoS::AtLeastOnce, vec![b'x'; 500]))
            .await
            .unwrap();
        handle
            .publish(Publish::new("sized", QoS::AtLeastOnce, "fits"))
            .await
            .unwrap();
        let Some(Packet::Publish(p)) = raw.recv().await else {
            panic!("PUBLISH")
        };
        assert_eq!(p.payload, "fits");
        raw.send(Packet::PubAck(PubReply::new(p.packet_id))).await;
        assert_eq!(broker.stats().messages_dropped, 1);
        broker.close().await;
    }

    #[tokio::test]
    async fn expired_messages_are_not_delivered_and_the_interval_counts_down() {
        let broker = start().await;
        let addr = broker.local_addr();
        let retained = |topic: &str, expiry: u32| {
            let mut p = Publish::new(topic.to_owned(), QoS::AtLeastOnce, "r");
            p.retain = true;
            p.properties.make_mut().message_expiry_interval = Some(expiry);
            p
        };
        broker.publish(retained("exp/short", 1)).await.unwrap();
        broker.publish(retained("exp/long", 100)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut raw = v5(addr, "late", None).await;
        subscribe(&mut raw, "exp/#").await;
        let Some(Packet::Publish(p)) = raw.recv().await else {
            panic!("PUBLISH")
        };
        assert_eq!(&*p.topic, "exp/long");
        let left = p
            .properties
            .message_expiry_interval
            .expect("expiry forwarded");
        assert!(
            (95..=99).contains(&left),
            "decremented by the time spent: {left}"
        );
        raw.send(Packet::PingReq).await;
        assert!(
            matches!(raw.recv().await, Some(Packet::PingResp)),
            "exp/short expired"
        );
        broker.close().await;
    }

    #[tokio::test]
    async fn exceeding_receive_maximum_with_qos2_gets_disconnect_0x93() {
        let broker = start_with(pigeon::Config {
            receive_maximum: 2,
            ..config()
        })
        .await;
        let mut raw = v5(broker.local_addr(), "greedy", None).await;
        for id in 1..=3 {
            let mut p = Publish::new("rm", QoS::ExactlyOnce, "x");
            p.packet_id = id;
            raw.send(Packet::Publish(p)).await;
        }
        let seen = raw.closed().await;
        assert!(
            matches!(seen.as_slice(), [Packet::PubRec(_), Packet::PubRec(_), Packet::Disconnect(d)]
                if d.reason_code == ReasonCode::ReceiveMaximumExceeded),
            "{seen:?}"
        );
        broker.close().await;
    }
}
