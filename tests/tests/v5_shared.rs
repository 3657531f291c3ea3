//! MQTT 5.0 shared subscriptions `$share/<group>/<filter>` (also accepted from
//! 3.1.1 clients): one member per message, redistribution of a leaving
//! member's unacknowledged messages, no retained messages on subscribe.

use std::collections::HashSet;

use pigeon_codec::{Packet, QoS, ReasonCode};
use pigeon_tests::{
    config,
    raw5::{connect, opts},
    start, start_with, Mqtt, Raw,
};

/// Receives PUBLISHes (acknowledging QoS 1) until none comes for `quiet_ms`.
async fn drain(raw: &mut Raw, quiet_ms: u64) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(p) = raw.next_publish_within(quiet_ms).await {
        if p.qos == QoS::AtLeastOnce {
            raw.puback(p.packet_id).await;
        }
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    got
}

#[tokio::test]
async fn group_members_split_messages_with_none_lost_or_duplicated() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut a = connect(addr, "share-a").await;
    let mut b = connect(addr, "share-b").await;
    let mut plain = connect(addr, "share-plain").await;
    for (raw, filter) in [
        (&mut a, "$share/g/jobs/+"),
        (&mut b, "$share/g/jobs/+"),
        (&mut plain, "jobs/#"),
    ] {
        let ack = raw
            .subscribe5(1, &[(filter, opts(QoS::AtLeastOnce))], None)
            .await;
        assert_eq!(ack.reason_codes, vec![ReasonCode::GrantedQoS1]);
    }
    // A 3.1.1 member of the same group (Mosquitto and EMQX accept these too).
    let mut c = Mqtt::connect(addr, "share-c311").await;
    let codes = c
        .subscribe("$share/g/jobs/+", rumqttc::QoS::AtLeastOnce)
        .await;
    assert_eq!(
        codes,
        vec![rumqttc::SubscribeReasonCode::Success(
            rumqttc::QoS::AtLeastOnce
        )]
    );

    let mut publisher = connect(addr, "share-pub").await;
    for i in 0..30 {
        publisher
            .publish5("jobs/x", QoS::AtLeastOnce, false, &format!("job{i}"), i + 1)
            .await;
    }
    let got_a = drain(&mut a, 400).await;
    let got_b = drain(&mut b, 100).await;
    let mut got_c = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(std::time::Duration::from_millis(100), async {
        Some(c.recv().await)
    })
    .await
    {
        got_c.push(String::from_utf8_lossy(&p.payload).into_owned());
        if got_a.len() + got_b.len() + got_c.len() == 30 {
            break;
        }
    }
    let all: Vec<&String> = got_a.iter().chain(&got_b).chain(&got_c).collect();
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 30, "a {got_a:?} b {got_b:?} c {got_c:?}");
    assert_eq!(unique.len(), 30, "no duplicates");
    for (name, got) in [("a", &got_a), ("b", &got_b), ("c", &got_c)] {
        assert_eq!(got.len(), 10, "round-robin share of {name}: {got:?}");
    }
    // A plain subscription beside the group still gets every message.
    assert_eq!(drain(&mut plain, 200).await.len(), 30);
}

#[tokio::test]
async fn unacknowledged_messages_of_a_leaving_member_go_to_another() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut lazy = connect(addr, "lazy").await;
    let mut busy = connect(addr, "busy").await;
    for raw in [&mut lazy, &mut busy] {
        raw.subscribe5(1, &[("$share/w/work", opts(QoS::AtLeastOnce))], None)
            .await;
    }
    let mut publisher = connect(addr, "work-pub").await;
    for i in 0..6 {
        publisher
            .publish5("work", QoS::AtLeastOnce, false, &format!("w{i}"), i + 1)
            .await;
    }
    // `lazy` receives its share and never acknowledges it.
    let mut lazy_got = Vec::new();
    while let Some(p) = lazy.next_publish_within(300).await {
        lazy_got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    assert_eq!(lazy_got.len(), 3, "{lazy_got:?}");
    let mut busy_got = drain(&mut busy, 200).await;
    assert_eq!(busy_got.len(), 3, "{busy_got:?}");
    // `lazy` crashes: its three unacknowledged messages go to `busy`.
    drop(lazy);
    busy_got.extend(drain(&mut busy, 500).await);
    let unique: HashSet<&String> = busy_got.iter().collect();
    assert_eq!(busy_got.len(), 6, "{busy_got:?}");
    assert_eq!(unique.len(), 6);
    for w in &lazy_got {
        assert!(busy_got.contains(w), "{w} redelivered");
    }
}

#[tokio::test]
async fn no_retained_messages_on_a_shared_subscription() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut publisher = connect(addr, "ret-pub").await;
    publisher
        .publish5("ret/t", QoS::AtLeastOnce, true, "kept", 1)
        .await;
    assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    let mut member = connect(addr, "ret-member").await;
    let ack = member
        .subscribe5(1, &[("$share/g/ret/#", opts(QoS::AtLeastOnce))], None)
        .await;
    assert_eq!(ack.reason_codes, vec![ReasonCode::GrantedQoS1]);
    assert!(member.next_publish_within(300).await.is_none());
    // The same filter unshared does get it (the message is there).
    member
        .subscribe5(2, &[("ret/#", opts(QoS::AtLeastOnce))], None)
        .await;
    let p = member.next_publish().await;
    assert!(p.retain && &p.payload[..] == b"kept");
}

#[tokio::test]
async fn a_client_gets_one_copy_per_plain_match_set_plus_its_shared_copy() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut both = connect(addr, "both").await;
    both.subscribe5(
        1,
        &[
            ("$share/g/o/+", opts(QoS::AtMostOnce)),
            ("o/#", opts(QoS::AtMostOnce)),
            ("o/+", opts(QoS::AtMostOnce)),
        ],
        None,
    )
    .await;
    let mut publisher = connect(addr, "o-pub").await;
    publisher
        .publish5("o/1", QoS::AtMostOnce, false, "x", 0)
        .await;
    assert!(both.next_publish_within(1000).await.is_some());
    assert!(both.next_publish_within(1000).await.is_some());
    assert!(
        both.next_publish_within(300).await.is_none(),
        "two copies only"
    );
}

#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = start().await;
    let mut raw = connect(broker.local_addr(), "nolocal-share").await;
    let mut o = opts(QoS::AtLeastOnce);
    o.no_local = true;
    raw.send(Packet::Subscribe(pigeon_codec::Subscribe::new(
        1,
        vec![pigeon_codec::SubscribeFilter {
            filter: "$share/g/t".into(),
            options: o,
        }],
    )))
    .await;
    let seen = raw.closed().await;
    assert!(
        matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code == ReasonCode::ProtocolError),
        "{seen:?}"
    );
}

#[tokio::test]
async fn shared_subscriptions_switched_off_answer_0x9e() {
    let mut cfg = config();
    cfg.shared_subscription_available = false;
    let broker = start_with(cfg).await;
    let (mut raw, ack) = Raw::connect(
        broker.local_addr(),
        pigeon_tests::raw5::connect_packet("noshare"),
    )
    .await;
    assert_eq!(ack.properties.shared_subscription_available, Some(false));
    let ack = raw
        .subscribe5(
            1,
            &[
                ("$share/g/t", opts(QoS::AtMostOnce)),
                ("t", opts(QoS::AtMostOnce)),
            ],
            None,
        )
        .await;
    assert_eq!(
        ack.reason_codes,
        vec![
            ReasonCode::SharedSubscriptionsNotSupported,
            ReasonCode::Success
        ]
    );
}

#[tokio::test]
async fn a_malformed_share_name_closes_the_connection_and_spares_others() {
    let broker = start().await;
    let addr = broker.local_addr();
    for (i, bad) in ["$share//t", "$share/g", "$share/g+/t"]
        .into_iter()
        .enumerate()
    {
        let mut raw = connect(addr, &format!("badshare{i}")).await;
        raw.send(Packet::Subscribe(pigeon_codec::Subscribe::new(
            1,
            vec![pigeon_codec::SubscribeFilter::new(bad, QoS::AtMostOnce)],
        )))
        .await;
        let seen = raw.closed().await;
        assert!(
            matches!(seen.last(), Some(Packet::Disconnect(d)) if d.reason_code.is_error()),
            "{bad}: {seen:?}"
        );
    }
    pigeon_tests::assert_serving(addr).await;
}

#[tokio::test]
async fn a_sole_persistent_member_gets_its_unacknowledged_messages_back() {
    let broker = start().await;
    let addr = broker.local_addr();
    let persistent = |clean| {
        let mut c = pigeon_tests::raw5::connect_packet("solo");
        c.clean_start = clean;
        c.properties.session_expiry_interval = Some(60);
        c
    };
    let (mut solo, _) = Raw::connect(addr, persistent(true)).await;
    solo.subscribe5(1, &[("$share/s/solo", opts(QoS::AtLeastOnce))], None)
        .await;
    let mut publisher = connect(addr, "solo-pub").await;
    for i in 0..2 {
        publisher
            .publish5("solo", QoS::AtLeastOnce, false, &format!("s{i}"), i + 1)
            .await;
    }
    for _ in 0..2 {
        solo.next_publish().await; // not acknowledged
    }
    drop(solo);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (mut solo, ack) = Raw::connect(addr, persistent(false)).await;
    assert!(ack.session_present);
    let mut again = Vec::new();
    for _ in 0..2 {
        let p = solo.next_publish().await;
        assert!(p.dup, "resent");
        again.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    assert_eq!(again, ["s0", "s1"]);
}

/// Two rumqttc v5 members of one group share the messages.
#[tokio::test]
async fn rumqttc_v5_members_share_a_group() {
    use rumqttc::v5::{
        mqttbytes::{v5::Packet as P, QoS as Q},
        AsyncClient, Event, EventLoop, MqttOptions,
    };
    async fn member(addr: std::net::SocketAddr, id: &str) -> (AsyncClient, EventLoop) {
        let opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        let (client, mut ev) = AsyncClient::new(opts, 100);
        client
            .subscribe("$share/r5/q", Q::AtLeastOnce)
            .await
            .unwrap();
        tokio::time::timeout(pigeon_tests::WAIT, async {
            loop {
                if let Event::Incoming(P::SubAck(_)) = ev.poll().await.expect("connected") {
                    return;
                }
            }
        })
        .await
        .expect("SUBACK in time");
        (client, ev)
    }
    async fn collect(ev: &mut EventLoop) -> Vec<String> {
        let mut got = Vec::new();
        while let Ok(Ok(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(300), ev.poll()).await
        {
            if let Event::Incoming(P::Publish(p)) = event {
                got.push(String::from_utf8_lossy(&p.payload).into_owned());
            }
        }
        got
    }
    let broker = start().await;
    let addr = broker.local_addr();
    let (_a, mut ev_a) = member(addr, "r5-a").await;
    let (_b, mut ev_b) = member(addr, "r5-b").await;
    let mut publisher = connect(addr, "r5-share-pub").await;
    for i in 0..10 {
        publisher
            .publish5("q", QoS::AtLeastOnce, false, &format!("q{i}"), i + 1)
            .await;
    }
    let (got_a, got_b) = tokio::join!(collect(&mut ev_a), collect(&mut ev_b));
    let all: HashSet<&String> = got_a.iter().chain(&got_b).collect();
    assert_eq!((got_a.len(), got_b.len()), (5, 5), "{got_a:?} {got_b:?}");
    assert_eq!(all.len(), 10);
}
