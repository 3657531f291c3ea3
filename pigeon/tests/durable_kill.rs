//! The durable store under `kill -9`: the `pigeon` binary on a redb file is
//! killed with SIGKILL at pseudo-random points while a publisher sends
//! numbered messages, and restarted on the same file, many times. Afterwards
//! the persistent subscriber receives every message whose acknowledgement the
//! publisher saw, and nothing that was never published.

mod common;

use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
    time::Duration,
};

use common::{Running, PATIENCE};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

/// Kills and restarts per test.
const ROUNDS: u64 = 8;

fn store_dir(test: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pigeon-kill-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(store: &Path) -> Running {
    let spec = format!("redb:{}", store.display());
    // Room for everything the runs publish: a full offline queue refuses
    // (and a 3.x publisher is then disconnected), which is not this test.
    Running::start(&[
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--persistence",
        &spec,
        "--max-queued-messages",
        "1000000",
    ])
}

fn kill_9(running: &mut Running) {
    let status = running.stop_with("KILL");
    assert!(!status.success(), "killed, not exited");
}

fn options(id: &str, running: &Running, clean: bool) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", running.addr.port());
    o.set_clean_session(clean);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// A persistent subscriber to `filter`, connected once then gone.
async fn subscribe_then_leave(running: &Running, filter: &str, qos: QoS) {
    let (client, mut events) = AsyncClient::new(options("sub", running, false), 100);
    client.subscribe(filter, qos).await.unwrap();
    loop {
        match tokio::time::timeout(PATIENCE, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("no SUBACK: {other:?}"),
        }
    }
    client.disconnect().await.unwrap();
    while let Ok(Ok(_)) = tokio::time::timeout(PATIENCE, events.poll()).await {}
}

/// Publishes numbered messages from `first` until the broker dies (it is
/// killed after `after`); returns the numbers sent and those acknowledged
/// (PUBACK for QoS 1, PUBREC for QoS 2).
async fn publish_until_killed(
    running: &mut Running,
    first: u64,
    qos: QoS,
    after: Duration,
) -> (BTreeSet<u64>, BTreeSet<u64>) {
    publish_until_killed_to(running, first, qos, after, false).await
}

/// As [`publish_until_killed`]; `retained`: each message retained on its own
/// topic `r/<n>`, instead of all on `k/n`.
async fn publish_until_killed_to(
    running: &mut Running,
    first: u64,
    qos: QoS,
    after: Duration,
    retained: bool,
) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let (client, mut events) = AsyncClient::new(options("pub", running, true), 1000);
    let sender = tokio::spawn(async move {
        for n in first.. {
            let topic = if retained {
                format!("r/{n}")
            } else {
                "k/n".to_owned()
            };
            if client
                .publish(topic, qos, retained, n.to_string())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut sent = BTreeSet::new();
    let mut acked = BTreeSet::new();
    let mut inflight: HashMap<u16, u64> = HashMap::new();
    let mut next = first;
    let deadline = tokio::time::Instant::now() + after;
    let mut killed = false;
    loop {
        let event = if killed {
            events.poll().await
        } else {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Ok(e) => e,
                Err(_) => {
                    kill_9(running);
                    killed = true;
                    continue;
                }
            }
        };
        match event {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                inflight.insert(pkid, next);
                sent.insert(next);
                next += 1;
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) if qos == QoS::AtLeastOnce => {
                acked.extend(inflight.remove(&ack.pkid));
            }
            Ok(Event::Incoming(Packet::PubRec(rec))) if qos == QoS::ExactlyOnce => {
                acked.extend(inflight.remove(&rec.pkid));
            }
            Ok(_) => {}
            Err(_) if killed => break,
            Err(e) => panic!("publisher failed before the kill: {e}"),
        }
    }
    sender.abort();
    (sent, acked)
}

/// Every message the persistent subscriber gets once it comes back, in order
/// of arrival, until nothing comes for a while.
async fn drain_subscriber(running: &Running) -> Vec<u64> {
    let (client, mut events) = AsyncClient::new(options("sub", running, false), 1000);
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(3), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let n = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
                got.push(n);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("subscriber failed: {e}"),
            Err(_) => break,
        }
    }
    drop(client);
    got
}

/// A pseudo-random kill point per round (deterministic, so a failure repeats).
fn kill_after(round: u64) -> Duration {
    let x = round
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    Duration::from_millis(30 + (x >> 33) % 300)
}

async fn killed_many_times(test: &str, qos: QoS) -> (BTreeSet<u64>, BTreeSet<u64>, Vec<u64>) {
    let store = store_dir(test).join("store.redb");
    let mut running = start(&store);
    subscribe_then_leave(&running, "k/#", qos).await;
    let (mut sent, mut acked) = (BTreeSet::new(), BTreeSet::new());
    let mut first = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            running = start(&store);
        }
        let (s, a) = publish_until_killed(&mut running, first, qos, kill_after(round)).await;
        first = s.last().map_or(first, |n| n + 1);
        sent.extend(s);
        acked.extend(a);
    }
    let mut running = start(&store);
    let got = drain_subscriber(&running).await;
    running.stop_with("TERM");
    assert!(
        acked.len() > 100,
        "the runs acknowledged too little to show anything: {}",
        acked.len()
    );
    (sent, acked, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_qos1_message_survives_kill_9() {
    let (sent, acked, got) = killed_many_times("qos1", QoS::AtLeastOnce).await;
    let received: BTreeSet<u64> = got.iter().copied().collect();
    assert_accounted(&sent, &acked, &received, "acknowledged messages");
}

/// Every acknowledged message (`what`) was received, and nothing received
/// that was never sent.
fn assert_accounted(
    sent: &BTreeSet<u64>,
    acked: &BTreeSet<u64>,
    received: &BTreeSet<u64>,
    what: &str,
) {
    let lost: Vec<_> = acked.difference(received).collect();
    assert!(lost.is_empty(), "{} {what} lost: {lost:?}", lost.len());
    let invented: Vec<_> = received.difference(sent).collect();
    assert!(invented.is_empty(), "never published: {invented:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_qos2_message_with_a_pubrec_arrives_exactly_once_after_kill_9() {
    let (sent, acked, got) = killed_many_times("qos2", QoS::ExactlyOnce).await;
    let mut times: HashMap<u64, usize> = HashMap::new();
    for n in &got {
        *times.entry(*n).or_default() += 1;
    }
    let lost: Vec<_> = acked.iter().filter(|n| !times.contains_key(n)).collect();
    assert!(
        lost.is_empty(),
        "{} messages with a PUBREC lost: {lost:?}",
        lost.len()
    );
    let twice: Vec<_> = times.iter().filter(|(_, t)| **t > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let invented: Vec<_> = times.keys().filter(|n| !sent.contains(n)).collect();
    assert!(invented.is_empty(), "never published: {invented:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_the_subscriber_never_acknowledged_is_resent_after_kill_9() {
    let store = store_dir("inflight").join("store.redb");
    let mut running = start(&store);
    // Online, persistent, and never acknowledging.
    let mut o = options("sub", &running, false);
    o.set_manual_acks(true);
    let (sub, sub_events) = AsyncClient::new(o, 100);
    sub.subscribe("i/#", QoS::AtLeastOnce).await.unwrap();
    let (publisher, pub_events) = AsyncClient::new(options("pub", &running, true), 100);
    // rumqttc's poll is not cancel-safe: each event loop runs in its own task.
    let mut sub_events = forward(sub_events);
    let mut pub_events = forward(pub_events);
    let mut acked = false;
    let mut got = None;
    let mut published = false;
    while !(acked && got.is_some()) {
        tokio::select! {
            Some(e) = sub_events.recv() => match e {
                Packet::SubAck(_) if !published => {
                    publisher.publish("i/x", QoS::AtLeastOnce, false, "unacked").await.unwrap();
                    published = true;
                }
                Packet::Publish(p) => got = Some(p),
                _ => {}
            },
            Some(e) = pub_events.recv() => {
                if let Packet::PubAck(_) = e {
                    acked = true;
                }
            }
            _ = tokio::time::sleep(PATIENCE) => panic!("no delivery and PUBACK"),
        }
    }
    let first = got.unwrap();
    assert!(!first.dup);
    kill_9(&mut running);
    drop((sub, sub_events, publisher, pub_events));

    let mut running = start(&store);
    let (_sub, mut events) = AsyncClient::new(options("sub", &running, false), 100);
    let again = loop {
        match tokio::time::timeout(PATIENCE, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => break p,
            Ok(Ok(_)) => {}
            other => panic!("no resend: {other:?}"),
        }
    };
    assert_eq!(&again.payload[..], b"unacked");
    assert!(again.dup, "resent as a duplicate");
    assert_eq!(
        again.pkid, first.pkid,
        "with the packet id it was sent with"
    );
    // Acknowledged now: not sent a third time after another kill.
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill_9(&mut running);
    let running = start(&store);
    let (_sub, mut events) = AsyncClient::new(options("sub", &running, false), 100);
    loop {
        match tokio::time::timeout(Duration::from_secs(2), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => panic!("sent again: {p:?}"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => break,
        }
    }
}

/// Runs an event loop in a task, forwarding incoming packets until it fails.
fn forward(mut events: rumqttc::EventLoop) -> tokio::sync::mpsc::UnboundedReceiver<Packet> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(packet) = event {
                if tx.send(packet).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_retained_message_survives_kill_9() {
    let store = store_dir("retained").join("store.redb");
    let (mut sent, mut acked) = (BTreeSet::new(), BTreeSet::new());
    let mut first = 0;
    for round in 0..4 {
        let mut running = start(&store);
        let after = kill_after(round + 100);
        let (s, a) =
            publish_until_killed_to(&mut running, first, QoS::AtLeastOnce, after, true).await;
        first = s.last().map_or(first, |n| n + 1);
        sent.extend(s);
        acked.extend(a);
    }
    assert!(
        acked.len() > 100,
        "too little acknowledged: {}",
        acked.len()
    );
    let running = start(&store);
    let (client, events) = AsyncClient::new(options("reader", &running, true), 1000);
    client.subscribe("r/#", QoS::AtLeastOnce).await.unwrap();
    let mut events = forward(events);
    let mut kept = BTreeSet::new();
    while let Ok(Some(packet)) = tokio::time::timeout(Duration::from_secs(3), events.recv()).await {
        if let Packet::Publish(p) = packet {
            assert!(p.retain, "sent as retained");
            let n: u64 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
            assert_eq!(p.topic, format!("r/{n}"));
            kept.insert(n);
        }
    }
    assert_accounted(&sent, &acked, &kept, "acknowledged retained messages");
}
