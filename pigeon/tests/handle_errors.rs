//! The typed errors of a running broker's handle, as an embedding application sees them.

use pigeon::{
    broker::PublishError,
    codec::{Publish, QoS},
    hooks::Hooks,
    Broker, Config,
};

#[tokio::test]
async fn publish_refuses_an_invalid_topic_and_a_closed_broker() {
    let config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        ..Config::default()
    };
    let broker = Broker::start(config, Hooks::none()).await.expect("starts");
    let ok = Publish::new("a/b", QoS::AtMostOnce, "x");
    assert_eq!(broker.publish(ok.clone()).await, Ok(()));
    let wild = Publish::new("a/#", QoS::AtMostOnce, "x");
    assert_eq!(
        broker.publish(wild).await,
        Err(PublishError::InvalidTopic("a/#".into()))
    );
    broker.close().await;
    let err = broker.publish(ok).await.unwrap_err();
    assert_eq!(err, PublishError::Closed);
    assert_eq!(err.to_string(), "the broker is closed");
}

#[pigeon::module(port = 0, providers = [])]
struct EmptyModule;

#[tokio::test]
async fn bootstrap_reports_why_the_broker_could_not_start_with_its_source() {
    use std::error::Error;

    use pigeon::{broker::StartError, BootstrapError, Pigeon};
    let err = Pigeon::bootstrap_with::<EmptyModule>(|c| c.max_inflight = 0)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, BootstrapError::Start(StartError::InvalidOption(_))),
        "{err:?}"
    );
    let message = "invalid value for --max-inflight / max_inflight: 0 (must be at least 1)";
    assert_eq!(
        err.to_string(),
        format!("the broker could not start: {message}")
    );
    assert_eq!(err.source().map(|s| s.to_string()), Some(message.into()));
}
