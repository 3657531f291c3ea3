//! The `enhanced_auth` example, started in-process on an ephemeral port: the
//! PIGEON-NONCE exchange byte by byte (no client library here speaks AUTH), and
//! rumqttc v5 for what it can do (a plain CONNECT, an unknown method → 0x8C).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pigeon::codec::{self, Auth, AuthProperties, Packet, Protocol, ReasonCode};
use rumqttc::v5::{mqttbytes::v5::ConnectReturnCode, AsyncClient, Event, MqttOptions};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[allow(dead_code)]
#[path = "../examples/enhanced_auth.rs"]
mod enhanced_auth;

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        codec::encode(&p, Protocol::V5, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(p) = codec::decode(&mut self.buf, Protocol::V5, usize::MAX).unwrap() {
                    return Some(p);
                }
                if self.stream.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("an answer in time")
    }
}

fn auth(code: ReasonCode, data: String) -> Packet {
    Packet::Auth(Box::new(Auth {
        reason_code: code,
        properties: AuthProperties {
            authentication_method: Some("PIGEON-NONCE".into()),
            authentication_data: Some(Bytes::from(data)),
            ..Default::default()
        },
    }))
}

/// Runs the exchange as `user` with `password`; returns the final packet.
async fn exchange(addr: std::net::SocketAddr, user: &str, password: &str) -> (Conn, Packet) {
    let mut connect = codec::Connect::new(Protocol::V5, format!("ea-{user}"));
    connect.username = Some(user.into());
    connect.properties.authentication_method = Some("PIGEON-NONCE".into());
    let mut conn = Conn {
        stream: TcpStream::connect(addr).await.unwrap(),
        buf: BytesMut::new(),
    };
    conn.send(Packet::Connect(Box::new(connect))).await;
    let Some(Packet::Auth(challenge)) = conn.recv().await else {
        panic!("AUTH challenge expected");
    };
    assert_eq!(challenge.reason_code, ReasonCode::ContinueAuthentication);
    let nonce =
        String::from_utf8(challenge.properties.authentication_data.unwrap().to_vec()).unwrap();
    let answer = enhanced_auth::proof(&nonce, password);
    conn.send(auth(ReasonCode::ContinueAuthentication, answer))
        .await;
    let last = conn.recv().await.expect("an answer");
    (conn, last)
}

#[tokio::test]
async fn the_nonce_exchange_connects_alice_refuses_a_wrong_password_and_reauthenticates() {
    let app = pigeon::testing::start::<enhanced_auth::AppModule>()
        .await
        .unwrap();
    let addr = app.local_addr();

    let (mut conn, last) = exchange(addr, "alice", "wonderland").await;
    let Packet::ConnAck(ack) = last else {
        panic!("CONNACK expected, got {last:?}");
    };
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"welcome alice"[..])
    );

    // Re-authentication runs the same exchange.
    conn.send(auth(ReasonCode::ReAuthenticate, String::new()))
        .await;
    let Some(Packet::Auth(challenge)) = conn.recv().await else {
        panic!("AUTH challenge expected");
    };
    let nonce =
        String::from_utf8(challenge.properties.authentication_data.unwrap().to_vec()).unwrap();
    conn.send(auth(
        ReasonCode::ContinueAuthentication,
        enhanced_auth::proof(&nonce, "wonderland"),
    ))
    .await;
    let Some(Packet::Auth(done)) = conn.recv().await else {
        panic!("AUTH success expected");
    };
    assert_eq!(done.reason_code, ReasonCode::Success);

    let (_, last) = exchange(addr, "bob", "not-the-password").await;
    assert!(
        matches!(last, Packet::ConnAck(ref a) if a.reason_code == ReasonCode::NotAuthorized),
        "{last:?}"
    );
}

async fn rumqttc_connack(opts: MqttOptions) -> Result<ConnectReturnCode, String> {
    let (_client, mut ev) = AsyncClient::new(opts, 10);
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(ack))) => {
                    return Ok(ack.code)
                }
                Ok(_) => {}
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await
    .expect("CONNACK in time")
}

#[tokio::test]
async fn rumqttc_v5_plain_connects_and_an_unknown_method_gets_0x8c() {
    let app = pigeon::testing::start::<enhanced_auth::AppModule>()
        .await
        .unwrap();
    let addr = app.local_addr();
    let opts = MqttOptions::new("ea-plain", addr.ip().to_string(), addr.port());
    assert_eq!(rumqttc_connack(opts).await, Ok(ConnectReturnCode::Success));

    let mut opts = MqttOptions::new("ea-gssapi", addr.ip().to_string(), addr.port());
    opts.set_authentication_method(Some("GSSAPI".into()));
    let refused = rumqttc_connack(opts).await;
    assert!(
        format!("{refused:?}").contains("BadAuthenticationMethod"),
        "{refused:?}"
    );
}
