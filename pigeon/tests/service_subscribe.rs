//! `PigeonService::subscribe`: the application's own subscription, fed by
//! rumqttc publishers over real sockets, with a client session's QoS 1 promise.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::StreamExt;
use pigeon::{broker::SubscribeError, prelude::*, service::MessageStream};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS as Q};
use tokio::{sync::Notify, time::timeout};

const WAIT: Duration = Duration::from_secs(5);

#[module(providers = [])]
struct Bare;

/// A v4 publisher and the PUBACKs it got so far.
struct Publisher {
    client: AsyncClient,
    acks: Arc<AtomicUsize>,
    acked: Arc<Notify>,
}

impl Publisher {
    async fn connect(app: &App, id: &str) -> Publisher {
        let mut options = MqttOptions::new(id, "127.0.0.1", app.local_addr().port());
        options.set_keep_alive(Duration::from_secs(30));
        options.set_inflight(500);
        let (client, mut events) = AsyncClient::new(options, 500);
        let acks = Arc::new(AtomicUsize::new(0));
        let acked = Arc::new(Notify::new());
        let connected = Arc::new(Notify::new());
        let (a, n, c) = (acks.clone(), acked.clone(), connected.clone());
        tokio::spawn(async move {
            while let Ok(event) = events.poll().await {
                match event {
                    Event::Incoming(Packet::ConnAck(_)) => c.notify_one(),
                    Event::Incoming(Packet::PubAck(_)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        n.notify_waiters();
                    }
                    _ => {}
                }
            }
        });
        timeout(WAIT, connected.notified())
            .await
            .expect("CONNACK within 5 s");
        Publisher {
            client,
            acks,
            acked,
        }
    }

    async fn send(&self, topic: &str, n: usize) {
        for i in 0..n {
            self.client
                .publish(topic, Q::AtLeastOnce, false, i.to_string())
                .await
                .unwrap();
        }
    }

    fn acks(&self) -> usize {
        self.acks.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` PUBACKs came.
    async fn wait_acks(&self, n: usize) {
        timeout(WAIT, async {
            loop {
                let acked = self.acked.notified();
                if self.acks() >= n {
                    return;
                }
                acked.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {n} PUBACKs", self.acks()));
    }
}

async fn next(stream: &mut MessageStream) -> pigeon::service::Message {
    timeout(WAIT, stream.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream is open")
}

fn payloads(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn messages_arrive_in_order_with_their_publisher() {
    let app = pigeon::testing::start::<Bare>().await.unwrap();
    let mut stream = app.service().subscribe("orders/+").await.unwrap();
    let publisher = Publisher::connect(&app, "orders-pub").await;
    publisher.send("orders/eu", 100).await;
    let mut got = Vec::new();
    for _ in 0..100 {
        let m = next(&mut stream).await;
        assert_eq!(&*m.topic, "orders/eu");
        assert_eq!(m.publisher.as_deref(), Some("orders-pub"));
        assert_eq!(m.qos, QoS::AtLeastOnce);
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    assert_eq!(got, payloads(100));
    app.close().await;
}

#[tokio::test]
async fn a_slow_stream_slows_a_qos1_burst_and_loses_none_of_it() {
    let app = pigeon::testing::start_with::<Bare>(|c| c.max_queued_messages = 10)
        .await
        .unwrap();
    let mut stream = app.service().subscribe("burst").await.unwrap();
    let publisher = Publisher::connect(&app, "burst-pub").await;
    publisher.send("burst", 200).await;
    // The stream's queue takes 10; then the publisher waits, unacknowledged.
    publisher.wait_acks(10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked = publisher.acks();
    assert!(acked <= 11, "{acked} PUBACKs past a queue of 10");
    assert!(app.broker().stats().queued_bytes < 1024 * 1024);
    let mut got = Vec::new();
    for _ in 0..200 {
        let m = next(&mut stream).await;
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
        // A slow consumer.
        if got.len() % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(got, payloads(200), "in order, none lost");
    publisher.wait_acks(200).await;
    assert_eq!(app.broker().stats().messages_dropped, 0);
    app.close().await;
}

#[tokio::test]
async fn dropping_the_stream_unsubscribes_and_frees_waiting_publishers() {
    let app = pigeon::testing::start_with::<Bare>(|c| c.max_queued_messages = 10)
        .await
        .unwrap();
    let base = app.broker().stats().subscriptions;
    let stream = app.service().subscribe("drop/#").await.unwrap();
    assert_eq!(app.broker().stats().subscriptions, base + 1);
    let publisher = Publisher::connect(&app, "drop-pub").await;
    publisher.send("drop/x", 50).await;
    publisher.wait_acks(10).await;
    assert!(publisher.acks() < 50, "the full stream holds the publisher");
    drop(stream);
    assert_eq!(app.broker().stats().subscriptions, base);
    // Nobody subscribes any more: the rest is acknowledged at once.
    publisher.wait_acks(50).await;
    app.close().await;
}

#[tokio::test]
async fn retained_messages_come_first_and_bad_filters_are_refused() {
    let app = pigeon::testing::start::<Bare>().await.unwrap();
    let mut retained = Publish::new("state/lamp", QoS::AtLeastOnce, "on");
    retained.retain = true;
    app.service().publish(retained).await.unwrap();
    let mut stream = app.service().subscribe("state/#").await.unwrap();
    app.service()
        .publish(Publish::new("state/door", QoS::AtLeastOnce, "open"))
        .await
        .unwrap();
    let first = next(&mut stream).await;
    assert_eq!((&*first.topic, first.retain), ("state/lamp", true));
    assert_eq!(first.publisher, None);
    let second = next(&mut stream).await;
    assert_eq!((&*second.topic, second.retain), ("state/door", false));

    let err = app.service().subscribe("a/#/b").await.unwrap_err();
    assert_eq!(err, SubscribeError::InvalidFilter("a/#/b".into()));
    assert_eq!(err.to_string(), "invalid topic filter \"a/#/b\"");
    app.close().await;
}

#[tokio::test]
async fn the_stream_ends_when_the_broker_closes() {
    let app = pigeon::testing::start::<Bare>().await.unwrap();
    let mut stream = app.service().subscribe("x").await.unwrap();
    app.close().await;
    let end = timeout(WAIT, stream.next()).await.expect("ends within 5 s");
    assert!(end.is_none());
}

#[tokio::test]
async fn a_stream_that_takes_nothing_for_drain_timeout_ends_and_publishers_move_on() {
    let app = pigeon::testing::start_with::<Bare>(|c| {
        c.max_queued_messages = 5;
        c.drain_timeout = Duration::from_millis(200);
    })
    .await
    .unwrap();
    let mut stream = app.service().subscribe("stall").await.unwrap();
    let publisher = Publisher::connect(&app, "stall-pub").await;
    publisher.send("stall", 30).await;
    // Held while the stream is full, then let go once it is judged too slow,
    // as a client that slow would be disconnected.
    publisher.wait_acks(30).await;
    let end = timeout(WAIT, stream.next()).await.expect("ends within 5 s");
    assert!(end.is_none(), "the stalled stream ended");
    assert_eq!(app.broker().stats().subscriptions, 0);
    app.close().await;
}
