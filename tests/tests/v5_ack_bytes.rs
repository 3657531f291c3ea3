//! MQTT 5.0 acknowledgements on the bytes: reason strings go only with error
//! reason codes (0x80 and above), so success and 0x10 acks stay minimal even
//! when a handler refusing with a non-error code gave a message.

use pigeon::{
    codec::{
        Connect, Packet, Protocol, PubReply, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter,
        Unsubscribe,
    },
    prelude::*,
};
use pigeon_tests::{Raw, WAIT};
use tokio::io::AsyncReadExt;

#[injectable]
struct SoftGate;

#[handlers]
impl SoftGate {
    #[on_authorize_publish]
    async fn gate(&self, packet: &mut Publish) -> Result<(), Denied> {
        match &*packet.topic {
            "soft" => Err(Denied {
                message: "pretend nobody listens".into(),
                reason: ReasonCode::NoMatchingSubscribers,
            }),
            "hard" => Err(Denied::new("not for you")),
            _ => Ok(()),
        }
    }
}

#[module(providers = [SoftGate])]
struct AckModule;

async fn client(addr: std::net::SocketAddr, id: &str) -> Raw {
    let (raw, ack) = Raw::connect(addr, Connect::new(Protocol::V5, id)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    raw
}

/// Reads exactly `n` bytes; then a PINGREQ's PINGRESP must follow at once, so
/// the ack was not longer than `n`.
async fn exact(raw: &mut Raw, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    tokio::time::timeout(WAIT, raw.stream.read_exact(&mut got))
        .await
        .expect("bytes in time")
        .expect("connection open");
    raw.send(Packet::PingReq).await;
    let mut ping = [0; 2];
    tokio::time::timeout(WAIT, raw.stream.read_exact(&mut ping))
        .await
        .expect("PINGRESP in time")
        .expect("connection open");
    assert_eq!(ping, [0xd0, 0x00], "bytes after the ack {got:02x?}");
    got
}

async fn publish(raw: &mut Raw, topic: &str, qos: QoS, packet_id: u16) {
    let mut p = Publish::new(topic, qos, "x");
    p.packet_id = packet_id;
    raw.send(Packet::Publish(p)).await;
}

#[tokio::test]
async fn v5_ack_bytes_success_and_0x10_acks_carry_no_properties() {
    let app = pigeon::testing::start::<AckModule>().await.expect("starts");
    let addr = app.local_addr();
    let mut raw = client(addr, "acks").await;
    publish(&mut raw, "nobody", QoS::AtLeastOnce, 1).await;
    assert_eq!(exact(&mut raw, 5).await, [0x40, 0x03, 0x00, 0x01, 0x10]);
    publish(&mut raw, "nobody", QoS::ExactlyOnce, 2).await;
    assert_eq!(exact(&mut raw, 5).await, [0x50, 0x03, 0x00, 0x02, 0x10]);
    raw.send(Packet::PubRel(PubReply::new(2))).await;
    assert_eq!(exact(&mut raw, 4).await, [0x70, 0x02, 0x00, 0x02]);

    // SUBACK and UNSUBACK granting: reason codes, an empty property length.
    let mut watcher = client(addr, "acks-watch").await;
    let sub = Subscribe::new(3, vec![SubscribeFilter::new("here", QoS::AtMostOnce)]);
    watcher.send(Packet::Subscribe(sub)).await;
    assert_eq!(
        exact(&mut watcher, 6).await,
        [0x90, 0x04, 0x00, 0x03, 0x00, 0x00]
    );
    publish(&mut raw, "here", QoS::AtLeastOnce, 4).await;
    assert_eq!(exact(&mut raw, 4).await, [0x40, 0x02, 0x00, 0x04]);
    assert!(matches!(watcher.recv().await, Some(Packet::Publish(_))));
    let unsub = Unsubscribe {
        packet_id: 5,
        filters: vec!["here".into()],
        properties: Default::default(),
    };
    watcher.send(Packet::Unsubscribe(unsub)).await;
    assert_eq!(
        exact(&mut watcher, 6).await,
        [0xb0, 0x04, 0x00, 0x05, 0x00, 0x00]
    );
    app.close().await;
}

#[tokio::test]
async fn v5_ack_bytes_a_handler_message_goes_only_with_an_error_code() {
    let app = pigeon::testing::start::<AckModule>().await.expect("starts");
    let mut raw = client(app.local_addr(), "soft").await;
    // Refused with 0x10: the handler's message is not sent.
    publish(&mut raw, "soft", QoS::AtLeastOnce, 1).await;
    assert_eq!(exact(&mut raw, 5).await, [0x40, 0x03, 0x00, 0x01, 0x10]);
    // Refused with 0x87: it is.
    publish(&mut raw, "hard", QoS::AtLeastOnce, 2).await;
    match raw.recv().await {
        Some(Packet::PubAck(ack)) => {
            assert_eq!(ack.reason_code, ReasonCode::NotAuthorized);
            assert_eq!(ack.properties.reason_string.as_deref(), Some("not for you"));
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
    app.close().await;
}
