//! The `rpc` example, started in-process on an ephemeral port and called by
//! third-party requesters: rumqttc v5 with Response Topic and Correlation
//! Data, and rumqttc 3.1.1 with the JSON envelope.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::{
    mqttbytes::{
        v5::{Packet as P5, Publish as Publish5, PublishProperties},
        QoS as Q5,
    },
    AsyncClient as Client5, Event as Ev5, MqttOptions as Options5,
};
use serde_json::{json, Value};
use tokio::{sync::mpsc, time::timeout};

#[allow(dead_code)]
#[path = "../examples/rpc.rs"]
mod rpc;

const WAIT: Duration = Duration::from_secs(5);

/// A v5 client subscribed to `replies`, its incoming PUBLISHes on a channel.
async fn requester5(
    port: u16,
    id: &str,
    replies: &str,
) -> (Client5, mpsc::UnboundedReceiver<Publish5>) {
    let (client, mut events) = Client5::new(Options5::new(id, "127.0.0.1", port), 16);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed, suback) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            match event {
                Ev5::Incoming(P5::Publish(p)) => drop(tx.send(p)),
                Ev5::Incoming(P5::SubAck(_)) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                _ => {}
            }
        }
    });
    client.subscribe(replies, Q5::AtLeastOnce).await.unwrap();
    timeout(WAIT, suback)
        .await
        .expect("SUBACK within 5 s")
        .unwrap();
    (client, rx)
}

async fn answer(rx: &mut mpsc::UnboundedReceiver<Publish5>) -> Publish5 {
    timeout(WAIT, rx.recv())
        .await
        .expect("an answer within 5 s")
        .expect("the requester is still running")
}

fn request(correlation: &'static [u8]) -> PublishProperties {
    PublishProperties {
        response_topic: Some("replies/v5".into()),
        correlation_data: Some(Bytes::from_static(correlation)),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_v5_requester_registers_and_looks_up_devices() {
    let app = pigeon::testing::start::<rpc::AppModule>().await.unwrap();
    let (client, mut rx) = requester5(app.local_addr().port(), "installer", "replies/v5").await;

    client
        .publish_with_properties(
            "rpc/devices/register",
            Q5::AtLeastOnce,
            false,
            r#"{"id":"th-1","model":"thermo"}"#,
            request(b"req-1"),
        )
        .await
        .unwrap();
    let registered = answer(&mut rx).await;
    assert_eq!(&registered.topic[..], b"replies/v5");
    let props = registered.properties.expect("the answer has properties");
    assert_eq!(props.correlation_data.as_deref(), Some(&b"req-1"[..]));
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert!(
        props.user_properties.is_empty(),
        "{:?}",
        props.user_properties
    );
    let device: Value = serde_json::from_slice(&registered.payload).unwrap();
    assert_eq!(
        device,
        json!({"id": "th-1", "model": "thermo", "registered_by": "installer"})
    );

    client
        .publish_with_properties(
            "rpc/devices/th-1/get",
            Q5::AtLeastOnce,
            false,
            "",
            request(b"req-2"),
        )
        .await
        .unwrap();
    let found = answer(&mut rx).await;
    let props = found.properties.expect("the answer has properties");
    assert_eq!(props.correlation_data.as_deref(), Some(&b"req-2"[..]));
    assert_eq!(
        serde_json::from_slice::<Value>(&found.payload).unwrap(),
        device
    );

    // Registering the id again is the registry's typed error.
    client
        .publish_with_properties(
            "rpc/devices/register",
            Q5::AtLeastOnce,
            false,
            r#"{"id":"th-1","model":"other"}"#,
            request(b"req-3"),
        )
        .await
        .unwrap();
    let refused = answer(&mut rx).await;
    let props = refused.properties.expect("the answer has properties");
    assert_eq!(props.correlation_data.as_deref(), Some(&b"req-3"[..]));
    assert_eq!(
        props.user_properties,
        [(
            "error".to_owned(),
            "device th-1 is already registered".to_owned()
        )]
    );
    assert_eq!(&refused.payload[..], b"device th-1 is already registered");
    app.close().await;
}

async fn next4(rx: &mut mpsc::UnboundedReceiver<rumqttc::Packet>) -> rumqttc::Packet {
    timeout(WAIT, rx.recv())
        .await
        .expect("a packet within 5 s")
        .expect("the requester is still running")
}

async fn publish4(rx: &mut mpsc::UnboundedReceiver<rumqttc::Packet>) -> rumqttc::Publish {
    loop {
        if let rumqttc::Packet::Publish(p) = next4(rx).await {
            return p;
        }
    }
}

#[tokio::test]
async fn a_v311_requester_calls_through_the_json_envelope() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let app = pigeon::testing::start::<rpc::AppModule>().await.unwrap();
    let port = app.local_addr().port();
    let (client, mut events) = AsyncClient::new(MqttOptions::new("legacy", "127.0.0.1", port), 16);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(packet) = event {
                let _ = tx.send(packet);
            }
        }
    });
    client
        .subscribe("replies/legacy", QoS::AtLeastOnce)
        .await
        .unwrap();
    while !matches!(next4(&mut rx).await, Packet::SubAck(_)) {}

    let envelope = json!({
        "response_topic": "replies/legacy",
        "correlation_data": 1,
        "payload": {"id": "hu-9", "model": "hygro"},
    });
    client
        .publish(
            "rpc/devices/register",
            QoS::AtLeastOnce,
            false,
            envelope.to_string(),
        )
        .await
        .unwrap();
    let registered = publish4(&mut rx).await;
    assert_eq!(registered.topic, "replies/legacy");
    assert_eq!(
        serde_json::from_slice::<Value>(&registered.payload).unwrap(),
        json!({
            "correlation_data": 1,
            "payload": {"id": "hu-9", "model": "hygro", "registered_by": "legacy"},
        })
    );

    let envelope =
        json!({"response_topic": "replies/legacy", "correlation_data": "two", "payload": null});
    client
        .publish(
            "rpc/devices/nope/get",
            QoS::AtLeastOnce,
            false,
            envelope.to_string(),
        )
        .await
        .unwrap();
    let refused = publish4(&mut rx).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&refused.payload).unwrap(),
        json!({"correlation_data": "two", "error": "no device nope"})
    );
    app.close().await;
}

#[tokio::test]
async fn the_registry_announces_its_methods_once_listening() {
    let app = pigeon::testing::Test::module::<rpc::AppModule>()
        .start()
        .await
        .unwrap();
    let late = app.client("late").connect().await.unwrap();
    late.subscribe("services/devices", pigeon::codec::QoS::AtLeastOnce)
        .await
        .unwrap();
    let methods = late.expect_message(WAIT).await;
    assert_eq!(
        methods.json::<Value>(),
        json!({"methods": ["rpc/devices/register", "rpc/devices/:id/get"]})
    );
    app.close().await;
}
