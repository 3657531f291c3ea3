//! MQTT 5.0 subscription options: no-local, retain-as-published (and the
//! cleared RETAIN flag for 3.1.1 subscribers), retain handling 0/1/2.

use pigeon_codec::{Packet, QoS, RetainHandling};
use pigeon_tests::{
    raw5::{connect, opts},
    start, Mqtt,
};

#[tokio::test]
async fn no_local_skips_own_publications_on_that_subscription_only() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut me = connect(addr, "nl-me").await;
    let mut other = connect(addr, "nl-other").await;
    let mut nl = opts(QoS::AtMostOnce);
    nl.no_local = true;
    me.subscribe5(1, &[("chat/+", nl)], None).await;
    other.subscribe5(1, &[("chat/+", nl)], None).await;

    me.publish5("chat/room", QoS::AtMostOnce, false, "mine", 0)
        .await;
    assert_eq!(&other.next_publish().await.payload[..], b"mine");
    assert!(me.next_publish_within(300).await.is_none(), "own message");
    other
        .publish5("chat/room", QoS::AtMostOnce, false, "theirs", 0)
        .await;
    assert_eq!(&me.next_publish().await.payload[..], b"theirs");

    // An overlapping subscription without no-local does deliver it.
    me.subscribe5(2, &[("chat/#", opts(QoS::AtMostOnce))], None)
        .await;
    me.publish5("chat/room", QoS::AtMostOnce, false, "again", 0)
        .await;
    assert_eq!(&me.next_publish().await.payload[..], b"again");
    assert!(me.next_publish_within(200).await.is_none(), "one copy");
}

#[tokio::test]
async fn retain_as_published_keeps_the_flag_otherwise_it_is_cleared() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut keep = connect(addr, "rap-keep").await;
    let mut clear = connect(addr, "rap-clear").await;
    let mut rap = opts(QoS::AtMostOnce);
    rap.retain_as_published = true;
    keep.subscribe5(1, &[("news", rap)], None).await;
    clear
        .subscribe5(1, &[("news", opts(QoS::AtMostOnce))], None)
        .await;
    let mut v3 = Mqtt::connect(addr, "rap-v3").await;
    v3.subscribe("news", rumqttc::QoS::AtMostOnce).await;

    let mut publisher = connect(addr, "rap-pub").await;
    publisher
        .publish5("news", QoS::AtLeastOnce, true, "live", 1)
        .await;
    assert!(keep.next_publish().await.retain, "retain as published");
    assert!(!clear.next_publish().await.retain, "cleared on forward");
    assert!(!v3.recv().await.retain, "3.1.1 forward clears it");
}

#[tokio::test]
async fn retain_handling_0_always_1_only_new_2_never() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut publisher = connect(addr, "rh-pub").await;
    publisher
        .publish5("rh/t", QoS::AtLeastOnce, true, "kept", 1)
        .await;
    assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));

    let mut sub = connect(addr, "rh-sub").await;
    let with = |rh| {
        let mut o = opts(QoS::AtMostOnce);
        o.retain_handling = rh;
        o
    };
    // 2: never.
    sub.subscribe5(1, &[("rh/#", with(RetainHandling::Never))], None)
        .await;
    assert!(sub.next_publish_within(300).await.is_none());
    // 1: only when the subscription is new (this one replaces rh/#'s).
    sub.subscribe5(2, &[("rh/#", with(RetainHandling::OnNewSubscribe))], None)
        .await;
    assert!(sub.next_publish_within(300).await.is_none(), "not new");
    sub.subscribe5(3, &[("rh/+", with(RetainHandling::OnNewSubscribe))], None)
        .await;
    assert!(sub.next_publish().await.retain, "new subscription");
    // 0: on every subscribe.
    for id in 4..6 {
        sub.subscribe5(id, &[("rh/t", with(RetainHandling::OnSubscribe))], None)
            .await;
        let p = sub.next_publish().await;
        assert!(p.retain && &p.payload[..] == b"kept");
    }
}

/// The same options through a third-party MQTT 5.0 client (rumqttc v5).
#[tokio::test]
async fn rumqttc_v5_no_local_retain_as_published_and_identifiers() {
    use rumqttc::v5::{
        mqttbytes::{
            v5::{Filter, Packet as P, RetainForwardRule, SubscribeProperties},
            QoS as Q,
        },
        AsyncClient, Event, MqttOptions,
    };
    let broker = start().await;
    let addr = broker.local_addr();
    let opts = MqttOptions::new("r5-sub", addr.ip().to_string(), addr.port());
    let (client, mut ev) = AsyncClient::new(opts, 100);
    let mut mine = Filter::new("r5/mine", Q::AtLeastOnce);
    mine.nolocal = true;
    let mut kept = Filter::new("r5/kept", Q::AtLeastOnce);
    kept.preserve_retain = true;
    kept.retain_forward_rule = RetainForwardRule::Never;
    let props = SubscribeProperties {
        id: Some(77),
        user_properties: Vec::new(),
    };
    client
        .subscribe_many_with_properties(vec![mine, kept], props)
        .await
        .unwrap();
    tokio::time::timeout(pigeon_tests::WAIT, async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(P::SubAck(_))) => return,
                Ok(_) => {}
                Err(e) => panic!("rumqttc v5: {e}"),
            }
        }
    })
    .await
    .expect("SUBACK in time");
    client
        .publish("r5/mine", Q::AtLeastOnce, false, "own")
        .await
        .unwrap();
    let mut publisher = connect(addr, "r5-pub").await;
    // After its own message has gone through the broker (PUBACK), so that a
    // wrongly delivered one would arrive first.
    tokio::time::timeout(pigeon_tests::WAIT, async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(P::PubAck(_))) => return,
                Ok(Event::Incoming(P::Publish(p))) => panic!("own message delivered: {p:?}"),
                Ok(_) => {}
                Err(e) => panic!("rumqttc v5: {e}"),
            }
        }
    })
    .await
    .expect("PUBACK in time");
    publisher
        .publish5("r5/kept", QoS::AtLeastOnce, true, "kept", 1)
        .await;

    let got = tokio::time::timeout(pigeon_tests::WAIT, async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(P::Publish(p))) => return p,
                Ok(_) => {}
                Err(e) => panic!("rumqttc v5: {e}"),
            }
        }
    })
    .await
    .expect("a message in time");
    // Its own message on the no-local filter never came first; the other did,
    // with RETAIN kept and the subscription identifier.
    assert_eq!(&got.topic[..], b"r5/kept");
    assert!(got.retain);
    assert_eq!(
        got.properties.map(|p| p.subscription_identifiers),
        Some(vec![77])
    );
}
