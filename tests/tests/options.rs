//! Options the engine cannot run with stop `Broker::start` with a message
//! naming them; the seed's `concurrency` bounds deliveries without losing any;
//! `shutdown_timeout` bounds how long closing waits for a connection.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use pigeon::prelude::*;
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

/// Set once a PUBLISH to `hang` is inside the handler that never returns.
static HANGING: AtomicBool = AtomicBool::new(false);

#[injectable]
struct Hang;

#[handlers]
impl Hang {
    #[on_authorize_publish]
    async fn hang(&self, packet: &mut Publish) -> Result<(), Denied> {
        if packet.topic == "hang" {
            HANGING.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[module(shutdown_timeout = 300, providers = [Hang])]
struct HangModule;

#[tokio::test]
async fn close_waits_for_a_stuck_connection_at_most_shutdown_timeout() {
    let app = pigeon::testing::start::<HangModule>()
        .await
        .expect("starts");
    let stuck = Mqtt::connect(app.local_addr(), "stuck").await;
    stuck.publish("hang", QoS::AtLeastOnce, false, "x").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !HANGING.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the handler never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Its connection's task is inside the handler and never ends by itself.
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.close())
        .await
        .expect("close returns despite the stuck connection");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "closing took {took:?}"
    );
    assert!(
        tokio::net::TcpStream::connect(app.local_addr())
            .await
            .is_err(),
        "no longer accepting"
    );
}
