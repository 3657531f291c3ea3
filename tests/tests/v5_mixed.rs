//! MQTT 5.0 with a third-party client (rumqttc v5) and a 3.1.1 one on the same
//! broker: request/response (response topic, correlation data), user
//! properties in order with duplicates, payload format indicator and content
//! type passed through unchanged; 3.1.1 clients get the same messages without
//! properties and their messages reach v5 clients without any.

use std::time::Duration;

use bytes::Bytes;
use pigeon_tests::{start, Mqtt, WAIT};
use rumqttc::v5::{
    mqttbytes::{
        v5::{Packet, Publish, PublishProperties},
        QoS,
    },
    AsyncClient, Event, EventLoop, MqttOptions,
};
use tokio::sync::mpsc;

/// A connected rumqttc v5 client whose incoming PUBLISHes arrive on a channel.
async fn v5_client(
    addr: std::net::SocketAddr,
    id: &str,
    filter: &str,
) -> (AsyncClient, mpsc::UnboundedReceiver<Publish>) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    wait_for(&mut eventloop, |p| matches!(p, Packet::SubAck(_))).await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                let _ = tx.send(p);
            }
        }
    });
    (client, rx)
}

async fn wait_for(eventloop: &mut EventLoop, done: impl Fn(&Packet) -> bool) {
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) if done(&p) => return,
                Ok(_) => {}
                Err(e) => panic!("v5 client failed: {e}"),
            }
        }
    })
    .await
    .expect("in time")
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Publish>) -> Publish {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("client running")
}

#[tokio::test]
async fn v5_mixed_request_response_and_properties_with_a_v311_bystander() {
    let broker = start().await;
    let addr = broker.local_addr();
    let (responder, mut requests) = v5_client(addr, "rr-responder", "svc/echo").await;
    let (requester, mut replies) = v5_client(addr, "rr-requester", "svc/replies/#").await;
    let mut v3 = Mqtt::connect(addr, "rr-v3").await;
    v3.subscribe("svc/#", rumqttc::QoS::AtLeastOnce).await;

    let user = vec![
        ("trace".to_owned(), "1".to_owned()),
        ("z".to_owned(), "last?".to_owned()),
        ("trace".to_owned(), "2".to_owned()),
    ];
    let request = PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("svc/replies/rr-requester".into()),
        correlation_data: Some(Bytes::from_static(b"\x00\x01req-7")),
        user_properties: user.clone(),
        ..Default::default()
    };
    requester
        .publish_with_properties("svc/echo", QoS::AtLeastOnce, false, "{\"n\":1}", request)
        .await
        .unwrap();

    let got = recv(&mut requests).await;
    let props = got.properties.clone().expect("properties forwarded");
    assert_eq!(props.payload_format_indicator, Some(1));
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(props.user_properties, user, "order and duplicates kept");
    let reply_to = props.response_topic.expect("response topic");
    let correlation = props.correlation_data.expect("correlation data");
    assert_eq!(&correlation[..], b"\x00\x01req-7");

    // The responder answers where it was told, with the correlation data.
    let answer = PublishProperties {
        correlation_data: Some(correlation.clone()),
        ..Default::default()
    };
    responder
        .publish_with_properties(reply_to, QoS::AtLeastOnce, false, "{\"n\":2}", answer)
        .await
        .unwrap();
    let reply = recv(&mut replies).await;
    assert_eq!(&reply.payload[..], b"{\"n\":2}");
    let reply_props = reply.properties.expect("reply properties");
    assert_eq!(reply_props.correlation_data, Some(correlation));

    // The 3.1.1 bystander saw both, as plain messages.
    let mut topics = vec![v3.recv().await.topic, v3.recv().await.topic];
    topics.sort();
    assert_eq!(topics, ["svc/echo", "svc/replies/rr-requester"]);

    // 3.1.1 -> 5.0: no properties appear.
    v3.publish("svc/echo", rumqttc::QoS::AtLeastOnce, false, "from3")
        .await;
    let got = recv(&mut requests).await;
    assert_eq!(&got.payload[..], b"from3");
    let empty = got.properties.unwrap_or_default();
    assert_eq!(empty.user_properties, vec![]);
    assert_eq!(empty.response_topic, None);
    assert_eq!(empty.content_type, None);
    broker.close().await;
}
