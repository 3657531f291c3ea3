//! A cluster on Redis (issue #13, the emitter side): nodes are in-process
//! brokers on `--emitter redis://...` with distinct `--node-id`s, each test on
//! its own `redis-server`; clients are rumqttc.

use std::{collections::HashMap, time::Duration};

use pigeon::{config::EmitterKind, BrokerHandle, Config};
use pigeon_tests::{config, options, redis::RedisServer, Mqtt};
use redis::AsyncCommands;
use rumqttc::{Packet, QoS};

fn node_config(redis: &RedisServer, id: &str) -> Config {
    Config {
        emitter: EmitterKind::Redis(redis.url()),
        node_id: Some(id.into()),
        shutdown_timeout: Duration::from_secs(2),
        ..config()
    }
}

async fn node(redis: &RedisServer, id: &str) -> BrokerHandle {
    pigeon::Broker::start(node_config(redis, id), pigeon::hooks::Hooks::none())
        .await
        .expect("node starts")
}

/// Waits until `node`'s interest in `filter` is (or is no longer) in Redis,
/// then a moment for the route change to reach the other nodes.
async fn wait_interest(redis: &RedisServer, node: &str, filter: &str, held: bool) {
    let mut conn = redis.conn().await;
    let key = format!("pigeon:node:{node}:filters");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let is: bool = conn.sismember(&key, filter).await.expect("SISMEMBER");
        if is == held {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{node}'s interest in {filter} never became {held}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
}

async fn xlen(redis: &RedisServer, node: &str) -> usize {
    let mut conn = redis.conn().await;
    conn.xlen(format!("pigeon:stream:{node}"))
        .await
        .expect("XLEN")
}

/// Waits for the PUBACK (or PUBCOMP) of the next acknowledged publish.
async fn acked(publisher: &mut Mqtt, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match publisher.other_within(left).await {
            Some(Packet::PubAck(_)) | Some(Packet::PubComp(_)) => return true,
            Some(_) => continue,
            None => return false,
        }
    }
}

/// Receives `n` messages (each within `wait`), as (topic, payload).
async fn take(sub: &mut Mqtt, n: usize, wait: Duration) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        match sub.recv_within(wait).await {
            Some(p) => got.push(String::from_utf8_lossy(&p.payload).into_owned()),
            None => panic!("only {} of {n} messages arrived: {got:?}", got.len()),
        }
    }
    got
}

/// Polls `/readyz` until it answers `want` (at most 10 s); the last answer.
async fn ready(url: &str, want: u16) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = match reqwest::get(url).await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        if answer.0 == want || tokio::time::Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_publish_on_any_node_reaches_each_matching_subscriber() {
    let redis = RedisServer::start();
    let nodes = [
        node(&redis, "n1").await,
        node(&redis, "n2").await,
        node(&redis, "n3").await,
    ];
    let filters = ["fan/#", "fan/+", "fan/x"];
    let mut subs = Vec::new();
    for (i, (n, filter)) in nodes.iter().zip(filters).enumerate() {
        let mut sub = Mqtt::connect(n.local_addr(), &format!("sub{i}")).await;
        sub.subscribe(filter, QoS::ExactlyOnce).await;
        subs.push(sub);
    }
    for (i, filter) in filters.iter().enumerate() {
        wait_interest(&redis, &format!("n{}", i + 1), filter, true).await;
    }
    let mut publishers = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        publishers.push(Mqtt::connect(n.local_addr(), &format!("pub{i}")).await);
    }
    const N: usize = 20;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        for (p, publisher) in publishers.iter().enumerate() {
            for i in 0..N {
                publisher
                    .publish("fan/x", qos, false, format!("{p}:{i:03}"))
                    .await;
            }
        }
        for (s, sub) in subs.iter_mut().enumerate() {
            let got = take(sub, 3 * N, Duration::from_secs(10)).await;
            // Per publisher: every message, in order (QoS 1 may repeat one).
            let mut per: HashMap<&str, Vec<&str>> = HashMap::new();
            for m in &got {
                let (p, i) = m.split_once(':').expect("p:i");
                per.entry(p).or_default().push(i);
            }
            for p in 0..3 {
                let seq = per.get(&*p.to_string()).cloned().unwrap_or_default();
                let mut firsts = seq.clone();
                firsts.dedup();
                let expected: Vec<String> = (0..N).map(|i| format!("{i:03}")).collect();
                assert_eq!(
                    firsts, expected,
                    "sub{s} at {qos:?}, publisher {p}: {seq:?}"
                );
            }
            if qos == QoS::ExactlyOnce {
                assert_eq!(got.len(), 3 * N, "exactly once");
                sub.assert_silent(300).await;
            }
        }
    }
    for n in nodes {
        n.close().await;
    }
}

#[tokio::test]
async fn a_publish_without_remote_interest_causes_no_traffic_to_other_nodes() {
    let redis = RedisServer::start();
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    let mut local = Mqtt::connect(n1.local_addr(), "local").await;
    local.subscribe("here/only", QoS::ExactlyOnce).await;
    let mut remote = Mqtt::connect(n2.local_addr(), "remote").await;
    remote.subscribe("there", QoS::AtLeastOnce).await;
    wait_interest(&redis, "n1", "here/only", true).await;
    wait_interest(&redis, "n2", "there", true).await;

    // Listens on both inbox channels, as a node would.
    let client = redis::Client::open(redis.url()).expect("url");
    let mut monitor = client.get_async_pubsub().await.expect("pubsub");
    monitor
        .subscribe("pigeon:inbox:n1")
        .await
        .expect("subscribe");
    monitor
        .subscribe("pigeon:inbox:n2")
        .await
        .expect("subscribe");
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut messages = monitor.into_on_message();
        while let Some(m) = messages.next().await {
            let _ = tx.send(m.get_channel_name().to_owned());
        }
    });

    let mut publisher = Mqtt::connect(n1.local_addr(), "pub").await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        publisher.publish("here/only", qos, false, "x").await;
        if qos != QoS::AtMostOnce {
            assert!(acked(&mut publisher, Duration::from_secs(5)).await);
        }
    }
    take(&mut local, 3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(xlen(&redis, "n2").await, 0, "nothing in n2's stream");
    assert_eq!(xlen(&redis, "n1").await, 0, "nor in the publisher's own");
    assert!(seen.try_recv().is_err(), "no message on any inbox channel");

    // The control: a topic n2 wants goes to its stream (QoS 1) and channel (QoS 0), once.
    publisher
        .publish("there", QoS::AtLeastOnce, false, "1")
        .await;
    assert!(acked(&mut publisher, Duration::from_secs(5)).await);
    assert_eq!(xlen(&redis, "n2").await, 1, "one entry for n2");
    publisher
        .publish("there", QoS::AtMostOnce, false, "0")
        .await;
    let channel = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("a QoS 0 message on n2's channel");
    assert_eq!(channel.as_deref(), Some("pigeon:inbox:n2"));
    assert_eq!(
        take(&mut remote, 2, Duration::from_secs(5)).await,
        ["1", "0"]
    );
    assert_eq!(xlen(&redis, "n1").await, 0);
    n1.close().await;
    n2.close().await;
}

#[tokio::test]
async fn after_an_unsubscribe_nothing_more_goes_to_that_node() {
    let redis = RedisServer::start();
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    let mut sub = Mqtt::connect(n2.local_addr(), "sub").await;
    sub.subscribe("u/t", QoS::AtLeastOnce).await;
    wait_interest(&redis, "n2", "u/t", true).await;
    let mut publisher = Mqtt::connect(n1.local_addr(), "pub").await;
    publisher
        .publish("u/t", QoS::AtLeastOnce, false, "first")
        .await;
    assert!(acked(&mut publisher, Duration::from_secs(5)).await);
    assert_eq!(take(&mut sub, 1, Duration::from_secs(5)).await, ["first"]);
    assert_eq!(xlen(&redis, "n2").await, 1);

    sub.client.unsubscribe("u/t").await.expect("unsubscribe");
    loop {
        if let Packet::UnsubAck(_) = sub.next_other().await {
            break;
        }
    }
    wait_interest(&redis, "n2", "u/t", false).await;
    publisher
        .publish("u/t", QoS::AtLeastOnce, false, "second")
        .await;
    assert!(acked(&mut publisher, Duration::from_secs(5)).await);
    sub.assert_silent(300).await;
    assert_eq!(xlen(&redis, "n2").await, 1, "no new entry in n2's stream");
    n1.close().await;
    n2.close().await;
}

#[tokio::test]
async fn a_shared_subscription_across_nodes_gets_each_message_once() {
    let redis = RedisServer::start();
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    let n3 = node(&redis, "n3").await;
    let mut m1 = Mqtt::connect(n1.local_addr(), "m1").await;
    m1.subscribe("$share/g/s/t", QoS::AtLeastOnce).await;
    let mut m2 = Mqtt::connect(n2.local_addr(), "m2").await;
    m2.subscribe("$share/g/s/t", QoS::AtLeastOnce).await;
    let mut plain = Mqtt::connect(n2.local_addr(), "plain").await;
    plain.subscribe("s/#", QoS::AtLeastOnce).await;
    wait_interest(&redis, "n1", "$share/g/s/t", true).await;
    wait_interest(&redis, "n2", "$share/g/s/t", true).await;
    wait_interest(&redis, "n2", "s/#", true).await;

    // From a node without members (n3) and from one with a member (n1).
    let mut from3 = Mqtt::connect(n3.local_addr(), "p3").await;
    let mut from1 = Mqtt::connect(n1.local_addr(), "p1").await;
    const N: usize = 20;
    for i in 0..N {
        from3
            .publish("s/t", QoS::AtLeastOnce, false, format!("3:{i}"))
            .await;
        assert!(acked(&mut from3, Duration::from_secs(5)).await);
        from1
            .publish("s/t", QoS::AtLeastOnce, false, format!("1:{i}"))
            .await;
        assert!(acked(&mut from1, Duration::from_secs(5)).await);
    }
    let mut got = Vec::new();
    let (mut at1, mut at2) = (0, 0);
    while got.len() < 2 * N {
        tokio::select! {
            Some(p) = m1.recv_within(Duration::from_secs(5)) => { at1 += 1; got.push(p.payload.to_vec()) }
            Some(p) = m2.recv_within(Duration::from_secs(5)) => { at2 += 1; got.push(p.payload.to_vec()) }
            else => panic!("only {} of {} shared messages arrived", got.len(), 2 * N),
        }
    }
    m1.assert_silent(300).await;
    m2.assert_silent(100).await;
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 2 * N, "each message once across the group");
    assert!(at1 > 0 && at2 > 0, "both members served: {at1} / {at2}");
    assert_eq!(
        take(&mut plain, 2 * N, Duration::from_secs(5)).await.len(),
        2 * N
    );
    for n in [n1, n2, n3] {
        n.close().await;
    }
}

#[tokio::test]
async fn a_redis_restart_holds_qos1_publishers_and_loses_no_acknowledged_message() {
    let mut redis = RedisServer::start();
    let with_http = Config {
        http: Some(([127, 0, 0, 1], 0).into()),
        ..node_config(&redis, "n1")
    };
    let n1 = pigeon::Broker::start(with_http, pigeon::hooks::Hooks::none())
        .await
        .expect("n1 starts");
    let readyz = format!("http://{}/readyz", n1.http_addr().expect("http"));
    let n2 = node(&redis, "n2").await;
    let mut sub = Mqtt::connect(n2.local_addr(), "sub").await;
    sub.subscribe("r/t", QoS::AtLeastOnce).await;
    wait_interest(&redis, "n2", "r/t", true).await;
    let mut publisher = Mqtt::connect(n1.local_addr(), "pub").await;
    publisher
        .publish("r/t", QoS::AtLeastOnce, false, "before")
        .await;
    assert!(acked(&mut publisher, Duration::from_secs(5)).await);
    assert_eq!(take(&mut sub, 1, Duration::from_secs(5)).await, ["before"]);

    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    publisher
        .publish("r/t", QoS::AtLeastOnce, false, "during")
        .await;
    assert!(
        !acked(&mut publisher, Duration::from_millis(1500)).await,
        "not acknowledged while Redis is away"
    );
    let (status, body) = ready(&readyz, 503).await;
    assert_eq!(status, 503, "/readyz while Redis is away: {body}");
    assert!(body.contains("redis unreachable"), "{body}");
    // QoS 0 for the other node is given up meanwhile, and counted (from
    // another client: this publisher's next message waits behind "during").
    let quick = Mqtt::connect(n1.local_addr(), "quick").await;
    quick.publish("r/t", QoS::AtMostOnce, false, "lost").await;
    let metrics = readyz.replace("/readyz", "/metrics");
    let dropped = r#"pigeon_messages_dropped_total{reason="cluster_unreachable"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = reqwest::get(&metrics)
            .await
            .expect("/metrics")
            .text()
            .await
            .unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.starts_with(dropped))
            .map(str::to_owned);
        let n: u64 = line
            .as_deref()
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if n >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never counted: {line:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.restart();
    assert!(
        acked(&mut publisher, Duration::from_secs(15)).await,
        "acknowledged once Redis is back"
    );
    publisher
        .publish("r/t", QoS::AtLeastOnce, false, "after")
        .await;
    assert!(acked(&mut publisher, Duration::from_secs(10)).await);
    let mut got = take(&mut sub, 2, Duration::from_secs(15)).await;
    got.dedup();
    assert_eq!(
        got,
        ["during", "after"],
        "every acknowledged message delivered"
    );
    // The nodes wrote their interest again into the new Redis.
    wait_interest(&redis, "n2", "r/t", true).await;
    let (status, body) = ready(&readyz, 200).await;
    assert_eq!(status, 200, "/readyz once Redis is back: {body}");
    n1.close().await;
    n2.close().await;
}

#[tokio::test]
async fn a_restarted_node_reads_what_was_added_to_its_stream_meanwhile() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("pigeon-cluster-{}", redis.port));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = dir.join("n2.redb");
    let _ = std::fs::remove_file(&store);
    let durable = |redis: &RedisServer| Config {
        persistence: pigeon::config::Store::Redb(store.clone()),
        ..node_config(redis, "n2")
    };
    let n1 = node(&redis, "n1").await;
    let n2 = pigeon::Broker::start(durable(&redis), pigeon::hooks::Hooks::none())
        .await
        .expect("n2 starts");
    let mut opts = options(n2.local_addr(), "keeper");
    opts.set_clean_session(false);
    let mut keeper = Mqtt::connect_with(opts).await;
    keeper.subscribe("k/t", QoS::AtLeastOnce).await;
    wait_interest(&redis, "n2", "k/t", true).await;
    keeper.disconnect().await;
    n2.close().await;
    drop(n2); // releases the store file

    // n2 is down; its persistent session's interest stays.
    let mut publisher = Mqtt::connect(n1.local_addr(), "pub").await;
    for i in 0..5 {
        publisher
            .publish("k/t", QoS::AtLeastOnce, false, format!("m{i}"))
            .await;
        assert!(acked(&mut publisher, Duration::from_secs(5)).await);
    }
    assert_eq!(xlen(&redis, "n2").await, 5, "waiting in n2's stream");

    // Same node id again (the old instance released it on close).
    let n2 = pigeon::Broker::start(durable(&redis), pigeon::hooks::Hooks::none())
        .await
        .expect("n2 starts again");
    let mut conn = redis.conn().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let info: redis::streams::StreamInfoGroupsReply = conn
            .xinfo_groups("pigeon:stream:n2")
            .await
            .expect("XINFO GROUPS");
        let group = info.groups.first().expect("the group");
        if group.pending == 0 && group.last_delivered_id != "0-0" && group.lag == Some(0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "n2 never consumed its stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut opts = options(n2.local_addr(), "keeper");
    opts.set_clean_session(false);
    let mut keeper = Mqtt::connect_with(opts).await;
    let got = take(&mut keeper, 5, Duration::from_secs(5)).await;
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
    // The restored session's interest was written again at the restart.
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_interest(&redis, "n2", "k/t", true).await;
    publisher
        .publish("k/t", QoS::AtLeastOnce, false, "m5")
        .await;
    assert!(acked(&mut publisher, Duration::from_secs(5)).await);
    assert_eq!(take(&mut keeper, 1, Duration::from_secs(5)).await, ["m5"]);
    n1.close().await;
    n2.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_node_restarted_without_its_sessions_withdraws_their_interest() {
    let redis = RedisServer::start();
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    let mut opts = options(n2.local_addr(), "gone");
    opts.set_clean_session(false);
    let mut sub = Mqtt::connect_with(opts).await;
    sub.subscribe("g/t", QoS::AtLeastOnce).await;
    wait_interest(&redis, "n2", "g/t", true).await;
    sub.disconnect().await;
    n2.close().await;
    drop(n2);
    // The memory store lost the session: the new instance holds no interest...
    let n2 = node(&redis, "n2").await;
    wait_interest(&redis, "n2", "g/t", false).await;
    // ...and n1 sends it nothing more.
    let before = xlen(&redis, "n2").await;
    let mut publisher = Mqtt::connect(n1.local_addr(), "pub").await;
    publisher.publish("g/t", QoS::AtLeastOnce, false, "x").await;
    assert!(acked(&mut publisher, Duration::from_secs(5)).await);
    assert_eq!(xlen(&redis, "n2").await, before);
    n1.close().await;
    n2.close().await;
}

#[tokio::test]
async fn a_cluster_of_another_format_version_is_refused() {
    let redis = RedisServer::start();
    let mut conn = redis.conn().await;
    conn.set::<_, _, ()>("pigeon:format", "99")
        .await
        .expect("SET");
    let Err(e) =
        pigeon::Broker::start(node_config(&redis, "n1"), pigeon::hooks::Hooks::none()).await
    else {
        panic!("joined a cluster of another format");
    };
    let text = e.to_string();
    assert!(
        text.contains("--emitter") && text.contains("\"99\""),
        "{text}"
    );
}

#[tokio::test]
async fn a_second_node_with_the_same_id_is_refused_naming_node_id() {
    let redis = RedisServer::start();
    let n1 = node(&redis, "twin").await;
    let second =
        pigeon::Broker::start(node_config(&redis, "twin"), pigeon::hooks::Hooks::none()).await;
    let Err(e) = second else {
        panic!("the second node started");
    };
    assert!(e.to_string().contains("--node-id"), "{e}");
    n1.close().await;
}

#[tokio::test]
async fn an_unreachable_redis_at_start_is_an_error_naming_emitter() {
    let port = pigeon_tests::redis::free_port();
    let config = Config {
        emitter: EmitterKind::Redis(format!("redis://127.0.0.1:{port}")),
        ..config()
    };
    let started = std::time::Instant::now();
    let Err(e) = pigeon::Broker::start(config, pigeon::hooks::Hooks::none()).await else {
        panic!("started without Redis");
    };
    assert!(e.to_string().contains("--emitter"), "{e}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "retried a few seconds"
    );
}

/// A burst of QoS 0 messages to another node, far faster than one Redis
/// round trip each: the publisher is slowed (the emitter's backlog to Redis
/// is bounded) and nothing is dropped, as with a local subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos0_burst_to_another_node_is_slowed_not_dropped() {
    use pigeon::codec::{Packet as Raw5, Protocol, Publish, QoS as Q, Subscribe, SubscribeFilter};
    let redis = RedisServer::start();
    let a = node(&redis, "burst-a").await;
    let b = node(&redis, "burst-b").await;
    let (mut sub, _) = pigeon_tests::Raw::connect(
        b.local_addr(),
        pigeon::codec::Connect::new(Protocol::V3_1_1, "burst-sub"),
    )
    .await;
    sub.send(Raw5::Subscribe(Subscribe::new(
        1,
        vec![SubscribeFilter::new("burst/#", Q::AtMostOnce)],
    )))
    .await;
    assert!(matches!(sub.recv().await, Some(Raw5::SubAck(_))));
    wait_interest(&redis, "burst-b", "burst/#", true).await;
    let (mut publisher, _) = pigeon_tests::Raw::connect(
        a.local_addr(),
        pigeon::codec::Connect::new(Protocol::V3_1_1, "burst-pub"),
    )
    .await;
    const TOTAL: usize = 30_000;
    let send = tokio::spawn(async move {
        for i in 0..TOTAL {
            let p = Publish::new("burst/x", Q::AtMostOnce, format!("{i}"));
            publisher.send(Raw5::Publish(p)).await;
        }
        publisher
    });
    let mut got = 0;
    while got < TOTAL {
        match tokio::time::timeout(Duration::from_secs(10), sub.recv()).await {
            Ok(Some(Raw5::Publish(p))) => {
                assert_eq!(
                    &p.payload[..],
                    got.to_string().as_bytes(),
                    "in order, none missing"
                );
                got += 1;
            }
            Ok(Some(_)) => {}
            other => panic!("after {got} of {TOTAL}: {other:?}"),
        }
    }
    let _publisher = send.await.expect("publisher");
    a.close().await;
    b.close().await;
}
