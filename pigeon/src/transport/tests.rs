//! `BrokerHandle::serve_connection` over `tokio::io::duplex`: the whole MQTT
//! exchange on an in-memory stream, no socket for the clients.

use std::time::Duration;

use bytes::BytesMut;
use pigeon_codec::{
    Connect, Packet, Protocol, PubReply, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::{
    hooks::{Hooks, ListenerKind, Peer},
    Broker, BrokerHandle, Config,
};

const WAIT: Duration = Duration::from_secs(5);

/// One end of an in-memory pipe, speaking MQTT through pigeon-codec.
struct Pipe {
    stream: DuplexStream,
    buf: BytesMut,
}

impl Pipe {
    /// Opens a pipe whose other end the broker serves as `peer`.
    fn open(broker: &BrokerHandle, peer: Peer) -> Pipe {
        let (ours, theirs) = tokio::io::duplex(4096);
        tokio::spawn(broker.serve_connection(theirs, peer));
        Pipe {
            stream: ours,
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        pigeon_codec::encode(&packet, Protocol::V3_1_1, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next packet, `None` once the broker closed the pipe.
    async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(p) = pigeon_codec::decode(&mut self.buf, Protocol::V3_1_1, usize::MAX)
                    .expect("the broker sends valid packets")
                {
                    return Some(p);
                }
                if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("a packet in time")
    }

    async fn connect(&mut self, id: &str) {
        self.connect_with_keep_alive(id, 60).await;
    }

    async fn connect_with_keep_alive(&mut self, id: &str, keep_alive: u16) {
        let mut connect = Connect::new(Protocol::V3_1_1, id);
        connect.keep_alive = keep_alive;
        self.send(Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::Success),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}

async fn broker() -> BrokerHandle {
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        ..Config::default()
    };
    Broker::start(config, Hooks::none()).await.unwrap()
}

fn peer(port: u16) -> Peer {
    Peer::new(([10, 0, 0, 1], port).into()).with_listener("pipe", ListenerKind::Custom)
}

#[tokio::test]
async fn serve_connection_runs_connect_subscribe_and_publish_over_a_duplex() {
    let broker = broker().await;
    let mut subscriber = Pipe::open(&broker, peer(1));
    subscriber.connect("sub").await;
    subscriber
        .send(Packet::Subscribe(Subscribe::new(
            1,
            vec![SubscribeFilter::new("pipe/#", QoS::AtLeastOnce)],
        )))
        .await;
    assert!(matches!(subscriber.recv().await, Some(Packet::SubAck(_))));

    let mut publisher = Pipe::open(&broker, peer(2));
    publisher.connect("pub").await;
    let mut publish = Publish::new("pipe/a", QoS::AtLeastOnce, "over memory");
    publish.packet_id = 7;
    publisher.send(Packet::Publish(publish)).await;
    match publisher.recv().await {
        Some(Packet::PubAck(PubReply { packet_id: 7, .. })) => {}
        other => panic!("expected PUBACK 7, got {other:?}"),
    }
    match subscriber.recv().await {
        Some(Packet::Publish(p)) => {
            assert_eq!(&*p.topic, "pipe/a");
            assert_eq!(&p.payload[..], b"over memory");
        }
        other => panic!("expected the PUBLISH, got {other:?}"),
    }
    let mut clients = broker.clients();
    clients.sort();
    assert_eq!(clients, ["pub", "sub"]);
    broker.close().await;
}

/// Keep alive through the broker's one watch (no timer per connection): a
/// silent client goes at 1.5 x its Keep Alive, one heard from meanwhile
/// stays. Paused time: the clock moves only when every task waits.
#[tokio::test(start_paused = true)]
async fn keep_alive_ends_a_silent_client_at_one_and_a_half_times_it() {
    let broker = broker().await;
    let mut silent = Pipe::open(&broker, peer(1));
    silent.connect_with_keep_alive("silent", 2).await;
    let mut talker = Pipe::open(&broker, peer(2));
    talker.connect_with_keep_alive("talker", 2).await;
    let start = tokio::time::Instant::now();

    tokio::time::sleep(Duration::from_millis(2500)).await;
    talker.send(Packet::PingReq).await;
    assert_eq!(talker.recv().await, Some(Packet::PingResp));

    assert_eq!(silent.recv().await, None, "closed for its silence");
    let closed = start.elapsed();
    assert!(
        (Duration::from_millis(2900)..=Duration::from_millis(3100)).contains(&closed),
        "closed after {closed:?}, not 3 s"
    );
    talker.send(Packet::PingReq).await;
    assert_eq!(
        talker.recv().await,
        Some(Packet::PingResp),
        "heard at 2.5 s"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        talker.recv().await,
        None,
        "silent since 2.5 s: gone at 5.5 s"
    );
    assert_eq!(broker.clients(), Vec::<String>::new());
    broker.close().await;
}

#[tokio::test]
async fn garbage_on_a_served_stream_closes_only_that_stream() {
    let broker = broker().await;
    let mut good = Pipe::open(&broker, peer(1));
    good.connect("good").await;
    let mut bad = Pipe::open(&broker, peer(2));
    bad.stream
        .write_all(b"\xff\xff\xff\xff\xffnot mqtt")
        .await
        .unwrap();
    assert_eq!(bad.recv().await, None);
    good.send(Packet::PingReq).await;
    assert_eq!(good.recv().await, Some(Packet::PingResp));
    broker.close().await;
}

#[tokio::test]
async fn close_ends_served_connections() {
    let broker = broker().await;
    let mut pipe = Pipe::open(&broker, peer(1));
    pipe.connect("c").await;
    broker.close().await;
    assert_eq!(pipe.recv().await, None);
}
