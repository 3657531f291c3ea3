//! `rediss://`: the Redis store and emitter over TLS. The server's
//! certificate is checked against the system's roots; `SSL_CERT_FILE` names
//! a private CA instead. One test in its own binary: it sets that variable
//! for the whole process.

use std::time::Duration;

use pigeon::config::{EmitterKind, Store};
use pigeon::Config;
use pigeon_tests::{config, pki::Pki, redis::RedisServer, start_with, Mqtt};
use rumqttc::QoS;

fn node(url: &str, id: &str) -> Config {
    Config {
        persistence: Store::Redis(url.to_owned()),
        emitter: EmitterKind::Redis(url.to_owned()),
        node_id: Some(id.to_owned()),
        shutdown_timeout: Duration::from_secs(2),
        ..config()
    }
}

#[tokio::test]
async fn nodes_on_redis_over_tls_share_messages_and_retained_ones_and_check_its_certificate() {
    let pki = Pki::generate("redis-tls");
    let redis = RedisServer::start_tls(&pki.ca, &pki.server_cert, &pki.server_key);
    let url = redis.tls_url();

    // A CA nobody trusts: startup fails, naming the option and why.
    let refused = pigeon::Broker::start(node(&url, "n0"), pigeon::hooks::Hooks::none())
        .await
        .err()
        .expect("an untrusted certificate is refused");
    let message = refused.to_string();
    assert!(message.contains("persistence"), "{message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    // Trusted through SSL_CERT_FILE, as OpenSSL-based tools do. Set before
    // any other thread reads the environment (this binary has one test).
    std::env::set_var("SSL_CERT_FILE", &pki.ca);
    let n1 = start_with(node(&url, "n1")).await;
    let n2 = start_with(node(&url, "n2")).await;

    let mut sub = Mqtt::connect(n2.local_addr(), "sub").await;
    sub.subscribe("tls/#", QoS::AtLeastOnce).await;
    let publisher = Mqtt::connect(n1.local_addr(), "pub").await;
    // Until node n1 has learnt n2's interest, a publish stays on n1.
    let mut got = None;
    for _ in 0..50 {
        publisher
            .publish("tls/probe", QoS::AtLeastOnce, false, "hello")
            .await;
        if let Some(p) = sub.recv_within(Duration::from_millis(200)).await {
            got = Some(p);
            break;
        }
    }
    let got = got.expect("a publish on n1 reaches the subscriber on n2 over rediss://");
    assert_eq!(got.topic, "tls/probe");
    assert_eq!(&got.payload[..], b"hello");

    publisher
        .publish("tls/state", QoS::AtLeastOnce, true, "kept")
        .await;
    // The same server, seen on its plain port: the retained message is there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while redis
        .query(&["HEXISTS", "pigeon:retained", "tls/state"])
        .await
        != "1"
    {
        assert!(tokio::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut late = Mqtt::connect(n2.local_addr(), "late").await;
    late.subscribe("tls/state", QoS::AtLeastOnce).await;
    let retained = late
        .recv_within(Duration::from_secs(5))
        .await
        .expect("the retained message, from the shared store");
    assert_eq!(&retained.payload[..], b"kept");
    assert!(retained.retain);
    n1.close().await;
    n2.close().await;
}
