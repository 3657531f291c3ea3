//! `#[module(listen = [...])]`: a module binds several listeners, and a bad URL
//! stops bootstrap naming it.

use std::time::Duration;

use pigeon::{hooks::ListenerKind, prelude::*};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS as Q};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[module(listen = ["mqtt://127.0.0.1:0", "ws://127.0.0.1:0/mqtt"], providers = [])]
struct TwoListeners;

#[module(listen = ["mqtt://127.0.0.1:99999"], providers = [])]
struct BadPort;

#[tokio::test]
async fn a_module_listens_on_every_url_it_lists() {
    let app = pigeon::testing::start::<TwoListeners>()
        .await
        .expect("boots");
    let broker = app.broker();
    let kinds: Vec<ListenerKind> = broker.listeners().iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [ListenerKind::Tcp, ListenerKind::Ws]);

    // MQTT over the TCP listener.
    let tcp = broker.addr_of(ListenerKind::Tcp).expect("tcp listener");
    let mut opts = MqttOptions::new("listen-test", tcp.ip().to_string(), tcp.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 10);
    client.subscribe("echo", Q::AtLeastOnce).await.unwrap();
    client
        .publish("echo", Q::AtLeastOnce, false, "over tcp")
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = events.poll().await {
                return p.payload;
            }
        }
    })
    .await
    .expect("the message comes back");
    assert_eq!(&got[..], b"over tcp");

    // The WebSocket listener answers HTTP: a request without an upgrade is refused.
    let ws = broker.addr_of(ListenerKind::Ws).expect("ws listener");
    let mut http = tokio::net::TcpStream::connect(ws).await.unwrap();
    http.write_all(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), http.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    app.close().await;
}

#[tokio::test]
async fn a_bad_listen_url_stops_bootstrap_naming_it() {
    let err = pigeon::testing::start::<BadPort>()
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("listen") && text.contains("mqtt://127.0.0.1:99999"),
        "{text}"
    );
}
