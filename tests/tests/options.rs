//! Options the engine cannot run with stop `Broker::start` with a message
//! naming them; the seed's `concurrency` bounds deliveries without losing any.

use pigeon_tests::{config, start_with, Mqtt};
use rumqttc::QoS;

#[tokio::test]
async fn unusable_options_fail_startup_naming_the_option() {
    for (config, name) in [
        (
            pigeon::Config {
                concurrency: 0,
                ..config()
            },
            "concurrency",
        ),
        (
            pigeon::Config {
                max_inflight: 0,
                ..config()
            },
            "max_inflight",
        ),
        (
            pigeon::Config {
                receive_maximum: 0,
                ..config()
            },
            "receive_maximum",
        ),
    ] {
        let error = pigeon::Broker::start(config, pigeon::hooks::Hooks::none())
            .await
            .err()
            .expect("startup fails");
        assert!(error.to_string().contains(name), "{error}");
    }
}

#[tokio::test]
async fn concurrency_of_one_still_delivers_everything() {
    let broker = start_with(pigeon::Config {
        concurrency: 1,
        ..config()
    })
    .await;
    let addr = broker.local_addr();
    let mut sub = Mqtt::connect(addr, "sub").await;
    sub.subscribe("c/#", QoS::AtLeastOnce).await;
    let publishers: Vec<_> = publish_from_four_clients(addr).await;
    let mut n = 0;
    while n < 4 * 50 {
        sub.recv().await;
        n += 1;
    }
    for p in publishers {
        p.disconnect().await;
    }
    assert_eq!(broker.stats().messages_dropped, 0);
    broker.close().await;
}

async fn publish_from_four_clients(addr: std::net::SocketAddr) -> Vec<Mqtt> {
    let mut publishers = Vec::new();
    for i in 0..4 {
        let p = Mqtt::connect(addr, &format!("p{i}")).await;
        for m in 0..50 {
            p.publish(&format!("c/{i}"), QoS::AtLeastOnce, false, format!("{m}"))
                .await;
        }
        publishers.push(p);
    }
    publishers
}
