//! PROXY protocol v1 and v2 on a listener (`proxy_protocol = true`): the
//! address in the header is what handlers see; a connection without a
//! header, or with a garbage one, is closed without disturbing others.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use pigeon::{
    codec::{Connect, Packet, Protocol, ReasonCode},
    config::Listener,
    hooks::ListenerKind,
    prelude::*,
    App,
};
use pigeon_tests::{assert_serving, Raw};
use tokio::io::AsyncWriteExt;

#[injectable]
struct Addrs {
    #[inject(default)]
    seen: Mutex<Vec<String>>,
}

#[injectable]
struct Record {
    addrs: Arc<Addrs>,
}

#[handlers]
impl Record {
    #[on_authenticate]
    async fn auth(&self, client: Client) -> Result<(), AuthError> {
        let line = format!("{} {}", client.id(), client.addr());
        self.addrs.seen.lock().unwrap().push(line);
        Ok(())
    }
}

#[module(providers = [Addrs, Record])]
struct ProxyModule;

/// A broker with a PROXY-protocol TCP listener first and a plain one second.
async fn start() -> (App, SocketAddr, SocketAddr) {
    let app = pigeon::testing::start_with::<ProxyModule>(|config| {
        let mut proxied = Listener::new(ListenerKind::Tcp, "127.0.0.1", 0);
        proxied.proxy_protocol = Some(true);
        config.listeners = vec![proxied, Listener::new(ListenerKind::Tcp, "127.0.0.1", 0)];
    })
    .await
    .expect("broker starts");
    let broker = app.service().broker().unwrap().clone();
    let (proxied, plain) = (broker.listeners()[0].addr, broker.listeners()[1].addr);
    (app, proxied, plain)
}

fn seen(app: &App) -> Vec<String> {
    app.get::<Addrs>().unwrap().seen.lock().unwrap().clone()
}

/// Sends `header` then CONNECT for `id`; the CONNACK code, `None` if closed.
async fn connect_after(addr: SocketAddr, header: &[u8], id: &str) -> Option<ReasonCode> {
    let mut raw = Raw::tcp(addr).await;
    raw.stream.write_all(header).await.unwrap();
    raw.send(Packet::Connect(Box::new(Connect::new(
        Protocol::V3_1_1,
        id,
    ))))
    .await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => Some(ack.reason_code),
        None => None,
        other => panic!("unexpected {other:?}"),
    }
}

fn v2_tcp4(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend(src);
    h.extend([10, 0, 0, 1]);
    h.extend(sport.to_be_bytes());
    h.extend(1883u16.to_be_bytes());
    h
}

#[tokio::test]
async fn the_header_address_is_the_clients() {
    let (app, proxied, _) = start().await;
    let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n";
    assert_eq!(
        connect_after(proxied, v1, "via-v1").await,
        Some(ReasonCode::Success)
    );
    let v6 = b"PROXY TCP6 2001:db8::9 2001:db8::1 4000 1883\r\n";
    assert_eq!(
        connect_after(proxied, v6, "via-v1-6").await,
        Some(ReasonCode::Success)
    );
    let v2 = v2_tcp4([198, 51, 100, 20], 40000);
    assert_eq!(
        connect_after(proxied, &v2, "via-v2").await,
        Some(ReasonCode::Success)
    );
    let seen = seen(&app);
    assert!(
        seen.contains(&"via-v1 203.0.113.7:51234".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"via-v1-6 [2001:db8::9]:4000".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"via-v2 198.51.100.20:40000".to_owned()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn missing_or_garbage_headers_close_only_that_connection() {
    let (app, proxied, plain) = start().await;
    assert_eq!(connect_after(proxied, b"", "no-header").await, None);
    assert_eq!(
        connect_after(proxied, b"PROXY TCP4 nonsense\r\n", "garbage").await,
        None
    );
    assert_eq!(
        connect_after(
            proxied,
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n",
            "bad-port"
        )
        .await,
        None
    );
    assert!(seen(&app).is_empty(), "{:?}", seen(&app));
    // The plain listener needs no header, and still serves.
    assert_serving(plain).await;
}
