//! The Redis store (`--persistence redis://`, issue #13's state half): nodes
//! on one Redis server share retained messages and sessions, a session moves
//! from a node to another (and is taken from a node that still serves it),
//! survives a restart and a node killed without closing, its keys expire
//! with it, and the store reports Redis going away. Each test runs its own
//! `redis-server` (`pigeon_tests::redis`).

mod v5_common;

use std::time::Duration;

use pigeon::config::EmitterKind;
use pigeon::{
    codec::{Packet, QoS, ReasonCode},
    config::Store,
    persistence::{Persistence, RedisPersistence},
    BrokerHandle, Config,
};
use pigeon_tests::{config, redis::RedisServer, start_with, Mqtt, WAIT};
use v5_common::*;

/// A node `node` on the Redis server at `url`: its store and its emitter
/// (nodes that share a store must share messages; a local emitter beside
/// another node is refused).
fn node(url: &str, node: &str) -> Config {
    Config {
        persistence: Store::Redis(url.to_owned()),
        emitter: EmitterKind::Redis(url.to_owned()),
        node_id: Some(node.to_owned()),
        ..config()
    }
}

/// Polls `check` until it holds (panics after three `WAIT`s: a dead node
/// counts as gone after 6 s).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next PUBLISH, not acknowledged (it stays in flight).
async fn unacked_publish(raw: &mut pigeon_tests::Raw) -> pigeon::codec::Publish {
    loop {
        match tokio::time::timeout(WAIT, raw.recv()).await {
            Ok(Some(Packet::Publish(p))) => return p,
            Ok(Some(_)) => continue,
            other => panic!("no PUBLISH: {other:?}"),
        }
    }
}

fn payload(p: &pigeon::codec::Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}

#[tokio::test]
async fn a_retained_message_published_on_one_node_reaches_a_subscriber_on_another() {
    let redis = RedisServer::start();
    let a = start_with(node(&redis.url(), "a")).await;
    let b = start_with(node(&redis.url(), "b")).await;
    let (mut publisher, _) = connected(a.local_addr(), connect("pub")).await;
    let mut retained = message("status/door", QoS::AtLeastOnce, "open");
    retained.retain = true;
    publish_acked(&mut publisher, retained).await;

    let (mut sub, _) = connected(b.local_addr(), connect("sub")).await;
    subscribe(&mut sub, "status/+", QoS::AtLeastOnce).await;
    let got = next_publish(&mut sub).await;
    assert_eq!(
        (&*got.topic, payload(&got).as_str(), got.retain),
        ("status/door", "open", true)
    );
    // An exact filter too, and a cleared topic is gone for every node.
    let (mut exact, _) = connected(b.local_addr(), connect("exact")).await;
    subscribe(&mut exact, "status/door", QoS::AtMostOnce).await;
    assert_eq!(payload(&next_publish(&mut exact).await), "open");
    let mut clear = message("status/door", QoS::AtLeastOnce, "");
    clear.retain = true;
    publish_acked(&mut publisher, clear).await;
    let (mut late, _) = connected(b.local_addr(), connect("late")).await;
    subscribe(&mut late, "status/#", QoS::AtMostOnce).await;
    assert_no_publish(&mut late, 300).await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_persistent_session_queued_on_one_node_is_resumed_on_another_in_order() {
    let redis = RedisServer::start();
    let a = start_with(node(&redis.url(), "a")).await;
    let b = start_with(node(&redis.url(), "b")).await;

    let mut opts = pigeon_tests::options(a.local_addr(), "mover");
    opts.set_clean_session(false);
    let mut sub = Mqtt::connect_with(opts).await;
    sub.subscribe("q/#", rumqttc::QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let (mut publisher, _) = connected(a.local_addr(), connect("pub-a")).await;
    for i in 0..20 {
        let text: &'static str = Box::leak(format!("m{i}").into_boxed_str());
        publish_acked(&mut publisher, message("q/x", QoS::AtLeastOnce, text)).await;
    }

    let mut opts = pigeon_tests::options(b.local_addr(), "mover");
    opts.set_clean_session(false);
    let mut sub = Mqtt::connect_with(opts).await;
    assert!(sub.connack.session_present, "the session came from node a");
    for i in 0..20 {
        let got = sub.recv().await;
        assert_eq!(String::from_utf8_lossy(&got.payload), format!("m{i}"));
    }
    // Its subscription works on node b, and node a let the session go.
    let (mut publisher_b, _) = connected(b.local_addr(), connect("pub-b")).await;
    publish_acked(
        &mut publisher_b,
        message("q/live", QoS::AtLeastOnce, "live"),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&sub.recv().await.payload), "live");
    eventually("node a forgets the session", async || {
        a.client_info("mover").is_none() && a.stats().subscriptions == 0
    })
    .await;
    assert_eq!(b.stats().subscriptions, 1);
    sub.disconnect().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_client_connecting_to_another_node_takes_its_session_over() {
    let redis = RedisServer::start();
    let a = start_with(node(&redis.url(), "a")).await;
    let b = start_with(node(&redis.url(), "b")).await;
    let mut c = connect("taken");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut first, _) = connected(a.local_addr(), c.clone()).await;
    subscribe(&mut first, "t/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(a.local_addr(), connect("pub")).await;
    publish_acked(
        &mut publisher,
        message("t/1", QoS::AtLeastOnce, "in flight"),
    )
    .await;
    // Received, not acknowledged: in flight when the session moves.
    assert_eq!(payload(&unacked_publish(&mut first).await), "in flight");

    let (mut second, ack) = connected(b.local_addr(), c).await;
    assert!(ack.session_present);
    assert_eq!(disconnected(&mut first).await, ReasonCode::SessionTakenOver);
    let again = next_publish(&mut second).await;
    assert_eq!((payload(&again).as_str(), again.dup), ("in flight", true));
    assert_no_publish(&mut second, 200).await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_node_restarted_on_the_same_redis_keeps_sessions_and_retained_messages() {
    let redis = RedisServer::start();
    let broker = start_with(node(&redis.url(), "n1")).await;
    let mut c = connect("keeper");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(3600);
    let (mut sub, _) = connected(broker.local_addr(), c.clone()).await;
    subscribe(&mut sub, "s/+", QoS::AtLeastOnce).await;
    drop(sub);
    let (mut publisher, _) = connected(broker.local_addr(), connect("p1")).await;
    eventually("the subscriber is offline", async || {
        broker.client_info("keeper").is_some_and(|i| !i.connected)
    })
    .await;
    publish_acked(
        &mut publisher,
        message("s/a", QoS::AtLeastOnce, "while away"),
    )
    .await;
    let mut retained = message("r/t", QoS::AtLeastOnce, "kept");
    retained.retain = true;
    publish_acked(&mut publisher, retained).await;
    broker.close().await;

    let broker: BrokerHandle = start_with(node(&redis.url(), "n1")).await;
    assert_eq!(broker.stats().subscriptions, 1, "the subscription is back");
    let (mut sub, ack) = connected(broker.local_addr(), c).await;
    assert!(ack.session_present);
    assert_eq!(payload(&next_publish(&mut sub).await), "while away");
    subscribe(&mut sub, "r/#", QoS::AtMostOnce).await;
    assert_eq!(payload(&next_publish(&mut sub).await), "kept");
    broker.close().await;
}

/// A node on a runtime of its own, so that it can die as a killed process
/// does: every task stopped at once, nothing closed or flushed.
struct Doomed {
    addr: std::net::SocketAddr,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Doomed {
    fn start(config: Config) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let broker = runtime.block_on(start_with(config));
            addr_tx.send(broker.local_addr()).expect("addr");
            let _ = killed.recv();
            // Like SIGKILL: the tasks are dropped wherever they are.
            std::mem::forget(broker);
            runtime.shutdown_background();
        });
        let addr = addr_rx.recv().expect("the node started");
        Self {
            addr,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    fn kill(&mut self) {
        drop(self.kill.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Doomed {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn a_killed_node_s_session_is_served_by_another_with_no_acknowledged_message_lost() {
    let redis = RedisServer::start();
    let mut a = Doomed::start(node(&redis.url(), "a"));
    let mut c = connect("survivor");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut sub, _) = connected(a.addr, c.clone()).await;
    subscribe(&mut sub, "k/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(a.addr, connect("pub")).await;
    let total = 30;
    for i in 0..total {
        let text: &'static str = Box::leak(format!("k{i}").into_boxed_str());
        publish_acked(&mut publisher, message("k/x", QoS::AtLeastOnce, text)).await;
    }
    // Delivered, never acknowledged: in flight or queued when the node dies.
    let first = unacked_publish(&mut sub).await;
    assert_eq!(payload(&first), "k0");
    a.kill();

    let b = start_with(node(&redis.url(), "b")).await;
    // A client reconnecting at once waits for node a at most HANDOVER_WAIT
    // (it may only be slow); once its alive key has expired, not at all.
    eventually("node a counts as gone", async || {
        redis.query(&["EXISTS", "pigeon:store:alive:{a}"]).await == "0"
    })
    .await;
    let (mut sub, ack) = connected(b.local_addr(), c).await;
    assert!(ack.session_present, "node b found the session in Redis");
    let mut got = Vec::new();
    while got.len() < total {
        got.push(payload(&next_publish(&mut sub).await));
    }
    let expected: Vec<String> = (0..total).map(|i| format!("k{i}")).collect();
    assert_eq!(got, expected, "every acknowledged message, in order");
    assert_no_publish(&mut sub, 300).await;
    b.close().await;
}

#[tokio::test]
async fn a_session_s_keys_expire_with_its_session_expiry() {
    let redis = RedisServer::start();
    let broker = start_with(node(&redis.url(), "a")).await;
    let mut c = connect("ttl");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(120);
    let (mut sub, _) = connected(broker.local_addr(), c).await;
    subscribe(&mut sub, "e/#", QoS::AtLeastOnce).await;
    let subs = "pigeon:session:{ttl}:subs";
    let state = "pigeon:session:{ttl}:state";
    eventually("the subscription is stored", async || {
        redis.query(&["EXISTS", subs]).await == "1"
    })
    .await;
    assert_eq!(
        redis.query(&["PTTL", subs]).await,
        "-1",
        "no TTL while connected"
    );
    sub.send(Packet::Disconnect(pigeon::codec::Disconnect::new(
        ReasonCode::Success,
    )))
    .await;
    let (mut publisher, _) = connected(broker.local_addr(), connect("p")).await;
    eventually("the keys get a TTL", async || {
        redis
            .query(&["PTTL", state])
            .await
            .parse::<i64>()
            .unwrap_or(-1)
            > 0
    })
    .await;
    // A copy queued while offline expires with the session too.
    publish_acked(&mut publisher, message("e/1", QoS::AtLeastOnce, "q")).await;
    let max = (120 + pigeon::persistence::TTL_MARGIN.as_secs() as i64) * 1000;
    for key in [subs, state, "pigeon:session:{ttl}:msgs"] {
        let ttl: i64 = redis.query(&["PTTL", key]).await.parse().unwrap_or(-3);
        assert!(ttl > 100_000 && ttl <= max, "{key}: PTTL {ttl}");
    }
    broker.close().await;
}

#[tokio::test]
async fn the_store_reports_redis_going_away_and_coming_back() {
    let mut redis = RedisServer::start();
    let store = RedisPersistence::connect(&redis.url(), "h")
        .await
        .expect("connects");
    assert!(store.health().is_ok());
    assert!(store.commit().await);
    redis.kill();
    eventually("health is Err while Redis is down", async || {
        store.health().is_err()
    })
    .await;
    let why = store.health().unwrap_err();
    assert!(why.contains("redis"), "{why}");
    redis.restart();
    eventually("health is Ok again", async || store.health().is_ok()).await;
    assert!(store.commit().await);
}

#[tokio::test]
async fn readyz_answers_503_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let broker = start_with(Config {
        http: Some("127.0.0.1:0".parse().unwrap()),
        ..node(&redis.url(), "r")
    })
    .await;
    let url = format!("http://{}/readyz", broker.http_addr().expect("http is on"));
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let status = async |http: &reqwest::Client| {
        let response = http.get(&url).send().await.expect("answered");
        let code = response.status().as_u16();
        (code, response.text().await.unwrap_or_default())
    };
    assert_eq!(status(&http).await.0, 200);
    redis.kill();
    let deadline = tokio::time::Instant::now() + 2 * WAIT;
    let body = loop {
        let (code, body) = status(&http).await;
        if code == 503 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {code}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains("persistence") && body.contains("redis"),
        "{body}"
    );
    redis.restart();
    let deadline = tokio::time::Instant::now() + 2 * WAIT;
    while status(&http).await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.close().await;
}

#[tokio::test]
async fn a_bad_record_in_redis_is_skipped_not_fatal() {
    let redis = RedisServer::start();
    redis
        .query(&["HSET", "pigeon:retained", "bad/topic", "garbage"])
        .await;
    redis
        .query(&["HSET", "pigeon:session:{broken}:subs", "x/#", "garbage"])
        .await;
    redis
        .query(&[
            "HSET",
            "pigeon:session:{broken}:msgs",
            "12",
            "garbage",
            "nokey",
            "x",
        ])
        .await;
    redis
        .query(&["SADD", "pigeon:node:{a}:sessions", "broken"])
        .await;
    let broker = start_with(node(&redis.url(), "a")).await;
    let (mut publisher, _) = connected(broker.local_addr(), connect("pub")).await;
    let mut good = message("good/topic", QoS::AtLeastOnce, "fine");
    good.retain = true;
    publish_acked(&mut publisher, good).await;
    let (mut sub, _) = connected(broker.local_addr(), connect("sub")).await;
    subscribe(&mut sub, "+/topic", QoS::AtMostOnce).await;
    assert_eq!(payload(&next_publish(&mut sub).await), "fine");
    assert_no_publish(&mut sub, 200).await;
    // The session with bad records resumes, without them.
    let mut c = connect("broken");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let (mut broken, _) = connected(broker.local_addr(), c).await;
    assert_no_publish(&mut broken, 200).await;
    broker.close().await;
}

#[tokio::test]
async fn an_unreachable_redis_at_startup_is_an_error_naming_the_option() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let err = pigeon::Broker::start(node(&url, "x"), pigeon::hooks::Hooks::none())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("--persistence") && text.contains(&url),
        "{text}"
    );
}

#[tokio::test]
async fn a_qos1_publisher_is_held_while_redis_is_away_and_acknowledged_once_it_is_back() {
    let mut redis = RedisServer::start();
    let broker = start_with(node(&redis.url(), "a")).await;
    let mut c = connect("waiting");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut sub, _) = connected(broker.local_addr(), c.clone()).await;
    subscribe(&mut sub, "w/#", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(pigeon::codec::Disconnect::new(
        ReasonCode::Success,
    )))
    .await;
    let (mut publisher, _) = connected(broker.local_addr(), connect("pub")).await;
    eventually("the subscriber is offline", async || {
        broker.client_info("waiting").is_some_and(|i| !i.connected)
    })
    .await;

    redis.kill();
    publisher
        .send(Packet::Publish(message("w/1", QoS::AtLeastOnce, "held")))
        .await;
    let early = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            match publisher.recv().await {
                Some(Packet::PubAck(ack)) => return ack,
                Some(_) => continue,
                None => std::future::pending().await,
            }
        }
    })
    .await;
    assert!(
        early.is_err(),
        "acknowledged while Redis was away: {early:?}"
    );

    redis.restart();
    let ack = tokio::time::timeout(2 * WAIT, async {
        loop {
            match publisher.recv().await {
                Some(Packet::PubAck(ack)) => return ack,
                Some(_) => continue,
                None => panic!("publisher closed"),
            }
        }
    })
    .await
    .expect("PUBACK once Redis is back");
    assert_eq!(ack.reason_code, ReasonCode::Success);
    // The copy reached the (restarted, empty) Redis: the subscriber gets it.
    let (mut sub, _) = connected(broker.local_addr(), c).await;
    assert_eq!(payload(&next_publish(&mut sub).await), "held");
    broker.close().await;
}

#[tokio::test]
async fn the_offline_sessions_of_a_killed_node_are_adopted_and_keep_receiving() {
    let redis = RedisServer::start();
    let mut a = Doomed::start(node(&redis.url(), "a"));
    let mut c = connect("orphan");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut sub, _) = connected(a.addr, c.clone()).await;
    subscribe(&mut sub, "o/#", QoS::AtLeastOnce).await;
    sub.send(Packet::Disconnect(pigeon::codec::Disconnect::new(
        ReasonCode::Success,
    )))
    .await;
    let (mut publisher, _) = connected(a.addr, connect("pub-a")).await;
    publish_acked(&mut publisher, message("o/1", QoS::AtLeastOnce, "before")).await;
    a.kill();

    // Node b finds node a gone and takes its sessions: the subscription is
    // live on b before the client comes back.
    let b = start_with(node(&redis.url(), "b")).await;
    eventually("node b adopts the session", async || {
        b.stats().subscriptions == 1
    })
    .await;
    let (mut publisher, _) = connected(b.local_addr(), connect("pub-b")).await;
    publish_acked(&mut publisher, message("o/2", QoS::AtLeastOnce, "after")).await;
    let (mut sub, ack) = connected(b.local_addr(), c).await;
    assert!(ack.session_present);
    assert_eq!(payload(&next_publish(&mut sub).await), "before");
    assert_eq!(payload(&next_publish(&mut sub).await), "after");
    assert_eq!(
        redis.query(&["GET", "pigeon:session:{orphan}:node"]).await,
        "b"
    );
    b.close().await;
}

#[tokio::test]
async fn after_a_redis_restart_the_nodes_reconnect_and_still_hand_sessions_over() {
    let mut redis = RedisServer::start();
    let a = start_with(node(&redis.url(), "a")).await;
    let b = start_with(node(&redis.url(), "b")).await;
    redis.kill();
    redis.restart();
    // Both nodes are back (their alive keys rewritten) before the client moves.
    eventually("both nodes alive again", async || {
        redis.query(&["EXISTS", "pigeon:store:alive:{a}"]).await == "1"
            && redis.query(&["EXISTS", "pigeon:store:alive:{b}"]).await == "1"
    })
    .await;
    let mut c = connect("roamer");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut first, _) = connected(a.local_addr(), c.clone()).await;
    subscribe(&mut first, "z/#", QoS::AtLeastOnce).await;
    let started = tokio::time::Instant::now();
    let (mut second, ack) = connected(b.local_addr(), c).await;
    assert!(ack.session_present);
    assert_eq!(disconnected(&mut first).await, ReasonCode::SessionTakenOver);
    assert!(
        started.elapsed() < pigeon::persistence::HANDOVER_WAIT,
        "node a answered the takeover (its pub/sub reconnected)"
    );
    let (mut publisher, _) = connected(b.local_addr(), connect("pub")).await;
    publish_acked(&mut publisher, message("z/1", QoS::AtLeastOnce, "here")).await;
    assert_eq!(payload(&next_publish(&mut second).await), "here");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_local_emitter_beside_other_nodes_on_the_same_redis_is_refused() {
    let redis = RedisServer::start();
    let a = start_with(node(&redis.url(), "a")).await;
    let lonely = Config {
        emitter: EmitterKind::Local,
        ..node(&redis.url(), "b")
    };
    let Err(e) = pigeon::Broker::start(lonely.clone(), pigeon::hooks::Hooks::none()).await else {
        panic!("a node with a local emitter joined a shared store");
    };
    let message = e.to_string();
    assert!(
        message.starts_with("invalid value for --emitter / emitter: local, while nodes a share"),
        "{message}"
    );
    assert!(message.contains("--emitter redis://"), "{message}");
    a.close().await;
    // Alone on its Redis, a local emitter is fine (one node, state in Redis).
    let alone = pigeon::Broker::start(lonely, pigeon::hooks::Hooks::none()).await;
    let alone = alone.expect("a single node may keep its state in Redis");
    alone.close().await;
}

/// A v5 CONNECT for `id` with a QoS 1 will on `topic` (no delay).
fn with_will(id: &str, topic: &str, session_expiry: u32) -> pigeon::codec::Connect {
    let mut c = connect(id);
    c.properties.session_expiry_interval = Some(session_expiry);
    c.will = Some(pigeon::codec::Will {
        topic: topic.into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    c
}

/// Watchers of `will/#`, one on each of `nodes`.
async fn watchers(nodes: &[std::net::SocketAddr]) -> Vec<pigeon_tests::Raw> {
    let mut all = Vec::new();
    for (i, addr) in nodes.iter().enumerate() {
        let (mut w, _) = connected(*addr, connect(&format!("watcher-{i}"))).await;
        subscribe(&mut w, "will/#", QoS::AtLeastOnce).await;
        all.push(w);
    }
    all
}

/// Each watcher gets the will exactly once.
async fn each_gets_one_will(watchers: &mut [pigeon_tests::Raw], topic: &str) {
    for w in watchers.iter_mut() {
        let will = next_publish(w).await;
        assert_eq!((&*will.topic, &will.payload[..]), (topic, &b"gone"[..]));
    }
    for w in watchers.iter_mut() {
        assert_no_publish(w, 700).await;
    }
}

#[tokio::test]
async fn a_will_fires_exactly_once_in_the_cluster_when_its_client_drops() {
    let redis = RedisServer::start();
    let a = start_with(node(&redis.url(), "a")).await;
    let b = start_with(node(&redis.url(), "b")).await;
    let c = start_with(node(&redis.url(), "c")).await;
    let mut watching = watchers(&[b.local_addr(), c.local_addr(), a.local_addr()]).await;
    // The watchers' interest reaches node a before the client drops.
    eventually("node a routes will/# to b and c", async || {
        redis.query(&["SMEMBERS", "pigeon:node:b:filters"]).await == "will/#"
            && redis.query(&["SMEMBERS", "pigeon:node:c:filters"]).await == "will/#"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (dying, _) = connected(a.local_addr(), with_will("dying", "will/dying", 0)).await;
    drop(dying); // the socket closes without DISCONNECT
    each_gets_one_will(&mut watching, "will/dying").await;
    for n in [a, b, c] {
        n.close().await;
    }
}

#[tokio::test]
async fn the_will_of_a_killed_node_s_client_fires_once_from_the_node_that_adopts_it() {
    let redis = RedisServer::start();
    let mut a = Doomed::start(node(&redis.url(), "a"));
    let b = start_with(node(&redis.url(), "b")).await;
    let c = start_with(node(&redis.url(), "c")).await;
    let mut watching = watchers(&[b.local_addr(), c.local_addr()]).await;
    // A persistent session with a will, connected to the node that dies:
    // nobody is left on that node to publish it.
    let (_client, _) = connected(a.addr, with_will("stranded", "will/stranded", 300)).await;
    a.kill();
    // Node a counts as dead once its alive key expires; then one node adopts
    // its sessions and, as at a restart, publishes the will that is due.
    eventually("node a counts as gone", async || {
        redis.query(&["EXISTS", "pigeon:store:alive:{a}"]).await == "0"
    })
    .await;
    each_gets_one_will(&mut watching, "will/stranded").await;
    b.close().await;
    c.close().await;
}

/// `n` leaked payloads `{prefix}0..`: `message` takes `&'static str`.
fn payloads(prefix: &str, n: usize) -> Vec<&'static str> {
    (0..n)
        .map(|i| &*Box::leak(format!("{prefix}{i}").into_boxed_str()))
        .collect()
}

/// Publishes QoS 0 probes on `publisher` until `sub` gets one: the
/// publisher's node routes `topic` to the subscriber's node.
async fn routed(publisher: &mut pigeon_tests::Raw, sub: &mut pigeon_tests::Raw, topic: &str) {
    for _ in 0..100 {
        publisher
            .send(Packet::Publish(message(topic, QoS::AtMostOnce, "probe")))
            .await;
        let got = tokio::time::timeout(Duration::from_millis(100), next_publish(sub)).await;
        if got.is_ok() {
            return;
        }
    }
    panic!("{topic} is never routed to the subscriber's node");
}

/// Publishes each of `texts` at QoS 1 on `publisher`, each acknowledged.
async fn publish_all(publisher: &mut pigeon_tests::Raw, topic: &str, texts: &[&'static str]) {
    for text in texts {
        publish_acked(publisher, message(topic, QoS::AtLeastOnce, text)).await;
    }
}

#[tokio::test]
async fn what_was_sent_to_a_killed_node_reaches_the_sessions_adopted_from_it() {
    let redis = RedisServer::start();
    let mut a = Doomed::start(node(&redis.url(), "a"));
    let b = start_with(node(&redis.url(), "b")).await;
    let mut c = connect("stranded");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut sub, _) = connected(a.addr, c.clone()).await;
    subscribe(&mut sub, "s/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(b.local_addr(), connect("pub-b")).await;
    routed(&mut publisher, &mut sub, "s/probe").await;
    sub.send(Packet::Disconnect(pigeon::codec::Disconnect::new(
        ReasonCode::Success,
    )))
    .await;
    a.kill();

    // Acknowledged while node a is dead but not yet counted gone: they wait
    // in its inbox stream, for a session no node serves yet.
    let stranded = payloads("s", 10);
    publish_all(&mut publisher, "s/x", &stranded).await;
    assert_eq!(redis.query(&["XLEN", "pigeon:stream:a"]).await, "10");
    eventually("node b adopts the session", async || {
        b.stats().subscriptions == 1
    })
    .await;
    eventually("node a's routes are retired", async || {
        redis.query(&["EXISTS", "pigeon:node:a:filters"]).await == "0"
    })
    .await;
    publish_all(&mut publisher, "s/x", &["after"]).await;

    let (mut sub, ack) = connected(b.local_addr(), c).await;
    assert!(ack.session_present);
    let mut got = Vec::new();
    while got.len() < 11 {
        got.push(payload(&next_publish(&mut sub).await));
    }
    assert_no_publish(&mut sub, 300).await;
    let from_a: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "after")
        .collect();
    assert_eq!(
        from_a, stranded,
        "each stranded message once, in order: {got:?}"
    );
    assert!(got.iter().any(|p| p == "after"), "{got:?}");
    // Nothing goes to the dead node's inbox any more.
    publish_all(&mut publisher, "s/x", &["later"]).await;
    assert_eq!(payload(&next_publish(&mut sub).await), "later");
    assert_eq!(redis.query(&["XLEN", "pigeon:stream:a"]).await, "10");
    b.close().await;
}

#[tokio::test]
async fn a_client_back_on_another_node_at_once_gets_what_was_sent_to_the_killed_one() {
    let redis = RedisServer::start();
    let mut a = Doomed::start(node(&redis.url(), "a"));
    let b = start_with(node(&redis.url(), "b")).await;
    let mut c = connect("hasty");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let (mut sub, _) = connected(a.addr, c.clone()).await;
    subscribe(&mut sub, "h/#", QoS::AtLeastOnce).await;
    let (mut publisher, _) = connected(b.local_addr(), connect("pub-b")).await;
    routed(&mut publisher, &mut sub, "h/probe").await;
    a.kill();
    drop(sub);

    let stranded = payloads("h", 10);
    publish_all(&mut publisher, "h/x", &stranded).await;
    // Back before node a counts as gone: the claim waits for it (at most
    // HANDOVER_WAIT), then takes the session and what waited in its inbox.
    let mut sub = pigeon_tests::Raw::tcp(b.local_addr()).await;
    sub.protocol = c.protocol;
    sub.send(Packet::Connect(Box::new(c))).await;
    match sub.recv_within(3 * WAIT).await {
        Some(Packet::ConnAck(ack)) => assert!(ack.session_present, "{ack:?}"),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    let mut got = Vec::new();
    while got.len() < stranded.len() {
        got.push(payload(&next_publish(&mut sub).await));
    }
    assert_eq!(got, stranded, "every acknowledged message, once, in order");
    // Node b also adopts what is left of node a (nothing: the session is
    // here already) and delivers nothing twice.
    eventually("node a's routes are retired", async || {
        redis.query(&["EXISTS", "pigeon:node:a:filters"]).await == "0"
    })
    .await;
    assert_no_publish(&mut sub, 2500).await;
    b.close().await;
}

#[tokio::test]
async fn of_two_connects_racing_on_two_nodes_one_wins_and_the_other_gives_up() {
    let redis = RedisServer::start();
    // Node c holds the session and dies: a claim on node a then waits for
    // it (HANDOVER_WAIT), which leaves a's CONNECT unregistered for seconds.
    let mut c = Doomed::start(node(&redis.url(), "c"));
    let a = start_with(node(&redis.url(), "a")).await;
    let b = start_with(node(&redis.url(), "b")).await;
    let (_on_c, _) = connected(c.addr, connect("twin")).await;
    c.kill();

    let mut on_a = pigeon_tests::Raw::tcp(a.local_addr()).await;
    on_a.protocol = pigeon::codec::Protocol::V5;
    on_a.send(Packet::Connect(Box::new(connect("twin")))).await;
    eventually("node a claims the session", async || {
        redis.query(&["GET", "pigeon:owner:{twin}"]).await == "a"
    })
    .await;
    // The same client id on node b meanwhile: node a's CONNECT is the older.
    let started = tokio::time::Instant::now();
    let (mut on_b, _) = connected(b.local_addr(), connect("twin")).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "node a let the unregistered session go at once: {:?}",
        started.elapsed()
    );
    // Node a's CONNECT gives up once its claim ends: no CONNACK, closed.
    let answer = on_a.recv_within(3 * WAIT).await;
    assert!(
        answer.is_none(),
        "node a served the session too: {answer:?}"
    );
    assert_eq!(redis.query(&["GET", "pigeon:owner:{twin}"]).await, "b");
    on_b.send(Packet::PingReq).await;
    assert!(matches!(on_b.recv().await, Some(Packet::PingResp)));
    assert_eq!(a.stats().clients_connected, 0);
    a.close().await;
    b.close().await;
}
