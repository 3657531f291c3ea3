//! WebSocket listeners (`ws://`, `wss://`): MQTT in binary frames with the
//! `mqtt` subprotocol, through tokio-tungstenite and Paho. Refusals are HTTP
//! answers (426 for a plain GET, 404 for another path, 400 without the
//! subprotocol); a text frame or a stalled upgrade closes only its connection.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use pigeon::{
    codec::{Connect, Packet, Protocol, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter},
    config::Listener,
    hooks::{Hooks, ListenerKind},
    BrokerHandle,
};
use pigeon_tests::{pki::Pki, WAIT};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, Message},
    WebSocketStream,
};

const WS: usize = 0;
const WSS: usize = 1;

/// A broker with `ws://127.0.0.1:0/mqtt` and `wss://127.0.0.1:0/mqtt`.
async fn start(pki: &Pki) -> BrokerHandle {
    let config = pigeon::Config {
        listeners: vec![
            Listener::new(ListenerKind::Ws, "127.0.0.1", 0),
            Listener::new(ListenerKind::Wss, "127.0.0.1", 0),
        ],
        cert: Some(pki.server_cert.clone()),
        key: Some(pki.server_key.clone()),
        connect_timeout: Duration::from_millis(600),
        ..pigeon_tests::config()
    };
    pigeon::Broker::start(config, Hooks::none())
        .await
        .expect("broker starts")
}

/// An MQTT client over a WebSocket, one packet per binary message.
struct WsClient<S> {
    ws: WebSocketStream<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsClient<S> {
    async fn open(stream: S, addr: SocketAddr, scheme: &str) -> Self {
        let url = format!("{scheme}://localhost:{}/mqtt", addr.port());
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
        let (ws, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("WebSocket upgrade");
        assert_eq!(response.headers()["Sec-WebSocket-Protocol"], "mqtt");
        WsClient { ws }
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        pigeon_codec::encode(&packet, Protocol::V3_1_1, &mut out).unwrap();
        self.ws.send(Message::binary(out.freeze())).await.unwrap();
    }

    /// The next packet; `None` once the broker closed the WebSocket.
    async fn recv(&mut self) -> Option<Packet> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message or close in time");
            match message {
                Some(Ok(Message::Binary(data))) => {
                    let mut buf = BytesMut::from(&data[..]);
                    return pigeon_codec::decode(&mut buf, Protocol::V3_1_1, usize::MAX)
                        .expect("valid MQTT");
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn connect(&mut self, id: &str) {
        self.send(Packet::Connect(Box::new(Connect::new(
            Protocol::V3_1_1,
            id,
        ))))
        .await;
        match self.recv().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason_code, ReasonCode::Success),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Subscribes, publishes at QoS 0 and expects the message back.
    async fn echo(&mut self, topic: &str) {
        self.send(Packet::Subscribe(Subscribe::new(
            1,
            vec![SubscribeFilter::new(topic, QoS::AtMostOnce)],
        )))
        .await;
        assert!(matches!(self.recv().await, Some(Packet::SubAck(_))));
        self.send(Packet::Publish(Publish::new(
            topic,
            QoS::AtMostOnce,
            "framed",
        )))
        .await;
        match self.recv().await {
            Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"framed"),
            other => panic!("expected the PUBLISH, got {other:?}"),
        }
    }
}

async fn ws_client(addr: SocketAddr, id: &str) -> WsClient<TcpStream> {
    let mut client = WsClient::open(TcpStream::connect(addr).await.unwrap(), addr, "ws").await;
    client.connect(id).await;
    client
}

#[tokio::test]
async fn mqtt_over_ws_and_wss() {
    let pki = Pki::generate("ws-basic");
    let broker = start(&pki).await;
    let addrs: Vec<SocketAddr> = broker.listeners().iter().map(|l| l.addr).collect();
    assert_eq!(broker.addr_of(ListenerKind::Wss), Some(addrs[WSS]));
    ws_client(addrs[WS], "ws-1").await.echo("ws/echo").await;

    let tcp = TcpStream::connect(addrs[WSS]).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(pki.client_config(false));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let mut wss = WsClient::open(tls, addrs[WSS], "wss").await;
    wss.connect("wss-1").await;
    wss.echo("wss/echo").await;
    broker.close().await;
}

/// Sends `request` as is and returns the HTTP status line of the answer.
async fn http_status(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

fn upgrade(path: &str, protocol: Option<&str>) -> String {
    let protocol = protocol.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    )
}

#[tokio::test]
async fn wrong_requests_get_clear_http_answers() {
    let pki = Pki::generate("ws-http");
    let broker = start(&pki).await;
    let addr = broker.listeners()[WS].addr;
    let mut bystander = ws_client(addr, "bystander").await;
    assert_eq!(
        http_status(addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await,
        "HTTP/1.1 426 Upgrade Required"
    );
    assert_eq!(
        http_status(addr, &upgrade("/elsewhere", Some("mqtt"))).await,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http_status(addr, &upgrade("/mqtt", None)).await,
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        http_status(addr, &upgrade("/mqtt", Some("chat, superchat"))).await,
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        http_status(addr, "POST /mqtt HTTP/1.1\r\nHost: x\r\n\r\n").await,
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert!(http_status(addr, "\x10garbage\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 400"));
    bystander.echo("still/up").await;
    broker.close().await;
}

#[tokio::test]
async fn a_text_frame_closes_only_that_connection() {
    let pki = Pki::generate("ws-text");
    let broker = start(&pki).await;
    let addr = broker.listeners()[WS].addr;
    let mut bystander = ws_client(addr, "bystander").await;
    let mut talker = ws_client(addr, "talker").await;
    talker.ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(talker.recv().await, None);
    let t0 = Instant::now();
    while broker.clients().contains(&"talker".to_owned()) {
        assert!(t0.elapsed() < WAIT, "talker still connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bystander.echo("after/text").await;
    broker.close().await;
}

#[tokio::test]
async fn a_stalled_upgrade_is_closed_within_connect_timeout() {
    let pki = Pki::generate("ws-stall");
    let broker = start(&pki).await;
    let addr = broker.listeners()[WS].addr;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"GET /mqtt HTTP/1.1\r\n").await.unwrap(); // never finishes
    let (_, waited) = pigeon_tests::read_until_closed(&mut stalled).await;
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    ws_client(addr, "next").await.echo("after/stall").await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_over_ws_and_wss() {
    let pki = Pki::generate("ws-paho");
    let broker = start(&pki).await;
    let ws = broker.listeners()[WS].addr.port().to_string();
    let wss = broker.listeners()[WSS].addr.port().to_string();
    let ca = pki.ca.to_str().unwrap();
    let runs: [Vec<&str>; 2] = [
        vec!["--port", &ws, "--ws-path", "/mqtt"],
        vec!["--port", &wss, "--ws-path", "/mqtt", "--ca", ca],
    ];
    for args in runs {
        pigeon_tests::run_transport_paho(&args).await;
    }
    broker.close().await;
}
