//! Mosquitto-format ACL file: refused subscriptions get 0x80 in SUBACK, refused
//! publishes are dropped (3.1.1, connection kept), reads are filtered per message.

use pigeon_tests::{config, options, start_with, Mqtt};
use rumqttc::{QoS, SubscribeReasonCode};

const ACL: &str = "\
topic read public/#
user alice
topic readwrite alice/#
topic deny alice/secret
topic read public/#
pattern readwrite clients/%c/#
";

fn user(addr: std::net::SocketAddr, id: &str, name: &str) -> rumqttc::MqttOptions {
    let mut opts = options(addr, id);
    opts.set_credentials(name, "pw");
    opts
}

#[tokio::test]
async fn acl_file_controls_subscribe_publish_and_read() {
    let dir = std::env::temp_dir().join(format!("pigeon-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("acl");
    std::fs::write(&path, ACL).unwrap();
    let broker = start_with(pigeon::Config {
        acl_file: Some(path),
        ..config()
    })
    .await;
    let addr = broker.local_addr();

    let mut alice = Mqtt::connect_with(user(addr, "alice-1", "alice")).await;
    let codes = alice.subscribe("alice/#", QoS::AtLeastOnce).await;
    assert_eq!(codes, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    let codes = alice.subscribe("bob/#", QoS::AtLeastOnce).await;
    assert_eq!(codes, vec![SubscribeReasonCode::Failure]);
    alice
        .subscribe("clients/alice-1/in", QoS::AtLeastOnce)
        .await;

    let mut anon = Mqtt::connect(addr, "anon").await;
    assert_eq!(
        anon.subscribe("alice/#", QoS::AtMostOnce).await,
        vec![SubscribeReasonCode::Failure]
    );
    anon.subscribe("public/#", QoS::AtLeastOnce).await;

    // Anonymous may not write public/ — dropped silently, connection kept.
    anon.publish("public/news", QoS::AtLeastOnce, false, "spam")
        .await;
    // Alice may write alice/x (she reads it back) but alice/secret is not delivered.
    alice
        .publish("alice/secret", QoS::AtLeastOnce, false, "hidden")
        .await;
    alice
        .publish("alice/x", QoS::AtLeastOnce, false, "mine")
        .await;
    assert_eq!(alice.recv().await.payload, "mine");
    // Pattern %c: alice-1 may write its own clients/ topic.
    alice
        .publish("clients/alice-1/in", QoS::AtLeastOnce, false, "self")
        .await;
    assert_eq!(alice.recv().await.payload, "self");
    alice.assert_silent(200).await;
    anon.assert_silent(200).await;

    // The refused publisher is still connected and served.
    let mut writer = Mqtt::connect_with(user(addr, "alice-2", "alice")).await;
    writer.subscribe("public/#", QoS::AtLeastOnce).await;
    anon.publish("public/again", QoS::AtLeastOnce, false, "still dropped")
        .await;
    anon.subscribe("public/ping", QoS::AtLeastOnce).await;
    writer.assert_silent(200).await;
    broker.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_missing_acl_file_stops_startup_naming_the_option() {
    let result = pigeon::Broker::start(
        pigeon::Config {
            acl_file: Some("/nonexistent/pigeon.acl".into()),
            ..config()
        },
        pigeon::hooks::Hooks::none(),
    )
    .await;
    let error = format!("{:#}", result.err().expect("startup fails"));
    assert!(error.contains("acl_file"), "{error}");
}
