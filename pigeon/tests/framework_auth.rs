//! The `AuthExchange` extractor and `AuthStep` returns of `#[on_authenticate]`
//! handlers: a chain of a password check (`bool`) and an enhanced
//! authentication step (`AuthStep`), in any parameter order, over real TCP.

use bytes::{Bytes, BytesMut};
use pigeon::codec::{self, ConnAck, Packet, Protocol, ReasonCode};
use pigeon::prelude::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[injectable]
struct Passwords;

#[handlers]
impl Passwords {
    #[on_authenticate(order = 1)]
    async fn not_banned(&self, credential: Credential) -> bool {
        credential.username.as_deref() != Some("banned")
    }
}

#[injectable]
struct Tokens;

#[handlers]
impl Tokens {
    #[on_authenticate(order = 2)]
    async fn token(&self, client: Client, auth: AuthExchange) -> AuthStep {
        let _ = client;
        match (auth.method.as_deref(), auth.data.as_deref()) {
            (Some("TOKEN"), Some(b"good")) => AuthStep::success_with("ok"),
            (Some("TOKEN"), _) => AuthStep::continue_with("again?"),
            _ => AuthStep::Pass,
        }
    }
}

#[module(providers = [Passwords, Tokens])]
struct ChainModule;

/// Sends CONNECT and returns the broker's first answer.
async fn connect(addr: std::net::SocketAddr, c: codec::Connect) -> Packet {
    let protocol = c.protocol;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut out = BytesMut::new();
    codec::encode(&Packet::Connect(Box::new(c)), protocol, &mut out).unwrap();
    stream.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Some(p) = codec::decode(&mut buf, protocol, usize::MAX).unwrap() {
                return p;
            }
            assert!(stream.read_buf(&mut buf).await.unwrap() > 0, "closed");
        }
    })
    .await
    .expect("an answer in time")
}

fn v5(id: &str, user: &str, method: Option<&str>, data: &'static str) -> codec::Connect {
    let mut c = codec::Connect::new(Protocol::V5, id);
    c.username = Some(user.into());
    c.properties.authentication_method = method.map(Into::into);
    c.properties.authentication_data = method.map(|_| Bytes::from_static(data.as_bytes()));
    c
}

fn connack(p: Packet) -> ConnAck {
    match p {
        Packet::ConnAck(ack) => *ack,
        other => panic!("CONNACK expected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_chain_of_password_check_and_enhanced_step() {
    let app = pigeon::testing::start::<ChainModule>().await.unwrap();
    let addr = app.local_addr();

    // Accepted in one step: CONNACK carries the method and the handler's data.
    let ack = connack(connect(addr, v5("t1", "u", Some("TOKEN"), "good")).await);
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some("TOKEN")
    );
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"ok"[..])
    );

    // A challenge: AUTH 0x18 with the handler's data.
    match connect(addr, v5("t2", "u", Some("TOKEN"), "bad")).await {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, ReasonCode::ContinueAuthentication);
            assert_eq!(
                a.properties.authentication_data.as_deref(),
                Some(&b"again?"[..])
            );
        }
        other => panic!("AUTH expected, got {other:?}"),
    }

    // The first handler refuses: the chain stops before the token step.
    let ack = connack(connect(addr, v5("t3", "banned", Some("TOKEN"), "good")).await);
    assert_eq!(ack.reason_code, ReasonCode::NotAuthorized);

    // Plain CONNECTs (3.1.1 and 5.0): the token handler passes, no AUTH properties.
    let plain = codec::Connect::new(Protocol::V3_1_1, "t4");
    assert_eq!(
        connack(connect(addr, plain).await).reason_code,
        ReasonCode::Success
    );
    let ack = connack(connect(addr, v5("t5", "u", None, "")).await);
    assert_eq!(ack.reason_code, ReasonCode::Success);
    assert_eq!(ack.properties.authentication_method, None);
}

#[tokio::test]
async fn the_test_client_answers_auth_challenges() {
    use pigeon::testing::{ClientBuilder, ClientError};
    let app = pigeon::testing::start::<ChainModule>().await.unwrap();
    let addr = app.local_addr();

    // CONNECT "bad" -> AUTH 0x18 "again?" -> AUTH 0x18 "good" -> CONNACK "ok".
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let challenges = seen.clone();
    let client = ClientBuilder::new(addr, "t6")
        .credentials("u", "")
        .enhanced_auth("TOKEN", "bad", move |challenge| {
            challenges.lock().unwrap().push(challenge.to_vec());
            Bytes::from_static(b"good")
        })
        .connect()
        .await
        .expect("accepted after one challenge");
    assert_eq!(*seen.lock().unwrap(), vec![b"again?".to_vec()]);
    let connack = client.connack();
    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(
        connack.properties.authentication_data.as_deref(),
        Some(&b"ok"[..])
    );
    client.ping().await.expect("connected");

    // A client that cannot answer is told how to.
    let mut c = ClientBuilder::new(addr, "t7").credentials("u", "");
    c = c.properties(pigeon::codec::ConnectProperties {
        authentication_method: Some("TOKEN".into()),
        authentication_data: Some(Bytes::from_static(b"bad")),
        ..Default::default()
    });
    match c.connect().await {
        Err(e @ ClientError::Protocol { .. }) => {
            assert!(e.to_string().contains(".enhanced_auth("), "{e}")
        }
        other => panic!("a protocol error expected, got {other:?}"),
    }
    app.close().await;
}
