//! Idle connections parked off the runtime (`park_idle_after`): a parked
//! client loses nothing and is served as before, whatever brings it back —
//! a delivery, its own packet or close, its keep alive, a takeover, an
//! administrator, shutdown.

use std::time::Duration;

use pigeon::codec::{
    Connect, Packet, Protocol, PubReply, QoS, ReasonCode, Subscribe, SubscribeFilter, Will,
};
use pigeon::{BrokerHandle, Config};
use pigeon_tests::{config, parked, start_with, Mqtt, Raw, WAIT};

/// Parks clients idle for 50 ms.
fn parking() -> Config {
    Config {
        park_idle_after: Duration::from_millis(50),
        ..config()
    }
}

fn v5(id: &str) -> Connect {
    let mut c = Connect::new(Protocol::V5, id);
    c.keep_alive = 60;
    c
}

/// The DISCONNECT a v5 client gets before the broker closes, if any.
async fn goodbye(raw: &mut Raw) -> Option<ReasonCode> {
    raw.closed().await.into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    })
}

#[tokio::test]
async fn parked_clients_deliver_and_receive_in_order() {
    let broker = start_with(parking()).await;
    let addr = broker.local_addr();
    let mut sub = Mqtt::connect(addr, "park-sub").await;
    sub.subscribe("park/t", rumqttc::QoS::AtLeastOnce).await;
    let publisher = Mqtt::connect(addr, "park-pub").await;
    parked(&broker, 2).await;
    assert_eq!(
        broker.stats().clients_connected,
        2,
        "parked is still connected"
    );

    // The publisher is brought back by its socket, the subscriber by the delivery.
    for i in 0..3 {
        publisher
            .publish("park/t", rumqttc::QoS::AtLeastOnce, false, format!("m{i}"))
            .await;
        let got = sub.recv().await;
        assert_eq!(&got.payload[..], format!("m{i}").as_bytes());
        // Both park again between messages.
        parked(&broker, 2).await;
    }
    sub.assert_silent(100).await;
    broker.close().await;
}

#[tokio::test]
async fn a_parked_client_is_answered_and_its_close_is_seen() {
    let broker = start_with(parking()).await;
    let addr = broker.local_addr();
    let mut watcher = Mqtt::connect(addr, "park-watcher").await;
    watcher
        .subscribe("park/will", rumqttc::QoS::AtLeastOnce)
        .await;
    let mut connect = Raw::connect_packet("park-raw", true);
    connect.keep_alive = 60;
    connect.will = Some(Will {
        topic: "park/will".into(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let (mut raw, _) = Raw::connect(addr, connect).await;
    parked(&broker, 2).await;

    raw.send(Packet::PingReq).await;
    assert!(matches!(raw.recv().await, Some(Packet::PingResp)));
    parked(&broker, 2).await;

    // A close (no DISCONNECT) while parked: the will goes out.
    drop(raw);
    let will = watcher.recv().await;
    assert_eq!(&will.payload[..], b"gone");
    assert_eq!(broker.stats().clients_connected, 1);
    broker.close().await;
}

#[tokio::test]
async fn the_keep_alive_ends_a_silent_parked_client() {
    let broker = start_with(parking()).await;
    let addr = broker.local_addr();
    let mut connect = Raw::connect_packet("park-sleepy", true);
    connect.keep_alive = 1;
    let started = std::time::Instant::now();
    let (mut raw, _) = Raw::connect(addr, connect).await;
    parked(&broker, 1).await;
    // 1.5 × the keep alive, then closed (3.1.1: without a word).
    assert!(raw.closed().await.is_empty());
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "closed after {took:?}");
    assert_eq!(broker.stats().clients_connected, 0);
    broker.close().await;
}

#[tokio::test]
async fn a_parked_client_is_taken_over_kicked_and_told_of_shutdown() {
    let broker = start_with(parking()).await;
    let addr = broker.local_addr();

    let (mut first, _) = Raw::connect(addr, v5("park-twice")).await;
    parked(&broker, 1).await;
    let (_second, ack) = Raw::connect(addr, v5("park-twice")).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert_eq!(
        goodbye(&mut first).await,
        Some(ReasonCode::SessionTakenOver)
    );

    let (mut kicked, _) = Raw::connect(addr, v5("park-kicked")).await;
    parked(&broker, 2).await;
    assert!(broker.disconnect_client("park-kicked"));
    assert_eq!(
        goodbye(&mut kicked).await,
        Some(ReasonCode::AdministrativeAction)
    );

    let (mut last, _) = Raw::connect(addr, v5("park-last")).await;
    parked(&broker, 2).await;
    let closing = tokio::time::timeout(WAIT, broker.close());
    let (closed, word) = tokio::join!(closing, goodbye(&mut last));
    assert!(closed.is_ok(), "shutdown waited for no parked client");
    assert_eq!(word, Some(ReasonCode::ServerShuttingDown));
}

#[tokio::test]
async fn a_parked_session_keeps_its_in_flight_message() {
    let broker = start_with(parking()).await;
    let addr = broker.local_addr();
    let (mut sub, _) = Raw::connect(addr, v5("park-inflight")).await;
    let filter = SubscribeFilter::new("park/q", QoS::AtLeastOnce);
    sub.send(Packet::Subscribe(Subscribe::new(1, vec![filter])))
        .await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    let publisher = Mqtt::connect(addr, "park-q-pub").await;
    publisher
        .publish("park/q", rumqttc::QoS::AtLeastOnce, false, "once")
        .await;
    let Some(Packet::Publish(first)) = sub.recv().await else {
        panic!("no delivery")
    };
    // Not acknowledged: the subscriber parks with the message in flight.
    parked(&broker, 2).await;
    let inflight = |b: &BrokerHandle| b.client_info("park-inflight").map(|c| c.inflight);
    assert_eq!(inflight(&broker), Some(1));
    sub.send(Packet::PubAck(PubReply::new(first.packet_id)))
        .await;
    // The acknowledgement brings it back and ends the exchange.
    let acked = tokio::time::timeout(WAIT, async {
        while inflight(&broker) != Some(0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert!(acked.await.is_ok(), "the PUBACK was not taken");
    publisher
        .publish("park/q", rumqttc::QoS::AtLeastOnce, false, "twice")
        .await;
    let Some(Packet::Publish(second)) = sub.recv().await else {
        panic!("no second delivery")
    };
    assert_eq!(&second.payload[..], b"twice", "the first is not sent again");
    broker.close().await;
}

#[tokio::test]
async fn nothing_parks_when_parking_is_off() {
    let broker = start_with(Config {
        park_idle_after: Duration::ZERO,
        ..config()
    })
    .await;
    let mut sub = Mqtt::connect(broker.local_addr(), "park-never").await;
    sub.subscribe("park/never", rumqttc::QoS::AtMostOnce).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(broker.stats().clients_parked, 0);
    assert_eq!(broker.stats().clients_connected, 1);
    broker.close().await;
}
