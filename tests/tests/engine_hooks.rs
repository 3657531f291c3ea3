//! The engine's calls into user handlers, end to end over TCP: queue limit while
//! authenticate runs, refusals and panics answered (never a hanging client),
//! authorize-publish / -subscribe semantics, wills through authorize-publish,
//! and the events a connection's life produces.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use pigeon::{
    codec::{
        Connect, Packet, Protocol, PubReply, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter,
        Will,
    },
    prelude::*,
};
use pigeon_tests::Raw;

#[injectable]
struct Log {
    #[inject(default)]
    lines: Mutex<Vec<String>>,
}

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.lines.lock().unwrap().push(s.into());
    }
    fn has(&self, s: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l == s)
    }
}

#[injectable]
struct Gate {
    log: Arc<Log>,
}

#[handlers]
impl Gate {
    #[on_authenticate]
    async fn auth(&self, client: Client, credential: Credential) -> Result<(), AuthError> {
        match client.id() {
            id if id.starts_with("slow") => tokio::time::sleep(Duration::from_millis(400)).await,
            "panic" => panic!("authenticate blew up"),
            _ => {}
        }
        match credential.username.as_deref() {
            Some("bad") => Err(AuthError::with_return_code("bad user", 4)),
            _ => Ok(()),
        }
    }

    #[on_authorize_publish]
    async fn can_publish(&self, packet: &mut Publish) -> Result<(), Denied> {
        if packet.topic == "aaaa" {
            return Err(Denied::new("wrong topic"));
        }
        if packet.topic == "bbb" {
            packet.payload = "overwrite packet payload".into();
        }
        if packet.topic == "to-wildcard" {
            // Not a topic name a message may have.
            packet.topic = "a/+/b".into();
        }
        Ok(())
    }

    #[on_authorize_subscribe]
    async fn can_subscribe(&self, mut sub: Subscription) -> Result<Option<Subscription>, Denied> {
        match sub.topic.as_str() {
            "aaaa" => Err(Denied::new("wrong topic")),
            "neg" => Ok(None),
            "bbb" => {
                sub.topic = "foo".into();
                sub.set_qos(QoS::AtLeastOnce);
                Ok(Some(sub))
            }
            _ => Ok(Some(sub)),
        }
    }

    #[on_authorize_forward]
    async fn forward(&self, client: Client, packet: &mut Publish) -> bool {
        if packet.topic == "fwd" {
            packet.payload = format!("for {}", client.id()).into();
        }
        client.id() != "muted"
    }

    #[on_connection_error]
    async fn connection_error(&self, error: Error) {
        self.log.push(format!("connection_error {error}"));
    }

    #[on_client_error]
    async fn client_error(&self, client: Client, error: Error) {
        self.log
            .push(format!("client_error {} {error}", client.id()));
    }

    #[on_client]
    async fn client(&self, client: Client) {
        self.log.push(format!("client {}", client.id()));
    }

    #[on_client_ready]
    async fn ready(&self, client: Client) {
        self.log.push(format!("ready {}", client.id()));
    }

    #[on_connack_sent]
    async fn connack(&self, client: Client) {
        self.log.push(format!("connack {}", client.id()));
    }

    #[on_ack]
    async fn ack(&self, client: Client, topic: Topic) {
        self.log.push(format!("ack {} {}", client.id(), &*topic));
    }

    #[on_client_disconnect]
    async fn gone(&self, client: Client) {
        self.log.push(format!("disconnect {}", client.id()));
    }

    #[on_closed]
    async fn closed(&self) {
        self.log.push("closed");
    }
}

#[module(queue_limit = 3, providers = [Log, Gate])]
struct GateModule;

async fn app() -> (pigeon::app::App, Arc<Log>) {
    let app = pigeon::testing::start::<GateModule>()
        .await
        .expect("starts");
    let log = app.get::<Log>().expect("log");
    (app, log)
}

async fn eventually(log: &Log, line: &str) {
    for _ in 0..200 {
        if log.has(line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "never logged {line:?}; log: {:?}",
        log.lines.lock().unwrap()
    );
}

#[tokio::test]
async fn packets_beyond_queue_limit_while_authenticating_fail_the_connection() {
    let (app, log) = app().await;
    let addr = app.local_addr();
    // Within the limit: buffered, then handled after CONNACK.
    let mut raw = Raw::tcp(addr).await;
    raw.send(Packet::Connect(Box::new(Raw::connect_packet(
        "slow-ok", true,
    ))))
    .await;
    for _ in 0..3 {
        raw.send(Packet::PingReq).await;
    }
    assert!(
        matches!(raw.recv().await, Some(Packet::ConnAck(a)) if a.reason_code == ReasonCode::Success)
    );
    for _ in 0..3 {
        assert!(matches!(raw.recv().await, Some(Packet::PingResp)));
    }
    // One more than queue_limit: the connection fails.
    let mut raw = Raw::tcp(addr).await;
    raw.send(Packet::Connect(Box::new(Raw::connect_packet(
        "slow-flood",
        true,
    ))))
    .await;
    for _ in 0..4 {
        raw.send(Packet::PingReq).await;
    }
    assert!(raw.closed().await.is_empty());
    eventually(&log, "connection_error Client queue limit reached").await;
    app.close().await;
}

#[tokio::test]
async fn authenticate_refusal_and_panic_are_answered_with_connack() {
    let (app, log) = app().await;
    let addr = app.local_addr();
    let mut connect = Raw::connect_packet("someone", true);
    connect.username = Some("bad".into());
    let (_, ack) = Raw::connect(addr, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::BadUserNameOrPassword);

    let (_, ack) = Raw::connect(addr, Raw::connect_packet("panic", true)).await;
    assert_eq!(ack.reason_code, ReasonCode::ServerUnavailable);
    // Issue 5: a failing authenticate is "server unavailable" for 3.x, 0x80 for v5.
    let (_, ack) = Raw::connect(addr, Connect::new(Protocol::V5, "panic")).await;
    assert_eq!(ack.reason_code, ReasonCode::UnspecifiedError);
    eventually(&log, "connection_error bad user").await;
    app.close().await;
}

/// A 3.1.1 client subscribed to everything, to see what gets through.
async fn watcher(addr: std::net::SocketAddr, id: &str) -> Raw {
    let (mut sub, _) = Raw::connect(addr, Raw::connect_packet(id, true)).await;
    sub.send(Packet::Subscribe(Subscribe::new(
        1,
        vec![SubscribeFilter::new("#", QoS::AtMostOnce)],
    )))
    .await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    sub
}

#[tokio::test]
async fn authorize_publish_rewrites_or_refuses_per_protocol_version() {
    let (app, log) = app().await;
    let addr = app.local_addr();
    let mut sub = watcher(addr, "watcher").await;

    // Rewritten payload.
    let (mut v3, _) = Raw::connect(addr, Raw::connect_packet("v3", true)).await;
    v3.send(Packet::Publish(Publish::new(
        "bbb",
        QoS::AtMostOnce,
        "original",
    )))
    .await;
    assert!(
        matches!(sub.recv().await, Some(Packet::Publish(p)) if p.payload == "overwrite packet payload")
    );

    // v5: refused with PUBACK 0x87, connection kept.
    let (mut v5, _) = Raw::connect(addr, Connect::new(Protocol::V5, "v5")).await;
    let mut p = Publish::new("aaaa", QoS::AtLeastOnce, "no");
    p.packet_id = 3;
    v5.send(Packet::Publish(p)).await;
    assert!(
        matches!(v5.recv().await, Some(Packet::PubAck(a)) if a.reason_code == ReasonCode::NotAuthorized)
    );
    v5.send(Packet::PingReq).await;
    assert!(matches!(v5.recv().await, Some(Packet::PingResp)));

    // 3.1.1: refused by closing the connection, nothing sent (MQTT-3.3.5-2).
    let mut p = Publish::new("aaaa", QoS::AtLeastOnce, "no");
    p.packet_id = 4;
    v3.send(Packet::Publish(p)).await;
    assert!(v3.closed().await.is_empty());
    eventually(&log, "client_error v3 wrong topic").await;

    // Nothing refused reached the watcher.
    sub.send(Packet::PingReq).await;
    assert!(matches!(sub.recv().await, Some(Packet::PingResp)));
    app.close().await;
}

/// A handler that rewrites the topic into one no message may have ends the
/// connection with 0x90 Topic Name Invalid; nothing is delivered, and other
/// clients are served on.
#[tokio::test]
async fn authorize_publish_rewriting_an_invalid_topic_closes_with_0x90() {
    let (app, _log) = app().await;
    let addr = app.local_addr();
    let mut sub = watcher(addr, "watcher-90").await;

    let (mut v5, _) = Raw::connect(addr, Connect::new(Protocol::V5, "rewriter")).await;
    let mut p = Publish::new("to-wildcard", QoS::AtLeastOnce, "x");
    p.packet_id = 1;
    v5.send(Packet::Publish(p)).await;
    let seen = v5.closed().await;
    assert!(
        matches!(&seen[..], [Packet::Disconnect(d)] if d.reason_code == ReasonCode::TopicNameInvalid),
        "{seen:?}"
    );

    // The watcher got nothing, and is still served.
    sub.send(Packet::PingReq).await;
    assert!(matches!(sub.recv().await, Some(Packet::PingResp)));
    app.close().await;
}

#[tokio::test]
async fn authorize_subscribe_negates_refuses_and_rewrites() {
    let (app, _log) = app().await;
    let addr = app.local_addr();
    let (mut raw, _) = Raw::connect(addr, Raw::connect_packet("subber", true)).await;
    raw.send(Packet::Subscribe(Subscribe::new(
        9,
        vec![
            SubscribeFilter::new("neg", QoS::AtMostOnce),
            SubscribeFilter::new("aaaa", QoS::AtMostOnce),
            SubscribeFilter::new("bbb", QoS::AtMostOnce),
            SubscribeFilter::new("plain", QoS::ExactlyOnce),
        ],
    )))
    .await;
    let Some(Packet::SubAck(ack)) = raw.recv().await else {
        panic!("SUBACK")
    };
    assert_eq!(
        ack.reason_codes,
        vec![
            ReasonCode::UnspecifiedError,
            ReasonCode::UnspecifiedError,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2
        ]
    );
    let service = app.service();
    service
        .publish(Publish::new("foo", QoS::AtLeastOnce, "rewritten"))
        .await
        .unwrap();
    let Some(Packet::Publish(p)) = raw.recv().await else {
        panic!("PUBLISH")
    };
    assert_eq!((&*p.topic, p.qos), ("foo", QoS::AtLeastOnce));
    raw.send(Packet::PubAck(PubReply::new(p.packet_id))).await;
    app.close().await;
}

#[tokio::test]
async fn wills_pass_through_authorize_publish_and_events_follow_the_connection() {
    let (app, log) = app().await;
    let addr = app.local_addr();
    let (mut sub, _) = Raw::connect(addr, Raw::connect_packet("heir", true)).await;
    sub.send(Packet::Subscribe(Subscribe::new(
        1,
        // "+" (the handler rewrites a "bbb" subscription to "foo").
        vec![SubscribeFilter::new("+", QoS::AtLeastOnce)],
    )))
    .await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    for (id, topic) in [("denied-will", "aaaa"), ("rewritten-will", "bbb")] {
        let mut connect = Raw::connect_packet(id, true);
        connect.will = Some(Will {
            topic: topic.into(),
            payload: "bye".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        });
        let (raw, _) = Raw::connect(addr, connect).await;
        drop(raw);
    }
    let Some(Packet::Publish(p)) = sub.recv().await else {
        panic!("the allowed will")
    };
    assert_eq!(
        (&*p.topic, &p.payload[..]),
        ("bbb", &b"overwrite packet payload"[..])
    );
    sub.send(Packet::PubAck(PubReply::new(p.packet_id))).await;
    for line in [
        "client heir",
        "connack heir",
        "ready heir",
        "ack heir bbb",
        "disconnect denied-will",
        "disconnect rewritten-will",
    ] {
        eventually(&log, line).await;
    }
    sub.send(Packet::PingReq).await;
    assert!(
        matches!(sub.recv().await, Some(Packet::PingResp)),
        "the denied will never came"
    );
    app.close().await;
    eventually(&log, "closed").await;
}

#[tokio::test]
async fn authorize_forward_rewrites_per_subscriber_and_can_drop() {
    let (app, _log) = app().await;
    let addr = app.local_addr();
    let mut subs = Vec::new();
    for id in ["loud", "muted"] {
        let (mut raw, _) = Raw::connect(addr, Raw::connect_packet(id, true)).await;
        raw.send(Packet::Subscribe(Subscribe::new(
            1,
            vec![SubscribeFilter::new("fwd", QoS::AtMostOnce)],
        )))
        .await;
        assert!(matches!(raw.recv().await, Some(Packet::SubAck(_))));
        subs.push(raw);
    }
    app.service()
        .publish(Publish::new("fwd", QoS::AtMostOnce, "x"))
        .await
        .unwrap();
    assert!(matches!(subs[0].recv().await, Some(Packet::Publish(p)) if p.payload == "for loud"));
    subs[1].send(Packet::PingReq).await;
    assert!(
        matches!(subs[1].recv().await, Some(Packet::PingResp)),
        "muted got nothing"
    );
    app.close().await;
}

#[tokio::test]
async fn a_reset_socket_is_a_disconnect_not_a_client_error() {
    let (app, log) = app().await;
    let (raw, _) = Raw::connect(app.local_addr(), Raw::connect_packet("reset", true)).await;
    // Zero linger: closing sends RST, so the broker's read fails with ECONNRESET.
    raw.stream.set_zero_linger().expect("SO_LINGER 0");
    drop(raw);
    eventually(&log, "disconnect reset").await;
    let lines = log.lines.lock().unwrap().clone();
    assert!(
        !lines.iter().any(|l| l.starts_with("client_error reset")),
        "a socket error reported as the client's protocol error: {lines:?}"
    );
    app.close().await;
}
